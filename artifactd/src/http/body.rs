//! Request bodies: an idle timeout while a handler reads, and a clean end for what it did not.
//!
//! hyper does not drain a request body that a handler left unread: it reads one more chunk
//! and closes the connection. A client still sending (a refused upload) then gets a reset
//! instead of the answer, and a client that kept the connection for its next request finds
//! it cut. So a response to a partly read body says `Connection: close`, and the rest of
//! the body is read and dropped for a bounded time in the background while the answer goes
//! out, as nginx's lingering close does.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, HttpBody as _};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http::HeaderValue;
use http::header::{CONNECTION, EXPECT};

use super::{ApiError, AppState};
use crate::conn::Watch;

/// How long the unread rest of a body is read and dropped after the response.
const LINGER_TIME: Duration = Duration::from_secs(10);
/// How much of it at most.
const LINGER_BYTES: u64 = 1 << 30;

/// How a handler left its request body.
#[derive(Default)]
enum BodyEnd {
    /// Read to its end: the connection can carry the next request.
    #[default]
    Read,
    /// Failed or timed out: nothing more can be read.
    Failed,
    /// Dropped before its end; `polled` says whether any of it was asked for.
    Left { rest: BodyDataStream, polled: bool },
}

type Shared = Arc<Mutex<BodyEnd>>;

/// Why a request body was cut off; the upload reader answers both with 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum BodyTimeout {
    /// Nothing arrived for the read timeout.
    #[error("the request body stalled")]
    Stalled,
    /// Bytes kept coming, slower than the minimum rate allows.
    #[error("the request body arrived slower than {0} bytes per second")]
    TooSlow(u64),
}

impl BodyTimeout {
    /// The cause of a read error, when it was one of these.
    pub(super) fn of(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        // The body stream wraps it: in axum's error, in I/O errors (whose `source` skips the
        // wrapped error itself, so `get_ref` it is).
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(found) = err.downcast_ref::<Self>() {
                return Some(*found);
            }
            cur = match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => err.source(),
            };
        }
        None
    }

    fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, self)
    }
}

/// The body a handler sees.
struct Guarded {
    inner: Option<BodyDataStream>,
    polled: bool,
    /// A poll is pending: the idle timer runs.
    waiting: bool,
    timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    end: Shared,
    /// The minimum rate: by `started + timeout + received / min_rate` the body must have
    /// arrived so far, so a client that trickles bytes cannot reset the idle timer forever.
    started: tokio::time::Instant,
    received: u64,
    min_rate: u64,
}

impl Guarded {
    fn finish(&mut self, how: BodyEnd) {
        self.inner = None;
        *self.end.lock().unwrap_or_else(PoisonError::into_inner) = how;
    }

    /// When the bytes received so far would have been too slow.
    fn rate_deadline(&self) -> tokio::time::Instant {
        let allowed = Duration::from_secs_f64(self.received as f64 / self.min_rate.max(1) as f64);
        self.started + self.timeout + allowed
    }

    fn fail(&mut self, why: BodyTimeout) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.finish(BodyEnd::Failed);
        Poll::Ready(Some(Err(why.into_io())))
    }
}

impl Stream for Guarded {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let rate_deadline = this.rate_deadline();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        if !this.waiting {
            // The time the handler spends between reads does not count towards the idle
            // timeout; the rate deadline counts from the start.
            let deadline = (tokio::time::Instant::now() + this.timeout).min(rate_deadline);
            this.idle.as_mut().reset(deadline);
            this.waiting = true;
        }
        let polled = inner.poll_next_unpin(cx);
        if polled.is_ready() {
            this.waiting = false;
        }
        match polled {
            Poll::Ready(Some(Ok(bytes))) => {
                let end = inner.is_end_stream();
                this.received += bytes.len() as u64;
                crate::metrics::uploaded(bytes.len() as u64);
                if !end && tokio::time::Instant::now() > this.rate_deadline() {
                    return this.fail(BodyTimeout::TooSlow(this.min_rate));
                }
                if end {
                    this.finish(BodyEnd::Read);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(BodyEnd::Failed);
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                this.finish(BodyEnd::Read);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let why = if tokio::time::Instant::now() >= this.rate_deadline() {
                    BodyTimeout::TooSlow(this.min_rate)
                } else {
                    BodyTimeout::Stalled
                };
                this.fail(why)
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take() {
            let polled = self.polled;
            *self.end.lock().unwrap_or_else(PoisonError::into_inner) =
                BodyEnd::Left { rest, polled };
        }
    }
}

/// Gives every request body an idle timeout (a body that sends nothing for the configured
/// time fails with a timed-out I/O error, which the upload reader answers with 408), and
/// ends a response to a body that was not read to its end as the module says.
pub(super) async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    // RFC 9112 §6.3: both framing headers is how requests are smuggled past a proxy; hyper
    // already closes the connection after it, unread.
    if req
        .extensions()
        .get::<Watch>()
        .is_some_and(Watch::next_request_is_ambiguous)
    {
        let mut resp = ApiError::bad_request(
            "The request has both Content-Length and Transfer-Encoding; send only one of them.",
        )
        .into_response();
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let timeout = st.read_timeout();
    let expects_continue = req
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let end = Shared::default();
    let (parts, body) = req.into_parts();
    let guarded = Guarded {
        inner: Some(body.into_data_stream()),
        polled: false,
        waiting: false,
        timeout,
        idle: Box::pin(tokio::time::sleep(timeout)),
        end: end.clone(),
        started: tokio::time::Instant::now(),
        received: 0,
        min_rate: st.min_upload_rate(),
    };
    let mut resp = next
        .run(Request::from_parts(parts, Body::from_stream(guarded)))
        .await;
    let end = std::mem::take(&mut *end.lock().unwrap_or_else(PoisonError::into_inner));
    match end {
        BodyEnd::Read => return resp,
        BodyEnd::Failed => {}
        BodyEnd::Left { rest, polled } => {
            // A client waiting for "100 Continue" has sent nothing yet: asking for the body
            // would make hyper invite it to send what is then thrown away.
            if polled || !expects_continue {
                tokio::spawn(linger(rest, timeout.min(LINGER_TIME)));
            }
        }
    }
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads and drops the rest of a body, for at most [`LINGER_TIME`] and [`LINGER_BYTES`], with
/// `idle` as the longest pause; then hyper closes the connection.
async fn linger(mut rest: BodyDataStream, idle: Duration) {
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut read = 0u64;
    while read < LINGER_BYTES {
        let next = tokio::time::timeout(idle, rest.next());
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Ok(Some(Ok(bytes)))) => read += bytes.len() as u64,
            _ => break,
        }
    }
}
