//! Three `artifactd` nodes on one network database and one S3 bucket: concurrent uploads
//! through every node, then every node serves complete, signed indexes.

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
