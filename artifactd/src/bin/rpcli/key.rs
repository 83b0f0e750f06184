//! `rpcli key`: a repo's signing keys and their rotation.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, enc};
use crate::repo::split_target;

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// The keys that sign the repo now.
    List {
        /// PROVIDER/NAME, e.g. apt/ubuntu.
        target: String,
    },
    /// Start a rotation: a new key (generated, or --import'ed) signs next to the current one,
    /// and the repo serves both public keys, until one is retired.
    Add {
        /// PROVIDER/NAME.
        target: String,
        /// An armored secret key to use instead of a generated one.
        #[arg(long)]
        import: Option<PathBuf>,
        /// Its passphrase (also from ARTIFACTD_KEY_PASSPHRASE).
        #[arg(long, env = "ARTIFACTD_KEY_PASSPHRASE", hide_env_values = true)]
        passphrase: Option<String>,
    },
    /// End a key: the repo signs with the other one alone.
    Retire {
        /// PROVIDER/NAME.
        target: String,
        /// The key's fingerprint (from `rpcli key list`).
        fingerprint: String,
    },
}

fn describe(r: &Value) -> String {
    r["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    format!(
                        "{} {}",
                        k["fingerprint"].as_str().unwrap_or("?"),
                        k["role"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Runs a `key` command; `out` prints an answer (JSON or the sentence).
pub fn run(c: &Client, action: &KeyCmd, out: &dyn Fn(&Value, String)) -> Result<()> {
    let path = |target: &str| -> Result<String> {
        let (provider, name) = split_target(target)?;
        Ok(format!(
            "/api/v1/repos/{}/{}/keys",
            enc(provider),
            enc(name)
        ))
    };
    match action {
        KeyCmd::List { target } => {
            let r = c.json("GET", &path(target)?, None)?;
            out(&r, describe(&r));
        }
        KeyCmd::Add {
            target,
            import,
            passphrase,
        } => {
            let body = match import {
                Some(file) => {
                    let armored = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    json!({ "armored": armored, "passphrase": passphrase })
                }
                None => json!({}),
            };
            let r = c.json("POST", &path(target)?, Some(&body))?;
            out(
                &r,
                format!(
                    "added key {}; both keys sign until one is retired:\n{}",
                    r["fingerprint"].as_str().unwrap_or("?"),
                    describe(&r)
                ),
            );
        }
        KeyCmd::Retire {
            target,
            fingerprint,
        } => {
            let r = c.json(
                "DELETE",
                &format!("{}/{}", path(target)?, enc(fingerprint)),
                None,
            )?;
            out(
                &r,
                format!(
                    "retired key {}; the repo signs with:\n{}",
                    r["retired"].as_str().unwrap_or("?"),
                    describe(&r)
                ),
            );
        }
    }
    Ok(())
}
