//! The Python clients at the versions that today's distributions ship, oldest supported to
//! latest: each in a virtualenv of its own, made once under the target folder (with the shared
//! uv, from the package index) and kept while its requirements stay the same. Unpinned ("latest")
//! clients are made anew each month.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{bin_dir, clients, run, try_run};

/// One client at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The command: `pip`, `uv`, `twine`, `poetry`, `pdm`, `hatch`.
    pub tool: &'static str,
    /// The version, or `latest`.
    pub version: &'static str,
    /// Who ships it (for the report).
    pub shipped_by: &'static str,
    /// What goes into its venv.
    pub requirements: &'static [&'static str],
}

/// pip as Debian 11, Ubuntu 22.04, Debian 12, Ubuntu 24.04 and Debian 13 ship it, and the latest.
pub const PIPS: &[Client] = &[
    pip("20.3.4", "Debian 11", &["pip==20.3.4"]),
    pip("22.0.2", "Ubuntu 22.04", &["pip==22.0.2"]),
    pip("23.0.1", "Debian 12", &["pip==23.0.1"]),
    pip("24.0", "Ubuntu 24.04", &["pip==24.0"]),
    pip("25.1.1", "Debian 13", &["pip==25.1.1"]),
    pip("latest", "PyPI", &["pip"]),
];

const fn pip(
    version: &'static str,
    shipped_by: &'static str,
    requirements: &'static [&'static str],
) -> Client {
    Client {
        tool: "pip",
        version,
        shipped_by,
        requirements,
    }
}

/// uv: the last 0.5 release and the latest.
pub const UVS: &[Client] = &[
    Client {
        tool: "uv",
        version: "0.5.31",
        shipped_by: "PyPI (0.5.x)",
        requirements: &["uv==0.5.31"],
    },
    Client {
        tool: "uv",
        version: "latest",
        shipped_by: "PyPI",
        requirements: &["uv"],
    },
];

/// twine as Debian 12 ships it (with Debian 12's versions of what it uploads with), and the
/// latest.
pub const TWINES: &[Client] = &[
    Client {
        tool: "twine",
        version: "4.0.2",
        shipped_by: "Debian 12",
        requirements: &[
            "twine==4.0.2",
            "pkginfo==1.9.6",
            "readme-renderer==37.3",
            "requests==2.28.1",
            "requests-toolbelt==0.10.1",
            "urllib3==1.26.12",
            "importlib-metadata==4.12.0",
            "keyring==23.9.3",
            "rich==13.3.1",
        ],
    },
    Client {
        tool: "twine",
        version: "latest",
        shipped_by: "PyPI",
        requirements: &["twine"],
    },
];

/// The project managers, at their latest releases.
pub const POETRY: Client = Client {
    tool: "poetry",
    version: "latest",
    shipped_by: "PyPI",
    requirements: &["poetry"],
};
/// See [`POETRY`].
pub const PDM: Client = Client {
    tool: "pdm",
    version: "latest",
    shipped_by: "PyPI",
    // pdm's own pins of what it uses: unpinned, a newer hishel breaks it (2.29.4).
    requirements: &["pdm[locked]"],
};
/// See [`POETRY`].
pub const HATCH: Client = Client {
    tool: "hatch",
    version: "latest",
    shipped_by: "PyPI",
    requirements: &["hatch"],
};

/// The interpreter the venvs are made from (resolved once, so that a version manager's shim
/// does not stand in between).
pub fn python3() -> &'static Path {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        crate::need_python_venv();
        let out = run(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]));
        PathBuf::from(out.trim())
    })
}

/// A client's venv.
#[derive(Debug, Clone)]
pub struct ClientEnv {
    /// The client.
    pub client: Client,
    /// The venv.
    pub dir: PathBuf,
}

impl Client {
    /// A short name for folders: `pip-20.3.4`.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.tool, self.version)
    }

    /// The client's venv, made when missing or out of date.
    ///
    /// # Panics
    /// When it cannot be made.
    pub fn env(&self) -> ClientEnv {
        let dir = bin_dir().join("e2e-matrix").join(self.slug());
        let mut want = self.requirements.join("\n");
        if self.requirements.iter().any(|r| !r.contains("==")) {
            // Unpinned: "latest" as of this month.
            want.push_str(&format!("\n# {}", month()));
        }
        let marker = dir.join("artifactd-requirements.txt");
        let lock_path = bin_dir().join(format!("e2e-matrix-{}.lock", self.slug()));
        std::fs::create_dir_all(bin_dir()).expect("target folder");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .expect("venv lock file");
        lock.lock().expect("lock the venv");
        if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
            let _ = std::fs::remove_dir_all(&dir);
            let scratch = tempfile::tempdir().expect("scratch");
            let uv = clients().cmd("uv", scratch.path());
            let mut venv = uv;
            run(venv
                .args(["venv", "--seed", "--quiet", "--python"])
                .arg(python3())
                .arg(&dir));
            run(clients()
                .cmd("uv", scratch.path())
                .args(["pip", "install", "--quiet", "--python"])
                .arg(dir.join("bin/python"))
                .args(self.requirements));
            std::fs::write(&marker, &want).expect("marker");
        }
        ClientEnv { client: *self, dir }
    }
}

/// `YYYY-MM` now (UTC), from the clock; no time crate needed for a month.
fn month() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

impl ClientEnv {
    /// A program of the venv, isolated from the machine's configuration (see
    /// [`crate::isolated`]).
    pub fn cmd(&self, program: &str, scratch: &Path) -> Command {
        let mut c = crate::isolated(&self.dir.join("bin").join(program), scratch);
        // Tools that look for other Pythons find this venv's first.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.join("bin")];
        dirs.extend(std::env::split_paths(&path));
        c.env(
            "PATH",
            std::env::join_paths(dirs).expect("PATH with the venv"),
        );
        c
    }

    /// The version the client reports (`pip --version` and the like), first line.
    pub fn reported_version(&self, scratch: &Path) -> String {
        let (program, args): (&str, &[&str]) = match self.client.tool {
            "pip" => ("python", &["-m", "pip", "--version"]),
            tool => (tool, &["--version"]),
        };
        let (_, out) = try_run(self.cmd(program, scratch).args(args));
        out.lines().next().unwrap_or_default().trim().to_owned()
    }

    /// A copy of this pip's venv at `dir`, to install into (the cached one stays clean);
    /// returns its python.
    pub fn copy_venv(&self, dir: &Path) -> PathBuf {
        run(Command::new("cp").arg("-a").arg(&self.dir).arg(dir));
        dir.join("bin/python")
    }
}
