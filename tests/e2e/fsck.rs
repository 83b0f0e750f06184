//! `artifactd fsck` next to a running server: a clean repo passes; a corrupt blob (found with
//! `--deep`), a deleted by-hash file, a dropped record, a tampered `InRelease` and a blob
//! without a record are each found, with repo and path, and exit 1; `--repair` quarantines and
//! rebuilds what it can, the server serves the rebuilt indexes, and after `gc` all is clean.

use std::process::Command;

use artifactd_apt::testing::Deb;
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Server, run, sha256_hex};

fn content_blob(s: &Server, sha: &str) -> std::path::PathBuf {
    s.data_dir()
        .join("blobs/content/sha256")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(sha)
}

fn dist_dir(s: &Server) -> std::path::PathBuf {
    s.data_dir().join("blobs/derived/apt/deb/dists/stable")
}

#[test]
fn fsck_finds_each_kind_of_damage_and_repair_fixes_what_it_can() {
    let s = Server::start();
    let (wheel, wheel_bytes) = Dist::new("checked", "1.0").wheel();
    assert_eq!(
        s.addpkg("provider=pypi&reponame=team", &wheel, &wheel_bytes)
            .status,
        201
    );
    let kept = Deb::new("kept-tool", "1.0", "amd64").build();
    let dropped = Deb::new("dropped-tool", "1.0", "amd64").build();
    for (f, b) in [&kept, &dropped] {
        let r = s.addpkg("provider=apt&reponame=deb&dist=stable", f, b);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let (code, out) = s.task(&["fsck", "--deep", "--grace-secs", "0"]);
    assert_eq!((code, out.trim()), (0, "fsck: no problem found"), "{out}");

    // A corrupt blob (same size): only the deep check reads it.
    let blob = content_blob(&s, &sha256_hex(&wheel_bytes));
    let mut bytes = std::fs::read(&blob).expect("the wheel's blob");
    bytes[10] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("corrupt it");
    let (code, out) = s.task(&["fsck"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = s.task(&["fsck", "--deep"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("pypi/team files/{wheel}: ")) && out.contains("corrupt"),
        "{out}"
    );

    // A second wheel loses its core metadata (PEP 658), which its page announces.
    let (meta_wheel, meta_bytes) = Dist::new("unannounced", "1.0").wheel();
    assert_eq!(
        s.addpkg("provider=pypi&reponame=team", &meta_wheel, &meta_bytes)
            .status,
        201
    );
    std::fs::remove_file(
        s.data_dir()
            .join("blobs/derived/pypi/team/metadata")
            .join(sha256_hex(&meta_bytes)),
    )
    .expect("delete the core metadata");
    let (code, out) = s.task(&["fsck"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "pypi/team files/{meta_wheel}.metadata: The core metadata the page announces is missing"
        )),
        "{out}"
    );
    assert!(
        s.addpkg("provider=pypi&reponame=team", &meta_wheel, &meta_bytes)
            .status
            < 300
    );

    // A by-hash file the Release lists is deleted.
    let release = s.get("/repo/apt/deb/dists/stable/Release").text();
    let gz_sha = release
        .lines()
        .find(|l| l.ends_with(" main/Contents-amd64.gz"))
        .and_then(|l| l.split_whitespace().next())
        .expect("Contents-amd64.gz in Release")
        .to_owned();
    std::fs::remove_file(dist_dir(&s).join("main/by-hash/SHA256").join(&gz_sha))
        .expect("delete the by-hash file");
    // A record is dropped from the catalog (its blob stays: an orphan).
    run(Command::new("python3").arg("-c").arg(format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute(\"DELETE FROM files WHERE path LIKE '%dropped-tool%'\"); c.commit()",
        s.data_dir().join("artifactd.sqlite3").display()
    )));
    // InRelease is tampered with.
    let state_file = dist_dir(&s).join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).expect("state")).expect("json");
    let tampered = state["inrelease"]
        .as_str()
        .expect("inrelease")
        .replace("Label: deb", "Label: evil");
    state["inrelease"] = tampered.into();
    std::fs::write(&state_file, serde_json::to_vec(&state).expect("json")).expect("write");

    let (code, out) = s.task(&["fsck", "--deep", "--grace-secs", "0"]);
    assert_eq!(code, 1, "{out}");
    for needle in [
        "apt/deb dists/stable/main/Contents-amd64.gz: Release lists it, but its by-hash file",
        "is in the index but not in the catalog",
        "apt/deb dists/stable/InRelease: InRelease does not sign the Release",
        "apt/deb dists/stable/InRelease: The signature does not verify",
        "No record, snapshot, cache entry or staged upload refers to this blob",
        "corrupt",
    ] {
        assert!(out.contains(needle), "{needle:?} in {out}");
    }

    // The repair quarantines the corrupt wheel's record, rebuilds the dist; the blobs stay, so
    // the orphans are left, for gc.
    let (code, out) = s.task(&["fsck", "--deep", "--repair", "--grace-secs", "0"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "repaired: pypi/team: quarantined the record of files/{wheel}"
        )),
        "{out}"
    );
    assert!(out.contains("repaired: apt/deb: rebuilt the published indexes"));
    let left: Vec<&str> = out.lines().filter(|l| l.starts_with("left: ")).collect();
    assert_eq!(left.len(), 2, "the two orphan blobs: {out}");
    assert!(
        left.iter().all(|l| l.contains("refers to this blob")),
        "{out}"
    );
    assert!(blob.exists(), "a repair never deletes a blob");

    // The running server serves the rebuilt dist (it sees another process's change of its
    // SQLite file within a second): signed, by-hash complete, without the dropped package; the
    // quarantined wheel is gone from the index and in the audit log.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let packages = s
        .get("/repo/apt/deb/dists/stable/main/binary-amd64/Packages")
        .text();
    assert!(packages.contains("Package: kept-tool\n"), "{packages}");
    assert!(!packages.contains("dropped-tool"), "{packages}");
    let release = s.get("/repo/apt/deb/dists/stable/Release").text();
    assert!(release.contains("Label: deb\n"), "{release}");
    let gz_sha = release
        .lines()
        .find(|l| l.ends_with(" main/Contents-amd64.gz"))
        .and_then(|l| l.split_whitespace().next())
        .expect("Contents-amd64.gz in Release");
    let by_hash = s.get(&format!(
        "/repo/apt/deb/dists/stable/main/by-hash/SHA256/{gz_sha}"
    ));
    assert_eq!(by_hash.status, 200);
    assert_eq!(sha256_hex(&by_hash.body), gz_sha);
    assert_eq!(s.get("/repo/pypi/team/simple/checked/").status, 404);
    let audit = s.get_as(Some(&s.token), "/api/v1/audit").text();
    assert!(audit.contains("fsck-quarantine"), "{audit}");

    let (code, out) = s.task(&["gc", "--grace-secs", "0"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = s.task(&["fsck", "--deep", "--grace-secs", "0"]);
    assert_eq!((code, out.trim()), (0, "fsck: no problem found"), "{out}");
}
