//! A Debian repo over its lifetime: snapshots served as signed dists (apt 2.6, and apt 3's
//! `--snapshot` in a trixie chroot), promotion between dists and roll-back from a snapshot.

use std::process::Command;

use artifactd_tests::{Apt, Chroot, Server, bin, dpkg_deb, run, try_run};

fn upload(s: &Server, dist: &str, name: &str, version: &str) -> String {
    // Installed in a chroot whose dpkg leaves out /usr/share/doc: dpkg-deb's package, with
    // its file in /usr/share/<name>.
    let (f, b) = dpkg_deb(&s.scratch("debs"), name, version, "amd64", "");
    let r = s.addpkg(&format!("provider=apt&reponame=life&dist={dist}"), &f, &b);
    assert!(r.status == 201 || r.status == 200, "{f}: {}", r.text());
    hex_sha256(&b)
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// An apt root that reads `uri` `dist` with the repo's key.
fn apt_for(s: &Server, dir: &str, uri: &str, dist: &str) -> Apt {
    let apt = Apt::new(&s.scratch(dir), &["amd64"]);
    let key = s.get("/repo/apt/life/pubkey.gpg");
    assert_eq!(key.status, 200);
    let path = apt.key_path("life.gpg");
    std::fs::write(&path, &key.body).expect("key");
    apt.add_source(
        "life",
        &format!("signed-by={}", path.display()),
        uri,
        dist,
        "main",
    );
    apt.update();
    apt
}

fn candidate(apt: &Apt, pkg: &str) -> String {
    apt.policy(pkg)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Candidate:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// The versions in `apt-cache policy`'s table (every version here has a Debian revision).
fn versions(apt: &Apt, pkg: &str) -> Vec<String> {
    let out = apt.policy(pkg);
    let table = out.split("Version table:").nth(1).unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("***").split_whitespace().next())
        .filter(|v| v.contains('-'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn snapshots_promotion_and_roll_back_with_apt() {
    let s = Server::start();
    let one = upload(&s, "testing", "life-tool", "1.0-1");
    upload(&s, "testing", "life-lib", "1.0-1");
    let out = run(s
        .rpcli()
        .args(["apt", "snapshot", "create", "life", "testing", "rel-1"]));
    assert!(
        out.contains("snapshot rel-1 of testing: 2 file(s)"),
        "{out}"
    );
    upload(&s, "testing", "life-tool", "2.0-1");

    // The snapshot is a signed dist of its own with the state it froze; the dist moved on.
    let base = s.url("/repo/apt/life");
    let snap = apt_for(
        &s,
        "apt-snap",
        &format!("{base}/snapshots/rel-1"),
        "testing",
    );
    assert_eq!(candidate(&snap, "life-tool"), "1.0-1");
    let got = snap.download(&["life-tool"]);
    assert!(got.join("life-tool_1.0-1_amd64.deb").exists());
    let testing = apt_for(&s, "apt-testing", &base, "testing");
    assert_eq!(candidate(&testing, "life-tool"), "2.0-1");
    let release = s.get("/repo/apt/life/dists/testing/Release").text();
    assert!(
        release.contains(&format!("Snapshots: {base}/snapshots/@SNAPSHOTID@/")),
        "{release}"
    );
    let listed = s.get("/repo/apt/life/snapshots/").json();
    assert_eq!(listed["snapshots"][0]["name"], "rel-1");

    // Immutable: the name is taken, the frozen InRelease does not change with the dist.
    let frozen = s.get("/repo/apt/life/snapshots/rel-1/dists/testing/InRelease");
    assert_eq!(frozen.status, 200);
    assert!(
        frozen
            .header("cache-control")
            .unwrap_or_default()
            .contains("immutable")
    );
    let again = try_run(
        s.rpcli()
            .args(["apt", "snapshot", "create", "life", "testing", "rel-1"]),
    );
    assert!(
        !again.0 && again.1.contains("snapshots do not change"),
        "{}",
        again.1
    );
    upload(&s, "testing", "life-tool", "3.0-1");
    assert_eq!(
        s.get("/repo/apt/life/snapshots/rel-1/dists/testing/InRelease")
            .body,
        frozen.body
    );

    // Promotion: one version to stable, no package bytes stored twice.
    let blobs_before = s.stored_files();
    let out = run(s.rpcli().args([
        "apt",
        "promote",
        "life",
        "--from",
        "testing",
        "--to",
        "stable",
        "--package",
        "life-tool=2.0-1",
        "--package",
        "life-lib",
    ]));
    assert!(out.contains("promoted 2 file(s) to stable"), "{out}");
    let stable = apt_for(&s, "apt-stable", &base, "stable");
    assert_eq!(versions(&stable, "life-tool"), ["2.0-1"]);
    assert_eq!(candidate(&stable, "life-lib"), "1.0-1");
    let blobs_after = s.stored_files();
    let content = |files: &std::collections::BTreeMap<String, u64>| -> Vec<String> {
        files
            .keys()
            .filter(|p| p.starts_with("content/"))
            .cloned()
            .collect()
    };
    assert_eq!(
        content(&blobs_after),
        content(&blobs_before),
        "promotion stored package files"
    );
    assert_eq!(
        content(&blobs_after)
            .iter()
            .filter(|p| p.contains(&one))
            .count(),
        1,
        "one blob for life-tool 1.0-1"
    );
    let audit = s.json_as(
        "GET",
        Some(&s.token),
        "/api/v1/audit?repo=apt/life",
        &serde_json::json!(null),
    );
    assert!(audit.text().contains("promote"), "{}", audit.text());

    // Bad calls change nothing.
    let inrelease = s.get("/repo/apt/life/dists/stable/InRelease").body;
    for (body, status, words) in [
        (
            serde_json::json!({"from": "testing", "to": "stable", "packages": ["life-tool=9.9"]}),
            404,
            "matches life-tool=9.9.",
        ),
        (
            serde_json::json!({"from": "testing", "to": "stable", "packages": ["Bad Name"]}),
            400,
            "is not a package name",
        ),
        (
            serde_json::json!({"from": "testing", "to": "testing"}),
            400,
            "cannot be promoted to itself",
        ),
        (
            serde_json::json!({"from": "testing", "to": "stable", "snapshot": "nope"}),
            404,
            "There is no snapshot",
        ),
        (
            serde_json::json!({"from": "testing"}),
            400,
            "takes a JSON object",
        ),
        (
            serde_json::json!({"from": "../x", "to": "stable"}),
            400,
            "Invalid from dist",
        ),
    ] {
        let r = s.json_as("POST", Some(&s.token), "/repo/apt/life/promote", &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.error().contains(words), "{body}: {}", r.text());
    }
    for (body, status) in [
        (serde_json::json!({"dist": "nowhere", "name": "x"}), 404),
        (serde_json::json!({"dist": "testing", "name": "../x"}), 400),
    ] {
        let r = s.json_as("POST", Some(&s.token), "/repo/apt/life/snapshots", &body);
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    let anonymous = s.json_as(
        "POST",
        None,
        "/repo/apt/life/promote",
        &serde_json::json!({"from": "testing", "to": "stable"}),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(
        s.get("/repo/apt/life/dists/stable/InRelease").body,
        inrelease
    );

    // Roll back: testing takes the snapshot's state again.
    let out = run(s.rpcli().args([
        "apt",
        "promote",
        "life",
        "--from",
        "testing",
        "--to",
        "testing",
        "--snapshot",
        "rel-1",
    ]));
    assert!(out.contains("removed 2"), "{out}");
    testing.update();
    assert_eq!(versions(&testing, "life-tool"), ["1.0-1"]);

    // Automatic snapshots, named by time; a later time finds the latest one before it.
    run(s
        .rpcli()
        .args(["repo", "set", "apt/life", "auto_snapshot=true"]));
    upload(&s, "testing", "life-extra", "1.0-1");
    let listed = s.get("/repo/apt/life/snapshots/").json();
    let auto: Vec<String> = listed["snapshots"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .filter(|n| n.len() == 16 && n.ends_with('Z'))
        .map(str::to_owned)
        .collect();
    assert_eq!(auto.len(), 1, "{listed}");
    let current = s.get("/repo/apt/life/dists/testing/InRelease").body;
    assert_eq!(
        s.get(&format!(
            "/repo/apt/life/snapshots/{}/dists/testing/InRelease",
            auto[0]
        ))
        .body,
        current
    );
    assert_eq!(
        s.get("/repo/apt/life/snapshots/29991231T000000Z/dists/testing/InRelease")
            .body,
        current
    );
    assert_eq!(
        s.get("/repo/apt/life/snapshots/20000101T000000Z/dists/testing/InRelease")
            .status,
        404
    );
}

#[test]
fn apt3_updates_and_installs_from_a_snapshot() {
    let s = Server::start();
    upload(&s, "stable", "snap-tool", "1.0-1");
    run(s.rpcli().args([
        "apt",
        "snapshot",
        "create",
        "life",
        "stable",
        "20261201T000000Z",
    ]));
    upload(&s, "stable", "snap-tool", "2.0-1");
    let base = s.url("/repo/apt/life");
    let c = Chroot::trixie();
    c.write(
        "etc/apt/keyrings/life.gpg",
        &s.get("/repo/apt/life/pubkey.gpg").body,
    );
    c.write(
        "etc/apt/sources.list.d/life.list",
        format!("deb [signed-by=/etc/apt/keyrings/life.gpg] {base} stable main\n").as_bytes(),
    );
    let (ok, out) = c.apt_get(&["update"]);
    assert!(ok, "apt 3 update failed:\n{out}");
    assert!(!out.contains("W:"), "apt 3 warned:\n{out}");
    // A time after the snapshot resolves to it, as on Debian's snapshot servers.
    let (ok, out) = c.apt_get(&["update", "--snapshot", "20261202T000000Z"]);
    assert!(ok, "apt 3 update --snapshot failed:\n{out}");
    assert!(out.contains("snapshots/20261202T000000Z"), "{out}");
    assert!(!out.contains("W:"), "apt 3 warned:\n{out}");
    let (ok, out) = c.apt_get(&[
        "install",
        "-y",
        "--snapshot",
        "20261202T000000Z",
        "snap-tool",
    ]);
    assert!(ok, "apt 3 install --snapshot failed:\n{out}");
    let (_, status) = c.run(&["dpkg-query", "-W", "snap-tool"]);
    assert!(status.contains("1.0-1"), "{status}");
    // Without --snapshot, the dist's current version.
    let (ok, out) = c.apt_get(&["install", "-y", "snap-tool"]);
    assert!(ok, "{out}");
    let (_, status) = c.run(&["dpkg-query", "-W", "snap-tool"]);
    assert!(status.contains("2.0-1"), "{status}");
}

#[test]
fn a_snapshot_keeps_its_package_files_until_it_is_deleted_and_gc_runs() {
    let s = Server::start();
    let sha = upload(&s, "stable", "held-tool", "1.0-1");
    run(s
        .rpcli()
        .args(["apt", "snapshot", "create", "life", "stable", "before"]));
    let pool = "pool/main/h/held-tool/held-tool_1.0-1_amd64.deb";
    let original = s.get(&format!("/repo/apt/life/{pool}")).body;
    let r = s.delete_as(Some(&s.token), &format!("/repo/apt/life/{pool}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get(&format!("/repo/apt/life/{pool}")).status, 404);
    let gc = || {
        run(Command::new(bin("artifactd"))
            .arg("--data-dir")
            .arg(s.data_dir())
            .args(["gc", "--grace-secs", "0"])
            .env_remove("DATABASE_URL")
            .env_remove("S3_URL"))
    };
    gc();
    // The snapshot still serves the file the dist no longer lists.
    let held = s.get(&format!("/repo/apt/life/snapshots/before/{pool}"));
    assert_eq!(held.status, 200);
    assert_eq!(held.body, original);
    assert!(s.stored_files().keys().any(|p| p.contains(&sha)));
    let out = run(s
        .rpcli()
        .args(["apt", "snapshot", "delete", "life", "stable", "before"]));
    assert!(out.contains("deleted snapshot before of stable"), "{out}");
    assert_eq!(
        s.get("/repo/apt/life/snapshots/before/dists/stable/InRelease")
            .status,
        404
    );
    let again = s.json_as(
        "POST",
        Some(&s.token),
        "/repo/apt/life/snapshots/remove",
        &serde_json::json!({"dist": "stable", "name": "before"}),
    );
    assert_eq!(again.status, 404, "{}", again.text());
    let out = gc();
    assert!(out.contains("removed 1 unreferenced blob(s)"), "{out}");
    assert!(!s.stored_files().keys().any(|p| p.contains(&sha)));
    assert!(
        !s.stored_files()
            .keys()
            .any(|p| p.contains("snapshots/before"))
    );
}
