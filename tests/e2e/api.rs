//! The JSON API: listings, search, repo lifecycle, and the OpenAPI document matching the routes.

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server, bin, clients, fake_gzip, run};

#[test]
fn listings_search_and_repo_lifecycle() {
    let s = Server::start_with(Options::with_tar());
    for (n, v) in [("alpha", "1.0"), ("alpha", "1.1"), ("beta", "2.0")] {
        let (f, b) = Dist::new(n, v).summary(&format!("{n} does things")).wheel();
        assert_eq!(s.addpkg("provider=pypi&reponame=team", &f, &b).status, 201);
    }
    assert_eq!(
        s.addpkg("provider=tar&reponame=blobs", "t-1.0.tgz", &fake_gzip(b"t"))
            .status,
        201
    );

    let repos = s.get("/api/v1/repos").json();
    let names: Vec<String> = repos["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["provider"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["pypi/team", "tar/blobs"]);
    assert_eq!(repos["repos"][0]["files"], 3);
    assert_eq!(repos["repos"][0]["packages"], 2);
    assert_eq!(s.get("/api/v1/repos/pypi/team").json()["packages"], 2);
    assert!(
        repos["repos"][0]["last_upload"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        s.get("/api/v1/repos?provider=tar").json()["repos"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let pk = s.get("/api/v1/repos/pypi/team/packages").json();
    assert_eq!(pk["total"], 2);
    assert_eq!(pk["packages"][0]["name"], "alpha");
    assert_eq!(pk["packages"][0]["latest"], "1.1");
    assert_eq!(pk["packages"][0]["summary"], "alpha does things");
    assert_eq!(
        s.get("/api/v1/repos/pypi/team/packages?q=bet").json()["total"],
        1
    );
    let paged = s
        .get("/api/v1/repos/pypi/team/packages?per_page=1&page=2")
        .json();
    assert_eq!(paged["packages"][0]["name"], "beta");
    let versions = s.get("/api/v1/repos/pypi/team/packages/Alpha").json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    let file = &versions["versions"][0]["files"][0];
    for k in [
        "filename",
        "size",
        "sha256",
        "uploaded_at",
        "uploader",
        "meta",
    ] {
        assert!(file.get(k).is_some(), "{k} missing: {file}");
    }
    assert_eq!(file["uploader"], "token:bootstrap-admin");
    let found = s.get("/api/v1/search?q=does%20things").json();
    assert_eq!(found["results"].as_array().unwrap().len(), 2, "{found}");
    assert_eq!(s.get("/api/v1/search?q=").status, 400);
    assert_eq!(s.get("/api/v1/repos/pypi/nope").status, 404);

    // Create with settings, conflict, delete.
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({"provider": "pypi", "name": "fresh", "settings": {"private": true}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["settings"]["private"], true);
    let again = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({"provider": "pypi", "name": "fresh"}),
    );
    assert_eq!(again.status, 409);
    assert_eq!(
        s.json_as(
            "POST",
            None,
            "/api/v1/repos",
            &serde_json::json!({"provider": "pypi", "name": "x"})
        )
        .status,
        401
    );
    assert!(
        !s.get("/api/v1/repos").text().contains("fresh"),
        "private repos are hidden from anonymous listings"
    );
    let r = s.delete_as(Some(&s.token), "/api/v1/repos/tar/blobs");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get("/repo/tar/blobs/").status, 404);
    assert!(s.stored_files().keys().all(|k| !k.contains("derived/tar")));

    // rpcli list on top.
    let mut c = std::process::Command::new(bin("rpcli"));
    c.arg("-s").arg(s.url("")).env("ARTIFACTD_TOKEN", &s.token);
    let out = run(c.args(["list", "-y", "pypi", "-r", "team", "-p", "alpha"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    let mut c = std::process::Command::new(bin("rpcli"));
    let out = run(c.arg("-s").arg(s.url("")).arg("list"));
    assert!(out.contains("pypi/team\t3 files"), "{out}");
    // Errors are JSON everywhere below /api/v1.
    let e = s.get("/api/v1/nothing-here");
    assert_eq!(e.status, 404);
    assert!(!e.error().is_empty());
}

#[test]
fn openapi_document_matches_the_routes() {
    let s = Server::start();
    let doc = s.get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    // Every documented operation is routed (none answers the router's 404 or 405) and none fails
    // on the server's side, even with placeholder parameters.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url = format!(
                "/api/v1{}",
                path.replace("{provider}", "pypi")
                    .replace("{repo}", "r")
                    .replace("{name}", "n")
                    .replace("{version}", "1")
                    .replace("{id}", "999999")
            );
            let url = if path == "/search" {
                format!("{url}?q=x")
            } else {
                url
            };
            let r = s.send(
                &method.to_ascii_uppercase(),
                Some(&s.token),
                &url,
                Some("application/json"),
                b"{}",
            );
            assert!(r.status < 500, "{method} {url}: {}", r.status);
            assert_ne!(r.status, 405, "{method} {url} is documented but not routed");
            if r.status == 404 {
                assert!(
                    !r.error().contains("nothing at this URL"),
                    "{method} {url} is documented but not routed"
                );
            }
        }
    }
    // And every route the API has is documented.
    let source = include_str!("../../artifactd/src/http/api.rs");
    for line in source
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let route = line.split('"').nth(1).unwrap();
        assert!(
            paths.contains_key(route),
            "{route} is routed but not in openapi.json"
        );
    }
}

/// Schemathesis generates requests from the OpenAPI document (valid and invalid, then stateful
/// sequences) against the live server and checks every answer against the document: no 5xx, the
/// documented statuses, content types and bodies, invalid input refused and valid input taken.
#[test]
fn schemathesis_finds_the_document_and_the_server_in_agreement() {
    let s = Server::start();
    // Data behind the document's example parameters (pypi/team, package demo 1.0).
    let (f, b) = Dist::new("demo", "1.0").wheel();
    assert_eq!(s.addpkg("provider=pypi&reponame=team", &f, &b).status, 201);
    let scratch = s.scratch("schemathesis");
    let schemathesis = |extra: &[&str]| {
        run(clients()
            .cmd("schemathesis", &scratch)
            .current_dir(&scratch)
            .arg("run")
            .arg(s.url("/api/v1/openapi.json"))
            .args(["-H", &format!("Authorization: Bearer {}", s.token)])
            .args(["--max-examples", "25", "--generation-deterministic"])
            .args(["--request-timeout", "20", "--workers", "1"])
            .args(extra))
    };
    // Every operation with every check; revoking tokens would revoke the one the run uses
    // (auth.rs covers revocation), a schema-valid string is rarely a valid OpenPGP key, and
    // which settings a repo takes depends on its kind, which the request does not carry (a
    // proxy's min_age is refused for a hosted repo).
    let out = schemathesis(&[
        "--checks",
        "all",
        "--exclude-path-regex",
        "^/tokens/|/key$|/settings$",
    ]);
    assert!(out.contains("passed"), "{out}");
    // Those with every check but "valid input is accepted".
    let out = schemathesis(&[
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--include-path-regex",
        "/key$|/settings$",
    ]);
    assert!(out.contains("passed"), "{out}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}
