//! The benchmark suite: artifactd next to the servers people use instead (pypiserver and
//! devpi-server for PyPI, reprepro and aptly for APT) and next to the physical limits measured in the same run (nginx
//! serving the same pages as static files, `openssl speed` SHA-256, a sequential write with
//! fdatasync), on data generated here. Prints a table with ratios and writes it as JSON and CSV.
//!
//! `cargo run --release -p artifactd-tests --bin bench` (N = 100, 1,000, 10,000; 10 s per load
//! point; `-- --n 100,1000` picks sizes) or `-- --quick` (N = 100, 3 s per point, as CI runs it). Peers come from Debian's
//! packages (nginx-light, wrk, reprepro, aptly) and PyPI (pypiserver, devpi-server), installed
//! when missing. `-- --scale` measures a Debian-sized dist (70,000 packages) and a PyPI-sized
//! index (100,000 projects) instead, generated and imported in bulk.

// Rows, targets and the report files.
mod report;
// Peer servers and tools.
mod peers;
// Generated data and upload helpers.
mod data;
// Physical limits and large uploads.
mod limits;
// The PyPI measurements.
mod pypi;
// The APT measurements.
mod apt;
// A Debian-sized dist and a PyPI-sized index.
mod scale;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artifactd_apt::testing::{Deb, ar, tar_of};
use artifactd_pypi::testing::Dist;
use artifactd_tests::{Apt, Options, Server, bin_dir, run, try_run};

use apt::*;
use data::*;
use limits::*;
use peers::*;
use pypi::*;
use report::*;
use scale::*;

struct Config {
    ns: Vec<usize>,
    secs: u64,
    large: u64,
    huge: u64,
    out: PathBuf,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let ns: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect());
    // `--only pypi` or `--only apt`: one side of the per-N measurements.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    // `--generate N DIR`: only write the data of size N into DIR (wheels/, debs/), for
    // measuring by hand.
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let n = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--generate N DIR");
        let dir = args
            .get(i + 2)
            .map(PathBuf::from)
            .expect("--generate N DIR");
        let data = generate(n, &dir);
        eprintln!("wrote {}", data.dir.display());
        return;
    }
    let cfg = Config {
        ns: ns.unwrap_or_else(|| {
            if quick {
                vec![100]
            } else {
                vec![100, 1_000, 10_000]
            }
        }),
        secs: if quick { 3 } else { 10 },
        large: if quick { 20 << 20 } else { 200 << 20 },
        huge: if quick { 64 << 20 } else { 1 << 30 },
        out: bin_dir().join("bench-results"),
    };
    std::fs::create_dir_all(&cfg.out).expect("out dir");
    // The server under test: the release binary next to this one, built now if stale.
    let target_dir = bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .expect("target dir");
    sh(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "artifactd",
                "--target-dir",
            ])
            .arg(&target_dir),
    );
    ensure_debian(&[
        "nginx-light",
        "wrk",
        "reprepro",
        "aptly",
        "gnupg",
        "curl",
        "openssl",
    ]);
    let venv = peers_venv();
    let scratch = tempfile::Builder::new()
        .prefix("artifactd-bench-")
        .tempdir()
        .expect("scratch");
    let scratch = scratch.path();
    let mut rep = Report::default();
    // `--scale`: only the large repos (`--scale-apt N`, `--scale-pypi N`, 0 skips one).
    if args.iter().any(|a| a == "--scale") {
        let num = |flag: &str, default: usize| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let sc = Scale {
            apt: num("--scale-apt", 70_000),
            pypi: num("--scale-pypi", 100_000),
            secs: cfg.secs,
            mixed_secs: num("--scale-mixed-secs", 60) as u64,
        };
        scale(&mut rep, &sc, &venv, scratch);
        write_report(&rep, &cfg, quick);
        return;
    }

    eprintln!("== limits");
    limits(&mut rep, scratch, cfg.huge);
    eprintln!("== large files");
    large_files(&mut rep, scratch, &cfg);
    eprintln!("== a large file through a proxy");
    proxied_file(&mut rep, scratch, &cfg);
    for &n in &cfg.ns {
        eprintln!("== N = {n}");
        let data = generate(n, scratch);
        if only.is_none_or(|o| o == "pypi") {
            pypi(&mut rep, &cfg, n, &data, &venv, scratch);
        }
        if only.is_none_or(|o| o == "apt") {
            apt(&mut rep, &cfg, n, &data, scratch);
        }
    }
    targets(&mut rep, &cfg);
    write_report(&rep, &cfg, quick);
}
