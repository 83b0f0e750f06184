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
    if let Some(config::Command::Gc {
        grace_secs,
        dry_run,
    }) = args.command
    {
        return rt.block_on(async move {
            match gc::collect(builder, config, grace_secs, dry_run).await {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("artifactd: {}", error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            }
        });
    }
    if let Some(config::Command::Fsck {
        deep,
        repair,
        grace_secs,
    }) = args.command
    {
        return rt.block_on(async move {
            match fsck::run(builder, config, deep, repair, grace_secs).await {
                Ok(outcome) => {
                    println!("{}", outcome.report);
                    if outcome.clean {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("artifactd: {}", error_chain(e.as_ref()));
                    ExitCode::from(2)
                }
            }
        });
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
