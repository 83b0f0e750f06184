//! Backup and move: `artifactd export` of a server on SQLite and a folder, `import` into
//! PostgreSQL and S3, export again, `import` into MariaDB and a folder, export again. The three
//! exports are the same, file for file; every server serves the same bytes at every index, by-hash
//! and package URL; the first server's token works on the last, and pip and apt-get install
//! from it with the first server's key.

use std::collections::BTreeMap;
use std::path::Path;

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Backend, Options, S3Server, Server, clients, fresh_database, run};

/// Every file below `dir` (relative path → bytes), without `tokens.jsonl` (each server adds
/// its own bootstrap token).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read the export") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .expect("below the export")
                    .to_string_lossy()
                    .into_owned();
                if rel != "tokens.jsonl" {
                    out.insert(rel, std::fs::read(&p).expect("read"));
                }
            }
        }
    }
    out
}

/// The URLs whose bytes must be the same on every server: the dist's signed files, its
/// indexes by name and every file `Release` lists by hash, the snapshot's, the key, the pool
/// file, the PyPI pages and files.
fn urls(s: &Server, wheels: &[&str], deb: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dist in ["dists/stable", "snapshots/rel-1/dists/stable"] {
        let base = format!("/repo/apt/deb/{dist}");
        for f in ["InRelease", "Release", "Release.gpg"] {
            out.push(format!("{base}/{f}"));
        }
        let release = s.get(&format!("{base}/Release")).text();
        for line in release.lines().skip_while(|l| *l != "SHA256:").skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [sha, _, name] = f.as_slice() {
                out.push(format!("{base}/{name}"));
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                out.push(format!("{base}/{dir}/by-hash/SHA256/{sha}"));
            }
        }
    }
    out.push("/repo/apt/deb/pubkey".into());
    out.push(format!("/repo/apt/deb/pool/main/m/moved-tool/{deb}"));
    out.push("/repo/pypi/team/simple/".into());
    out.push("/repo/pypi/team/simple/moved-app/".into());
    out.push("/repo/pypi/team/snapshots/rel-1/simple/moved-app/".into());
    for w in wheels {
        out.push(format!("/repo/pypi/team/files/{w}"));
        out.push(format!("/repo/pypi/team/files/{w}.metadata"));
    }
    out
}

#[test]
fn export_and_import_move_repos_across_backends_byte_for_byte() {
    let a = Server::start();
    let dep = Dist::new("moved-dep", "1.0").wheel();
    let app = Dist::new("moved-app", "1.0").requires("moved-dep").wheel();
    for (f, b) in [&dep, &app] {
        let r = a.addpkg("provider=pypi&reponame=team", f, b);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let deb = Deb::new("moved-tool", "1.0", "amd64").build();
    let r = a.addpkg("provider=apt&reponame=deb&dist=stable", &deb.0, &deb.1);
    assert_eq!(r.status, 201, "{}", r.text());
    run(a
        .rpcli()
        .args(["apt", "snapshot", "create", "deb", "stable", "rel-1"]));
    run(a
        .rpcli()
        .args(["pypi", "snapshot", "create", "team", "rel-1"]));

    let scratch = a.scratch("exports");
    let dirs: Vec<String> = (1..=3)
        .map(|i| scratch.join(format!("x{i}")).display().to_string())
        .collect();
    let out = a.task_ok(&["export", "--to", &dirs[0]]);
    assert!(out.starts_with("exported 2 repo(s)"), "{out}");
    let (code, out) = a.task(&["export", "--to", &dirs[0]]);
    assert_eq!(code, 2, "an export never writes into a used folder: {out}");
    assert!(out.contains("is not empty"), "{out}");
    let (code, out) = a.task(&["export", "pypi/nope", "--to", &dirs[1]]);
    assert!(
        code == 2 && out.contains("There is no repo \"pypi/nope\""),
        "{out}"
    );

    // SQLite + folder → PostgreSQL + S3.
    let s3 = S3Server::start();
    let b = Server::start_with(
        Options::default()
            .env(
                "DATABASE_URL",
                fresh_database(Backend::Postgres).expect("PostgreSQL"),
            )
            .env("S3_URL", s3.url("moved")),
    );
    let out = b.task_ok(&["import", "--from", &dirs[0]]);
    assert!(out.starts_with("imported 2 repo(s), 3 record(s)"), "{out}");
    let (code, out) = b.task(&["import", "--from", &dirs[0]]);
    assert!(code == 2 && out.contains("exists here already"), "{out}");
    assert!(
        !b.data_dir().join("blobs").exists(),
        "the blobs went to S3, not the folder"
    );
    b.task_ok(&["export", "--to", &dirs[1]]);

    // PostgreSQL + S3 → MariaDB + folder.
    let c = Server::start_with(Options::default().env(
        "DATABASE_URL",
        fresh_database(Backend::Mysql).expect("MariaDB"),
    ));
    c.task_ok(&["import", "--from", &dirs[1]]);
    c.task_ok(&["export", "--to", &dirs[2]]);

    let first = tree(Path::new(&dirs[0]));
    assert!(first.len() > 20, "{:?}", first.keys());
    for d in &dirs[1..] {
        let other = tree(Path::new(d));
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>()
        );
        for (k, v) in &first {
            assert!(other[k] == *v, "{k} differs in {d}");
        }
    }

    let wheels = [dep.0.as_str(), app.0.as_str()];
    let paths = urls(&a, &wheels, &deb.0);
    assert!(paths.len() > 30, "{paths:?}");
    for p in &paths {
        let want = a.get(p);
        assert_eq!(want.status, 200, "{p}");
        for s in [&b, &c] {
            let got = s.get(p);
            assert_eq!(got.status, 200, "{p}");
            assert!(got.body == want.body, "{p} differs");
        }
    }
    assert_eq!(c.get_as(Some(&a.token), "/api/v1/audit").status, 200);

    // Clients of the first server move over unchanged: its key, its package versions.
    let cl = clients();
    let pip = c.scratch("pip");
    let py = cl.fresh_venv(&pip.join("venv"), &pip);
    run(cl.pip(&pip, &py).args([
        "install",
        "-i",
        &c.url("/repo/pypi/team/simple/"),
        "moved-app",
    ]));
    let apt = Apt::new(&c.scratch("apt"), &["amd64"]);
    let key = apt.key_path("deb.asc");
    std::fs::write(&key, a.get("/repo/apt/deb/pubkey").body).expect("key");
    apt.add_source(
        "deb",
        &format!("signed-by={}", key.display()),
        &c.url("/repo/apt/deb"),
        "stable",
        "main",
    );
    apt.update();
    let archives = apt.download(&["moved-tool"]);
    assert!(std::fs::read(archives.join(&deb.0)).expect("downloaded") == deb.1);
}

/// Copies the folder `from` to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("target folder");
    for e in std::fs::read_dir(from).expect("read") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_tree(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

#[test]
fn a_native_backup_database_first_then_blobs_restores_with_fsck_repair() {
    let a = Server::start();
    let first = Deb::new("backed-up", "1.0", "amd64").build();
    assert_eq!(
        a.addpkg("provider=apt&reponame=deb&dist=stable", &first.0, &first.1)
            .status,
        201
    );
    // The README's order: the database first (SQLite's online backup), then the blob folder;
    // an upload lands in between, so the blobs are newer than the catalog.
    let backup = a.scratch("backup");
    run(std::process::Command::new("python3").arg("-c").arg(format!(
        "import sqlite3; s = sqlite3.connect('{}'); d = sqlite3.connect('{}'); s.backup(d); d.close()",
        a.data_dir().join("artifactd.sqlite3").display(),
        backup.join("artifactd.sqlite3").display()
    )));
    let later = Deb::new("uploaded-meanwhile", "1.0", "amd64").build();
    assert_eq!(
        a.addpkg("provider=apt&reponame=deb&dist=stable", &later.0, &later.1)
            .status,
        201
    );
    copy_tree(&a.data_dir().join("blobs"), &backup.join("blobs"));

    // Restore into a new server's data folder, then fsck --repair.
    let mut d = Server::start();
    d.stop();
    std::fs::remove_dir_all(d.data_dir()).expect("empty the data folder");
    copy_tree(&backup, &d.data_dir());
    let (code, out) = d.task(&["fsck", "--repair"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("uploaded-meanwhile")
            && out.contains("is in the index but not in the catalog"),
        "{out}"
    );
    assert!(out.contains("all repaired"), "{out}");
    d.restart();
    let apt = Apt::new(&d.scratch("apt"), &["amd64"]);
    let key = apt.key_path("deb.asc");
    std::fs::write(&key, a.get("/repo/apt/deb/pubkey").body).expect("key");
    apt.add_source(
        "deb",
        &format!("signed-by={}", key.display()),
        &d.url("/repo/apt/deb"),
        "stable",
        "main",
    );
    apt.update();
    let archives = apt.download(&["backed-up"]);
    assert!(std::fs::read(archives.join(&first.0)).expect("downloaded") == first.1);
    let packages = d
        .get("/repo/apt/deb/dists/stable/main/binary-amd64/Packages")
        .text();
    assert!(!packages.contains("uploaded-meanwhile"), "{packages}");
}
