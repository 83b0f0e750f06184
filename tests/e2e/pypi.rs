//! The PyPI provider with real clients: pip, uv and twine from the shared client venv.

use std::process::Command;

use artifactd_pypi::testing::{Dist, zip_stored};
use artifactd_tests::{Options, Server, clients, run, try_run};

fn upload(s: &Server, repo: &str, (filename, bytes): &(String, Vec<u8>)) -> serde_json::Value {
    let r = s.addpkg(&format!("provider=pypi&reponame={repo}"), filename, bytes);
    assert!(
        r.status == 201 || r.status == 200,
        "{filename}: {} {}",
        r.status,
        r.text()
    );
    r.json()
}

fn python(py: &std::path::Path, code: &str) -> String {
    run(Command::new(py).arg("-c").arg(code)).trim().to_owned()
}

#[test]
fn seed_curl_upload_then_pip_install_with_dependencies_and_hashes() {
    let s = Server::start();
    let scratch = s.scratch("pip");
    let c = clients();
    // The seed's own call, with curl.
    let (lib_name, lib_bytes) = Dist::new("dep-lib", "1.0").wheel();
    let lib_path = scratch.join(&lib_name);
    std::fs::write(&lib_path, &lib_bytes).unwrap();
    let out = run(artifactd_tests::tool("curl")
        .arg("-sS")
        .arg("-u")
        .arg(format!("__token__:{}", s.token))
        .arg("-F")
        .arg(format!("f=@{}", lib_path.display()))
        .arg(s.url("/addpkg?provider=pypi&reponame=team&name=dep-lib&version=1.0")));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["filename"], lib_name, "{out}");
    upload(&s, "team", &Dist::new("dep-lib", "0.9").wheel());
    upload(
        &s,
        "team",
        &Dist::new("my-app", "1.0").requires("dep-lib>=1.0").wheel(),
    );
    upload(
        &s,
        "team",
        &Dist::new("my-app", "1.0").requires("dep-lib>=1.0").sdist(),
    );

    let index = s.url("/repo/pypi/team/");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c
        .pip(&scratch, &py)
        .args(["install"])
        .args(["-i", &index, "my-app"]));
    assert_eq!(
        python(
            &py,
            "import my_app, dep_lib; print(my_app.__version__, dep_lib.__version__)"
        ),
        "1.0 1.0"
    );

    // --require-hashes with the hash the JSON index gives.
    let page = s
        .get_with(
            "/repo/pypi/team/my-app/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    let wheel = page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"].as_str().unwrap().ends_with(".whl"))
        .unwrap();
    let req = scratch.join("req.txt");
    std::fs::write(
        &req,
        format!(
            "my-app==1.0 --hash=sha256:{}\n",
            wheel["hashes"]["sha256"].as_str().unwrap()
        ),
    )
    .unwrap();
    let py2 = c.fresh_venv(&scratch.join("venv2"), &scratch);
    run(c
        .pip(&scratch, &py2)
        .args(["install", "--no-deps", "--require-hashes"])
        .args(["-i", &index, "-r"])
        .arg(&req));
    assert_eq!(
        python(&py2, "import my_app; print(my_app.__version__)"),
        "1.0"
    );
    // A wrong hash is refused by pip.
    std::fs::write(
        &req,
        format!("my-app==1.0 --hash=sha256:{}\n", "0".repeat(64)),
    )
    .unwrap();
    let py3 = c.fresh_venv(&scratch.join("venv3"), &scratch);
    let (ok, out) = try_run(
        c.pip(&scratch, &py3)
            .args(["install", "--no-deps", "--require-hashes"])
            .args(["-i", &index, "-r"])
            .arg(&req),
    );
    assert!(!ok && out.contains("HASHES"), "{out}");
    // The simple/ alias works as an index URL too.
    let py4 = c.fresh_venv(&scratch.join("venv4"), &scratch);
    run(c.pip(&scratch, &py4).args(["install"]).args([
        "-i",
        &s.url("/repo/pypi/team/simple/"),
        "dep-lib==0.9",
    ]));
    assert_eq!(
        python(&py4, "import dep_lib; print(dep_lib.__version__)"),
        "0.9"
    );
}

#[test]
fn uv_installs_and_honours_exclude_newer() {
    let s = Server::start();
    let scratch = s.scratch("uv");
    let c = clients();
    upload(&s, "uvr", &Dist::new("leaf", "2.0").wheel());
    upload(
        &s,
        "uvr",
        &Dist::new("tree", "1.0").requires("leaf").wheel(),
    );
    let index = s.url("/repo/pypi/uvr/");
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c
        .cmd("uv", &scratch)
        .args(["pip", "install", "--python"])
        .arg(&py)
        .args(["--index-url", &index, "tree"]));
    assert_eq!(
        python(
            &py,
            "import tree, leaf; print(tree.__version__, leaf.__version__)"
        ),
        "1.0 2.0"
    );
    // upload-time is there: a cut-off in the future keeps the files, one in the past drops them.
    let py2 = c.fresh_venv(&scratch.join("venv2"), &scratch);
    run(c
        .cmd("uv", &scratch)
        .args([
            "pip",
            "install",
            "--exclude-newer",
            "2100-01-01T00:00:00Z",
            "--python",
        ])
        .arg(&py2)
        .args(["--index-url", &index, "tree"]));
    let (ok, out) = try_run(
        c.cmd("uv", &scratch)
            .args([
                "pip",
                "install",
                "--exclude-newer",
                "2001-01-01T00:00:00Z",
                "--python",
            ])
            .arg(&py2)
            .args(["--index-url", &index, "leaf==2.0", "--reinstall"]),
    );
    assert!(!ok, "files uploaded now must be newer than 2001: {out}");
}

#[test]
fn twine_and_uv_publish_twice_and_skip_conflicts() {
    let s = Server::start();
    let scratch = s.scratch("publish");
    let c = clients();
    let dist = scratch.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    for (f, b) in [
        Dist::new("pub-pkg", "1.0").wheel(),
        Dist::new("pub-pkg", "1.0").sdist(),
    ] {
        std::fs::write(dist.join(f), b).unwrap();
    }
    let files: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    for url in [s.url("/repo/pypi/tw/"), s.url("/repo/pypi/tw/legacy/")] {
        for _ in 0..2 {
            run(&mut c.twine_upload(&scratch, &url, &s.token, &[], &files));
        }
    }
    for _ in 0..2 {
        run(&mut c.uv_publish(&scratch, &s.url("/repo/pypi/uvp/"), &s.token, &[], &files));
    }
    let page = s
        .get_with(
            "/repo/pypi/uvp/pub-pkg/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(page["files"].as_array().unwrap().len(), 2, "{page}");

    // Same file names, other bytes.
    let changed = scratch.join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    for (f, b) in [
        Dist::new("pub-pkg", "1.0").salt("new").wheel(),
        Dist::new("pub-pkg", "1.1").wheel(),
    ] {
        std::fs::write(changed.join(f), b).unwrap();
    }
    let changed_files: Vec<String> = std::fs::read_dir(&changed)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let url = s.url("/repo/pypi/tw/");
    let (ok, out) = try_run(&mut c.twine_upload(&scratch, &url, &s.token, &[], &changed_files));
    assert!(
        !ok && out.contains("409"),
        "a conflicting upload must fail with 409: {out}"
    );
    assert!(out.contains("File already exists"), "{out}");
    run(&mut c.twine_upload(
        &scratch,
        &url,
        &s.token,
        &["--skip-existing"],
        &changed_files,
    ));
    // The conflicting file was skipped, the new one stored, the old bytes kept.
    let tw = s
        .get_with(
            "/repo/pypi/tw/pub-pkg/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(tw["versions"], serde_json::json!(["1.0", "1.1"]), "{tw}");
    let (wheel_name, wheel_bytes) = Dist::new("pub-pkg", "1.0").wheel();
    assert_eq!(
        s.get(&format!("/repo/pypi/tw/files/{wheel_name}")).body,
        wheel_bytes
    );

    // uv publish --check-url skips files the index has with the same hash.
    let uvp = s.url("/repo/pypi/uvp/");
    let check = ["--check-url", uvp.as_str()];
    let (ok, out) = try_run(&mut c.uv_publish(&scratch, &uvp, &s.token, &check, &files));
    assert!(ok, "{out}");
    assert!(out.to_lowercase().contains("skip"), "{out}");
    // and refuses to overwrite one whose bytes differ.
    let (ok, out) = try_run(&mut c.uv_publish(&scratch, &uvp, &s.token, &check, &changed_files));
    assert!(!ok, "{out}");
    assert_eq!(
        s.get(&format!("/repo/pypi/uvp/files/{wheel_name}")).body,
        wheel_bytes
    );
}

#[test]
fn twine_and_uv_read_the_size_limit_refusal() {
    let s = Server::start_with(Options::default().arg("--max-upload-bytes").arg("2000000"));
    let scratch = s.scratch("limit");
    let c = clients();
    // A stored (uncompressed) wheel of 8 MB: more than the socket buffers take, so a client
    // that sends the whole body before it reads sees the answer only if the server reads on.
    let big = Dist::new("big-pkg", "1.0");
    let mut members = big.wheel_members();
    members.push(("big_pkg/data.bin".to_owned(), vec![7u8; 8 << 20]));
    let path = scratch.join(big.wheel_name());
    std::fs::write(&path, zip_stored(&members)).unwrap();
    let files = [path.display().to_string()];
    let limit = "limit of 2000000 bytes";
    let (ok, out) =
        try_run(&mut c.twine_upload(&scratch, &s.url("/repo/pypi/lim/"), &s.token, &[], &files));
    assert!(!ok && out.contains("413"), "{out}");
    assert!(out.contains(limit), "twine shows the sentence: {out}");
    let (ok, out) =
        try_run(&mut c.uv_publish(&scratch, &s.url("/repo/pypi/lim/"), &s.token, &[], &files));
    assert!(!ok && out.contains("413"), "{out}");
    assert!(out.contains(limit), "uv shows the sentence: {out}");
    assert_eq!(s.get("/repo/pypi/lim/").status, 404);
    // The same clients publish a small file right after.
    let (name, bytes) = Dist::new("small-pkg", "1.0").wheel();
    let small = scratch.join(name);
    std::fs::write(&small, bytes).unwrap();
    run(&mut c.twine_upload(
        &scratch,
        &s.url("/repo/pypi/lim/"),
        &s.token,
        &[],
        &[small.display().to_string()],
    ));
    assert_eq!(s.get("/repo/pypi/lim/small-pkg/").status, 200);
}

#[test]
fn simple_api_protocol_details() {
    let s = Server::start();
    let w = Dist::new("Proto_Pkg", "1.0")
        .requires_python(">=3.8,<4")
        .wheel();
    let j = upload(&s, "p", &w);
    upload(&s, "p", &Dist::new("Proto_Pkg", "1.1").sdist());
    upload(&s, "p", &Dist::new("Proto_Pkg", "0.5").egg());
    let sha = j["sha256"].as_str().unwrap().to_owned();
    let json_accept = [("Accept", "application/vnd.pypi.simple.v1+json")];

    // PEP 691 JSON, with PEP 700 fields.
    let r = s.get_with("/repo/pypi/p/proto-pkg/", &json_accept);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.pypi.simple.v1+json")
    );
    assert!(r.header("vary").unwrap().contains("Accept"));
    let page = r.json();
    assert_eq!(page["meta"]["api-version"], "1.4");
    assert_eq!(page["name"], "proto-pkg");
    assert_eq!(page["versions"], serde_json::json!(["0.5", "1.0", "1.1"]));
    for f in page["files"].as_array().unwrap() {
        for key in ["filename", "url", "hashes", "size", "upload-time", "yanked"] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert!(f["upload-time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(f["hashes"]["sha256"].as_str().unwrap().len(), 64);
    }
    let wf = &page["files"][1];
    assert_eq!(wf["filename"], w.0);
    assert_eq!(wf["requires-python"], ">=3.8,<4");
    assert_eq!(wf["hashes"]["sha256"], sha);
    // PEP 658/714: the advertised hash is the served metadata's.
    let meta = s.get(&format!("/repo/pypi/p/files/{}.metadata", w.0));
    assert_eq!(meta.status, 200);
    let meta_sha = artifactd_plugin_api_sha(&meta.body);
    assert_eq!(wf["core-metadata"]["sha256"], meta_sha);
    assert!(wf.get("dist-info-metadata").is_none(), "PEP 714: {wf}");
    assert!(String::from_utf8_lossy(&meta.body).contains("Name: Proto_Pkg"));

    // PEP 503 HTML for browsers and plain clients.
    let html = s.get("/repo/pypi/p/proto-pkg/");
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let text = html.text();
    assert!(
        text.contains(&format!("href=\"../files/{}#sha256={sha}\"", w.0)),
        "{text}"
    );
    assert!(
        text.contains("data-requires-python=\"&gt;=3.8,&lt;4\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("data-core-metadata=\"sha256={meta_sha}\"")),
        "{text}"
    );
    let v1html = s.get_with(
        "/repo/pypi/p/simple/proto-pkg/",
        &[("Accept", "application/vnd.pypi.simple.v1+html")],
    );
    assert_eq!(
        v1html.header("content-type"),
        Some("application/vnd.pypi.simple.v1+html")
    );
    assert!(
        v1html
            .text()
            .contains(&format!("href=\"../../files/{}", w.0))
    );
    assert_eq!(
        s.get_with("/repo/pypi/p/proto-pkg/", &[("Accept", "application/json")])
            .status,
        406
    );
    let root = s.get_with("/repo/pypi/p/", &json_accept).json();
    assert_eq!(root["projects"], serde_json::json!([{"name": "Proto_Pkg"}]));

    // Unknown: 404; non-normalized: 301 to the normal form.
    assert_eq!(s.get("/repo/pypi/p/nope/").status, 404);
    let moved = s.get("/repo/pypi/p/Proto.Pkg/");
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some(s.url("/repo/pypi/p/proto-pkg/").as_str())
    );
    assert_eq!(
        s.get("/repo/pypi/p/simple/Proto_Pkg").header("location"),
        Some(s.url("/repo/pypi/p/simple/proto-pkg/").as_str())
    );

    // Caching: ETag and 304 on pages; immutable files with Range and HEAD.
    let etag = r.header("etag").unwrap().to_owned();
    assert!(r.header("cache-control").unwrap().contains("max-age"));
    let again = s.get_with(
        "/repo/pypi/p/proto-pkg/",
        &[json_accept[0], ("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let file = s.get(&format!("/repo/pypi/p/files/{}", w.0));
    assert_eq!(file.body, w.1);
    assert_eq!(
        file.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let part = s.get_with(
        &format!("/repo/pypi/p/files/{}", w.0),
        &[("Range", "bytes=-22")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, w.1[w.1.len() - 22..]);
    let head = s.head(&format!("/repo/pypi/p/files/{}", w.0));
    assert_eq!(
        head.header("content-length"),
        Some(w.1.len().to_string().as_str())
    );

    // Pages are gzip-compressed for clients that accept it.
    for n in 0..20 {
        upload(&s, "p", &Dist::new("Proto_Pkg", &format!("2.{n}")).wheel());
    }
    let gz = s.get_with("/repo/pypi/p/proto-pkg/", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gz.header("vary").unwrap().contains("Accept-Encoding"));
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz.body[..]), &mut plain)
        .unwrap();
    assert!(plain.contains("Links for proto-pkg"));
}

fn artifactd_plugin_api_sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn yanks_show_in_both_formats_and_pip_skips_them() {
    let s = Server::start();
    let scratch = s.scratch("yank");
    let c = clients();
    upload(&s, "y", &Dist::new("yankee", "1.0").wheel());
    upload(&s, "y", &Dist::new("yankee", "2.0").wheel());
    let anon = s.post_raw_as(
        None,
        "/repo/pypi/y/-/yank",
        "application/json",
        br#"{"project": "yankee", "version": "2.0"}"#,
    );
    assert_eq!(anon.status, 401, "yanking needs a write token");
    let r = s.post_raw(
        "/repo/pypi/y/-/yank",
        "application/json",
        br#"{"project": "Yankee", "version": "2.0", "reason": "broken <build>"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let page = s
        .get_with(
            "/repo/pypi/y/yankee/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(page["files"][0]["yanked"], false);
    assert_eq!(page["files"][1]["yanked"], "broken <build>");
    assert!(
        s.get("/repo/pypi/y/yankee/")
            .text()
            .contains("data-yanked=\"broken &lt;build&gt;\"")
    );
    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c
        .pip(&scratch, &py)
        .args(["install"])
        .args(["-i", &s.url("/repo/pypi/y/"), "yankee"]));
    assert_eq!(
        python(&py, "import yankee; print(yankee.__version__)"),
        "1.0"
    );
    // Un-yank.
    let r = s.post_raw(
        "/repo/pypi/y/-/yank",
        "application/json",
        br#"{"project": "yankee", "version": "2.0", "yanked": false}"#,
    );
    assert_eq!(r.status, 200);
    let page = s
        .get_with(
            "/repo/pypi/y/yankee/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    assert_eq!(page["files"][1]["yanked"], false);
    let r = s.post_raw(
        "/repo/pypi/y/-/yank",
        "application/json",
        br#"{"project": "nope", "version": "1"}"#,
    );
    assert_eq!(r.status, 404);
    let r = s.post_raw("/repo/pypi/y/-/yank", "application/json", b"not json");
    assert_eq!(r.status, 400);
}

#[test]
fn bad_python_uploads_are_refused_with_the_rule() {
    let s = Server::start();
    let (wf, wb) = Dist::new("good", "1.0").wheel();
    let cases: Vec<(String, String, Vec<u8>, &str)> = vec![
        (
            "name=other".into(),
            wf.clone(),
            wb.clone(),
            "name parameter",
        ),
        (
            "version=1.1".into(),
            wf.clone(),
            wb.clone(),
            "version parameter",
        ),
        (
            String::new(),
            "good-1.0.exe".into(),
            wb.clone(),
            "accepted files",
        ),
        (
            String::new(),
            "good-1.0-py3-none.whl".into(),
            wb.clone(),
            "wheel is NAME",
        ),
        (
            String::new(),
            "bad-1.0-py3-none-any.whl".into(),
            wb.clone(),
            "does not belong",
        ),
        (
            String::new(),
            wf.clone(),
            b"PK\x03\x04 not really".to_vec(),
            "zip",
        ),
        (
            String::new(),
            "good-1.0.tar.gz".into(),
            b"\x1f\x8b garbage".to_vec(),
            "tar",
        ),
        (
            String::new(),
            "good-2.0-py3-none-any.whl".into(),
            wb.clone(),
            "version",
        ),
    ];
    for (params, filename, bytes, needle) in &cases {
        let r = s.addpkg(
            &format!("provider=pypi&reponame=bad&{params}"),
            filename,
            bytes,
        );
        assert_eq!(r.status, 400, "{filename} {params}: {}", r.text());
        assert!(
            r.error().contains(needle),
            "{filename}: {:?} should mention {needle:?}",
            r.error()
        );
    }
    assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    assert_eq!(s.get("/repo/pypi/bad/").status, 404);
}
