//! Taking over existing repos: a pypiserver packages folder filled by twine through the real
//! pypiserver, a reprepro repo (with its signing key, so apt clients keep their `signed-by`
//! key) and an aptly publication read over HTTP; pip and apt-get install from artifactd after.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Server, clients, dpkg_deb, run, tool};

/// Kills the process on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for(url: &str) {
    for _ in 0..100 {
        if ureq::get(url).call().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered");
}

/// A GnuPG home with a new signing key; its fingerprint.
fn gpg_key(home: &Path) -> String {
    std::fs::create_dir_all(home).expect("gnupg home");
    run(&mut gpg(
        home,
        &[
            "--quick-gen-key",
            "old-archive@example.invalid",
            "rsa3072",
            "sign",
            "never",
        ],
    ));
    let colons = run(&mut gpg(home, &["--with-colons", "--list-secret-keys"]));
    colons
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_owned())
        })
        .expect("fingerprint")
}

fn gpg(home: &Path, args: &[&str]) -> Command {
    let mut c = tool("gpg");
    c.env("GNUPGHOME", home)
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args);
    c
}

#[test]
fn a_pypiserver_folder_is_taken_over_and_pip_installs_from_it() {
    let s = Server::start();
    let c = clients();
    let scratch = s.scratch("pypiserver");
    let packages = scratch.join("packages");
    std::fs::create_dir_all(&packages).expect("packages folder");
    let port = free_port();
    let _server = Proc(
        c.cmd("pypi-server", &scratch)
            .args(["run", "-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["--disable-fallback", "-a", ".", "-P", "."])
            .arg(&packages)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pypi-server"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{url}/simple/"));
    let mut files = Vec::new();
    for d in [
        Dist::new("old-dep", "1.0").wheel(),
        Dist::new("old-app", "1.0").requires("old-dep").wheel(),
        Dist::new("old-app", "0.9").sdist(),
    ] {
        let f = scratch.join(&d.0);
        std::fs::write(&f, &d.1).expect("dist");
        files.push(f.display().to_string());
    }
    run(&mut c.twine_upload(&scratch, &format!("{url}/"), "x", &[], &files));
    assert_eq!(std::fs::read_dir(&packages).expect("folder").count(), 3);
    // Something pypiserver keeps that is no distribution is left alone.
    std::fs::write(packages.join("README.txt"), b"notes").expect("notes");

    let folder = packages.display().to_string();
    let import = || s.task(&["import", "pypi", "team", "--from-dir", &folder]);
    let (code, out) = import();
    assert_eq!(
        (code, out.trim()),
        (0, "imported 3 file(s), 0 already there, 0 refused")
    );
    let (code, out) = import();
    assert_eq!(
        (code, out.trim()),
        (0, "imported 0 file(s), 3 already there, 0 refused")
    );
    // A broken file is named, the rest goes in; the exit code says so.
    std::fs::write(packages.join("broken-1.0-py3-none-any.whl"), b"not a zip").expect("broken");
    let (code, out) = import();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused broken-1.0-py3-none-any.whl: "),
        "{out}"
    );
    let (code, out) = s.task(&["import", "pypi", "team"]);
    assert!(
        code == 2 && out.contains("import pypi REPO --from-dir DIR"),
        "{out}"
    );

    let py = c.fresh_venv(&scratch.join("venv"), &scratch);
    run(c.pip(&scratch, &py).args([
        "install",
        "-i",
        &s.url("/repo/pypi/team/simple/"),
        "old-app",
    ]));
    let out = run(Command::new(&py).args([
        "-c",
        "import importlib.metadata as m; print(m.version('old-app'), m.version('old-dep'))",
    ]));
    assert_eq!(out.trim(), "1.0 1.0");
}

#[test]
fn reprepro_and_aptly_repos_are_taken_over_and_apt_keeps_its_key() {
    let s = Server::start();
    let work = s.scratch("archives");
    let home = work.join("gnupg");
    let fpr = gpg_key(&home);
    let debs: Vec<(String, Vec<u8>)> = ["rr-tool", "rr-lib"]
        .iter()
        .map(|p| dpkg_deb(&work.join("debs"), p, "1.0", "amd64", ""))
        .collect();

    // reprepro, signed with the old archive's key.
    let rr = work.join("reprepro");
    std::fs::create_dir_all(rr.join("conf")).expect("reprepro conf");
    std::fs::write(
        rr.join("conf/distributions"),
        format!(
            "Codename: stable\nSuite: stable\nComponents: main contrib\nArchitectures: amd64\nSignWith: {fpr}\n"
        ),
    )
    .expect("distributions");
    for (i, (f, _)) in debs.iter().enumerate() {
        let comp = if i == 0 { "main" } else { "contrib" };
        run(tool("reprepro")
            .arg("-b")
            .arg(&rr)
            .env("GNUPGHOME", &home)
            .args([
                "-C",
                comp,
                "-S",
                "misc",
                "-P",
                "optional",
                "includedeb",
                "stable",
            ])
            .arg(work.join("debs").join(f)));
    }
    let secret = work.join("old-key.asc");
    std::fs::write(
        &secret,
        run(&mut gpg(&home, &["--armor", "--export-secret-keys", &fpr])),
    )
    .expect("secret key");
    let public = work.join("old-key.asc.pub");
    std::fs::write(
        &public,
        run(&mut gpg(&home, &["--armor", "--export", &fpr])),
    )
    .expect("key");

    let out = s.task_ok(&[
        "import",
        "apt",
        "moved",
        "--from-apt",
        &rr.display().to_string(),
        "--dist",
        "stable",
        "--key",
        &secret.display().to_string(),
    ]);
    assert_eq!(out.trim(), "imported 2 file(s), 0 already there, 0 refused");
    let keys = s.get("/repo/apt/moved/pubkey").text();
    let listed = s.get_as(Some(&s.token), "/api/v1/repos/apt/moved/keys");
    assert!(
        listed.text().contains(&fpr) && !keys.is_empty(),
        "the old key signs: {}",
        listed.text()
    );
    assert_eq!(listed.json()["keys"].as_array().map(Vec::len), Some(1));

    // apt with the old archive's key, unchanged, updates and installs from artifactd.
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("old.asc");
    std::fs::copy(&public, &key).expect("key");
    apt.add_source(
        "moved",
        &format!("signed-by={}", key.display()),
        &s.url("/repo/apt/moved"),
        "stable",
        "main contrib",
    );
    apt.update();
    let archives = apt.download(&["rr-tool", "rr-lib"]);
    for (f, b) in &debs {
        assert!(
            std::fs::read(archives.join(f)).expect("downloaded") == *b,
            "{f}"
        );
    }

    // aptly's publication, read over HTTP.
    let conf = work.join("aptly.conf");
    let root = work.join("aptly");
    std::fs::write(
        &conf,
        format!(
            "{{\"rootDir\": \"{}\", \"gpgProvider\": \"gpg\", \"architectures\": [\"amd64\"]}}",
            root.display()
        ),
    )
    .expect("aptly conf");
    let aptly = |args: &[&str]| {
        run(tool("aptly")
            .arg(format!("-config={}", conf.display()))
            .args(args)
            .env("GNUPGHOME", &home))
    };
    aptly(&[
        "repo",
        "create",
        "-distribution=bookworm",
        "-component=main",
        "team",
    ]);
    aptly(&[
        "repo",
        "add",
        "team",
        &work.join("debs").display().to_string(),
    ]);
    aptly(&["publish", "repo", &format!("-gpg-key={fpr}"), "team"]);
    let port = free_port();
    let _http = Proc(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(root.join("public"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server"),
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_for(&format!("{url}/dists/bookworm/Release"));
    let out = s.task_ok(&[
        "import",
        "apt",
        "moved",
        "--from-apt",
        &url,
        "--dist",
        "bookworm",
    ]);
    assert_eq!(out.trim(), "imported 2 file(s), 0 already there, 0 refused");
    let packages = s
        .get("/repo/apt/moved/dists/bookworm/main/binary-amd64/Packages")
        .text();
    assert!(
        packages.contains("Package: rr-tool\n") && packages.contains("Package: rr-lib\n"),
        "{packages}"
    );
    let (code, out) = s.task(&[
        "import",
        "apt",
        "moved",
        "--from-apt",
        &url,
        "--dist",
        "nope",
    ]);
    assert!(
        code == 2 && out.contains("has no dists/nope/Release"),
        "{out}"
    );
}

#[test]
fn a_folder_of_debs_is_imported_into_a_dist_and_component() {
    let s = Server::start();
    let work = s.scratch("debs");
    let folder = work.join("incoming");
    std::fs::create_dir_all(folder.join("sub")).expect("folder");
    for (i, p) in ["dir-tool", "dir-lib"].iter().enumerate() {
        let (f, b) = dpkg_deb(&work.join("build"), p, "1.0", "amd64", "");
        let at = if i == 0 {
            folder.join(&f)
        } else {
            folder.join("sub").join(&f)
        };
        std::fs::write(at, b).expect("deb");
    }
    std::fs::write(folder.join("broken_1.0_amd64.deb"), b"not an ar archive").expect("broken");
    std::fs::write(folder.join("notes.txt"), b"left alone").expect("notes");
    let dir = folder.display().to_string();
    let import = || {
        s.task(&[
            "import",
            "apt",
            "local",
            "--from-dir",
            &dir,
            "--dist",
            "stable",
            "--component",
            "extra",
        ])
    };
    let (code, out) = import();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused broken_1.0_amd64.deb: "), "{out}");
    assert!(
        out.trim_end()
            .ends_with("imported 2 file(s), 0 already there, 1 refused"),
        "{out}"
    );
    let (_, out) = import();
    assert!(
        out.trim_end()
            .ends_with("imported 0 file(s), 2 already there, 1 refused"),
        "{out}"
    );
    let release = s.get("/repo/apt/local/dists/stable/Release").text();
    assert!(release.contains("Components: extra\n"), "{release}");
    let key = work.join("key.asc");
    std::fs::write(&key, s.get("/repo/apt/local/pubkey").body).expect("key");
    let apt = Apt::new(&work.join("apt"), &["amd64"]);
    let dest = apt.key_path("local.asc");
    std::fs::copy(&key, &dest).expect("key");
    apt.add_source(
        "local",
        &format!("signed-by={}", dest.display()),
        &s.url("/repo/apt/local"),
        "stable",
        "extra",
    );
    apt.update();
    assert!(apt.policy("dir-lib").contains("1.0"));
    let archives = apt.download(&["dir-tool"]);
    assert!(archives.join("dir-tool_1.0_amd64.deb").exists());
}
