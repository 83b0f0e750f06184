//! Debian source packages: built by `dpkg-source -b`, uploaded with `rpcli upload X.dsc` and as
//! one `/addpkg` form, refused whole when a file is missing or differs, listed in `Sources`,
//! and read back by `apt-get source` and `dpkg-source -x`.

use std::path::Path;

use artifactd_tests::{Apt, Server, dpkg_deb, dpkg_source, run, sha256_hex, tool, try_run};

/// The files of one upload form, as (name, bytes).
type Form = Vec<(String, Vec<u8>)>;

/// The files of a source package: its `.dsc` first, then what it lists, as (name, bytes).
fn source_files(dsc: &Path) -> Form {
    let text = std::fs::read_to_string(dsc).expect("dsc");
    let dir = dsc.parent().expect("dir");
    let mut out = vec![(
        dsc.file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned(),
        text.clone().into_bytes(),
    )];
    let listed = text
        .split("Checksums-Sha256:\n")
        .nth(1)
        .expect("Checksums-Sha256");
    for line in listed.lines().take_while(|l| l.starts_with(' ')) {
        let name = line.split_whitespace().nth(2).expect("name");
        out.push((
            name.to_owned(),
            std::fs::read(dir.join(name)).expect("file"),
        ));
    }
    out
}

fn addpkg(s: &Server, files: &[(String, Vec<u8>)]) -> artifactd_tests::Resp {
    let parts: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    s.addpkg_files("provider=apt&reponame=src&dist=stable", &parts)
}

/// Signs `dsc` in place with a throw-away key (the way `debsign` does: a cleartext signature).
fn clearsign(work: &Path, dsc: &Path) {
    let home = work.join("gnupg");
    std::fs::create_dir_all(&home).expect("gnupg home");
    let gpg = |args: &[&str]| {
        let mut c = tool("gpg");
        c.env("GNUPGHOME", &home)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args);
        c
    };
    run(&mut gpg(&[
        "--quick-gen-key",
        "Maintainer <maint@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let signed = dsc.with_extension("dsc.asc");
    run(gpg(&["--clearsign", "--output"]).arg(&signed).arg(dsc));
    std::fs::rename(&signed, dsc).expect("signed dsc");
}

#[test]
fn source_packages_upload_whole_and_apt_get_source_reads_them() {
    tool("dpkg-source");
    let s = Server::start();
    let work = s.scratch("src");
    let hello = dpkg_source(&work, "hello", "1.0-1");
    clearsign(&work, &hello);
    let native = dpkg_source(&work.join("native"), "tiny", "2.0");
    let files = source_files(&hello);
    assert_eq!(files.len(), 3, "dsc, orig and debian tarballs");

    // Refused whole: a file missing, a file with other bytes, a file the .dsc does not list,
    // two source packages, a cut signature. Nothing is stored and no dist appears.
    let mut other_bytes = files.clone();
    let last = other_bytes.len() - 1;
    let flip = other_bytes[last].1.len() / 2;
    other_bytes[last].1[flip] ^= 1;
    let mut extra = files.clone();
    extra.push(("hello_1.0-1.extra.txt".to_owned(), b"x".to_vec()));
    let mut two = files.clone();
    two.extend(source_files(&native));
    let mut cut = files.clone();
    let cut_text = String::from_utf8(cut[0].1.clone()).expect("text");
    cut[0].1 = cut_text
        .split("-----END PGP SIGNATURE-----")
        .next()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "missing",
            files[..2].to_vec(),
            "which the upload does not carry",
        ),
        (
            "other bytes",
            other_bytes,
            "does not match the size and checksums",
        ),
        ("extra", extra, "which the .dsc does not list"),
        ("two", two, "one .dsc and the files it lists"),
        ("cut signature", cut, "no complete signature"),
    ];
    for (what, form, needle) in cases {
        let r = addpkg(&s, &form);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert!(r.error().contains(needle), "{what}: {}", r.error());
    }
    assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    assert_eq!(s.get("/repo/apt/src/dists/stable/InRelease").status, 404);

    // rpcli sends the files the .dsc lists along with it.
    let out = run(s
        .rpcli()
        .args([
            "upload",
            "-y",
            "apt",
            "-r",
            "src",
            "-a",
            "dist=stable",
            "-f",
        ])
        .arg(&hello));
    assert!(out.contains("hello 1.0-1 hello_1.0-1.dsc stored"), "{out}");
    // And /addpkg takes the same as one form; again is "already there".
    let r = addpkg(&s, &source_files(&native));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["files"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text()
    );
    let r = addpkg(&s, &files);
    assert_eq!(r.status, 200, "{}", r.text());
    // The binary built from it sits in the same pool folder.
    let (deb, bytes) = dpkg_deb(
        &s.scratch("debs"),
        "hello",
        "1.0-1",
        "amd64",
        "Source: hello\n",
    );
    let r = s.addpkg("provider=apt&reponame=src&dist=stable", &deb, &bytes);
    assert_eq!(r.status, 201, "{}", r.text());

    // The signed .dsc is served as it came, signature included.
    let dsc = s.get("/repo/apt/src/pool/main/h/hello/hello_1.0-1.dsc");
    assert_eq!(dsc.status, 200);
    assert_eq!(dsc.body, files[0].1, "byte for byte");
    assert!(dsc.text().contains("-----BEGIN PGP SIGNATURE-----"));
    assert!(
        dsc.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let release = s.get("/repo/apt/src/dists/stable/Release").text();
    assert!(release.contains(" main/source/Sources.gz\n"), "{release}");
    assert!(release.contains(" main/source/Sources\n"), "{release}");
    let sources = s
        .get("/repo/apt/src/dists/stable/main/source/Sources")
        .text();
    // Sources.xz, as Release lists it and by its hash, inflates to the same text.
    let listed = |name: &str| {
        release
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name} not in Release: {release}"))
            .to_owned()
    };
    let xz = s.get("/repo/apt/src/dists/stable/main/source/Sources.xz");
    assert_eq!(xz.status, 200);
    assert_eq!(sha256_hex(&xz.body), listed("main/source/Sources.xz"));
    let by_hash = s.get(&format!(
        "/repo/apt/src/dists/stable/main/source/by-hash/SHA256/{}",
        listed("main/source/Sources.xz")
    ));
    assert_eq!(by_hash.body, xz.body);
    let mut inflated = String::new();
    std::io::Read::read_to_string(
        &mut liblzma::read::XzDecoder::new(&xz.body[..]),
        &mut inflated,
    )
    .expect("Sources.xz is xz");
    assert_eq!(inflated, sources);
    assert_eq!(
        sha256_hex(inflated.as_bytes()),
        listed("main/source/Sources")
    );
    assert!(sources.contains("Package: hello\n"), "{sources}");
    assert!(
        sources.contains("Directory: pool/main/h/hello\n"),
        "{sources}"
    );
    assert!(sources.contains("Package: tiny\n"), "{sources}");
    assert_eq!(
        sources.matches("\n\n").count(),
        2,
        "one stanza each: {sources}"
    );
    let packages = s
        .get("/repo/apt/src/dists/stable/main/binary-amd64/Packages")
        .text();
    assert!(packages.contains("Package: hello\n"), "{packages}");
    assert!(
        !packages.contains(".dsc"),
        "no source file in Packages: {packages}"
    );

    // apt-get source downloads and unpacks it; dpkg-source -x verifies what apt fetched.
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("src.gpg");
    std::fs::write(&key, s.get("/repo/apt/src/pubkey.gpg").body).expect("key");
    let opts = format!("signed-by={}", key.display());
    apt.add_source("src", &opts, &s.url("/repo/apt/src/"), "stable", "main");
    apt.add_source_src("src", &opts, &s.url("/repo/apt/src/"), "stable", "main");
    apt.update();
    let get = s.scratch("apt-get-source");
    let out = run(apt.cmd().current_dir(&get).args(["source", "hello"]));
    assert!(
        get.join("hello-1.0/debian/changelog").is_file() && get.join("hello-1.0/README").is_file(),
        "apt-get source unpacked nothing:\n{out}"
    );
    let fetched = s.scratch("apt-get-download");
    run(apt
        .cmd()
        .current_dir(&fetched)
        .args(["source", "--download-only", "tiny"]));
    let (ok, out) =
        try_run(
            tool("dpkg-source")
                .current_dir(&fetched)
                .args(["-x", "tiny_2.0.dsc", "unpacked"]),
        );
    assert!(ok && fetched.join("unpacked/README").is_file(), "{out}");

    // The package page shows the source with the binaries built from it.
    let page = s.get("/ui/apt/src/hello/").text();
    for needle in [
        "Binary packages",
        "main &#x2f; source",
        "3.0 (quilt)",
        "hello_1.0-1.dsc",
    ] {
        assert!(
            page.contains(needle),
            "{needle:?} missing from the package page: {page}"
        );
    }
}
