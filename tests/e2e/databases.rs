//! Storage-facing behaviour on every database backend, from one test body: migrations at
//! start, uploads of every built-in format, idempotence and conflicts, concurrent identical
//! uploads settled by the unique index, persistence across a restart.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Backend, Options, Server, backends, fake_gzip};

fn exercise(backend: Backend) {
    let mut s = Server::start_with(Options::with_tar().on(backend));
    let tgz = fake_gzip(b"db test");
    assert_eq!(
        s.addpkg("provider=tar&reponame=db", "t-1.0.tgz", &tgz)
            .status,
        201,
        "{backend:?}"
    );
    assert_eq!(
        s.addpkg("provider=tar&reponame=db", "t-1.0.tgz", &tgz)
            .status,
        200,
        "{backend:?}"
    );
    assert_eq!(
        s.addpkg(
            "provider=tar&reponame=db",
            "t-1.0.tgz",
            &fake_gzip(b"other")
        )
        .status,
        409,
        "{backend:?}"
    );
    // File names are case-sensitive on every backend (MySQL compares case-insensitively by default).
    assert_eq!(
        s.addpkg(
            "provider=tar&reponame=db",
            "T-1.0.tgz",
            &fake_gzip(b"upper")
        )
        .status,
        201,
        "{backend:?}"
    );
    let wheel = Dist::new("db-pkg", "1.0").wheel();
    assert_eq!(
        s.addpkg("provider=pypi&reponame=db", &wheel.0, &wheel.1)
            .status,
        201,
        "{backend:?}"
    );
    let deb = Deb::new("db-tool", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=db&dist=stable", &deb.0, &deb.1)
            .status,
        201,
        "{backend:?}"
    );

    // Eight identical uploads at once: one stores, the others find it stored.
    let same = fake_gzip(b"raced");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    s.addpkg("provider=tar&reponame=race", "race-1.0.tgz", &same)
                        .status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("upload thread"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&c| c == 201).count(),
        1,
        "{backend:?}: {statuses:?}\n{}",
        s.log()
    );
    assert!(
        statuses.iter().all(|&c| c == 201 || c == 200),
        "{backend:?}: {statuses:?}\n{}",
        s.log()
    );
    let index = s.get("/repo/tar/race/index.json").json();
    assert_eq!(
        index["files"].as_array().map(Vec::len),
        Some(1),
        "{backend:?}: {index}"
    );

    s.restart();
    assert_eq!(
        s.get("/repo/tar/db/t/1.0/t-1.0.tgz").body,
        tgz,
        "{backend:?}"
    );
    assert_eq!(
        s.get("/repo/tar/db/T/1.0/T-1.0.tgz").body,
        fake_gzip(b"upper"),
        "{backend:?}"
    );
    assert_eq!(
        s.get(&format!("/repo/pypi/db/files/{}", wheel.0)).body,
        wheel.1,
        "{backend:?}"
    );
    assert!(
        s.get("/repo/apt/db/dists/stable/Release")
            .text()
            .contains("main/binary-amd64/Packages")
    );
    let home = s.get("/").text();
    assert!(
        home.contains("/repo/tar/db/") && home.contains("/repo/apt/db/"),
        "{backend:?}"
    );
}

#[test]
fn catalog_on_every_database() {
    for backend in backends() {
        exercise(backend);
    }
}
