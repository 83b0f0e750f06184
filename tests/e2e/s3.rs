//! S3 blob storage against Garage, a production S3 store, on loopback: pip and apt-get end to
//! end, a restart, the bucket created at start, a 1 GiB file through with flat memory, and the
//! region a new user forgets named at start; one small round trip against moto, a second
//! implementation.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Options, S3Server, Server, clients, run};

#[test]
fn pip_and_apt_get_on_s3() {
    let s3 = S3Server::start();
    let mut s = Server::start_with(Options::default().env("S3_URL", s3.url("artifactd-e2e")));
    assert!(s.log().contains("Created S3 bucket"), "{}", s.log());
    let wheel = Dist::new("on-s3", "1.0").wheel();
    assert_eq!(
        s.addpkg("provider=pypi&reponame=cloud", &wheel.0, &wheel.1)
            .status,
        201
    );
    let deb = Deb::new("s3-tool", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=cloud&dist=stable", &deb.0, &deb.1)
            .status,
        201
    );
    // Nothing went to the local folder.
    assert!(!s.data_dir().join("blobs").exists());

    s.restart();
    let scratch = s.scratch("pip");
    let c = clients();
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c
        .pip(&scratch, &py)
        .args(["install", "-i", &s.url("/repo/pypi/cloud/"), "on-s3"]));
    let out =
        run(std::process::Command::new(&py).args(["-c", "import on_s3; print(on_s3.__version__)"]));
    assert_eq!(out.trim(), "1.0");

    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("cloud.asc");
    std::fs::write(&key, s.get("/repo/apt/cloud/pubkey").body).unwrap();
    apt.add_source(
        "cloud",
        &format!("signed-by={}", key.display()),
        &s.url("/repo/apt/cloud"),
        "stable",
        "main",
    );
    apt.update();
    let archives = apt.download(&["s3-tool"]);
    assert!(std::fs::read(archives.join(&deb.0)).unwrap() == deb.1);
    let part = s.get_with(
        &format!("/repo/pypi/cloud/files/{}", wheel.0),
        &[("Range", "bytes=0-3")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, b"PK\x03\x04");
}

/// A reader of `len` deterministic, poorly compressible bytes, hashing what it hands out.
struct Pattern {
    left: u64,
    state: u64,
    hash: sha2::Sha256,
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            & !7;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            // xorshift64
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.hash.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

#[test]
fn a_1_gib_upload_streams_through_with_flat_memory() {
    use sha2::Digest as _;
    use std::io::Read as _;
    const SIZE: u64 = 1 << 30;
    let s3 = S3Server::start();
    let s = Server::start_with(Options::with_tar().env("S3_URL", s3.url("big")));
    // Warm up the pools and caches, then measure.
    let (f, b) = ("warm-1.0.tgz", artifactd_tests::fake_gzip(b"warm"));
    assert_eq!(s.addpkg("provider=tar&reponame=big", f, &b).status, 201);
    let (before, _) = s.rss_kib();

    let boundary = "b1g";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"huge-1.0.tar.gz\"\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut payload = Pattern {
        left: SIZE - 2,
        state: 0x9E37_79B9_7F4A_7C15,
        hash: sha2::Sha256::new(),
    };
    payload.hash.update([0x1f, 0x8b]);
    let mut body = std::io::Cursor::new(head.clone().into_bytes())
        .chain(std::io::Cursor::new(vec![0x1f, 0x8b]))
        .chain(&mut payload)
        .chain(std::io::Cursor::new(tail.clone().into_bytes()));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let started = std::time::Instant::now();
    let mut resp = agent
        .post(s.url("/addpkg?provider=tar&reponame=big"))
        .header("Authorization", format!("Bearer {}", s.token))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(
            "Content-Length",
            (head.len() as u64 + SIZE + tail.len() as u64).to_string(),
        )
        .send(ureq::SendBody::from_reader(&mut body))
        .expect("upload");
    let upload = started.elapsed();
    drop(body);
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(resp.status().as_u16(), 201, "{text}");
    let sent = hex_of(&payload.hash.finalize());
    let (_, peak) = s.rss_kib();
    eprintln!(
        "1 GiB upload to S3 in {:.1} s; server RSS {} MiB before, peak {} MiB",
        upload.as_secs_f64(),
        before / 1024,
        peak / 1024
    );
    assert!(
        peak.saturating_sub(before) <= 48 * 1024,
        "the upload raised the server's RSS from {before} KiB to {peak} KiB"
    );
    assert!(
        text.contains(&sent),
        "the server hashed other bytes: {text}"
    );

    // And it streams back out, byte for byte.
    let mut resp = agent
        .get(s.url("/repo/tar/big/huge/1.0/huge-1.0.tar.gz"))
        .call()
        .expect("download");
    assert_eq!(resp.status().as_u16(), 200);
    let mut hash = sha2::Sha256::new();
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).expect("read download");
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    assert_eq!(hex_of(&hash.finalize()), sent);
    let (_, peak) = s.rss_kib();
    assert!(
        peak.saturating_sub(before) <= 48 * 1024,
        "the download raised the server's RSS from {before} KiB to {peak} KiB"
    );
}

#[test]
fn a_second_s3_implementation_stores_and_serves_too() {
    let s3 = S3Server::moto();
    let s = Server::start_with(Options::default().env("S3_URL", s3.url("second")));
    let (f, b) = artifactd_pypi::testing::Dist::new("on-moto", "1.0").wheel();
    assert_eq!(s.addpkg("provider=pypi&reponame=m", &f, &b).status, 201);
    assert_eq!(s.get(&format!("/repo/pypi/m/files/{f}")).body, b);
    assert!(!s.data_dir().join("blobs").exists());
}

#[test]
fn a_missing_region_is_named_at_start() {
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(artifactd_tests::bin("artifactd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("S3_URL", s3.url_without_region("new-user"))
        .env_remove("S3_REGION")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("artifactd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("artifactd started against Garage signing for the wrong region");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert_eq!(status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("artifactd:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("AuthorizationHeaderMalformed")
            && line.contains(&format!("S3_REGION={}", artifactd_tests::GARAGE_REGION)),
        "{line}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
