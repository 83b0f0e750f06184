//! The host's own surface, exercised through the example tar provider and the seed's calls.

use std::io::{Read as _, Write as _};

use artifactd_tests::{Options, Server, fake_gzip};

#[test]
fn addpkg_to_the_tar_provider_round_trips_the_bytes() {
    let s = Server::start_with(Options::with_tar());
    let bytes = fake_gzip(b"hello tarball");
    let r = s.addpkg(
        "provider=tar&reponame=tools&name=hello&version=1.0",
        "hello-1.0.tar.gz",
        &bytes,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert_eq!(j["provider"], "tar");
    assert_eq!(j["repo"], "tools");
    assert_eq!(j["name"], "hello");
    assert_eq!(j["version"], "1.0");
    assert_eq!(j["filename"], "hello-1.0.tar.gz");
    assert_eq!(j["size"], bytes.len());
    let url = j["url"].as_str().unwrap().to_owned();
    assert_eq!(url, s.url("/repo/tar/tools/hello/1.0/hello-1.0.tar.gz"));

    let got = s.get("/repo/tar/tools/hello/1.0/hello-1.0.tar.gz");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, bytes);
    assert_eq!(
        got.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(got.header("content-type"), Some("application/gzip"));
    let etag = got.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", j["sha256"].as_str().unwrap()));
    assert!(got.header("cache-control").unwrap().contains("immutable"));

    // HEAD, Range and conditional requests are the host's, for every provider.
    let head = s.head("/repo/tar/tools/hello/1.0/hello-1.0.tar.gz");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    let part = s.get_with(
        "/repo/tar/tools/hello/1.0/hello-1.0.tar.gz",
        &[("Range", "bytes=2-5")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes[2..=5]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 2-5/{}", bytes.len()).as_str())
    );
    let bad_range = s.get_with(
        "/repo/tar/tools/hello/1.0/hello-1.0.tar.gz",
        &[("Range", "bytes=999-")],
    );
    assert_eq!(bad_range.status, 416);
    let cached = s.get_with(
        "/repo/tar/tools/hello/1.0/hello-1.0.tar.gz",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    // Listings: the provider's, and the host's pages.
    let listing = s.get("/repo/tar/tools/");
    assert_eq!(listing.status, 200);
    assert!(listing.text().contains("hello/1.0/hello-1.0.tar.gz"));
    let index = s.get("/repo/tar/tools/index.json");
    assert_eq!(index.status, 200);
    assert_eq!(index.json()["files"][0]["name"], "hello");
    let repos = s.get("/repo/tar/");
    assert_eq!(repos.status, 200);
    assert!(
        repos
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        repos
            .text()
            .replace("&#x2f;", "/")
            .contains("/ui/tar/tools/")
    );
    let home = s.get("/");
    assert!(home.text().contains("tools"), "{}", home.text());
    assert_eq!(s.get("/repo/tar/tools").status, 301);
}

#[test]
fn identical_reupload_is_200_and_changed_bytes_are_409() {
    let s = Server::start_with(Options::with_tar());
    let q = "provider=tar&reponame=r1";
    assert_eq!(s.addpkg(q, "a-1.0.tgz", &fake_gzip(b"x")).status, 201);
    let again = s.addpkg(q, "a-1.0.tgz", &fake_gzip(b"x"));
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["created"], false);
    let before = s.stored_files();
    let conflict = s.addpkg(q, "a-1.0.tgz", &fake_gzip(b"other"));
    assert_eq!(conflict.status, 409);
    assert!(
        conflict.error().starts_with("File already exists"),
        "{}",
        conflict.error()
    );
    assert_eq!(
        s.stored_files(),
        before,
        "a refused upload must store nothing"
    );
    assert_eq!(s.get("/repo/tar/r1/a/1.0/a-1.0.tgz").body, fake_gzip(b"x"));
}

#[test]
fn upload_persists_across_a_restart() {
    let mut s = Server::start_with(Options::with_tar());
    let bytes = fake_gzip(b"persist me");
    assert_eq!(
        s.addpkg("provider=tar&reponame=keep", "keep-2.1.tar.gz", &bytes)
            .status,
        201
    );
    s.restart();
    let got = s.get("/repo/tar/keep/keep/2.1/keep-2.1.tar.gz");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, bytes);
}

#[test]
fn bad_upload_requests_get_clear_errors_and_store_nothing() {
    let s = Server::start_with(Options::with_tar());
    let gz = fake_gzip(b"x");
    let cases: &[(&str, &str, u16, &str)] = &[
        ("reponame=r", "a-1.0.tgz", 400, "provider"),
        (
            "provider=nope&reponame=r",
            "a-1.0.tgz",
            404,
            "available providers: apt, pypi, tar",
        ),
        ("provider=tar", "a-1.0.tgz", 400, "reponame"),
        (
            "provider=tar&reponame=a/b",
            "a-1.0.tgz",
            400,
            "Invalid repo name",
        ),
        (
            "provider=tar&reponame=..",
            "a-1.0.tgz",
            400,
            "Invalid repo name",
        ),
        (
            "provider=tar&reponame=-x",
            "a-1.0.tgz",
            400,
            "Invalid repo name",
        ),
        (
            "provider=tar&reponame=%C3%A9t%C3%A9",
            "a-1.0.tgz",
            400,
            "Invalid repo name",
        ),
        (
            "provider=tar&reponame=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "a-1.0.tgz",
            400,
            "Invalid repo name",
        ),
        (
            "provider=tar&reponame=r&name=b",
            "a-1.0.tgz",
            400,
            "does not match",
        ),
        (
            "provider=tar&reponame=r&version=2.0",
            "a-1.0.tgz",
            400,
            "does not match",
        ),
        ("provider=tar&reponame=r", "a-1.0.zip", 400, "must end in"),
    ];
    for (query, filename, status, needle) in cases {
        let r = s.addpkg(query, filename, &gz);
        assert_eq!(r.status, *status, "{query}: {}", r.text());
        assert!(
            r.error().contains(needle),
            "{query}: {:?} should mention {needle:?}",
            r.error()
        );
    }
    // Not multipart, wrong field, two files, no file.
    let r = s.post_raw(
        "/addpkg?provider=tar&reponame=r",
        "application/octet-stream",
        &gz,
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("multipart/form-data"), "{}", r.error());
    let r = s.post_multipart(
        "/addpkg?provider=tar&reponame=r",
        &[],
        "file",
        "a-1.0.tgz",
        &gz,
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("\"f\""), "{}", r.error());
    let r = s.post_multipart(
        "/addpkg?provider=tar&reponame=r",
        &[("x", "y")],
        "g",
        "a-1.0.tgz",
        &gz,
    );
    assert_eq!(r.status, 400);
    let boundary = "b0undary";
    // A second file that the upload does not use is refused, and nothing is stored.
    let mut two = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a-1.0.tgz\"\r\n\r\n"
    )
    .into_bytes();
    two.extend_from_slice(&gz);
    two.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a-2.0.tgz\"\r\n\r\nyy\r\n--{boundary}--\r\n").as_bytes(),
    );
    let r = s.post_raw(
        "/addpkg?provider=tar&reponame=r",
        &format!("multipart/form-data; boundary={boundary}"),
        &two,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.error()
            .contains("carries the file \"a-2.0.tgz\", which this upload does not use"),
        "{}",
        r.error()
    );
    assert_eq!(
        s.get("/repo/tar/r/a/1.0/a-1.0.tgz").status,
        404,
        "nothing stored"
    );
    let none = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--{boundary}--\r\n"
    );
    let r = s.post_raw(
        "/addpkg?provider=tar&reponame=r",
        &format!("multipart/form-data; boundary={boundary}"),
        none.as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.error().contains("Missing the multipart field"),
        "{}",
        r.error()
    );
    let truncated = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a-1.0.tgz\"\r\n\r\nxx"
    );
    let r = s.post_raw(
        "/addpkg?provider=tar&reponame=r",
        &format!("multipart/form-data; boundary={boundary}"),
        truncated.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // Nothing of it was stored, and no repo was created.
    assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    assert_eq!(s.get("/repo/tar/r/").status, 404);
    assert!(
        !s.get("/repo/tar/")
            .text()
            .replace("&#x2f;", "/")
            .contains("/ui/tar/r/")
    );
    assert!(!s.log().contains("ERROR"), "{}", s.log());
}

#[test]
fn uploads_over_the_size_limit_are_refused_while_streaming() {
    let s = Server::start_with(Options::with_tar().arg("--max-upload-bytes").arg("1000"));
    let big = fake_gzip(&[7u8; 8 << 20]);
    let r = s.addpkg("provider=tar&reponame=big", "big-1.0.tgz", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("1000 bytes"), "{}", r.error());
    // The rest of the body is not wanted, so the connection ends after the answer, and the
    // answer says so: a client must not send its next request on it.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(s.stored_files().is_empty());

    // Over one raw connection: the client can send all 8 MiB (the server reads and drops
    // the rest instead of resetting the connection under it), then reads the answer and the
    // end of the connection.
    let mut body =
        b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big-1.0.tgz\"\r\n\r\n"
            .to_vec();
    body.extend(&big);
    body.extend(b"\r\n--b--\r\n");
    let head = |extra: &str| {
        format!(
            "POST /addpkg?provider=tar&reponame=big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n{extra}\r\n",
            s.token,
            body.len()
        )
    };
    let connect = || {
        let c = std::net::TcpStream::connect(&s.addr).expect("connect");
        c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .expect("timeout");
        c
    };
    let mut conn = connect();
    conn.write_all(head("").as_bytes()).expect("send head");
    conn.write_all(&body)
        .expect("the whole body can be sent after a refusal");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).expect("answer, then the end");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(answer.contains("1000 bytes"), "{answer}");

    // A client that waits for "100 Continue" and is refused before the body is read gets the
    // refusal and no invitation to send what would be thrown away.
    let mut conn = connect();
    let refused = head("Expect: 100-continue\r\n").replace("provider=tar", "provider=nope");
    conn.write_all(refused.as_bytes()).expect("send head");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).expect("answer, then the end");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 4"), "{answer}");
    assert!(!answer.contains("100 continue"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");

    // An upload that was read to its end keeps the connection open.
    let ok = s.addpkg(
        "provider=tar&reponame=small",
        "small-1.0.tgz",
        &fake_gzip(b"s"),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.header("connection"), None);
    assert_eq!(s.get("/repo/tar/big/").status, 404);
    assert!(
        std::fs::read_dir(s.data_dir().join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "temp files must be removed"
    );
}

#[test]
fn paths_cannot_leave_a_repo() {
    let s = Server::start_with(Options::with_tar());
    assert_eq!(
        s.addpkg("provider=tar&reponame=a", "x-1.0.tgz", &fake_gzip(b"a"))
            .status,
        201
    );
    assert_eq!(
        s.addpkg("provider=tar&reponame=b", "y-1.0.tgz", &fake_gzip(b"b"))
            .status,
        201
    );
    for path in [
        "/repo/tar/a/..%2Fb/y/1.0/y-1.0.tgz",
        "/repo/tar/a/%2e%2e/b/y/1.0/y-1.0.tgz",
        "/repo/tar/a/x%2F1.0/x-1.0.tgz",
        "/repo/tar/a%2Fb/y/1.0/y-1.0.tgz",
    ] {
        let r = s.get(path);
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert_ne!(r.body, fake_gzip(b"b"), "{path} reached another repo");
    }
    assert_eq!(s.get("/repo/tar/a/y/1.0/y-1.0.tgz").status, 404);
    assert_eq!(s.get("/repo/tar/nope/").status, 404);
    assert_eq!(s.get("/repo/nope/a/").status, 404);
    assert_eq!(s.get("/healthz").text(), "ok\n");
}

#[test]
fn gc_removes_unreferenced_blobs_and_stale_temp_files() {
    let mut s = Server::start_with(Options::with_tar());
    let bytes = fake_gzip(b"kept");
    assert_eq!(
        s.addpkg("provider=tar&reponame=g", "kept-1.0.tgz", &bytes)
            .status,
        201
    );
    s.stop();
    let blobs = s.data_dir().join("blobs/content/sha256");
    let orphan =
        blobs.join("00/11/0011aabbccddeeff00112233445566778899aabbccddeeff0011223344556677");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"left by a crash").unwrap();
    let fresh_orphan =
        blobs.join("00/22/0022aabbccddeeff00112233445566778899aabbccddeeff0011223344556677");
    std::fs::create_dir_all(fresh_orphan.parent().unwrap()).unwrap();
    std::fs::write(&fresh_orphan, b"an upload in flight").unwrap();
    let stale_tmp = s.data_dir().join("tmp/upload-stale");
    std::fs::write(&stale_tmp, b"partial").unwrap();
    // Age everything but the fresh orphan by two hours.
    for p in [&orphan, &stale_tmp] {
        artifactd_tests::run(
            std::process::Command::new("touch")
                .args(["-d", "2 hours ago"])
                .arg(p),
        );
    }
    for f in s.stored_files().keys() {
        if !f.contains("0022") {
            artifactd_tests::run(
                std::process::Command::new("touch")
                    .args(["-d", "2 hours ago"])
                    .arg(s.data_dir().join("blobs").join(f)),
            );
        }
    }
    let out = artifactd_tests::run(
        std::process::Command::new(artifactd_tests::bin("artifactd"))
            .arg("--data-dir")
            .arg(s.data_dir())
            .args(["gc", "--grace-secs", "3600"])
            .env_remove("DATABASE_URL")
            .env_remove("S3_URL"),
    );
    assert!(
        out.contains("removed 1 unreferenced blob(s) (15 bytes), 0 file(s) derived from them, 1 stale temporary file(s)"),
        "{out}"
    );
    assert!(!orphan.exists() && !stale_tmp.exists());
    assert!(
        fresh_orphan.exists(),
        "blobs younger than the grace period stay"
    );
    s.restart();
    assert_eq!(s.get("/repo/tar/g/kept/1.0/kept-1.0.tgz").body, bytes);
}

#[test]
fn sigkill_during_uploads_loses_nothing_committed() {
    use artifactd_apt::testing::Deb;
    let mut s = Server::start();
    let addr = s.addr.clone();
    let token = s.token.clone();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let uploader = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        for n in 0..400 {
            let (f, b) = Deb::new("crashy", &format!("1.{n}"), "amd64").build();
            match artifactd_tests::addpkg_raw(
                &agent,
                &addr,
                &token,
                "provider=apt&reponame=crash&dist=stable",
                &f,
                &b,
            ) {
                Some(201) => {
                    if tx.send(f).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    // Let some uploads commit, then kill the server in the middle of the stream.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 15 {
        acknowledged.push(
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .expect("uploads progress"),
        );
    }
    s.stop();
    uploader.join().expect("uploader");
    acknowledged.extend(rx.try_iter());
    s.restart();
    // Every acknowledged upload is still served.
    for f in &acknowledged {
        let path = format!("pool/main/c/crashy/{f}");
        assert_eq!(
            s.head(&format!("/repo/apt/crash/{path}")).status,
            200,
            "{f} was acknowledged but is gone"
        );
    }
    // A republish after the restart lists every committed file, and every listed file exists.
    let (f, b) = Deb::new("after-restart", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=crash&dist=stable", &f, &b)
            .status,
        201
    );
    let packages = s
        .get("/repo/apt/crash/dists/stable/main/binary-amd64/Packages")
        .text();
    for f in &acknowledged {
        assert!(packages.contains(f.as_str()), "{f} missing from the index");
    }
    for line in packages
        .lines()
        .filter_map(|l| l.strip_prefix("Filename: "))
    {
        assert_eq!(
            s.head(&format!("/repo/apt/crash/{line}")).status,
            200,
            "the index names a missing file {line}"
        );
    }
}
