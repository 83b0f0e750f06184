//! `rpcli repo`: creating repos (hosted, proxy, virtual) and changing their settings.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{Client, enc};

#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    /// Create a repo: hosted, or with --proxy a proxy of an upstream index.
    Create {
        /// PROVIDER/NAME, e.g. pypi/pypi-org.
        target: String,
        /// The upstream index the proxy serves, e.g. https://pypi.org/simple/.
        #[arg(long)]
        proxy: Option<String>,
        /// How long a proxied page stays fresh (30s, 10m, 12h; default 10m).
        #[arg(long, requires = "proxy")]
        ttl: Option<String>,
        /// The upstream's user name (HTTP Basic).
        #[arg(long, requires = "proxy")]
        upstream_user: Option<String>,
        /// The upstream's password (HTTP Basic).
        #[arg(
            long,
            requires = "proxy",
            env = "ARTIFACTD_UPSTREAM_PASSWORD",
            hide_env_values = true
        )]
        upstream_password: Option<String>,
        /// The upstream's bearer token.
        #[arg(
            long,
            requires = "proxy",
            env = "ARTIFACTD_UPSTREAM_TOKEN",
            hide_env_values = true
        )]
        upstream_token: Option<String>,
        /// The armored public keys the upstream signs with (an APT proxy verifies its
        /// InRelease files with them); a binary keyring is armored on the way.
        #[arg(long, requires = "proxy")]
        keyring: Option<PathBuf>,
        /// A virtual repo of these members, in order (comma-separated repo names).
        #[arg(long, conflicts_with = "proxy", value_delimiter = ',')]
        r#virtual: Vec<String>,
        /// Hide upstream files younger than this (e.g. 7d) in a proxy or virtual repo.
        #[arg(long)]
        min_age: Option<String>,
    },
    /// Mark a project (PEP 792): archived (no uploads), quarantined (no uploads, no files
    /// served), deprecated, or active again.
    Status {
        /// PROVIDER/NAME.
        target: String,
        /// The project.
        project: String,
        /// active, archived, quarantined or deprecated.
        status: String,
        /// Why, shown to clients and on the web page.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change settings: KEY=VALUE (overwrite, private, delete_empty, auto_snapshot, keep_last,
    /// keep_min_age, pins, min_age, min_age_exempt, block, allow_upstream, upload_to; lists
    /// comma-separated, e.g. pins=tool=1.0-1,lib=2.0; an empty value clears).
    Set {
        /// PROVIDER/NAME.
        target: String,
        /// KEY=VALUE pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Show settings, or set them with --overwrite/--private/--delete-empty.
    Settings {
        /// Provider.
        #[arg(short = 'y', long = "provider")]
        provider: String,
        /// Repo.
        #[arg(short = 'r', long = "repo")]
        repo: String,
        /// deny or allow.
        #[arg(long)]
        overwrite: Option<String>,
        /// true or false.
        #[arg(long)]
        private: Option<bool>,
        /// true or false.
        #[arg(long)]
        delete_empty: Option<bool>,
    },
}

/// A keyring file as armored text: armored files as they are, binary ones (OpenPGP packets, as
/// `/usr/share/keyrings/*.gpg`) armored.
fn armored_keyring(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if let Ok(text) = std::str::from_utf8(&bytes)
        && text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    {
        return Ok(text.to_owned());
    }
    artifactd::keyring::armor_binary(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// `PROVIDER/NAME` split.
pub(crate) fn split_target(target: &str) -> Result<(&str, &str)> {
    target
        .split_once('/')
        .with_context(|| format!("{target:?}: name the repo as PROVIDER/NAME"))
}

/// Runs a `repo` command; `out` prints an answer (JSON or the sentence).
pub fn run(c: &Client, action: &RepoCmd, out: &dyn Fn(&Value, String)) -> Result<()> {
    match action {
        RepoCmd::Create {
            target,
            proxy,
            ttl,
            upstream_user,
            upstream_password,
            upstream_token,
            keyring,
            r#virtual,
            min_age,
        } => {
            let (provider, name) = split_target(target)?;
            let mut body = json!({ "provider": provider, "name": name });
            if !r#virtual.is_empty() {
                body["kind"] = json!("virtual");
                body["members"] = json!(r#virtual);
            }
            if let Some(m) = min_age {
                body["settings"] = json!({ "min_age": m });
            }
            if let Some(url) = proxy {
                let mut upstream = json!({ "url": url });
                for (k, v) in [
                    ("ttl", ttl),
                    ("username", upstream_user),
                    ("password", upstream_password),
                    ("token", upstream_token),
                ] {
                    if let Some(v) = v {
                        upstream[k] = json!(v);
                    }
                }
                if let Some(file) = keyring {
                    upstream["keyring"] = json!(armored_keyring(file)?);
                }
                body["kind"] = json!("proxy");
                body["upstream"] = upstream;
            }
            let r = c.json("POST", "/api/v1/repos", Some(&body))?;
            let what = match (r["upstream"]["url"].as_str(), r["members"].as_array()) {
                (Some(url), _) => format!("a proxy of {url}"),
                (_, Some(m)) => format!(
                    "a virtual repo of {}",
                    m.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => "a hosted repo".to_owned(),
            };
            out(&r, format!("created {provider}/{name}, {what}"));
        }
        RepoCmd::Status {
            target,
            project,
            status,
            reason,
        } => {
            let (provider, name) = split_target(target)?;
            let body =
                json!({ "project_status": { project: { "status": status, "reason": reason } } });
            let path = format!("/api/v1/repos/{}/{}/settings", enc(provider), enc(name));
            let r = c.json("PUT", &path, Some(&body))?;
            out(&r, format!("{project} is {status} in {provider}/{name}"));
        }
        RepoCmd::Set { target, pairs } => {
            let (provider, name) = split_target(target)?;
            let mut patch = serde_json::Map::new();
            for pair in pairs {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair:?}: give settings as KEY=VALUE"))?;
                let value = match k {
                    "min_age_exempt" | "block" | "allow_upstream" | "pins" => json!(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                    ),
                    "private" | "delete_empty" | "auto_snapshot" => json!(
                        v.parse::<bool>()
                            .with_context(|| format!("{k} takes true or false"))?
                    ),
                    "keep_last" if !v.is_empty() => json!(
                        v.parse::<u32>()
                            .with_context(|| format!("{k} takes a number of versions"))?
                    ),
                    _ if v.is_empty() => Value::Null,
                    _ => json!(v),
                };
                patch.insert(k.to_owned(), value);
            }
            let path = format!("/api/v1/repos/{}/{}/settings", enc(provider), enc(name));
            let r = c.json("PUT", &path, Some(&Value::Object(patch)))?;
            let shown: Vec<String> = r
                .as_object()
                .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out(&r, shown.join(" "));
        }
        RepoCmd::Settings {
            provider,
            repo,
            overwrite,
            private,
            delete_empty,
        } => {
            let path = format!("/api/v1/repos/{}/{}/settings", enc(provider), enc(repo));
            let mut patch = serde_json::Map::new();
            if let Some(o) = overwrite {
                patch.insert("overwrite".into(), json!(o));
            }
            if let Some(p) = private {
                patch.insert("private".into(), json!(p));
            }
            if let Some(d) = delete_empty {
                patch.insert("delete_empty".into(), json!(d));
            }
            let r = if patch.is_empty() {
                c.json("GET", &path, None)?
            } else {
                c.json("PUT", &path, Some(&Value::Object(patch)))?
            };
            out(
                &r,
                format!(
                    "overwrite={} private={} delete_empty={}",
                    r["overwrite"].as_str().unwrap_or("?"),
                    r["private"],
                    r["delete_empty"]
                ),
            );
        }
    }
    Ok(())
}
