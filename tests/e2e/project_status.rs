//! PEP 792 project status in every repo kind: an administrator marks a project archived
//! (uploads refused), quarantined (served with no files, downloads refused) or deprecated; the
//! pages say so (api-version 1.4); a proxy carries its upstream's status; a virtual repo's own
//! mark wins, and a quarantined hosted project still hides the upstream's files of its name.
//! The package pages of proxy and virtual repos show where each file comes from and why the
//! others are not served.

use std::process::Command;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Server, bin, clients, run, try_run};

fn upload(s: &Server, repo: &str, (f, b): &(String, Vec<u8>)) -> (u16, String) {
    let r = s.addpkg(&format!("provider=pypi&reponame={repo}"), f, b);
    (r.status, r.text())
}

fn rpcli(s: &Server, args: &[&str]) -> String {
    run(Command::new(bin("rpcli"))
        .arg("-s")
        .arg(s.url(""))
        .env("ARTIFACTD_TOKEN", &s.token)
        .args(args))
}

fn json_page(s: &Server, path: &str) -> serde_json::Value {
    s.get_with(path, &[("Accept", "application/vnd.pypi.simple.v1+json")])
        .json()
}

fn filenames(page: &serde_json::Value) -> Vec<String> {
    page["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|f| f["filename"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn set_status(s: &Server, repo: &str, body: serde_json::Value) -> (u16, String) {
    let r = s.json_as(
        "PUT",
        Some(&s.token),
        &format!("/api/v1/repos/pypi/{repo}/settings"),
        &serde_json::json!({ "project_status": body }),
    );
    (r.status, r.text())
}

#[test]
fn archived_quarantined_and_deprecated_projects_in_a_hosted_repo() {
    let s = Server::start();
    let first = Dist::new("status-lib", "1.0").wheel();
    assert_eq!(upload(&s, "team", &first).0, 201);
    let page = json_page(&s, "/repo/pypi/team/status-lib/");
    assert_eq!(page["meta"]["api-version"], "1.4");
    assert!(page.get("project-status").is_none(), "{page}");

    // Archived: served, closed to uploads, with a sentence.
    let out = rpcli(
        &s,
        &[
            "repo",
            "status",
            "pypi/team",
            "Status_Lib",
            "archived",
            "--reason",
            "moved to status-lib2",
        ],
    );
    assert!(out.contains("Status_Lib is archived in pypi/team"), "{out}");
    let (status, text) = upload(&s, "team", &Dist::new("status-lib", "1.1").wheel());
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains(
            "The project status-lib is archived in this repo (moved to status-lib2), so it takes no uploads."
        ),
        "{text}"
    );
    let page = json_page(&s, "/repo/pypi/team/status-lib/");
    assert_eq!(
        page["versions"],
        serde_json::json!(["1.0"]),
        "nothing stored"
    );
    assert_eq!(
        page["project-status"],
        serde_json::json!({ "status": "archived", "reason": "moved to status-lib2" })
    );
    let html = s.get("/repo/pypi/team/simple/status-lib/").text();
    assert!(
        html.contains("<meta name=\"pypi:project-status\" content=\"archived\">")
            && html.contains("content=\"1.4\""),
        "{html}"
    );
    let settings = s
        .get_as(Some(&s.token), "/api/v1/repos/pypi/team/settings")
        .json();
    assert_eq!(
        settings["project_status"]["status-lib"]["status"], "archived",
        "{settings}"
    );
    let c = clients();
    let scratch = s.scratch("pip");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    let index = s.url("/repo/pypi/team/simple/");
    run(c
        .pip(&scratch, &py)
        .args(["install", "-i", &index, "status-lib"]));

    // Quarantined: no files on the page, downloads refused, pip finds nothing.
    let (status, text) = set_status(
        &s,
        "team",
        serde_json::json!({ "status-lib": { "status": "quarantined", "reason": "under review" } }),
    );
    assert_eq!(status, 200, "{text}");
    let page = json_page(&s, "/repo/pypi/team/status-lib/");
    assert_eq!(filenames(&page), Vec::<String>::new());
    assert_eq!(page["project-status"]["status"], "quarantined");
    let file = s.get(&format!("/repo/pypi/team/files/{}", first.0));
    assert_eq!(file.status, 404);
    assert!(file.error().contains("quarantined"), "{}", file.error());
    let py2 = c.fresh_venv(&scratch.join("venv2"), &scratch);
    let (ok, out) = try_run(
        c.pip(&scratch, &py2)
            .args(["install", "-i", &index, "status-lib"]),
    );
    assert!(!ok, "a quarantined project installed:\n{out}");
    let ui = s.get("/ui/pypi/team/status-lib/").text();
    assert!(
        ui.contains("This project is quarantined in this repo: under review."),
        "{ui}"
    );

    // Deprecated: served and open to uploads; active again clears the mark.
    let (status, text) = set_status(
        &s,
        "team",
        serde_json::json!({ "status-lib": "deprecated" }),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        upload(&s, "team", &Dist::new("status-lib", "1.1").wheel()).0,
        201
    );
    let page = json_page(&s, "/repo/pypi/team/status-lib/");
    assert_eq!(page["project-status"]["status"], "deprecated");
    assert_eq!(filenames(&page).len(), 2);
    set_status(&s, "team", serde_json::json!({ "status-lib": null }));
    assert!(
        json_page(&s, "/repo/pypi/team/status-lib/")
            .get("project-status")
            .is_none()
    );

    // Bad marks are refused with a sentence, and change nothing.
    for bad in [
        serde_json::json!({ "status-lib": "gone" }),
        serde_json::json!({ "status-lib": { "status": "archived", "colour": "red" } }),
        serde_json::json!(["status-lib"]),
    ] {
        let (status, text) = set_status(&s, "team", bad.clone());
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("project_status takes"), "{text}");
    }
    assert!(
        json_page(&s, "/repo/pypi/team/status-lib/")
            .get("project-status")
            .is_none()
    );
}

#[test]
fn proxies_carry_the_upstreams_status_and_virtual_marks_win() {
    // The upstream: one archived project, one quarantined, and a team-lib squatter.
    let up = Server::start();
    for d in [
        Dist::new("old-lib", "1.0").wheel(),
        Dist::new("bad-lib", "1.0").wheel(),
        Dist::new("team-lib", "99.0").wheel(),
    ] {
        assert_eq!(upload(&up, "pypi", &d).0, 201);
    }
    set_status(
        &up,
        "pypi",
        serde_json::json!({ "old-lib": "archived", "bad-lib": { "status": "quarantined", "reason": "malware" } }),
    );
    let s = Server::start();
    assert_eq!(
        upload(&s, "team", &Dist::new("team-lib", "1.0").wheel()).0,
        201
    );
    rpcli(
        &s,
        &[
            "repo",
            "create",
            "pypi/pub",
            "--proxy",
            &up.url("/repo/pypi/pypi/simple/"),
        ],
    );
    rpcli(&s, &["repo", "create", "pypi/all", "--virtual", "team,pub"]);

    // The upstream's status passes through the proxy and the virtual repo.
    for repo in ["pub", "all"] {
        let page = json_page(&s, &format!("/repo/pypi/{repo}/old-lib/"));
        assert_eq!(
            page["project-status"]["status"], "archived",
            "{repo}: {page}"
        );
        assert_eq!(filenames(&page).len(), 1);
        let page = json_page(&s, &format!("/repo/pypi/{repo}/bad-lib/"));
        assert_eq!(
            page["project-status"],
            serde_json::json!({ "status": "quarantined", "reason": "malware" })
        );
        assert_eq!(filenames(&page), Vec::<String>::new(), "{repo}");
    }
    let wheel = Dist::new("bad-lib", "1.0").wheel().0;
    let r = s.get(&format!("/repo/pypi/pub/files/{wheel}"));
    assert_eq!(r.status, 404, "{}", r.text());

    // A proxy's own mark holds for files it has cached too.
    let old = Dist::new("old-lib", "1.0").wheel();
    let cached = s.get(&format!("/repo/pypi/pub/files/{}", old.0));
    assert_eq!(cached.body, old.1);
    set_status(&s, "pub", serde_json::json!({ "old-lib": "quarantined" }));
    assert_eq!(
        filenames(&json_page(&s, "/repo/pypi/pub/old-lib/")),
        Vec::<String>::new()
    );
    let r = s.get(&format!("/repo/pypi/pub/files/{}", old.0));
    assert_eq!(r.status, 404, "a quarantined cached file was served");
    assert!(r.error().contains("quarantined"), "{}", r.error());
    set_status(&s, "pub", serde_json::json!({ "old-lib": null }));

    // The virtual repo's own mark wins over its members'.
    set_status(&s, "all", serde_json::json!({ "old-lib": "quarantined" }));
    let page = json_page(&s, "/repo/pypi/all/old-lib/");
    assert_eq!(page["project-status"]["status"], "quarantined");
    assert_eq!(filenames(&page), Vec::<String>::new());
    assert_eq!(
        json_page(&s, "/repo/pypi/pub/old-lib/")["project-status"]["status"],
        "archived"
    );

    // A quarantined hosted project still hides the upstream's files of its name.
    set_status(&s, "team", serde_json::json!({ "team-lib": "quarantined" }));
    let page = json_page(&s, "/repo/pypi/all/team-lib/");
    assert_eq!(filenames(&page), Vec::<String>::new(), "{page}");
    set_status(&s, "team", serde_json::json!({ "team-lib": null }));

    // The virtual's package page: each file's member, and why the others are not served.
    let ui = s.get("/ui/pypi/all/team-lib/").text();
    let (ours, theirs) = (
        Dist::new("team-lib", "1.0").wheel().0,
        Dist::new("team-lib", "99.0").wheel().0,
    );
    assert!(
        ui.contains(&ours)
            && ui.contains("class=\"origin\"")
            && ui.contains("Not served")
            && ui.contains(&theirs)
            && ui.contains("a hosted member has team-lib"),
        "{ui}"
    );
    rpcli(&s, &["repo", "set", "pypi/pub", "block=old-lib"]);
    let ui = s.get("/ui/pypi/pub/old-lib/").text();
    assert!(
        ui.contains("Not served")
            && (ui.contains("on this repo&#x27;s block list")
                || ui.contains("on this repo's block list")),
        "{ui}"
    );
}
