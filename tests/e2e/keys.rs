//! Signing key rotation: `rpcli key add` signs with a new key next to the old one and serves
//! both, `Release` names both in `Signed-By`, clients move to the new key without a failed
//! update, and `rpcli key retire` ends the old one; with apt 2.6 and apt 3 (sqv, trixie chroot).

use std::path::Path;

use artifactd_tests::{Apt, Chroot, Server, dpkg_deb, run, tool, try_run};

fn keys(s: &Server) -> Vec<(String, String)> {
    let r = s.json_as(
        "GET",
        Some(&s.token),
        "/api/v1/repos/apt/rot/keys",
        &serde_json::json!(null),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["fingerprint"].as_str().unwrap_or_default().to_owned(),
                k["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn signed_by(s: &Server) -> String {
    s.get("/repo/apt/rot/dists/stable/Release")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("Signed-By: "))
        .unwrap_or_default()
        .to_owned()
}

/// Whether gpgv finds a good signature on the dist's InRelease with `keyring` (as apt does,
/// a signature by a key the keyring lacks is ignored next to a good one).
fn gpgv(s: &Server, keyring: &Path) -> (bool, String) {
    let dir = s.scratch("gpgv");
    let file = dir.join("InRelease");
    std::fs::write(&file, s.get("/repo/apt/rot/dists/stable/InRelease").body).expect("write");
    let (_, out) = try_run(tool("gpgv").arg("--keyring").arg(keyring).arg(&file));
    (out.contains("Good signature from"), out)
}

/// apt 2.6 with the key file `key`; `update` asserts no warning and no error.
fn apt_with(s: &Server, dir: &str, key: &[u8]) -> Apt {
    let apt = Apt::new(&s.scratch(dir), &["amd64"]);
    let path = apt.key_path("rot.gpg");
    std::fs::write(&path, key).expect("key");
    apt.add_source(
        "rot",
        &format!("signed-by={}", path.display()),
        &s.url("/repo/apt/rot/"),
        "stable",
        "main",
    );
    apt
}

fn apt3_update(c: &Chroot, when: &str) {
    let (ok, out) = c.apt_get(&["update"]);
    assert!(ok, "apt 3 update {when} failed:\n{out}");
    assert!(
        !out.contains("W:") && !out.contains("E:"),
        "apt 3 warned {when}:\n{out}"
    );
}

#[test]
fn a_key_rotation_never_fails_an_update_with_apt_2_6_and_3() {
    let s = Server::start();
    let (f, b) = dpkg_deb(&s.scratch("debs"), "rot-tool", "1.0-1", "amd64", "");
    assert_eq!(
        s.addpkg("provider=apt&reponame=rot&dist=stable", &f, &b)
            .status,
        201
    );
    let old_key = s.get("/repo/apt/rot/pubkey.gpg").body;
    let listed = keys(&s);
    assert_eq!(listed.len(), 1);
    let old = listed[0].0.clone();
    assert_eq!(listed[0].1, "current");
    assert_eq!(old.len(), 40, "{old}");
    assert_eq!(signed_by(&s), old);

    let apt = apt_with(&s, "apt-old", &old_key);
    apt.update();
    let c = Chroot::trixie();
    let base = s.url("/repo/apt/rot");
    c.write("etc/apt/keyrings/rot.gpg", &old_key);
    c.write(
        "etc/apt/sources.list.d/rot.list",
        format!("deb [signed-by=/etc/apt/keyrings/rot.gpg] {base} stable main\n").as_bytes(),
    );
    apt3_update(&c, "before the rotation");

    // The only key cannot be retired; an unknown one is not there.
    let retire = |fpr: &str| {
        s.json_as(
            "DELETE",
            Some(&s.token),
            &format!("/api/v1/repos/apt/rot/keys/{fpr}"),
            &serde_json::json!(null),
        )
    };
    let r = retire(&old);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error().contains("only signing key"), "{}", r.error());
    let r = retire(&"0".repeat(40));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos/apt/rot/keys",
        &serde_json::json!({"armored": "not a key"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error().contains("not an armored OpenPGP secret key"),
        "{}",
        r.error()
    );
    assert_eq!(keys(&s).len(), 1, "nothing changed");

    // A new key: both sign, both are served, Release names both.
    let out = run(s.rpcli().args(["key", "add", "apt/rot"]));
    let listed = keys(&s);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let new = listed[0].0.clone();
    assert_eq!(listed[1], (old.clone(), "previous".to_owned()));
    assert!(out.contains(&format!("added key {new}")), "{out}");
    assert_eq!(signed_by(&s), format!("{new}, {old}"));
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos/apt/rot/keys",
        &serde_json::json!({}),
    );
    assert_eq!(r.status, 409, "a second rotation waits: {}", r.text());
    let dir = s.scratch("keys");
    let old_file = dir.join("old.gpg");
    std::fs::write(&old_file, &old_key).expect("old key");
    let (ok, out) = gpgv(&s, &old_file);
    assert!(ok, "the old key still verifies: {out}");
    let both = s.get("/repo/apt/rot/pubkey.gpg").body;
    assert!(both.len() > old_key.len(), "both public keys are served");
    assert!(
        s.get("/repo/apt/rot/pubkey")
            .text()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    // Clients that still have the old key update without a warning, on apt 2.6 and 3.
    apt.update();
    apt3_update(&c, "during the rotation, old key");
    // They take the served keys (the install script does the same).
    let moved = apt_with(&s, "apt-moved", &both);
    moved.update();
    c.write("etc/apt/keyrings/rot.gpg", &both);
    apt3_update(&c, "during the rotation, both keys");

    // The old key retires: the new one signs alone, and clients that moved keep updating.
    let out = run(s.rpcli().args(["key", "retire", "apt/rot", &old]));
    assert!(out.contains(&format!("retired key {old}")), "{out}");
    assert_eq!(keys(&s), [(new.clone(), "current".to_owned())]);
    assert_eq!(signed_by(&s), new);
    let new_only = s.get("/repo/apt/rot/pubkey.gpg").body;
    let new_file = dir.join("new.gpg");
    std::fs::write(&new_file, &new_only).expect("new key");
    let (ok, out) = gpgv(&s, &new_file);
    assert!(ok, "{out}");
    let (ok, _) = gpgv(&s, &old_file);
    assert!(!ok, "the retired key signs no more");
    moved.update();
    apt3_update(&c, "after the rotation");
    // A client that never moved is refused, as it should be.
    let stale = apt_with(&s, "apt-stale", &old_key);
    let (ok, out) = try_run(stale.cmd().args(["update", "--error-on=any"]));
    assert!(
        !ok,
        "an update with the retired key alone must fail:\n{out}"
    );

    // An imported key rotates the same way.
    let home = dir.join("gnupg");
    std::fs::create_dir_all(&home).expect("gnupg home");
    let gpg = |args: &[&str]| {
        let mut g = tool("gpg");
        g.env("GNUPGHOME", &home)
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "pw",
            ])
            .args(args);
        g
    };
    run(&mut gpg(&[
        "--quick-gen-key",
        "Rot <rot@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let secret = run(&mut gpg(&["--armor", "--export-secret-keys"]));
    let file = dir.join("imported.asc");
    std::fs::write(&file, secret).expect("secret");
    run(s
        .rpcli()
        .args(["key", "add", "apt/rot", "--passphrase", "pw", "--import"])
        .arg(&file));
    assert_eq!(keys(&s).len(), 2);
    apt3_update(&c, "during the second rotation");
    c.write(
        "etc/apt/keyrings/rot.gpg",
        &s.get("/repo/apt/rot/pubkey.gpg").body,
    );
    apt3_update(&c, "during the second rotation, served keys");
    run(s.rpcli().args(["key", "retire", "apt/rot", &new]));
    apt3_update(&c, "after the imported key took over");
    let audit = s
        .json_as(
            "GET",
            Some(&s.token),
            "/api/v1/audit?repo=apt/rot",
            &serde_json::json!(null),
        )
        .text();
    assert!(
        audit.contains("key-add") && audit.contains("key-retire"),
        "{audit}"
    );
}
