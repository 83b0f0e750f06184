//! pip from Debian 11's to the latest: install with dependencies (one built from an sdist),
//! `pip download`, and `--require-hashes` with the hashes the index gives.

use artifactd_tests::matrix::{Client, PIPS};
use artifactd_tests::{isolated, run, try_run};

use super::{Fixture, announce, assert_installed, imports};

fn scenario(client: &Client) {
    let f = Fixture::new();
    let env = client.env();
    let scratch = f.server.scratch(&client.slug());
    announce(&env, &scratch);
    let pip = |python: &std::path::Path| {
        let mut c = isolated(python, &scratch);
        c.args(["-m", "pip"]);
        c
    };

    // Install: the wheel-only dependency is downloaded, the sdist-only one built.
    let py = env.copy_venv(&scratch.join("venv"));
    run(pip(&py).args(["install", "-i", &f.index, "matrix-app"]));
    assert_installed(&py);

    // Download: the files as the index has them.
    let dl = scratch.join("downloads");
    run(pip(&py)
        .args(["download", "-i", &f.index, "-d"])
        .arg(&dl)
        .arg("matrix-app"));
    let mut got: Vec<String> = std::fs::read_dir(&dl)
        .expect("downloads")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "matrix_app-1.0-py3-none-any.whl",
            "sdist_dep-1.0.tar.gz",
            "wheel_dep-1.0-py3-none-any.whl"
        ]
    );

    // --require-hashes with the hashes from the index's JSON pages.
    let mut req = String::new();
    for project in ["matrix-app", "wheel-dep", "sdist-dep"] {
        let hashes = f.hashes(project);
        let pins: Vec<String> = hashes
            .iter()
            .map(|(_, h)| format!("--hash=sha256:{h}"))
            .collect();
        req.push_str(&format!("{project}==1.0 {}\n", pins.join(" ")));
    }
    let req_file = scratch.join("requirements.txt");
    std::fs::write(&req_file, &req).expect("requirements");
    let py2 = env.copy_venv(&scratch.join("venv2"));
    run(pip(&py2)
        .args(["install", "--require-hashes", "-i", &f.index, "-r"])
        .arg(&req_file));
    assert_eq!(imports(&py2, &["matrix_app", "sdist_dep"]), "1.0 1.0");
    // A wrong hash is refused.
    std::fs::write(
        &req_file,
        format!("wheel-dep==1.0 --hash=sha256:{}\n", "0".repeat(64)),
    )
    .expect("requirements");
    let py3 = env.copy_venv(&scratch.join("venv3"));
    let (ok, out) = try_run(
        pip(&py3)
            .args(["install", "--require-hashes", "-i", &f.index, "-r"])
            .arg(&req_file),
    );
    assert!(!ok && out.contains("HASHES"), "{out}");
}

#[test]
fn pip_20_3_4_of_debian_11() {
    scenario(&PIPS[0]);
}

#[test]
fn pip_22_0_2_of_ubuntu_22_04() {
    scenario(&PIPS[1]);
}

#[test]
fn pip_23_0_1_of_debian_12() {
    scenario(&PIPS[2]);
}

#[test]
fn pip_24_0_of_ubuntu_24_04() {
    scenario(&PIPS[3]);
}

#[test]
fn pip_25_1_1_of_debian_13() {
    scenario(&PIPS[4]);
}

#[test]
fn pip_latest() {
    scenario(&PIPS[5]);
}
