//! A Debian 13 (trixie) system in a folder, for apt 3.0 and its `sqv` signature checks: made
//! once with `debootstrap --variant=minbase` from Debian's mirror into `$HOME/.cache`, and copied
//! for each test, which then runs `apt-get` in it with `chroot` (the network is the host's, so
//! the server on 127.0.0.1 is reachable).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, tool, try_run};

/// Bump to make the cached system anew.
const LAYOUT: &str = "trixie-minbase-1";
/// Where Debian's packages come from.
const MIRROR: &str = "http://deb.debian.org/debian";

/// A copy of the cached trixie system, removed on drop.
#[derive(Debug)]
pub struct Chroot {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/artifactd/chroots")
}

/// The cached system, made when missing.
fn cached() -> PathBuf {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).expect("chroot cache folder");
    let root = dir.join(LAYOUT);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{LAYOUT}.lock")))
        .expect("chroot lock file");
    lock.lock().expect("lock the chroot cache");
    if root.join(".artifactd-complete").exists() {
        return root;
    }
    let partial = dir.join(format!("{LAYOUT}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    eprintln!(
        "making a Debian 13 system with debootstrap (once; cached in {})",
        dir.display()
    );
    run(tool("debootstrap")
        .args(["--variant=minbase", "trixie"])
        .arg(&partial)
        .arg(MIRROR));
    // Debian's own sources stay out: the tests install only from the server under test.
    let _ = std::fs::remove_file(partial.join("etc/apt/sources.list"));
    let _ = std::fs::remove_file(partial.join("etc/apt/sources.list.d/debian.sources"));
    std::fs::write(partial.join(".artifactd-complete"), LAYOUT).expect("marker");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&partial, &root).expect("move the chroot into place");
    root
}

impl Chroot {
    /// A fresh copy of the trixie system.
    ///
    /// # Panics
    /// When it cannot be made (debootstrap needs root and Debian's mirror).
    pub fn trixie() -> Self {
        let cached = cached();
        let dir = tempfile::Builder::new()
            .prefix("artifactd-chroot-")
            .tempdir()
            .expect("chroot folder");
        let root = dir.path().join("root");
        run(Command::new("cp").arg("-a").arg(&cached).arg(&root));
        Self { _dir: dir, root }
    }

    /// The system's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `contents` to `path` inside the system.
    pub fn write(&self, path: &str, contents: &[u8]) {
        let p = self.root.join(path.trim_start_matches('/'));
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).expect("folder in the chroot");
        }
        std::fs::write(p, contents).expect("file in the chroot");
    }

    /// `apt-get ARGS` inside the system: (success, output).
    pub fn apt_get(&self, args: &[&str]) -> (bool, String) {
        try_run(
            Command::new("chroot")
                .arg(&self.root)
                .arg("apt-get")
                // dpkg's log through a terminal needs /dev/pts, which the chroot lacks.
                .args(["-o", "Dpkg::Use-Pty=0"])
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("LANG", "C.UTF-8"),
        )
    }

    /// A command inside the system: (success, output).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        try_run(
            Command::new("chroot")
                .arg(&self.root)
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        )
    }
}
