//! The Debian tools the tests drive (curl, gpgv, dpkg-deb, Chromium and its driver, debootstrap,
//! the database clients, Python's venv): a test asks for what it uses, and what is missing is
//! installed once with `apt-get install` when the suite runs as root. Otherwise the test fails
//! with one sentence naming the package. Installs are serialized across test threads and
//! processes.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::{bin_dir, try_run};

/// Whether `cmd` is on `PATH` (or is a path to an executable file).
fn found(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.contains('/') {
        return executable(Path::new(cmd));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(cmd))))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            == Some("0")
    })
}

/// Makes sure each `(command, Debian package)` is there.
///
/// # Panics
/// When one is missing and cannot be installed.
pub fn need_tools(tools: &[(&str, &str)]) {
    provide(tools, found);
}

/// Makes sure `command` from Debian package `package` is there.
///
/// # Panics
/// When it is missing and cannot be installed.
pub fn need_tool(command: &str, package: &str) {
    need_tools(&[(command, package)]);
}

/// `python3` that can make virtualenvs (Debian splits `venv` into `python3-venv`).
pub fn need_python_venv() {
    provide(&[("python3 with venv", "python3-venv")], |_| {
        found("python3")
            && try_run(Command::new("python3").args(["-c", "import ensurepip, venv"])).0
    });
}

fn provide(tools: &[(&str, &str)], present: impl Fn(&str) -> bool) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let missing = |tools: &[(&str, &str)]| -> Vec<(String, String)> {
        tools
            .iter()
            .filter(|(cmd, _)| !present(cmd))
            .map(|(c, p)| ((*c).to_owned(), (*p).to_owned()))
            .collect()
    };
    if missing(tools).is_empty() {
        return;
    }
    let _guard = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Another test process may be installing too.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(bin_dir().join("e2e-apt-install.lock"))
        .expect("the install lock file");
    lock.lock().expect("lock the install lock file");
    let want = missing(tools);
    if want.is_empty() {
        return;
    }
    let names: Vec<String> = want
        .iter()
        .map(|(c, p)| format!("{c} (Debian package {p})"))
        .collect();
    assert!(
        is_root(),
        "The tests need {}; install it, or run the tests as root and they install it themselves.",
        names.join(", ")
    );
    let packages: Vec<&str> = want.iter().map(|(_, p)| p.as_str()).collect();
    eprintln!("installing {} with apt-get", packages.join(" "));
    let apt = |args: &[&str]| {
        try_run(
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "-q", "-y"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    let (ok, out) = apt(&[&["install", "--no-install-recommends"], &packages[..]].concat());
    if !ok {
        // The package lists may be missing or old on a fresh machine.
        let (_, update) = apt(&["update"]);
        let (ok, again) = apt(&[&["install", "--no-install-recommends"], &packages[..]].concat());
        assert!(
            ok,
            "apt-get install {} failed:\n{out}\n{update}\n{again}",
            packages.join(" ")
        );
    }
    let still = missing(tools);
    assert!(
        still.is_empty(),
        "apt-get installed {} but {:?} is still missing",
        packages.join(" "),
        still
    );
}

/// The Debian package of each command the tests and the benchmark run.
const PACKAGES: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("gpg", "gnupg"),
    ("gpgv", "gpgv"),
    ("dpkg-deb", "dpkg"),
    ("dpkg-source", "dpkg-dev"),
    ("dpkg-distaddfile", "dpkg-dev"),
    ("dpkg-genbuildinfo", "dpkg-dev"),
    ("dpkg-genchanges", "dpkg-dev"),
    ("dput", "dput"),
    ("apt-file", "apt-file"),
    ("mysql", "mariadb-client"),
    ("mysqladmin", "mariadb-client"),
    ("psql", "postgresql-client"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("debootstrap", "debootstrap"),
    ("reprepro", "reprepro"),
    ("aptly", "aptly"),
    ("nginx", "nginx-light"),
    ("wrk", "wrk"),
    ("openssl", "openssl"),
];

/// `Command::new(cmd)` for a Debian tool, installed first when it is missing (see the module
/// documentation).
///
/// # Panics
/// For a command the table does not know, or one that cannot be installed.
pub fn tool(cmd: &str) -> Command {
    let package = PACKAGES
        .iter()
        .find(|(c, _)| *c == cmd)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("the tests do not know which Debian package has {cmd}"));
    need_tool(cmd, package);
    Command::new(cmd)
}
