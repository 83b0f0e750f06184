//! Generated wheels and .debs, and the upload and timing helpers.

use super::*;

/// The generated data of one size: wheel and deb files on disk.
pub(crate) struct Data {
    pub(crate) dir: PathBuf,
    pub(crate) wheels: Vec<String>,
    pub(crate) debs: Vec<String>,
    pub(crate) projects: Vec<String>,
}

pub(crate) fn generate(n: usize, root: &Path) -> Data {
    let dir = root.join(format!("data-{n}"));
    std::fs::create_dir_all(dir.join("wheels")).expect("data dir");
    std::fs::create_dir_all(dir.join("debs")).expect("data dir");
    let per = 5;
    let mut wheels = Vec::new();
    let mut projects = Vec::new();
    for i in 0..n.div_ceil(per) {
        let name = format!("bench-p{i}");
        projects.push(name.clone());
        for v in 0..per.min(n - i * per) {
            let (f, b) = Dist::new(&name, &format!("1.{v}")).wheel();
            std::fs::write(dir.join("wheels").join(&f), b).expect("wheel");
            wheels.push(f);
        }
    }
    let mut debs = Vec::new();
    for i in 0..n {
        let arch = if i % 4 == 3 { "all" } else { "amd64" };
        let (f, b) = Deb::new(&format!("bench-d{}", i / 2), &format!("1.{}", i % 2), arch).build();
        std::fs::write(dir.join("debs").join(&f), b).expect("deb");
        debs.push(f);
    }
    Data {
        dir,
        wheels,
        debs,
        projects,
    }
}

pub(crate) fn upload_all(
    s: &Server,
    query: &str,
    dir: &Path,
    files: &[String],
    threads: usize,
) -> Duration {
    let started = Instant::now();
    let chunks: Vec<&[String]> = files.chunks(files.len().div_ceil(threads).max(1)).collect();
    std::thread::scope(|scope| {
        for chunk in chunks {
            scope.spawn(move || {
                for f in chunk {
                    let bytes = std::fs::read(dir.join(f)).expect("read");
                    let r = s.addpkg(query, f, &bytes);
                    assert_eq!(r.status, 201, "{f}: {}", r.text());
                }
            });
        }
    });
    started.elapsed()
}

/// Uploads `files` sequentially into repo `seq` and with 8 clients into repo `par`.
pub(crate) fn upload_both(
    rep: &mut Report,
    s: &Server,
    what: &str,
    query: &str,
    dir: &Path,
    files: &[String],
    n: usize,
) {
    for (label, repo, threads) in [("sequential", "seq", 1), ("8 concurrent", "par", 8)] {
        let t = upload_all(s, &query.replace("REPO", repo), dir, files, threads);
        rep.add(
            "upload",
            &format!("N {what}, {label}"),
            n,
            "artifactd",
            t.as_secs_f64(),
            "s",
            format!("{:.0} files/s", n as f64 / t.as_secs_f64()),
        );
    }
}

/// An apt root pointed at `url` (signed with the key at `key`).
pub(crate) fn apt_root(root: &Path, url: &str, dist: &str, key: &Path) -> Apt {
    let apt = Apt::new(root, &["amd64"]);
    let dest = apt.key_path("bench.asc");
    std::fs::copy(key, &dest).expect("key");
    apt.add_source(
        "bench",
        &format!("signed-by={}", dest.display()),
        url,
        dist,
        "main",
    );
    apt
}

/// The median of three runs of `f` (given the round number), for client timings.
pub(crate) fn median_of_3(mut f: impl FnMut(usize) -> f64) -> f64 {
    let mut t = [f(0), f(1), f(2)];
    t.sort_by(f64::total_cmp);
    t[1]
}

pub(crate) fn timed(f: impl FnOnce()) -> f64 {
    let started = Instant::now();
    f();
    started.elapsed().as_secs_f64()
}
