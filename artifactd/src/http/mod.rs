//! The HTTP surface the host owns: `/addpkg`, the `/repo/...` mounts, pages and health.

mod adopt;
mod api;
mod api_keys;
mod api_repos;
mod body;
mod browse;
mod check;
mod error;
mod extract;
mod forms;
mod incoming;
mod ingest;
mod markdown;
mod members;
mod metrics;
mod observe;
mod package_page;
mod pages;
mod publish;
mod repo_routes;
mod respond;
mod retain;
mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::{Principal, Registry, RepoContext};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::HOST;
use http::{HeaderMap, Method, StatusCode};

pub use adopt::Adopted;
pub use error::ApiError;
use ingest::{Flow, addpkg, ingest};
use publish::Published;
use repo_routes::repo_dispatch;

use crate::auth::{Auth, Scope};
use crate::catalog::DbCatalog;
use crate::config::Config;
use crate::db::entities::repo;
use crate::db::{Db, settings_of};
use crate::signer::{KeyCache, RepoSigner};
use crate::storage::BlobStore;

/// Shared state of the running server.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    db: Db,
    blobs: BlobStore,
    config: Config,
    pages: pages::Pages,
    tmp_dir: PathBuf,
    /// Per repo: the publish lock, holding what the last publishes covered.
    index_locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Published>>>>,
    keys: Arc<KeyCache>,
    /// Small derived blobs read before, per repo generation.
    memo: respond::BlobMemo,
    /// Proxy repos: the upstream client and what this node knows of the cache.
    proxies: crate::proxy::Proxies,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        registry: Registry,
        db: Db,
        blobs: BlobStore,
        config: Config,
        tmp_dir: PathBuf,
        proxies: crate::proxy::Proxies,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                db,
                blobs,
                config,
                pages: pages::Pages::new(),
                tmp_dir,
                index_locks: Mutex::new(HashMap::new()),
                keys: Arc::new(KeyCache::default()),
                memo: respond::BlobMemo::default(),
                proxies,
            }),
        }
    }

    /// How long request headers may take and a request body may stay idle.
    pub fn read_timeout(&self) -> std::time::Duration {
        self.inner.config.read_timeout
    }

    /// What the proxy needs of the server.
    fn proxy_env(&self) -> crate::proxy::Env<'_> {
        crate::proxy::Env {
            db: &self.inner.db,
            blobs: &self.inner.blobs,
            tmp_dir: &self.inner.tmp_dir,
            max_bytes: self.inner.config.max_upload_bytes,
        }
    }

    /// The slowest request body accepted once the read timeout has passed, in bytes/s.
    pub fn min_upload_rate(&self) -> u64 {
        self.inner.config.min_upload_rate
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(b) = &self.inner.config.base_url {
            return b.clone();
        }
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        format!("http://{host}")
    }

    /// The context for a hook on `kind/name`; `row` is `None` for a repo not created yet.
    fn context(
        &self,
        kind: &str,
        name: &str,
        row: Option<&repo::Model>,
        principal: Principal,
        base: &str,
    ) -> RepoContext {
        let settings = row.map(settings_of).unwrap_or_default();
        let catalog = DbCatalog::new(
            self.inner.db.clone(),
            row.map(|r| r.id),
            settings.overwrite,
            principal.label(),
        )
        .with_generation(row.map_or(-1, |r| r.generation));
        RepoContext::new(
            name,
            format!("{base}/repo/{kind}/{name}/"),
            Arc::new(catalog),
            self.inner.blobs.derived(kind, name),
            Arc::new(RepoSigner::new(
                self.inner.db.clone(),
                row.map(|r| r.id),
                format!("artifactd {kind}/{name} signing key"),
                self.inner.keys.clone(),
            )),
        )
        .with_settings(settings)
        .with_principal(principal)
    }

    /// The permission check, in one place for every route: may `auth` do `need` on `kind/name`
    /// (`None`: server-wide, e.g. tokens and the audit log)?
    ///
    /// # Errors
    /// 401 with a Basic challenge for anonymous callers, 403 for tokens without the right.
    pub fn authorize(
        &self,
        auth: &Auth,
        target: Option<(&str, &str)>,
        private: bool,
        need: Scope,
    ) -> Result<(), ApiError> {
        let what = match target {
            Some((k, n)) => format!("{k}/{n}"),
            None => "this server".to_owned(),
        };
        let Some(scope) = auth.scope else {
            let allowed = match need {
                Scope::Read => !private && target.is_some(),
                Scope::Write => self.inner.config.allow_anonymous_upload && target.is_some(),
                Scope::Admin => false,
            };
            return if allowed {
                Ok(())
            } else {
                Err(ApiError::unauthorized(format!(
                    "This needs a token with {need} access to {what}; send it as a Bearer token or as the Basic password."
                )))
            };
        };
        if scope >= need && auth.covers(target) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "The token {:?} does not have {need} access to {what}.",
                auth.principal.label()
            )))
        }
    }

    /// The existing repo `kind/name`, if `auth` may do `need` on it.
    ///
    /// # Errors
    /// 404 for a repo that does not exist; see [`AppState::authorize`].
    pub async fn repo_for(
        &self,
        auth: &Auth,
        kind: &str,
        name: &str,
        need: Scope,
    ) -> Result<repo::Model, ApiError> {
        let row = if need == Scope::Read {
            self.inner.db.repo_for_read(kind, name).await?
        } else {
            self.inner.db.repo(kind, name).await?
        };
        let row = row.ok_or_else(|| {
            ApiError::not_found(format!("There is no {kind} repo named {name:?}."))
        })?;
        self.authorize(auth, Some((kind, name)), settings_of(&row).private, need)?;
        Ok(row)
    }

    /// Whether `auth` may see the repo `r` in listings.
    pub fn can_read(&self, auth: &Auth, r: &repo::Model) -> bool {
        self.authorize(
            auth,
            Some((&r.provider, &r.name)),
            settings_of(r).private,
            Scope::Read,
        )
        .is_ok()
    }

    /// Records a write in the audit log; a failure to record is logged, not returned.
    pub async fn audit(
        &self,
        auth: &Auth,
        action: &str,
        target: Option<(&str, &str)>,
        detail: serde_json::Value,
    ) {
        use sea_orm::ActiveModelTrait as _;
        let (provider, repo) = target.unwrap_or(("", ""));
        let row = crate::db::entities::audit::ActiveModel {
            at: sea_orm::Set(crate::db::now_millis()),
            principal: sea_orm::Set(auth.principal.label()),
            action: sea_orm::Set(action.to_owned()),
            provider: sea_orm::Set(provider.to_owned()),
            repo: sea_orm::Set(repo.to_owned()),
            detail: sea_orm::Set(detail.to_string()),
            ..Default::default()
        };
        if let Err(e) = row.insert(self.inner.db.conn()).await {
            tracing::error!(error = %e, action, "Cannot write the audit log.");
        }
    }
}

/// The router with every route and middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .route("/static/style.css", get(pages::style))
        .route("/static/ui.js", get(pages::script))
        .route("/search", get(pages::search_page))
        .route("/login", get(forms::login))
        .route("/ui/{kind}/{repo}/", get(pages::repo_page))
        .route(
            "/ui/{kind}/{repo}/-/{scope}/",
            get(package_page::scope_page),
        )
        .route(
            "/ui/{kind}/{repo}/{package}/",
            get(package_page::package_page),
        )
        .route(
            "/ui/{kind}/{repo}/{package}/delete",
            post(forms::delete_post),
        )
        .route("/ui/{kind}/{repo}/{package}/yank", post(forms::yank_post))
        .route("/addpkg", post(addpkg))
        .route("/repo", get(pages::providers))
        .route("/repo/", get(pages::providers))
        .route("/repo/{*rest}", axum::routing::any(repo_dispatch))
        .nest("/api/v1", api::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // The metrics have their own token (and no caller): outside authentication.
        .merge(Router::new().route("/metrics", get(metrics::public)))
        .layer(middleware::from_fn_with_state(state.clone(), body::guard))
        .layer(middleware::from_fn(metrics::count))
        .layer(middleware::from_fn(observe::request_id))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// The router of the metrics port (`--metrics-listen`): `/metrics` only.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::own_port))
        .fallback(not_found)
        .with_state(state)
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("The method {method} is not allowed at this URL."),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("There is nothing at this URL.")
}

/// The one place where a request's caller is established; providers only ever see the
/// resulting principal. A token that is presented and not valid is refused here, at once.
async fn authenticate(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    match crate::auth::authenticate(&st.inner.db, req.headers()).await {
        Ok(auth) => {
            req.extensions_mut().insert(auth);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn auth_of(req: &Request) -> Auth {
    req.extensions()
        .get::<Auth>()
        .cloned()
        .unwrap_or_else(Auth::anonymous)
}

/// Repo names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, without `..`.
pub fn validate_repo_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid repo name {name:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'."
        )))
    }
}
