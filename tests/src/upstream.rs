//! A small HTTP server on 127.0.0.1:0 that serves what a test sets, path by path, counts the
//! requests, and can fail on purpose: an upstream index for the proxy tests that a test
//! controls to the byte (HTML-only pages, chosen upload times, tampered files, hangs).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a path answers.
#[derive(Debug, Clone)]
pub enum Route {
    /// 200 with this content type and body.
    Ok(String, Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// Nothing, ever (the connection stays open).
    Hang,
    /// 200 and a `Content-Length` for the whole body, then only the first bytes and a close.
    Cut(String, Vec<u8>, usize),
}

#[derive(Debug, Default)]
struct State {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct Upstream {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Upstream {
    /// Starts one with no routes (everything is 404).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || answer(conn, &s));
            }
        });
        Self { port, state, stop }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sets what `path` answers.
    pub fn set(&self, path: &str, route: Route) {
        self.lock().routes.insert(path.to_owned(), route);
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let route = {
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s.hits.entry(path.clone()).or_default() += 1;
        s.routes.get(&path).cloned()
    };
    let mut conn = conn;
    let head = |status: u16, ct: &str, len: usize| {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    match route {
        None => {
            let _ = conn.write_all(head(404, "text/plain", 0).as_bytes());
        }
        Some(Route::Status(code)) => {
            let _ = conn.write_all(head(code, "text/plain", 0).as_bytes());
        }
        Some(Route::Ok(ct, body)) => {
            let _ = conn.write_all(head(200, &ct, body.len()).as_bytes());
            let _ = conn.write_all(&body);
        }
        Some(Route::Cut(ct, body, keep)) => {
            let _ = conn.write_all(head(200, &ct, body.len()).as_bytes());
            let _ = conn.write_all(&body[..keep.min(body.len())]);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(Route::Hang) => std::thread::sleep(Duration::from_secs(120)),
    }
}
