//! The discovery handshake: ask the user function what it serves (retrying
//! until it is up), check the answer, and say what is wrong through
//! `reportError` and the log.

use std::time::{Duration, Instant};

use cloudstate_sdk::protocol::cloudstate::{
    self as pb, entity_discovery_client::EntityDiscoveryClient,
};
use tonic::transport::{Channel, Endpoint};
use tracing::{error, info, warn};

use crate::model::{EntityType, Model, SpecError};
use crate::observe::{Observed, Observer};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Nothing answered at the user function's address in time.
    #[error("the user function at {address} did not answer discovery within {waited:?}: {last}")]
    Unreachable {
        /// Where it was looked for.
        address: String,
        /// How long the proxy tried.
        waited: Duration,
        /// The last error.
        last: String,
    },
    /// The user function's spec was refused (also sent to its `reportError`).
    #[error("the user function's entity spec was refused: {0}")]
    Refused(#[from] SpecError),
}

/// What this proxy says about itself.
pub fn proxy_info() -> pb::ProxyInfo {
    pb::ProxyInfo {
        protocol_major_version: 0,
        protocol_minor_version: 2,
        proxy_name: "cloudstate-devproxy".to_owned(),
        proxy_version: env!("CARGO_PKG_VERSION").to_owned(),
        supported_entity_types: EntityType::ALL
            .iter()
            .map(|t| t.name().to_owned())
            .collect(),
    }
}

/// Connects (lazily) to the user function.
pub(crate) fn channel(address: &str, max_message_size: usize) -> Result<Channel, DiscoveryError> {
    let _ = max_message_size;
    let endpoint = Endpoint::from_shared(format!("http://{address}")).map_err(|e| {
        DiscoveryError::Unreachable {
            address: address.to_owned(),
            waited: Duration::ZERO,
            last: e.to_string(),
        }
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy())
}

/// Calls `discover` with backoff (100 ms doubling to 2 s) until it answers or
/// `deadline` passes, then validates the spec.
pub(crate) async fn discover(
    channel: &Channel,
    address: &str,
    deadline: Duration,
    default_passivation: Duration,
    max_message_size: usize,
    observer: &Observer,
) -> Result<Model, DiscoveryError> {
    let started = Instant::now();
    let mut client =
        EntityDiscoveryClient::new(channel.clone()).max_decoding_message_size(max_message_size);
    let mut backoff = Duration::from_millis(100);
    let spec = loop {
        match client.discover(proxy_info()).await {
            Ok(response) => break response.into_inner(),
            Err(status) => {
                if started.elapsed() >= deadline {
                    return Err(DiscoveryError::Unreachable {
                        address: address.to_owned(),
                        waited: started.elapsed(),
                        last: status.message().to_owned(),
                    });
                }
                info!(
                    "waiting for the user function at {address}: {}",
                    status.message()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    };
    observer.emit(|| Observed::Discovery {
        proxy_info: proxy_info(),
        spec: spec.clone(),
    });
    let checked = check_version(&spec).and_then(|()| Model::build(spec, default_passivation));
    match checked {
        Ok(model) => {
            for service in model.services.values() {
                // Actions keep no state: their persistence id means nothing.
                if service.entity_type == crate::model::EntityType::Action {
                    info!("serving {} ({})", service.name, service.entity_type.name());
                } else {
                    info!(
                        "serving {} ({}, persistence id [{}])",
                        service.name,
                        service.entity_type.name(),
                        service.persistence_id
                    );
                }
            }
            Ok(model)
        }
        Err(problem) => {
            error!("{problem}");
            observer.emit(|| Observed::ReportError(problem.0.clone()));
            let report = pb::UserFunctionError {
                message: problem.0.clone(),
            };
            if let Err(status) = client.report_error(report).await {
                warn!("reportError failed: {status}");
            }
            Err(problem.into())
        }
    }
}

/// Protocol 0.2 is what this proxy speaks. A user function that reports no
/// version is let through with a warning; another major version is refused.
fn check_version(spec: &pb::EntitySpec) -> Result<(), SpecError> {
    let (major, minor) = spec.service_info.as_ref().map_or((0, 0), |i| {
        (i.protocol_major_version, i.protocol_minor_version)
    });
    match (major, minor) {
        (0, 2) => Ok(()),
        (0, 0) => {
            warn!("the user function reports no protocol version; assuming 0.2");
            Ok(())
        }
        (0, other) => {
            warn!("the user function speaks protocol 0.{other}; this proxy speaks 0.2");
            Ok(())
        }
        _ => Err(SpecError(format!(
            "Incompatible protocol version {major}.{minor}, only 0.2 is supported"
        ))),
    }
}
