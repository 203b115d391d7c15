//! gRPC server reflection (v1alpha) as the official proxy answers it: the
//! reflection service first, then the served services sorted; an unknown
//! file or symbol gets an empty file list, not an error.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use prost::Message;
use prost_reflect::{DescriptorPool, FileDescriptor};
use tonic::{Request, Response, Status, Streaming};
use tonic_reflection::pb::v1alpha::{
    FileDescriptorResponse, ListServiceResponse, ServerReflectionRequest, ServerReflectionResponse,
    ServiceResponse,
    server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
    server_reflection_server::{ServerReflection, ServerReflectionServer},
};

const SELF: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Answers reflection requests from the user function's descriptors.
pub(crate) struct Reflection {
    pool: DescriptorPool,
    services: Arc<Vec<String>>,
}

impl Reflection {
    pub(crate) fn server(pool: DescriptorPool, served: &[&str]) -> ServerReflectionServer<Self> {
        let mut services: Vec<String> = served.iter().map(|s| (*s).to_owned()).collect();
        services.sort();
        services.insert(0, SELF.to_owned());
        ServerReflectionServer::new(Self {
            pool,
            services: Arc::new(services),
        })
    }
}

/// The file and everything it imports, each encoded once.
fn with_dependencies(file: &FileDescriptor) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![file.clone()];
    while let Some(file) = stack.pop() {
        if seen.insert(file.name().to_owned()) {
            out.push(file.file_descriptor_proto().encode_to_vec());
            stack.extend(file.dependencies());
        }
    }
    out
}

fn answer(
    pool: &DescriptorPool,
    services: &[String],
    request: ServerReflectionRequest,
) -> ServerReflectionResponse {
    let files = |file: Option<FileDescriptor>| {
        MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
            file_descriptor_proto: file.map(|f| with_dependencies(&f)).unwrap_or_default(),
        })
    };
    let response = match request.message_request.clone() {
        Some(MessageRequest::ListServices(_)) => {
            MessageResponse::ListServicesResponse(ListServiceResponse {
                service: services
                    .iter()
                    .map(|name| ServiceResponse { name: name.clone() })
                    .collect(),
            })
        }
        Some(MessageRequest::FileByFilename(name)) => files(pool.get_file_by_name(&name)),
        Some(MessageRequest::FileContainingSymbol(symbol)) => {
            let symbol = symbol.trim_start_matches('.');
            let file = pool
                .get_service_by_name(symbol)
                .map(|s| s.parent_file())
                .or_else(|| pool.get_message_by_name(symbol).map(|m| m.parent_file()))
                .or_else(|| pool.get_enum_by_name(symbol).map(|e| e.parent_file()))
                .or_else(|| pool.get_extension_by_name(symbol).map(|e| e.parent_file()))
                .or_else(|| {
                    let (service, _) = symbol.rsplit_once('.')?;
                    pool.get_service_by_name(service).map(|s| s.parent_file())
                });
            files(file)
        }
        _ => files(None),
    };
    ServerReflectionResponse {
        valid_host: request.host.clone(),
        original_request: Some(request),
        message_response: Some(response),
    }
}

type Answers = Pin<Box<dyn Stream<Item = Result<ServerReflectionResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ServerReflection for Reflection {
    type ServerReflectionInfoStream = Answers;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let pool = self.pool.clone();
        let services = Arc::clone(&self.services);
        let answers = futures_util::stream::unfold(request.into_inner(), move |mut requests| {
            let pool = pool.clone();
            let services = Arc::clone(&services);
            async move {
                match requests.message().await {
                    Ok(Some(request)) => Some((Ok(answer(&pool, &services, request)), requests)),
                    Ok(None) => None,
                    Err(status) => Some((Err(status), requests)),
                }
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }
}
