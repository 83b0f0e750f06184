//! The end-to-end harness: a [`Server`] owns a real `artifactd` process on `127.0.0.1:0` with its
//! own temporary data folder, and speaks HTTP to it; nothing is shared between tests.

mod apt;
mod browser;
mod chroot;
mod db;
pub mod matrix;
mod provision;
mod proxy;
mod python;
mod s3;
mod server;
mod tls;
mod upstream;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use apt::{Apt, dpkg_changes, dpkg_deb, dpkg_deb_with, dpkg_source};
pub use browser::Browser;
pub use chroot::Chroot;
pub use db::{Backend, backends, fresh_database};
pub use provision::{need_python_venv, need_tool, need_tools, tool};
pub use proxy::TcpProxy;
pub use python::{Clients, clients, isolated, real_wheel};
pub use s3::{GARAGE_REGION, S3Server};
pub use server::{Options, Resp, Server, addpkg_raw};
pub use tls::TlsFront;
pub use upstream::{Route, Upstream};

/// The SHA-256 of `bytes` in lowercase hex, as `Release` files and PyPI links name it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The folder the workspace's binaries are built into (next to this test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> (tests) or target/<profile>/bench → target/<profile>
    let dir = exe.parent().expect("target profile folder");
    if dir.ends_with("deps") {
        dir.parent().expect("target profile folder").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of the workspace, which `cargo test --workspace` builds before running tests.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing; run the suite with `cargo test --workspace`, which builds it",
        p.display()
    );
    p
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A gzip member with the given payload bytes (enough for magic-number checks).
pub fn fake_gzip(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    v.extend_from_slice(payload);
    v
}

/// Runs a command and returns (success, stdout + stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Where tests leave files for people to look at (screenshots): `<target>/test-output/<area>`.
pub fn output_dir(area: &str) -> PathBuf {
    let dir = bin_dir()
        .parent()
        .map_or_else(bin_dir, Path::to_path_buf)
        .join("test-output")
        .join(area);
    std::fs::create_dir_all(&dir).expect("test output folder");
    dir
}
