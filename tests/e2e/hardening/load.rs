//! A minute of reads and uploads: no 5xx, no leaked descriptors or temporary files, bounded
//! memory.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server};

/// Open file descriptors of the server process.
fn fds(s: &Server) -> usize {
    let pid = s.pid();
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn sixty_seconds_of_reads_and_uploads_without_5xx_or_leaks() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let s = Server::start_with(Options::with_tar());
    for v in 0..20 {
        let (f, b) = Dist::new("load-pkg", &format!("1.{v}")).wheel();
        assert_eq!(s.addpkg("provider=pypi&reponame=load", &f, &b).status, 201);
        let (f, b) = Deb::new("load-tool", &format!("1.{v}"), "amd64").build();
        assert_eq!(
            s.addpkg("provider=apt&reponame=load&dist=stable", &f, &b)
                .status,
            201
        );
    }
    let _ = s.get("/");
    let (fds_before, (rss_before, _)) = (fds(&s), s.rss_kib());
    let stop = AtomicBool::new(false);
    let requests = AtomicU64::new(0);
    let uploads = AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let reads = [
        "/repo/pypi/load/",
        "/repo/pypi/load/load-pkg/",
        "/repo/pypi/load/files/load_pkg-1.0-py3-none-any.whl",
        "/repo/apt/load/dists/stable/InRelease",
        "/repo/apt/load/dists/stable/main/binary-amd64/Packages.gz",
        "/repo/apt/load/pool/main/l/load-tool/load-tool_1.0_amd64.deb",
        "/ui/pypi/load/load-pkg/",
        "/api/v1/repos/pypi/load/packages",
        "/repo/pypi/load/no-such-project/",
    ];
    let duration = std::time::Duration::from_secs(60);
    let (mut rss_mid, mut fds_mid) = (0, 0);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (s, stop, requests, failures) = (&s, &stop, &requests, &failures);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let path = reads[i % reads.len()];
                    let r = if i % 2 == 0 {
                        s.get(path)
                    } else {
                        s.get_with(path, &[("Accept", "application/vnd.pypi.simple.v1+json")])
                    };
                    if r.status >= 500 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("GET {path}: {}", r.status));
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        for t in 0..2 {
            let (s, stop, uploads, failures) = (&s, &stop, &uploads, &failures);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let version = format!("2.{t}.{n}");
                    let (query, (f, b)) = if n % 2 == 0 {
                        (
                            "provider=pypi&reponame=load",
                            Dist::new("load-pkg", &version).wheel(),
                        )
                    } else {
                        (
                            "provider=apt&reponame=load&dist=stable",
                            Deb::new("load-tool", &version, "amd64").build(),
                        )
                    };
                    let r = s.addpkg(query, &f, &b);
                    if r.status != 201 {
                        failures.lock().unwrap().push(format!(
                            "upload {f}: {} {}",
                            r.status,
                            r.text()
                        ));
                    }
                    // And a refused one now and then.
                    let r = s.addpkg(query, &f.replace("2.", "9."), b"garbage");
                    if r.status >= 500 {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("bad upload: {}", r.status));
                    }
                    uploads.fetch_add(2, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        std::thread::sleep(duration / 2);
        (rss_mid, fds_mid) = (s.rss_kib().0, fds(&s));
        std::thread::sleep(duration / 2);
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // Connections close; nothing stays open or behind.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (fds_after, (rss_after, peak)) = (fds(&s), s.rss_kib());
    let total = requests.load(Ordering::Relaxed);
    eprintln!(
        "load: {total} reads ({:.0}/s) and {} uploads in 60 s; fds {fds_before} -> {fds_mid} at 30 s -> {fds_after}; RSS {} -> {} (30 s: {}) MiB, peak {} MiB",
        total as f64 / duration.as_secs_f64(),
        uploads.load(Ordering::Relaxed),
        rss_before / 1024,
        rss_after / 1024,
        rss_mid / 1024,
        peak / 1024
    );
    // The database pool and the client's kept-alive connections grow to their bounds in the
    // first half; a leak would keep growing in the second.
    assert!(
        fds_after <= fds_mid + 8,
        "file descriptors leaked: {fds_before} at the start, {fds_mid} at 30 s, {fds_after} at the end"
    );
    let tmp = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp, 0, "temporary files left behind");
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    assert!(
        rss_after < rss_mid + 64 * 1024,
        "RSS keeps growing: {rss_mid} KiB at 30 s, {rss_after} KiB at 60 s"
    );
    assert!(!s.log().contains("panicked"));
}
