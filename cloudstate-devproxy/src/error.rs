//! How failures reach the client.

use tonic::{Code, Status};

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
    /// The request could not be turned into the method's input, or names no
    /// entity.
    #[error("{0}")]
    BadRequest(String),
    /// The dev proxy is shutting down: the call may be retried elsewhere or
    /// later.
    #[error("{0}")]
    Unavailable(String),
}

impl ProxyError {
    /// The gRPC code: `UNKNOWN` for user function failures, as the official
    /// proxy answers, `INVALID_ARGUMENT` for bad requests.
    pub fn code(&self) -> Code {
        match self {
            Self::Failure(_) => Code::Unknown,
            Self::Internal(_) => Code::Internal,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::BadRequest(_) => Code::InvalidArgument,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }

    /// The gRPC status: [`ProxyError::code`] with the text.
    pub fn status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }

    /// The HTTP status and the text: 500 for failures (the failure text
    /// verbatim, as the official proxy answers) and internal errors, 404 for
    /// what is not served, 400 with the reason for bad requests, 503 while
    /// shutting down.
    pub fn http(&self) -> (http::StatusCode, String) {
        let status = match self {
            Self::Failure(_) | Self::Internal(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unimplemented(_) => http::StatusCode::NOT_FOUND,
            Self::BadRequest(_) => http::StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, self.to_string())
    }
}
