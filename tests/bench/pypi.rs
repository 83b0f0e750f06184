//! PyPI: uploads, reads and clients against pypiserver, devpi and nginx.

use super::*;

pub(crate) fn pypi(
    rep: &mut Report,
    cfg: &Config,
    n: usize,
    data: &Data,
    venv: &Path,
    scratch: &Path,
) {
    let s = Server::start_with(Options::default());
    let wheels_dir = data.dir.join("wheels");
    upload_both(
        rep,
        &s,
        "wheels",
        "provider=pypi&reponame=REPO",
        &wheels_dir,
        &data.wheels,
        n,
    );

    // The same pages as static files for nginx: the root and the first 20 projects, with
    // their files.
    let project = &data.projects[0];
    let static_root = scratch.join(format!("pypi-static-{n}"));
    let first: Vec<String> = data.projects.iter().take(20).cloned().collect();
    pypi_static(&s, "seq", &first, &data.wheels, &wheels_dir, &static_root);
    let (_nginx, nginx_url) = nginx(&static_root, scratch);

    // pypiserver on the same wheels.
    let port = free_port();
    let _pypiserver = Proc(
        Command::new(venv.join("bin/pypi-server"))
            .args([
                "run",
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "--disable-fallback",
                "-a",
                ".",
            ])
            .arg("-P")
            .arg(".")
            .arg(&wheels_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pypi-server"),
    );
    let pypiserver = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{pypiserver}/simple/"));
    let devpi = (n <= DEVPI_MAX_N).then(|| {
        let (proc, index, secs) = devpi(venv, scratch, n, &wheels_dir, &data.wheels);
        rep.add(
            "upload",
            "N wheels, sequential",
            n,
            "devpi",
            secs,
            "s",
            format!("{:.0} files/s (one twine upload)", n as f64 / secs),
        );
        (proc, index)
    });

    let html = "Accept: text/html";
    for (page, ours, theirs, static_path) in [
        (
            "root page",
            "/repo/pypi/seq/simple/".to_owned(),
            "/simple/".to_owned(),
            "/simple/".to_owned(),
        ),
        (
            "project page",
            format!("/repo/pypi/seq/simple/{project}/"),
            format!("/simple/{project}/"),
            format!("/simple/{project}/"),
        ),
    ] {
        let rss_before = s.rss_kib().0;
        let (rps, p99, bad) = wrk(&s.url(&ours), cfg.secs, &[html]);
        let rss_load = s.rss_kib().0.max(rss_before);
        rep.add(
            "read",
            page,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        rep.add(
            "read",
            &format!("{page} p99"),
            n,
            "artifactd",
            p99,
            "ms",
            String::new(),
        );
        if page == "project page" {
            rep.add(
                "memory",
                "RSS under read load",
                n,
                "artifactd",
                rss_load as f64 / 1024.0,
                "MiB",
                String::new(),
            );
        }
        let (rps, p99, bad) = wrk(&format!("{pypiserver}{theirs}"), cfg.secs, &[html]);
        rep.add(
            "read",
            page,
            n,
            "pypiserver",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        if let Some((_, index)) = &devpi {
            let (rps, p99, bad) = wrk(&format!("{index}/+{}", &theirs[1..]), cfg.secs, &[html]);
            rep.add(
                "read",
                page,
                n,
                "devpi",
                rps,
                "req/s",
                format!("p99 {p99:.2} ms, {bad} non-2xx"),
            );
        }
        let (rps, p99, bad) = wrk(&format!("{nginx_url}{static_path}"), cfg.secs, &[html]);
        rep.add(
            "read",
            page,
            n,
            "nginx",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        rep.add(
            "read",
            &format!("{page} p99"),
            n,
            "nginx",
            p99,
            "ms",
            String::new(),
        );
    }
    let (rps, p99, _) = wrk(
        &s.url(&format!("/repo/pypi/seq/simple/{project}/")),
        cfg.secs,
        &["Accept: application/vnd.pypi.simple.v1+json"],
    );
    rep.add(
        "read",
        "project page (PEP 691 JSON)",
        n,
        "artifactd",
        rps,
        "req/s",
        format!("p99 {p99:.2} ms"),
    );

    // A proxy of the hosted repo (on the same server) and a virtual repo over both: cached
    // pages against the hosted page.
    for (name, body) in [
        (
            "px",
            serde_json::json!({ "provider": "pypi", "name": "px", "kind": "proxy",
                "upstream": { "url": s.url("/repo/pypi/seq/simple/"), "ttl": "1h" } }),
        ),
        (
            "vt",
            serde_json::json!({ "provider": "pypi", "name": "vt", "kind": "virtual", "members": ["seq", "px"] }),
        ),
    ] {
        let r = s.json_as("POST", Some(&s.token), "/api/v1/repos", &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let path = format!("/repo/pypi/{name}/simple/{project}/");
        assert_eq!(s.get(&path).status, 200, "{path}");
        let (rps, p99, bad) = wrk(&s.url(&path), cfg.secs, &[html]);
        let what = if name == "px" {
            "project page (proxy, cached)"
        } else {
            "project page (virtual)"
        };
        rep.add(
            "read",
            what,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
    }

    // uv pip install of 20 packages into a fresh venv, against artifactd and the static tree.
    let wanted: Vec<&String> = data.projects.iter().take(20).collect();
    for (subject, index) in [
        ("artifactd", s.url("/repo/pypi/seq/simple/")),
        ("nginx", format!("{nginx_url}/simple/")),
    ] {
        let secs = median_of_3(|round| {
            let target = scratch.join(format!("uv-{subject}-{n}-{round}"));
            uv_install(venv, &target, &index, &wanted)
        });
        rep.add(
            "client",
            &format!("uv pip install {} packages", wanted.len()),
            n,
            subject,
            secs,
            "s",
            String::new(),
        );
    }
}

/// A static copy of repo `repo`'s root page and of the pages of `projects` with their files
/// and PEP 658 metadata (of `wheels`, in `wheels_dir`), laid out as the server links them.
pub(crate) fn pypi_static(
    s: &Server,
    repo: &str,
    projects: &[String],
    wheels: &[String],
    wheels_dir: &Path,
    root: &Path,
) {
    let simple = root.join("simple");
    let files = root.join("files");
    std::fs::create_dir_all(&files).expect("static files");
    std::fs::create_dir_all(&simple).expect("static");
    std::fs::write(
        simple.join("index.html"),
        s.get(&format!("/repo/pypi/{repo}/simple/")).body,
    )
    .expect("static root");
    for p in projects {
        std::fs::create_dir_all(simple.join(p)).expect("static");
        let page = s.get(&format!("/repo/pypi/{repo}/simple/{p}/"));
        assert_eq!(page.status, 200, "{p}");
        std::fs::write(simple.join(p).join("index.html"), page.body).expect("static page");
        let prefix = format!("{}-", p.replace('-', "_"));
        for f in wheels.iter().filter(|f| f.starts_with(&prefix)) {
            std::fs::copy(wheels_dir.join(f), files.join(f)).expect("static file");
            let meta = s.get(&format!("/repo/pypi/{repo}/files/{f}.metadata"));
            assert_eq!(meta.status, 200, "{f}.metadata");
            std::fs::write(files.join(format!("{f}.metadata")), meta.body)
                .expect("static metadata");
        }
    }
}

/// Seconds `uv pip install` of `packages` from `index` into the folder `target` takes.
pub(crate) fn uv_install<S: AsRef<std::ffi::OsStr>>(
    venv: &Path,
    target: &Path,
    index: &str,
    packages: &[S],
) -> f64 {
    timed(|| {
        sh(Command::new(venv.join("bin/uv"))
            .args(["pip", "install", "--no-cache", "--quiet", "--target"])
            .arg(target)
            .args(["--index-url", index])
            .args(packages)
            .env("UV_NO_CONFIG", "1"));
    })
}
