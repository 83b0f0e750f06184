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

/// `curl` download of `url` to nowhere: (seconds to the first byte, seconds in all).
fn curl_download(url: &str) -> (f64, f64) {
    let out = sh(artifactd_tests::tool("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{time_starttransfer} %{time_total}",
        url,
    ]));
    let parts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(parts.first(), Some(&"200"), "download of {url}: {out}");
    let secs = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (secs(1), secs(2))
}

/// The measurement's name: `proxied first fetch, 1024 MiB wheel`.
pub(crate) fn proxied_what(cfg: &Config) -> String {
    format!("proxied first fetch, {} MiB wheel", cfg.huge >> 20)
}

/// A large wheel fetched through a proxy repo for the first time (streamed to the client while
/// it is written, hashed and kept), against downloading it from the upstream directly.
pub(crate) fn proxied_file(rep: &mut Report, scratch: &Path, cfg: &Config) {
    let up = Server::start_with(Options::default());
    let wheel = big_wheel(scratch, cfg.huge);
    curl_upload(&up, "provider=pypi&reponame=big", &scratch.join(&wheel));
    let _ = std::fs::remove_file(scratch.join(&wheel));
    let direct_url = up.url(&format!("/repo/pypi/big/files/{wheel}"));
    // Warm the upstream's page cache of the file, as a proxy's upstream would be.
    curl_download(&direct_url);
    let (direct_first, direct_total) = curl_download(&direct_url);
    let s = Server::start_with(Options::default());
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({ "provider": "pypi", "name": "px", "kind": "proxy",
            "upstream": { "url": up.url("/repo/pypi/big/simple/"), "token": up.token } }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // A client reads the project page before the file.
    assert_eq!(s.get("/repo/pypi/px/bench-big/").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let (before, _) = s.rss_kib();
    let cpu = (s.cpu_secs(), up.cpu_secs());
    let (first, total) = curl_download(&s.url(&format!("/repo/pypi/px/files/{wheel}")));
    let (_, peak) = s.rss_kib();
    let cpu = (s.cpu_secs() - cpu.0, up.cpu_secs() - cpu.1);
    let what = proxied_what(cfg);
    for (subject, first, total) in [
        ("upstream", direct_first, direct_total),
        ("artifactd", first, total),
    ] {
        rep.add(
            "proxy",
            &format!("{what}: first byte"),
            0,
            subject,
            first * 1000.0,
            "ms",
            String::new(),
        );
        rep.add(
            "proxy",
            &format!("{what}: total"),
            0,
            subject,
            total,
            "s",
            format!("{:.0} MB/s", cfg.huge as f64 / total / 1e6),
        );
    }
    rep.add(
        "proxy",
        &format!("{what}: RSS growth"),
        0,
        "artifactd",
        peak.saturating_sub(before) as f64 / 1024.0,
        "MiB",
        format!("before {} MiB, peak {} MiB", before / 1024, peak / 1024),
    );
    // Where the time goes on a machine with few cores: the proxy receives, hashes, writes and
    // sends every byte, the upstream and curl run beside it.
    rep.add(
        "proxy",
        &format!("{what}: CPU time"),
        0,
        "artifactd",
        cpu.0,
        "s",
        format!(
            "upstream {:.2} s, {} cores",
            cpu.1,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
    );
    // The cached copy is the upstream's bytes.
    let cached = s.head(&format!("/repo/pypi/px/files/{wheel}"));
    assert_eq!(cached.header("x-artifactd-cache"), Some("hit"));
}
