//! The one error type of the plugin API, grouped by what the caller does about it.

use std::error::Error as StdError;

/// A boxed cause, kept so that logs show the whole chain.
type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// Errors returned by provider hooks and by the host services a provider calls.
///
/// The host turns each variant into exactly one HTTP status; the message of the client-facing
/// variants (`NotFound`, `InvalidInput`, `Conflict`, `Unauthorized`, `Forbidden`) is shown to the
/// client as one sentence, so write it as one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request or the uploaded file breaks a rule (400). Say which rule.
    #[error("{0}")]
    InvalidInput(String),
    /// The request conflicts with what is stored, e.g. a file of that name with other bytes (409).
    #[error("{0}")]
    Conflict(String),
    /// Credentials are missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The principal may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The blob store failed (500, logged with its cause).
    #[error("blob storage failed")]
    Storage(#[from] object_store::Error),
    /// A service the host depends on (the database) is unreachable for now (503, logged with
    /// its cause); nothing was changed and the client may retry.
    #[error("{message}")]
    Unavailable {
        /// What could not be reached.
        message: String,
        /// Why.
        #[source]
        source: Option<Cause>,
    },
    /// Something else failed on the server's side (500, logged with its cause).
    #[error("{message}")]
    Internal {
        /// What was being done.
        message: String,
        /// Why it failed.
        #[source]
        source: Option<Cause>,
    },
}

impl Error {
    /// A server-side failure with its cause.
    pub fn internal(message: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A server-side failure without an underlying error value.
    pub fn internal_msg(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// A rule broken by the client's input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// Whether the client caused this error (a 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_)
                | Self::InvalidInput(_)
                | Self::Conflict(_)
                | Self::Unauthorized(_)
                | Self::Forbidden(_)
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::internal("file I/O failed", e)
    }
}

/// The plugin API's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
