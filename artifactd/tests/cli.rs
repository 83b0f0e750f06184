//! Start-up of the real binary: the embedded default, and bad settings failing with one clear
//! line that names the setting.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_artifactd");

fn temp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("artifactd-cli-")
        .tempdir()
        .expect("temp dir")
}

/// Runs the binary expecting it to exit with a failure; returns its stderr.
fn fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = temp();
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("S3_URL")
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run artifactd");
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("artifactd:"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one clear error line expected, got:\n{stderr}"
    );
    lines[0].to_owned()
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    resp
}

fn start_in(dir: &std::path::Path) -> (std::process::Child, String) {
    // No arguments: the listen address comes from the environment so the test needs no fixed port.
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .env("ARTIFACTD_LISTEN", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env_remove("S3_URL")
        .env_remove("ARTIFACTD_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start artifactd");
    let addr = listening(&mut child);
    (child, addr)
}

/// The address in the first line a started server prints (`… http://ADDR`).
fn listening(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    line.trim()
        .rsplit("http://")
        .next()
        .expect("address")
        .to_owned()
}

#[test]
fn no_arguments_in_an_empty_folder_starts_on_the_embedded_default() {
    let dir = temp();
    let (mut child, addr) = start_in(dir.path());
    let home = get(&addr, "/");
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(home.contains("content-type: text/html"), "{home}");
    let _ = child.kill();
    let _ = child.wait();
    assert!(dir.path().join("data/artifactd.sqlite3").exists());
    assert!(dir.path().join("data/blobs").is_dir());
    // And it starts again on what it created.
    let (mut child, addr) = start_in(dir.path());
    assert!(get(&addr, "/healthz").ends_with("ok\n"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_unreachable_database_names_the_setting() {
    let line = fails(
        &[
            "--listen",
            "127.0.0.1:0",
            "-d",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        &[],
    );
    assert!(line.contains("DATABASE_URL"), "{line}");
    assert!(line.contains("127.0.0.1:1"), "{line}");
    let line = fails(
        &["--listen", "127.0.0.1:0"],
        &[("DATABASE_URL", "mysql+pymysql://u:secret@127.0.0.1:1/db")],
    );
    assert!(line.contains("DATABASE_URL"), "{line}");
    assert!(
        !line.contains("secret"),
        "passwords must not be printed: {line}"
    );
}

#[test]
fn unsupported_database_kinds_are_refused() {
    let line = fails(&["-d", "oracle://x/y"], &[]);
    assert!(
        line.contains("DATABASE_URL") && line.contains("oracle"),
        "{line}"
    );
    let line = fails(&["-d", "not a url"], &[]);
    assert!(line.contains("DATABASE_URL"), "{line}");
}

#[test]
fn malformed_s3_urls_name_the_setting() {
    for url in [
        "ftp://k:s@127.0.0.1/b",
        "http://k:s@127.0.0.1:9000/",
        "http://k:s@127.0.0.1/a/b",
        "nonsense",
    ] {
        let line = fails(&["--listen", "127.0.0.1:0"], &[("S3_URL", url)]);
        assert!(line.contains("S3_URL"), "{url}: {line}");
        assert!(
            !line.contains(":s@"),
            "{url}: secrets must not be printed: {line}"
        );
    }
}

#[test]
fn bad_listen_addresses_name_the_setting() {
    let line = fails(&["--listen", "not-an-address"], &[]);
    assert!(line.contains("--listen"), "{line}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let line = fails(&["--listen", &addr], &[]);
    assert!(line.contains("--listen") && line.contains(&addr), "{line}");
}

#[test]
fn help_lists_the_settings() {
    let out = Command::new(BIN).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--listen",
        "--database",
        "--s3",
        "--data-dir",
        "--debug",
        "DATABASE_URL",
        "S3_URL",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn an_unreachable_s3_endpoint_names_the_setting() {
    let line = fails(
        &["--listen", "127.0.0.1:0"],
        &[("S3_URL", "http://k:secret@127.0.0.1:1/bucket")],
    );
    assert!(
        line.contains("S3_URL") && line.contains("127.0.0.1:1"),
        "{line}"
    );
    assert!(!line.contains("secret"), "{line}");
}

#[test]
fn the_first_admin_token_is_printed_once() {
    let dir = temp();
    let start = || {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("ARTIFACTD_ADMIN_TOKEN")
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        std::thread::sleep(std::time::Duration::from_millis(700));
        let mut child = out;
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = start();
    assert!(first.contains("Created the first admin token"), "{first}");
    assert!(first.contains("adt_"), "{first}");
    let second = start();
    assert!(
        !second.contains("adt_"),
        "the token must be printed only once: {second}"
    );
}

/// The lines of the Dockerfile that start with `instruction`, without it.
fn dockerfile(instruction: &str) -> Vec<String> {
    include_str!("../../Dockerfile")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{instruction} ")))
        .map(str::to_owned)
        .collect()
}

/// What can be checked of the image without a Docker engine: its shape, the build command
/// (`.ci/run` runs that very command and hands the binary over in `ARTIFACTD_DOCKER_BINARY`),
/// and the binary starting with the environment the image sets, as `docker run -e
/// DATABASE_URL=… -e S3_URL=…` does.
#[test]
fn the_docker_image_builds_the_tested_binary_and_starts_with_its_environment() {
    let from = dockerfile("FROM");
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(from[0].starts_with("rust:") && from[0].ends_with(" AS build"));
    assert!(from[1].starts_with("debian:") && from[1].contains("slim"));
    let run = dockerfile("RUN");
    assert!(
        run.iter()
            .any(|r| r.starts_with("cargo build --release --locked -p artifactd ")),
        "the image builds with cargo build --release --locked: {run:?}"
    );
    assert_eq!(dockerfile("USER"), ["artifactd"], "non-root");
    assert_eq!(dockerfile("VOLUME"), ["/data"]);
    assert_eq!(
        dockerfile("EXPOSE"),
        ["8080"],
        "the default port (see config tests)"
    );
    assert_eq!(dockerfile("ENTRYPOINT"), ["[\"artifactd\"]"]);

    let binary = std::env::var("ARTIFACTD_DOCKER_BINARY").unwrap_or_else(|_| {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds the image's binary with the Dockerfile's command and sets ARTIFACTD_DOCKER_BINARY"
        );
        BIN.to_owned()
    });
    let data = temp();
    let mut cmd = Command::new(&binary);
    cmd.current_dir(data.path())
        .env_remove("DATABASE_URL")
        .env_remove("S3_URL")
        // The one change to the image's start-up: no fixed port in tests.
        .env("ARTIFACTD_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for env in dockerfile("ENV") {
        let (k, v) = env.split_once('=').expect("ENV KEY=VALUE");
        let v = if v == "/data" {
            data.path().display().to_string()
        } else {
            v.to_owned()
        };
        cmd.env(k, v);
    }
    // `docker run -e DATABASE_URL=…` against the database CI provides.
    // The local MariaDB, as the end-to-end suite finds it (its variable, or the default port).
    let mysql = std::env::var("ARTIFACTD_TEST_MYSQL_URL").ok().or_else(|| {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], 3306)),
            std::time::Duration::from_secs(2),
        )
        .ok()
        .map(|_| "mysql://root@127.0.0.1:3306".to_owned())
    });
    let database = mysql.map(|base| {
        let name = format!("artifactd_t{}_docker", std::process::id());
        let status = Command::new("mysql")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("CREATE DATABASE {name}"))
            .status()
            .expect("mysql client");
        assert!(status.success());
        format!("{}/{name}", base.trim_end_matches('/'))
    });
    if let Some(url) = &database {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("start the image's binary");
    let addr = listening(&mut child);
    assert!(get(&addr, "/healthz").ends_with("ok\n"), "{addr}");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        data.path().join("blobs").is_dir(),
        "blobs go to the /data volume"
    );
    if database.is_none() {
        assert!(data.path().join("artifactd.sqlite3").exists());
    }
}
