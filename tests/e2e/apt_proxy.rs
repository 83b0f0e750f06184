//! APT proxy repos: apt-get (Debian 12's apt 2.6 and trixie's apt 3 with sqv) installs through
//! a proxy of another artifactd, trusting the upstream's own key; the upstream's InRelease is
//! verified against the proxy's keyring before anything is cached; indexes and pool files are
//! checked against the verified hashes; with the upstream stopped, the last verified dist and
//! every cached file keep being served.

use std::process::Command;

use artifactd_tests::{Apt, Chroot, Route, Server, Upstream, bin, dpkg_deb, run};

fn upload(s: &Server, repo: &str, (f, b): &(String, Vec<u8>)) {
    let r = s.addpkg(
        &format!("provider=apt&reponame={repo}&dist=stable&component=main"),
        f,
        b,
    );
    assert!(r.status == 201 || r.status == 200, "{f}: {}", r.text());
}

/// Asks for the proxy repo `apt/{name}` of `upstream`: the status and the answer's text.
fn create(s: &Server, name: &str, upstream: serde_json::Value) -> Created {
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({ "provider": "apt", "name": name, "kind": "proxy", "upstream": upstream }),
    );
    Created {
        status: r.status,
        body: r.text(),
    }
}

struct Created {
    status: u16,
    body: String,
}

/// An upstream artifactd with `greeter` (depending on `libgreet1`) and `extra` in `team`.
fn upstream() -> (Server, String) {
    let up = Server::start();
    let work = up.scratch("debs");
    upload(
        &up,
        "team",
        &dpkg_deb(&work, "libgreet1", "1.0-1", "amd64", ""),
    );
    upload(
        &up,
        "team",
        &dpkg_deb(&work, "greeter", "1.0-1", "amd64", "Depends: libgreet1\n"),
    );
    upload(&up, "team", &dpkg_deb(&work, "extra", "2.0", "all", ""));
    let key = up.get("/repo/apt/team/pubkey").text();
    (up, key)
}

fn apt_through(s: &Server, root: &std::path::Path, key: &str) -> Apt {
    let apt = Apt::new(root, &["amd64"]);
    let key_path = apt.key_path("upstream.asc");
    std::fs::write(&key_path, key).expect("key");
    apt.add_source(
        "proxy",
        &format!("signed-by={}", key_path.display()),
        &s.url("/repo/apt/debian/"),
        "stable",
        "main",
    );
    apt
}

#[test]
fn apt_get_installs_through_a_proxy_that_outlives_its_upstream() {
    let (mut up, key) = upstream();
    let s = Server::start();
    // Made with rpcli, from the binary keyring a `signed-by` file would be.
    let gpg = s.scratch("keys").join("upstream.gpg");
    std::fs::write(&gpg, up.get("/repo/apt/team/pubkey.gpg").body).expect("key");
    let out = run(Command::new(bin("rpcli"))
        .arg("-s")
        .arg(s.url(""))
        .env("ARTIFACTD_TOKEN", &s.token)
        .args([
            "repo",
            "create",
            "apt/debian",
            "--proxy",
            &up.url("/repo/apt/team/"),
        ])
        .arg("--keyring")
        .arg(&gpg)
        .args(["--ttl", "2s"]));
    assert!(out.contains("created apt/debian, a proxy of"), "{out}");
    // The proxy hands out the upstream's key, which is what clients verify with.
    assert_eq!(
        s.get("/repo/apt/debian/pubkey.gpg").body,
        up.get("/repo/apt/team/pubkey.gpg").body
    );
    assert!(
        s.get("/repo/apt/debian/pubkey")
            .text()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    let shown: serde_json::Value =
        serde_json::from_str(&s.get_as(Some(&s.token), "/api/v1/repos/apt/debian").text()).unwrap();
    assert_eq!(shown["kind"], "proxy");
    assert_eq!(
        shown["upstream"]["keyring"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );

    // apt 2.6 (this machine's): update, then install greeter and its dependency.
    let apt = apt_through(&s, &s.scratch("apt1"), &key);
    apt.update();
    let archives = apt.download(&["greeter"]);
    for (name, pool) in [
        ("greeter_1.0-1_amd64.deb", "pool/main/g/greeter/"),
        ("libgreet1_1.0-1_amd64.deb", "pool/main/libg/libgreet1/"),
    ] {
        let got = std::fs::read(archives.join(name)).expect("downloaded");
        let direct = up.get(&format!("/repo/apt/team/{pool}{name}"));
        assert_eq!(direct.status, 200, "{pool}{name}");
        assert_eq!(got, direct.body, "{name} is the upstream's bytes");
    }
    let ui = s.get("/ui/apt/debian/").text();
    assert!(
        ui.contains("Verified signed documents") && ui.contains("InRelease</a>"),
        "{ui}"
    );

    // apt 3 (trixie's, verifying with sqv) through the same proxy.
    let c = Chroot::trixie();
    c.write("etc/apt/keyrings/upstream.asc", key.as_bytes());
    c.write(
        "etc/apt/sources.list.d/proxy.list",
        format!(
            "deb [signed-by=/etc/apt/keyrings/upstream.asc] {} stable main\n",
            s.url("/repo/apt/debian/")
        )
        .as_bytes(),
    );
    let (ok, out) = c.apt_get(&["update", "--error-on=any"]);
    assert!(ok && !out.contains("W:") && !out.contains("N:"), "{out}");
    let (ok, out) = c.apt_get(&["install", "-y", "--no-install-recommends", "greeter"]);
    assert!(ok, "{out}");
    let (ok, out) = c.run(&["dpkg-query", "-W", "greeter", "libgreet1"]);
    assert!(ok && out.contains("greeter\t1.0-1"), "{out}");

    // The upstream stops: a fresh apt gets the last verified dist (stale after its time to
    // live) and the cached packages; what was never fetched fails with a 502 naming it.
    up.stop();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let inrelease = s.get("/repo/apt/debian/dists/stable/InRelease");
    assert_eq!(inrelease.status, 200);
    assert_eq!(inrelease.header("x-artifactd-cache"), Some("stale"));
    let apt2 = apt_through(&s, &s.scratch("apt2"), &key);
    apt2.update();
    let archives = apt2.download(&["greeter"]);
    assert!(archives.join("greeter_1.0-1_amd64.deb").exists());
    let missing = s.get("/repo/apt/debian/pool/main/e/extra/extra_2.0_all.deb");
    assert_eq!(missing.status, 502, "{}", missing.text());
    assert!(missing.error().contains("127.0.0.1"), "{}", missing.error());
    assert!(s.log().contains("serving the last verified document"));
}

#[test]
fn a_wrong_key_a_tampered_release_or_file_is_never_cached() {
    let (up, key) = upstream();
    let work = up.scratch("other");
    upload(
        &up,
        "other",
        &dpkg_deb(&work, "unrelated", "1.0", "all", ""),
    );
    let other_key = up.get("/repo/apt/other/pubkey").text();
    assert_ne!(other_key, key);
    let s = Server::start();

    // Refused at creation: no keyring, a keyring that is not one.
    let r = create(
        &s,
        "nokey",
        serde_json::json!({ "url": up.url("/repo/apt/team/") }),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("keyring"), "{}", r.body);
    let r = create(
        &s,
        "badkey",
        serde_json::json!({ "url": up.url("/repo/apt/team/"), "keyring": "not a key" }),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("holds no public key"), "{}", r.body);

    // The upstream's InRelease is not signed by the configured key: 502, nothing cached.
    let r = create(
        &s,
        "wrong",
        serde_json::json!({ "url": up.url("/repo/apt/team/"), "keyring": other_key }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let got = s.get("/repo/apt/wrong/dists/stable/InRelease");
    assert_eq!(got.status, 502, "{}", got.text());
    assert!(
        got.error().contains("no signature on it verifies"),
        "{}",
        got.error()
    );
    let pool = s.get("/repo/apt/wrong/pool/main/e/extra/extra_2.0_all.deb");
    assert_eq!(pool.status, 404, "{}", pool.text());
    let ui = s.get("/ui/apt/wrong/").text();
    assert!(
        ui.contains("0 cached files") && !ui.contains("Verified signed documents"),
        "{ui}"
    );

    // A static copy of the upstream: genuine InRelease and index, a tampered pool file.
    let fake = Upstream::start();
    let base = "/repo/apt/team/";
    let inrelease = up.get(&format!("{base}dists/stable/InRelease"));
    assert_eq!(inrelease.status, 200);
    let packages_path = "dists/stable/main/binary-amd64/Packages.gz";
    let packages = up.get(&format!("{base}{packages_path}"));
    assert_eq!(packages.status, 200);
    let deb_path = "pool/main/e/extra/extra_2.0_all.deb";
    let mut deb = up.get(&format!("{base}{deb_path}")).body;
    let last = deb.len() - 1;
    deb[last] ^= 0xff;
    let octets = || "application/octet-stream".to_owned();
    fake.set(
        "/dists/stable/InRelease",
        Route::Ok("text/plain".into(), inrelease.body.clone()),
    );
    fake.set(
        &format!("/{packages_path}"),
        Route::Ok(octets(), packages.body.clone()),
    );
    fake.set(&format!("/{deb_path}"), Route::Ok(octets(), deb));
    let r = create(
        &s,
        "tampered",
        serde_json::json!({ "url": fake.url("/"), "keyring": key }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let p = "/repo/apt/tampered/";
    assert_eq!(s.get(&format!("{p}dists/stable/InRelease")).status, 200);
    let index = s.get(&format!("{p}{packages_path}"));
    assert_eq!(index.status, 200);
    assert_eq!(index.body, packages.body);
    // The download fails before its last bytes, twice: the bad copy was never kept.
    for n in 1..=2 {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(s.url(&format!("{p}{deb_path}")))
            .output()
            .expect("curl");
        assert!(!out.status.success(), "a tampered file downloaded whole");
        assert_eq!(fake.hits(&format!("/{deb_path}")), n);
    }
    assert!(s.log().contains("not the"), "{}", s.log());

    // A signed text changed by one byte no longer verifies.
    let changed = String::from_utf8(inrelease.body.clone()).unwrap().replacen(
        "Suite: stable",
        "Suite: stablf",
        1,
    );
    let fake2 = Upstream::start();
    fake2.set(
        "/dists/stable/InRelease",
        Route::Ok("text/plain".into(), changed.into_bytes()),
    );
    let r = create(
        &s,
        "changed",
        serde_json::json!({ "url": fake2.url("/"), "keyring": key }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let got = s.get("/repo/apt/changed/dists/stable/InRelease");
    assert_eq!(got.status, 502, "{}", got.text());

    // Paths outside the archive's grammar are nobody's.
    for (bad, status) in [
        ("pool/a%20b.deb", 404),
        ("pool/main/%2e%2e/x.deb", 400),
        ("dists/stable/x%00/InRelease", 400),
        ("key.asc", 404),
    ] {
        let r = s.get(&format!("{p}{bad}"));
        assert_eq!(r.status, status, "{bad}: {}", r.text());
    }
    assert_eq!(fake.hits("/key.asc"), 0);
}
