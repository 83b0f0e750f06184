//! PyPI snapshots: a frozen copy of a repo's index that `pip install -i` reads after the live
//! index moved on, with the files a delete and `gc` would otherwise take.

use std::process::Command;

use artifactd_pypi::testing::Dist;
use artifactd_tests::{Server, clients, run};

fn upload(s: &Server, (filename, bytes): &(String, Vec<u8>)) {
    let r = s.addpkg("provider=pypi&reponame=rel", filename, bytes);
    assert_eq!(r.status, 201, "{filename}: {}", r.text());
}

fn call(
    s: &Server,
    token: Option<&str>,
    path: &str,
    body: serde_json::Value,
) -> artifactd_tests::Resp {
    s.json_as("POST", token, &format!("/repo/pypi/rel/{path}"), &body)
}

#[test]
fn pip_installs_from_a_snapshot_after_the_index_moved_on() {
    let s = Server::start();
    let scratch = s.scratch("pypi-snapshot");
    let c = clients();
    let old_lib = Dist::new("dep-lib", "1.0").wheel();
    upload(&s, &old_lib);
    upload(
        &s,
        &Dist::new("my-app", "1.0").requires("dep-lib>=1.0").wheel(),
    );

    // Refusals: no token, a bad name, a body that is not the call's.
    let body = serde_json::json!({"name": "release-1"});
    assert_eq!(call(&s, None, "snapshots", body.clone()).status, 401);
    let r = call(
        &s,
        Some(&s.token),
        "snapshots",
        serde_json::json!({"name": "../x"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error().contains("Invalid snapshot name"), "{}", r.error());
    let r = call(
        &s,
        Some(&s.token),
        "snapshots",
        serde_json::json!({"dist": "x"}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // rpcli takes it (the JSON call underneath: `POST snapshots {"name"}`).
    let out = run(s
        .rpcli()
        .args(["pypi", "snapshot", "create", "rel", "release-1"]));
    assert!(
        out.starts_with("snapshot release-1: 2 file(s), http://"),
        "{out}"
    );
    let r = call(&s, Some(&s.token), "snapshots", body.clone());
    assert_eq!(r.status, 409, "snapshots never change: {}", r.text());

    // The live index moves on: a new dep-lib, the old one deleted and collected.
    upload(&s, &Dist::new("dep-lib", "2.0").wheel());
    let r = s.delete_as(
        Some(&s.token),
        "/api/v1/repos/pypi/rel/packages/dep-lib/1.0",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s.task_ok(&["gc", "--grace-secs", "0"]);

    let snap = s.url("/repo/pypi/rel/snapshots/release-1/");
    let listed = s.get("/repo/pypi/rel/snapshots/").json();
    assert_eq!(listed["snapshots"][0]["name"], "release-1", "{listed}");
    let out = run(s.rpcli().args(["pypi", "snapshot", "list", "rel"]));
    assert_eq!(out.trim(), format!("release-1 {snap}"));
    let page = s
        .get_with(
            "/repo/pypi/rel/snapshots/release-1/simple/dep-lib/",
            &[("Accept", "application/vnd.pypi.simple.v1+json")],
        )
        .json();
    let versions: Vec<&str> = page["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(versions, ["1.0"], "{page}");
    let file = s.get(&format!(
        "/repo/pypi/rel/snapshots/release-1/files/{}",
        old_lib.0
    ));
    assert_eq!(file.status, 200);
    assert_eq!(file.body, old_lib.1, "the deleted file, byte for byte");
    assert_eq!(
        s.get(&format!("/repo/pypi/rel/files/{}", old_lib.0)).status,
        404
    );

    // pip from the snapshot gets the release as it was; from the live index, today's.
    let frozen = c.fresh_venv(&scratch.join("frozen"), &scratch);
    run(c
        .pip(&scratch, &frozen)
        .args(["install", "-i", &snap, "my-app"]));
    let version = |py: &std::path::Path| {
        run(Command::new(py)
            .arg("-c")
            .arg("import dep_lib; print(dep_lib.__version__)"))
        .trim()
        .to_owned()
    };
    assert_eq!(version(&frozen), "1.0");
    let live = c.fresh_venv(&scratch.join("live"), &scratch);
    run(c
        .pip(&scratch, &live)
        .args(["install", "-i", &s.url("/repo/pypi/rel/"), "my-app"]));
    assert_eq!(version(&live), "2.0");

    // Removing the snapshot ends it; gc then takes the file no record refers to.
    let out = run(s
        .rpcli()
        .args(["pypi", "snapshot", "delete", "rel", "release-1"]));
    assert_eq!(out.trim(), "deleted snapshot release-1");
    assert_eq!(s.get("/repo/pypi/rel/snapshots/release-1/").status, 404);
    assert_eq!(
        call(&s, Some(&s.token), "snapshots/remove", body).status,
        404
    );
    let sha = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&old_lib.1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let content = |s: &Server| {
        s.stored_files()
            .into_keys()
            .filter(|p| p.starts_with("content") && p.contains(&sha))
            .count()
    };
    assert_eq!(content(&s), 1, "held until the snapshot goes");
    let out = s.task_ok(&["gc", "--grace-secs", "0"]);
    assert_eq!(content(&s), 0, "collected once nothing refers to it");
    // Its core metadata goes with it.
    assert!(out.contains("1 file(s) derived from them"), "{out}");
    let left: Vec<String> = s
        .stored_files()
        .into_keys()
        .filter(|p| p.contains(&sha))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
