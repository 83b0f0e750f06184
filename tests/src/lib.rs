//! The end-to-end harness: a [`Server`] owns a real `artifactd` process on `127.0.0.1:0` with its
//! own temporary data folder, and speaks HTTP to it; nothing is shared between tests.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// The folder the workspace's binaries are built into (next to this test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> (tests) or target/<profile>/bench → target/<profile>
    let dir = exe.parent().expect("target profile folder");
    if dir.ends_with("deps") {
        dir.parent().expect("target profile folder").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of the workspace, which `cargo test --workspace` builds before running tests.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing; run the suite with `cargo test --workspace`, which builds it",
        p.display()
    );
    p
}

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

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A gzip member with the given payload bytes (enough for magic-number checks).
pub fn fake_gzip(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    v.extend_from_slice(payload);
    v
}

/// The Python clients (pip, uv, twine) in one virtualenv shared by the whole run, created on
/// first use under the target folder from the package index; pinned where a test needs it.
#[derive(Debug)]
pub struct Clients {
    venv: PathBuf,
}

/// Pins: twine 6.2 and later accept `--skip-existing` only for pypi.org.
/// `moto[server]` is the S3-compatible server the storage tests run against; `schemathesis`
/// checks the live JSON API against its OpenAPI document.
const CLIENT_REQUIREMENTS: &[&str] = &[
    "pip>=25",
    "uv>=0.5",
    "twine==6.1.0",
    "moto[server]>=5",
    "schemathesis==4.32.5",
];

fn ensure_clients() -> Clients {
    let venv = bin_dir().join("e2e-clients");
    let marker = venv.join("artifactd-clients.txt");
    let want = CLIENT_REQUIREMENTS.join("\n");
    let lock = bin_dir().join("e2e-clients.lock");
    // Several test processes may race here; a directory is created atomically.
    let mut waited = 0;
    while std::fs::create_dir(&lock).is_err() {
        std::thread::sleep(Duration::from_millis(200));
        waited += 1;
        assert!(waited < 1500, "timed out waiting for {}", lock.display());
    }
    let ready = std::fs::read_to_string(&marker).is_ok_and(|m| m == want);
    let result = std::panic::catch_unwind(|| {
        if !ready {
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(CLIENT_REQUIREMENTS)
                .env_remove("PIP_FIND_LINKS"));
            std::fs::write(&marker, &want).expect("marker");
        }
    });
    let _ = std::fs::remove_dir(&lock);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    Clients { venv }
}

/// The shared clients.
pub fn clients() -> &'static Clients {
    static CLIENTS: std::sync::OnceLock<Clients> = std::sync::OnceLock::new();
    CLIENTS.get_or_init(ensure_clients)
}

impl Clients {
    /// A command from the clients' venv (`pip`, `uv`, `twine`), with the machine's pip
    /// configuration kept out.
    pub fn cmd(&self, tool: &str, scratch: &Path) -> Command {
        let mut c = Command::new(self.venv.join("bin").join(tool));
        c.env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("UV_INDEX_URL")
            .env_remove("UV_DEFAULT_INDEX")
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("UV_NO_CONFIG", "1")
            .env("UV_CACHE_DIR", scratch.join("uv-cache"))
            .env("PIP_CACHE_DIR", scratch.join("pip-cache"))
            .env("HOME", scratch);
        c
    }

    /// `pip --python PY`: the shared pip installing into another environment.
    pub fn pip(&self, scratch: &Path, python: &Path) -> Command {
        let mut c = self.cmd("pip", scratch);
        c.arg("--python").arg(python);
        c
    }

    /// `twine upload --non-interactive --repository-url URL -u __token__ -p TOKEN [EXTRA…] FILES…`.
    pub fn twine_upload(
        &self,
        scratch: &Path,
        url: &str,
        token: &str,
        extra: &[&str],
        files: &[String],
    ) -> Command {
        let mut c = self.cmd("twine", scratch);
        c.args([
            "upload",
            "--non-interactive",
            "--repository-url",
            url,
            "-u",
            "__token__",
            "-p",
            token,
        ])
        .args(extra)
        .args(files);
        c
    }

    /// `uv publish --publish-url URL -u __token__ -p TOKEN [EXTRA…] FILES…`.
    pub fn uv_publish(
        &self,
        scratch: &Path,
        url: &str,
        token: &str,
        extra: &[&str],
        files: &[String],
    ) -> Command {
        let mut c = self.cmd("uv", scratch);
        c.args([
            "publish",
            "--publish-url",
            url,
            "-u",
            "__token__",
            "-p",
            token,
        ])
        .args(extra)
        .args(files);
        c
    }

    /// A new, empty virtualenv at `dir` (made by uv, so it takes milliseconds); returns its python.
    pub fn fresh_venv(&self, dir: &Path, scratch: &Path) -> PathBuf {
        run(self.cmd("uv", scratch).arg("venv").arg("--quiet").arg(dir));
        dir.join("bin/python")
    }
}

/// Runs a command and returns (success, stdout + stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `apt-get` with a private configuration below one folder: its own state, cache, sources,
/// keyrings and status file. The machine's apt set-up is never read or touched.
#[derive(Debug)]
pub struct Apt {
    root: PathBuf,
}

impl Apt {
    /// A fresh apt root in `root`, for `arches` (the first is the native one).
    pub fn new(root: &Path, arches: &[&str]) -> Self {
        for d in [
            "etc/apt/sources.list.d",
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/auth.conf.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg",
            "var/log/apt",
            "keys",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("apt dir");
        }
        std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
        std::fs::write(root.join("etc/apt/sources.list"), "").expect("sources");
        let r = root.display();
        let list: Vec<String> = arches.iter().map(|a| format!("\"{a}\";")).collect();
        let conf = format!(
            "Dir \"{r}/\";\nDir::State \"{r}/var/lib/apt/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Cache \"{r}/var/cache/apt/\";\nDir::Etc \"{r}/etc/apt/\";\nDir::Log \"{r}/var/log/apt/\";\nDir::Bin::dpkg \"/usr/bin/dpkg\";\nAPT::Architecture \"{}\";\nAPT::Architectures {{ {} }};\nAPT::Sandbox::User \"root\";\nDebug::NoLocking \"true\";\nAcquire::Languages \"none\";\nAcquire::Retries \"0\";\nAcquire::http::Proxy \"DIRECT\";\n",
            arches[0],
            list.join(" ")
        );
        std::fs::write(root.join("apt.conf"), conf).expect("apt.conf");
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds a `deb` line for `uri` with `signed-by` the key file `key` (in `keys/`).
    pub fn add_source(
        &self,
        name: &str,
        line_options: &str,
        uri: &str,
        dist: &str,
        components: &str,
    ) {
        std::fs::write(
            self.root
                .join(format!("etc/apt/sources.list.d/{name}.list")),
            format!("deb [{line_options}] {uri} {dist} {components}\n"),
        )
        .expect("source");
    }

    /// A path in `keys/`.
    pub fn key_path(&self, file: &str) -> PathBuf {
        self.root.join("keys").join(file)
    }

    /// `apt-get ARGS` with this configuration.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new("apt-get");
        c.env("APT_CONFIG", self.root.join("apt.conf"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        c
    }

    /// `apt-get update` that fails on any error or warning; returns its output.
    pub fn update(&self) -> String {
        let out = run(self.cmd().args(["update", "--error-on=any"]));
        assert!(
            !out.contains("W:") && !out.contains("E:"),
            "apt-get update warned:\n{out}"
        );
        out
    }

    /// `apt-get install --download-only -y PKGS`; returns the downloaded files' folder.
    pub fn download(&self, pkgs: &[&str]) -> PathBuf {
        run(self
            .cmd()
            .args([
                "install",
                "--download-only",
                "-y",
                "--no-install-recommends",
            ])
            .args(pkgs));
        self.root.join("var/cache/apt/archives")
    }

    /// `apt-cache policy PKG`.
    pub fn policy(&self, pkg: &str) -> String {
        let mut c = Command::new("apt-cache");
        c.env("APT_CONFIG", self.root.join("apt.conf"))
            .args(["policy", pkg]);
        run(&mut c)
    }
}

/// Builds a .deb with `dpkg-deb --build` from a tiny folder; returns (file name, bytes).
pub fn dpkg_deb(
    work: &Path,
    package: &str,
    version: &str,
    arch: &str,
    extra_control: &str,
) -> (String, Vec<u8>) {
    dpkg_deb_with(work, package, version, arch, extra_control, "gzip")
}

/// [`dpkg_deb`] with a compressor for `dpkg-deb -Z` (`gzip`, `xz`, `zstd`, `none`).
pub fn dpkg_deb_with(
    work: &Path,
    package: &str,
    version: &str,
    arch: &str,
    extra_control: &str,
    compressor: &str,
) -> (String, Vec<u8>) {
    let dir = work.join(format!("{package}-{version}-{arch}").replace(':', "_"));
    std::fs::create_dir_all(dir.join("DEBIAN")).expect("DEBIAN");
    std::fs::create_dir_all(dir.join(format!("usr/share/{package}"))).expect("payload dir");
    std::fs::write(
        dir.join(format!("usr/share/{package}/README")),
        format!("{package} {version}\n"),
    )
    .expect("payload");
    std::fs::write(
        dir.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: artifactd tests <tests@example.invalid>\n{extra_control}Description: {package} for the tests\n Built with dpkg-deb.\n"
        ),
    )
    .expect("control");
    let version_file = version.split_once(':').map_or(version, |(_, v)| v);
    let out = work.join(format!("{package}_{version_file}_{arch}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", &format!("-Z{compressor}"), "--build"])
        .arg(&dir)
        .arg(&out));
    let bytes = std::fs::read(&out).expect("read deb");
    (
        out.file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned(),
        bytes,
    )
}

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

/// A database backend for the storage-facing tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// MySQL or MariaDB at `ARTIFACTD_TEST_MYSQL_URL` (a server URL without database).
    Mysql,
    /// PostgreSQL at `ARTIFACTD_TEST_POSTGRES_URL`.
    Postgres,
}

/// The backends to test on: SQLite always; MySQL and PostgreSQL when their variables are set.
/// In CI (`CI` set) a missing variable fails the test instead of leaving a backend out.
pub fn backends() -> Vec<Backend> {
    let mut out = vec![Backend::Sqlite];
    for (b, var) in [
        (Backend::Mysql, "ARTIFACTD_TEST_MYSQL_URL"),
        (Backend::Postgres, "ARTIFACTD_TEST_POSTGRES_URL"),
    ] {
        if std::env::var_os(var).is_some() {
            out.push(b);
        } else {
            assert!(std::env::var_os("CI").is_none(), "{var} must be set in CI");
            eprintln!("{b:?} skipped: {var} is not set");
        }
    }
    out
}

/// Creates a fresh database on `backend` and returns its `DATABASE_URL` (`None` for SQLite,
/// which lives in the server's data folder).
pub fn fresh_database(backend: Backend) -> Option<String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "artifactd_t{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    match backend {
        Backend::Sqlite => None,
        Backend::Mysql => {
            let base = std::env::var("ARTIFACTD_TEST_MYSQL_URL").expect("ARTIFACTD_TEST_MYSQL_URL");
            let u = ureq::http::Uri::try_from(base.as_str()).expect("mysql url");
            let host = u.host().unwrap_or("127.0.0.1").to_owned();
            let port = u.port_u16().unwrap_or(3306).to_string();
            let user = u
                .authority()
                .and_then(|a| a.as_str().split_once('@'))
                .map_or("root", |(ui, _)| ui.split(':').next().unwrap_or("root"))
                .to_owned();
            run(Command::new("mysql").args([
                "-h",
                &host,
                "-P",
                &port,
                "-u",
                &user,
                "-e",
                &format!("CREATE DATABASE {name}"),
            ]));
            Some(format!("{}/{name}", base.trim_end_matches('/')))
        }
        Backend::Postgres => {
            let base =
                std::env::var("ARTIFACTD_TEST_POSTGRES_URL").expect("ARTIFACTD_TEST_POSTGRES_URL");
            run(Command::new("psql")
                .arg(format!("{}/postgres", base.trim_end_matches('/')))
                .args(["-q", "-c", &format!("CREATE DATABASE {name}")]));
            Some(format!("{}/{name}", base.trim_end_matches('/')))
        }
    }
}

impl Options {
    /// On a fresh database of `backend`.
    pub fn on(self, backend: Backend) -> Self {
        match fresh_database(backend) {
            Some(url) => self.arg("--database").arg(url),
            None => self,
        }
    }
}

/// Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), one
/// browser per test.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session at `width` × `height`.
    pub fn start(width: u32, height: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver package) must be installed");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if agent
                .get(&format!("{base}/status"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                ready = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(ready, "chromedriver did not start");
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", format!("--window-size={width},{height}")],
            }
        }}});
        let mut me = Self {
            driver,
            base,
            session: String::new(),
            agent,
        };
        let v = me.call("POST", "/session", Some(caps));
        me.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_owned();
        me
    }

    fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .send_json(b.unwrap_or_else(|| serde_json::json!({}))),
        };
        let mut resp = resp.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
        assert!(status < 300, "WebDriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(serde_json::json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(serde_json::json!({ "script": script, "args": [] })),
        )
    }

    /// The visible text of the page.
    pub fn text(&self) -> String {
        self.eval("return document.body.innerText;")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Resizes the window.
    pub fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.session_path("/window/rect"),
            Some(serde_json::json!({ "width": width, "height": height })),
        );
    }

    /// Clicks the first element matching the CSS selector `css`.
    pub fn click(&self, css: &str) {
        self.click_by("css selector", css);
    }

    /// Clicks the first element matching `xpath`.
    pub fn click_xpath(&self, xpath: &str) {
        self.click_by("xpath", xpath);
    }

    /// Waits up to 10 s for the page text to contain `needle`; returns the text.
    pub fn wait_for_text(&self, needle: &str) -> String {
        let text = self.poll(|| Some(self.text()).filter(|t| t.contains(needle)));
        text.unwrap_or_else(|| panic!("the page never showed {needle:?}:\n{}", self.text()))
    }

    /// Waits up to 10 s for `script` to return `expected` (for effects of asynchronous page
    /// code, such as a clipboard write settling).
    pub fn wait_for_eval(&self, script: &str, expected: serde_json::Value) {
        if self
            .poll(|| Some(()).filter(|()| self.eval(script) == expected))
            .is_none()
        {
            panic!("{script} never returned {expected}: {}", self.eval(script));
        }
    }

    fn poll<T>(&self, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
        for _ in 0..200 {
            if let Some(v) = ready() {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn click_by(&self, using: &str, css: &str) {
        let el = self.call(
            "POST",
            &self.session_path("/element"),
            Some(serde_json::json!({ "using": using, "value": css })),
        );
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element {css}: {el}"))
            .to_owned();
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            None,
        );
    }

    /// Accepts an open `confirm()` dialog.
    pub fn accept_dialog(&self) {
        self.call("POST", &self.session_path("/alert/accept"), None);
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot folder");
        }
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where tests leave files for people to look at (screenshots): `<target>/test-output/<area>`.
pub fn output_dir(area: &str) -> PathBuf {
    let dir = bin_dir()
        .parent()
        .map_or_else(bin_dir, Path::to_path_buf)
        .join("test-output")
        .join(area);
    std::fs::create_dir_all(&dir).expect("test output folder");
    dir
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
