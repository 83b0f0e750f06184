//! What the raw bytes of a connection show that hyper does not pass on to the service.
//!
//! hyper accepts a request with both `Content-Length` and `Transfer-Encoding: chunked`: it
//! frames the body as chunked and drops the `Content-Length` header, so the service cannot tell.
//! Behind a proxy that frames by `Content-Length` that is request smuggling (RFC 9112 §6.3), and
//! such a request must be refused. A client that sends part of a request head and then nothing
//! is dropped by hyper's header timeout without an answer; it should read `408` first.
//!
//! [`Watched`] wraps the socket and follows the request stream as hyper reads it: each head is
//! parsed with `httparse` (hyper's own parser) once complete, and its body is skipped by
//! `Content-Length` or by chunk sizes, to find the next head. [`Watch`], handed to the service
//! in each request's extensions, says which request had both framing headers. When the stream
//! stops making sense the watcher stops following it; hyper refuses such bytes itself.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The largest request head followed (hyper refuses larger ones itself).
const MAX_HEAD: usize = 64 << 10;
/// The longest chunk-size or trailer line followed.
const MAX_LINE: usize = 4 << 10;

/// Sent when a connection closes in the middle of a request head (hyper's header timeout).
const HEAD_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 75\r\n\r\n{\"error\":\"The request headers did not arrive within the server's timeout.\"}";

/// Per connection: what the watcher learnt, and how many requests the service has seen.
#[derive(Debug, Default)]
struct Shared {
    /// Heads parsed so far.
    heads: AtomicU64,
    /// The 1-based number of the head that carried both framing headers (0: none).
    smuggled: AtomicU64,
    /// Requests the service has started.
    served: AtomicU64,
}

/// A connection's watch, cloned into every request's extensions.
#[derive(Debug, Clone, Default)]
pub struct Watch(Arc<Shared>);

impl Watch {
    /// Called once per request, in order: whether this request carried both `Content-Length`
    /// and `Transfer-Encoding`.
    pub fn next_request_is_ambiguous(&self) -> bool {
        let n = self.0.served.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.smuggled.load(Ordering::SeqCst) == n
    }
}

/// Where the watcher is in the request stream.
#[derive(Debug)]
enum Framing {
    /// Collecting a head.
    Head(Vec<u8>),
    /// This many body bytes follow.
    Body(u64),
    /// A chunked body: reading a size line.
    ChunkSize(Vec<u8>),
    /// Chunk data, then its CRLF.
    ChunkData(u64),
    /// The CRLF after chunk data; how many of its bytes are left.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty one.
    Trailer(Vec<u8>),
    /// Not followed any more.
    Lost,
}

/// A socket whose request stream is followed (see the module documentation).
#[derive(Debug)]
pub struct Watched {
    io: TcpStream,
    watch: Watch,
    framing: Framing,
}

impl Watched {
    /// Wraps an accepted socket.
    pub fn new(io: TcpStream, watch: Watch) -> Self {
        Self {
            io,
            watch,
            framing: Framing::Head(Vec::new()),
        }
    }

    /// Follows the bytes hyper just read.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (next, used) = match std::mem::replace(&mut self.framing, Framing::Lost) {
                // The usual case, a whole head in one read: parsed where it lies.
                Framing::Head(head) if head.is_empty() && bytes.contains(&b'\n') => {
                    match self.parse_head(bytes) {
                        Some(Some((len, body))) => (body, len),
                        Some(None) if bytes.len() <= MAX_HEAD => {
                            (Framing::Head(bytes.to_vec()), bytes.len())
                        }
                        _ => (Framing::Lost, bytes.len()),
                    }
                }
                Framing::Head(mut head) => {
                    let take = bytes.len().min(MAX_HEAD + 1 - head.len().min(MAX_HEAD));
                    let start = head.len();
                    head.extend_from_slice(&bytes[..take]);
                    // A head ends at a line feed: parse only when one arrived.
                    let parsed = if bytes[..take].contains(&b'\n') {
                        self.parse_head(&head)
                    } else {
                        Some(None)
                    };
                    match parsed {
                        Some(Some((len, body))) => (body, len - start),
                        Some(None) if head.len() <= MAX_HEAD => (Framing::Head(head), take),
                        _ => (Framing::Lost, bytes.len()),
                    }
                }
                Framing::Body(left) => {
                    let n = left.min(bytes.len() as u64);
                    let next = if n == left {
                        Framing::Head(Vec::new())
                    } else {
                        Framing::Body(left - n)
                    };
                    (next, usize::try_from(n).unwrap_or(bytes.len()))
                }
                Framing::ChunkSize(line) => match take_line(line, bytes) {
                    Line::Partial(line, used) => (Framing::ChunkSize(line), used),
                    Line::Done(line, used) => match chunk_size(&line) {
                        Some(0) => (Framing::Trailer(Vec::new()), used),
                        Some(n) => (Framing::ChunkData(n), used),
                        None => (Framing::Lost, bytes.len()),
                    },
                    Line::TooLong => (Framing::Lost, bytes.len()),
                },
                Framing::ChunkData(left) => {
                    let n = left.min(bytes.len() as u64);
                    let next = if n == left {
                        Framing::ChunkEnd(2)
                    } else {
                        Framing::ChunkData(left - n)
                    };
                    (next, usize::try_from(n).unwrap_or(bytes.len()))
                }
                Framing::ChunkEnd(left) => match (left, bytes[0]) {
                    (2, b'\r') => (Framing::ChunkEnd(1), 1),
                    (_, b'\n') => (Framing::ChunkSize(Vec::new()), 1),
                    _ => (Framing::Lost, bytes.len()),
                },
                Framing::Trailer(line) => match take_line(line, bytes) {
                    Line::Partial(line, used) => (Framing::Trailer(line), used),
                    Line::Done(line, used) if line.is_empty() => (Framing::Head(Vec::new()), used),
                    Line::Done(_, used) => (Framing::Trailer(Vec::new()), used),
                    Line::TooLong => (Framing::Lost, bytes.len()),
                },
                Framing::Lost => (Framing::Lost, bytes.len()),
            };
            self.framing = next;
            bytes = &bytes[used.min(bytes.len())..];
        }
    }

    /// `None` for a head that is not valid, `Some(None)` for one not complete yet, else its
    /// length and how its body is framed.
    fn parse_head(&self, head: &[u8]) -> Option<Option<(usize, Framing)>> {
        let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 128];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(head, &mut headers) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Some(None),
            Err(_) => return None,
        };
        let number = self.watch.0.heads.fetch_add(1, Ordering::SeqCst) + 1;
        let mut length = None;
        let mut chunked = None;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .or(Some(u64::MAX));
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        let body = match (length, chunked) {
            (Some(_), Some(_)) => {
                // hyper answers this request and closes the connection: nothing follows.
                self.watch.0.smuggled.store(number, Ordering::SeqCst);
                Framing::Lost
            }
            (_, Some(true)) => Framing::ChunkSize(Vec::new()),
            (Some(n), None) if n != u64::MAX => Framing::Body(n),
            (None, None) => Framing::Head(Vec::new()),
            _ => Framing::Lost,
        };
        let body = match body {
            Framing::Body(0) => Framing::Head(Vec::new()),
            other => other,
        };
        Some(Some((len, body)))
    }

    /// Whether the connection stopped in the middle of a request head.
    fn mid_head(&self) -> bool {
        matches!(&self.framing, Framing::Head(h) if h.iter().any(|b| !b.is_ascii_whitespace()))
    }
}

enum Line {
    /// The line so far and the bytes used.
    Partial(Vec<u8>, usize),
    /// The line without its end, and the bytes used.
    Done(Vec<u8>, usize),
    TooLong,
}

fn take_line(mut line: Vec<u8>, bytes: &[u8]) -> Line {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&bytes[..i]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > MAX_LINE {
                Line::TooLong
            } else {
                Line::Done(line, i + 1)
            }
        }
        None if line.len() + bytes.len() > MAX_LINE => Line::TooLong,
        None => {
            line.extend_from_slice(bytes);
            Line::Partial(line, bytes.len())
        }
    }
}

/// The size of a chunk-size line (`1a;ext=v`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|b| *b == b';').next()?.trim_ascii();
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && !matches!(self.framing, Framing::Lost) {
            self.feed(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // hyper gave up on a head that never finished (its header timeout): say so before the
        // socket closes. The answer is small enough for the socket buffer; a client that is gone
        // makes the write fail, which is fine.
        if self.mid_head() {
            let _ = self.io.try_write(HEAD_TIMEOUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of `step` bytes; returns (heads, smuggled head, still followed).
    async fn follow(stream: &[u8], step: usize) -> (u64, u64, bool) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let _client = client.unwrap();
        let watch = Watch::default();
        let mut w = Watched::new(accepted.unwrap().0, watch.clone());
        for piece in stream.chunks(step) {
            w.feed(piece);
        }
        let lost = matches!(w.framing, Framing::Lost);
        (
            watch.0.heads.load(Ordering::SeqCst),
            watch.0.smuggled.load(Ordering::SeqCst),
            !lost,
        )
    }

    #[tokio::test]
    async fn follows_requests_across_bodies_and_finds_both_framing_headers() {
        let stream = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nGET /\r\n0\r\nX-T: y\r\n\r\n\
GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        for step in [1, 3, 7, stream.len()] {
            assert_eq!(follow(stream, step).await, (4, 0, true), "step {step}");
        }
        let smuggle = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        for step in [1, 5, smuggle.len()] {
            let (heads, smuggled, _) = follow(smuggle, step).await;
            assert_eq!((heads, smuggled), (2, 2), "step {step}");
        }
        // Either order of the two headers.
        let reversed =
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(follow(reversed, 2).await.1, 1);
        // Garbage is not followed further.
        assert!(!follow(b"\x00\x01 nonsense\r\n\r\n", 4).await.2);
    }

    #[tokio::test]
    async fn a_partial_head_is_mid_head_and_a_finished_one_is_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let _client = client.unwrap();
        let mut w = Watched::new(accepted.unwrap().0, Watch::default());
        assert!(!w.mid_head());
        w.feed(b"GET / HTTP/1.1\r\nHo");
        assert!(w.mid_head());
        w.feed(b"st: x\r\n\r\n");
        assert!(!w.mid_head());
    }
}
