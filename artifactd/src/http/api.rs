//! The JSON API (`/api/v1`): tokens, the audit log, repo settings and package deletion.
//! Every error is `{"error": "..."}` (see `error.rs`); every call is checked by
//! [`AppState::authorize`].

use artifactd_plugin_api::ListQuery;
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

use super::api_repos::{
    admin_repo, create_repo, delete_repo, get_repo, get_settings, list_repos, put_settings,
};
use super::extract::{Path, Query};
use super::{ApiError, AppState, validate_repo_name};
use crate::auth::{self, Auth, Scope};
use crate::db::entities::{audit, token};
use crate::db::now_millis;

fn bad_json(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("The request body is not the expected JSON: {e}."))
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
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
            axum::routing::put(super::api_keys::import_key),
        )
        .route(
            "/repos/{provider}/{repo}/keys",
            get(super::api_keys::list_keys).post(super::api_keys::add_key),
        )
        .route(
            "/repos/{provider}/{repo}/keys/{fingerprint}",
            delete(super::api_keys::retire_key),
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

async fn openapi() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
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
