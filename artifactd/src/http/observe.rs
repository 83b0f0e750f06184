//! What an operator watches: `/healthz` (the process runs), `/readyz` (the database and the
//! blob store answer), and a request id on every response (`x-request-id`, the client's when
//! it sends a usable one) that every log line of the request carries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, StatusCode};
use tracing::Instrument as _;

use super::AppState;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long `/readyz` waits for each part before it calls it unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn healthz() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response()
}

/// `GET /readyz`: 200 when the database and the blob store both answer within
/// [`PROBE_TIMEOUT`], else 503 naming the part that does not.
pub(super) async fn readyz(State(st): State<AppState>) -> Response {
    let db = async {
        match tokio::time::timeout(PROBE_TIMEOUT, st.inner.db.conn().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }
    };
    let blobs = async {
        match tokio::time::timeout(PROBE_TIMEOUT, st.inner.blobs.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        }
    };
    let (db, blobs) = tokio::join!(db, blobs);
    let mut text = String::new();
    for (part, result) in [("database", &db), ("storage", &blobs)] {
        match result {
            Ok(()) => text.push_str(&format!("{part}: ok\n")),
            Err(e) => text.push_str(&format!("{part}: unreachable ({e})\n")),
        }
    }
    let status = if db.is_ok() && blobs.is_ok() {
        StatusCode::OK
    } else {
        tracing::warn!(readiness = %text.trim_end().replace('\n', "; "), "Not ready.");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// A request id from a client: 1 to 128 visible ASCII characters.
fn usable(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())).then_some(s)
}

/// A new request id: this process's start time and a counter, in hex.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default()
    });
    format!("{start:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Gives the request its id, runs it in a span that carries the id (so every log line of the
/// request has it), logs it once done, and returns the id in the response.
pub(super) async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(usable)
        .map_or_else(new_id, str::to_owned);
    let span = tracing::info_span!("request", id = %id);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut resp = async move {
        let resp = next.run(req).await;
        tracing::info!(
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "Request."
        );
        resp
    }
    .instrument(span)
    .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_taken_when_usable() {
        assert_eq!(
            usable(&HeaderValue::from_static("abc-123")),
            Some("abc-123")
        );
        assert_eq!(usable(&HeaderValue::from_static("")), None);
        assert_eq!(usable(&HeaderValue::from_static("a b")), None);
        let long = "x".repeat(129);
        assert_eq!(usable(&HeaderValue::from_str(&long).expect("ascii")), None);
        assert_ne!(new_id(), new_id());
    }
}
