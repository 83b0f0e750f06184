//! Storage-facing behaviour on every database backend, from one test body: migrations at
//! start, uploads of every built-in format, idempotence and conflicts, concurrent identical
//! uploads settled by the unique index, persistence across a restart; and riding out a
//! database restart (connections dropped, the port refusing for a while) without restarting.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{
    Backend, Options, Server, TcpProxy, backends, fake_gzip, fresh_database, run,
};

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
    // A snapshot's hold and a promotion's one-transaction change.
    let call = |path: &str, body: serde_json::Value| {
        let r = s.json_as("POST", Some(&s.token), path, &body);
        assert!(
            r.status == 200 || r.status == 201,
            "{backend:?} {path}: {}",
            r.text()
        );
    };
    call(
        "/repo/apt/db/snapshots",
        serde_json::json!({"dist": "stable", "name": "s1"}),
    );
    call(
        "/repo/apt/db/promote",
        serde_json::json!({"from": "stable", "to": "testing"}),
    );
    assert!(
        s.get("/repo/apt/db/dists/testing/Packages").status == 404
            && s.get("/repo/apt/db/dists/testing/main/binary-amd64/Packages")
                .text()
                .contains("Package: db-tool"),
        "{backend:?}"
    );
    call(
        "/repo/apt/db/promote",
        serde_json::json!({"from": "stable", "to": "testing", "snapshot": "s1"}),
    );
    let home = s.get("/").text().replace("&#x2f;", "/");
    assert!(
        home.contains("/ui/tar/db/") && home.contains("/ui/apt/db/"),
        "{backend:?}"
    );
}

#[test]
fn catalog_on_every_database() {
    for backend in backends() {
        exercise(backend);
    }
}

/// Drops every server-side connection to database `name`, as a database restart does.
fn kill_connections(backend: Backend, name: &str) {
    match backend {
        Backend::Mysql => {
            let ids = run(artifactd_tests::tool("mysql").args([
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "-N",
                "-e",
                &format!("SELECT id FROM information_schema.processlist WHERE db = '{name}'"),
            ]));
            assert!(
                !ids.trim().is_empty(),
                "the server holds no connection to {name}"
            );
            for id in ids.split_whitespace() {
                // A connection may end by itself in between.
                let _ = artifactd_tests::try_run(artifactd_tests::tool("mysql").args([
                    "-h",
                    "127.0.0.1",
                    "-u",
                    "root",
                    "-e",
                    &format!("KILL {id}"),
                ]));
            }
        }
        Backend::Postgres => {
            let base = Backend::Postgres.server_url();
            let killed = run(artifactd_tests::tool("psql")
                .arg(format!("{base}/postgres"))
                .args([
                    "-Atc",
                    &format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}'"),
                ]));
            assert_ne!(
                killed.trim(),
                "0",
                "the server holds no connection to {name}"
            );
        }
        Backend::Sqlite => {}
    }
}

#[test]
fn database_restarts_are_ridden_out() {
    for backend in backends().into_iter().filter(|b| *b != Backend::Sqlite) {
        let url = fresh_database(backend).expect("database url");
        let (head, name) = url.rsplit_once('/').expect("url with a database");
        let port = if backend == Backend::Mysql {
            3306
        } else {
            5432
        };
        let proxy = TcpProxy::start(&format!("127.0.0.1:{port}"));
        let proxied = format!(
            "{}:{}/{name}",
            head.rsplit_once(':').expect("url with a port").0,
            proxy.port()
        );
        let s = Server::start_with(Options::with_tar().arg("--database").arg(&proxied));
        let up = |n: &str| {
            s.addpkg(
                "provider=tar&reponame=db",
                &format!("{n}-1.0.tgz"),
                &fake_gzip(n.as_bytes()),
            )
        };
        assert_eq!(up("before").status, 201);

        // Connections killed on the server's side: the pool notices and reconnects; no request
        // fails.
        kill_connections(backend, name);
        assert_eq!(
            s.get("/repo/tar/db/before/1.0/before-1.0.tgz").status,
            200,
            "{backend:?}"
        );
        assert_eq!(up("after-kill").status, 201, "{backend:?}");

        assert_eq!(s.get("/readyz").status, 200, "{backend:?}");
        // The database away for a while: a clear 503, nothing recorded; the node says it is
        // not ready, within 5 s, and names the part.
        proxy.stop();
        let asked = std::time::Instant::now();
        let ready = s.get("/readyz");
        assert_eq!(ready.status, 503, "{backend:?}: {}", ready.text());
        assert!(
            ready.text().contains("database: unreachable") && ready.text().contains("storage: ok"),
            "{}",
            ready.text()
        );
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(s.get("/healthz").status, 200, "the process runs");
        let r = up("while-down");
        assert_eq!(r.status, 503, "{backend:?}: {}\n{}", r.text(), s.log());
        assert_eq!(r.error(), "The database is unreachable; try again shortly.");
        let r = s.get("/api/v1/repos/tar/db/packages");
        assert_eq!(r.status, 503, "{backend:?}");

        // Back: the same process serves again and takes uploads.
        proxy.resume();
        let mut status = 0;
        for _ in 0..100 {
            status = s.get("/api/v1/repos/tar/db/packages").status;
            if status == 200 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(status, 200, "{backend:?} did not reconnect");
        assert_eq!(s.get("/readyz").status, 200, "{backend:?}");
        assert_eq!(up("after-restart").status, 201, "{backend:?}");
        let names: Vec<String> = s.get("/api/v1/repos/tar/db/packages").json()["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            names,
            ["after-kill", "after-restart", "before"],
            "{backend:?}"
        );
    }
}
