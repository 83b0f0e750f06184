//! APT: uploads, reads, clients and publishing against reprepro, aptly and nginx.

use super::*;

pub(crate) fn gpg_key(scratch: &Path) -> (PathBuf, String) {
    let home = scratch.join("gnupg");
    if !home.exists() {
        std::fs::create_dir_all(&home).expect("gnupg home");
        sh(Command::new("chmod").arg("700").arg(&home));
        sh(artifactd_tests::tool("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "bench@example.invalid",
                "ed25519",
                "sign",
                "never",
            ]));
    }
    let fpr = sh(artifactd_tests::tool("gpg")
        .arg("--homedir")
        .arg(&home)
        .args(["--batch", "--with-colons", "--list-secret-keys"]))
    .lines()
    .find_map(|l| {
        l.strip_prefix("fpr:")
            .map(|r| r.trim_matches(':').to_owned())
    })
    .expect("fingerprint");
    (home, fpr)
}

/// Creates a reprepro repo at `rr` (dist `stable`, `main`, amd64, signed by `fpr`) and adds
/// `debs` to it, 500 per call; the seconds that took.
pub(crate) fn reprepro_fill(rr: &Path, gnupg: &Path, fpr: &str, debs: &[PathBuf]) -> f64 {
    std::fs::create_dir_all(rr.join("conf")).expect("reprepro");
    std::fs::write(rr.join("conf/distributions"), format!("Codename: stable\nSuite: stable\nComponents: main\nArchitectures: amd64\nSignWith: {fpr}\n")).expect("reprepro conf");
    timed(|| {
        for chunk in debs.chunks(500) {
            sh(Command::new("reprepro")
                .arg("-b")
                .arg(rr)
                .env("GNUPGHOME", gnupg)
                .args(["-S", "misc", "-P", "optional", "includedeb", "stable"])
                .args(chunk));
        }
    })
}

/// aptly with its root at `root` (its config next to it), signing with the keys of `gnupg`.
pub(crate) fn aptly_at(root: &Path, gnupg: &Path) -> impl Fn(&[&str]) -> String + use<> {
    let conf = root.with_extension("conf");
    std::fs::write(
        &conf,
        format!(
            "{{\"rootDir\": \"{}\", \"gpgProvider\": \"gpg\", \"architectures\": [\"amd64\"]}}",
            root.display()
        ),
    )
    .expect("aptly conf");
    let gnupg = gnupg.to_path_buf();
    move |args: &[&str]| {
        sh(Command::new("aptly")
            .arg(format!("-config={}", conf.display()))
            .args(args)
            .env("GNUPGHOME", &gnupg))
    }
}

/// Creates aptly repo `name` (dist `stable`, `main`), adds the debs of `dir` and publishes it
/// signed by `fpr`; the seconds that took.
pub(crate) fn aptly_fill(
    aptly: &dyn Fn(&[&str]) -> String,
    name: &str,
    dir: &Path,
    fpr: &str,
) -> f64 {
    timed(|| {
        aptly(&[
            "repo",
            "create",
            "-distribution=stable",
            "-component=main",
            name,
        ]);
        aptly(&["repo", "add", name, &dir.display().to_string()]);
        aptly(&["publish", "repo", &format!("-gpg-key={fpr}"), name]);
    })
}

pub(crate) fn apt(rep: &mut Report, cfg: &Config, n: usize, data: &Data, scratch: &Path) {
    let debs_dir = data.dir.join("debs");
    let s = Server::start_with(Options::default());
    upload_both(
        rep,
        &s,
        "debs",
        "provider=apt&reponame=REPO&dist=stable",
        &debs_dir,
        &data.debs,
        n,
    );

    // reprepro and aptly on the same debs, signed with a generated key, served by nginx.
    let (gnupg, fpr) = gpg_key(scratch);
    let pubkey = scratch.join("bench-peers.asc");
    std::fs::write(
        &pubkey,
        sh(artifactd_tests::tool("gpg")
            .arg("--homedir")
            .arg(&gnupg)
            .args(["--batch", "--armor", "--export", &fpr])),
    )
    .expect("pubkey");
    let rr = scratch.join(format!("reprepro-{n}"));
    let debs: Vec<PathBuf> = data.debs.iter().map(|f| debs_dir.join(f)).collect();
    let rr_secs = reprepro_fill(&rr, &gnupg, &fpr, &debs);
    rep.add(
        "upload",
        "N debs, one import",
        n,
        "reprepro",
        rr_secs,
        "s",
        String::new(),
    );
    let aptly_root = scratch.join(format!("aptly-{n}"));
    let aptly = aptly_at(&aptly_root, &gnupg);
    let aptly_secs = aptly_fill(&aptly, "bench", &debs_dir, &fpr);
    rep.add(
        "upload",
        "N debs, one import",
        n,
        "aptly",
        aptly_secs,
        "s",
        String::new(),
    );
    let (_rr_nginx, rr_url) = nginx(&rr, scratch);
    let (_ap_nginx, ap_url) = nginx(&aptly_root.join("public"), scratch);

    // Serving the indexes.
    for (what, ours, static_path) in [
        (
            "Packages.gz",
            "/repo/apt/seq/dists/stable/main/binary-amd64/Packages.gz",
            "/dists/stable/main/binary-amd64/Packages.gz",
        ),
        (
            "InRelease",
            "/repo/apt/seq/dists/stable/InRelease",
            "/dists/stable/InRelease",
        ),
    ] {
        let (rps, p99, bad) = wrk(&s.url(ours), cfg.secs, &[]);
        rep.add(
            "read",
            what,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        let (rps, p99, bad) = wrk(&format!("{rr_url}{static_path}"), cfg.secs, &[]);
        rep.add(
            "read",
            what,
            n,
            "nginx",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx (reprepro's tree)"),
        );
    }

    // Add one package to the published repo of N and have apt-get update see it.
    let key_ours = scratch.join(format!("artifactd-{n}.asc"));
    std::fs::write(&key_ours, s.get("/repo/apt/seq/pubkey").body).expect("key");
    let apt_ours = apt_root(
        &scratch.join(format!("apt-ours-{n}")),
        &s.url("/repo/apt/seq"),
        "stable",
        &key_ours,
    );
    let apt_rr = apt_root(
        &scratch.join(format!("apt-rr-{n}")),
        &rr_url,
        "stable",
        &pubkey,
    );
    let apt_ap = apt_root(
        &scratch.join(format!("apt-ap-{n}")),
        &ap_url,
        "stable",
        &pubkey,
    );
    // Cold updates first (the client-time measurement, median of 3 with the lists emptied),
    // then the publish-one runs.
    let cold = |apt: &Apt| {
        median_of_3(|_| {
            let lists = apt.root().join("var/lib/apt/lists");
            for e in std::fs::read_dir(&lists).into_iter().flatten().flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            timed(|| {
                apt.update();
            })
        })
    };
    let cold_ours = cold(&apt_ours);
    let cold_rr = cold(&apt_rr);
    apt_ap.update();
    rep.add(
        "client",
        "apt-get update (cold)",
        n,
        "artifactd",
        cold_ours,
        "s",
        String::new(),
    );
    rep.add(
        "client",
        "apt-get update (cold)",
        n,
        "nginx",
        cold_rr,
        "s",
        "reprepro's tree".into(),
    );
    // Each tool adds the same 5 packages one at a time; the median counts.
    let adds: Vec<(String, Vec<u8>, PathBuf)> = (0..PUBLISH_ROUNDS)
        .map(|i| {
            let (f, b) = Deb::new(&format!("bench-extra{i}"), "1.0", "amd64").build();
            let path = scratch.join(&f);
            std::fs::write(&path, &b).expect("extra deb");
            (f, b, path)
        })
        .collect();
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let ours = median(
        adds.iter()
            .map(|(f, b, _)| {
                timed(|| {
                    let r = s.addpkg("provider=apt&reponame=seq&dist=stable", f, b);
                    assert_eq!(r.status, 201);
                })
            })
            .collect(),
    );
    let ours_update = timed(|| {
        apt_ours.update();
    });
    let last = format!("bench-extra{}", PUBLISH_ROUNDS - 1);
    assert!(
        apt_ours.policy(&last).contains("1.0"),
        "apt-get sees the new package"
    );
    let rounds = format!("median of {PUBLISH_ROUNDS}");
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "artifactd",
        ours * 1000.0,
        "ms",
        format!("{rounds}; then apt-get update {ours_update:.2} s"),
    );
    let theirs = median(
        adds.iter()
            .map(|(_, _, path)| {
                timed(|| {
                    sh(Command::new("reprepro")
                        .arg("-b")
                        .arg(&rr)
                        .env("GNUPGHOME", &gnupg)
                        .args(["-S", "misc", "-P", "optional", "includedeb", "stable"])
                        .arg(path));
                })
            })
            .collect(),
    );
    apt_rr.update();
    assert!(apt_rr.policy(&last).contains("1.0"));
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "reprepro",
        theirs * 1000.0,
        "ms",
        rounds.clone(),
    );
    let theirs = median(
        adds.iter()
            .map(|(_, _, path)| {
                timed(|| {
                    aptly(&["repo", "add", "bench", &path.display().to_string()]);
                    aptly(&["publish", "update", &format!("-gpg-key={fpr}"), "stable"]);
                })
            })
            .collect(),
    );
    apt_ap.update();
    assert!(apt_ap.policy(&last).contains("1.0"));
    rep.add(
        "publish",
        "add 1 package and republish",
        n,
        "aptly",
        theirs * 1000.0,
        "ms",
        rounds,
    );
    lifecycle(rep, &s, n, data, &aptly);
}

/// Snapshot of the dist of N and promotion of a tenth of its packages (1,000 of 10,000) to
/// another dist: catalog changes and one publish each, no package bytes stored again. aptly's
/// snapshot of its repo is the peer.
fn lifecycle(
    rep: &mut Report,
    s: &Server,
    n: usize,
    data: &Data,
    aptly: &dyn Fn(&[&str]) -> String,
) {
    let content = |s: &Server| -> u64 {
        s.stored_files()
            .iter()
            .filter(|(p, _)| p.starts_with("content"))
            .map(|(_, size)| size)
            .sum()
    };
    let before = content(s);
    let call = |path: &str, body: serde_json::Value| {
        let r = s.json_as(
            "POST",
            Some(&s.token),
            &format!("/repo/apt/seq/{path}"),
            &body,
        );
        assert!(r.status < 300, "{path}: {}", r.text());
    };
    let snap = timed(|| {
        call(
            "snapshots",
            serde_json::json!({"dist": "stable", "name": "bench"}),
        )
    });
    let picks: Vec<String> = data
        .debs
        .iter()
        .take((n / 10).max(1))
        .filter_map(|f| f.split('_').next().map(str::to_owned))
        .collect();
    let promote = timed(|| {
        call(
            "promote",
            serde_json::json!({"from": "stable", "to": "prod", "packages": picks}),
        );
    });
    assert_eq!(
        s.get("/repo/apt/seq/snapshots/bench/dists/stable/InRelease")
            .status,
        200
    );
    let promoted = s
        .get("/repo/apt/seq/dists/prod/main/binary-amd64/Packages")
        .text();
    assert_eq!(promoted.matches("Package: ").count(), picks.len());
    let stored_again = content(s) - before;
    rep.add(
        "lifecycle",
        "snapshot a dist",
        n,
        "artifactd",
        snap * 1000.0,
        "ms",
        format!("{stored_again} package bytes stored again"),
    );
    rep.add(
        "lifecycle",
        &format!("promote {} packages", picks.len()),
        n,
        "artifactd",
        promote * 1000.0,
        "ms",
        "to a new dist, published".into(),
    );
    rep.add(
        "lifecycle",
        "no package bytes stored twice",
        n,
        "artifactd",
        stored_again as f64,
        "B",
        String::new(),
    );
    let theirs = timed(|| {
        aptly(&["snapshot", "create", "bench-snap", "from", "repo", "bench"]);
    });
    rep.add(
        "lifecycle",
        "snapshot a dist",
        n,
        "aptly",
        theirs * 1000.0,
        "ms",
        "aptly snapshot create (unpublished)".into(),
    );
}
