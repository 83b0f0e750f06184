//! A loopback TCP proxy that a test can cut and restore like a service restart.

use std::time::Duration;

/// A loopback TCP proxy in front of a service (a database), which a test can cut and restore
/// like a service restart: `stop` refuses new connections and drops every open one.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    target: String,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Debug, Default)]
struct ProxyState {
    generation: std::sync::atomic::AtomicU64,
    streams: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

impl TcpProxy {
    /// Proxies a free loopback port to `target` (`host:port`).
    pub fn start(target: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy port");
        let port = listener.local_addr().expect("proxy addr").port();
        let me = Self {
            port,
            target: target.to_owned(),
            state: std::sync::Arc::default(),
        };
        me.serve(listener);
        me
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: std::net::TcpListener) {
        use std::sync::atomic::Ordering;
        let state = self.state.clone();
        let target = self.target.clone();
        let generation = state.generation.load(Ordering::SeqCst);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.generation.load(Ordering::SeqCst) != generation {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let pipes = [
                    (client.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), client.try_clone()),
                ];
                if let Ok(mut streams) = state.streams.lock() {
                    streams.extend([client, upstream]);
                }
                for (from, to) in pipes {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut from, &mut to);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
    }

    /// Refuses new connections and drops the open ones.
    pub fn stop(&self) {
        use std::sync::atomic::Ordering;
        self.state.generation.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop so that it sees the new generation and drops the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Ok(mut streams) = self.state.streams.lock() {
            for s in streams.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        // The listener closes when its thread returns.
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the proxy still accepts connections");
    }

    /// Accepts connections again on the same port.
    pub fn resume(&self) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("rebind proxy");
        self.serve(listener);
    }
}
