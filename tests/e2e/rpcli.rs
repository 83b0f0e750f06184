//! `rpcli` against the real server: the seed's upload calls, tokens, settings, deletes.

use std::process::Command;

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Server, bin, run, try_run};

fn rpcli(s: &Server, token: Option<&str>) -> Command {
    let mut c = Command::new(bin("rpcli"));
    c.arg("-s")
        .arg(s.url(""))
        .env_remove("ARTIFACTD_TOKEN")
        .env_remove("ARTIFACTD_URL");
    if let Some(t) = token {
        c.env("ARTIFACTD_TOKEN", t);
    }
    c
}

#[test]
fn seed_invocations_tokens_settings_and_delete() {
    let s = Server::start();
    let dir = s.scratch("files");
    let (df, db) = Deb::new("seed-tool", "1.0-1", "amd64").build();
    std::fs::write(dir.join(&df), &db).unwrap();
    let (wf, wb) = Dist::new("seed-pkg", "1.0").wheel();
    let (sf, sb) = Dist::new("seed-pkg", "1.0").sdist();
    std::fs::write(dir.join(&wf), &wb).unwrap();
    std::fs::write(dir.join(&sf), &sb).unwrap();
    let f = |n: &str| dir.join(n).display().to_string();

    // The seed's calls, with a write token from the environment.
    let writer = s.create_token("ci", "write", &[]);
    let out = run(rpcli(&s, Some(&writer)).args([
        "upload",
        "-y",
        "apt",
        "-f",
        &f(&df),
        "-r",
        "tools",
        "-p",
        "seed-tool",
        "-i",
        "1.0-1",
        "-a",
        "dist=trusty",
    ]));
    assert!(
        out.contains("seed-tool 1.0-1") && out.contains("stored"),
        "{out}"
    );
    let out = run(rpcli(&s, Some(&writer)).args([
        "upload",
        "-y",
        "pypi",
        "-f",
        &f(&wf),
        "-r",
        "py",
        "-p",
        "seed-pkg",
        "-i",
        "1.0",
    ]));
    assert!(out.contains("stored"), "{out}");
    // Several files, name and version read from them, JSON output.
    let out = run(rpcli(&s, Some(&writer)).args([
        "--json",
        "upload",
        "-y",
        "pypi",
        "-r",
        "py",
        "-f",
        &f(&wf),
        &f(&sf),
    ]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["created"], false);
    assert_eq!(lines[1]["created"], true);
    assert_eq!(
        s.get("/repo/apt/tools/pool/main/s/seed-tool/seed-tool_1.0-1_amd64.deb")
            .body,
        db
    );

    // Failures: non-zero exit and one line saying why.
    let (ok, out) =
        try_run(rpcli(&s, None).args(["upload", "-y", "pypi", "-f", &f(&wf), "-r", "py"]));
    assert!(
        !ok && out.trim().lines().count() == 1 && out.contains("401"),
        "{out}"
    );
    let (ok, out) = try_run(rpcli(&s, Some(&writer)).args([
        "upload",
        "-y",
        "apt",
        "-f",
        &f(&df),
        "-r",
        "tools",
    ]));
    assert!(!ok && out.contains("dist"), "{out}");
    let (ok, out) = try_run(rpcli(&s, Some(&writer)).args([
        "upload",
        "-y",
        "pypi",
        "-f",
        "/nonexistent.whl",
        "-r",
        "py",
    ]));
    assert!(!ok && out.contains("cannot open"), "{out}");

    // Tokens.
    let secret = run(rpcli(&s, Some(&s.token)).args([
        "token", "create", "reader", "--scope", "read", "--repo", "pypi/*",
    ]));
    assert!(secret.trim().starts_with("adt_"), "{secret}");
    let list = run(rpcli(&s, Some(&s.token)).args(["token", "list"]));
    assert!(
        list.contains("reader") && !list.contains(secret.trim()),
        "{list}"
    );
    let id = list
        .lines()
        .find(|l| l.contains("reader"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    run(rpcli(&s, Some(&s.token)).args(["token", "revoke", &id]));
    assert!(
        run(rpcli(&s, Some(&s.token)).args(["token", "list"]))
            .lines()
            .any(|l| l.contains("reader") && l.ends_with("revoked"))
    );
    let (ok, _) = try_run(rpcli(&s, Some(&writer)).args(["token", "list"]));
    assert!(!ok, "a write token may not list tokens");

    // Yank and un-yank.
    let out = run(rpcli(&s, Some(&writer)).args([
        "yank",
        "-r",
        "py",
        "-p",
        "seed-pkg",
        "-i",
        "1.0",
        "--reason",
        "bad build",
    ]));
    assert!(out.contains("yanked 2 file(s)"), "{out}");
    let page = s
        .get_with(
            "/repo/pypi/py/seed-pkg/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(page["files"][0]["yanked"], "bad build");
    let out = run(rpcli(&s, Some(&writer))
        .args(["yank", "--undo", "-r", "py", "-p", "seed-pkg", "-i", "1.0"]));
    assert!(out.contains("un-yanked 2 file(s)"), "{out}");

    // Settings and delete.
    let out = run(rpcli(&s, Some(&s.token)).args([
        "repo",
        "settings",
        "-y",
        "pypi",
        "-r",
        "py",
        "--private",
        "true",
    ]));
    assert!(out.contains("private=true"), "{out}");
    assert_eq!(s.get("/repo/pypi/py/").status, 401);
    let out = run(rpcli(&s, Some(&s.token)).args([
        "delete", "-y", "pypi", "-r", "py", "-p", "Seed_Pkg", "-i", "1.0",
    ]));
    assert!(out.contains("deleted 2 file(s)"), "{out}");
    for sub in [
        &["upload", "--help"][..],
        &["token", "create", "--help"],
        &["apt", "import-key", "--help"],
        &["repo", "settings", "--help"],
        &["delete", "--help"],
    ] {
        run(rpcli(&s, None).args(sub));
    }
}

#[test]
fn progress_bar_on_a_terminal_plain_lines_otherwise() {
    let s = Server::start();
    let dir = s.scratch("files");
    let (wf, wb) = Dist::new("big-pkg", "1.0").wheel();
    let path = dir.join(&wf);
    std::fs::write(&path, &wb).unwrap();
    let args = ["upload", "-y", "pypi", "-r", "bars", "-f"];

    // Piped: one result line, no terminal control sequences.
    let out = run(rpcli(&s, Some(&s.token)).args(args).arg(&path));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("big-pkg 1.0") && !out.contains('\u{1b}'),
        "{out}"
    );

    // On a terminal (util-linux `script` gives the command a pseudo-terminal): a bar with bytes,
    // rate and ETA, then the same result line.
    let line = format!(
        "{} -s {} upload -y pypi -r bars2 -f {}",
        bin("rpcli").display(),
        s.url(""),
        path.display()
    );
    let out = run(Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("ARTIFACTD_TOKEN", &s.token)
        .env("COLUMNS", "120"));
    for part in ["KiB/", "/s", "ETA", "[=", &wf] {
        assert!(out.contains(part), "no {part:?} in {out:?}");
    }
    assert!(out.contains("big-pkg 1.0"), "{out}");
}
