//! The example binary starts and mounts the tar provider next to the built-in ones.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn mounts_tar_next_to_builtin_providers() {
    let dir = tempdir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_artifactd-with-tar"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start artifactd-with-tar");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .expect("address")
        .to_owned();
    let mut s = TcpStream::connect(&addr).expect("connect");
    write!(
        s,
        "GET /repo/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    for kind in ["apt", "pypi", "tar"] {
        assert!(
            resp.contains(&format!("/repo/{kind}/")),
            "{kind} is not listed: {resp}"
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("artifactd-with-tar-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
