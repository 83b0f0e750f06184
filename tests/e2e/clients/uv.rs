//! uv 0.5 and the latest: `uv pip install`, `uv lock` against the index, `uv publish`.

use artifactd_tests::matrix::{Client, UVS, python3};
use artifactd_tests::run;

use super::{Fixture, announce, assert_installed};

fn scenario(client: &Client) {
    let f = Fixture::new();
    let env = client.env();
    let scratch = f.server.scratch(&client.slug());
    announce(&env, &scratch);
    let uv = || env.cmd("uv", &scratch);

    let venv = scratch.join("venv");
    run(uv()
        .args(["venv", "--quiet", "--python"])
        .arg(python3())
        .arg(&venv));
    let py = venv.join("bin/python");
    run(uv().args(["pip", "install", "--python"]).arg(&py).args([
        "--index-url",
        &f.index,
        "matrix-app",
    ]));
    assert_installed(&py);

    // A project locked against the index alone.
    let project = scratch.join("project");
    std::fs::create_dir_all(&project).expect("project");
    std::fs::write(
        project.join("pyproject.toml"),
        format!(
            "[project]\nname = \"consumer\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"matrix-app\"]\n\n[[tool.uv.index]]\nname = \"team\"\nurl = \"{}\"\ndefault = true\n",
            f.index
        ),
    )
    .expect("pyproject");
    run(uv()
        .env_remove("UV_NO_CONFIG")
        .current_dir(&project)
        .args(["lock", "--python"])
        .arg(python3()));
    let lock = std::fs::read_to_string(project.join("uv.lock")).expect("uv.lock");
    for needle in [
        "name = \"matrix-app\"",
        "name = \"wheel-dep\"",
        "name = \"sdist-dep\"",
        &format!("registry = \"{}\"", f.index),
    ] {
        assert!(
            lock.contains(needle),
            "{needle} missing in uv.lock:\n{lock}"
        );
    }

    // Publish with a token, twice (the second finds the files there).
    let files = f.dist_files(&scratch.join("dist"), "uv-made");
    let token = f.server.create_token("uv", "write", &["pypi/m"]);
    for _ in 0..2 {
        run(uv()
            .args([
                "publish",
                "--publish-url",
                &f.server.url("/repo/pypi/m/legacy/"),
                "-u",
                "__token__",
                "-p",
                &token,
            ])
            .args(&files));
    }
    assert_eq!(
        f.files("uv-made"),
        ["uv_made-1.0-py3-none-any.whl", "uv_made-1.0.tar.gz"]
    );
}

#[test]
fn uv_0_5() {
    scenario(&UVS[0]);
}

#[test]
fn uv_latest() {
    scenario(&UVS[1]);
}
