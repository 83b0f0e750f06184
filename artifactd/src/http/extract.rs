//! Axum's query, path and form extractors with their refusals as this server's errors: a 400
//! with one JSON sentence (pages render it as HTML), never axum's plain-text bodies.

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The part of a rejection's text after axum's "Failed to deserialize …: " prefix.
fn reason(text: &str) -> String {
    let detail = text.split_once(": ").map_or(text, |(_, d)| d);
    detail.trim_end_matches('.').to_owned()
}

/// `axum::extract::Query`, refusing with a JSON 400.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "The query string is not valid: {}.",
                    reason(&e.body_text())
                ))
            })
    }
}

/// `axum::extract::Path`, refusing with a JSON 400.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "The URL path is not valid: {}.",
                    reason(&e.body_text())
                ))
            })
    }
}

/// `axum::extract::Form` (a URL-encoded body), refusing with a 400.
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::extract::Form::<T>::from_request(req, state)
            .await
            .map(|axum::extract::Form(v)| Self(v))
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "The form is not valid: {}.",
                    reason(&e.body_text())
                ))
            })
    }
}
