//! Turns a provider's [`ServeResponse`] into HTTP: blob streaming, `HEAD`, `Range`, `ETag`/304
//! and cache headers, implemented once for every provider.

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _};
use artifactd_plugin_api::{BlobRef, ServeBody, ServeResponse};
use axum::body::Body;
use axum::response::Response;
use futures_util::TryStreamExt as _;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_NONE_MATCH, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::error::ApiError;
use crate::storage::StorageKey;

/// A single byte range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No (usable) `Range` header: the whole body.
    Full,
    /// `start..=end`.
    Part(u64, u64),
    /// Outside the body.
    Unsatisfiable,
}

/// Parses a `Range` header against a body of `size` bytes. Multiple ranges and malformed headers
/// are answered with the whole body, which RFC 9110 allows.
pub fn parse_range(header: Option<&HeaderValue>, size: u64) -> ByteRange {
    let Some(spec) = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return ByteRange::Full;
        };
        if n == 0 || size == 0 {
            return ByteRange::Unsatisfiable;
        }
        return ByteRange::Part(size.saturating_sub(n), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return ByteRange::Full;
    };
    let end = if b.is_empty() {
        size.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size.saturating_sub(1)),
            _ => return ByteRange::Full,
        }
    };
    if start >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Part(start, end)
}

fn etag_matches(req: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(inm) = req.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    let bare = etag.trim_start_matches("W/");
    inm.split(',')
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

fn not_modified(headers: HeaderMap) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    for name in [ETAG, CACHE_CONTROL, http::header::VARY] {
        if let Some(v) = headers.get(&name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    resp
}

fn with_headers(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Renders `resp` for a request with `method` and `req` headers. `derived` is the store the
/// provider's [`BlobRef::Derived`] paths are relative to; `content` is the whole blob store.
///
/// # Errors
/// Storage failures (500), except a missing blob (404).
pub async fn render(
    method: &Method,
    req: &HeaderMap,
    resp: ServeResponse,
    content: &dyn ObjectStore,
    derived: &dyn ObjectStore,
) -> Result<Response, ApiError> {
    let ServeResponse {
        status,
        mut headers,
        body,
        ..
    } = resp;
    match body {
        ServeBody::Empty => Ok(with_headers(status, headers, Body::empty())),
        ServeBody::Bytes(bytes) => {
            if status == StatusCode::OK
                && let Some(etag) = headers.get(ETAG)
                && etag_matches(req, etag)
            {
                return Ok(not_modified(headers));
            }
            headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let body = if *method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(bytes)
            };
            Ok(with_headers(status, headers, body))
        }
        ServeBody::Blob(blob) => {
            let (store, path, etag): (&dyn ObjectStore, BlobPath, Option<HeaderValue>) = match &blob
            {
                BlobRef::Content { sha256 } => {
                    headers
                        .entry(CACHE_CONTROL)
                        .or_insert(HeaderValue::from_static(
                            "public, max-age=31536000, immutable",
                        ));
                    let etag = HeaderValue::from_str(&format!("\"{sha256}\"")).ok();
                    (content, StorageKey::Content(sha256).path(), etag)
                }
                BlobRef::Derived(p) => (derived, p.clone(), None),
                other => {
                    return Err(ApiError::internal(
                        "serve hook",
                        artifactd_plugin_api::Error::internal_msg(format!(
                            "unsupported blob reference {other:?}"
                        )),
                    ));
                }
            };
            let meta = match store.head(&path).await {
                Ok(m) => m,
                Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => {
                    return Err(ApiError::not_found(
                        "The file is listed but its content is missing.",
                    ));
                }
                Err(e) => return Err(ApiError::internal("blob lookup failed", e)),
            };
            let etag = etag.or_else(|| {
                meta.e_tag.as_deref().and_then(|t| {
                    HeaderValue::from_str(&format!("\"{}\"", t.trim_matches('"'))).ok()
                })
            });
            if let Some(etag) = etag {
                headers.insert(ETAG, etag);
            }
            headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Some(etag) = headers.get(ETAG)
                && etag_matches(req, etag)
            {
                return Ok(not_modified(headers));
            }
            let size = meta.size;
            let (status, range) = match parse_range(req.get(RANGE), size) {
                ByteRange::Full => (status, None),
                ByteRange::Part(a, b) => (StatusCode::PARTIAL_CONTENT, Some((a, b))),
                ByteRange::Unsatisfiable => {
                    let mut h = HeaderMap::new();
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        h.insert(CONTENT_RANGE, v);
                    }
                    return Ok(with_headers(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        h,
                        Body::empty(),
                    ));
                }
            };
            let length = match range {
                Some((a, b)) => {
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                        headers.insert(CONTENT_RANGE, v);
                    }
                    b - a + 1
                }
                None => size,
            };
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            if *method == Method::HEAD {
                return Ok(with_headers(status, headers, Body::empty()));
            }
            let mut opts = GetOptions::default();
            if let Some((a, b)) = range {
                opts.range = Some(GetRange::Bounded(a..b + 1));
            }
            let got = store
                .get_opts(&path, opts)
                .await
                .map_err(|e| ApiError::internal("blob read failed", e))?;
            let stream = got.into_stream().map_err(std::io::Error::other);
            Ok(with_headers(status, headers, Body::from_stream(stream)))
        }
        other => Err(ApiError::internal(
            "serve hook",
            artifactd_plugin_api::Error::internal_msg(format!("unsupported body {other:?}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, size: u64) -> ByteRange {
        parse_range(Some(&HeaderValue::from_str(s).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), ByteRange::Full);
        assert_eq!(r("bytes=0-3", 10), ByteRange::Part(0, 3));
        assert_eq!(r("bytes=5-", 10), ByteRange::Part(5, 9));
        assert_eq!(r("bytes=-4", 10), ByteRange::Part(6, 9));
        assert_eq!(r("bytes=-40", 10), ByteRange::Part(0, 9));
        assert_eq!(r("bytes=3-100", 10), ByteRange::Part(3, 9));
        assert_eq!(r("bytes=10-", 10), ByteRange::Unsatisfiable);
        assert_eq!(r("bytes=0-1,4-5", 10), ByteRange::Full);
        assert_eq!(r("bytes=x-y", 10), ByteRange::Full);
        assert_eq!(r("items=0-1", 10), ByteRange::Full);
    }
}
