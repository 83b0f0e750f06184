//! Three `artifactd` nodes on one network database and one S3 bucket: concurrent uploads
//! through every node, then every node serves complete, signed indexes; a node killed in the
//! middle of uploads loses nothing it acknowledged, changes show on every node at once, and gc
//! cleans what a crash leaves.

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Backend, Options, S3Server, Server, backends, fresh_database};

const PER_NODE: usize = 50;

#[test]
fn three_nodes_share_one_database_and_bucket() {
    let Some(backend) = backends().into_iter().find(|b| *b != Backend::Sqlite) else {
        eprintln!(
            "no network database configured: the multi-node test needs ARTIFACTD_TEST_MYSQL_URL or ARTIFACTD_TEST_POSTGRES_URL"
        );
        return;
    };
    let url = fresh_database(backend).expect("database url");
    let s3 = S3Server::start();
    let bucket = s3.url("nodes");
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            Server::start_with(
                Options::default()
                    .arg("--database")
                    .arg(&url)
                    .env("S3_URL", &bucket),
            )
        })
        .collect();

    std::thread::scope(|scope| {
        for (n, node) in nodes.iter().enumerate() {
            scope.spawn(move || {
                for i in 0..PER_NODE {
                    let version = format!("1.{n}.{i}");
                    let (f, b) = Dist::new("multi-node", &version).wheel();
                    let r = node.addpkg("provider=pypi&reponame=shared", &f, &b);
                    assert_eq!(r.status, 201, "node {n} wheel {version}: {}", r.text());
                    let (f, b) = Deb::new("mn-tool", &version, "amd64").build();
                    let r = node.addpkg("provider=apt&reponame=shared&dist=stable", &f, &b);
                    assert_eq!(
                        r.status,
                        201,
                        "node {n} deb {version}: {}\n{}",
                        r.text(),
                        node.log()
                    );
                }
            });
        }
    });

    let total = 3 * PER_NODE;
    for (n, node) in nodes.iter().enumerate() {
        let page = node
            .get_with(
                "/repo/pypi/shared/multi-node/",
                &[("Accept", "application/vnd.pypi.simple.v1+json")],
            )
            .json();
        assert_eq!(
            page["versions"].as_array().map(Vec::len),
            Some(total),
            "node {n} pypi index"
        );
        let apt = Apt::new(&node.scratch(&format!("apt{n}")), &["amd64"]);
        let key = apt.key_path("shared.asc");
        std::fs::write(&key, node.get("/repo/apt/shared/pubkey").body).expect("key");
        apt.add_source(
            "shared",
            &format!("signed-by={}", key.display()),
            &node.url("/repo/apt/shared"),
            "stable",
            "main",
        );
        apt.update();
        let mut madison = std::process::Command::new("apt-cache");
        madison
            .env("APT_CONFIG", apt.root().join("apt.conf"))
            .args(["madison", "mn-tool"]);
        let listed = artifactd_tests::run(&mut madison);
        assert_eq!(
            listed.lines().count(),
            total,
            "node {n} apt index:\n{listed}"
        );
        // Every file an index names is there.
        let packages = node
            .get("/repo/apt/shared/dists/stable/main/binary-amd64/Packages")
            .text();
        for line in packages
            .lines()
            .filter_map(|l| l.strip_prefix("Filename: "))
            .take(20)
        {
            assert_eq!(
                node.head(&format!("/repo/apt/shared/{line}")).status,
                200,
                "{line}"
            );
        }
    }
}

/// Uploads `count` wheels and debs to the node at `addr`; sends each acknowledged file name and
/// stops at the first failure (the node was killed).
fn upload_until_failure(
    addr: &str,
    token: &str,
    node: usize,
    count: usize,
    acks: &std::sync::mpsc::Sender<(usize, String)>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    for i in 0..count {
        let version = format!("2.{node}.{i}");
        let files = [
            (
                "pypi&reponame=killed",
                Dist::new("kill-test", &version).wheel(),
            ),
            (
                "apt&reponame=killed&dist=stable",
                Deb::new("kill-tool", &version, "amd64").build(),
            ),
        ];
        for (query, (f, b)) in files {
            match artifactd_tests::addpkg_raw(
                &agent,
                addr,
                token,
                &format!("provider={query}"),
                &f,
                &b,
            ) {
                Some(201) => {
                    if acks.send((node, f)).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}

#[test]
fn a_node_killed_mid_upload_loses_nothing_and_gc_cleans_up() {
    let Some(backend) = backends().into_iter().find(|b| *b != Backend::Sqlite) else {
        eprintln!("no network database configured: skipped");
        return;
    };
    let url = fresh_database(backend).expect("database url");
    let s3 = S3Server::start();
    let bucket = s3.url("killed");
    let opts = || {
        Options::default()
            .arg("--database")
            .arg(&url)
            .env("S3_URL", &bucket)
    };
    let mut nodes: Vec<Server> = (0..3).map(|_| Server::start_with(opts())).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let uploaders: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let (addr, token, tx) = (node.addr.clone(), node.token.clone(), tx.clone());
            std::thread::spawn(move || upload_until_failure(&addr, &token, n, 30, &tx))
        })
        .collect();
    drop(tx);
    // Node 0 dies (SIGKILL) in the middle of its stream; the others go on.
    let mut acked: Vec<(usize, String)> = Vec::new();
    while acked.iter().filter(|(n, _)| *n == 0).count() < 10 {
        acked.push(
            rx.recv_timeout(std::time::Duration::from_secs(60))
                .expect("uploads progress"),
        );
    }
    nodes[0].stop();
    for u in uploaders {
        u.join().expect("uploader");
    }
    acked.extend(rx.try_iter());
    assert!(
        acked.iter().filter(|(n, _)| *n != 0).count() == 2 * 2 * 30,
        "the surviving nodes took every upload"
    );

    // One more upload through a surviving node republishes; then both survivors serve every
    // acknowledged file, and every file their indexes name exists.
    let (f, b) = Deb::new("kill-tool", "9.0", "amd64").build();
    assert_eq!(
        nodes[1]
            .addpkg("provider=apt&reponame=killed&dist=stable", &f, &b)
            .status,
        201
    );
    for node in &nodes[1..] {
        let packages = node
            .get("/repo/apt/killed/dists/stable/main/binary-amd64/Packages")
            .text();
        let simple = node
            .get_with(
                "/repo/pypi/killed/kill-test/",
                &[("Accept", "application/vnd.pypi.simple.v1+json")],
            )
            .text();
        for (n, f) in &acked {
            let (listed, path) = if f.ends_with(".deb") {
                (
                    packages.contains(f.as_str()),
                    format!("/repo/apt/killed/pool/main/k/kill-tool/{f}"),
                )
            } else {
                (
                    simple.contains(f.as_str()),
                    format!("/repo/pypi/killed/files/{f}"),
                )
            };
            assert!(listed, "{f} (acknowledged by node {n}) is not in the index");
            assert_eq!(node.head(&path).status, 200, "{f} is gone");
        }
        for line in packages
            .lines()
            .filter_map(|l| l.strip_prefix("Filename: "))
        {
            assert_eq!(
                node.head(&format!("/repo/apt/killed/{line}")).status,
                200,
                "the index names a missing file {line}"
            );
        }
    }

    // A change through one node is visible on the others at once (no stale cache).
    for i in 0..5 {
        let version = format!("3.0.{i}");
        let (f, b) = Deb::new("kill-tool", &version, "amd64").build();
        assert_eq!(
            nodes[1 + i % 2]
                .addpkg("provider=apt&reponame=killed&dist=stable", &f, &b)
                .status,
            201
        );
        let (wf, wb) = Dist::new("kill-test", &version).wheel();
        assert_eq!(
            nodes[1 + i % 2]
                .addpkg("provider=pypi&reponame=killed", &wf, &wb)
                .status,
            201
        );
        let other = &nodes[2 - i % 2];
        assert!(
            other
                .get("/repo/apt/killed/dists/stable/main/binary-amd64/Packages")
                .text()
                .contains(&f),
            "{f} not yet visible on the other node"
        );
        assert!(
            other
                .get_with(
                    "/repo/pypi/killed/kill-test/",
                    &[("Accept", "application/vnd.pypi.simple.v1+json")],
                )
                .text()
                .contains(&wf),
            "{wf} not yet visible on the other node"
        );
    }

    // The killed node comes back on the same storage; gc removes an unreferenced blob and
    // nothing that is referenced.
    nodes[0].restart();
    let orphan = format!("content/sha256/00/00/{}", "0".repeat(64));
    s3.put_object("killed", &orphan, b"orphan");
    assert!(s3.has_object("killed", &orphan));
    let out = artifactd_tests::run(
        std::process::Command::new(artifactd_tests::bin("artifactd"))
            .arg("--data-dir")
            .arg(nodes[0].data_dir())
            .arg("--database")
            .arg(&url)
            .env("S3_URL", &bucket)
            .args(["gc", "--grace-secs", "0"]),
    );
    assert!(out.contains("removed "), "{out}");
    assert!(!out.contains("removed 0 unreferenced"), "{out}");
    assert!(!s3.has_object("killed", &orphan), "gc removed the orphan");
    for (_, f) in &acked {
        let path = if f.ends_with(".deb") {
            format!("/repo/apt/killed/pool/main/k/kill-tool/{f}")
        } else {
            format!("/repo/pypi/killed/files/{f}")
        };
        assert_eq!(nodes[0].get(&path).status, 200, "gc removed {f}");
    }
}
