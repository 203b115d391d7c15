//! `cloudstate.EntityDiscovery`: tells the proxy what this user function serves.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tracing::{error, info};

use crate::protocol::cloudstate::{self as pb, entity_discovery_server::EntityDiscovery};

/// Answers `discover` with a spec computed once at start-up, so repeated calls
/// are cheap and identical.
pub(crate) struct Discovery {
    spec: Arc<pb::EntitySpec>,
}

impl Discovery {
    pub(crate) fn new(spec: pb::EntitySpec) -> Self {
        Self {
            spec: Arc::new(spec),
        }
    }
}

#[tonic::async_trait]
impl EntityDiscovery for Discovery {
    async fn discover(
        &self,
        request: Request<pb::ProxyInfo>,
    ) -> Result<Response<pb::EntitySpec>, Status> {
        let info = request.into_inner();
        info!(
            proxy = %info.proxy_name,
            version = %info.proxy_version,
            "Received discovery call from [{} {}] supporting Cloudstate protocol {}.{}",
            info.proxy_name,
            info.proxy_version,
            info.protocol_major_version,
            info.protocol_minor_version,
        );
        let unsupported: Vec<String> = self
            .spec
            .entities
            .iter()
            .filter(|e| !info.supported_entity_types.contains(&e.entity_type))
            .map(|e| format!("{}: {}", e.service_name, e.entity_type))
            .collect();
        if !unsupported.is_empty() {
            // Return them all the same: the proxy explains through reportError
            // why it cannot serve them.
            error!(
                "Proxy doesn't support the entity types for the following services: {}",
                unsupported.join(", ")
            );
        }
        Ok(Response::new((*self.spec).clone()))
    }

    async fn report_error(
        &self,
        request: Request<pb::UserFunctionError>,
    ) -> Result<Response<()>, Status> {
        error!(
            "Error reported from sidecar: {}",
            request.into_inner().message
        );
        Ok(Response::new(()))
    }
}
