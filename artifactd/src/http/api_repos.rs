//! The JSON API's repos: list, create (hosted, proxy, virtual), show, delete, settings.

use artifactd_plugin_api::{ListQuery, RepoSettings};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::StatusCode;
use sea_orm::{ActiveModelTrait as _, EntityTrait as _, IntoActiveModel as _, Set};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::parse;
use super::extract::{Path, Query};
use super::{ApiError, AppState, validate_repo_name};
use crate::auth::{Auth, Scope};
use crate::db::entities::repo;
use crate::db::settings_of;
use crate::repo_spec::RepoSpec;

fn settings_json(s: &RepoSettings, row: &repo::Model) -> Value {
    let mut v = json!({
        "overwrite": if s.overwrite { "allow" } else { "deny" },
        "private": s.private,
        "delete_empty": s.delete_empty,
        "auto_snapshot": s.auto_snapshot,
        "uploaders": s.uploaders.as_deref().map(|k| crate::keyring::Keyring::parse(k).map(|r| r.fingerprints()).unwrap_or_default()),
        "keep_last": s.keep_last,
        "keep_min_age": s.keep_min_age.map(crate::proxy::settings::fmt_duration),
        "pins": s.pins.iter().flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}={v}"))).collect::<Vec<_>>(),
        "project_status": crate::proxy::settings::status_json(s),
    });
    if let Some(obj) = v.as_object_mut() {
        obj.extend(crate::proxy::settings::json(
            &crate::proxy::RepoConfig::of(row),
            &row.kind,
        ));
    }
    v
}

/// An existing repo the caller administers (after checking the provider and name).
pub(super) async fn admin_repo(
    st: &AppState,
    a: &Auth,
    provider: &str,
    name: &str,
) -> Result<repo::Model, ApiError> {
    st.inner.registry.get(provider)?;
    validate_repo_name(name)?;
    st.repo_for(a, provider, name, Scope::Admin).await
}

pub(super) async fn get_settings(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    Path((provider, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let row = admin_repo(&st, &a, &provider, &name).await?;
    Ok(Json(settings_json(&settings_of(&row), &row)).into_response())
}

/// `PUT` settings: any of `overwrite` (deny|allow), `private`, `delete_empty`. Creates the repo
/// when it does not exist yet.
pub(super) async fn put_settings(
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
    let mut config = crate::proxy::RepoConfig::of(&row);
    crate::repo_spec::apply_patch(
        &st.inner.registry,
        &provider,
        &row.kind,
        &mut settings,
        &mut config,
        &patch,
    )?;
    let policy = patch
        .keys()
        .any(|k| crate::proxy::settings::KEYS.contains(&k.as_str()));
    let generation = row.generation;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&settings).map_err(|e| ApiError::internal("settings", e))?);
    if policy {
        am.config = Set(Some(
            serde_json::to_string(&config).map_err(|e| ApiError::internal("settings", e))?,
        ));
    }
    am.generation = Set(generation + 1);
    let row = am.update(st.inner.db.conn()).await?;
    st.inner.db.repos_changed();
    let shown = settings_json(&settings, &row);
    st.audit(&a, "settings", Some((&provider, &name)), shown.clone())
        .await;
    Ok(Json(shown).into_response())
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
        "settings": settings_json(&settings, r),
    });
    let config = crate::proxy::RepoConfig::of(r);
    if let Some(up) = &config.upstream {
        v["upstream"] = up.public_json();
    }
    if r.kind == crate::proxy::VIRTUAL {
        v["members"] = json!(config.members);
    }
    v
}

#[derive(Deserialize)]
pub(super) struct RepoFilter {
    provider: Option<String>,
}

pub(super) async fn list_repos(
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

pub(super) async fn create_repo(
    State(st): State<AppState>,
    Extension(a): Extension<Auth>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: RepoSpec = parse(&body)?;
    st.inner.registry.get(&req.provider)?;
    validate_repo_name(&req.name)?;
    st.authorize(&a, Some((&req.provider, &req.name)), false, Scope::Admin)?;
    if st.inner.db.repo(&req.provider, &req.name).await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("The repo {}/{} exists already.", req.provider, req.name),
        ));
    }
    let resolved = req.resolve(&st.inner.registry, &st.inner.db).await?;
    let (row, _) =
        crate::repo_spec::write(&st.inner.db, &req.provider, &req.name, &resolved).await?;
    st.audit(
        &a,
        "repo-create",
        Some((&req.provider, &req.name)),
        json!({ "kind": row.kind, "settings": settings_json(&resolved.settings, &row) }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(repo_json(&row, &Default::default())),
    )
        .into_response())
}

pub(super) async fn get_repo(
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

pub(super) async fn delete_repo(
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
