//! `rpcli apt`: an APT repo's signing key, snapshots and promotion.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, enc, rows};

#[derive(Debug, Subcommand)]
pub enum AptCmd {
    /// Import an armored OpenPGP secret key as the repo's signing key.
    ImportKey {
        /// Repo.
        #[arg(short = 'r', long = "repo")]
        repo: String,
        /// The armored secret key file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Its passphrase (also from ARTIFACTD_KEY_PASSPHRASE).
        #[arg(long, env = "ARTIFACTD_KEY_PASSPHRASE", hide_env_values = true)]
        passphrase: Option<String>,
        /// Days the old key keeps signing too.
        #[arg(long)]
        transition_days: Option<u32>,
    },
    /// Snapshots of a dist: `rpcli apt snapshot create|delete REPO DIST NAME`, `list REPO`.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotCmd,
    },
    /// Copy packages from one dist (or a snapshot of it) to another without re-uploading.
    Promote {
        /// Repo.
        repo: String,
        /// The dist to copy from.
        #[arg(long)]
        from: String,
        /// The dist to copy to.
        #[arg(long)]
        to: String,
        /// Take the packages from this snapshot of the `--from` dist; the target then holds
        /// the snapshot's versions of them (of all when no --package is given).
        #[arg(long)]
        snapshot: Option<String>,
        /// NAME or NAME=VERSION (repeatable); all packages when none is given.
        #[arg(long = "package")]
        packages: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Freeze a dist as it is published now.
    Create {
        /// Repo.
        repo: String,
        /// Dist.
        dist: String,
        /// The snapshot's name.
        name: String,
    },
    /// Delete a snapshot (its package files go with the next `artifactd gc` when no dist
    /// lists them).
    Delete {
        /// Repo.
        repo: String,
        /// Dist.
        dist: String,
        /// The snapshot's name.
        name: String,
    },
    /// The repo's snapshots.
    List {
        /// Repo.
        repo: String,
    },
}

pub fn run(c: &Client, action: &AptCmd, out: &dyn Fn(&Value, String)) -> Result<()> {
    match action {
        AptCmd::ImportKey {
            repo,
            file,
            passphrase,
            transition_days,
        } => {
            let armored = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let r = c.json(
                "PUT",
                &format!("/api/v1/repos/apt/{}/key", enc(repo)),
                Some(&json!({ "armored": armored, "passphrase": passphrase, "transition_days": transition_days })),
            )?;
            out(
                &r,
                format!("imported key {}", r["fingerprint"].as_str().unwrap_or("?")),
            );
        }
        AptCmd::Snapshot {
            action: SnapshotCmd::Create { repo, dist, name },
        } => {
            let r = c.json(
                "POST",
                &format!("/repo/apt/{}/snapshots", enc(repo)),
                Some(&json!({ "dist": dist, "name": name })),
            )?;
            out(
                &r,
                format!(
                    "snapshot {name} of {dist}: {} file(s), {}",
                    r["files"],
                    r["url"].as_str().unwrap_or("")
                ),
            );
        }
        AptCmd::Snapshot {
            action: SnapshotCmd::Delete { repo, dist, name },
        } => {
            let r = c.json(
                "POST",
                &format!("/repo/apt/{}/snapshots/remove", enc(repo)),
                Some(&json!({ "dist": dist, "name": name })),
            )?;
            out(&r, format!("deleted snapshot {name} of {dist}"));
        }
        AptCmd::Snapshot {
            action: SnapshotCmd::List { repo },
        } => {
            let r = c.json("GET", &format!("/repo/apt/{}/snapshots/", enc(repo)), None)?;
            out(&r, rows(&r, "snapshots", &["name", "dist"], " "));
        }
        AptCmd::Promote {
            repo,
            from,
            to,
            snapshot,
            packages,
        } => {
            let r = c.json(
                "POST",
                &format!("/repo/apt/{}/promote", enc(repo)),
                Some(
                    &json!({ "from": from, "to": to, "snapshot": snapshot, "packages": packages }),
                ),
            )?;
            out(
                &r,
                format!(
                    "promoted {} file(s) to {to}, removed {}",
                    r["promoted"], r["removed"]
                ),
            );
        }
    }
    Ok(())
}
