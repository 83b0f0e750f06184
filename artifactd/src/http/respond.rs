//! Turns a provider's [`ServeResponse`] into HTTP: blob streaming, `HEAD`, `Range`, `ETag`/304
//! and cache headers, implemented once for every provider.

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt as _,
};
use artifactd_plugin_api::{BlobRef, ServeBody, ServeResponse};
use axum::body::Body;
use axum::response::Response;
use futures_util::TryStreamExt as _;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE, VARY,
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

/// Marks a response of a private repo as cacheable by the client only, never by shared caches.
pub fn keep_private(resp: &mut Response) {
    let value = resp
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.replace("public", "private"))
        .unwrap_or_else(|| "private, no-cache".to_owned());
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(CACHE_CONTROL, v);
    }
}

/// Text-like bodies worth compressing.
fn compressible(headers: &HeaderMap, len: usize) -> bool {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    len >= 512
        && !headers.contains_key(CONTENT_ENCODING)
        && (ct.starts_with("text/")
            || ct.contains("json")
            || ct.contains("html")
            || ct.contains("xml"))
}

/// Whether `Accept-Encoding` allows gzip (q > 0).
pub fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}

fn gzip_bytes(data: &[u8]) -> bytes::Bytes {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    if enc.write_all(data).is_err() {
        return bytes::Bytes::copy_from_slice(data);
    }
    enc.finish()
        .map(bytes::Bytes::from)
        .unwrap_or_else(|_| bytes::Bytes::copy_from_slice(data))
}

fn append_vary(headers: &mut HeaderMap, value: &str) {
    let current = headers
        .get(VARY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if current
        .split(',')
        .any(|v| v.trim().eq_ignore_ascii_case(value))
    {
        return;
    }
    let joined = if current.is_empty() {
        value.to_owned()
    } else {
        format!("{current}, {value}")
    };
    if let Ok(v) = HeaderValue::from_str(&joined) {
        headers.insert(VARY, v);
    }
}

fn not_modified(headers: HeaderMap) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    for name in [ETAG, CACHE_CONTROL, VARY] {
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

/// Derived blobs up to this size are kept in memory once read.
const MEMO_MAX_BLOB: u64 = 2 << 20;
/// The bytes all kept derived blobs may hold together.
const MEMO_MAX_TOTAL: usize = 16 << 20;

/// Small derived blobs (index files such as `Packages.gz`) in memory, per repo and path, under
/// the repo generation they were read at. A provider writes derived blobs only while
/// publishing, and the host bumps the generation after every publish, so an entry read at the
/// generation a request sees holds what the store holds at that generation.
#[derive(Debug, Default)]
pub struct BlobMemo {
    inner: std::sync::Mutex<MemoInner>,
    /// Reads of missing entries in progress: readers that miss one together (right after a
    /// publish) wait for the first one's read, not each hold a copy of the blob.
    reads: artifactd_plugin_api::flight::Flights<(i64, String)>,
}

#[derive(Debug, Default)]
struct MemoInner {
    bytes: usize,
    /// (repo id, path) → (generation, content, the store's ETag).
    entries: std::collections::HashMap<(i64, String), (i64, bytes::Bytes, Option<String>)>,
}

impl BlobMemo {
    fn get(&self, key: &MemoKey) -> Option<(bytes::Bytes, Option<String>)> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (generation, bytes, etag) = inner.entries.get(&key.slot)?;
        (*generation == key.generation).then(|| (bytes.clone(), etag.clone()))
    }

    fn put(&self, key: MemoKey, bytes: bytes::Bytes, etag: Option<String>) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.bytes + bytes.len() > MEMO_MAX_TOTAL {
            // Entries of older generations are the likely bulk; a full reset is rare and cheap.
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.bytes += bytes.len();
        if let Some((_, old, _)) = inner
            .entries
            .insert(key.slot, (key.generation, bytes, etag))
        {
            inner.bytes -= old.len();
        }
    }
}

/// Where a provider's [`BlobRef::Derived`] paths are read: its store, and the memo with the
/// repo and generation the request read (`None`: no memo).
#[derive(Clone, Copy)]
pub struct Derived<'a> {
    /// The provider's and repo's store.
    pub store: &'a dyn ObjectStore,
    /// The memo, the repo id and its generation.
    pub memo: Option<(&'a BlobMemo, i64, i64)>,
}

struct MemoKey {
    /// (repo id, path).
    slot: (i64, String),
    generation: i64,
}

/// Renders `resp` for a request with `method` and `req` headers. `derived` is where the
/// provider's [`BlobRef::Derived`] paths are read; `content` is the whole blob store.
///
/// # Errors
/// Storage failures (500), except a missing blob (404).
pub async fn render(
    method: &Method,
    req: &HeaderMap,
    resp: ServeResponse,
    content: &dyn ObjectStore,
    derived: Derived<'_>,
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
            let gzip = compressible(&headers, bytes.len()) && accepts_gzip(req);
            if compressible(&headers, bytes.len()) {
                append_vary(&mut headers, "Accept-Encoding");
            }
            if gzip && let Some(etag) = headers.get(ETAG).and_then(|e| e.to_str().ok()) {
                // A strong ETag names one representation: the gzip one gets its own.
                let tagged = match etag.strip_suffix('"') {
                    Some(stem) => format!("{stem}-gzip\""),
                    None => format!("{etag}-gzip"),
                };
                if let Ok(v) = HeaderValue::from_str(&tagged) {
                    headers.insert(ETAG, v);
                }
            }
            if status == StatusCode::OK
                && let Some(etag) = headers.get(ETAG)
                && etag_matches(req, etag)
            {
                return Ok(not_modified(headers));
            }
            let bytes = if gzip {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                gzip_bytes(&bytes)
            } else {
                bytes
            };
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
                BlobRef::Derived(p) => (derived.store, p.clone(), None),
                other => {
                    return Err(ApiError::internal(
                        "serve hook",
                        artifactd_plugin_api::Error::internal_msg(format!(
                            "unsupported blob reference {other:?}"
                        )),
                    ));
                }
            };
            let memo = match (&blob, derived.memo) {
                (BlobRef::Derived(p), Some((memo, repo_id, generation))) => Some((
                    memo,
                    MemoKey {
                        slot: (repo_id, p.to_string()),
                        generation,
                    },
                )),
                _ => None,
            };
            let mut kept = memo.as_ref().and_then(|(m, k)| m.get(k));
            let (size, stored_etag) = match &kept {
                Some((bytes, etag)) => (bytes.len() as u64, etag.clone()),
                None => match store.head(&path).await {
                    Ok(m) => (m.size, m.e_tag),
                    Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => {
                        return Err(ApiError::not_found(
                            "The file is listed but its content is missing.",
                        ));
                    }
                    Err(e) => return Err(ApiError::internal("blob lookup failed", e)),
                },
            };
            let etag = etag.or_else(|| {
                stored_etag.as_deref().and_then(|t| {
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
            let mut _reading = None;
            if let Some((m, k)) = &memo
                && range.is_none()
                && size <= MEMO_MAX_BLOB
            {
                // Readers that miss a blob together (right after a publish) read it once; the
                // others wait and take it from the memo.
                while kept.is_none() {
                    if let Some(leader) = m.reads.join(&k.slot).await {
                        _reading = Some(leader);
                        break;
                    }
                    kept = m.get(k);
                }
            }
            if let Some((bytes, _)) = kept {
                let part = match range {
                    Some((a, b)) => bytes.slice(
                        usize::try_from(a).unwrap_or(usize::MAX)
                            ..=usize::try_from(b).unwrap_or(usize::MAX),
                    ),
                    None => bytes,
                };
                return Ok(with_headers(status, headers, Body::from(part)));
            }
            let mut opts = GetOptions::default();
            if let Some((a, b)) = range {
                opts.range = Some(GetRange::Bounded(a..b + 1));
            }
            let got = store
                .get_opts(&path, opts)
                .await
                .map_err(|e| ApiError::internal("blob read failed", e))?;
            if let Some((memo, key)) = memo
                && range.is_none()
                && size <= MEMO_MAX_BLOB
            {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| ApiError::internal("blob read failed", e))?;
                if bytes.len() as u64 == size {
                    memo.put(key, bytes.clone(), stored_etag);
                }
                return Ok(with_headers(status, headers, Body::from(bytes)));
            }
            let body = match got.payload {
                GetResultPayload::File(file, _) => file_body(file, got.range),
                GetResultPayload::Stream(s) => Body::from_stream(s.map_err(std::io::Error::other)),
            };
            Ok(with_headers(status, headers, body))
        }
        other => Err(ApiError::internal(
            "serve hook",
            artifactd_plugin_api::Error::internal_msg(format!("unsupported body {other:?}")),
        )),
    }
}

/// How much of a local blob file one read takes.
const FILE_CHUNK: usize = 256 << 10;

/// A local blob file's bytes `range`, read in large chunks (the object store's own stream of a
/// local file reads 8 KiB per blocking task, which caps a download far below the disk's speed).
fn file_body(mut file: std::fs::File, range: std::ops::Range<u64>) -> Body {
    use std::io::Seek as _;
    use tokio::io::AsyncReadExt as _;
    // A seek only moves the file offset: no I/O to wait for.
    if let Err(e) = file.seek(std::io::SeekFrom::Start(range.start)) {
        return Body::from_stream(futures_util::stream::once(async move {
            Err::<bytes::Bytes, _>(e)
        }));
    }
    let left = range.end.saturating_sub(range.start);
    let first = Some((tokio::fs::File::from_std(file), left));
    let stream = futures_util::stream::unfold(first, |state| async move {
        let (mut f, left) = state?;
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; FILE_CHUNK.min(usize::try_from(left).unwrap_or(FILE_CHUNK))];
        match f.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than its recorded size",
                )),
                None,
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some((f, left - n as u64))))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(stream)
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

    async fn get(
        store: &dyn ObjectStore,
        memo: &BlobMemo,
        generation: i64,
        range: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = HeaderMap::new();
        if let Some(r) = range {
            req.insert(RANGE, HeaderValue::from_str(r).unwrap());
        }
        let resp = ServeResponse::blob(
            "application/gzip",
            BlobRef::Derived(BlobPath::from("dists/d/Packages.gz")),
        );
        let derived = Derived {
            store,
            memo: Some((memo, 7, generation)),
        };
        let out = match render(&Method::GET, &req, resp, store, derived).await {
            Ok(out) => out,
            Err(e) => return (e.status(), Vec::new()),
        };
        let status = out.status();
        let body = axum::body::to_bytes(out.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn small_derived_blobs_are_kept_per_generation() {
        use artifactd_plugin_api::object_store::memory::InMemory;
        let store = InMemory::new();
        let path = BlobPath::from("dists/d/Packages.gz");
        store
            .put(&path, bytes::Bytes::from_static(b"0123456789").into())
            .await
            .unwrap();
        let memo = BlobMemo::default();
        assert_eq!(get(&store, &memo, 1, None).await.1, b"0123456789");
        // Gone from the store: the same generation is still answered from memory, ranges too.
        store.delete(&path).await.unwrap();
        assert_eq!(get(&store, &memo, 1, None).await.1, b"0123456789");
        assert_eq!(
            get(&store, &memo, 1, Some("bytes=2-4")).await,
            (StatusCode::PARTIAL_CONTENT, b"234".to_vec())
        );
        // A new generation reads the store again.
        assert_eq!(get(&store, &memo, 2, None).await.0, StatusCode::NOT_FOUND);
    }
}
