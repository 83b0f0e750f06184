//! Slow and hostile HTTP clients: request heads and bodies that never finish or trickle,
//! declared lengths over the limit, ambiguous framing.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server, clients, run};

/// Reads what the server sends until it closes the connection or `wait` passes; returns the
/// bytes and how long the status line took to arrive.
fn answer(conn: &mut TcpStream, wait: Duration) -> (String, Duration) {
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    let mut got = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 4096];
    while started.elapsed() < wait {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first.get_or_insert_with(|| started.elapsed());
                got.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        first.unwrap_or(wait),
    )
}

fn temp_files(s: &Server) -> usize {
    std::fs::read_dir(s.data_dir().join("tmp")).map_or(0, Iterator::count)
}

#[test]
fn trickling_clients_get_408_while_others_upload_and_install() {
    const TRICKLERS: usize = 200;
    let s = Server::start_with(Options::default().arg("--read-timeout-secs").arg("15"));
    let addr = s.addr.clone();
    let token = s.token.clone();
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for i in 0..TRICKLERS {
            let (addr, token, results) = (&addr, &token, &results);
            scope.spawn(move || {
                let mut conn = TcpStream::connect(addr).expect("connect");
                let result = if i % 10 == 0 {
                    // A request head, ten bytes a second.
                    let head = format!("GET /repo/pypi/t/ HTTP/1.1\r\nHost: x\r\nX-Padding: {}", "p".repeat(400));
                    for chunk in head.as_bytes().chunks(10) {
                        if conn.write_all(chunk).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    answer(&mut conn, Duration::from_secs(20)).0
                } else {
                    // An upload body, ten bytes a second.
                    let body_head = "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"trickle-1.0.tar.gz\"\r\n\r\n";
                    let head = format!(
                        "POST /addpkg?provider=pypi&reponame=t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n{body_head}"
                    );
                    conn.write_all(head.as_bytes()).expect("head");
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_secs(30)
                        && conn.write_all(b"0123456789").is_ok()
                    {
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    answer(&mut conn, Duration::from_secs(5)).0
                };
                results.lock().expect("results").push((i, result));
            });
        }
        // Meanwhile a normal upload and an install go through.
        let open = TRICKLERS * 9 / 10 - 10;
        let waiting = Instant::now();
        while temp_files(&s) < open && waiting.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(temp_files(&s) >= open, "the trickled uploads are open");
        let (f, b) = Dist::new("normal-pkg", "1.0").wheel();
        let started = Instant::now();
        assert_eq!(s.addpkg("provider=pypi&reponame=t", &f, &b).status, 201);
        let c = clients();
        let scratch = s.scratch("install");
        let py = c.fresh_venv(&scratch.join("venv"), &scratch);
        run(c
            .pip(&scratch, &py)
            .args(["install", "-i", &s.url("/repo/pypi/t/"), "normal-pkg"]));
        eprintln!(
            "upload and install beside {TRICKLERS} trickling connections: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert!(
            temp_files(&s) >= open,
            "served while the tricklers held on ({} temporary files left)",
            temp_files(&s)
        );
    });
    let results = results.into_inner().expect("results");
    assert_eq!(results.len(), TRICKLERS);
    for (i, text) in &results {
        if i % 10 == 0 {
            assert!(
                text.starts_with("HTTP/1.1 408") && text.contains("request headers did not arrive"),
                "trickled head {i}: {text:?}"
            );
        } else {
            assert!(
                text.starts_with("HTTP/1.1 408")
                    && text.contains("less than 1024 bytes per second"),
                "trickled body {i}: {text:?}"
            );
        }
    }
    assert_eq!(temp_files(&s), 0, "temporary files left behind");
    assert_eq!(s.get("/healthz").status, 200);
    let listed = s.get("/repo/pypi/t/").text();
    assert!(
        listed.contains("normal-pkg") && !listed.contains("trickle"),
        "{listed}"
    );
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let s = Server::start_with(Options::default().arg("--max-upload-bytes").arg("1000"));
    let mut conn = TcpStream::connect(&s.addr).expect("connect");
    // Headers only: the body never comes, the answer must not wait for it.
    conn.write_all(
        format!(
            "POST /addpkg?provider=pypi&reponame=big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 104857600\r\n\r\n",
            s.token
        )
        .as_bytes(),
    )
    .expect("head");
    let (text, took) = answer(&mut conn, Duration::from_secs(3));
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("limit of 1000 bytes"), "{text:?}");
    assert!(took < Duration::from_secs(1), "the 413 took {took:?}");
    assert!(s.stored_files().is_empty());
    assert_eq!(temp_files(&s), 0);
}

#[test]
fn content_length_with_chunked_encoding_is_refused_and_closed() {
    let s = Server::start();
    let (f, b) = Dist::new("smuggle", "1.0").wheel();
    for head_order in [
        "Content-Length: 4\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 4",
    ] {
        let mut body =
            format!("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{f}\"\r\n\r\n")
                .into_bytes();
        body.extend_from_slice(&b);
        body.extend_from_slice(b"\r\n--b--\r\n");
        let mut req = format!(
            "POST /addpkg?provider=pypi&reponame=sm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\n{head_order}\r\n\r\n{:x}\r\n",
            s.token,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        // What a proxy framing by Content-Length would take for a second request.
        req.extend_from_slice(b"\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut conn = TcpStream::connect(&s.addr).expect("connect");
        conn.write_all(&req).expect("request");
        let (text, _) = answer(&mut conn, Duration::from_secs(5));
        assert!(text.starts_with("HTTP/1.1 400"), "{head_order}: {text:?}");
        assert!(
            text.contains("both Content-Length and Transfer-Encoding"),
            "{text:?}"
        );
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text:?}"
        );
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            1,
            "one answer, then the close: {text:?}"
        );
    }
    assert!(s.stored_files().is_empty(), "nothing stored");
    assert_eq!(s.get("/repo/pypi/sm/").status, 404);
    // Either header alone is fine.
    assert_eq!(s.addpkg("provider=pypi&reponame=sm", &f, &b).status, 201);
}

#[test]
fn slow_clients_are_cut_off_and_leave_nothing_behind() {
    let s = Server::start_with(Options::with_tar().arg("--read-timeout-secs").arg("1"));
    let addr = s.addr.clone();
    // Headers that never finish: the connection is closed.
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    slow.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "not cut off"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains("request headers did not arrive"),
        "a head that never finishes gets 408: {text:?}"
    );

    // Many idle connections do not keep others from being served.
    let idle: Vec<_> = (0..64)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    assert_eq!(s.get("/healthz").status, 200);
    drop(idle);

    // An upload body that stalls: 408 with its sentence, and no temporary file is left.
    let mut up = std::net::TcpStream::connect(&addr).expect("connect");
    let body_head =
        "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"slow-1.0.tgz\"\r\n\r\nslow";
    let req = format!(
        "POST /addpkg?provider=tar&reponame=slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n{body_head}",
        s.token
    );
    up.write_all(req.as_bytes()).expect("write");
    up.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("The upload stalled"), "{resp}");
    assert!(s.stored_files().is_empty());
    let tmp = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary files left behind");
    assert_eq!(s.get("/repo/tar/slow/").status, 404);
}
