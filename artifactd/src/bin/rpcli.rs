//! `rpcli`: the command-line client of artifactd (uploads, tokens, deletes, settings, keys).
//!
//! Compatible with the seed's calls:
//! `rpcli -s http://localhost:8080 upload -y apt -f FILE -r REPO -p NAME -i VERSION -a dist=trusty`.

use std::fs::File;
use std::io::{Cursor, IsTerminal as _, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

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

struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(cli: &Cli) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            base: cli.server.trim_end_matches('/').to_owned(),
            token: cli.token.clone(),
            agent,
        }
    }

    fn finish(
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<Value> {
        let mut resp = resp.with_context(|| format!("{what}: the server did not answer"))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
        if !status.is_success() {
            let reason = body["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| text.trim().to_owned());
            bail!("{what}: {} {reason}", status.as_u16());
        }
        Ok(body)
    }

    fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let data = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let req = req
            .body(data.into_bytes())
            .context("building the request")?;
        Self::finish(self.agent.run(req), &format!("{method} {path}"))
    }

    /// Streams one file as the multipart field `f` of `/addpkg`.
    fn upload(&self, query: &str, file: &Path) -> Result<Value> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", file.display()))?;
        let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata()?.len();
        let boundary = "rpcli-boundary-4f1c2d9e8a7b";
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            name.replace('"', "")
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + size + tail.len() as u64;
        // A progress bar (bytes, rate, ETA) on a terminal; scripts get the result line only.
        let bar = if std::io::stdout().is_terminal() {
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .context("progress bar template")?
            .progress_chars("=> ");
            indicatif::ProgressBar::with_draw_target(
                Some(size),
                indicatif::ProgressDrawTarget::stdout(),
            )
            .with_style(style)
            .with_message(name.to_owned())
        } else {
            indicatif::ProgressBar::hidden()
        };
        let body = Cursor::new(head.into_bytes())
            .chain(bar.wrap_read(f))
            .chain(Cursor::new(tail.into_bytes()));
        let mut req = self
            .agent
            .post(format!("{}/addpkg?{query}", self.base))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Content-Length", length.to_string())
            // The server answers a refusal (no token, bad repo) before the body is sent.
            .header("Expect", "100-continue");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let result = Self::finish(
            req.send(ureq::SendBody::from_owned_reader(body)),
            &format!("upload {name}"),
        );
        bar.finish_and_clear();
        result
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
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
