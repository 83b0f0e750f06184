//! Scale (`--scale`): a Debian-sized dist and a PyPI-sized index, generated here and imported in
//! bulk (`artifactd import … --from-dir`, one publish at the end), then what each operation
//! costs at that size: publishing one package, `apt-get update`, page reads against nginx
//! serving the same files, `uv pip install`, memory, and reads under concurrent uploads.

use super::*;

/// Sizes and durations of a scale run.
pub(crate) struct Scale {
    pub(crate) apt: usize,
    pub(crate) pypi: usize,
    pub(crate) secs: u64,
    pub(crate) mixed_secs: u64,
}

/// Writes `n` files made by `make(i)` into `dir` on two threads; their names, in order.
fn generate_files(
    n: usize,
    dir: &Path,
    make: impl Fn(usize) -> (String, Vec<u8>) + Sync,
) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("data dir");
    let threads = 2;
    let make = &make;
    let mut parts: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let (f, b) = make(i);
                            std::fs::write(dir.join(&f), b).expect("write");
                            f
                        })
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator"))
            .collect()
    });
    let mut names: Vec<String> = parts.iter_mut().flat_map(std::mem::take).collect();
    names.sort();
    names
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

pub(crate) fn scale(rep: &mut Report, sc: &Scale, venv: &Path, scratch: &Path) {
    if sc.apt > 0 {
        eprintln!("== scale: APT, {} packages in one dist", sc.apt);
        scale_apt(rep, sc, scratch);
    }
    if sc.pypi > 0 {
        eprintln!("== scale: PyPI, {} projects", sc.pypi);
        scale_pypi(rep, sc, venv, scratch);
    }
}

/// A static copy of dist `dist` as the server publishes it (by name and by hash), for nginx.
fn static_dist(s: &Server, base: &str, dist: &str, root: &Path) {
    let dists = root.join("dists").join(dist);
    std::fs::create_dir_all(&dists).expect("static dist");
    for f in ["InRelease", "Release", "Release.gpg"] {
        let r = s.get(&format!("{base}/dists/{dist}/{f}"));
        assert_eq!(r.status, 200, "{f}");
        std::fs::write(dists.join(f), r.body).expect("static release");
    }
    let release = s.get(&format!("{base}/dists/{dist}/Release")).text();
    for line in release
        .lines()
        .skip_while(|l| *l != "SHA256:")
        .skip(1)
        .take_while(|l| l.starts_with(' '))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [sha, _, name] = parts.as_slice() else {
            continue;
        };
        let r = s.get(&format!("{base}/dists/{dist}/{name}"));
        assert_eq!(r.status, 200, "{name}");
        let dir = name.rfind('/').map_or("", |i| &name[..i]);
        let by_hash = dists.join(dir).join("by-hash/SHA256");
        std::fs::create_dir_all(&by_hash).expect("by-hash");
        std::fs::write(by_hash.join(sha), &r.body).expect("by-hash file");
        std::fs::write(dists.join(name), r.body).expect("static index");
    }
}

fn scale_apt(rep: &mut Report, sc: &Scale, scratch: &Path) {
    let n = sc.apt;
    let dir = scratch.join(format!("scale-debs-{n}"));
    let started = Instant::now();
    let debs = generate_files(n, &dir, |i| {
        let arch = if i % 4 == 3 { "all" } else { "amd64" };
        Deb::new(&format!("scale-d{i}"), "1.0", arch).build()
    });
    eprintln!(
        "  generated {n} debs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let s = Server::start_with(Options::default());
    let folder = dir.display().to_string();
    let secs = timed(|| {
        s.task_ok(&[
            "import",
            "apt",
            "big",
            "--from-dir",
            &folder,
            "--dist",
            "stable",
        ]);
    });
    rep.add(
        "scale",
        "import N debs (bulk, one publish)",
        n,
        "artifactd",
        secs,
        "s",
        format!("{:.0} files/s", n as f64 / secs),
    );

    // Publishing after one more package: the import's files written back first (`sync`), so
    // the timings are the server's and not the disk's flush of the import. The first upload
    // meets a node that has not published this dist yet (the import ran in another process):
    // it inflates the indexes; the next one still hashes them whole. The median of 5 after
    // those is what a running server does.
    let _ = Command::new("sync").status();
    let adds: Vec<(String, Vec<u8>)> = (0..7)
        .map(|i| Deb::new(&format!("scale-extra{i}"), "1.0", "amd64").build())
        .collect();
    let times: Vec<f64> = adds
        .iter()
        .map(|(f, b)| {
            timed(|| {
                let r = s.addpkg("provider=apt&reponame=big&dist=stable", f, b);
                assert_eq!(r.status, 201, "{}", r.text());
            })
        })
        .collect();
    rep.add(
        "scale",
        "add 1 package and republish, first after import",
        n,
        "artifactd",
        times[0] * 1000.0,
        "ms",
        "node cache cold".into(),
    );
    let publish = median(times[2..].to_vec());
    rep.add(
        "scale",
        "add 1 package and republish",
        n,
        "artifactd",
        publish * 1000.0,
        "ms",
        "median of 5".into(),
    );
    rep.check(
        format!("scale: publish one N={n}: <= 10 ms"),
        publish * 1000.0 <= 10.0,
        format!("{:.2} ms", publish * 1000.0),
    );

    // apt-get update, cold, against the server and against nginx serving the same files.
    let static_root = scratch.join(format!("scale-apt-static-{n}"));
    static_dist(&s, "/repo/apt/big", "stable", &static_root);
    let (_nginx, nginx_url) = nginx(&static_root, scratch);
    let key = scratch.join(format!("scale-{n}.asc"));
    std::fs::write(&key, s.get("/repo/apt/big/pubkey").body).expect("key");
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
    let ours = cold(&apt_root(
        &scratch.join(format!("scale-apt-ours-{n}")),
        &s.url("/repo/apt/big"),
        "stable",
        &key,
    ));
    let theirs = cold(&apt_root(
        &scratch.join(format!("scale-apt-static-root-{n}")),
        &nginx_url,
        "stable",
        &key,
    ));
    rep.add(
        "scale",
        "apt-get update (cold)",
        n,
        "artifactd",
        ours,
        "s",
        String::new(),
    );
    rep.add(
        "scale",
        "apt-get update (cold)",
        n,
        "nginx",
        theirs,
        "s",
        "the same files, static".into(),
    );
    rep.check(
        format!("scale: apt-get update N={n}: within 1.2x of static"),
        ours <= 1.2 * theirs,
        format!("{:.2}x", ours / theirs),
    );
    let (rss, peak) = s.rss_kib();
    rep.add(
        "scale",
        "RSS after import and updates",
        n,
        "artifactd",
        rss as f64 / 1024.0,
        "MiB",
        format!("peak {:.0} MiB", peak as f64 / 1024.0),
    );
    drop(s);

    // reprepro and aptly on the same packages.
    let (gnupg, fpr) = gpg_key(scratch);
    let paths: Vec<PathBuf> = debs.iter().map(|f| dir.join(f)).collect();
    let secs = reprepro_fill(
        &scratch.join(format!("scale-reprepro-{n}")),
        &gnupg,
        &fpr,
        &paths,
    );
    rep.add(
        "scale",
        "import N debs (bulk, one publish)",
        n,
        "reprepro",
        secs,
        "s",
        "includedeb, 500 per call".into(),
    );
    let aptly = aptly_at(&scratch.join(format!("scale-aptly-{n}")), &gnupg);
    let secs = aptly_fill(&aptly, "big", &dir, &fpr);
    rep.add(
        "scale",
        "import N debs (bulk, one publish)",
        n,
        "aptly",
        secs,
        "s",
        "repo add + publish".into(),
    );
}

fn scale_pypi(rep: &mut Report, sc: &Scale, venv: &Path, scratch: &Path) {
    let n = sc.pypi;
    let dir = scratch.join(format!("scale-wheels-{n}"));
    let started = Instant::now();
    let wheels = generate_files(n, &dir, |i| {
        Dist::new(&format!("scale-p{i}"), "1.0").wheel()
    });
    eprintln!(
        "  generated {n} wheels in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let projects: Vec<String> = (0..20).map(|i| format!("scale-p{i}")).collect();
    let s = Server::start_with(Options::default());
    let folder = dir.display().to_string();
    let secs = timed(|| {
        s.task_ok(&["import", "pypi", "big", "--from-dir", &folder]);
    });
    rep.add(
        "scale",
        "import N projects (bulk, one publish)",
        n,
        "artifactd",
        secs,
        "s",
        format!("{:.0} files/s", n as f64 / secs),
    );
    let static_root = scratch.join(format!("scale-pypi-static-{n}"));
    pypi_static(&s, "big", &projects, &wheels, &dir, &static_root);
    let (_nginx, nginx_url) = nginx(&static_root, scratch);
    let html = "Accept: text/html";
    let project = &projects[0];
    let mut rss_load = 0;
    for (page, ours, static_path) in [
        (
            "root page",
            "/repo/pypi/big/simple/".to_owned(),
            "/simple/".to_owned(),
        ),
        (
            "project page",
            format!("/repo/pypi/big/simple/{project}/"),
            format!("/simple/{project}/"),
        ),
    ] {
        let (rps, p99, bad) = wrk(&s.url(&ours), sc.secs, &[html]);
        rss_load = rss_load.max(s.rss_kib().0);
        let (nrps, np99, nbad) = wrk(&format!("{nginx_url}{static_path}"), sc.secs, &[html]);
        rep.add(
            "scale",
            page,
            n,
            "artifactd",
            rps,
            "req/s",
            format!("p99 {p99:.2} ms, {bad} non-2xx"),
        );
        rep.add(
            "scale",
            page,
            n,
            "nginx",
            nrps,
            "req/s",
            format!("p99 {np99:.2} ms, {nbad} non-2xx"),
        );
        rep.check(
            format!("scale: {page} N={n}: >= 50% of nginx"),
            rps >= 0.5 * nrps && bad == 0,
            format!("{:.0}%", 100.0 * rps / nrps),
        );
    }
    // uv pip install of 20 packages, against the server and the static tree.
    let mut uv = Vec::new();
    for (subject, index) in [
        ("artifactd", s.url("/repo/pypi/big/simple/")),
        ("nginx", format!("{nginx_url}/simple/")),
    ] {
        let secs = median_of_3(|round| {
            let target = scratch.join(format!("scale-uv-{subject}-{n}-{round}"));
            uv_install(venv, &target, &index, &projects)
        });
        rep.add(
            "scale",
            "uv pip install 20 packages",
            n,
            subject,
            secs,
            "s",
            String::new(),
        );
        uv.push(secs);
    }
    rep.check(
        format!("scale: uv pip install 20 N={n}: within 1.2x of static"),
        uv[0] <= 1.2 * uv[1],
        format!("{:.2}x", uv[0] / uv[1]),
    );
    mixed(rep, sc, &s, n, project);
    let (rss, peak) = s.rss_kib();
    rss_load = rss_load.max(rss);
    rep.add(
        "scale",
        "RSS under load",
        n,
        "artifactd",
        rss_load as f64 / 1024.0,
        "MiB",
        format!(
            "peak {:.0} MiB (import ran in its own process)",
            peak as f64 / 1024.0
        ),
    );
    rep.check(
        format!("scale: RSS N={n}: <= 128 MiB"),
        peak as f64 / 1024.0 <= 128.0,
        format!("{:.0} MiB peak", peak as f64 / 1024.0),
    );
}

/// 1,000 concurrent readers of a project page while 10 clients upload new wheels.
fn mixed(rep: &mut Report, sc: &Scale, s: &Server, n: usize, project: &str) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (uploaded, failed) = (
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    );
    let url = s.url(&format!("/repo/pypi/big/simple/{project}/"));
    let (rps, p99, bad, errors) = std::thread::scope(|scope| {
        for t in 0..10 {
            let (stop, uploaded, failed) = (&stop, &uploaded, &failed);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (f, b) = Dist::new(&format!("scale-new{t}-{i}"), "1.0").wheel();
                    let r = s.addpkg("provider=pypi&reponame=big", &f, &b);
                    let counter = if r.status == 201 { uploaded } else { failed };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        let out = wrk_with(&url, sc.mixed_secs, 1000, &["Accept: text/html"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    });
    let (uploaded, failed) = (
        uploaded.load(std::sync::atomic::Ordering::Relaxed),
        failed.load(std::sync::atomic::Ordering::Relaxed),
    );
    rep.add(
        "scale",
        "1000 readers + 10 uploaders: project page",
        n,
        "artifactd",
        rps,
        "req/s",
        format!(
            "p99 {p99:.2} ms, {bad} non-2xx, {errors} socket errors; {uploaded} uploads, {failed} failed, {} s",
            sc.mixed_secs
        ),
    );
    rep.add(
        "scale",
        "1000 readers + 10 uploaders: p99",
        n,
        "artifactd",
        p99,
        "ms",
        String::new(),
    );
    rep.check(
        format!("scale: 1000 readers + 10 uploaders N={n}: 0 errors"),
        bad == 0 && errors == 0 && failed == 0 && uploaded > 0,
        format!("{bad} non-2xx, {errors} socket errors, {failed} failed uploads of {uploaded}"),
    );
}
