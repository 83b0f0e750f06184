//! apt-get of Debian 12 (apt 2.6, gpgv) on the host and of Debian 13 (apt 3.0, `sqv`) in a
//! trixie chroot: `apt-get update` and `apt-get install` with a `signed-by=` sources entry, and
//! not one warning or notice about the signature or the key.

use artifactd_tests::{Apt, Chroot, Server, dpkg_deb, run};

/// Lines apt prints as warnings, notices or errors.
fn complaints(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("W:") || l.starts_with("N:") || l.starts_with("E:"))
        .collect()
}

#[test]
fn apt_of_debian_12_and_13_update_and_install_without_warnings() {
    let s = Server::start();
    let work = s.scratch("debs");
    for (pkg, version, arch, extra) in [
        ("matrix-lib", "1.0", "all", ""),
        (
            "matrix-tool",
            "1.0-1",
            "amd64",
            "Depends: matrix-lib (>= 1.0)\n",
        ),
    ] {
        let (f, b) = dpkg_deb(&work, pkg, version, arch, extra);
        let r = s.addpkg("provider=apt&reponame=m&dist=stable", &f, &b);
        assert_eq!(r.status, 201, "{f}: {}", r.text());
    }
    let key = s.get("/repo/apt/m/pubkey.gpg");
    assert_eq!(key.status, 200);
    let uri = s.url("/repo/apt/m");

    // Debian 12: the host's apt.
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let keyring = apt.key_path("artifactd-m.gpg");
    std::fs::write(&keyring, &key.body).expect("keyring");
    apt.add_source(
        "m",
        &format!("signed-by={}", keyring.display()),
        &uri,
        "stable",
        "main",
    );
    let out = apt.update();
    assert!(complaints(&out).is_empty(), "apt 2.6 complained:\n{out}");
    let archives = apt.download(&["matrix-tool"]);
    for f in ["matrix-tool_1.0-1_amd64.deb", "matrix-lib_1.0_all.deb"] {
        assert!(archives.join(f).exists(), "{f} was not downloaded");
    }
    let host = run(apt.cmd().arg("--version"));
    eprintln!(
        "client: apt (Debian 12, host) {}",
        host.lines().next().unwrap_or_default()
    );

    // Debian 13: apt 3 in a chroot, verifying with sqv.
    let c = Chroot::trixie();
    c.write("etc/apt/keyrings/artifactd-m.gpg", &key.body);
    c.write(
        "etc/apt/sources.list.d/artifactd-m.list",
        format!("deb [signed-by=/etc/apt/keyrings/artifactd-m.gpg] {uri} stable main\n").as_bytes(),
    );
    let (ok, out) = c.apt_get(&["update"]);
    assert!(ok, "apt 3 update failed:\n{out}");
    assert!(complaints(&out).is_empty(), "apt 3 complained:\n{out}");
    let (ok, out) = c.apt_get(&["install", "-y", "--no-install-recommends", "matrix-tool"]);
    assert!(ok, "apt 3 install failed:\n{out}");
    assert!(
        complaints(&out).is_empty(),
        "apt 3 complained while installing:\n{out}"
    );
    for f in [
        "usr/share/matrix-tool/README",
        "usr/share/matrix-lib/README",
    ] {
        assert!(c.root().join(f).exists(), "{f} was not installed:\n{out}");
    }
    let (_, version) = c.run(&["apt-get", "--version"]);
    eprintln!(
        "client: apt (Debian 13, chroot) {}",
        version.lines().next().unwrap_or_default()
    );
}
