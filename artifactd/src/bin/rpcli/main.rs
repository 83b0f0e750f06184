//! `rpcli`: the command-line client of artifactd (uploads, tokens, deletes, settings, keys).
//!
//! Compatible with the seed's calls:
//! `rpcli -s http://localhost:8080 upload -y apt -f FILE -r REPO -p NAME -i VERSION -a dist=trusty`.

mod apt;
mod client;
mod key;
mod pypi;
mod repo;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use apt::AptCmd;
use client::{Client, enc};
use key::KeyCmd;
use pypi::PypiCmd;
use repo::RepoCmd;

#[derive(Debug, Parser)]
#[command(name = "rpcli", version, about = "Command-line client for artifactd.")]
struct Cli {
    /// The server, e.g. http://localhost:8080.
    #[arg(
        short = 's',
        long = "server",
        env = "ARTIFACTD_URL",
        default_value = "http://localhost:8080",
        global = true
    )]
    server: String,
    /// An API token (sent as a Bearer token).
    #[arg(long, env = "ARTIFACTD_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Upload one or more package files (a Debian source package: its .dsc, which sends the
    /// files it lists along).
    Upload {
        /// Provider: pypi, apt, …
        #[arg(short = 'y', long = "provider")]
        provider: String,
        /// Files to upload.
        #[arg(short = 'f', long = "file", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Repo name (created on first upload).
        #[arg(short = 'r', long = "repo")]
        repo: String,
        /// Package name (optional: read from the file).
        #[arg(short = 'p', long = "package")]
        name: Option<String>,
        /// Version (optional: read from the file).
        #[arg(short = 'i', long = "version")]
        version: Option<String>,
        /// Provider parameters, e.g. -a dist=bookworm -a component=main.
        #[arg(short = 'a', long = "arg", value_name = "KEY=VALUE")]
        args: Vec<String>,
    },
    /// List repos; with -y/-r a repo's packages; with -p too, a package's versions.
    List {
        /// Provider.
        #[arg(short = 'y', long = "provider")]
        provider: Option<String>,
        /// Repo.
        #[arg(short = 'r', long = "repo")]
        repo: Option<String>,
        /// Package name.
        #[arg(short = 'p', long = "package")]
        name: Option<String>,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCmd,
    },
    /// Delete a package, or one version of it.
    Delete {
        /// Provider.
        #[arg(short = 'y', long = "provider")]
        provider: String,
        /// Repo.
        #[arg(short = 'r', long = "repo")]
        repo: String,
        /// Package name.
        #[arg(short = 'p', long = "package")]
        name: String,
        /// Only this version.
        #[arg(short = 'i', long = "version")]
        version: Option<String>,
    },
    /// Yank (or with --undo, un-yank) a PyPI version or file.
    Yank {
        /// Repo.
        #[arg(short = 'r', long = "repo")]
        repo: String,
        /// Project name.
        #[arg(short = 'p', long = "package")]
        name: String,
        /// The version to yank.
        #[arg(short = 'i', long = "version")]
        version: Option<String>,
        /// One file instead of a whole version.
        #[arg(long)]
        filename: Option<String>,
        /// Why (shown by pip).
        #[arg(long)]
        reason: Option<String>,
        /// Un-yank.
        #[arg(long)]
        undo: bool,
    },
    /// Show or change a repo's settings.
    Repo {
        #[command(subcommand)]
        action: RepoCmd,
    },
    /// APT repos: signing key, snapshots, promotion.
    Apt {
        #[command(subcommand)]
        action: AptCmd,
    },
    /// PyPI repos: snapshots.
    Pypi {
        #[command(subcommand)]
        action: PypiCmd,
    },
    /// A repo's signing keys: list, add (rotation), retire.
    Key {
        #[command(subcommand)]
        action: KeyCmd,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token; its secret is printed once.
    Create {
        /// A name for it.
        name: String,
        /// read, write or admin.
        #[arg(long, default_value = "read")]
        scope: String,
        /// Limit it to provider/repo patterns (repeatable; * is a wildcard).
        #[arg(long = "repo")]
        repos: Vec<String>,
        /// Days until it expires.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id.
        id: i64,
    },
}

fn run(cli: &Cli) -> Result<()> {
    let c = Client::new(cli);
    let out = |v: &Value, text: String| {
        if cli.json {
            println!("{v}");
        } else {
            println!("{text}");
        }
    };
    match &cli.command {
        Cmd::Upload {
            provider,
            files,
            repo,
            name,
            version,
            args,
        } => {
            if files.len() > 1 && (name.is_some() || version.is_some()) {
                bail!("-p/-i name one package; leave them out to upload several files");
            }
            let mut query = format!("provider={}&reponame={}", enc(provider), enc(repo));
            if let Some(n) = name {
                query.push_str(&format!("&name={}", enc(n)));
            }
            if let Some(v) = version {
                query.push_str(&format!("&version={}", enc(v)));
            }
            for a in args {
                let (k, v) = a
                    .split_once('=')
                    .with_context(|| format!("-a {a:?}: use KEY=VALUE"))?;
                query.push_str(&format!("&{}={}", enc(k), enc(v)));
            }
            for f in files {
                // A Debian source package goes as its .dsc and the files it lists, together.
                let mut form = vec![f.clone()];
                if f.extension().is_some_and(|e| e == "dsc") {
                    form.extend(client::dsc_companions(f)?);
                }
                let r = c.upload(&query, &form)?;
                let verb = if r["created"].as_bool() == Some(true) {
                    "stored"
                } else {
                    "already there"
                };
                out(
                    &r,
                    format!(
                        "{} {} {} {verb}: {}",
                        r["name"].as_str().unwrap_or("?"),
                        r["version"].as_str().unwrap_or("?"),
                        r["filename"].as_str().unwrap_or("?"),
                        r["url"].as_str().unwrap_or("")
                    ),
                );
            }
        }
        Cmd::List {
            provider,
            repo,
            name,
        } => match (provider, repo, name) {
            (p, None, None) => {
                let path = match p {
                    Some(p) => format!("/api/v1/repos?provider={}", enc(p)),
                    None => "/api/v1/repos".to_owned(),
                };
                let r = c.json("GET", &path, None)?;
                let lines: Vec<String> = r["repos"]
                    .as_array()
                    .map(|rs| {
                        rs.iter()
                            .map(|x| {
                                format!(
                                    "{}/{}\t{} files\t{} bytes",
                                    x["provider"].as_str().unwrap_or(""),
                                    x["name"].as_str().unwrap_or(""),
                                    x["files"],
                                    x["size"]
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out(&r, lines.join("\n"));
            }
            (Some(p), Some(repo), None) => {
                let r = c.json(
                    "GET",
                    &format!(
                        "/api/v1/repos/{}/{}/packages?per_page=500",
                        enc(p),
                        enc(repo)
                    ),
                    None,
                )?;
                out(&r, client::rows(&r, "packages", &["name", "latest"], "\t"));
            }
            (Some(p), Some(repo), Some(n)) => {
                let r = c.json(
                    "GET",
                    &format!("/api/v1/repos/{}/{}/packages/{}", enc(p), enc(repo), enc(n)),
                    None,
                )?;
                let mut lines = Vec::new();
                for v in r["versions"].as_array().into_iter().flatten() {
                    for f in v["files"].as_array().into_iter().flatten() {
                        lines.push(format!(
                            "{}\t{}\t{}",
                            v["version"].as_str().unwrap_or(""),
                            f["filename"].as_str().unwrap_or(""),
                            f["sha256"].as_str().unwrap_or("")
                        ));
                    }
                }
                out(&r, lines.join("\n"));
            }
            _ => bail!("list takes nothing, -y and -r, or -y, -r and -p"),
        },
        Cmd::Token { action } => match action {
            TokenCmd::Create {
                name,
                scope,
                repos,
                expires_in_days,
            } => {
                let r = c.json("POST", "/api/v1/tokens", Some(&json!({ "name": name, "scope": scope, "repos": repos, "expires_in_days": expires_in_days })))?;
                out(&r, r["token"].as_str().unwrap_or_default().to_owned());
            }
            TokenCmd::List => {
                let r = c.json("GET", "/api/v1/tokens", None)?;
                let lines: Vec<String> = r["tokens"]
                    .as_array()
                    .map(|ts| {
                        ts.iter()
                            .map(|t| {
                                format!(
                                    "{}\t{}\t{}\t{}{}",
                                    t["id"],
                                    t["name"].as_str().unwrap_or(""),
                                    t["scope"].as_str().unwrap_or(""),
                                    t["repos"],
                                    if t["revoked"] == true {
                                        "\trevoked"
                                    } else {
                                        ""
                                    }
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out(&r, lines.join("\n"));
            }
            TokenCmd::Revoke { id } => {
                let r = c.json("DELETE", &format!("/api/v1/tokens/{id}"), None)?;
                out(&r, format!("revoked token {id}"));
            }
        },
        Cmd::Delete {
            provider,
            repo,
            name,
            version,
        } => {
            let mut path = format!(
                "/api/v1/repos/{}/{}/packages/{}",
                enc(provider),
                enc(repo),
                enc(name)
            );
            if let Some(v) = version {
                path.push('/');
                path.push_str(&enc(v));
            }
            let r = c.json("DELETE", &path, None)?;
            let n = r["deleted"].as_array().map_or(0, Vec::len);
            out(&r, format!("deleted {n} file(s)"));
        }
        Cmd::Yank {
            repo,
            name,
            version,
            filename,
            reason,
            undo,
        } => {
            if version.is_none() && filename.is_none() {
                bail!("name the version (-i) or the file (--filename) to yank");
            }
            let body = json!({ "project": name, "version": version, "filename": filename, "reason": reason, "yanked": !undo });
            let r = c.json(
                "POST",
                &format!("/repo/pypi/{}/-/yank", enc(repo)),
                Some(&body),
            )?;
            let n = r["files"].as_array().map_or(0, Vec::len);
            out(
                &r,
                format!("{} {n} file(s)", if *undo { "un-yanked" } else { "yanked" }),
            );
        }
        Cmd::Repo { action } => repo::run(&c, action, &out)?,
        Cmd::Apt { action } => apt::run(&c, action, &out)?,
        Cmd::Pypi { action } => pypi::run(&c, action, &out)?,
        Cmd::Key { action } => key::run(&c, action, &out)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpcli: {e:#}");
            ExitCode::FAILURE
        }
    }
}
