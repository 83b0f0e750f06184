//! `rpcli pypi`: a PyPI repo's snapshots (frozen indexes for release pipelines).

use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, enc, rows};

#[derive(Debug, Subcommand)]
pub enum PypiCmd {
    /// Snapshots of a repo's index: `rpcli pypi snapshot create|delete REPO NAME`, `list REPO`.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// Freeze the repo's index as it is now, served at `/repo/pypi/REPO/snapshots/NAME/`.
    Create {
        /// Repo.
        repo: String,
        /// The snapshot's name.
        name: String,
    },
    /// Delete a snapshot (its files go with the next `artifactd gc` when no record refers to
    /// them).
    Delete {
        /// Repo.
        repo: String,
        /// The snapshot's name.
        name: String,
    },
    /// The repo's snapshots and their index URLs.
    List {
        /// Repo.
        repo: String,
    },
}

pub fn run(c: &Client, action: &PypiCmd, out: &dyn Fn(&Value, String)) -> Result<()> {
    let PypiCmd::Snapshot { action } = action;
    match action {
        SnapshotCmd::Create { repo, name } => {
            let r = c.json(
                "POST",
                &format!("/repo/pypi/{}/snapshots", enc(repo)),
                Some(&json!({ "name": name })),
            )?;
            out(
                &r,
                format!(
                    "snapshot {name}: {} file(s), {}",
                    r["files"],
                    r["url"].as_str().unwrap_or("")
                ),
            );
        }
        SnapshotCmd::Delete { repo, name } => {
            let r = c.json(
                "POST",
                &format!("/repo/pypi/{}/snapshots/remove", enc(repo)),
                Some(&json!({ "name": name })),
            )?;
            out(&r, format!("deleted snapshot {name}"));
        }
        SnapshotCmd::List { repo } => {
            let r = c.json("GET", &format!("/repo/pypi/{}/snapshots/", enc(repo)), None)?;
            out(&r, rows(&r, "snapshots", &["name", "url"], " "));
        }
    }
    Ok(())
}
