//! How failures reach the client.

use tonic::Status;

/// Why a call through the proxy failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The user function failed the command: the client sees the text verbatim.
    #[error("{0}")]
    Failure(String),
    /// The proxy could not complete the call.
    #[error("{0}")]
    Internal(String),
    /// No such method, or a kind of entity this proxy does not serve yet.
    #[error("{0}")]
    Unimplemented(String),
    /// The request could not be turned into the method's input.
    #[error("{0}")]
    BadRequest(String),
}

impl ProxyError {
    /// The gRPC status: `UNKNOWN` with the failure text for user function
    /// failures, as the official proxy answers.
    pub fn status(&self) -> Status {
        match self {
            Self::Failure(text) => Status::unknown(text.clone()),
            Self::Internal(text) => Status::internal(text.clone()),
            Self::Unimplemented(text) => Status::unimplemented(text.clone()),
            Self::BadRequest(text) => Status::invalid_argument(text.clone()),
        }
    }

    /// The HTTP status and plain-text body.
    pub fn http(&self) -> (http::StatusCode, String) {
        match self {
            Self::Failure(text) | Self::Internal(text) => {
                (http::StatusCode::INTERNAL_SERVER_ERROR, text.clone())
            }
            Self::Unimplemented(text) => (http::StatusCode::NOT_FOUND, text.clone()),
            Self::BadRequest(_) => (http::StatusCode::BAD_REQUEST, "Bad Request".to_owned()),
        }
    }
}
