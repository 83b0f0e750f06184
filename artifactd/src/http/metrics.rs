//! `/metrics` and what feeds it from the HTTP side: each request's route class, status and
//! latency, the body bytes it sent, refused uploads and proxy cache answers. The endpoint is on
//! the public port unless `--metrics-listen` moves it to its own, and asks for
//! `--metrics-token` when one is set.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};
use http_body::{Frame, SizeHint};

use super::{ApiError, AppState};
use crate::metrics;

/// `GET /metrics` on the public port: a 404 when the metrics have their own port.
pub(super) async fn public(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if st.inner.config.metrics_listen.is_some() {
        return ApiError::not_found("There is nothing at this URL.").into_response();
    }
    render(&st, &headers)
}

/// `GET /metrics` on the metrics port.
pub(super) async fn own_port(State(st): State<AppState>, headers: HeaderMap) -> Response {
    render(&st, &headers)
}

fn render(st: &AppState, headers: &HeaderMap) -> Response {
    if let Some(token) = &st.inner.config.metrics_token {
        let sent = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !sent.is_some_and(|s| same(s, token)) {
            return ApiError::unauthorized(
                "The metrics need the metrics token (--metrics-token) as a Bearer token.",
            )
            .into_response();
        }
    }
    let text = metrics::render(st.inner.db.pool_use());
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// Compares two secrets in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    use sha2::Digest as _;
    let (a, b) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The route class of a request: a small fixed set, so the metrics stay few whatever the URLs.
fn route_class(method: &Method, path: &str, headers: &HeaderMap) -> &'static str {
    let multipart = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    match path {
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        "/addpkg" => "upload",
        "/" | "/search" | "/login" | "/repo" | "/repo/" => "ui",
        p if p.starts_with("/api/") => "api",
        p if p.starts_with("/repo/") => {
            if *method == Method::PUT || (*method == Method::POST && multipart) {
                "upload"
            } else {
                "repo"
            }
        }
        p if p.starts_with("/ui/") || p.starts_with("/static/") => "ui",
        _ => "other",
    }
}

/// Why an upload was refused, by the status of its answer.
fn refusal(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "not_allowed",
        408 => "timeout",
        409 => "conflict",
        411 | 400 | 422 => "invalid",
        413 => "too_large",
        415 => "unsupported_type",
        _ => "other",
    }
}

/// Counts each request: its class, status and latency, the bytes its response body sends, a
/// refused upload's reason and where a proxy's answer came from.
pub(super) async fn count(req: Request, next: Next) -> Response {
    let route = route_class(req.method(), req.uri().path(), req.headers());
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    metrics::request(route, status.as_u16(), started.elapsed());
    if route == "upload" && status.is_client_error() {
        metrics::refused(refusal(status));
    }
    if let Some(v) = resp.headers().get(crate::proxy::CACHE_HEADER) {
        match v.as_bytes() {
            b"hit" => metrics::cache("hit"),
            b"miss" => metrics::cache("miss"),
            b"stale" => metrics::cache("stale"),
            _ => {}
        }
    }
    resp.map(|body| Body::new(Served { inner: body }))
}

/// A response body that counts the bytes it sends.
struct Served {
    inner: Body,
}

impl http_body::Body for Served {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            metrics::served(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fall_into_few_classes() {
        let none = HeaderMap::new();
        let mut form = HeaderMap::new();
        form.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        assert_eq!(route_class(&Method::POST, "/addpkg", &none), "upload");
        assert_eq!(
            route_class(&Method::POST, "/repo/pypi/team/", &form),
            "upload"
        );
        assert_eq!(
            route_class(&Method::PUT, "/repo/apt/r/incoming/a.deb", &none),
            "upload"
        );
        assert_eq!(
            route_class(&Method::POST, "/repo/pypi/team/snapshots", &none),
            "repo"
        );
        assert_eq!(
            route_class(&Method::GET, "/repo/apt/r/dists/stable/InRelease", &none),
            "repo"
        );
        assert_eq!(route_class(&Method::GET, "/ui/pypi/team/", &none), "ui");
        assert_eq!(route_class(&Method::GET, "/api/v1/repos", &none), "api");
        assert_eq!(route_class(&Method::GET, "/x/../etc", &none), "other");
        assert!(same("secret", "secret"));
        assert!(!same("secret", "secreT"));
    }
}
