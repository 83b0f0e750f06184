//! `rpcli`: the command-line client of artifactd (uploads, tokens, deletes, settings, keys).
//!
//! Compatible with the seed's calls:
//! `rpcli -s http://localhost:8080 upload -y apt -f FILE -r REPO -p NAME -i VERSION -a dist=trusty`.

mod client;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use client::{Client, enc};

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
    /// Upload one or more package files.
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
    /// APT repository keys.
    Apt {
        #[command(subcommand)]
        action: AptCmd,
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

#[derive(Debug, Subcommand)]
enum RepoCmd {
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
        /// A virtual repo of these members, in order (comma-separated repo names).
        #[arg(long, conflicts_with = "proxy", value_delimiter = ',')]
        r#virtual: Vec<String>,
        /// Hide upstream files younger than this (e.g. 7d) in a proxy or virtual repo.
        #[arg(long)]
        min_age: Option<String>,
    },
    /// Change settings: KEY=VALUE (overwrite, private, delete_empty, min_age, min_age_exempt,
    /// block, allow_upstream, upload_to; lists comma-separated; an empty value clears).
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

#[derive(Debug, Subcommand)]
enum AptCmd {
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
                let r = c.upload(&query, f)?;
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
                let lines: Vec<String> = r["packages"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|x| {
                                format!(
                                    "{}\t{}",
                                    x["name"].as_str().unwrap_or(""),
                                    x["latest"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out(&r, lines.join("\n"));
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
        Cmd::Repo {
            action:
                RepoCmd::Create {
                    target,
                    proxy,
                    ttl,
                    upstream_user,
                    upstream_password,
                    upstream_token,
                    r#virtual,
                    min_age,
                },
        } => {
            let (provider, name) = target
                .split_once('/')
                .with_context(|| format!("{target:?}: name the repo as PROVIDER/NAME"))?;
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
        Cmd::Repo {
            action: RepoCmd::Set { target, pairs },
        } => {
            let (provider, name) = target
                .split_once('/')
                .with_context(|| format!("{target:?}: name the repo as PROVIDER/NAME"))?;
            let mut patch = serde_json::Map::new();
            for pair in pairs {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("{pair:?}: give settings as KEY=VALUE"))?;
                let value = match k {
                    "min_age_exempt" | "block" | "allow_upstream" => json!(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                    ),
                    "private" | "delete_empty" => json!(
                        v.parse::<bool>()
                            .with_context(|| format!("{k} takes true or false"))?
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
        Cmd::Repo {
            action:
                RepoCmd::Settings {
                    provider,
                    repo,
                    overwrite,
                    private,
                    delete_empty,
                },
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
        Cmd::Apt {
            action:
                AptCmd::ImportKey {
                    repo,
                    file,
                    passphrase,
                    transition_days,
                },
        } => {
            let armored = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let r = c.json("PUT", &format!("/api/v1/repos/apt/{}/key", enc(repo)), Some(&json!({ "armored": armored, "passphrase": passphrase, "transition_days": transition_days })))?;
            out(
                &r,
                format!("imported key {}", r["fingerprint"].as_str().unwrap_or("?")),
            );
        }
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
