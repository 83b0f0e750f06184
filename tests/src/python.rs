//! The Python clients (pip, uv, twine) in one virtualenv shared by the whole run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{bin_dir, run};

/// The Python clients (pip, uv, twine) in one virtualenv shared by the whole run, created on
/// first use under the target folder from the package index; pinned where a test needs it.
#[derive(Debug)]
pub struct Clients {
    pub(crate) venv: PathBuf,
}

/// Pins: twine 6.2 and later accept `--skip-existing` only for pypi.org.
/// `moto[server]` is the S3-compatible server the storage tests run against; `schemathesis`
/// checks the live JSON API against its OpenAPI document; `prometheus_client`'s parsers read
/// `/metrics` as Prometheus does; `pypiserver` fills the packages folder artifactd imports.
const CLIENT_REQUIREMENTS: &[&str] = &[
    "pip>=25",
    "uv>=0.5",
    "twine==6.1.0",
    "moto[server]>=5",
    "schemathesis==4.32.5",
    "prometheus_client==0.26.0",
    "pypiserver==2.3.2",
    "passlib>=1.7",
];

fn ensure_clients() -> Clients {
    crate::need_python_venv();
    let venv = bin_dir().join("e2e-clients");
    let marker = venv.join("artifactd-clients.txt");
    let want = CLIENT_REQUIREMENTS.join("\n");
    let lock = bin_dir().join("e2e-clients.lock");
    // Several test processes may race here; a directory is created atomically.
    let mut waited = 0;
    while std::fs::create_dir(&lock).is_err() {
        std::thread::sleep(Duration::from_millis(200));
        waited += 1;
        assert!(waited < 1500, "timed out waiting for {}", lock.display());
    }
    let ready = std::fs::read_to_string(&marker).is_ok_and(|m| m == want);
    let result = std::panic::catch_unwind(|| {
        if !ready {
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(CLIENT_REQUIREMENTS)
                .env_remove("PIP_FIND_LINKS"));
            std::fs::write(&marker, &want).expect("marker");
        }
    });
    let _ = std::fs::remove_dir(&lock);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    Clients { venv }
}

/// A command for a Python client with the machine's configuration kept out: no pip or uv
/// configuration, caches and `HOME` in `scratch`, no interaction, no downloads of Pythons.
pub fn isolated(program: &Path, scratch: &Path) -> Command {
    let mut c = Command::new(program);
    for var in [
        "PIP_FIND_LINKS",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "UV_INDEX_URL",
        "UV_DEFAULT_INDEX",
        "UV_EXTRA_INDEX_URL",
        "VIRTUAL_ENV",
        "PYTHONPATH",
    ] {
        c.env_remove(var);
    }
    c.env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("UV_NO_CONFIG", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_CACHE_DIR", scratch.join("uv-cache"))
        .env("PIP_CACHE_DIR", scratch.join("pip-cache"))
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        .env("XDG_DATA_HOME", scratch.join("data"))
        .env("HOME", scratch);
    c
}

/// The shared clients.
pub fn clients() -> &'static Clients {
    static CLIENTS: std::sync::OnceLock<Clients> = std::sync::OnceLock::new();
    CLIENTS.get_or_init(ensure_clients)
}

impl Clients {
    /// A command from the clients' venv (`pip`, `uv`, `twine`), with the machine's pip
    /// configuration kept out.
    pub fn cmd(&self, tool: &str, scratch: &Path) -> Command {
        isolated(&self.venv.join("bin").join(tool), scratch)
    }

    /// `pip --python PY`: the shared pip installing into another environment.
    pub fn pip(&self, scratch: &Path, python: &Path) -> Command {
        let mut c = self.cmd("pip", scratch);
        c.arg("--python").arg(python);
        c
    }

    /// `twine upload --non-interactive --repository-url URL -u __token__ -p TOKEN [EXTRA…] FILES…`.
    pub fn twine_upload(
        &self,
        scratch: &Path,
        url: &str,
        token: &str,
        extra: &[&str],
        files: &[String],
    ) -> Command {
        let mut c = self.cmd("twine", scratch);
        c.args([
            "upload",
            "--non-interactive",
            "--repository-url",
            url,
            "-u",
            "__token__",
            "-p",
            token,
        ])
        .args(extra)
        .args(files);
        c
    }

    /// `uv publish --publish-url URL -u __token__ -p TOKEN [EXTRA…] FILES…`.
    pub fn uv_publish(
        &self,
        scratch: &Path,
        url: &str,
        token: &str,
        extra: &[&str],
        files: &[String],
    ) -> Command {
        let mut c = self.cmd("uv", scratch);
        c.args([
            "publish",
            "--publish-url",
            url,
            "-u",
            "__token__",
            "-p",
            token,
        ])
        .args(extra)
        .args(files);
        c
    }

    /// A new, empty virtualenv at `dir` (made by uv, so it takes milliseconds); returns its python.
    pub fn fresh_venv(&self, dir: &Path, scratch: &Path) -> PathBuf {
        run(self.cmd("uv", scratch).arg("venv").arg("--quiet").arg(dir));
        dir.join("bin/python")
    }
}

/// A wheel of a real project from the package index (downloaded once with pip, kept under the
/// target folder): real-world metadata for tests.
pub fn real_wheel(project: &str, version: &str) -> PathBuf {
    let dir = bin_dir().join("e2e-wheels");
    std::fs::create_dir_all(&dir).expect("wheel folder");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .expect("wheel lock");
    lock.lock().expect("lock the wheel folder");
    let prefix = format!("{}-{version}-", project.replace('-', "_"));
    let find = || {
        std::fs::read_dir(&dir).ok().and_then(|d| {
            d.flatten().map(|e| e.path()).find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
        })
    };
    if let Some(found) = find() {
        return found;
    }
    let scratch = tempfile::tempdir().expect("scratch");
    run(clients()
        .cmd("pip", scratch.path())
        .args([
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
        ])
        .arg(&dir)
        .arg(format!("{project}=={version}")));
    find().unwrap_or_else(|| panic!("pip downloaded no wheel of {project} {version}"))
}
