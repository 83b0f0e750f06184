//! The HTTP surface the host owns: `/addpkg`, the `/repo/...` mounts, pages and health.

mod api;
mod body;
mod browse;
mod error;
mod extract;
mod pages;
mod respond;
mod upload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use artifactd_plugin_api::{
    DynProvider, IndexScope, InsertOutcome, ListQuery, Principal, Registry, RepoContext,
    ServeRequest, UploadRequest, UploadedFile,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use extract::Query;
use http::header::{CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;

pub use error::ApiError;
use upload::{Limits, SpooledFile};

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
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        registry: Registry,
        db: Db,
        blobs: BlobStore,
        config: Config,
        tmp_dir: PathBuf,
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
            }),
        }
    }

    /// How long request headers may take and a request body may stay idle.
    pub fn read_timeout(&self) -> std::time::Duration {
        self.inner.config.read_timeout
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

    /// Deletes records, republishes the provider's indexes, removes blobs nothing references any
    /// more, and deletes the repo when it is empty and its settings say so. Returns the paths.
    ///
    /// # Errors
    /// Catalog, index and storage failures.
    pub async fn delete_records(
        &self,
        auth: &Auth,
        provider: &DynProvider,
        row: &repo::Model,
        cx: &RepoContext,
        records: Vec<artifactd_plugin_api::FileRecord>,
    ) -> Result<Vec<String>, ApiError> {
        use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
        let mut deleted = Vec::new();
        let mut scopes = Vec::new();
        for r in &records {
            if cx.catalog.delete(&r.scope, &r.path).await? {
                deleted.push(r.path.clone());
                scopes.push(r.scope.clone());
            }
        }
        scopes.sort();
        scopes.dedup();
        self.reindex(provider, row.id, cx, IndexScope::Scopes(scopes))
            .await?;
        let mut shas: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
        shas.sort_unstable();
        shas.dedup();
        for sha in shas {
            let refs = crate::db::entities::file::Entity::find()
                .filter(crate::db::entities::file::Column::Sha256.eq(sha))
                .count(self.inner.db.conn())
                .await?;
            if refs == 0 {
                self.inner.blobs.delete_content(sha).await?;
            }
        }
        self.audit(
            auth,
            "delete",
            Some((&row.provider, &row.name)),
            json!({ "paths": deleted }),
        )
        .await;
        if settings_of(row).delete_empty {
            let left = crate::db::entities::file::Entity::find()
                .filter(crate::db::entities::file::Column::RepoId.eq(row.id))
                .count(self.inner.db.conn())
                .await?;
            if left == 0 {
                crate::db::entities::repo::Entity::delete_by_id(row.id)
                    .exec(self.inner.db.conn())
                    .await?;
                self.inner.db.repos_changed();
                self.inner
                    .blobs
                    .delete_derived(&row.provider, &row.name)
                    .await?;
                tracing::info!(provider = %row.provider, repo = %row.name, "Deleted the empty repo.");
                self.audit(
                    auth,
                    "delete-repo",
                    Some((&row.provider, &row.name)),
                    json!({}),
                )
                .await;
            }
        }
        Ok(deleted)
    }

    async fn generation_of(&self, repo_id: i64) -> Result<i64, ApiError> {
        Ok(crate::catalog::generation_of(self.inner.db.conn(), repo_id).await?)
    }

    /// Runs a provider's index hook, one at a time per repo.
    async fn reindex(
        &self,
        provider: &DynProvider,
        repo_id: i64,
        cx: &RepoContext,
        scope: IndexScope,
    ) -> Result<(), ApiError> {
        let lock = {
            let mut locks = self
                .inner
                .index_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(repo_id).or_default().clone()
        };
        // The change that asked for this publish is committed: the generation now is at least
        // its own. Concurrent uploads queue on the lock; a publish that read the catalog after
        // their commits covers them, and they return without publishing again.
        let needed = self.generation_of(repo_id).await?;
        let mut published = lock.lock().await;
        let scopes: Option<Vec<String>> = match &scope {
            IndexScope::Scopes(s) => Some(s.clone()),
            _ => None,
        };
        if let Some(scopes) = &scopes
            && scopes
                .iter()
                .all(|s| published.covered.get(s).is_some_and(|g| *g >= needed))
        {
            return Ok(());
        }
        let reading_at = self.generation_of(repo_id).await?;
        let started = Instant::now();
        // Across nodes sharing one database, a lock row per repo serializes publishing: each
        // publisher reads the catalog only after the previous one finished, so no index misses
        // a committed file. The lock row has no foreign key, so holding it never blocks uploads
        // or key creation. SQLite is one node's file: the in-process lock is enough.
        let conn = self.inner.db.conn();
        if conn.get_database_backend() == sea_orm::DbBackend::Sqlite {
            provider.index(cx, scope).await?;
        } else {
            use crate::db::entities::publish_lock;
            use sea_orm::{
                ActiveModelTrait as _, EntityTrait as _, QuerySelect as _, TransactionTrait as _,
            };
            let row = publish_lock::ActiveModel {
                repo_id: sea_orm::Set(repo_id),
            };
            if let Err(e) = row.insert(conn).await
                && !matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                )
            {
                return Err(e.into());
            }
            let txn = conn.begin().await?;
            publish_lock::Entity::find_by_id(repo_id)
                .lock_exclusive()
                .one(&txn)
                .await?;
            let result = provider.index(cx, scope).await;
            txn.commit().await?;
            result?;
        }
        // The catalog change bumped the generation before this publish; bump it again now that
        // the published files are in place, so that every node drops what it cached in between.
        crate::catalog::bump(conn, repo_id, 0, 0, None).await?;
        self.inner.db.repos_changed();
        match scopes {
            Some(scopes) => {
                for s in scopes {
                    published.covered.insert(s, reading_at);
                }
            }
            None => published.covered.clear(),
        }
        tracing::info!(provider = provider.kind(), repo = %cx.repo, ms = started.elapsed().as_millis() as u64, "Published index.");
        Ok(())
    }
}

/// Per record scope, the repo generation that the last completed publish of this node read the
/// catalog at: a change committed at or before it is already published.
#[derive(Debug, Default)]
struct Published {
    covered: HashMap<String, i64>,
}

/// The router with every route and middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(healthz))
        .route("/static/style.css", get(pages::style))
        .route("/static/ui.js", get(pages::script))
        .route("/search", get(pages::search_page))
        .route("/login", get(pages::login))
        .route("/ui/{kind}/{repo}/", get(pages::repo_page))
        .route("/ui/{kind}/{repo}/-/{scope}/", get(pages::scope_page))
        .route("/ui/{kind}/{repo}/{package}/", get(pages::package_page))
        .route(
            "/ui/{kind}/{repo}/{package}/delete",
            post(pages::delete_post),
        )
        .route("/ui/{kind}/{repo}/{package}/yank", post(pages::yank_post))
        .route("/addpkg", post(addpkg))
        .route("/repo", get(pages::providers))
        .route("/repo/", get(pages::providers))
        .route("/repo/{*rest}", axum::routing::any(repo_dispatch))
        .nest("/api/v1", api::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_requests))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), body::guard))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn healthz() -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response()
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

async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "Request."
    );
    resp
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

/// The decoded segments of a `/repo/...` path.
#[derive(Debug)]
struct RepoPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

fn parse_repo_path(raw: &str) -> Result<RepoPath, ApiError> {
    let trailing_slash = raw.ends_with('/');
    let mut segments = Vec::new();
    for seg in raw.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("The URL path is not valid UTF-8."))?;
        if decoded == "." || decoded == ".." {
            return Err(ApiError::bad_request(
                "The URL path may not contain '.' or '..' segments.",
            ));
        }
        if decoded
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        {
            return Err(ApiError::bad_request(
                "The URL path may not contain encoded slashes, backslashes or control characters.",
            ));
        }
        segments.push(decoded.into_owned());
    }
    Ok(RepoPath {
        segments,
        trailing_slash,
    })
}

async fn repo_dispatch(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let raw = req
        .uri()
        .path()
        .strip_prefix("/repo/")
        .unwrap_or_default()
        .to_owned();
    let path = parse_repo_path(&raw)?;
    let auth = auth_of(&req);
    let principal = auth.principal.clone();
    let base = st.base_url(req.headers());
    let (kind, name, rest) = match path.segments.as_slice() {
        [] => return pages::providers(State(st), axum::Extension(auth)).await,
        [kind] => {
            let provider = st.inner.registry.get(kind)?.clone();
            return pages::provider_repos(&st, &auth, req.headers(), &provider).await;
        }
        [kind, name, rest @ ..] => (kind.clone(), name.clone(), rest.join("/")),
    };
    let provider = st.inner.registry.get(&kind)?.clone();
    validate_repo_name(&name)?;
    let rest = if path.trailing_slash && !rest.is_empty() {
        format!("{rest}/")
    } else {
        rest
    };
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            if rest.is_empty() && !path.trailing_slash {
                let mut location = format!("/repo/{kind}/{name}/");
                if let Some(q) = req.uri().query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(LOCATION, v);
                }
                return Ok(resp);
            }
            let row = st.repo_for(&auth, &kind, &name, Scope::Read).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let mut sreq = ServeRequest::get(rest);
            sreq.method = method.clone();
            sreq.query = req.uri().query().map(str::to_owned);
            sreq.headers = req.headers().clone();
            let resp = provider.serve(&cx, sreq).await?;
            let mut resp = respond::render(
                &method,
                req.headers(),
                resp,
                st.inner.blobs.store().as_ref(),
                respond::Derived {
                    store: cx.blobs.as_ref(),
                    memo: Some((&st.inner.memo, row.id, row.generation)),
                },
            )
            .await?;
            if cx.settings.private {
                respond::keep_private(&mut resp);
            }
            Ok(resp)
        }
        Method::POST | Method::PUT if is_multipart(req.headers()) => {
            st.authorize(&auth, Some((&kind, &name)), false, Scope::Write)?;
            let query = query_pairs(req.uri().query());
            let (parts, body) = req.into_parts();
            let spooled = upload::spool(
                &parts.headers,
                body,
                &st.inner.tmp_dir,
                Limits {
                    max_bytes: st.inner.config.max_upload_bytes,
                    file_field: None,
                },
            )
            .await?;
            let mut params = query;
            params.extend(spooled.fields);
            let file = spooled
                .file
                .ok_or_else(|| ApiError::bad_request("Missing the package file."))?;
            ingest(
                &st,
                &auth,
                &base,
                &provider,
                &name,
                Some(rest),
                params,
                file,
            )
            .await
        }
        Method::DELETE => {
            let row = st.repo_for(&auth, &kind, &name, Scope::Admin).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let records = cx.catalog.list(ListQuery::path(rest.clone())).await?;
            if records.is_empty() {
                return Err(ApiError::not_found(format!(
                    "There is no file {rest:?} in {kind}/{name}."
                )));
            }
            let deleted = st
                .delete_records(&auth, &provider, &row, &cx, records)
                .await?;
            Ok(axum::Json(json!({ "deleted": deleted })).into_response())
        }
        Method::POST | Method::PUT | Method::PATCH => {
            let row = st.repo_for(&auth, &kind, &name, Scope::Write).await?;
            let cx = st.context(&kind, &name, Some(&row), principal, &base);
            let query = req.uri().query().map(str::to_owned);
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, MAX_JSON_BODY).await.map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body is larger than {MAX_JSON_BODY} bytes; uploads are multipart/form-data."),
                )
            })?;
            let rest_for_audit = rest.clone();
            let mut sreq = ServeRequest::json(method.clone(), rest, body);
            sreq.query = query;
            sreq.headers = parts.headers.clone();
            let resp = provider.serve(&cx, sreq).await?;
            let resp = respond::render(
                &method,
                &parts.headers,
                resp,
                st.inner.blobs.store().as_ref(),
                respond::Derived {
                    store: cx.blobs.as_ref(),
                    memo: None,
                },
            )
            .await?;
            if resp.status().is_success() {
                st.reindex(&provider, row.id, &cx, IndexScope::All).await?;
                st.audit(
                    &auth,
                    "api-call",
                    Some((&kind, &name)),
                    json!({ "method": method.as_str(), "path": rest_for_audit }),
                )
                .await;
            }
            Ok(resp)
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("The method {method} is not allowed here."),
        )),
    }
}

/// Bodies of provider API calls (JSON) are small.
const MAX_JSON_BODY: usize = 1 << 20;

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

async fn addpkg(
    State(st): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Result<Response, ApiError> {
    let auth = auth_of(&req);
    let base = st.base_url(req.headers());
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let kind = param("provider").ok_or_else(|| {
        ApiError::bad_request("Missing the query parameter \"provider\" (e.g. provider=pypi).")
    })?;
    let provider = st.inner.registry.get(&kind)?.clone();
    let name = param("reponame").ok_or_else(|| {
        ApiError::bad_request("Missing the query parameter \"reponame\" (the repo to upload to).")
    })?;
    validate_repo_name(&name)?;
    st.authorize(&auth, Some((provider.kind(), &name)), false, Scope::Write)?;
    let (parts, body) = req.into_parts();
    let spooled = upload::spool(
        &parts.headers,
        body,
        &st.inner.tmp_dir,
        Limits {
            max_bytes: st.inner.config.max_upload_bytes,
            file_field: Some("f"),
        },
    )
    .await?;
    let mut params: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, _)| k != "provider" && k != "reponame")
        .collect();
    params.extend(spooled.fields);
    let file = spooled.file.ok_or_else(|| {
        ApiError::bad_request("Missing the multipart field \"f\" with the package file.")
    })?;
    ingest(&st, &auth, &base, &provider, &name, None, params, file).await
}

fn valid_record_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && p.bytes().all(|b| b.is_ascii_graphic())
}

/// The upload flow shared by `/addpkg` and the providers' own upload protocols.
#[allow(clippy::too_many_arguments)] // One call site per protocol; a struct would only rename them.
async fn ingest(
    st: &AppState,
    auth: &Auth,
    base: &str,
    provider: &DynProvider,
    name: &str,
    native_path: Option<String>,
    params: Vec<(String, String)>,
    file: SpooledFile,
) -> Result<Response, ApiError> {
    let kind = provider.kind();
    let principal = auth.principal.clone();
    let existing = st.inner.db.repo(kind, name).await?;
    let cx = st.context(kind, name, existing.as_ref(), principal.clone(), base);
    let uploaded = UploadedFile::new(
        file.filename.clone(),
        file.temp.to_path_buf(),
        file.size,
        file.sha256.clone(),
    );
    let outcome = provider
        .upload(&cx, UploadRequest::new(native_path, params, uploaded))
        .await?;
    if outcome.records.is_empty() {
        return Err(ApiError::internal(
            "upload hook",
            artifactd_plugin_api::Error::internal_msg(format!(
                "provider {kind} returned no records"
            )),
        ));
    }
    for r in &outcome.records {
        if r.sha256 != file.sha256
            || r.size != file.size
            || !valid_record_path(&r.path)
            || r.scope.len() > 128
            || r.path.len() > 512
        {
            return Err(ApiError::internal(
                "upload hook",
                artifactd_plugin_api::Error::internal_msg(format!(
                    "provider {kind} returned an invalid record for {:?}",
                    r.path
                )),
            ));
        }
        // Refuse a conflict before storing anything; the unique index still decides races.
        if !cx.settings.overwrite {
            let stored = cx
                .catalog
                .list(ListQuery::path(&r.path).in_scope(&r.scope))
                .await?;
            if let Some(s) = stored.iter().find(|s| s.sha256 != r.sha256) {
                return Err(artifactd_plugin_api::Error::Conflict(format!(
                    "File already exists: {} is stored with different content (sha256 {}); the repo does not allow overwrite.",
                    r.path, s.sha256
                ))
                .into());
            }
        }
    }
    st.inner.blobs.put_content(&file.temp, &file.sha256).await?;
    let row = st.inner.db.repo_or_create(kind, name).await?;
    let cx = st.context(kind, name, Some(&row), principal, base);
    let mut done = Vec::new();
    for r in outcome.records {
        done.push(cx.catalog.insert(r).await?);
    }
    let changed: Vec<String> = done
        .iter()
        .filter(|o| o.changed())
        .map(|o| o.record().scope.clone())
        .collect();
    if !changed.is_empty() {
        let mut scopes = changed;
        scopes.sort();
        scopes.dedup();
        st.reindex(provider, row.id, &cx, IndexScope::Scopes(scopes))
            .await?;
    }
    let created = done.iter().any(InsertOutcome::changed);
    let files: Vec<serde_json::Value> = done
        .iter()
        .map(|o| {
            let r = o.record();
            json!({
                "path": r.path,
                "filename": r.path.rsplit('/').next().unwrap_or(&r.path),
                "scope": r.scope,
                "name": r.name,
                "version": r.version,
                "size": r.size,
                "sha256": r.sha256,
                "url": format!("{}{}", cx.base_url, r.path),
                "status": match o { InsertOutcome::Inserted(_) => "created", InsertOutcome::Replaced(_) => "replaced", _ => "exists" },
            })
        })
        .collect();
    let first = done[0].record();
    tracing::info!(provider = kind, repo = name, path = %first.path, created, "Stored upload.");
    let body = json!({
        "provider": kind,
        "repo": name,
        "name": first.name,
        "version": first.version,
        "filename": first.path.rsplit('/').next().unwrap_or(&first.path),
        "size": first.size,
        "sha256": first.sha256,
        "url": format!("{}{}", cx.base_url, first.path),
        "created": created,
        "files": files,
    });
    if created {
        st.audit(
            auth,
            "upload",
            Some((kind, name)),
            json!({ "path": first.path, "sha256": first.sha256 }),
        )
        .await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(body)).into_response())
}
