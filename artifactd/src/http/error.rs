//! The one place where errors become HTTP responses.
//!
//! Every handler returns [`ApiError`] on failure. Client errors (4xx) carry one sentence that is
//! sent as `{"error": "..."}`; server errors (5xx) are logged with their whole cause chain and
//! the client gets a generic sentence, so internals never leak; but 502 (a proxy's upstream
//! failed, which the proxy logs) and 503 (the database is away) say what happened.

use std::error::Error as StdError;

use artifactd_plugin_api::{Error as PluginError, RegistryError};
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    challenge: bool,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    /// A client error with its sentence.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            challenge: false,
            message: message.into(),
            source: None,
        }
    }

    /// 401 with `WWW-Authenticate: Basic realm="artifactd"`, so clients ask for credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 400 with a sentence naming the broken rule.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A server error, logged with its cause.
    pub fn internal(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            challenge: false,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        let status = match &e {
            PluginError::NotFound(_) => StatusCode::NOT_FOUND,
            PluginError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            PluginError::Conflict(_) => StatusCode::CONFLICT,
            PluginError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            PluginError::Forbidden(_) => StatusCode::FORBIDDEN,
            PluginError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            Self {
                status,
                challenge: false,
                message: e.to_string(),
                source: Some(Box::new(e)),
            }
        } else {
            Self::new(status, e.to_string())
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Unknown { .. } => Self::not_found(e.to_string()),
            other => Self::internal("provider registry failed", other),
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Invalid => Self::unauthorized(e.to_string()),
            crate::auth::AuthError::Db(d) => Self::from(d),
        }
    }
}

impl From<crate::repo_spec::SpecError> for ApiError {
    fn from(e: crate::repo_spec::SpecError) -> Self {
        match e {
            crate::repo_spec::SpecError::Invalid(s) => Self::bad_request(s),
            crate::repo_spec::SpecError::Registry(e) => e.into(),
            crate::repo_spec::SpecError::Db(e) => e.into(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        if crate::db::unreachable(&e) {
            // A database restart or network cut: the pool reconnects by itself, the client may
            // retry; nothing was changed.
            Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                challenge: false,
                message: crate::db::UNREACHABLE.to_owned(),
                source: Some(Box::new(e)),
            }
        } else {
            Self::internal("database query failed", e)
        }
    }
}

impl ApiError {
    /// The sentence a client sees: the message, or for server errors a pointer to the log.
    pub fn public_message(&self) -> &str {
        // 502 (a proxy's upstream failed) and 503 (the database is away) say what happened.
        if self.status.is_server_error()
            && self.status != StatusCode::SERVICE_UNAVAILABLE
            && self.status != StatusCode::BAD_GATEWAY
        {
            "The server failed to handle the request; the error is in its log."
        } else {
            &self.message
        }
    }
}

/// For work outside a request (`artifactd gc`): the message, with its cause.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::BAD_GATEWAY {
            let cause = self
                .source
                .as_deref()
                .map(|e| crate::error_chain(e))
                .unwrap_or_default();
            tracing::error!(status = self.status.as_u16(), cause = %cause, "{}", self.message);
        }
        let message = self.public_message().to_owned();
        let mut resp = (self.status, Json(serde_json::json!({ "error": message }))).into_response();
        if self.challenge {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"artifactd\""),
            );
        }
        // twine shows the status line, not the body, as the error (as PyPI does, the reason
        // phrase is the sentence); a 409 keeps the words its `--skip-existing` looks for.
        let reason = if self.status == StatusCode::CONFLICT {
            Ok(hyper::ext::ReasonPhrase::from_static(
                b"Conflict: File already exists",
            ))
        } else {
            hyper::ext::ReasonPhrase::try_from(reason_phrase(&message))
        };
        if let Ok(reason) = reason {
            resp.extensions_mut().insert(reason);
        }
        resp
    }
}

/// A sentence as a status line's reason phrase: printable ASCII, at most 256 bytes.
fn reason_phrase(sentence: &str) -> Vec<u8> {
    sentence
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(256)
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_phrase_is_the_sentence_in_printable_ascii() {
        let resp = ApiError::bad_request("The name \"café\"\tis bad.").into_response();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| r.as_bytes().to_vec());
        assert_eq!(reason.as_deref(), Some(&b"The name \"caf?\"?is bad."[..]));
        assert_eq!(reason_phrase(&"x".repeat(1000)).len(), 256);
        let conflict = ApiError::new(StatusCode::CONFLICT, "taken").into_response();
        assert_eq!(
            conflict
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .map(hyper::ext::ReasonPhrase::as_bytes),
            Some(&b"Conflict: File already exists"[..])
        );
    }
}
