//! The JSON API (`/api/v1`): tokens, the audit log, repo settings and package deletion.
//! Every error is `{"error": "..."}` (see `error.rs`); every call is checked by
//! [`AppState::authorize`].

use artifactd_plugin_api::{ListQuery, RepoSettings};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use sea_orm::{
    ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _, QueryOrder as _,
    QuerySelect as _, Set,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Path, Query};
use super::{ApiError, AppState, validate_repo_name};
use crate::auth::{self, Auth, Scope};
use crate::db::entities::{audit, repo, token};
use crate::db::{now_millis, settings_of};

fn bad_json(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("The request body is not the expected JSON: {e}."))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(bad_json)
}

/// The routes, mounted at `/api/v1`.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{delete, get};
    axum::Router::new()
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/audit", get(read_audit))
        .route("/openapi.json", get(openapi))
        .route("/search", get(search))
        .route("/repos", get(list_repos).post(create_repo))
        .route(
            "/repos/{provider}/{repo}",
            get(get_repo).delete(delete_repo),
        )
        .route("/repos/{provider}/{repo}/packages", get(list_packages))
        .route(
            "/repos/{provider}/{repo}/packages/{name}",
            get(package_versions).delete(delete_package),
        )
        .route(
            "/repos/{provider}/{repo}/key",
            axum::routing::put(import_key),
        )
        .route(
            "/repos/{provider}/{repo}/settings",
            get(get_settings).put(put_settings),
        )
        .route(
            "/repos/{provider}/{repo}/packages/{name}/{version}",
            delete(delete_version),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scope: String,
    #[serde(default)]
    repos: Vec<String>,
    /// Days until it expires.
    expires_in_days: Option<u32>,
}

fn token_json(t: &token::Model) -> Value {
    json!({
        "id": t.id, "name": t.name, "scope": t.scope,
        "repos": serde_json::from_str::<Value>(&t.repos).unwrap_or(json!([])),
        "created_at": t.created_at, "expires_at": t.expires_at, "revoked": t.revoked_at.is_some(),
    })
}

async fn create_token(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    st.authorize(&a, None, false, Scope::Admin)?;
    let req: NewToken = parse(&body)?;
    let scope = Scope::parse(&req.scope)
        .ok_or_else(|| ApiError::bad_request("The scope must be read, write or admin."))?;
    if req.name.trim().is_empty()
        || req.name.chars().count() > 128
        || req.name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "The token name must be 1 to 128 printable characters.",
        ));
    }
    for p in &req.repos {
        let ok = p
            .split_once('/')
            .is_some_and(|(k, r)| !k.is_empty() && !r.is_empty() && !r.contains('/'))
            && p.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'*')
            });
        if !ok {
            return Err(ApiError::bad_request(format!(
                "The repo pattern {p:?} must be provider/repo, with * as a wildcard."
            )));
        }
    }
    if req.expires_in_days.is_some_and(|d| d > 36_500) {
        return Err(ApiError::bad_request(
            "expires_in_days must be at most 36500 (100 years).",
        ));
    }
    let expires_at = req
        .expires_in_days
        .map(|d| now_millis() + i64::from(d) * 86_400_000);
    let secret = auth::new_secret();
    let row = auth::create(
        &st.inner.db,
        &req.name,
        &secret,
        scope,
        &req.repos,
        expires_at,
    )
    .await?;
    st.audit(
        &a,
        "token-create",
        None,
        json!({ "id": row.id, "name": row.name, "scope": row.scope }),
    )
    .await;
    let mut out = token_json(&row);
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list_tokens(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
) -> Result<Response, ApiError> {
    st.authorize(&a, None, false, Scope::Admin)?;
    let rows = token::Entity::find()
        .order_by_asc(token::Column::Id)
        .all(st.inner.db.conn())
        .await?;
    Ok(Json(json!({ "tokens": rows.iter().map(token_json).collect::<Vec<_>>() })).into_response())
}

async fn revoke_token(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    st.authorize(&a, None, false, Scope::Admin)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("The token id must be a number."))?;
    let row = token::Entity::find_by_id(id)
        .one(st.inner.db.conn())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("There is no token {id}.")))?;
    let mut am = row.into_active_model();
    am.revoked_at = Set(Some(now_millis()));
    let row = am.update(st.inner.db.conn()).await?;
    st.audit(&a, "token-revoke", None, json!({ "id": id }))
        .await;
    Ok(Json(token_json(&row)).into_response())
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<u64>,
}

async fn read_audit(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Query(p): Query<Paging>,
) -> Result<Response, ApiError> {
    st.authorize(&a, None, false, Scope::Admin)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 1000."));
    }
    let rows = audit::Entity::find()
        .order_by_desc(audit::Column::Id)
        .limit(limit)
        .all(st.inner.db.conn())
        .await?;
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "at": artifactd_plugin_api::time::rfc3339_millis(r.at), "principal": r.principal,
                "action": r.action, "provider": r.provider, "repo": r.repo,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })).into_response())
}

fn settings_json(s: &RepoSettings) -> Value {
    json!({
        "overwrite": if s.overwrite { "allow" } else { "deny" },
        "private": s.private,
        "delete_empty": s.delete_empty,
    })
}

/// An existing repo the caller administers (after checking the provider and name).
async fn admin_repo(
    st: &AppState,
    a: &Auth,
    provider: &str,
    name: &str,
) -> Result<repo::Model, ApiError> {
    st.inner.registry.get(provider)?;
    validate_repo_name(name)?;
    st.repo_for(a, provider, name, Scope::Admin).await
}

async fn get_settings(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    Ok(Json(settings_json(&settings_of(&row))).into_response())
}

/// `PUT` settings: any of `overwrite` (deny|allow), `private`, `delete_empty`. Creates the repo
/// when it does not exist yet.
async fn put_settings(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Path((provider, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    st.inner.registry.get(&provider)?;
    validate_repo_name(&name)?;
    st.authorize(&a, Some((&provider, &name)), false, Scope::Admin)?;
    let patch: serde_json::Map<String, Value> = parse(&body)?;
    let row = st.inner.db.repo_or_create(&provider, &name).await?;
    let mut settings = settings_of(&row);
    apply_settings(&mut settings, &patch)?;
    let generation = row.generation;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&settings).map_err(|e| ApiError::internal("settings", e))?);
    am.generation = Set(generation + 1);
    am.update(st.inner.db.conn()).await?;
    st.inner.db.repos_changed();
    st.audit(
        &a,
        "settings",
        Some((&provider, &name)),
        settings_json(&settings),
    )
    .await;
    Ok(Json(settings_json(&settings)).into_response())
}

async fn delete_matching(
    st: &AppState,
    a: &Auth,
    provider: &str,
    name: &str,
    package: &str,
    version: Option<&str>,
    base: String,
) -> Result<Response, ApiError> {
    let row = admin_repo(st, a, provider, name).await?;
    let p = st.inner.registry.get(provider)?.clone();
    let cx = st.context(provider, name, Some(&row), a.principal.clone(), &base);
    let records: Vec<_> = cx
        .catalog
        .list(ListQuery::key(p.package_key(package)))
        .await?
        .into_iter()
        .filter(|r| version.is_none_or(|v| r.version == v))
        .collect();
    if records.is_empty() {
        return Err(ApiError::not_found(match version {
            Some(v) => format!("There is no version {v:?} of {package:?} in {provider}/{name}."),
            None => format!("There is no package {package:?} in {provider}/{name}."),
        }));
    }
    let deleted = st.delete_records(a, &p, &row, &cx, records).await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

async fn delete_package(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name, package)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let base = st.base_url(&headers);
    delete_matching(&st, &a, &provider, &name, &package, None, base).await
}

async fn delete_version(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name, package, version)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let base = st.base_url(&headers);
    delete_matching(&st, &a, &provider, &name, &package, Some(&version), base).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyImport {
    armored: String,
    passphrase: Option<String>,
    /// Days the replaced key keeps signing next to the new one (default 7; 0 ends it at once).
    transition_days: Option<u32>,
}

/// `PUT /repos/{provider}/{repo}/key`: replace the repo's signing key and re-sign at once.
async fn import_key(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    let req: KeyImport = parse(&body)?;
    if req.transition_days.is_some_and(|d| d > 3650) {
        return Err(ApiError::bad_request(
            "transition_days must be at most 3650 (10 years).",
        ));
    }
    let transition = i64::from(req.transition_days.unwrap_or(7)) * 86_400_000;
    let fingerprint = crate::signer::import_key(
        &st.inner.db,
        &st.inner.keys,
        row.id,
        &req.armored,
        req.passphrase.as_deref(),
        transition,
    )
    .await?;
    let p = st.inner.registry.get(&provider)?.clone();
    let base = st.base_url(&headers);
    let cx = st.context(&provider, &name, Some(&row), a.principal.clone(), &base);
    st.reindex(&p, row.id, &cx, artifactd_plugin_api::IndexScope::All)
        .await?;
    st.audit(
        &a,
        "key-import",
        Some((&provider, &name)),
        json!({ "fingerprint": fingerprint }),
    )
    .await;
    Ok(Json(
        json!({ "fingerprint": fingerprint, "transition_days": req.transition_days.unwrap_or(7) }),
    )
    .into_response())
}

async fn openapi() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

fn repo_json(r: &repo::Model, packages: &std::collections::HashMap<i64, i64>) -> Value {
    let settings = settings_of(r);
    let mut v = json!({
        "provider": r.provider,
        "name": r.name,
        "kind": r.kind,
        "packages": packages.get(&r.id).copied().unwrap_or(0),
        "files": r.file_count,
        "size": r.total_size,
        "last_upload": (r.last_upload > 0).then(|| artifactd_plugin_api::time::rfc3339_millis(r.last_upload)),
        "created_at": artifactd_plugin_api::time::rfc3339_millis(r.created_at),
        "settings": settings_json(&settings),
    });
    if let Some(p) = crate::proxy::ProxyConfig::of(r) {
        v["upstream"] = p.upstream.public_json();
    }
    v
}

#[derive(Deserialize)]
struct RepoFilter {
    provider: Option<String>,
}

async fn list_repos(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Query(f): Query<RepoFilter>,
) -> Result<Response, ApiError> {
    let packages = st.inner.db.package_counts(None).await?;
    let repos: Vec<Value> = st
        .inner
        .db
        .all_repos()
        .await?
        .iter()
        .filter(|r| f.provider.as_deref().is_none_or(|p| p == r.provider))
        .filter(|r| st.can_read(&a, r))
        .map(|r| repo_json(r, &packages))
        .collect();
    Ok(Json(json!({ "repos": repos })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRepo {
    provider: String,
    name: String,
    /// `hosted` (the default) or `proxy`.
    #[serde(default)]
    kind: Option<String>,
    /// A proxy's upstream.
    #[serde(default)]
    upstream: Option<Value>,
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

/// The kind and configuration a new repo asks for: `(kind, config JSON)`.
fn kind_of(st: &AppState, req: &NewRepo) -> Result<(String, Option<String>), ApiError> {
    match (req.kind.as_deref().unwrap_or("hosted"), &req.upstream) {
        ("hosted", None) => Ok(("hosted".to_owned(), None)),
        ("hosted", Some(_)) => Err(ApiError::bad_request(
            "Only a proxy repo has an upstream; say \"kind\": \"proxy\".",
        )),
        (crate::proxy::KIND, up) => {
            let provider = st.inner.registry.get(&req.provider)?;
            if provider.proxy().is_none() {
                return Err(ApiError::bad_request(format!(
                    "The {} provider cannot proxy an upstream.",
                    req.provider
                )));
            }
            let up = up
                .as_ref()
                .ok_or_else(|| ApiError::bad_request("A proxy repo needs an \"upstream\"."))?;
            let upstream = crate::proxy::Upstream::from_json(up).map_err(ApiError::bad_request)?;
            let config = serde_json::to_string(&crate::proxy::ProxyConfig { upstream })
                .map_err(|e| ApiError::internal("proxy configuration", e))?;
            Ok((crate::proxy::KIND.to_owned(), Some(config)))
        }
        (other, _) => Err(ApiError::bad_request(format!(
            "Unknown repo kind {other:?}: use \"hosted\" or \"proxy\"."
        ))),
    }
}

/// Applies a settings patch (`overwrite`: deny|allow, `private`, `delete_empty`).
fn apply_settings(
    settings: &mut RepoSettings,
    patch: &serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    for (k, v) in patch {
        match (k.as_str(), v) {
            ("overwrite", Value::String(s)) if s == "allow" || s == "deny" => {
                settings.overwrite = s == "allow"
            }
            ("private", Value::Bool(b)) => settings.private = *b,
            ("delete_empty", Value::Bool(b)) => settings.delete_empty = *b,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unknown setting or value {k:?}: use overwrite (\"deny\" or \"allow\"), private (true/false), delete_empty (true/false)."
                )));
            }
        }
    }
    Ok(())
}

async fn create_repo(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: NewRepo = parse(&body)?;
    st.inner.registry.get(&req.provider)?;
    validate_repo_name(&req.name)?;
    st.authorize(&a, Some((&req.provider, &req.name)), false, Scope::Admin)?;
    if st.inner.db.repo(&req.provider, &req.name).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("The repo {}/{} exists already.", req.provider, req.name),
        ));
    }
    let mut settings = RepoSettings::default();
    apply_settings(&mut settings, &req.settings)?;
    let (kind, config) = kind_of(&st, &req)?;
    let row = st.inner.db.repo_or_create(&req.provider, &req.name).await?;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&settings).map_err(|e| ApiError::internal("settings", e))?);
    am.kind = Set(kind);
    am.config = Set(config);
    let row = am.update(st.inner.db.conn()).await?;
    st.inner.db.repos_changed();
    st.audit(
        &a,
        "repo-create",
        Some((&req.provider, &req.name)),
        json!({ "kind": row.kind, "settings": settings_json(&settings) }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(repo_json(&row, &Default::default())),
    )
        .into_response())
}

async fn get_repo(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    st.inner.registry.get(&provider)?;
    validate_repo_name(&name)?;
    let row = st.repo_for(&a, &provider, &name, Scope::Read).await?;
    let packages = st.inner.db.package_counts(Some(row.id)).await?;
    Ok(Json(repo_json(&row, &packages)).into_response())
}

async fn delete_repo(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    let p = st.inner.registry.get(&provider)?.clone();
    let base = st.base_url(&headers);
    let cx = st.context(&provider, &name, Some(&row), a.principal.clone(), &base);
    let records = cx.catalog.list(ListQuery::all()).await?;
    let deleted = st.delete_records(&a, &p, &row, &cx, records).await?;
    repo::Entity::delete_by_id(row.id)
        .exec(st.inner.db.conn())
        .await?;
    st.inner.db.repos_changed();
    st.inner.blobs.delete_derived(&provider, &name).await?;
    st.audit(
        &a,
        "delete-repo",
        Some((&provider, &name)),
        json!({ "files": deleted.len() }),
    )
    .await;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

#[derive(Deserialize)]
struct PackageQuery {
    q: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

fn file_json(r: &artifactd_plugin_api::FileRecord) -> Value {
    json!({
        "filename": r.path.rsplit('/').next().unwrap_or(&r.path),
        "path": r.path,
        "scope": r.scope,
        "size": r.size,
        "sha256": r.sha256,
        "uploaded_at": artifactd_plugin_api::time::rfc3339_millis(r.uploaded_at),
        "uploader": r.uploader,
        "yanked": r.yanked,
        "meta": r.meta,
    })
}

async fn list_packages(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name)): Path<(String, String)>,
    Query(q): Query<PackageQuery>,
) -> Result<Response, ApiError> {
    st.inner.registry.get(&provider)?;
    validate_repo_name(&name)?;
    let row = st.repo_for(&a, &provider, &name, Scope::Read).await?;
    let cx = st.context(
        &provider,
        &name,
        Some(&row),
        a.principal.clone(),
        &st.base_url(&headers),
    );
    let needle = q.q.unwrap_or_default().to_ascii_lowercase();
    let packages: Vec<Value> =
        super::browse::packages(cx.catalog.list(ListQuery::all()).await?, &needle)
            .into_iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "key": p.key,
                    "latest": p.latest,
                    "versions": p.versions,
                    "files": p.files,
                    "size": p.size,
                    "last_upload": artifactd_plugin_api::time::rfc3339_millis(p.last_upload),
                    "summary": p.summary,
                })
            })
            .collect();
    let total = packages.len();
    let per_page = q.per_page.unwrap_or(50);
    let page = q.page.unwrap_or(1);
    if !(1..=500).contains(&per_page) || !(1..=1_000_000).contains(&page) {
        return Err(ApiError::bad_request(
            "per_page must be 1 to 500 and page 1 to 1000000.",
        ));
    }
    let items: Vec<Value> = packages
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(
        Json(json!({ "total": total, "page": page, "per_page": per_page, "packages": items }))
            .into_response(),
    )
}

async fn package_versions(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    headers: http::HeaderMap,
    Path((provider, name, package)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    st.inner.registry.get(&provider)?;
    validate_repo_name(&name)?;
    let row = st.repo_for(&a, &provider, &name, Scope::Read).await?;
    let p = st.inner.registry.get(&provider)?.clone();
    let cx = st.context(
        &provider,
        &name,
        Some(&row),
        a.principal.clone(),
        &st.base_url(&headers),
    );
    let files = cx
        .catalog
        .list(ListQuery::key(p.package_key(&package)))
        .await?;
    if files.is_empty() {
        return Err(ApiError::not_found(format!(
            "There is no package {package:?} in {provider}/{name}."
        )));
    }
    let (name, key) = (files[0].name.clone(), files[0].key.clone());
    let versions: Vec<Value> = super::browse::versions(files)
        .into_iter()
        .map(|(v, f)| json!({ "version": v, "files": f.iter().map(file_json).collect::<Vec<_>>() }))
        .collect();
    Ok(Json(json!({ "name": name, "key": key, "versions": versions })).into_response())
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
}

/// Packages across every readable repo whose name or summary contains `q`.
async fn search(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let hits = super::browse::search(&st, &a, &q.q).await?;
    Ok(Json(json!({ "results": hits })).into_response())
}
