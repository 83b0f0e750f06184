//! [`Server`]: a real `artifactd` process on `127.0.0.1:0` with its own temporary data folder,
//! and the HTTP helpers the tests speak to it with.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::bin;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case (the last value wins).
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `error` sentence of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Binary name in the target folder.
    pub bin: String,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bin: "artifactd".to_owned(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Options {
    /// The example binary with the tar provider.
    pub fn with_tar() -> Self {
        Self {
            bin: "artifactd-with-tar".to_owned(),
            ..Self::default()
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

/// A running server with its own data folder.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: TempDir,
    opts: Options,
    agent: ureq::Agent,
    /// The admin token the server was started with (`ARTIFACTD_ADMIN_TOKEN`); the plain write
    /// helpers send it.
    pub token: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

impl Server {
    /// `artifactd` with the built-in providers on SQLite and a local folder.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// A server with options.
    pub fn start_with(opts: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("artifactd-e2e-")
            .tempdir()
            .expect("temp dir");
        let mut s = Self {
            child: None,
            addr: String::new(),
            dir,
            opts,
            agent: agent(),
            token: format!(
                "adt_e2e_{}_{:x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let mut cmd = Command::new(bin(&self.opts.bin));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.opts.args)
            .env_remove("DATABASE_URL")
            .env_remove("S3_URL")
            .envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .env("ARTIFACTD_ADMIN_TOKEN", &self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        assert!(
            line.starts_with("artifactd listening on http://"),
            "the server did not start: {line:?}\n{}",
            self.log()
        );
        self.addr = line
            .trim()
            .trim_start_matches("artifactd listening on http://")
            .to_owned();
        self.child = Some(child);
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch folder owned by this server's test.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    /// Stops the process (SIGKILL) and starts it again on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Kills the process.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running server").id()
    }

    /// The server's resident memory in KiB: (`VmRSS` now, `VmHWM` peak so far).
    pub fn rss_kib(&self) -> (u64, u64) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .expect("memory field")
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU seconds the server has used (user and system), from `/proc/PID/stat`.
    pub fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("proc stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Runs `artifactd ARGS…` (a task such as `gc` or `fsck`) on this server's data with its
    /// environment; its exit code and what it printed (stdout, then stderr: warnings and
    /// errors).
    pub fn task(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(bin(&self.opts.bin))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("S3_URL")
            .envs(self.opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            // The report, and warnings; not the progress lines.
            .env("ARTIFACTD_LOG", "warn")
            .output()
            .expect("run the artifactd task");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// `artifactd ARGS…` as [`Server::task`], which must succeed; what it printed.
    pub fn task_ok(&self, args: &[&str]) -> String {
        let (code, out) = self.task(args);
        assert_eq!(code, 0, "artifactd {args:?}: {out}");
        out
    }

    /// `rpcli -s URL` with the admin token.
    pub fn rpcli(&self) -> Command {
        let mut c = Command::new(bin("rpcli"));
        c.arg("-s")
            .arg(self.url(""))
            .env("ARTIFACTD_TOKEN", &self.token)
            .env_remove("ARTIFACTD_URL");
        c
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn read(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut resp = resp.expect("HTTP request failed");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("read body");
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    /// `GET path` with headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::read(req.call())
    }

    /// `HEAD path`.
    pub fn head(&self, path: &str) -> Resp {
        Self::read(self.agent.head(self.url(path)).call())
    }

    /// `POST path` with a multipart form: text fields and one file in `file_field`, as admin.
    pub fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Resp {
        self.post_multipart_as(Some(&self.token), path, fields, file_field, filename, bytes)
    }

    /// [`Server::post_multipart`] with another token (`None`: anonymous).
    pub fn post_multipart_as(
        &self,
        token: Option<&str>,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Resp {
        let boundary = "artifactd-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.post_raw_as(
            token,
            path,
            &format!("multipart/form-data; boundary={boundary}"),
            &body,
        )
    }

    /// `POST path` with a raw body, as admin.
    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Resp {
        self.post_raw_as(Some(&self.token), path, content_type, body)
    }

    /// `POST path` with a raw body and a token (`None`: anonymous).
    pub fn post_raw_as(
        &self,
        token: Option<&str>,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Resp {
        self.send("POST", token, path, Some(content_type), body)
    }

    /// Any request with an optional bearer token.
    pub fn send(
        &self,
        method: &str,
        token: Option<&str>,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Resp {
        let ct: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        self.send_with(method, token, path, &ct, body)
    }

    /// Any request with an optional bearer token and more headers.
    pub fn send_with(
        &self,
        method: &str,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.to_vec()).expect("request");
        Self::read(self.agent.run(req))
    }

    /// `GET path` with a token.
    pub fn get_as(&self, token: Option<&str>, path: &str) -> Resp {
        self.send("GET", token, path, None, &[])
    }

    /// `DELETE path` with a token.
    pub fn delete_as(&self, token: Option<&str>, path: &str) -> Resp {
        self.send("DELETE", token, path, None, &[])
    }

    /// A JSON call with a token.
    pub fn json_as(
        &self,
        method: &str,
        token: Option<&str>,
        path: &str,
        body: &serde_json::Value,
    ) -> Resp {
        self.send(
            method,
            token,
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    /// Creates a token through the API; returns its secret.
    pub fn create_token(&self, name: &str, scope: &str, repos: &[&str]) -> String {
        let r = self.json_as(
            "POST",
            Some(&self.token),
            "/api/v1/tokens",
            &serde_json::json!({ "name": name, "scope": scope, "repos": repos }),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["token"].as_str().expect("token").to_owned()
    }

    /// The seed's upload: `POST /addpkg?{query}` with the file in field `f`, as admin.
    pub fn addpkg(&self, query: &str, filename: &str, bytes: &[u8]) -> Resp {
        self.post_multipart(&format!("/addpkg?{query}"), &[], "f", filename, bytes)
    }

    /// [`Server::addpkg`] with another token (`None`: anonymous).
    pub fn addpkg_as(
        &self,
        token: Option<&str>,
        query: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Resp {
        self.post_multipart_as(
            token,
            &format!("/addpkg?{query}"),
            &[],
            "f",
            filename,
            bytes,
        )
    }

    /// `POST /addpkg?QUERY` with several files in the field `f` (a source package), as admin.
    pub fn addpkg_files(&self, query: &str, files: &[(&str, &[u8])]) -> Resp {
        let boundary = "artifactd-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.post_raw(
            &format!("/addpkg?{query}"),
            &format!("multipart/form-data; boundary={boundary}"),
            &body,
        )
    }

    /// Every file below the data folder with its size (to prove a refused request stored nothing).
    pub fn stored_files(&self) -> BTreeMap<String, u64> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else if let Ok(m) = e.metadata() {
                    let rel = p.strip_prefix(base).unwrap_or(&p).display().to_string();
                    out.insert(rel, m.len());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(
            &self.data_dir().join("blobs"),
            &self.data_dir().join("blobs"),
            &mut out,
        );
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `/addpkg` upload on its own agent, for threads that outlive a [`Server`] borrow (a node
/// killed mid-stream): the status, or `None` when the connection failed.
pub fn addpkg_raw(
    agent: &ureq::Agent,
    addr: &str,
    token: &str,
    query: &str,
    filename: &str,
    bytes: &[u8],
) -> Option<u16> {
    let boundary = "r4wupl0ad";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{filename}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    agent
        .post(format!("http://{addr}/addpkg?{query}"))
        .header("Authorization", format!("Bearer {token}"))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .send(&body[..])
        .ok()
        .map(|r| r.status().as_u16())
}
