//! A TLS front on loopback (nginx with a certificate made for the test), as a production
//! server sits behind one: for clients that must speak HTTPS.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::{run, tool};

/// nginx terminating TLS on a free loopback port and passing each request, streamed, to a
/// plain-HTTP server; stopped on drop.
#[derive(Debug)]
pub struct TlsFront {
    child: Child,
    /// The front's port.
    pub port: u16,
    /// The certificate clients must trust (for `127.0.0.1`).
    pub cert: PathBuf,
}

impl TlsFront {
    /// A front for `upstream` (`127.0.0.1:PORT`), its files in `dir`.
    pub fn start(upstream: &str, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("front folder");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        run(tool("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    client_max_body_size 0;\n    location / {{\n      proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n      proxy_request_buffering off;\n      proxy_set_header Host $http_host;\n    }}\n  }}\n}}\n",
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .expect("nginx conf");
        let child = tool("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx");
        // Killed on drop, also when it never listens.
        let front = Self { child, port, cert };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return front;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not listen on {port}");
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
