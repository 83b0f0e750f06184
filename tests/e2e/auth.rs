//! Tokens and permissions with real clients: pip and uv against a private repo, twine with
//! write and read-only tokens, apt-get with auth.conf, curl deletes; settings and the audit log.

use std::process::Command;

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Options, Server, clients, fake_gzip, run, try_run};

#[test]
fn writes_need_a_token_unless_anonymous_upload_is_on() {
    let s = Server::start_with(Options::with_tar());
    let gz = fake_gzip(b"a");
    let r = s.addpkg_as(None, "provider=tar&reponame=r", "a-1.0.tgz", &gz);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"artifactd\"")
    );
    for bad in ["adt_wrong", "", "x"] {
        let r = s.addpkg_as(Some(bad), "provider=tar&reponame=r", "a-1.0.tgz", &gz);
        assert_eq!(r.status, 401, "{bad:?}: {}", r.text());
    }
    let read = s.create_token("reader", "read", &[]);
    let r = s.addpkg_as(Some(&read), "provider=tar&reponame=r", "a-1.0.tgz", &gz);
    assert_eq!(r.status, 403, "{}", r.text());
    let other = s.create_token("other-repo", "write", &["tar/other"]);
    assert_eq!(
        s.addpkg_as(Some(&other), "provider=tar&reponame=r", "a-1.0.tgz", &gz)
            .status,
        403
    );
    assert_eq!(
        s.addpkg_as(
            Some(&other),
            "provider=tar&reponame=other",
            "a-1.0.tgz",
            &gz
        )
        .status,
        201
    );
    let wild = s.create_token("wild", "write", &["tar/team-*"]);
    assert_eq!(
        s.addpkg_as(
            Some(&wild),
            "provider=tar&reponame=team-x",
            "a-1.0.tgz",
            &gz
        )
        .status,
        201
    );
    assert_eq!(
        s.addpkg_as(Some(&wild), "provider=tar&reponame=teamx", "a-1.0.tgz", &gz)
            .status,
        403
    );
    // Basic auth with any user name carries the token as the password.
    let out = run(artifactd_tests::tool("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-u"])
        .arg(format!("__token__:{other}"))
        .arg("-F")
        .arg(format!("f=@{}", {
            let p = s.scratch("f").join("b-1.0.tgz");
            std::fs::write(&p, fake_gzip(b"b")).unwrap();
            p.display().to_string()
        }))
        .arg(s.url("/addpkg?provider=tar&reponame=other")));
    assert_eq!(out, "201");

    // Expired and revoked tokens are refused.
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/tokens",
        &serde_json::json!({"name": "short", "scope": "write", "expires_in_days": 0}),
    );
    let expired = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.addpkg_as(Some(&expired), "provider=tar&reponame=r", "a-1.0.tgz", &gz)
            .status,
        401
    );
    let list = s.get_as(Some(&s.token), "/api/v1/tokens").json();
    let id = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "other-repo")
        .unwrap()["id"]
        .clone();
    assert_eq!(
        s.delete_as(Some(&s.token), &format!("/api/v1/tokens/{id}"))
            .status,
        200
    );
    assert_eq!(
        s.addpkg_as(
            Some(&other),
            "provider=tar&reponame=other",
            "c-1.0.tgz",
            &gz
        )
        .status,
        401
    );
    assert!(
        !list.to_string().contains("adt_"),
        "secrets must never be listed"
    );
    assert_eq!(s.get_as(Some(&read), "/api/v1/tokens").status, 403);
    assert_eq!(s.get_as(None, "/api/v1/tokens").status, 401);
    // Tokens are never logged.
    let log = s.log();
    for secret in [&read, &wild, &expired, &s.token] {
        assert!(
            !log.contains(secret.as_str()),
            "a token appeared in the log"
        );
    }

    let open = Server::start_with(Options::with_tar().env("ARTIFACTD_ALLOW_ANONYMOUS_UPLOAD", "1"));
    assert_eq!(
        open.addpkg_as(None, "provider=tar&reponame=r", "a-1.0.tgz", &gz)
            .status,
        201
    );
    assert!(open.log().contains("Anonymous uploads are allowed"));
}

#[test]
fn private_pypi_repo_with_pip_uv_and_twine() {
    let s = Server::start();
    let scratch = s.scratch("private");
    let c = clients();
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/pypi/secret/settings",
        &serde_json::json!({"private": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["private"], true);
    let writer = s.create_token("ci", "write", &["pypi/secret"]);
    let reader = s.create_token("dev", "read", &["pypi/secret"]);
    let stranger = s.create_token("stranger", "read", &["pypi/elsewhere"]);

    let dist = scratch.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let (wf, wb) = Dist::new("hidden", "1.0").wheel();
    std::fs::write(dist.join(&wf), &wb).unwrap();
    let file = dist.join(&wf).display().to_string();
    let url = s.url("/repo/pypi/secret/");
    let file = vec![file];
    run(&mut c.twine_upload(&scratch, &url, &writer, &[], &file));
    let (ok, out) = try_run(&mut c.twine_upload(&scratch, &url, &reader, &[], &file));
    assert!(
        !ok && out.contains("403"),
        "a read-only token must get 403: {out}"
    );
    let (ok, out) = try_run(&mut c.uv_publish(&scratch, &url, &reader, &[], &file));
    assert!(!ok && out.contains("403"), "{out}");

    // Anonymous reads get 401 with a challenge, tokens for other repos 403.
    let anon = s.get("/repo/pypi/secret/hidden/");
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.header("www-authenticate"),
        Some("Basic realm=\"artifactd\"")
    );
    assert_eq!(
        s.get_as(Some(&stranger), "/repo/pypi/secret/hidden/")
            .status,
        403
    );
    let page = s.get_as(Some(&reader), "/repo/pypi/secret/hidden/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("cache-control").unwrap().contains("private"),
        "private pages must not be cacheable by shared caches"
    );
    let file = s.get_as(Some(&reader), &format!("/repo/pypi/secret/files/{wf}"));
    assert_eq!(
        file.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    assert!(
        !s.get("/")
            .text()
            .replace("&#x2f;", "/")
            .contains("/ui/pypi/secret/"),
        "private repos are not listed to anonymous users"
    );

    let with_token = url.replacen("http://", &format!("http://__token__:{reader}@"), 1);
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    let (ok, out) = try_run(c.pip(&scratch, &py).args(["install", "-i", &url, "hidden"]));
    assert!(!ok, "pip without credentials must fail: {out}");
    run(c
        .pip(&scratch, &py)
        .args(["install", "-i", &with_token, "hidden"]));
    let py2 = c.fresh_venv(&scratch.join("venv2"), &scratch);
    run(c
        .cmd("uv", &scratch)
        .args(["pip", "install", "--python"])
        .arg(&py2)
        .args(["--index-url", &with_token, "hidden"]));
    let out = run(Command::new(&py2).args(["-c", "import hidden; print(hidden.__version__)"]));
    assert_eq!(out.trim(), "1.0");
}

#[test]
fn private_apt_repo_with_auth_conf() {
    let s = Server::start();
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/apt/internal/settings",
        &serde_json::json!({"private": true}),
    );
    assert_eq!(r.status, 200);
    let deb = Deb::new("internal-tool", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=internal&dist=stable", &deb.0, &deb.1)
            .status,
        201
    );
    let reader = s.create_token("apt-reader", "read", &["apt/internal"]);
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("internal.asc");
    std::fs::write(
        &key,
        s.get_as(Some(&reader), "/repo/apt/internal/pubkey").body,
    )
    .unwrap();
    apt.add_source(
        "internal",
        &format!("signed-by={}", key.display()),
        &s.url("/repo/apt/internal"),
        "stable",
        "main",
    );
    // Without credentials the update fails.
    let (ok, out) = try_run(apt.cmd().args(["update", "--error-on=any"]));
    assert!(!ok, "{out}");
    let auth = apt.root().join("etc/apt/auth.conf.d/artifactd.conf");
    std::fs::write(
        &auth,
        format!(
            "machine http://{}/repo/apt/internal\nlogin __token__\npassword {reader}\n",
            s.addr
        ),
    )
    .unwrap();
    std::fs::set_permissions(&auth, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    apt.update();
    let archives = apt.download(&["internal-tool"]);
    assert!(std::fs::read(archives.join(&deb.0)).unwrap() == deb.1);
}

#[test]
fn delete_overwrite_settings_and_audit() {
    let s = Server::start();
    let writer = s.create_token("ci", "write", &[]);
    let (wf, wb) = Dist::new("gone", "1.0").wheel();
    let (wf2, wb2) = Dist::new("gone", "2.0").wheel();
    assert_eq!(
        s.addpkg_as(Some(&writer), "provider=pypi&reponame=d", &wf, &wb)
            .status,
        201
    );
    assert_eq!(
        s.addpkg_as(Some(&writer), "provider=pypi&reponame=d", &wf2, &wb2)
            .status,
        201
    );
    let file_url = format!("/repo/pypi/d/files/{wf}");
    let blobs_before = s.stored_files().len();

    // curl DELETE on the file's own URL: anonymous 401, write token 403, admin 200.
    let code = |token: Option<&str>| {
        let mut c = artifactd_tests::tool("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ]);
        if let Some(t) = token {
            c.arg("-H").arg(format!("Authorization: Bearer {t}"));
        }
        run(c.arg(s.url(&file_url)))
    };
    assert_eq!(code(None), "401");
    assert_eq!(code(Some(&writer)), "403");
    assert_eq!(code(Some(&s.token)), "200");
    assert_eq!(s.get(&file_url).status, 404);
    let page = s
        .get_with(
            "/repo/pypi/d/gone/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(page["versions"], serde_json::json!(["2.0"]));
    assert!(
        s.stored_files().len() < blobs_before,
        "the unreferenced blob must be removed"
    );

    // Overwrite policy.
    let changed = Dist::new("gone", "2.0").salt("new").wheel();
    assert_eq!(
        s.addpkg("provider=pypi&reponame=d", &changed.0, &changed.1)
            .status,
        409
    );
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/pypi/d/settings",
        &serde_json::json!({"overwrite": "allow", "delete_empty": true}),
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"overwrite": "allow", "private": false, "delete_empty": true, "auto_snapshot": false, "project_status": {}, "keep_last": null, "keep_min_age": null, "pins": [], "uploaders": null})
    );
    let r = s.addpkg("provider=pypi&reponame=d", &changed.0, &changed.1);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["files"][0]["status"], "replaced");
    assert_eq!(
        s.get(&format!("/repo/pypi/d/files/{}", changed.0)).body,
        changed.1
    );
    let bad = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/pypi/d/settings",
        &serde_json::json!({"overwrite": "sometimes"}),
    );
    assert_eq!(bad.status, 400);

    // Delete by package through the API; the empty repo goes too.
    assert_eq!(
        s.delete_as(Some(&writer), "/api/v1/repos/pypi/d/packages/Gone")
            .status,
        403
    );
    assert_eq!(
        s.delete_as(Some(&s.token), "/api/v1/repos/pypi/d/packages/nope")
            .status,
        404
    );
    let r = s.delete_as(Some(&s.token), "/api/v1/repos/pypi/d/packages/Gone/2.0");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get("/repo/pypi/d/").status,
        404,
        "delete_empty removes the repo"
    );

    // apt: deleting a pool file republishes the dist.
    let deb = Deb::new("tmp-tool", "1.0", "amd64").build();
    let keep = Deb::new("keep-tool", "1.0", "amd64").build();
    s.addpkg("provider=apt&reponame=a&dist=stable", &deb.0, &deb.1);
    s.addpkg("provider=apt&reponame=a&dist=stable", &keep.0, &keep.1);
    assert_eq!(
        s.delete_as(
            Some(&s.token),
            &format!("/repo/apt/a/pool/main/t/tmp-tool/{}", deb.0)
        )
        .status,
        200
    );
    let packages = s
        .get("/repo/apt/a/dists/stable/main/binary-amd64/Packages")
        .text();
    assert!(
        !packages.contains("tmp-tool") && packages.contains("keep-tool"),
        "{packages}"
    );

    let audit = s.get_as(Some(&s.token), "/api/v1/audit").json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "upload",
        "delete",
        "settings",
        "token-create",
        "delete-repo",
    ] {
        assert!(
            actions.contains(&a),
            "{a} missing from the audit log: {actions:?}"
        );
    }
    assert!(
        audit.to_string().contains("token:ci"),
        "the audit log names who did it"
    );
    assert_eq!(s.get_as(Some(&writer), "/api/v1/audit").status, 403);
}

fn gpg(home: &std::path::Path) -> Command {
    let mut c = artifactd_tests::tool("gpg");
    c.arg("--homedir")
        .arg(home)
        .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"]);
    c
}

/// Makes a key with gpg; returns (fingerprint, armored secret key, binary public keyring path).
fn gpg_key(
    home: &std::path::Path,
    algo: &str,
    uid: &str,
    usage: &str,
    passphrase: &str,
    extra: &[&str],
) -> (String, String, std::path::PathBuf) {
    run(gpg(home)
        .args(["--passphrase", passphrase])
        .args(extra)
        .args(["--quick-gen-key", uid, algo, usage, "2y"]));
    let listing = run(gpg(home).args(["--with-colons", "--list-secret-keys", uid]));
    let fpr = listing
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .expect("fingerprint")
        .to_owned();
    let secret = run(gpg(home).args([
        "--passphrase",
        passphrase,
        "--armor",
        "--export-secret-keys",
        &fpr,
    ]));
    let keyring = home.join(format!("{fpr}.gpg"));
    std::fs::write(
        &keyring,
        artifactd_tests::tool("gpg")
            .arg("--homedir")
            .arg(home)
            .args(["--batch", "--export", &fpr])
            .output()
            .expect("export")
            .stdout,
    )
    .expect("keyring");
    (fpr, secret, keyring)
}

fn gpgv_ok(keyring: &std::path::Path, files: &[&std::path::Path]) -> bool {
    // As apt reads gpgv: a valid signature by a key of the keyring and no bad one; signatures by
    // other keys (the other side of a key rotation) are not a failure.
    let out = artifactd_tests::tool("gpgv")
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .args(files)
        .output()
        .expect("gpgv");
    let status = String::from_utf8_lossy(&out.stdout);
    status.contains("[GNUPG:] VALIDSIG") && !status.contains("[GNUPG:] BADSIG")
}

#[test]
fn imported_gpg_keys_sign_the_repo_with_a_transition() {
    let s = Server::start();
    let deb = Deb::new("signed-tool", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=k&dist=stable", &deb.0, &deb.1)
            .status,
        201
    );
    let work = s.scratch("gpg");
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let old_ring = work.join("old.gpg");
    std::fs::write(&old_ring, s.get("/repo/apt/k/pubkey.gpg").body).unwrap();

    let (fpr, secret, new_ring) = gpg_key(
        &work,
        "ed25519",
        "Repo Key <repo@example.invalid>",
        "sign",
        "s3cret",
        &[],
    );
    let put = |body: serde_json::Value| {
        s.json_as("PUT", Some(&s.token), "/api/v1/repos/apt/k/key", &body)
    };
    // Refusals: not a key, wrong or missing passphrase, a key that cannot sign, an expired key.
    let (_, cert_only, _) = gpg_key(
        &work,
        "ed25519",
        "Cert Only <c@example.invalid>",
        "cert",
        "",
        &[],
    );
    let (_, dsa, _) = gpg_key(&work, "dsa2048", "Dsa <d@example.invalid>", "sign", "", &[]);
    let (_, expired, _) = gpg_key(
        &work,
        "ed25519",
        "Old <o@example.invalid>",
        "sign",
        "",
        &["--faked-system-time", "20200101T000000"],
    );
    for (body, rule) in [
        (
            serde_json::json!({"armored": "not a key"}),
            "not an armored OpenPGP secret key",
        ),
        (
            serde_json::json!({"armored": secret, "passphrase": "wrong"}),
            "passphrase",
        ),
        (serde_json::json!({"armored": secret}), "passphrase"),
        (
            serde_json::json!({"armored": cert_only}),
            "not allowed to sign",
        ),
        (serde_json::json!({"armored": dsa}), "refused by apt"),
        (serde_json::json!({"armored": expired}), "expired"),
    ] {
        let r = put(body);
        assert_eq!(r.status, 400, "{rule}: {}", r.text());
        assert!(r.error().contains(rule), "{rule}: {}", r.error());
    }
    assert_eq!(
        s.json_as(
            "PUT",
            None,
            "/api/v1/repos/apt/k/key",
            &serde_json::json!({"armored": secret})
        )
        .status,
        401
    );

    let r = put(serde_json::json!({"armored": secret, "passphrase": "s3cret"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["fingerprint"]
            .as_str()
            .unwrap()
            .to_ascii_uppercase(),
        fpr
    );

    let fetch = |name: &str| {
        let p = work.join(name);
        std::fs::write(&p, s.get(&format!("/repo/apt/k/dists/stable/{name}")).body).unwrap();
        p
    };
    let (inrelease, release, sig) = (fetch("InRelease"), fetch("Release"), fetch("Release.gpg"));
    // During the transition both keys verify both forms.
    for ring in [&new_ring, &old_ring] {
        assert!(
            gpgv_ok(ring, &[&inrelease]),
            "InRelease with {}",
            ring.display()
        );
        assert!(
            gpgv_ok(ring, &[&sig, &release]),
            "Release.gpg with {}",
            ring.display()
        );
    }
    // pubkey serves the new key, and apt trusts it.
    let served = work.join("served.gpg");
    std::fs::write(&served, s.get("/repo/apt/k/pubkey.gpg").body).unwrap();
    assert!(gpgv_ok(&served, &[&inrelease]));
    let shown = run(artifactd_tests::tool("gpg")
        .arg("--homedir")
        .arg(&work)
        .args(["--batch", "--with-colons", "--show-keys"])
        .arg(&served));
    assert!(shown.contains(&fpr), "{shown}");
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    apt.add_source(
        "k",
        &format!("signed-by={}", served.display()),
        &s.url("/repo/apt/k"),
        "stable",
        "main",
    );
    apt.update();
    assert!(std::fs::read(apt.download(&["signed-tool"]).join(&deb.0)).unwrap() == deb.1);

    // Ending the transition: only the new key signs.
    let r =
        put(serde_json::json!({"armored": secret, "passphrase": "s3cret", "transition_days": 0}));
    assert_eq!(r.status, 200);
    let (inrelease, release, sig) = (fetch("InRelease"), fetch("Release"), fetch("Release.gpg"));
    assert!(gpgv_ok(&new_ring, &[&inrelease]) && gpgv_ok(&new_ring, &[&sig, &release]));
    assert!(
        !gpgv_ok(&old_ring, &[&inrelease]),
        "the old key must no longer sign"
    );
}
