//! twine (Debian 12's and the latest) uploads with a token; poetry and pdm install a project
//! from the index and publish; hatch publishes.

use artifactd_tests::matrix::{Client, HATCH, PDM, POETRY, TWINES, python3};
use artifactd_tests::run;

use super::{Fixture, announce, assert_installed};

fn twine(client: &Client) {
    let f = Fixture::new();
    let env = client.env();
    let scratch = f.server.scratch(&client.slug());
    announce(&env, &scratch);
    let files = f.dist_files(&scratch.join("dist"), "twine-made");
    let token = f.server.create_token("twine", "write", &["pypi/m"]);
    for _ in 0..2 {
        run(env
            .cmd("twine", &scratch)
            .args([
                "upload",
                "--non-interactive",
                "--repository-url",
                &f.server.url("/repo/pypi/m/"),
                "-u",
                "__token__",
                "-p",
                &token,
            ])
            .args(&files));
    }
    assert_eq!(
        f.files("twine-made"),
        ["twine_made-1.0-py3-none-any.whl", "twine_made-1.0.tar.gz"]
    );
}

#[test]
fn twine_4_0_2_of_debian_12() {
    twine(&TWINES[0]);
}

#[test]
fn twine_latest() {
    twine(&TWINES[1]);
}

#[test]
fn poetry_installs_from_a_source_and_publishes() {
    let f = Fixture::new();
    let env = POETRY.env();
    let scratch = f.server.scratch("poetry");
    announce(&env, &scratch);
    let poetry = || {
        let mut c = env.cmd("poetry", &scratch);
        c.env("POETRY_VIRTUALENVS_IN_PROJECT", "true")
            .env("POETRY_CACHE_DIR", scratch.join("poetry-cache"))
            .env("POETRY_CONFIG_DIR", scratch.join("poetry-config"))
            .env("POETRY_DATA_DIR", scratch.join("poetry-data"))
            .env("POETRY_NO_INTERACTION", "1");
        c
    };
    let consumer = scratch.join("consumer");
    std::fs::create_dir_all(&consumer).expect("project");
    std::fs::write(
        consumer.join("pyproject.toml"),
        format!(
            "[project]\nname = \"poetry-consumer\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"matrix-app\"]\n\n[tool.poetry]\npackage-mode = false\n\n[[tool.poetry.source]]\nname = \"team\"\nurl = \"{}\"\npriority = \"primary\"\n",
            f.index
        ),
    )
    .expect("pyproject");
    run(poetry()
        .current_dir(&consumer)
        .args(["env", "use"])
        .arg(python3()));
    run(poetry()
        .current_dir(&consumer)
        .args(["install", "--no-root"]));
    assert_installed(&consumer.join(".venv/bin/python"));

    let made = scratch.join("poetry-made");
    f.dist_files(&made.join("dist"), "poetry-made");
    std::fs::write(
        made.join("pyproject.toml"),
        "[project]\nname = \"poetry-made\"\nversion = \"1.0\"\n\n[build-system]\nrequires = [\"poetry-core>=2\"]\nbuild-backend = \"poetry.core.masonry.api\"\n",
    )
    .expect("pyproject");
    let token = f.server.create_token("poetry", "write", &["pypi/m"]);
    run(poetry().current_dir(&made).args([
        "config",
        "repositories.team",
        &f.server.url("/repo/pypi/m/"),
    ]));
    run(poetry().current_dir(&made).args([
        "publish",
        "-r",
        "team",
        "-u",
        "__token__",
        "-p",
        &token,
    ]));
    assert_eq!(
        f.files("poetry-made"),
        ["poetry_made-1.0-py3-none-any.whl", "poetry_made-1.0.tar.gz"]
    );
}

#[test]
fn pdm_installs_from_the_index_and_publishes() {
    let f = Fixture::new();
    let env = PDM.env();
    let scratch = f.server.scratch("pdm");
    announce(&env, &scratch);
    let pdm = || {
        let mut c = env.cmd("pdm", &scratch);
        c.env("PDM_CHECK_UPDATE", "false")
            .env("PDM_NON_INTERACTIVE", "1")
            .env("PDM_CACHE_DIR", scratch.join("pdm-cache"))
            .env("PDM_CONFIG_FILE", scratch.join("pdm-config.toml"));
        c
    };
    let consumer = scratch.join("consumer");
    std::fs::create_dir_all(&consumer).expect("project");
    std::fs::write(
        consumer.join("pyproject.toml"),
        format!(
            "[project]\nname = \"pdm-consumer\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"matrix-app\"]\n\n[tool.pdm]\ndistribution = false\n\n[[tool.pdm.source]]\nname = \"pypi\"\nurl = \"{}\"\n",
            f.index
        ),
    )
    .expect("pyproject");
    run(pdm()
        .current_dir(&consumer)
        .args(["venv", "create"])
        .arg(python3()));
    run(pdm().current_dir(&consumer).arg("install"));
    assert_installed(&consumer.join(".venv/bin/python"));

    let made = scratch.join("pdm-made");
    f.dist_files(&made.join("dist"), "pdm-made");
    std::fs::write(
        made.join("pyproject.toml"),
        "[project]\nname = \"pdm-made\"\nversion = \"1.0\"\nrequires-python = \">=3.8\"\n",
    )
    .expect("pyproject");
    let token = f.server.create_token("pdm", "write", &["pypi/m"]);
    run(pdm().current_dir(&made).args([
        "publish",
        "--no-build",
        "-r",
        &f.server.url("/repo/pypi/m/"),
        "-u",
        "__token__",
        "-P",
        &token,
    ]));
    assert_eq!(
        f.files("pdm-made"),
        ["pdm_made-1.0-py3-none-any.whl", "pdm_made-1.0.tar.gz"]
    );
}

#[test]
fn hatch_publishes() {
    let f = Fixture::new();
    let env = HATCH.env();
    let scratch = f.server.scratch("hatch");
    announce(&env, &scratch);
    let made = scratch.join("hatch-made");
    let files = f.dist_files(&made.join("dist"), "hatch-made");
    std::fs::write(
        made.join("pyproject.toml"),
        "[project]\nname = \"hatch-made\"\nversion = \"1.0\"\n\n[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    )
    .expect("pyproject");
    let token = f.server.create_token("hatch", "write", &["pypi/m"]);
    run(env
        .cmd("hatch", &scratch)
        .current_dir(&made)
        .env("HATCH_DATA_DIR", scratch.join("hatch-data"))
        .env("HATCH_CACHE_DIR", scratch.join("hatch-cache"))
        .args([
            "publish",
            "--no-prompt",
            "-r",
            &f.server.url("/repo/pypi/m/legacy/"),
            "-u",
            "__token__",
            "-a",
            &token,
        ])
        .args(&files));
    assert_eq!(
        f.files("hatch-made"),
        ["hatch_made-1.0-py3-none-any.whl", "hatch_made-1.0.tar.gz"]
    );
}
