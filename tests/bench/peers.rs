//! The servers and tools measured beside artifactd: installed when missing, started on free
//! loopback ports, stopped on drop.

use super::*;

pub(crate) fn sh(cmd: &mut Command) -> String {
    run(cmd)
}

/// Installs Debian packages that are missing.
pub(crate) fn ensure_debian(pkgs: &[&str]) {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !try_run(Command::new("dpkg").args(["-s", p])).0)
        .collect();
    if !missing.is_empty() {
        eprintln!("installing {missing:?} from Debian");
        sh(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"));
    }
}

/// A venv with the Python peers.
pub(crate) fn peers_venv() -> PathBuf {
    let venv = bin_dir().join("bench-peers");
    if !["pypi-server", "devpi-server", "devpi", "twine", "uv"]
        .iter()
        .all(|b| venv.join("bin").join(b).exists())
    {
        sh(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        sh(Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "-q",
                "pypiserver==2.3.2",
                "devpi-server==6.20.3",
                "devpi-client==7.3.0",
                "twine==6.1.0",
                "uv",
            ])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"));
    }
    venv
}

/// devpi is populated through its upload API (about 5 wheels/s here); above this N that would
/// take longer than the rest of the run, and devpi is left out.
pub(crate) const DEVPI_MAX_N: usize = 1_000;
/// Packages added one at a time to each published APT repo; the median time counts.
pub(crate) const PUBLISH_ROUNDS: usize = 5;

/// devpi-server with a private index `root/dev` (no PyPI mirror) holding `wheels`, uploaded
/// with twine; returns the server, the index URL and the upload time.
pub(crate) fn devpi(
    venv: &Path,
    scratch: &Path,
    n: usize,
    dir: &Path,
    wheels: &[String],
) -> (Proc, String, f64) {
    let server_dir = scratch.join(format!("devpi-{n}"));
    let client_dir = scratch.join(format!("devpi-client-{n}"));
    sh(Command::new(venv.join("bin/devpi-init"))
        .arg("--serverdir")
        .arg(&server_dir)
        .arg("--no-root-pypi"));
    let port = free_port();
    let proc = Proc(
        Command::new(venv.join("bin/devpi-server"))
            .arg("--serverdir")
            .arg(&server_dir)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("devpi-server"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{url}/+api"));
    let client = |args: &[&str]| {
        sh(Command::new(venv.join("bin/devpi"))
            .args(args)
            .env("DEVPI_CLIENTDIR", &client_dir));
    };
    client(&["use", &url]);
    client(&["login", "root", "--password", ""]);
    client(&["index", "-c", "dev", "bases=", "volatile=True"]);
    let index = format!("{url}/root/dev");
    let secs = timed(|| {
        sh(Command::new(venv.join("bin/twine"))
            .args(["upload", "--disable-progress-bar", "--non-interactive"])
            .args([
                "--repository-url",
                &format!("{index}/"),
                "-u",
                "root",
                "-p",
                "",
            ])
            .args(wheels.iter().map(|w| dir.join(w))));
    });
    (proc, index, secs)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

pub(crate) fn wait_for(url: &str) {
    for _ in 0..300 {
        if artifactd_tests::tool("curl")
            .args(["-fs", "-o", "/dev/null", url])
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered");
}

/// A child process stopped on drop: SIGTERM, so that a master process (nginx) takes its
/// workers with it, then SIGKILL after 5 s.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx serving `root` on a free port, with access logging off (the static limit).
pub(crate) fn nginx(root: &Path, scratch: &Path) -> (Proc, String) {
    let port = free_port();
    let conf = scratch.join(format!("nginx-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 2;\npid {scratch}/nginx-{port}.pid;\nerror_log {scratch}/nginx-{port}.err;\nevents {{ worker_connections 1024; }}\nhttp {{\n  include /etc/nginx/mime.types;\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n  client_body_temp_path {scratch}/nginx-body;\n  proxy_temp_path {scratch}/nginx-proxy;\n  fastcgi_temp_path {scratch}/nginx-fcgi;\n  uwsgi_temp_path {scratch}/nginx-uwsgi;\n  scgi_temp_path {scratch}/nginx-scgi;\n  server {{ listen 127.0.0.1:{port}; root {root}; autoindex on; }}\n}}\n",
            scratch = scratch.display(),
            root = root.display()
        ),
    )
    .expect("nginx conf");
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(scratch.join(format!("nginx-{port}.err")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let url = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{url}/"));
    (Proc(child), url)
}

/// `wrk` with 2 threads and 32 connections: (requests/s, p99 ms, non-2xx count).
pub(crate) fn wrk(url: &str, secs: u64, headers: &[&str]) -> (f64, f64, u64) {
    let (rps, p99, bad, _) = wrk_with(url, secs, 32, headers);
    (rps, p99, bad)
}

/// `wrk` with 2 threads and `conns` connections: (requests/s, p99 ms, non-2xx count, socket
/// errors).
pub(crate) fn wrk_with(
    url: &str,
    secs: u64,
    conns: usize,
    headers: &[&str],
) -> (f64, f64, u64, u64) {
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{conns}"),
        &format!("-d{secs}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    for h in headers {
        c.args(["-H", h]);
    }
    let out = sh(c.arg(url));
    let rps = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| parse_duration_ms(v.trim()))
        .unwrap_or(f64::NAN);
    let bad = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let errors = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    (rps, p99, bad, errors)
}

pub(crate) fn parse_duration_ms(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}
