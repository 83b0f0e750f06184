//! S3 blob storage against a real S3-compatible server (moto) on loopback: pip and apt-get
//! end to end, a restart, and the bucket created at start.

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
