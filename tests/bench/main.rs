//! The benchmark suite: artifactd next to the servers people use instead (pypiserver and
//! devpi-server for PyPI, reprepro and aptly for APT) and next to the physical limits measured in the same run (nginx
//! serving the same pages as static files, `openssl speed` SHA-256, a sequential write with
//! fdatasync), on data generated here. Prints a table with ratios and writes it as JSON and CSV.
//!
//! `cargo run --release -p artifactd-tests --bin bench` (N = 100, 1,000, 10,000; 10 s per load
//! point; `-- --n 100,1000` picks sizes) or `-- --quick` (N = 100, 3 s per point, as CI runs it). Peers come from Debian's
//! packages (nginx-light, wrk, reprepro, aptly) and PyPI (pypiserver, devpi-server), installed
//! when missing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artifactd_apt::testing::{Deb, ar, tar_of};
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Options, Server, bin_dir, run, try_run};

/// One measured row.
#[derive(Debug, Clone)]
struct Row {
    group: String,
    what: String,
    n: usize,
    subject: String,
    value: f64,
    unit: &'static str,
    extra: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    checks: Vec<(String, bool, String)>,
}

impl Report {
    #[allow(clippy::too_many_arguments)] // One argument per column of the table.
    fn add(
        &mut self,
        group: &str,
        what: &str,
        n: usize,
        subject: &str,
        value: f64,
        unit: &'static str,
        extra: String,
    ) {
        eprintln!("  {group:<8} {what:<34} N={n:<6} {subject:<12} {value:>12.2} {unit} {extra}");
        self.rows.push(Row {
            group: group.into(),
            what: what.into(),
            n,
            subject: subject.into(),
            value,
            unit,
            extra,
        });
    }

    fn get(&self, group: &str, what: &str, n: usize, subject: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.group == group && r.what == what && r.n == n && r.subject == subject)
            .map(|r| r.value)
    }

    fn check(&mut self, target: String, ok: bool, detail: String) {
        eprintln!(
            "  target {}: {target} ({detail})",
            if ok { "met" } else { "MISSED" }
        );
        self.checks.push((target, ok, detail));
    }
}

struct Config {
    ns: Vec<usize>,
    secs: u64,
    large: u64,
    huge: u64,
    out: PathBuf,
}

fn sh(cmd: &mut Command) -> String {
    run(cmd)
}

/// Installs Debian packages that are missing.
fn ensure_debian(pkgs: &[&str]) {
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
fn peers_venv() -> PathBuf {
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
const DEVPI_MAX_N: usize = 1_000;
/// Packages added one at a time to each published APT repo; the median time counts.
const PUBLISH_ROUNDS: usize = 5;

/// devpi-server with a private index `root/dev` (no PyPI mirror) holding `wheels`, uploaded
/// with twine; returns the server, the index URL and the upload time.
fn devpi(
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn wait_for(url: &str) {
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
struct Proc(Child);

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
fn nginx(root: &Path, scratch: &Path) -> (Proc, String) {
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
fn wrk(url: &str, secs: u64, headers: &[&str]) -> (f64, f64, u64) {
    let mut c = Command::new("wrk");
    c.args(["-t2", "-c32", &format!("-d{secs}s"), "--latency"]);
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
    (rps, p99, bad)
}

fn parse_duration_ms(v: &str) -> f64 {
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

/// The generated data of one size: wheel and deb files on disk.
struct Data {
    dir: PathBuf,
    wheels: Vec<String>,
    debs: Vec<String>,
    projects: Vec<String>,
}

fn generate(n: usize, root: &Path) -> Data {
    let dir = root.join(format!("data-{n}"));
    std::fs::create_dir_all(dir.join("wheels")).expect("data dir");
    std::fs::create_dir_all(dir.join("debs")).expect("data dir");
    let per = 5;
    let mut wheels = Vec::new();
    let mut projects = Vec::new();
    for i in 0..n.div_ceil(per) {
        let name = format!("bench-p{i}");
        projects.push(name.clone());
        for v in 0..per.min(n - i * per) {
            let (f, b) = Dist::new(&name, &format!("1.{v}")).wheel();
            std::fs::write(dir.join("wheels").join(&f), b).expect("wheel");
            wheels.push(f);
        }
    }
    let mut debs = Vec::new();
    for i in 0..n {
        let arch = if i % 4 == 3 { "all" } else { "amd64" };
        let (f, b) = Deb::new(&format!("bench-d{}", i / 2), &format!("1.{}", i % 2), arch).build();
        std::fs::write(dir.join("debs").join(&f), b).expect("deb");
        debs.push(f);
    }
    Data {
        dir,
        wheels,
        debs,
        projects,
    }
}

fn upload_all(s: &Server, query: &str, dir: &Path, files: &[String], threads: usize) -> Duration {
    let started = Instant::now();
    let chunks: Vec<&[String]> = files.chunks(files.len().div_ceil(threads).max(1)).collect();
    std::thread::scope(|scope| {
        for chunk in chunks {
            scope.spawn(move || {
                for f in chunk {
                    let bytes = std::fs::read(dir.join(f)).expect("read");
                    let r = s.addpkg(query, f, &bytes);
                    assert_eq!(r.status, 201, "{f}: {}", r.text());
                }
            });
        }
    });
    started.elapsed()
}

/// Uploads `files` sequentially into repo `seq` and with 8 clients into repo `par`.
fn upload_both(
    rep: &mut Report,
    s: &Server,
    what: &str,
    query: &str,
    dir: &Path,
    files: &[String],
    n: usize,
) {
    for (label, repo, threads) in [("sequential", "seq", 1), ("8 concurrent", "par", 8)] {
        let t = upload_all(s, &query.replace("REPO", repo), dir, files, threads);
        rep.add(
            "upload",
            &format!("N {what}, {label}"),
            n,
            "artifactd",
            t.as_secs_f64(),
            "s",
            format!("{:.0} files/s", n as f64 / t.as_secs_f64()),
        );
    }
}

/// An apt root pointed at `url` (signed with the key at `key`).
fn apt_root(root: &Path, url: &str, dist: &str, key: &Path) -> Apt {
    let apt = Apt::new(root, &["amd64"]);
    let dest = apt.key_path("bench.asc");
    std::fs::copy(key, &dest).expect("key");
    apt.add_source(
        "bench",
        &format!("signed-by={}", dest.display()),
        url,
        dist,
        "main",
    );
    apt
}

/// The median of three runs of `f` (given the round number), for client timings.
fn median_of_3(mut f: impl FnMut(usize) -> f64) -> f64 {
    let mut t = [f(0), f(1), f(2)];
    t.sort_by(f64::total_cmp);
    t[1]
}

fn timed(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let ns: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect());
    // `--only pypi` or `--only apt`: one side of the per-N measurements.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let cfg = Config {
        ns: ns.unwrap_or_else(|| {
            if quick {
                vec![100]
            } else {
                vec![100, 1_000, 10_000]
            }
        }),
        secs: if quick { 3 } else { 10 },
        large: if quick { 20 << 20 } else { 200 << 20 },
        huge: if quick { 64 << 20 } else { 1 << 30 },
        out: bin_dir().join("bench-results"),
    };
    std::fs::create_dir_all(&cfg.out).expect("out dir");
    // The server under test: the release binary next to this one, built now if stale.
    let target_dir = bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .expect("target dir");
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "artifactd",
                "--target-dir",
            ])
            .arg(&target_dir),
    );
    ensure_debian(&[
        "nginx-light",
        "wrk",
        "reprepro",
        "aptly",
        "gnupg",
        "curl",
        "openssl",
    ]);
    let venv = peers_venv();
    let scratch = tempfile::Builder::new()
        .prefix("artifactd-bench-")
        .tempdir()
        .expect("scratch");
    let scratch = scratch.path();
    let mut rep = Report::default();

    eprintln!("== limits");
    limits(&mut rep, scratch, cfg.huge);
    eprintln!("== large files");
    large_files(&mut rep, scratch, &cfg);
    for &n in &cfg.ns {
        eprintln!("== N = {n}");
        let data = generate(n, scratch);
        if only.is_none_or(|o| o == "pypi") {
            pypi(&mut rep, &cfg, n, &data, &venv, scratch);
        }
        if only.is_none_or(|o| o == "apt") {
            apt(&mut rep, &cfg, n, &data, scratch);
        }
    }
    targets(&mut rep, &cfg);
    write_report(&rep, &cfg, quick);
}

fn limits(rep: &mut Report, scratch: &Path, bytes: u64) {
    let out = sh(Command::new("openssl").args([
        "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "2",
    ]));
    // "sha256   123456.78k" (thousands of bytes per second for 16 KiB blocks).
    let kps: f64 = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("sha256") || l.trim_start().starts_with("SHA256"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.trim_end_matches('k').parse().ok())
        .unwrap_or(f64::NAN);
    rep.add(
        "limit",
        "sha256 (openssl speed, 16 KiB)",
        0,
        "openssl",
        kps * 1000.0 / 1e6,
        "MB/s",
        String::new(),
    );
    let file = scratch.join("disk-test");
    let secs = timed(|| {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&file).expect("disk test");
        let block = vec![0x5au8; 1 << 20];
        for _ in 0..bytes >> 20 {
            f.write_all(&block).expect("write");
        }
        f.sync_data().expect("fdatasync");
    });
    let _ = std::fs::remove_file(&file);
    rep.add(
        "limit",
        "sequential write + fdatasync",
        0,
        "disk",
        bytes as f64 / secs / 1e6,
        "MB/s",
        String::new(),
    );
}

/// `size` incompressible bytes (xorshift64 from `seed`).
fn noise(size: u64, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = vec![0u8; usize::try_from(size).unwrap_or(0)];
    for chunk in out.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// One wheel with an incompressible member of `size` bytes, stored (not deflated).
fn big_wheel(path: &Path, size: u64) -> String {
    let name = "bench_big-1.0-py3-none-any.whl".to_owned();
    let mut members = Dist::new("bench-big", "1.0").wheel_members();
    members.insert(
        0,
        (
            "bench_big/blob.bin".to_owned(),
            noise(size, 0x9E37_79B9_7F4A_7C15),
        ),
    );
    std::fs::write(
        path.join(&name),
        artifactd_pypi::testing::zip_stored(&members),
    )
    .expect("big wheel");
    name
}

fn big_deb(path: &Path, size: u64) -> String {
    let control = "Package: bench-huge\nVersion: 1.0\nArchitecture: amd64\nMaintainer: b <b@example.invalid>\nDescription: big\n";
    let ctl = artifactd_apt::testing::gzip(&tar_of(&[("./control", control.as_bytes())]));
    let data = noise(size, 0x2545_F491_4F6C_DD1D);
    let data_tar = tar_of(&[("./usr/share/bench-huge/blob", &data)]);
    drop(data);
    let name = "bench-huge_1.0_amd64.deb".to_owned();
    std::fs::write(
        path.join(&name),
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &ctl),
            ("data.tar", &data_tar),
        ]),
    )
    .expect("big deb");
    name
}

/// `curl -F` upload of a file: seconds.
fn curl_upload(s: &Server, query: &str, file: &Path) -> f64 {
    timed(|| {
        let out = sh(artifactd_tests::tool("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", s.token))
            .arg("-F")
            .arg(format!("f=@{}", file.display()))
            .arg(s.url(&format!("/addpkg?{query}"))));
        assert_eq!(out.trim(), "201", "upload of {}", file.display());
    })
}

fn large_files(rep: &mut Report, scratch: &Path, cfg: &Config) {
    let s = Server::start_with(Options::default());
    std::thread::sleep(Duration::from_millis(300));
    let (idle, _) = s.rss_kib();
    rep.add(
        "memory",
        "RSS idle",
        0,
        "artifactd",
        idle as f64 / 1024.0,
        "MiB",
        String::new(),
    );
    let wheel = big_wheel(scratch, cfg.large);
    let secs = curl_upload(&s, "provider=pypi&reponame=big", &scratch.join(&wheel));
    rep.add(
        "upload",
        &format!("one {} MiB wheel", cfg.large >> 20),
        0,
        "artifactd",
        cfg.large as f64 / secs / 1e6,
        "MB/s",
        format!("{secs:.2} s"),
    );
    let _ = std::fs::remove_file(scratch.join(&wheel));
    let s = Server::start_with(Options::default());
    std::thread::sleep(Duration::from_millis(300));
    let (before, _) = s.rss_kib();
    let deb = big_deb(scratch, cfg.huge);
    let secs = curl_upload(
        &s,
        "provider=apt&reponame=big&dist=stable",
        &scratch.join(&deb),
    );
    let (_, peak) = s.rss_kib();
    rep.add(
        "upload",
        &format!("one {} MiB .deb", cfg.huge >> 20),
        0,
        "artifactd",
        cfg.huge as f64 / secs / 1e6,
        "MB/s",
        format!("{secs:.2} s"),
    );
    rep.add(
        "memory",
        &format!("peak RSS above idle, {} MiB upload", cfg.huge >> 20),
        0,
        "artifactd",
        peak.saturating_sub(before) as f64 / 1024.0,
        "MiB",
        format!("idle {} MiB, peak {} MiB", before / 1024, peak / 1024),
    );
    let _ = std::fs::remove_file(scratch.join(&deb));
}

fn pypi(rep: &mut Report, cfg: &Config, n: usize, data: &Data, venv: &Path, scratch: &Path) {
    let s = Server::start_with(Options::default());
    let wheels_dir = data.dir.join("wheels");
    upload_both(
        rep,
        &s,
        "wheels",
        "provider=pypi&reponame=REPO",
        &wheels_dir,
        &data.wheels,
        n,
    );

    // The same pages as static files for nginx: the root and the first project, and the files.
    let project = &data.projects[0];
    let static_root = scratch.join(format!("pypi-static-{n}"));
    let simple = static_root.join("simple");
    std::fs::create_dir_all(simple.join(project)).expect("static");
    std::fs::write(
        simple.join("index.html"),
        s.get("/repo/pypi/seq/simple/").body,
    )
    .expect("static root");
    let files = static_root.join("files");
    std::fs::create_dir_all(&files).expect("static files");
    for p in data.projects.iter().take(20) {
        std::fs::create_dir_all(simple.join(p)).expect("static");
        std::fs::write(
            simple.join(p).join("index.html"),
            s.get(&format!("/repo/pypi/seq/simple/{p}/")).body,
        )
        .expect("static page");
    }
    for f in &data.wheels {
        std::fs::copy(wheels_dir.join(f), files.join(f)).expect("static file");
    }
    // The pages announce PEP 658 metadata; the static tree carries it too.
    for p in data.projects.iter().take(20) {
        let prefix = format!("{}-", p.replace('-', "_"));
        for f in data.wheels.iter().filter(|f| f.starts_with(&prefix)) {
            let meta = s.get(&format!("/repo/pypi/seq/files/{f}.metadata"));
            assert_eq!(meta.status, 200, "{f}.metadata");
            std::fs::write(files.join(format!("{f}.metadata")), meta.body)
                .expect("static metadata");
        }
    }
    let (_nginx, nginx_url) = nginx(&static_root, scratch);

    // pypiserver on the same wheels.
    let port = free_port();
    let _pypiserver = Proc(
        Command::new(venv.join("bin/pypi-server"))
            .args([
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--disable-fallback",
                "-a",
                ".",
            ])
            .arg("-P")
            .arg(".")
            .arg(&wheels_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pypi-server"),
    );
    let pypiserver = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{pypiserver}/simple/"));
    let devpi = (n <= DEVPI_MAX_N).then(|| {
        let (proc, index, secs) = devpi(venv, scratch, n, &wheels_dir, &data.wheels);
        rep.add(
            "upload",
            "N wheels, sequential",
            n,
            "devpi",
            secs,
            "s",
            format!("{:.0} files/s (one twine upload)", n as f64 / secs),
        );
        (proc, index)
    });

    let html = "Accept: text/html";
    for (page, ours, theirs, static_path) in [
        (
            "root page",
            "/repo/pypi/seq/simple/".to_owned(),
            "/simple/".to_owned(),
            "/simple/".to_owned(),
        ),
        (
            "project page",
            format!("/repo/pypi/seq/simple/{project}/"),
            format!("/simple/{project}/"),
            format!("/simple/{project}/"),
        ),
    ] {
        let rss_before = s.rss_kib().0;
        let (rps, p99, bad) = wrk(&s.url(&ours), cfg.secs, &[html]);
        let rss_load = s.rss_kib().0.max(rss_before);
        rep.add(
            "read",
            page,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        rep.add(
            "read",
            &format!("{page} p99"),
            n,
            "artifactd",
            p99,
            "ms",
            String::new(),
        );
        if page == "project page" {
            rep.add(
                "memory",
                "RSS under read load",
                n,
                "artifactd",
                rss_load as f64 / 1024.0,
                "MiB",
                String::new(),
            );
        }
        let (rps, p99, bad) = wrk(&format!("{pypiserver}{theirs}"), cfg.secs, &[html]);
        rep.add(
            "read",
            page,
            n,
            "pypiserver",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        if let Some((_, index)) = &devpi {
            let (rps, p99, bad) = wrk(&format!("{index}/+{}", &theirs[1..]), cfg.secs, &[html]);
            rep.add(
                "read",
                page,
                n,
                "devpi",
                rps,
                "req/s",
                format!("p99 {p99:.2} ms, {bad} non-2xx"),
            );
        }
        let (rps, p99, bad) = wrk(&format!("{nginx_url}{static_path}"), cfg.secs, &[html]);
        rep.add(
            "read",
            page,
            n,
            "nginx",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        rep.add(
            "read",
            &format!("{page} p99"),
            n,
            "nginx",
            p99,
            "ms",
            String::new(),
        );
    }
    let (rps, p99, _) = wrk(
        &s.url(&format!("/repo/pypi/seq/simple/{project}/")),
        cfg.secs,
        &["Accept: application/vnd.pypi.simple.v1+json"],
    );
    rep.add(
        "read",
        "project page (PEP 691 JSON)",
        n,
        "artifactd",
        rps,
        "req/s",
        format!("p99 {p99:.2} ms"),
    );

    // uv pip install of 20 packages into a fresh venv, against artifactd and the static tree.
    let wanted: Vec<&String> = data.projects.iter().take(20).collect();
    for (subject, index) in [
        ("artifactd", s.url("/repo/pypi/seq/simple/")),
        ("nginx", format!("{nginx_url}/simple/")),
    ] {
        let secs = median_of_3(|round| {
            let target = scratch.join(format!("uv-{subject}-{n}-{round}"));
            timed(|| {
                sh(Command::new(venv.join("bin/uv"))
                    .args(["pip", "install", "--no-cache", "--quiet", "--target"])
                    .arg(&target)
                    .args(["--index-url", &index])
                    .args(&wanted)
                    .env("UV_NO_CONFIG", "1"));
            })
        });
        rep.add(
            "client",
            &format!("uv pip install {} packages", wanted.len()),
            n,
            subject,
            secs,
            "s",
            String::new(),
        );
    }
}

fn gpg_key(scratch: &Path) -> (PathBuf, String) {
    let home = scratch.join("gnupg");
    if !home.exists() {
        std::fs::create_dir_all(&home).expect("gnupg home");
        sh(Command::new("chmod").arg("700").arg(&home));
        sh(artifactd_tests::tool("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "bench@example.invalid",
                "ed25519",
                "sign",
                "never",
            ]));
    }
    let fpr = sh(artifactd_tests::tool("gpg")
        .arg("--homedir")
        .arg(&home)
        .args(["--batch", "--with-colons", "--list-secret-keys"]))
    .lines()
    .find_map(|l| {
        l.strip_prefix("fpr:")
            .map(|r| r.trim_matches(':').to_owned())
    })
    .expect("fingerprint");
    (home, fpr)
}

fn apt(rep: &mut Report, cfg: &Config, n: usize, data: &Data, scratch: &Path) {
    let debs_dir = data.dir.join("debs");
    let s = Server::start_with(Options::default());
    upload_both(
        rep,
        &s,
        "debs",
        "provider=apt&reponame=REPO&dist=stable",
        &debs_dir,
        &data.debs,
        n,
    );

    // reprepro and aptly on the same debs, signed with a generated key, served by nginx.
    let (gnupg, fpr) = gpg_key(scratch);
    let pubkey = scratch.join("bench-peers.asc");
    std::fs::write(
        &pubkey,
        sh(artifactd_tests::tool("gpg")
            .arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--armor", "--export", &fpr])),
    )
    .expect("pubkey");
    let rr = scratch.join(format!("reprepro-{n}"));
    std::fs::create_dir_all(rr.join("conf")).expect("reprepro");
    std::fs::write(rr.join("conf/distributions"), format!("Codename: stable\nSuite: stable\nComponents: main\nArchitectures: amd64\nSignWith: {fpr}\n")).expect("reprepro conf");
    let debs: Vec<PathBuf> = data.debs.iter().map(|f| debs_dir.join(f)).collect();
    let rr_secs = timed(|| {
        for chunk in debs.chunks(500) {
            sh(Command::new("reprepro")
                .arg("-b")
                .arg(&rr)
                .env("GNUPGHOME", &gnupg)
                .args(["-S", "misc", "-P", "optional", "includedeb", "stable"])
                .args(chunk));
        }
    });
    rep.add(
        "upload",
        "N debs, one import",
        n,
        "reprepro",
        rr_secs,
        "s",
        String::new(),
    );
    let aptly_conf = scratch.join(format!("aptly-{n}.conf"));
    let aptly_root = scratch.join(format!("aptly-{n}"));
    std::fs::write(
        &aptly_conf,
        format!(
            "{{\"rootDir\": \"{}\", \"gpgProvider\": \"gpg\", \"architectures\": [\"amd64\"]}}",
            aptly_root.display()
        ),
    )
    .expect("aptly conf");
    let aptly = |args: &[&str]| {
        sh(Command::new("aptly")
            .arg(format!("-config={}", aptly_conf.display()))
            .args(args)
            .env("GNUPGHOME", &gnupg))
    };
    let aptly_secs = timed(|| {
        aptly(&[
            "repo",
            "create",
            "-distribution=stable",
            "-component=main",
            "bench",
        ]);
        aptly(&["repo", "add", "bench", &debs_dir.display().to_string()]);
        aptly(&["publish", "repo", &format!("-gpg-key={fpr}"), "bench"]);
    });
    rep.add(
        "upload",
        "N debs, one import",
        n,
        "aptly",
        aptly_secs,
        "s",
        String::new(),
    );
    let (_rr_nginx, rr_url) = nginx(&rr, scratch);
    let (_ap_nginx, ap_url) = nginx(&aptly_root.join("public"), scratch);

    // Serving the indexes.
    for (what, ours, static_path) in [
        (
            "Packages.gz",
            "/repo/apt/seq/dists/stable/main/binary-amd64/Packages.gz",
            "/dists/stable/main/binary-amd64/Packages.gz",
        ),
        (
            "InRelease",
            "/repo/apt/seq/dists/stable/InRelease",
            "/dists/stable/InRelease",
        ),
    ] {
        let (rps, p99, bad) = wrk(&s.url(ours), cfg.secs, &[]);
        rep.add(
            "read",
            what,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        let (rps, p99, bad) = wrk(&format!("{rr_url}{static_path}"), cfg.secs, &[]);
        rep.add(
            "read",
            what,
            n,
            "nginx",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx (reprepro's tree)"),
        );
    }

    // Add one package to the published repo of N and have apt-get update see it.
    let key_ours = scratch.join(format!("artifactd-{n}.asc"));
    std::fs::write(&key_ours, s.get("/repo/apt/seq/pubkey").body).expect("key");
    let apt_ours = apt_root(
        &scratch.join(format!("apt-ours-{n}")),
        &s.url("/repo/apt/seq"),
        "stable",
        &key_ours,
    );
    let apt_rr = apt_root(
        &scratch.join(format!("apt-rr-{n}")),
        &rr_url,
        "stable",
        &pubkey,
    );
    let apt_ap = apt_root(
        &scratch.join(format!("apt-ap-{n}")),
        &ap_url,
        "stable",
        &pubkey,
    );
    // Cold updates first (the client-time measurement, median of 3 with the lists emptied),
    // then the publish-one runs.
    let cold = |apt: &Apt| {
        median_of_3(|_| {
            let lists = apt.root().join("var/lib/apt/lists");
            for e in std::fs::read_dir(&lists).into_iter().flatten().flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            timed(|| {
                apt.update();
            })
        })
    };
    let cold_ours = cold(&apt_ours);
    let cold_rr = cold(&apt_rr);
    apt_ap.update();
    rep.add(
        "client",
        "apt-get update (cold)",
        n,
        "artifactd",
        cold_ours,
        "s",
        String::new(),
    );
    rep.add(
        "client",
        "apt-get update (cold)",
        n,
        "nginx",
        cold_rr,
        "s",
        "reprepro's tree".into(),
    );
    // Each tool adds the same 5 packages one at a time; the median counts.
    let adds: Vec<(String, Vec<u8>, PathBuf)> = (0..PUBLISH_ROUNDS)
        .map(|i| {
            let (f, b) = Deb::new(&format!("bench-extra{i}"), "1.0", "amd64").build();
            let path = scratch.join(&f);
            std::fs::write(&path, &b).expect("extra deb");
            (f, b, path)
        })
        .collect();
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let ours = median(
        adds.iter()
            .map(|(f, b, _)| {
                timed(|| {
                    let r = s.addpkg("provider=apt&reponame=seq&dist=stable", f, b);
                    assert_eq!(r.status, 201);
                })
            })
            .collect(),
    );
    let ours_update = timed(|| {
        apt_ours.update();
    });
    let last = format!("bench-extra{}", PUBLISH_ROUNDS - 1);
    assert!(
        apt_ours.policy(&last).contains("1.0"),
        "apt-get sees the new package"
    );
    let rounds = format!("median of {PUBLISH_ROUNDS}");
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "artifactd",
        ours * 1000.0,
        "ms",
        format!("{rounds}; then apt-get update {ours_update:.2} s"),
    );
    let theirs = median(
        adds.iter()
            .map(|(_, _, path)| {
                timed(|| {
                    sh(Command::new("reprepro")
                        .arg("-b")
                        .arg(&rr)
                        .env("GNUPGHOME", &gnupg)
                        .args(["-S", "misc", "-P", "optional", "includedeb", "stable"])
                        .arg(path));
                })
            })
            .collect(),
    );
    apt_rr.update();
    assert!(apt_rr.policy(&last).contains("1.0"));
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "reprepro",
        theirs * 1000.0,
        "ms",
        rounds.clone(),
    );
    let theirs = median(
        adds.iter()
            .map(|(_, _, path)| {
                timed(|| {
                    aptly(&["repo", "add", "bench", &path.display().to_string()]);
                    aptly(&["publish", "update", &format!("-gpg-key={fpr}"), "stable"]);
                })
            })
            .collect(),
    );
    apt_ap.update();
    assert!(apt_ap.policy(&last).contains("1.0"));
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "aptly",
        theirs * 1000.0,
        "ms",
        rounds,
    );
}

fn targets(rep: &mut Report, cfg: &Config) {
    for &n in &cfg.ns {
        for page in ["root page", "project page"] {
            let ours = rep.get("read", page, n, "artifactd").unwrap_or(0.0);
            let py = rep.get("read", page, n, "pypiserver").unwrap_or(f64::NAN);
            let ng = rep.get("read", page, n, "nginx").unwrap_or(f64::NAN);
            rep.check(
                format!("{page} N={n}: >= 10x pypiserver"),
                ours >= 10.0 * py,
                format!("{:.1}x", ours / py),
            );
            if let Some(dv) = rep.get("read", page, n, "devpi") {
                rep.check(
                    format!("{page} N={n}: >= 10x devpi"),
                    ours >= 10.0 * dv,
                    format!("{:.1}x", ours / dv),
                );
            }
            rep.check(
                format!("{page} N={n}: >= 50% of nginx"),
                ours >= 0.5 * ng,
                format!("{:.0}%", 100.0 * ours / ng),
            );
            let p99 = rep
                .get("read", &format!("{page} p99"), n, "artifactd")
                .unwrap_or(f64::NAN);
            let p99n = rep
                .get("read", &format!("{page} p99"), n, "nginx")
                .unwrap_or(f64::NAN);
            rep.check(
                format!("{page} N={n}: p99 <= 2x nginx"),
                p99 <= 2.0 * p99n,
                format!("{p99:.2} ms vs {p99n:.2} ms"),
            );
        }
        let ours = rep
            .get("publish", "add 1 package and republish", n, "artifactd")
            .unwrap_or(f64::NAN);
        for peer in ["aptly", "reprepro"] {
            let t = rep
                .get("publish", "add 1 package and republish", n, peer)
                .unwrap_or(f64::NAN);
            rep.check(
                format!("publish one N={n}: >= 10x faster than {peer}"),
                t >= 10.0 * ours,
                format!("{:.1}x", t / ours),
            );
        }
        for (what, subject) in [
            ("apt-get update (cold)", "nginx"),
            ("uv pip install 20 packages", "nginx"),
        ] {
            let ours = rep.get("client", what, n, "artifactd").unwrap_or(f64::NAN);
            let st = rep.get("client", what, n, subject).unwrap_or(f64::NAN);
            rep.check(
                format!("{what} N={n}: within 1.2x of static"),
                ours <= 1.2 * st,
                format!("{:.2}x", ours / st),
            );
        }
        let rss = rep
            .get("memory", "RSS under read load", n, "artifactd")
            .unwrap_or(f64::NAN);
        rep.check(
            format!("RSS under read load N={n} <= 64 MiB"),
            rss <= 64.0,
            format!("{rss:.1} MiB"),
        );
    }
    let sha = rep
        .get("limit", "sha256 (openssl speed, 16 KiB)", 0, "openssl")
        .unwrap_or(f64::NAN);
    let disk = rep
        .get("limit", "sequential write + fdatasync", 0, "disk")
        .unwrap_or(f64::NAN);
    let limit = sha.min(disk);
    for r in rep
        .rows
        .clone()
        .iter()
        .filter(|r| r.group == "upload" && r.unit == "MB/s")
    {
        rep.check(
            format!("{}: >= 50% of min(sha256, disk)", r.what),
            r.value >= 0.5 * limit,
            format!("{:.0} MB/s vs {limit:.0} MB/s", r.value),
        );
    }
    let peak = rep
        .rows
        .iter()
        .find(|r| r.what.starts_with("peak RSS"))
        .map_or(f64::NAN, |r| r.value);
    rep.check(
        "peak RSS during the large upload <= idle + 32 MiB".into(),
        peak <= 32.0,
        format!("+{peak:.1} MiB"),
    );
}

fn write_report(rep: &Report, cfg: &Config, quick: bool) {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| group | measurement | N | subject | value | notes |\n|---|---|---:|---|---:|---|"
    );
    for r in &rep.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2} {} | {} |",
            r.group,
            r.what,
            if r.n == 0 {
                "—".into()
            } else {
                r.n.to_string()
            },
            r.subject,
            r.value,
            r.unit,
            r.extra
        );
    }
    let _ = writeln!(md, "\n| target | met | measured |\n|---|---|---|");
    for (t, ok, d) in &rep.checks {
        let _ = writeln!(md, "| {t} | {} | {d} |", if *ok { "yes" } else { "**no**" });
    }
    let mut csv = String::from("group,measurement,n,subject,value,unit,notes\n");
    for r in &rep.rows {
        let _ = writeln!(
            csv,
            "{},{:?},{},{},{},{},{:?}",
            r.group, r.what, r.n, r.subject, r.value, r.unit, r.extra
        );
    }
    let json: Vec<serde_json::Value> = rep
        .rows
        .iter()
        .map(|r| serde_json::json!({"group": r.group, "measurement": r.what, "n": r.n, "subject": r.subject, "value": r.value, "unit": r.unit, "notes": r.extra}))
        .collect();
    let checks: Vec<serde_json::Value> = rep
        .checks
        .iter()
        .map(|(t, ok, d)| serde_json::json!({"target": t, "met": ok, "measured": d}))
        .collect();
    let stem = if quick { "quick" } else { "full" };
    std::fs::write(cfg.out.join(format!("{stem}.md")), &md).expect("md");
    std::fs::write(cfg.out.join(format!("{stem}.csv")), csv).expect("csv");
    std::fs::write(
        cfg.out.join(format!("{stem}.json")),
        serde_json::to_string_pretty(&serde_json::json!({"rows": json, "targets": checks}))
            .unwrap_or_default(),
    )
    .expect("json");
    println!("{md}");
    eprintln!("written to {}", cfg.out.display());
}
