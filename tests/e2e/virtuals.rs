//! Virtual repos: one index over a hosted repo and a proxy of another artifactd, safe from
//! dependency confusion by default, merging allow-listed names with PEP 708 metadata; cooldown
//! and block lists on proxies; uploads to the virtual land in its hosted member.

use std::process::Command;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Route, Server, Upstream, bin, clients, run, sha256_hex};

fn upload(s: &Server, repo: &str, (f, b): &(String, Vec<u8>)) {
    let r = s.addpkg(&format!("provider=pypi&reponame={repo}"), f, b);
    assert!(r.status == 201 || r.status == 200, "{f}: {}", r.text());
}

fn rpcli(s: &Server, args: &[&str]) -> String {
    run(Command::new(bin("rpcli"))
        .arg("-s")
        .arg(s.url(""))
        .env("ARTIFACTD_TOKEN", &s.token)
        .args(args))
}

fn versions(s: &Server, path: &str) -> Vec<String> {
    let page = s
        .get_with(path, &[("Accept", "application/vnd.pypi.simple.v1+json")])
        .json();
    page["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

fn installed_version(py: &std::path::Path, module: &str) -> String {
    run(Command::new(py)
        .arg("-c")
        .arg(format!("import {module}; print({module}.__version__)")))
    .trim()
    .to_owned()
}

#[test]
fn a_virtual_repo_is_safe_from_dependency_confusion() {
    // The public index has a team-lib 99.0 (the attack) and a genuinely public other-lib.
    let public = Server::start();
    upload(&public, "pypi", &Dist::new("team-lib", "99.0").wheel());
    upload(&public, "pypi", &Dist::new("other-lib", "1.0").wheel());
    let s = Server::start();
    upload(&s, "team", &Dist::new("team-lib", "1.0").wheel());
    let out = rpcli(
        &s,
        &[
            "repo",
            "create",
            "pypi/pypi-org",
            "--proxy",
            &public.url("/repo/pypi/pypi/simple/"),
        ],
    );
    assert!(out.contains("a proxy of"), "{out}");
    let out = rpcli(
        &s,
        &["repo", "create", "pypi/all", "--virtual", "team,pypi-org"],
    );
    assert!(out.contains("a virtual repo of team, pypi-org"), "{out}");

    let index = s.url("/repo/pypi/all/simple/");
    assert_eq!(
        versions(&s, "/repo/pypi/all/team-lib/"),
        ["1.0"],
        "the hosted name wins"
    );
    assert_eq!(
        versions(&s, "/repo/pypi/all/other-lib/"),
        ["1.0"],
        "public names come through"
    );
    let c = clients();
    let scratch = s.scratch("pip");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c
        .pip(&scratch, &py)
        .args(["install", "-i", &index, "team-lib", "other-lib"]));
    assert_eq!(installed_version(&py, "team_lib"), "1.0");
    assert_eq!(installed_version(&py, "other_lib"), "1.0");
    // The upstream's file cannot be fetched through the virtual either.
    let r = s.get("/repo/pypi/all/files/team_lib-99.0-py3-none-any.whl");
    assert_eq!(r.status, 404, "{}", r.text());
    // The root lists both members' projects.
    let root = s.get("/repo/pypi/all/simple/").text();
    assert!(
        root.contains("team-lib") && root.contains("other-lib"),
        "{root}"
    );

    // Allow-listed: both are served, and the page says where they come from (PEP 708).
    let out = rpcli(&s, &["repo", "set", "pypi/all", "allow_upstream=Team_Lib"]);
    assert!(out.contains("allow_upstream=[\"team-lib\"]"), "{out}");
    assert_eq!(versions(&s, "/repo/pypi/all/team-lib/"), ["1.0", "99.0"]);
    let page = s
        .get_with(
            "/repo/pypi/all/team-lib/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    let alternates = page["alternate-locations"]
        .as_array()
        .expect("PEP 708")
        .len();
    assert_eq!(alternates, 2, "{page}");
    assert_eq!(page["meta"]["api-version"], "1.4");
    let html = s.get("/repo/pypi/all/team-lib/").text();
    assert!(
        html.contains("<meta name=\"pypi:alternate-locations\""),
        "{html}"
    );

    // Uploads to the virtual go to its hosted member.
    let files = [Dist::new("made-here", "1.0").wheel()];
    let dist = scratch.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    let paths: Vec<String> = files
        .iter()
        .map(|(f, b)| {
            let p = dist.join(f);
            std::fs::write(&p, b).unwrap();
            p.display().to_string()
        })
        .collect();
    run(&mut c.twine_upload(&scratch, &s.url("/repo/pypi/all/"), &s.token, &[], &paths));
    assert_eq!(versions(&s, "/repo/pypi/team/made-here/"), ["1.0"]);
    assert_eq!(versions(&s, "/repo/pypi/all/made-here/"), ["1.0"]);
    let shown = s.get_as(Some(&s.token), "/api/v1/repos/pypi/all").json();
    assert_eq!(shown["kind"], "virtual");
    assert_eq!(shown["members"], serde_json::json!(["team", "pypi-org"]));
}

#[test]
fn cooldown_and_block_lists_hide_fresh_and_blocked_releases() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = |days_ago: u64| {
        let t = now - days_ago * 86_400;
        // RFC 3339 from the epoch seconds, by the date command.
        run(Command::new("date").args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"]))
            .trim()
            .to_owned()
    };
    let up = Upstream::start();
    let old = Dist::new("fresh-pkg", "1.0").wheel();
    let new = Dist::new("fresh-pkg", "2.0").wheel();
    let unknown = Dist::new("fresh-pkg", "3.0").wheel();
    let mut files = Vec::new();
    for ((f, b), time) in [(&old, Some(at(10))), (&new, Some(at(1))), (&unknown, None)] {
        let mut entry = serde_json::json!({ "filename": f, "url": format!("/files/{f}"), "hashes": { "sha256": sha256_hex(b) }, "size": b.len() });
        if let Some(t) = time {
            entry["upload-time"] = serde_json::json!(t);
        }
        files.push(entry);
        up.set(
            &format!("/files/{f}"),
            Route::Ok("application/zip".into(), b.clone()),
        );
    }
    let page = serde_json::json!({ "meta": { "api-version": "1.1" }, "name": "fresh-pkg", "files": files });
    up.set(
        "/simple/fresh-pkg/",
        Route::Ok(
            "application/vnd.pypi.simple.v1+json".into(),
            page.to_string().into_bytes(),
        ),
    );
    let s = Server::start();
    let out = rpcli(
        &s,
        &[
            "repo",
            "create",
            "pypi/cool",
            "--proxy",
            &up.url("/simple/"),
            "--min-age",
            "7d",
        ],
    );
    assert!(out.contains("a proxy of"), "{out}");
    assert_eq!(
        versions(&s, "/repo/pypi/cool/fresh-pkg/"),
        ["1.0"],
        "only the 10-day-old release"
    );
    let r = s.get(&format!("/repo/pypi/cool/files/{}", new.0));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.error().contains("min_age"), "{}", r.error());
    let c = clients();
    let scratch = s.scratch("pip");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c.pip(&scratch, &py).args([
        "install",
        "-i",
        &s.url("/repo/pypi/cool/simple/"),
        "fresh-pkg",
    ]));
    assert_eq!(installed_version(&py, "fresh_pkg"), "1.0");
    // Exempt: everything; then a block list entry hides one version.
    rpcli(
        &s,
        &["repo", "set", "pypi/cool", "min_age_exempt=fresh-pkg"],
    );
    assert_eq!(
        versions(&s, "/repo/pypi/cool/fresh-pkg/"),
        ["1.0", "2.0", "3.0"]
    );
    rpcli(&s, &["repo", "set", "pypi/cool", "block=fresh-pkg==2.0"]);
    assert_eq!(versions(&s, "/repo/pypi/cool/fresh-pkg/"), ["1.0", "3.0"]);
    let r = s.get(&format!("/repo/pypi/cool/files/{}", new.0));
    assert!(
        r.status == 404 && r.error().contains("block list"),
        "{}",
        r.text()
    );
    // A virtual's own cooldown applies to its proxy members.
    rpcli(
        &s,
        &[
            "repo",
            "create",
            "pypi/all",
            "--virtual",
            "cool",
            "--min-age",
            "7d",
        ],
    );
    assert_eq!(versions(&s, "/repo/pypi/all/fresh-pkg/"), ["1.0"]);
}

#[test]
fn a_repos_file_declares_repos_and_applying_it_again_changes_nothing() {
    let up = Server::start();
    upload(&up, "pypi", &Dist::new("public-lib", "1.0").wheel());
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("repos.toml");
    std::fs::write(
        &file,
        format!(
            r#"
# The virtual comes first here; members are applied before the repos that name them.
[[repo]]
provider = "pypi"
name = "all"
kind = "virtual"
members = ["team", "pypi-org"]
[repo.settings]
min_age = "7d"
allow_upstream = ["Shared_Lib"]

[[repo]]
provider = "pypi"
name = "team"
[repo.settings]
overwrite = "allow"

[[repo]]
provider = "pypi"
name = "pypi-org"
kind = "proxy"
[repo.upstream]
url = "{}"
ttl = "5m"
"#,
            up.url("/repo/pypi/pypi/simple/")
        ),
    )
    .expect("repos file");
    let mut s = Server::start_with(
        artifactd_tests::Options::default()
            .arg("--repos-file")
            .arg(file.display().to_string()),
    );
    let get = |s: &Server, name: &str| {
        s.get_as(Some(&s.token), &format!("/api/v1/repos/pypi/{name}"))
            .json()
    };
    let all = get(&s, "all");
    assert_eq!(all["kind"], "virtual");
    assert_eq!(all["members"], serde_json::json!(["team", "pypi-org"]));
    assert_eq!(all["settings"]["min_age"], "7d");
    assert_eq!(
        all["settings"]["allow_upstream"],
        serde_json::json!(["shared-lib"])
    );
    assert_eq!(get(&s, "pypi-org")["upstream"]["ttl"], "300s");
    assert_eq!(get(&s, "team")["settings"]["overwrite"], "allow");
    assert!(
        s.log()
            .contains("3 repo(s) created or changed, 0 unchanged"),
        "{}",
        s.log()
    );
    // Through the declared virtual: the public project (exempt from nothing, but old enough? no
    // upload is 7 days old here, so the cooldown hides it).
    assert_eq!(
        versions(&s, "/repo/pypi/all/public-lib/"),
        Vec::<String>::new()
    );
    // Again: nothing changes.
    s.restart();
    assert!(
        s.log()
            .contains("0 repo(s) created or changed, 3 unchanged"),
        "{}",
        s.log()
    );
    // A file that cannot be applied stops the server at start, naming the repo.
    std::fs::write(
        &file,
        "[[repo]]\nprovider = \"pypi\"\nname = \"x\"\nkind = \"mirror\"\n",
    )
    .unwrap();
    let out = Command::new(bin("artifactd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--repos-file")
        .arg(&file)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("repo pypi/x") && err.contains("Unknown repo kind \"mirror\""),
        "{err}"
    );
}

#[test]
fn the_ui_shows_a_virtual_repo_with_its_members() {
    let s = Server::start();
    upload(&s, "team", &Dist::new("ui-lib", "1.0").wheel());
    rpcli(&s, &["repo", "create", "pypi/all", "--virtual", "team"]);
    let page = s.get("/ui/pypi/all/").text().replace("&#x2f;", "/");
    assert!(page.contains(">virtual</span>"), "{page}");
    assert!(
        page.contains("<a href=\"/ui/pypi/team/\">team</a>"),
        "{page}"
    );
}
