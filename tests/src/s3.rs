//! A real S3-compatible server for the storage tests.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use crate::clients;

/// A real S3-compatible server (moto) on `127.0.0.1:0`, stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts one.
    pub fn start() -> Self {
        let c = clients();
        let mut child = Command::new(c.venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut endpoint = None;
        for _ in 0..20 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(at) = line.find("Running on http://") {
                endpoint = Some(line[at + "Running on ".len()..].trim().to_owned());
                break;
            }
        }
        let endpoint = endpoint.expect("moto_server did not say where it listens");
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Self { child, endpoint }
    }

    /// An `S3_URL` for `bucket` on this server.
    pub fn url(&self, bucket: &str) -> String {
        self.endpoint
            .replacen("http://", "http://testkey:testsecret@", 1)
            + "/"
            + bucket
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
