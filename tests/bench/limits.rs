//! The physical limits (SHA-256, disk) and single large uploads.

use super::*;

pub(crate) fn limits(rep: &mut Report, scratch: &Path, bytes: u64) {
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
pub(crate) fn noise(size: u64, seed: u64) -> Vec<u8> {
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
pub(crate) fn big_wheel(path: &Path, size: u64) -> String {
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

pub(crate) fn big_deb(path: &Path, size: u64) -> String {
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
pub(crate) fn curl_upload(s: &Server, query: &str, file: &Path) -> f64 {
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

pub(crate) fn large_files(rep: &mut Report, scratch: &Path, cfg: &Config) {
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
