//! apt-get updating while uploads publish: every file an `InRelease` lists stays fetchable, by
//! hash and by name, however many publishes land between the client's requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use artifactd_apt::testing::Deb;
use artifactd_tests::{Apt, Server, sha256_hex, try_run};

const UPLOADERS: usize = 10;
const MIN_UPLOADS: usize = 200;
const MIN_UPDATES: usize = 50;
/// A slow client: between reading `InRelease` and fetching what it lists, hundreds of publishes.
const SLOW_CLIENT_WAIT: Duration = Duration::from_secs(12);

/// The `(path below the dist, sha256)` of every file an `InRelease` lists.
fn listed(inrelease: &str) -> Vec<(String, String)> {
    inrelease
        .lines()
        .skip_while(|l| *l != "SHA256:")
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| (f[2].to_owned(), f[0].to_owned()))
        })
        .collect()
}

/// Reads `InRelease`, waits while publishes land, then fetches every listed file by hash.
fn slow_client(s: &Server) -> Result<usize, String> {
    let inrelease = s.get("/repo/apt/r/dists/stable/InRelease").text();
    let files = listed(&inrelease);
    if files.is_empty() {
        return Err(format!("InRelease lists nothing:\n{inrelease}"));
    }
    std::thread::sleep(SLOW_CLIENT_WAIT);
    for (path, sha) in &files {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let by_hash = format!("/repo/apt/r/dists/stable/{dir}/by-hash/SHA256/{sha}");
        let r = s.get(&by_hash);
        if r.status != 200 || sha256_hex(&r.body) != *sha {
            return Err(format!(
                "{path} ({sha}) listed {} s ago: {} from {by_hash}",
                SLOW_CLIENT_WAIT.as_secs(),
                r.status
            ));
        }
    }
    Ok(files.len())
}

fn updates_while_uploading(by_hash: Option<&str>) {
    let s = Server::start();
    let (f, b) = Deb::new("race-seed", "1.0", "amd64").build();
    assert_eq!(
        s.addpkg("provider=apt&reponame=r&dist=stable", &f, &b)
            .status,
        201
    );
    let apt = Apt::new(&s.scratch("apt"), &["amd64"]);
    let key = apt.key_path("r.gpg");
    std::fs::write(&key, s.get("/repo/apt/r/pubkey.gpg").body).expect("key");
    apt.add_source(
        "r",
        &format!("signed-by={}", key.display()),
        &s.url("/repo/apt/r"),
        "stable",
        "main",
    );
    if let Some(mode) = by_hash {
        std::fs::write(
            apt.root().join("etc/apt/apt.conf.d/90by-hash"),
            format!("Acquire::By-Hash \"{mode}\";\n"),
        )
        .expect("apt.conf.d");
    }
    let uploads = AtomicUsize::new(0);
    let updates = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let slow_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for t in 0..UPLOADERS {
            let (s, uploads, stop, failures) = (&s, &uploads, &stop, &failures);
            scope.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Architecture-specific and `all` packages: both kinds of index change.
                    let arch = if n % 3 == 0 { "all" } else { "amd64" };
                    let (f, b) = Deb::new(&format!("race-{t}"), &format!("1.{n}"), arch).build();
                    let r = s.addpkg("provider=apt&reponame=r&dist=stable", &f, &b);
                    if r.status != 201 {
                        failures.lock().expect("failures").push(format!(
                            "upload {f}: {} {}",
                            r.status,
                            r.text()
                        ));
                    }
                    uploads.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let (s, slow_done_ref, failures_ref) = (&s, &slow_done, &failures);
        scope.spawn(move || {
            match slow_client(s) {
                Ok(n) => eprintln!(
                    "a slow client fetched the {n} files of an InRelease read {} s before",
                    SLOW_CLIENT_WAIT.as_secs()
                ),
                Err(e) => failures_ref.lock().expect("failures").push(e),
            }
            slow_done_ref.store(true, Ordering::SeqCst);
        });
        let (apt, uploads, updates, stop, failures) = (&apt, &uploads, &updates, &stop, &failures);
        let slow_done = &slow_done;
        scope.spawn(move || {
            while updates.load(Ordering::SeqCst) < MIN_UPDATES
                || uploads.load(Ordering::SeqCst) < MIN_UPLOADS
                || !slow_done.load(Ordering::SeqCst)
            {
                let (ok, out) = try_run(apt.cmd().args(["update", "--error-on=any"]));
                if !ok || out.contains("W:") || out.contains("E:") {
                    failures
                        .lock()
                        .expect("failures")
                        .push(format!("apt-get update:\n{out}"));
                }
                updates.fetch_add(1, Ordering::SeqCst);
            }
            stop.store(true, Ordering::SeqCst);
        });
    });
    let failures = failures.into_inner().expect("failures");
    eprintln!(
        "by-hash {by_hash:?}: {} uploads from {UPLOADERS} clients during {} apt-get updates, {} failures",
        uploads.load(Ordering::SeqCst),
        updates.load(Ordering::SeqCst),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let log = s.log();
    let missing: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("status=404") && l.contains("/dists/"))
        .collect();
    assert!(
        missing.is_empty(),
        "listed files answered 404:\n{}",
        missing.join("\n")
    );
    // And the last state is complete.
    apt.update();
    let policy = apt.policy("race-0");
    assert!(policy.contains("Candidate: 1."), "{policy}");
}

#[test]
fn apt_get_update_never_misses_a_listed_file_while_uploads_publish() {
    updates_while_uploading(None);
}

#[test]
fn apt_get_update_by_hash_forced_never_misses_a_listed_file_while_uploads_publish() {
    updates_while_uploading(Some("force"));
}
