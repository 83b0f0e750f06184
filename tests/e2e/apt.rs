//! The APT provider with real clients: apt-get with a private APT_CONFIG, gpgv, dpkg-deb.

use std::process::Command;

use artifactd_apt::testing::{Compression, Deb};
use artifactd_tests::{Apt, Server, dpkg_deb, dpkg_deb_with, run, try_run};

fn upload(
    s: &Server,
    repo: &str,
    dist: &str,
    comp: &str,
    (f, b): &(String, Vec<u8>),
) -> serde_json::Value {
    let r = s.addpkg(
        &format!("provider=apt&reponame={repo}&dist={dist}&component={comp}"),
        f,
        b,
    );
    assert!(
        r.status == 201 || r.status == 200,
        "{f}: {} {}",
        r.status,
        r.text()
    );
    r.json()
}

fn fetch_key(s: &Server, apt: &Apt, repo: &str) -> (String, String) {
    let asc = s.get(&format!("/repo/apt/{repo}/pubkey"));
    assert_eq!(asc.status, 200);
    assert!(
        asc.text()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    let asc_path = apt.key_path(&format!("{repo}.asc"));
    std::fs::write(&asc_path, &asc.body).expect("write key");
    let bin = s.get(&format!("/repo/apt/{repo}/pubkey.gpg"));
    let gpg_path = apt.key_path(&format!("{repo}.gpg"));
    std::fs::write(&gpg_path, &bin.body).expect("write key");
    (
        asc_path.display().to_string(),
        gpg_path.display().to_string(),
    )
}

#[test]
fn seed_upload_then_apt_get_update_and_install_with_signatures() {
    let s = Server::start();
    let work = s.scratch("debs");
    // The seed's own call (python3_3.6.7-1~18.04_amd64.deb into bionic), with curl.
    let (f, b) = dpkg_deb(&work, "python3", "3.6.7-1~18.04", "amd64", "");
    assert_eq!(f, "python3_3.6.7-1~18.04_amd64.deb");
    let out = run(artifactd_tests::tool("curl")
        .arg("-sS")
        .arg("-u")
        .arg(format!("__token__:{}", s.token))
        .arg("-F")
        .arg(format!("f=@{}", work.join(&f).display()))
        .arg(s.url(
            "/addpkg?provider=apt&reponame=ubuntu&name=python3&version=3.6.7-1~18.04&dist=bionic",
        )));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["filename"], "python3_3.6.7-1~18.04_amd64.deb", "{out}");
    assert_eq!(
        j["url"],
        s.url("/repo/apt/ubuntu/pool/main/p/python3/python3_3.6.7-1~18.04_amd64.deb")
    );

    // Two dists, two components, amd64 + all + arm64, a dependency inside the repo.
    let lib = dpkg_deb(&work, "libgreet1", "1.0-1", "amd64", "");
    let app = dpkg_deb(
        &work,
        "greeter",
        "1.0-1",
        "amd64",
        "Depends: libgreet1 (>= 1.0), greeter-data\n",
    );
    let data = dpkg_deb(&work, "greeter-data", "1.0-1", "all", "");
    let arm = dpkg_deb(
        &work,
        "greeter",
        "1.0-1",
        "arm64",
        "Depends: greeter-data\n",
    );
    let extra = dpkg_deb(&work, "contrib-tool", "0.1", "amd64", "");
    for (dist, comp, deb) in [
        ("bookworm", "main", &lib),
        ("bookworm", "main", &app),
        ("bookworm", "main", &data),
        ("bookworm", "main", &arm),
        ("bookworm", "contrib", &extra),
        ("trixie", "main", &data),
    ] {
        upload(&s, "ubuntu", dist, comp, deb);
    }

    let apt = Apt::new(&s.scratch("apt"), &["amd64", "arm64"]);
    let (asc, gpg) = fetch_key(&s, &apt, "ubuntu");
    let uri = s.url("/repo/apt/ubuntu");
    apt.add_source(
        "bionic",
        &format!("signed-by={asc}"),
        &uri,
        "bionic",
        "main",
    );
    apt.add_source(
        "bookworm",
        &format!("signed-by={gpg}"),
        &uri,
        "bookworm",
        "main contrib",
    );
    apt.add_source(
        "trixie",
        &format!("signed-by={asc}"),
        &uri,
        "trixie",
        "main",
    );
    apt.update();

    let archives = apt.download(&["greeter", "python3", "contrib-tool"]);
    for (name, bytes) in [&app, &lib, &data, &extra, &(f.clone(), b.clone())] {
        let got = std::fs::read(archives.join(name))
            .unwrap_or_else(|e| panic!("{name} was not downloaded: {e}"));
        assert!(got == *bytes, "{name} differs from the uploaded bytes");
    }
    // An arm64 machine gets the arm64 build and the shared Architecture: all package.
    let arm_apt = Apt::new(&s.scratch("apt-arm64"), &["arm64"]);
    let (arm_key, _) = fetch_key(&s, &arm_apt, "ubuntu");
    arm_apt.add_source(
        "bookworm",
        &format!("signed-by={arm_key}"),
        &uri,
        "bookworm",
        "main",
    );
    arm_apt.update();
    let arm_archives = arm_apt.download(&["greeter"]);
    for (name, bytes) in [&arm, &data] {
        assert!(
            std::fs::read(arm_archives.join(name)).unwrap() == *bytes,
            "{name} (arm64 machine)"
        );
    }

    // An upgrade: a newer version is seen after the next update.
    let newer = dpkg_deb(&work, "libgreet1", "1.1-1", "amd64", "");
    upload(&s, "ubuntu", "bookworm", "main", &newer);
    apt.update();
    let policy = apt.policy("libgreet1");
    assert!(policy.contains("Candidate: 1.1-1"), "{policy}");
    let archives = apt.download(&["libgreet1"]);
    assert!(std::fs::read(archives.join(&newer.0)).unwrap() == newer.1);

    // gpgv verifies both signature forms against the served key.
    let keyring = gpg.clone();
    let dir = s.scratch("gpgv");
    for dist in ["bionic", "bookworm", "trixie"] {
        let inrelease = s.get(&format!("/repo/apt/ubuntu/dists/{dist}/InRelease"));
        let release = s.get(&format!("/repo/apt/ubuntu/dists/{dist}/Release"));
        let sig = s.get(&format!("/repo/apt/ubuntu/dists/{dist}/Release.gpg"));
        assert!(sig.text().starts_with("-----BEGIN PGP SIGNATURE-----"));
        std::fs::write(dir.join("InRelease"), &inrelease.body).unwrap();
        std::fs::write(dir.join("Release"), &release.body).unwrap();
        std::fs::write(dir.join("Release.gpg"), &sig.body).unwrap();
        let (ok, out) = try_run(
            artifactd_tests::tool("gpgv")
                .arg("--keyring")
                .arg(&keyring)
                .arg(dir.join("InRelease")),
        );
        assert!(ok, "gpgv InRelease ({dist}): {out}");
        let (ok, out) = try_run(
            artifactd_tests::tool("gpgv")
                .arg("--keyring")
                .arg(&keyring)
                .arg(dir.join("Release.gpg"))
                .arg(dir.join("Release")),
        );
        assert!(ok, "gpgv Release.gpg ({dist}): {out}");
        let text = release.text();
        assert!(
            text.contains(&format!("Suite: {dist}\n"))
                && text.contains(&format!("Codename: {dist}\n"))
        );
        assert!(text.contains("Acquire-By-Hash: yes"));
        assert!(text.contains("Date: ") && text.contains(" UTC\n"));
    }
    let release = s.get("/repo/apt/ubuntu/dists/bookworm/Release").text();
    assert!(release.contains("Components: contrib main\n"), "{release}");
    assert!(
        release.contains("Architectures: amd64 arm64\n"),
        "{release}"
    );
    assert!(
        release.contains(" main/binary-arm64/Packages\n"),
        "{release}"
    );

    // A tampered Release fails gpgv: the check can fail.
    std::fs::write(dir.join("Release"), release.replace("bookworm", "b0okworm")).unwrap();
    std::fs::write(
        dir.join("Release.gpg"),
        s.get("/repo/apt/ubuntu/dists/bookworm/Release.gpg").body,
    )
    .unwrap();
    let (ok, _) = try_run(
        artifactd_tests::tool("gpgv")
            .arg("--keyring")
            .arg(&keyring)
            .arg(dir.join("Release.gpg"))
            .arg(dir.join("Release")),
    );
    assert!(!ok, "gpgv must refuse a changed Release");

    // Browsing, the install script, HEAD and Range on pool files.
    let root = s.get("/repo/apt/ubuntu/");
    assert!(root.text().contains("dists/bookworm/"), "{}", root.text());
    let dist_page = s.get("/repo/apt/ubuntu/dists/bookworm/");
    assert!(dist_page.text().contains("greeter-data"));
    let script = s.get("/repo/apt/ubuntu/dists/bookworm/install").text();
    assert!(
        script.contains("/etc/apt/keyrings/")
            && script.contains("Signed-By:")
            && script.contains("apt-get update"),
        "{script}"
    );
    assert!(!script.contains("apt-key"));
    run(Command::new("sh").arg("-n").arg({
        let p = dir.join("install.sh");
        std::fs::write(&p, &script).unwrap();
        p
    }));
    let pool = format!("/repo/apt/ubuntu/pool/main/g/greeter/{}", app.0);
    assert_eq!(
        s.head(&pool).header("content-length"),
        Some(app.1.len().to_string().as_str())
    );
    assert_eq!(
        s.get_with(&pool, &[("Range", "bytes=0-7")]).body,
        b"!<arch>\n"
    );
}

#[test]
fn control_compressions_and_duplicates() {
    let s = Server::start();
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let work = s.scratch("debs");
    let dpkg_made: Vec<(String, Vec<u8>)> = ["xz", "zstd", "none"]
        .iter()
        .map(|z| dpkg_deb_with(&work, &format!("dpkg-{z}"), "1.0", "amd64", "", z))
        .collect();
    for d in &dpkg_made {
        upload(&s, "c", "stable", "main", d);
    }
    let debs = [
        Deb::new("plain-ctl", "1.0", "amd64")
            .compression(Compression::None)
            .build(),
        Deb::new("xz-ctl", "1.0", "amd64")
            .compression(Compression::Xz)
            .build(),
        Deb::new("gz-ctl", "1:1.0-1", "all").build(),
    ];
    for d in &debs {
        upload(&s, "c", "stable", "main", d);
    }
    // Same bytes again: 200; other bytes: 409, and nothing changes.
    let again = s.addpkg(
        "provider=apt&reponame=c&dist=stable",
        &debs[0].0,
        &debs[0].1,
    );
    assert_eq!(again.status, 200, "{}", again.text());
    let before = s.get("/repo/apt/c/dists/stable/Release").text();
    let other = Deb::new("plain-ctl", "1.0", "amd64")
        .payload(b"other")
        .build();
    let r = s.addpkg("provider=apt&reponame=c&dist=stable", &other.0, &other.1);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(s.get("/repo/apt/c/dists/stable/Release").text(), before);

    let (asc, _) = fetch_key(&s, &apt, "c");
    apt.add_source(
        "c",
        &format!("signed-by={asc}"),
        &s.url("/repo/apt/c/"),
        "stable",
        "main",
    );
    apt.update();
    let archives = apt.download(&[
        "plain-ctl",
        "xz-ctl",
        "gz-ctl",
        "dpkg-xz",
        "dpkg-zstd",
        "dpkg-none",
    ]);
    for (name, bytes) in &dpkg_made {
        assert!(
            std::fs::read(archives.join(name)).unwrap() == *bytes,
            "{name}"
        );
    }
    // apt names downloads with the epoch, escaped.
    for ((_, bytes), file) in debs.iter().zip([
        "plain-ctl_1.0_amd64.deb",
        "xz-ctl_1.0_amd64.deb",
        "gz-ctl_1%3a1.0-1_all.deb",
    ]) {
        let got = std::fs::read(archives.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(got == *bytes, "{file}");
    }
}

#[test]
fn bad_debian_uploads_are_refused_with_the_rule() {
    let s = Server::start();
    let good = Deb::new("good", "1.0", "amd64");
    let (gf, gb) = good.build();
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        ("", gf.clone(), gb.clone(), "dist"),
        ("&dist=stable&name=other", gf.clone(), gb.clone(), "name parameter"),
        ("&dist=stable&version=2.0", gf.clone(), gb.clone(), "version parameter"),
        ("&dist=a/b", gf.clone(), gb.clone(), "Invalid dist"),
        ("&dist=stable&component=..", gf.clone(), gb.clone(), "Invalid component"),
        ("&dist=stable", "x.deb".into(), b"just text".to_vec(), "not a Debian package"),
        ("&dist=stable", "x.deb".into(), gb[..gb.len() / 2].to_vec(), "truncated"),
        ("&dist=stable", "x.deb".into(), good.build_with_control("Package: good\nVersion: 1.0\n").1, "Architecture"),
        ("&dist=stable", "x.deb".into(), good.build_with_control("Package: good\nVersion: 1.0\nArchitecture: amd64\nSHA256: 00\n").1, "may not set SHA256"),
        ("&dist=stable", "x.deb".into(), good.build_with_control("Package: Bad_Name\nVersion: 1.0\nArchitecture: amd64\n").1, "policy"),
        ("&dist=stable", "x.deb".into(), good.build_with_control("Package: good\nVersion: one\nArchitecture: amd64\n").1, "policy"),
        ("&dist=stable", "x.deb".into(), good.build_with_control("Package: good\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n\nPackage: evil\nVersion: 1\nArchitecture: amd64\n").1, "paragraph"),
    ];
    for (params, f, b, needle) in &cases {
        let r = s.addpkg(&format!("provider=apt&reponame=bad{params}"), f, b);
        assert_eq!(r.status, 400, "{params} {f}: {}", r.text());
        assert!(
            r.error().contains(needle),
            "{params}: {:?} should mention {needle:?}",
            r.error()
        );
    }
    assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    assert_eq!(s.get("/repo/apt/bad/").status, 404);
}

#[test]
fn apt_get_update_never_fails_while_a_dist_is_republished() {
    let s = Server::start();
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    upload(
        &s,
        "busy",
        "stable",
        "main",
        &Deb::new("seed-pkg", "1.0", "amd64").build(),
    );
    let (asc, _) = fetch_key(&s, &apt, "busy");
    apt.add_source(
        "busy",
        &format!("signed-by={asc}"),
        &s.url("/repo/apt/busy"),
        "stable",
        "main",
    );
    let addr = s.addr.clone();
    let token = s.token.clone();
    let uploader = std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        for n in 0..40 {
            let (f, b) = Deb::new("churn", &format!("1.{n}"), "amd64").build();
            let boundary = "xyzzy";
            let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{f}\"\r\n\r\n").into_bytes();
            body.extend_from_slice(&b);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let r = agent
                .post(format!(
                    "http://{addr}/addpkg?provider=apt&reponame=busy&dist=stable"
                ))
                .header("Authorization", format!("Bearer {token}"))
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .send(&body[..])
                .expect("upload");
            assert_eq!(r.status(), 201);
        }
    });
    let mut updates = 0;
    while !uploader.is_finished() {
        apt.update();
        updates += 1;
    }
    uploader.join().expect("uploader");
    apt.update();
    assert!(apt.policy("churn").contains("Candidate: 1.39"));
    assert!(
        updates >= 2,
        "only {updates} updates ran during the uploads"
    );
}

#[test]
fn a_large_dist_is_published_in_chunks_that_apt_reads() {
    use std::io::Read as _;
    let s = Server::start();
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    for i in 0..150 {
        let arch = if i % 4 == 3 { "all" } else { "amd64" };
        upload(
            &s,
            "big",
            "stable",
            "main",
            &Deb::new(&format!("pkg{i:03}"), "1.0", arch).build(),
        );
    }
    // A deletion publishes the dist in full, in chunks for its size; uploads after it rewrite
    // only their own chunk.
    let r = s.delete_as(Some(&s.token), "/api/v1/repos/apt/big/packages/pkg000/1.0");
    assert!(r.status < 300, "{} {}", r.status, r.text());
    for name in ["late-a", "late-b", "late-c"] {
        upload(
            &s,
            "big",
            "stable",
            "main",
            &Deb::new(name, "1.0", "amd64").build(),
        );
    }
    let gz = s
        .get("/repo/apt/big/dists/stable/main/binary-amd64/Packages.gz")
        .body;
    let mut rest: &[u8] = &gz;
    let mut members = 0;
    let mut text = Vec::new();
    while !rest.is_empty() {
        let mut member = flate2::bufread::GzDecoder::new(rest);
        member.read_to_end(&mut text).expect("gzip member");
        rest = member.into_inner();
        members += 1;
    }
    assert!(members >= 2, "{members} gzip members");
    let plain = s.get("/repo/apt/big/dists/stable/main/binary-amd64/Packages");
    assert_eq!(text, plain.body, "the members hold Packages");

    let (asc, _) = fetch_key(&s, &apt, "big");
    apt.add_source(
        "big",
        &format!("signed-by={asc}"),
        &s.url("/repo/apt/big"),
        "stable",
        "main",
    );
    apt.update();
    let lists = std::fs::read_dir(apt.root().join("var/lib/apt/lists")).expect("lists");
    let packages: Vec<_> = lists
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
        .collect();
    assert_eq!(packages.len(), 1, "apt stored one Packages list");
    let stored = std::fs::read_to_string(packages[0].path()).expect("list");
    assert_eq!(stored.matches("\nPackage: ").count() + 1, 152, "{stored}");
    assert!(apt.policy("late-c").contains("Candidate: 1.0"));
    assert!(!apt.policy("pkg000").contains("Candidate: 1.0"));
    let dir = apt.download(&["late-b", "pkg149"]);
    assert!(dir.join("late-b_1.0_amd64.deb").exists());
    assert!(dir.join("pkg149_1.0_amd64.deb").exists());
}
