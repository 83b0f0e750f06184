//! Every client at the versions that today's distributions ship, each through the same
//! scenario: install a project that needs a wheel-only and an sdist-only project, download,
//! `--require-hashes` with the index's hashes, lock where the client locks, and upload with a
//! token where the client uploads. Each client is its own test, so they run side by side; each
//! prints what it ran as (`client: …`), which the note of a run quotes.

use std::path::Path;

use artifactd_pypi::testing::Dist;
use artifactd_tests::matrix::{Client, ClientEnv};
use artifactd_tests::{Server, run};

// pip: install, download, --require-hashes.
mod pip;
// uv: pip install, lock, publish.
mod uv;
// twine, poetry, pdm and hatch: what each does against an index.
mod tools;
// apt-get of Debian 12 (the host) and of Debian 13 in a chroot.
mod apt;

/// A server with the scenario's projects: `matrix-app` (a wheel) needs `wheel-dep` (only a
/// wheel) and `sdist-dep` (only an sdist, built by the client).
pub struct Fixture {
    /// The server.
    pub server: Server,
    /// The index URL of the repo.
    pub index: String,
}

impl Fixture {
    pub fn new() -> Self {
        let server = Server::start();
        for (f, b) in [
            Dist::new("wheel-dep", "1.0").wheel(),
            Dist::new("sdist-dep", "1.0").sdist(),
            Dist::new("matrix-app", "1.0")
                .requires("wheel-dep>=1.0")
                .requires("sdist-dep")
                .wheel(),
        ] {
            let r = server.addpkg("provider=pypi&reponame=m", &f, &b);
            assert_eq!(r.status, 201, "{f}: {}", r.text());
        }
        let index = server.url("/repo/pypi/m/simple/");
        Self { server, index }
    }

    /// `(filename, sha256)` of a project's files, from its JSON page.
    pub fn hashes(&self, project: &str) -> Vec<(String, String)> {
        let page = self
            .server
            .get_with(
                &format!("/repo/pypi/m/{project}/"),
                &[("Accept", "application/vnd.pypi.simple.v1+json")],
            )
            .json();
        page["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| {
                (
                    f["filename"].as_str().unwrap_or_default().to_owned(),
                    f["hashes"]["sha256"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    /// The file names the index lists for `project`.
    pub fn files(&self, project: &str) -> Vec<String> {
        let mut out: Vec<String> = self.hashes(project).into_iter().map(|(f, _)| f).collect();
        out.sort();
        out
    }

    /// Writes `project`'s wheel and sdist (named for `client`) to `dir`; returns their paths.
    pub fn dist_files(&self, dir: &Path, project: &str) -> Vec<String> {
        std::fs::create_dir_all(dir).expect("dist folder");
        [
            Dist::new(project, "1.0").wheel(),
            Dist::new(project, "1.0").sdist(),
        ]
        .into_iter()
        .map(|(f, b)| {
            let path = dir.join(f);
            std::fs::write(&path, b).expect("write dist file");
            path.display().to_string()
        })
        .collect()
    }
}

/// Checks that `env` is the version it claims and says what ran.
pub fn announce(env: &ClientEnv, scratch: &Path) -> String {
    let reported = env.reported_version(scratch);
    let client: &Client = &env.client;
    if client.version != "latest" {
        assert!(
            reported.contains(client.version),
            "{} should be {} but says {reported:?}",
            client.tool,
            client.version
        );
    }
    eprintln!(
        "client: {} {} ({}) reports {reported:?}",
        client.tool, client.version, client.shipped_by
    );
    reported
}

/// Checks that `python`'s environment has the scenario's three projects, at 1.0.
pub fn assert_installed(python: &Path) {
    assert_eq!(
        imports(python, &["matrix_app", "wheel_dep", "sdist_dep"]),
        "1.0 1.0 1.0"
    );
}

/// `import` the modules in `python` and print their versions.
pub fn imports(python: &Path, modules: &[&str]) -> String {
    let code = format!(
        "import {m}; print(' '.join(x.__version__ for x in [{m}]))",
        m = modules.join(", ")
    );
    run(std::process::Command::new(python).arg("-c").arg(code))
        .trim()
        .to_owned()
}
