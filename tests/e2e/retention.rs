//! Retention: `keep_last`, `keep_min_age` and pins applied after each upload and by
//! `artifactd gc` (with `--dry-run`), audited; a snapshot keeps the versions it holds until it is
//! deleted; a Debian source package's shared upstream tarball stays with the revision that
//! needs it; PyPI counts versions per project.

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Server, dpkg_deb, dpkg_source, run, tool};

fn upload(s: &Server, version: &str) {
    let (f, b) = dpkg_deb(&s.scratch("debs"), "ret-tool", version, "amd64", "");
    let r = s.addpkg("provider=apt&reponame=ret&dist=stable", &f, &b);
    assert_eq!(r.status, 201, "{f}: {}", r.text());
}

/// The versions of ret-tool that apt sees, newest first.
fn apt_versions(s: &Server) -> Vec<String> {
    let apt = Apt::new(&s.scratch(&format!("apt-{}", rand_suffix())), &["amd64"]);
    let key = apt.key_path("ret.gpg");
    std::fs::write(&key, s.get("/repo/apt/ret/pubkey.gpg").body).expect("key");
    apt.add_source(
        "ret",
        &format!("signed-by={}", key.display()),
        &s.url("/repo/apt/ret/"),
        "stable",
        "main",
    );
    apt.update();
    let out = apt.policy("ret-tool");
    out.split("Version table:")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("***").split_whitespace().next())
        .filter(|v| v.contains('-'))
        .map(str::to_owned)
        .collect()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn settings(s: &Server, repo: &str, patch: serde_json::Value) -> artifactd_tests::Resp {
    s.json_as(
        "PUT",
        Some(&s.token),
        &format!("/api/v1/repos/{repo}/settings"),
        &patch,
    )
}

#[test]
fn retention_keeps_the_last_versions_pins_and_snapshots() {
    let s = Server::start();
    upload(&s, "1.0-1");
    // The snapshot holds 1.0-1 only.
    run(s
        .rpcli()
        .args(["apt", "snapshot", "create", "ret", "stable", "rel-1"]));
    upload(&s, "1.1-1");
    // Bad settings are refused with the rule.
    for (patch, needle) in [
        (serde_json::json!({"keep_last": 0}), "keep_last"),
        (
            serde_json::json!({"keep_min_age": "soon"}),
            "not a duration",
        ),
        (serde_json::json!({"pins": ["ret-tool"]}), "name=version"),
    ] {
        let r = settings(&s, "apt/ret", patch);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.error().contains(needle), "{}", r.error());
    }
    run(s.rpcli().args(["repo", "set", "apt/ret", "keep_last=2"]));
    let held = "pool/main/r/ret-tool/ret-tool_1.0-1_amd64.deb";
    let held_bytes = s.get(&format!("/repo/apt/ret/{held}")).body;

    // 1.2-1 makes three: 1.0-1 would go, but the snapshot holds it.
    upload(&s, "1.2-1");
    assert_eq!(apt_versions(&s), ["1.2-1", "1.1-1", "1.0-1"]);
    // 1.3-1: 1.1-1 goes after the upload, and the audit says so.
    upload(&s, "1.3-1");
    assert_eq!(apt_versions(&s), ["1.3-1", "1.2-1", "1.0-1"]);
    assert_eq!(
        s.get("/repo/apt/ret/pool/main/r/ret-tool/ret-tool_1.1-1_amd64.deb")
            .status,
        404
    );
    let audit = s
        .json_as(
            "GET",
            Some(&s.token),
            "/api/v1/audit?repo=apt/ret",
            &serde_json::json!(null),
        )
        .text();
    assert!(
        audit.contains("retention") && audit.contains("ret-tool_1.1-1_amd64.deb"),
        "{audit}"
    );
    // A pinned version stays; a young one stays while keep_min_age protects it.
    run(s
        .rpcli()
        .args(["repo", "set", "apt/ret", "pins=ret-tool=1.2-1"]));
    upload(&s, "1.4-1");
    assert_eq!(apt_versions(&s), ["1.4-1", "1.3-1", "1.2-1", "1.0-1"]);
    run(s
        .rpcli()
        .args(["repo", "set", "apt/ret", "pins=", "keep_min_age=1d"]));
    upload(&s, "1.5-1");
    assert_eq!(
        apt_versions(&s),
        ["1.5-1", "1.4-1", "1.3-1", "1.2-1", "1.0-1"]
    );

    // gc applies retention too: --dry-run shows what would go and removes nothing.
    run(s.rpcli().args(["repo", "set", "apt/ret", "keep_min_age="]));
    run(s
        .rpcli()
        .args(["apt", "snapshot", "delete", "ret", "stable", "rel-1"]));
    let stored = s.stored_files();
    let out = s.task_ok(&["gc", "--dry-run"]);
    for v in ["1.0-1", "1.2-1", "1.3-1"] {
        assert!(
            out.contains(&format!(
                "retention would remove apt/ret (stable) ret-tool {v}"
            )),
            "{v}: {out}"
        );
    }
    assert!(
        !out.contains("1.4-1") && out.contains("dry run: nothing removed"),
        "{out}"
    );
    assert_eq!(s.stored_files(), stored, "a dry run changes nothing");
    let out = s.task_ok(&["gc", "--grace-secs", "0"]);
    assert!(
        out.contains("retention removed apt/ret (stable) ret-tool 1.0-1"),
        "{out}"
    );
    assert_eq!(apt_versions(&s), ["1.5-1", "1.4-1"]);
    assert_eq!(s.get(&format!("/repo/apt/ret/{held}")).status, 404);
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&held_bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        !s.stored_files().keys().any(|p| p.contains(&sha)),
        "the blob of 1.0-1 is gone once no record and no snapshot refers to it"
    );
}

#[test]
fn retention_keeps_the_upstream_tarball_a_newer_revision_needs_and_counts_pypi_projects() {
    tool("dpkg-source");
    let s = Server::start();
    let work = s.scratch("src");
    let first = dpkg_source(&work, "keep", "1.0-1");
    let up = |dsc: &std::path::Path| {
        let out = run(s
            .rpcli()
            .args([
                "upload",
                "-y",
                "apt",
                "-r",
                "ret",
                "-a",
                "dist=stable",
                "-f",
            ])
            .arg(dsc));
        assert!(out.contains("stored"), "{out}");
    };
    up(&first);
    run(s.rpcli().args(["repo", "set", "apt/ret", "keep_last=1"]));
    let second = dpkg_source(&work, "keep", "1.0-2");
    up(&second);
    let pool = "/repo/apt/ret/pool/main/k/keep";
    assert_eq!(s.get(&format!("{pool}/keep_1.0-1.dsc")).status, 404);
    assert_eq!(
        s.get(&format!("{pool}/keep_1.0-1.debian.tar.xz")).status,
        404
    );
    assert_eq!(
        s.get(&format!("{pool}/keep_1.0.orig.tar.gz")).status,
        200,
        "1.0-2 needs it"
    );
    let sources = s
        .get("/repo/apt/ret/dists/stable/main/source/Sources")
        .text();
    assert!(
        sources.contains("Version: 1.0-2") && !sources.contains("Version: 1.0-1"),
        "{sources}"
    );

    // PyPI: versions per project, in PEP 440 order (10.0 is newer than 9.0).
    for v in ["9.0", "10.0"] {
        let (name, bytes) = Dist::new("ret-pkg", v).wheel();
        let r = s.addpkg("provider=pypi&reponame=ret", &name, &bytes);
        assert_eq!(r.status, 201, "{}", r.text());
        if v == "9.0" {
            run(s.rpcli().args(["repo", "set", "pypi/ret", "keep_last=1"]));
        }
    }
    let page = s.get("/repo/pypi/ret/simple/ret-pkg/").text();
    assert!(
        page.contains("ret_pkg-10.0") && !page.contains("ret_pkg-9.0"),
        "{page}"
    );
}
