//! The serve hook's input and output.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// A request below a repo mount that is not an upload: reads (`GET`, `HEAD`), and JSON calls
/// (`POST`, `PUT`, `DELETE` with a small JSON body) such as yanking.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeRequest {
    /// The method; for `HEAD` the host drops the body of the response.
    pub method: Method,
    /// The percent-decoded path below `/repo/<kind>/<repo>/`, without a leading `/`. The host has
    /// already refused `..` segments, empty segments and encoded slashes.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body (empty for reads; at most 1 MiB of JSON otherwise).
    pub body: Bytes,
}

impl ServeRequest {
    /// Builds a `GET` request for `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Builds a request with `method` and a JSON body.
    pub fn json(method: Method, path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        let mut r = Self::get(path);
        r.method = method;
        r.body = body.into();
        r
    }

    /// Whether this is a read.
    pub fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }

    /// Adds a header.
    pub fn with_header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// A blob a response streams from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobRef {
    /// An uploaded file, by its SHA-256 (immutable: served with long-lived caching).
    Content {
        /// Lower-case hex SHA-256.
        sha256: String,
    },
    /// A derived file in the context's `blobs` store.
    Derived(object_store::path::Path),
}

/// A response body.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ServeBody {
    /// No body.
    Empty,
    /// Bytes held in memory (index pages and other small documents).
    Bytes(Bytes),
    /// A blob the host streams, with `Range`, `HEAD` and `ETag` support.
    Blob(BlobRef),
}

/// A response from the serve hook.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeResponse {
    /// The status.
    pub status: StatusCode,
    /// Headers; the host adds `Content-Length`, `ETag` for blobs and `Accept-Ranges`.
    pub headers: HeaderMap,
    /// The body.
    pub body: ServeBody,
}

impl ServeResponse {
    /// A 200 response with an in-memory body.
    pub fn bytes(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Self {
            status: StatusCode::OK,
            headers,
            body: ServeBody::Bytes(body.into()),
        }
    }

    /// A 200 response streaming a blob.
    pub fn blob(content_type: &'static str, blob: BlobRef) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Self {
            status: StatusCode::OK,
            headers,
            body: ServeBody::Blob(blob),
        }
    }

    /// A redirect to `location` (an absolute path or URL); 301 when `permanent`, else 302.
    pub fn redirect(location: &str, permanent: bool) -> crate::Result<Self> {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(location).map_err(|_| {
            crate::Error::invalid("The redirect target is not a valid header value.")
        })?;
        headers.insert(LOCATION, value);
        Ok(Self {
            status: if permanent {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            },
            headers,
            body: ServeBody::Empty,
        })
    }

    /// Sets the status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds or replaces a header.
    pub fn with_header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}
