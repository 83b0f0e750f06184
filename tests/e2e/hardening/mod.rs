//! Hostile and malformed uploads: a corpus of bad inputs generated here, each with the rule it
//! breaks, sent through every upload path (`/addpkg`, the twine protocol for PyPI files, and
//! `rpcli`). Each must get its 4xx and sentence, and leave the catalog, the blob store, every
//! index and the temporary folder exactly as they were. Also: slow clients are cut off.

use std::process::Command;

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Options, Server, bin, fake_gzip, try_run};

/// One bad upload.
struct Case {
    /// The rule it breaks.
    rule: &'static str,
    /// `provider=…&reponame=…&…` for `/addpkg`.
    query: String,
    filename: String,
    bytes: Vec<u8>,
    status: u16,
    /// A piece of the expected sentence.
    says: &'static str,
}

fn case(
    rule: &'static str,
    query: &str,
    file: (String, Vec<u8>),
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        rule,
        query: query.to_owned(),
        filename: file.0,
        bytes: file.1,
        status,
        says,
    }
}

const PYPI: &str = "provider=pypi&reponame=hard";
const APT: &str = "provider=apt&reponame=hard&dist=stable";
const TAR: &str = "provider=tar&reponame=hard";

// Builders of bad archives and packages.
mod builders;
// Bad Python distributions.
mod pypi_cases;
// Bad Debian packages and generic upload requests.
mod apt_cases;
// Slow and hostile HTTP clients.
mod slow;
// A minute of load.
mod load;

fn corpus() -> Vec<Case> {
    let mut cases = pypi_cases::cases();
    cases.extend(apt_cases::cases());
    cases
}

/// Everything a refused upload must leave alone.
fn snapshot(s: &Server) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "blobs".to_owned(),
        format!("{:?}", s.stored_files()).into_bytes(),
    )];
    let tmp: Vec<String> = std::fs::read_dir(s.data_dir().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.push(("tmp".to_owned(), format!("{tmp:?}").into_bytes()));
    for path in [
        "/api/v1/repos",
        "/api/v1/repos/pypi/hard/packages",
        "/api/v1/repos/apt/hard/packages",
        "/api/v1/repos/tar/hard/packages",
        "/api/v1/audit",
        "/repo/pypi/hard/",
        "/repo/pypi/hard/good-pkg/",
        "/repo/apt/hard/dists/stable/InRelease",
        "/repo/apt/hard/dists/stable/main/binary-amd64/Packages",
        "/repo/tar/hard/index.json",
    ] {
        out.push((path.to_owned(), s.get_as(Some(&s.token), path).body));
    }
    let json = s.get_with(
        "/repo/pypi/hard/good-pkg/",
        &[("Accept", "application/vnd.pypi.simple.v1+json")],
    );
    out.push(("pypi json".to_owned(), json.body));
    out
}

fn assert_unchanged(s: &Server, before: &[(String, Vec<u8>)], what: &str) {
    for ((k, a), (_, b)) in before.iter().zip(snapshot(s)) {
        assert!(
            *a == b,
            "{what} changed {k}:\n{}\n---\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(&b)
        );
    }
}

/// The twine protocol's form for a PyPI file (the name and version it claims are the file's).
fn twine_fields(c: &Case) -> Vec<(&'static str, String)> {
    let stem = c.filename.trim_end_matches(".tar.gz");
    let mut parts = stem.splitn(3, '-');
    let name = parts.next().unwrap_or_default().to_owned();
    let version = parts.next().unwrap_or_default().to_owned();
    let filetype = if c.filename.ends_with(".whl") {
        "bdist_wheel"
    } else {
        "sdist"
    };
    let mut f = vec![
        (":action", "file_upload".to_owned()),
        ("protocol_version", "1".to_owned()),
        ("metadata_version", "2.1".to_owned()),
        ("filetype", filetype.to_owned()),
        ("pyversion", "py3".to_owned()),
    ];
    for (k, from_query, from_file) in [("name", "name=", name), ("version", "version=", version)] {
        let v = c
            .query
            .split('&')
            .find_map(|p| p.strip_prefix(from_query))
            .map_or(from_file, str::to_owned);
        f.push((k, v));
    }
    f
}

#[test]
fn every_bad_upload_is_refused_on_every_path_and_changes_nothing() {
    let s = Server::start_with(Options::with_tar().arg("--max-upload-bytes").arg("2000000"));
    // Repos with content, so that "unchanged" covers real indexes.
    let (f, b) = Dist::new("good-pkg", "1.0").wheel();
    assert_eq!(s.addpkg(PYPI, &f, &b).status, 201);
    let (f, b) = Deb::new("good-tool", "1.0", "amd64").build();
    assert_eq!(s.addpkg(APT, &f, &b).status, 201);
    assert_eq!(
        s.addpkg(TAR, "good-1.0.tgz", &fake_gzip(b"good")).status,
        201
    );
    let before = snapshot(&s);
    let dir = s.scratch("corpus");
    let cases = corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut checked = 0;
    for (i, c) in cases.iter().enumerate() {
        let label = format!(
            "case {i} ({}): {}",
            c.rule,
            c.filename.chars().take(60).collect::<String>()
        );
        // /addpkg
        let r = s.addpkg(&c.query, &c.filename, &c.bytes);
        assert_eq!(r.status, c.status, "{label} via /addpkg: {}", r.text());
        assert!(
            r.error().contains(c.says),
            "{label} via /addpkg says {:?}, not {:?}",
            r.error(),
            c.says
        );
        assert!(!r.error().contains('\n'), "{label}: one sentence");
        assert_unchanged(&s, &before, &label);
        checked += 1;
        // The twine protocol, for PyPI files.
        if c.query.starts_with("provider=pypi&reponame=hard") {
            let fields = twine_fields(c);
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = s.post_multipart(
                "/repo/pypi/hard/legacy/",
                &fields,
                "content",
                &c.filename,
                &c.bytes,
            );
            assert_eq!(r.status, c.status, "{label} via twine: {}", r.text());
            assert!(
                r.error().contains(c.says),
                "{label} via twine says {:?}",
                r.error()
            );
            assert_unchanged(&s, &before, &label);
            checked += 1;
        }
        // rpcli, for files it can send (its file name must be a valid local file name).
        if !c.filename.contains(['/', '\u{7}']) && c.filename.len() < 200 {
            let path = dir.join(&c.filename);
            std::fs::write(&path, &c.bytes).expect("write case");
            let mut args: Vec<String> = Vec::new();
            for kv in c.query.split('&') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                let v = v.replace("%C3%A9", "é");
                match k {
                    "provider" => args.extend(["-y".into(), v]),
                    "reponame" => args.extend(["-r".into(), v]),
                    "name" => args.extend(["-p".into(), v]),
                    "version" => args.extend(["-i".into(), v]),
                    _ => args.extend(["-a".into(), format!("{k}={v}")]),
                }
            }
            let (ok, out) = try_run(
                Command::new(bin("rpcli"))
                    .arg("-s")
                    .arg(s.url(""))
                    .env("ARTIFACTD_TOKEN", &s.token)
                    .arg("upload")
                    .args(&args)
                    .arg("-f")
                    .arg(&path),
            );
            let _ = std::fs::remove_file(&path);
            assert!(!ok, "{label} via rpcli succeeded: {out}");
            if out.contains(&format!(": {} ", c.status)) {
                assert!(out.contains(c.says), "{label} via rpcli: {out}");
                checked += 1;
            } else {
                // rpcli refuses some inputs itself before sending (e.g. an invalid repo name is
                // still sent; an unknown provider is not); it must say why in one line.
                assert_eq!(out.trim().lines().count(), 1, "{label} via rpcli: {out}");
            }
            assert_unchanged(&s, &before, &label);
        }
    }
    eprintln!("{} bad inputs, {checked} refusals checked", cases.len());
    assert!(!s.log().contains("ERROR"), "{}", s.log());
    assert!(!s.log().contains("panicked"), "{}", s.log());
}
