//! `.changes` uploads with Debian's `dput` (`method = http`): each file is `PUT` to
//! `incoming/`, the `.changes` last; the binaries, the source package and the `.buildinfo`
//! land in the dist the `.changes` names, together. A half-finished upload leaves the repo
//! unchanged, a repo with an uploader keyring refuses an unsigned or wrongly signed `.changes`,
//! and `artifactd gc` removes staged files never completed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use artifactd_tests::{Apt, Server, TlsFront, dpkg_changes, dpkg_deb, dpkg_source, run, tool};

const REPO: &str = "/repo/apt/dp";

/// Runs Debian's `dput` with a private config for this server; the token is the password it
/// asks for after the server's Basic challenge (read from stdin: `setsid` leaves it no
/// terminal). Returns whether it succeeded and its output.
fn dput(s: &Server, work: &Path, changes: &Path) -> (bool, String) {
    let host = s.url("");
    let fqdn = host
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    dput_to(s, work, changes, "http", &fqdn, None)
}

/// dput with `method` to `fqdn`; with `ca`, the certificate it trusts for HTTPS.
fn dput_to(
    s: &Server,
    work: &Path,
    changes: &Path,
    method: &str,
    fqdn: &str,
    ca: Option<&Path>,
) -> (bool, String) {
    tool("dput");
    let conf = work.join("dput.cf");
    std::fs::write(
        &conf,
        format!(
            "[artifactd]\nmethod = {method}\nfqdn = {fqdn}\nincoming = {REPO}/incoming\nlogin = ci\nallow_unsigned_uploads = 1\n"
        ),
    )
    .expect("dput config");
    let mut cmd = Command::new("setsid");
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    let mut child = cmd
        .arg("--wait")
        .arg("dput")
        .arg("--config")
        .arg(&conf)
        .args(["--force", "--unchecked", "artifactd"])
        .arg(changes)
        .env("HOME", work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dput");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", s.token).as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("dput output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The names of the files a `.changes` lists.
fn listed(changes: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(changes).expect("changes");
    let sha = text
        .split("Checksums-Sha256:\n")
        .nth(1)
        .expect("Checksums-Sha256");
    sha.lines()
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn put(s: &Server, name: &str, body: &[u8]) -> artifactd_tests::Resp {
    s.send(
        "PUT",
        Some(&s.token),
        &format!("{REPO}/incoming/{name}"),
        Some("application/octet-stream"),
        body,
    )
}

/// A source package `hello` with its binary for `dist`, built in `work`.
fn build(work: &Path, version: &str, dist: &str) -> PathBuf {
    dpkg_source(work, "hello", version);
    let (deb, _) = dpkg_deb(work, "hello", version, "amd64", "Source: hello\n");
    dpkg_changes(work, version, dist, &[&deb])
}

/// Signs `file` in place with a new key of the GnuPG home `home` (as `debsign` does) and
/// returns that key's armored public key.
fn clearsign(home: &Path, uid: &str, file: &Path) -> String {
    std::fs::create_dir_all(home).expect("gnupg home");
    let gpg = |args: &[&str]| {
        let mut c = tool("gpg");
        c.env("GNUPGHOME", home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args);
        c
    };
    run(&mut gpg(&[
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]));
    let signed = file.with_extension("signed");
    run(gpg(&["--local-user", uid, "--clearsign", "--output"])
        .arg(&signed)
        .arg(file));
    std::fs::rename(&signed, file).expect("signed file");
    run(&mut gpg(&["--armor", "--export", uid]))
}

#[test]
fn dput_uploads_binaries_sources_and_buildinfo_together_or_nothing() {
    let s = Server::start();
    let work = s.scratch("dput");
    let changes = build(&work, "1.0-1", "stable");
    let names = listed(&changes);
    assert_eq!(
        names.len(),
        5,
        "dsc, orig, debian tarball, buildinfo, deb: {names:?}"
    );

    // A half-finished upload: the .changes comes but a file it lists never did, or came with
    // other bytes. Refused with the rule; no dist appears.
    for name in names.iter().filter(|n| !n.ends_with(".deb")) {
        let r = put(&s, name, &std::fs::read(work.join(name)).expect("file"));
        assert_eq!(r.status, 201, "{name}: {}", r.text());
    }
    let changes_bytes = std::fs::read(&changes).expect("changes");
    let changes_name = "hello_1.0-1_amd64.changes";
    let r = put(&s, changes_name, &changes_bytes);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error()
            .contains("which was not uploaded to incoming/ first"),
        "{}",
        r.error()
    );
    let deb = names.iter().find(|n| n.ends_with(".deb")).expect("deb");
    let mut other = std::fs::read(work.join(deb)).expect("deb");
    let at = other.len() / 2;
    other[at] ^= 1;
    assert_eq!(put(&s, deb, &other).status, 201);
    let r = put(&s, changes_name, &changes_bytes);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error()
            .contains("does not match the size and checksums the .changes"),
        "{}",
        r.error()
    );
    assert_eq!(s.get(&format!("{REPO}/dists/stable/InRelease")).status, 404);
    assert_eq!(
        s.get(&format!("{REPO}/pool/main/h/hello/hello_1.0-1.dsc"))
            .status,
        404
    );
    // Without a token: the Basic challenge dput answers.
    let r = s.send("PUT", None, &format!("{REPO}/incoming/{deb}"), None, b"x");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Basic"))
    );
    let r = put(&s, ".hidden", b"x");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("Invalid file name"), "{}", r.error());

    // dput sends every file again, the .changes last; now all of it lands in the dist the
    // .changes names.
    let (ok, out) = dput(&s, &work, &changes);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("Uploading {changes_name}: done.")),
        "{out}"
    );
    assert!(out.contains("need authentication"), "{out}");
    let packages = s
        .get(&format!("{REPO}/dists/stable/main/binary-amd64/Packages"))
        .text();
    assert!(packages.contains("Package: hello\n"), "{packages}");
    let sources = s
        .get(&format!("{REPO}/dists/stable/main/source/Sources"))
        .text();
    assert!(sources.contains("Package: hello\n"), "{sources}");
    assert!(sources.contains("hello_1.0.orig.tar.gz"), "{sources}");
    let buildinfo = s.get(&format!(
        "{REPO}/pool/main/h/hello/hello_1.0-1_amd64.buildinfo"
    ));
    assert_eq!(buildinfo.status, 200);
    assert_eq!(
        buildinfo.body,
        std::fs::read(work.join("hello_1.0-1_amd64.buildinfo")).expect("buildinfo")
    );
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("dp.gpg");
    std::fs::write(&key, s.get(&format!("{REPO}/pubkey.gpg")).body).expect("key");
    let opts = format!("signed-by={}", key.display());
    apt.add_source("dp", &opts, &s.url(&format!("{REPO}/")), "stable", "main");
    apt.update();
    let got = apt.download(&["hello"]).join(deb);
    assert_eq!(
        std::fs::read(&got).expect("downloaded"),
        std::fs::read(work.join(deb)).expect("deb")
    );

    // The next revision leaves the upstream tarball out (dpkg-genchanges includes it for a
    // first revision only): the pool has it.
    let next = build(&work, "1.0-2", "stable");
    assert!(!listed(&next).iter().any(|n| n.contains(".orig.")));
    let (ok, out) = dput(&s, &work, &next);
    assert!(ok, "{out}");
    let sources = s
        .get(&format!("{REPO}/dists/stable/main/source/Sources"))
        .text();
    assert!(sources.contains("Version: 1.0-2\n"), "{sources}");

    // Staged files the uploads used left the staging area; a lone one goes with gc.
    assert_eq!(
        put(&s, "hello_9.9.orig.tar.gz", b"never completed").status,
        201
    );
    let out = s.task_ok(&["gc", "--grace-secs", "0"]);
    assert!(
        out.contains(" 1 staged upload file(s) never completed"),
        "{out}"
    );
    let out = s.task_ok(&["gc", "--grace-secs", "0"]);
    assert!(
        out.contains(" 0 staged upload file(s) never completed"),
        "{out}"
    );
}

#[test]
fn a_repo_with_an_uploader_keyring_takes_only_changes_signed_by_it() {
    let s = Server::start();
    let work = s.scratch("dput-signed");
    let changes = build(&work, "2.0-1", "stable");
    // The maintainer's key goes on the keyring; a stranger's signature and none are refused.
    let maint = work.join("maint");
    let stranger = work.join("stranger");
    let unsigned = std::fs::read(&changes).expect("changes");
    let key = clearsign(&maint, "Maintainer <maint@example.invalid>", &changes);
    let good = std::fs::read(&changes).expect("signed changes");
    std::fs::write(&changes, &unsigned).expect("unsigned");
    clearsign(&stranger, "Stranger <stranger@example.invalid>", &changes);
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        "/api/v1/repos/apt/dp/settings",
        &serde_json::json!({ "uploaders": key }),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    for (what, bytes) in [
        ("stranger", std::fs::read(&changes).expect("c")),
        ("unsigned", unsigned),
    ] {
        std::fs::write(&changes, &bytes).expect("changes");
        let (ok, out) = dput(&s, &work, &changes);
        assert!(!ok, "{what}: {out}");
        assert!(out.contains("Upload failed: 403"), "{what}: {out}");
        assert_eq!(
            s.get(&format!("{REPO}/dists/stable/InRelease")).status,
            404,
            "{what}"
        );
    }
    std::fs::write(&changes, &good).expect("changes");
    let (ok, out) = dput(&s, &work, &changes);
    assert!(ok, "{out}");
    let packages = s
        .get(&format!("{REPO}/dists/stable/main/binary-amd64/Packages"))
        .text();
    assert!(packages.contains("Version: 2.0-1\n"), "{packages}");
}

#[test]
fn dput_uploads_over_https_through_a_tls_front() {
    let s = Server::start();
    let work = s.scratch("dput-https");
    let changes = build(&work, "3.0-1", "testing");
    let upstream = s
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let front = TlsFront::start(&upstream, &s.scratch("tls"));
    let fqdn = format!("127.0.0.1:{}", front.port);
    // dput checks the certificate: one it does not trust fails the upload, nothing lands.
    let (ok, out) = dput_to(&s, &work, &changes, "https", &fqdn, None);
    assert!(!ok && out.contains("CERTIFICATE_VERIFY_FAILED"), "{out}");
    let (ok, out) = dput_to(&s, &work, &changes, "https", &fqdn, Some(&front.cert));
    assert!(ok, "{out}");
    let packages = s
        .get(&format!("{REPO}/dists/testing/main/binary-amd64/Packages"))
        .text();
    assert!(packages.contains("Version: 3.0-1\n"), "{packages}");
}
