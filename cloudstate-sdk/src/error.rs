//! Errors of the server builder and of serving.

/// Why the user function could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The descriptor sets given are unusable or incomplete.
    #[error("descriptor set: {0}")]
    Descriptors(String),
    /// An entity registration is invalid.
    #[error("invalid registration: {0}")]
    Registration(String),
    /// The `HOST`/`PORT` environment does not name an address.
    #[error("invalid listen address: {0}")]
    Address(String),
    /// Binding or accepting failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The gRPC server failed.
    #[error("server: {0}")]
    Transport(#[from] tonic::transport::Error),
}
