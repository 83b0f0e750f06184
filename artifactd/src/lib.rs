//! artifactd, the host: HTTP, configuration, the catalog database, blob storage and signing,
//! with package formats plugged in as providers (see `artifactd-plugin-api`).
//!
//! A binary with extra providers is a few lines:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     artifactd::main_with(artifactd::Server::builder().builtin_providers())
//! }
//! ```

pub mod auth;
pub mod backup;
pub mod catalog;
pub mod config;
mod conn;
pub mod db;
pub mod fsck;
pub mod gc;
pub mod http;
pub mod keyring;
pub mod keys;
pub mod metrics;
pub mod proxy;
pub mod repo_spec;
pub mod retention;
mod s3;
pub mod server;
pub mod signer;
pub mod storage;

use std::process::ExitCode;

use clap::Parser as _;

pub use server::{Server, ServerBuilder, StartError};

/// An error and its causes on one line, each said once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        // Some errors repeat their source in their own message; say each part once.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// Parses the command line, starts the server with `builder`'s providers and serves until
/// stopped. Prints `artifactd listening on http://ADDR` on stdout once it accepts connections.
pub fn main_with(builder: ServerBuilder) -> ExitCode {
    let args = config::Args::parse();
    let config = match config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("artifactd: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = if config.debug { "debug" } else { "info" };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARTIFACTD_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(format!("{filter},sqlx=warn,sea_orm=warn"))
            }),
        )
        .with_writer(std::io::stderr);
    match args.log_format {
        config::LogFormat::Json => logs.json().init(),
        config::LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    // One TLS crypto provider for every client (S3, databases): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("artifactd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    type TaskResult = Result<(String, bool), Box<dyn std::error::Error + Send + Sync>>;
    // A task prints its report and exits 0, 1 when it found problems, 2 when it failed.
    let task = |fut: std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult>>>| match rt
        .block_on(fut)
    {
        Ok((report, clean)) => {
            println!("{report}");
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("artifactd: {}", error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    };
    match args.command {
        Some(config::Command::Gc {
            grace_secs,
            dry_run,
        }) => {
            return task(Box::pin(async move {
                Ok((
                    gc::collect(builder, config, grace_secs, dry_run).await?,
                    true,
                ))
            }));
        }
        Some(config::Command::Fsck {
            deep,
            repair,
            grace_secs,
        }) => {
            return task(Box::pin(async move {
                let o = fsck::run(builder, config, deep, repair, grace_secs).await?;
                Ok((o.report, o.clean))
            }));
        }
        Some(config::Command::Export { repos, to }) => {
            return task(Box::pin(async move {
                Ok((backup::export(&config, &repos, &to).await?, true))
            }));
        }
        Some(config::Command::Import {
            provider,
            repo,
            from,
            from_dir,
            from_apt,
            dist,
            component,
            key,
            passphrase,
        }) => {
            return task(Box::pin(async move {
                let usage = "use `import --from EXPORT`, `import pypi REPO --from-dir DIR` or `import apt REPO --from-apt DIR_OR_URL --dist DIST` or `import apt REPO --from-dir DIR --dist DIST`";
                let adopted = match (provider.as_deref(), repo, from, from_dir, from_apt, dist) {
                    (None, None, Some(from), None, None, None) => {
                        return Ok((backup::import(&config, &from).await?, true));
                    }
                    (Some("pypi"), Some(repo), None, Some(dir), None, None) => {
                        let state = builder.build_state(config).await?;
                        state.adopt_pypi_dir(&repo, &dir).await?
                    }
                    (Some("apt"), Some(repo), None, Some(dir), None, Some(dist)) => {
                        let state = builder.build_state(config).await?;
                        let component = component.as_deref().unwrap_or("main");
                        state.adopt_apt_dir(&repo, &dir, &dist, component).await?
                    }
                    (Some("apt"), Some(repo), None, None, Some(at), Some(dist)) => {
                        let key = match key {
                            Some(k) => Some((
                                std::fs::read_to_string(&k).map_err(|e| {
                                    format!("--key: cannot read {}: {e}", k.display())
                                })?,
                                passphrase,
                            )),
                            None => None,
                        };
                        let state = builder.build_state(config).await?;
                        state.adopt_apt(&repo, &at, &dist, key).await?
                    }
                    _ => return Err(usage.into()),
                };
                let clean = adopted.refused.is_empty();
                Ok((adopted.to_string(), clean))
            }));
        }
        Some(config::Command::Serve) | None => {}
    }
    rt.block_on(async move {
        let server = match builder.build(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("artifactd: {}", error_chain(&e));
                return ExitCode::from(2);
            }
        };
        match server.local_addr() {
            Ok(addr) => {
                println!("artifactd listening on http://{addr}");
                tracing::info!(%addr, "Listening.");
            }
            Err(e) => eprintln!("artifactd: {e}"),
        }
        match server.run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("artifactd: {}", error_chain(&e));
                ExitCode::FAILURE
            }
        }
    })
}
