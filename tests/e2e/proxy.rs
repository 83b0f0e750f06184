//! Proxy repos: pip and uv install through a proxy of another artifactd; pages follow the
//! upstream after their time to live; files are the upstream's bytes, checked and kept; when
//! the upstream is down the cache keeps serving; one upstream fetch however many clients ask; a
//! tampered or cut file is never kept; an HTML-only upstream works too.

use std::process::Command;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Route, Server, Upstream, bin, clients, run, sha256_hex, try_run};

/// Creates the proxy repo `pypi/{name}` of `upstream`.
fn proxy(s: &Server, name: &str, upstream: serde_json::Value) -> serde_json::Value {
    let r = s.json_as(
        "POST",
        Some(&s.token),
        "/api/v1/repos",
        &serde_json::json!({ "provider": "pypi", "name": name, "kind": "proxy", "upstream": upstream }),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn upload(s: &Server, repo: &str, (f, b): &(String, Vec<u8>)) {
    let r = s.addpkg(&format!("provider=pypi&reponame={repo}"), f, b);
    assert!(r.status == 201 || r.status == 200, "{f}: {}", r.text());
}

fn json_page(s: &Server, path: &str) -> serde_json::Value {
    s.get_with(path, &[("Accept", "application/vnd.pypi.simple.v1+json")])
        .json()
}

#[test]
fn pip_and_uv_install_through_a_proxy_that_outlives_its_upstream() {
    let mut up = Server::start();
    for d in [
        Dist::new("wheel-dep", "1.0").wheel(),
        Dist::new("sdist-dep", "1.0").sdist(),
        Dist::new("proxied-app", "1.0")
            .requires("wheel-dep")
            .requires("sdist-dep")
            .wheel(),
    ] {
        upload(&up, "team", &d);
    }
    let s = Server::start();
    let created = proxy(
        &s,
        "up",
        serde_json::json!({ "url": up.url("/repo/pypi/team/simple/"), "ttl": "2s", "token": up.token }),
    );
    assert_eq!(created["kind"], "proxy");
    assert_eq!(created["upstream"]["auth"], "bearer");
    let shown = s.get_as(Some(&s.token), "/api/v1/repos/pypi/up").text();
    assert!(
        shown.contains("\"kind\":\"proxy\"") && !shown.contains(&up.token),
        "{shown}"
    );

    // pip and uv install through it: the wheel-only dependency, the sdist one built.
    let c = clients();
    let scratch = s.scratch("clients");
    let index = s.url("/repo/pypi/up/simple/");
    let py = c.fresh_venv(&scratch.join("pip"), &scratch);
    run(c
        .pip(&scratch, &py)
        .args(["install", "-i", &index, "proxied-app"]));
    let py2 = c.fresh_venv(&scratch.join("uv"), &scratch);
    run(c
        .cmd("uv", &scratch)
        .args(["pip", "install", "--python"])
        .arg(&py2)
        .args(["--index-url", &index, "proxied-app"]));
    for py in [&py, &py2] {
        let out = run(Command::new(py).args(["-c", "import proxied_app, wheel_dep, sdist_dep"]));
        assert!(out.is_empty(), "{out}");
    }

    // The proxy's page carries what the upstream says; files are the upstream's bytes.
    let theirs = json_page(&up, "/repo/pypi/team/proxied-app/");
    let ours = json_page(&s, "/repo/pypi/up/proxied-app/");
    let (t, o) = (&theirs["files"][0], &ours["files"][0]);
    for key in [
        "filename",
        "hashes",
        "size",
        "upload-time",
        "core-metadata",
        "yanked",
    ] {
        assert_eq!(t[key], o[key], "{key}: {o}");
    }
    assert_eq!(
        o["url"],
        format!("../files/{}", o["filename"].as_str().unwrap())
    );
    let wheel = o["filename"].as_str().unwrap().to_owned();
    for path in [wheel.clone(), format!("{wheel}.metadata")] {
        let mine = s.get(&format!("/repo/pypi/up/files/{path}"));
        let real = up.get(&format!("/repo/pypi/team/files/{path}"));
        assert_eq!(mine.status, 200, "{path}: {}", mine.text());
        assert_eq!(mine.body, real.body, "{path}");
        assert_eq!(mine.header("x-artifactd-cache"), Some("hit"), "{path}");
    }

    // A new upstream version shows once the page's time to live has passed.
    upload(&up, "team", &Dist::new("proxied-app", "2.0").wheel());
    let page = s.get("/repo/pypi/up/proxied-app/").text();
    assert!(!page.contains("proxied_app-2.0"), "cached for 2 s: {page}");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let page = s.get("/repo/pypi/up/proxied-app/");
    assert!(page.text().contains("proxied_app-2.0"), "{}", page.text());
    assert_eq!(page.header("x-artifactd-cache"), Some("miss"));

    // Uploads go to hosted repos, not to a proxy.
    let (f, b) = Dist::new("mine", "1.0").wheel();
    let r = s.addpkg("provider=pypi&reponame=up", &f, &b);
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.error().contains("proxy"), "{}", r.error());

    // The upstream goes away: cached pages (stale) and files keep serving, installs work.
    up.stop();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let page = s.get("/repo/pypi/up/proxied-app/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("x-artifactd-cache"), Some("stale"));
    assert!(
        page.header("warning")
            .is_some_and(|w| w.contains("Revalidation failed"))
    );
    let py3 = c.fresh_venv(&scratch.join("offline"), &scratch);
    run(c
        .pip(&scratch, &py3)
        .args(["install", "-i", &index, "proxied-app==1.0"]));
    // What was never fetched fails, naming the upstream.
    let never = s.get("/repo/pypi/up/never-fetched/");
    assert_eq!(never.status, 502, "{}\n{}", never.text(), s.log());
    assert!(never.error().contains("127.0.0.1"), "{}", never.error());
    assert!(
        s.log().contains("serving the cached page"),
        "logged as stale"
    );
}

#[test]
fn fifty_concurrent_requests_make_one_upstream_fetch() {
    let up = Server::start();
    let big = Dist::new("big-app", "1.0")
        .salt(&"x".repeat(4 << 20))
        .wheel();
    upload(&up, "team", &big);
    let s = Server::start();
    proxy(
        &s,
        "up",
        serde_json::json!({ "url": up.url("/repo/pypi/team/simple/") }),
    );
    let path = format!("/repo/pypi/up/files/{}", big.0);
    let bodies: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50).map(|_| scope.spawn(|| s.get(&path))).collect();
        handles
            .into_iter()
            .map(|h| {
                let r = h.join().expect("request");
                assert_eq!(r.status, 200, "{}", r.text());
                r.body
            })
            .collect()
    });
    assert!(
        bodies.iter().all(|b| *b == big.1),
        "every client got the upstream's bytes"
    );
    let log = up.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count(&format!("path=/repo/pypi/team/files/{}", big.0)),
        1,
        "{log}"
    );
    assert_eq!(count("path=/repo/pypi/team/simple/big-app/"), 1, "{log}");
}

/// A PEP 691 page listing one file, with the given hash.
fn page_with(name: &str, filename: &str, url: &str, sha: &str) -> Vec<u8> {
    serde_json::json!({
        "meta": { "api-version": "1.1" },
        "name": name,
        "files": [{ "filename": filename, "url": url, "hashes": { "sha256": sha }, "size": 0 }],
    })
    .to_string()
    .into_bytes()
}

#[test]
fn tampered_cut_and_failing_upstreams_are_never_cached() {
    let up = Upstream::start();
    let (f, b) = Dist::new("fragile", "1.0").wheel();
    let json = "application/vnd.pypi.simple.v1+json";
    up.set(
        "/simple/fragile/",
        Route::Ok(
            json.into(),
            page_with("fragile", &f, &format!("/files/{f}"), &"0".repeat(64)),
        ),
    );
    up.set(
        &format!("/files/{f}"),
        Route::Ok("application/zip".into(), b.clone()),
    );
    let s = Server::start();
    proxy(
        &s,
        "up",
        serde_json::json!({ "url": up.url("/simple/"), "ttl": "1s" }),
    );
    let path = format!("/repo/pypi/up/files/{f}");
    // A file whose bytes are not the listed hash: the download fails, nothing is kept.
    for _ in 0..2 {
        let (ok, out) =
            try_run(Command::new("curl").args(["-sSf", "-o", "/dev/null", &s.url(&path)]));
        assert!(!ok, "a tampered file must not download: {out}");
    }
    assert_eq!(
        up.hits(&format!("/files/{f}")),
        2,
        "fetched again: never kept"
    );
    assert!(s.log().contains("not the"), "the mismatch is logged");
    // A file cut short: the same.
    let (g, c) = Dist::new("fragile", "1.1").wheel();
    up.set(
        "/simple/fragile/",
        Route::Ok(
            json.into(),
            page_with("fragile", &g, &format!("/files/{g}"), &sha256_hex(&c)),
        ),
    );
    up.set(
        &format!("/files/{g}"),
        Route::Cut("application/zip".into(), c.clone(), 100),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ok, _) = try_run(Command::new("curl").args([
        "-sSf",
        "-o",
        "/dev/null",
        &s.url(&format!("/repo/pypi/up/files/{g}")),
    ]));
    assert!(!ok, "a cut file must not download");
    // Now the real bytes: kept, then served without the upstream.
    up.set(
        &format!("/files/{g}"),
        Route::Ok("application/zip".into(), c.clone()),
    );
    assert_eq!(s.get(&format!("/repo/pypi/up/files/{g}")).body, c);
    up.set(&format!("/files/{g}"), Route::Status(500));
    let again = s.get(&format!("/repo/pypi/up/files/{g}"));
    assert_eq!(
        (again.status, again.header("x-artifactd-cache")),
        (200, Some("hit"))
    );
    // An upstream that answers 5xx or hangs: the cached page serves, marked stale.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    up.set("/simple/fragile/", Route::Status(503));
    let page = s.get("/repo/pypi/up/fragile/");
    assert_eq!(
        (page.status, page.header("x-artifactd-cache")),
        (200, Some("stale"))
    );
    // A page that is not an index page: 502 when nothing is cached.
    up.set(
        "/simple/garbage/",
        Route::Ok(json.into(), b"{not json".to_vec()),
    );
    let r = s.get("/repo/pypi/up/garbage/");
    assert_eq!(r.status, 502, "{}", r.text());
    // A project the upstream does not have: 404, remembered for a while.
    let r = s.get("/repo/pypi/up/absent/");
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn an_html_only_upstream_is_proxied() {
    let up = Upstream::start();
    let (f, b) = Dist::new("html-only", "1.0").wheel();
    let sha = sha256_hex(&b);
    up.set(
        "/simple/html-only/",
        Route::Ok(
            "text/html".into(),
            format!("<!DOCTYPE html><html><body><a href=\"../../packages/{f}#sha256={sha}\" data-requires-python=\"&gt;=3.8\">{f}</a></body></html>").into_bytes(),
        ),
    );
    up.set(
        &format!("/packages/{f}"),
        Route::Ok("application/zip".into(), b.clone()),
    );
    let s = Server::start();
    // Made with rpcli this time.
    let out = run(Command::new(bin("rpcli"))
        .arg("-s")
        .arg(s.url(""))
        .env("ARTIFACTD_TOKEN", &s.token)
        .args([
            "repo",
            "create",
            "pypi/up",
            "--proxy",
            &up.url("/simple/"),
            "--ttl",
            "1h",
        ]));
    assert!(
        out.contains("created pypi/up, a proxy of http://127.0.0.1:"),
        "{out}"
    );
    let page = json_page(&s, "/repo/pypi/up/html-only/");
    assert_eq!(page["files"][0]["hashes"]["sha256"], sha);
    assert_eq!(page["files"][0]["requires-python"], ">=3.8");
    let c = clients();
    let scratch = s.scratch("pip");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c.pip(&scratch, &py).args([
        "install",
        "-i",
        &s.url("/repo/pypi/up/simple/"),
        "html-only",
    ]));
    assert_eq!(s.get(&format!("/repo/pypi/up/files/{f}")).body, b);
}

#[test]
fn the_ui_shows_a_proxy_with_its_upstream_and_cache() {
    let up = Server::start();
    let (f, b) = Dist::new("shown-pkg", "1.0").wheel();
    upload(&up, "team", &(f.clone(), b));
    let s = Server::start();
    proxy(
        &s,
        "up",
        serde_json::json!({ "url": up.url("/repo/pypi/team/simple/") }),
    );
    assert_eq!(s.get(&format!("/repo/pypi/up/files/{f}")).status, 200);
    let page = s.get("/ui/pypi/up/").text().replace("&#x2f;", "/");
    assert!(page.contains(">proxy</span>"), "{page}");
    assert!(page.contains(&up.url("/repo/pypi/team/simple/")), "{page}");
    assert!(page.contains("1 cached file"), "{page}");
    assert!(page.contains("href=\"shown-pkg/\""), "{page}");
    // The package page: what the proxy serves of it, from which repo.
    let pkg = s.get("/ui/pypi/up/shown-pkg/").text();
    assert!(
        pkg.contains(&f) && pkg.contains("class=\"origin\"") && !pkg.contains("Not served"),
        "{pkg}"
    );
    let home = s.get("/api/v1/repos").json();
    assert_eq!(home["repos"][0]["kind"], "proxy", "{home}");
}

#[test]
fn two_nodes_share_the_proxy_cache() {
    use artifactd_tests::{Backend, Options, S3Server, backends, fresh_database};
    let Some(backend) = backends().into_iter().find(|b| *b != Backend::Sqlite) else {
        eprintln!("no network database: the shared-cache test needs MariaDB or PostgreSQL");
        return;
    };
    let url = fresh_database(backend).expect("database url");
    let s3 = S3Server::start();
    let bucket = s3.url("proxy-cache");
    let node = || {
        Server::start_with(
            Options::default()
                .arg("--database")
                .arg(&url)
                .env("S3_URL", &bucket),
        )
    };
    let (a, b) = (node(), node());
    let mut up = Server::start();
    let (f, bytes) = Dist::new("shared-cache", "1.0").wheel();
    upload(&up, "team", &(f.clone(), bytes.clone()));
    proxy(
        &a,
        "up",
        serde_json::json!({ "url": up.url("/repo/pypi/team/simple/") }),
    );
    // Node A fetches; the upstream goes away; node B serves the page and the file.
    assert_eq!(a.get(&format!("/repo/pypi/up/files/{f}")).body, bytes);
    up.stop();
    let page = b.get("/repo/pypi/up/shared-cache/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains(&f), "{}", page.text());
    let file = b.get(&format!("/repo/pypi/up/files/{f}"));
    assert_eq!(
        (file.status, file.header("x-artifactd-cache")),
        (200, Some("hit"))
    );
    assert_eq!(file.body, bytes);
}
