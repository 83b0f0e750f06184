//! Configuration → a started server: providers registered, database migrated, storage open,
//! socket bound. Every failure happens here, at start-up, with the setting named.

use std::net::SocketAddr;

use artifactd_plugin_api::{ProviderFactory, Registry, RegistryError};
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::conn::{Watch, Watched};
use crate::db::{Db, DbStartError};
use crate::http::{AppState, router};
use crate::storage::{BlobStore, StorageStartError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A provider could not be registered.
    #[error("provider registration failed")]
    Registry(#[from] RegistryError),
    /// The database is unusable.
    #[error("--database/DATABASE_URL: {0}")]
    Db(#[from] DbStartError),
    /// The blob store is unusable.
    #[error("blob storage (--s3/S3_URL or --data-dir): {0}")]
    Storage(#[from] StorageStartError),
    /// The data folder cannot be created.
    #[error("--data-dir/ARTIFACTD_DATA_DIR: cannot create {path}")]
    DataDir {
        /// The folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The repos file cannot be read or applied.
    #[error("--repos-file/ARTIFACTD_REPOS_FILE: {0}")]
    ReposFile(String),
    /// The HTTP client for proxy upstreams cannot be built.
    #[error("cannot set up the HTTP client for proxy upstreams")]
    Http(#[source] reqwest::Error),
    /// The listen address is taken or not allowed.
    #[error("--metrics-listen/ARTIFACTD_METRICS_LISTEN: cannot listen on {addr}")]
    MetricsBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--listen/--port: cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Collects the providers a server will mount.
#[derive(Debug, Default)]
pub struct ServerBuilder {
    factories: Vec<ProviderFactory>,
}

impl ServerBuilder {
    /// Adds a provider.
    pub fn provider(mut self, factory: ProviderFactory) -> Self {
        self.factories.push(factory);
        self
    }

    /// Adds the providers that ship with artifactd (pypi, apt).
    pub fn builtin_providers(self) -> Self {
        self.provider(artifactd_pypi::factory())
            .provider(artifactd_apt::factory())
    }

    /// Starts everything but the accept loop.
    ///
    /// # Errors
    /// [`StartError`] naming the setting at fault.
    pub async fn build(self, config: Config) -> Result<Server, StartError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::MetricsBind { addr, source })?,
            ),
            None => None,
        };
        let state = self.build_state(config).await?;
        Ok(Server {
            listener,
            metrics,
            state,
        })
    }

    /// Everything a server has but its socket, for work without one (`artifactd gc`).
    ///
    /// # Errors
    /// [`StartError`] naming the setting at fault.
    pub async fn build_state(self, config: Config) -> Result<AppState, StartError> {
        let mut registry = Registry::new();
        for f in &self.factories {
            registry.register(f)?;
        }
        let tmp_dir = config.data_dir.join("tmp");
        std::fs::create_dir_all(&tmp_dir).map_err(|source| StartError::DataDir {
            path: tmp_dir.display().to_string(),
            source,
        })?;
        let db = Db::open(&config.database_url).await?;
        crate::auth::bootstrap(&db, config.admin_token.as_deref())
            .await
            .map_err(|e| StartError::Db(DbStartError::Migrate(e)))?;
        if config.allow_anonymous_upload {
            tracing::warn!(
                "Anonymous uploads are allowed (--allow-anonymous-upload): anyone who reaches this server can publish packages."
            );
        }
        if let Some(path) = &config.repos_file {
            let specs = crate::repo_spec::read_file(path).map_err(StartError::ReposFile)?;
            let done = crate::repo_spec::apply_file(&registry, &db, &specs)
                .await
                .map_err(|e| StartError::ReposFile(format!("{}: {e}", path.display())))?;
            tracing::info!(file = %path.display(), "Repos file applied: {done}.");
        }
        let blobs = BlobStore::open(&config.blobs).await?;
        let proxies = crate::proxy::Proxies::new().map_err(StartError::Http)?;
        Ok(AppState::new(registry, db, blobs, config, tmp_dir, proxies))
    }
}

/// A server ready to accept connections.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// The metrics port's listener, with `--metrics-listen`.
    metrics: Option<TcpListener>,
    state: AppState,
}

impl Server {
    /// A builder with no providers.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    ///
    /// # Errors
    /// I/O errors of the accept loop.
    pub async fn run(self) -> std::io::Result<()> {
        let timeout = self.state.read_timeout();
        if let Some(listener) = self.metrics {
            let app = crate::http::metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "The metrics port stopped.");
                }
            });
        }
        let app = router(self.state);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        // A client that does not finish its request headers in time is dropped (slow-loris),
        // which also ends idle keep-alive connections; slow bodies are timed in the router.
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(timeout)
            .max_buf_size(64 << 10);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors or a reset before accept: keep serving.
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let watch = Watch::default();
            let service = hyper_util::service::TowerToHyperService::new(Watching {
                app: app.clone(),
                watch: watch.clone(),
            });
            let stream = Watched::new(stream, watch);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "Connection ended with an error.");
                }
            });
        }
        graceful.shutdown().await;
        Ok(())
    }
}

/// The router with the connection's [`Watch`] in every request's extensions.
#[derive(Debug, Clone)]
struct Watching {
    app: axum::Router,
    watch: Watch,
}

impl tower_service::Service<hyper::Request<hyper::body::Incoming>> for Watching {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future =
        <axum::Router as tower_service::Service<hyper::Request<hyper::body::Incoming>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<hyper::Request<hyper::body::Incoming>>::poll_ready(
            &mut self.app,
            cx,
        )
    }

    fn call(&mut self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.watch.clone());
        self.app.call(req)
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("Shutting down.");
}
