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

fn settings_json(s: &RepoSettings, row: &repo::Model) -> Value {
    let mut v = json!({
        "overwrite": if s.overwrite { "allow" } else { "deny" },
        "private": s.private,
        "delete_empty": s.delete_empty,
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
    let (policy, rest): (
        serde_json::Map<String, Value>,
        serde_json::Map<String, Value>,
    ) = patch
        .into_iter()
        .partition(|(k, _)| crate::proxy::settings::KEYS.contains(&k.as_str()));
    apply_settings(&mut settings, &rest)?;
    let p = st.inner.registry.get(&provider)?.clone();
    crate::proxy::settings::apply(&mut config, &row.kind, &policy, &|n| p.package_key(n))
        .map_err(ApiError::bad_request)?;
    let generation = row.generation;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&settings).map_err(|e| ApiError::internal("settings", e))?);
    if !policy.is_empty() {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRepo {
    provider: String,
    name: String,
    /// `hosted` (the default), `proxy` or `virtual`.
    #[serde(default)]
    kind: Option<String>,
    /// A proxy's upstream.
    #[serde(default)]
    upstream: Option<Value>,
    /// A virtual repo's members, in order.
    #[serde(default)]
    members: Option<Vec<String>>,
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

/// The kind and configuration a new repo asks for.
async fn kind_of(
    st: &AppState,
    req: &NewRepo,
) -> Result<(String, crate::proxy::RepoConfig), ApiError> {
    use crate::proxy::{KIND, RepoConfig, VIRTUAL};
    let kind = req.kind.as_deref().unwrap_or("hosted");
    if req.upstream.is_some() && kind != KIND {
        return Err(ApiError::bad_request(
            "Only a proxy repo has an upstream; say \"kind\": \"proxy\".",
        ));
    }
    if req.members.is_some() && kind != VIRTUAL {
        return Err(ApiError::bad_request(
            "Only a virtual repo has members; say \"kind\": \"virtual\".",
        ));
    }
    let provider = st.inner.registry.get(&req.provider)?;
    if kind != "hosted" && provider.proxy().is_none() {
        return Err(ApiError::bad_request(format!(
            "The {} provider offers no {kind} repos.",
            req.provider
        )));
    }
    let mut config = RepoConfig::default();
    match kind {
        "hosted" => {}
        KIND => {
            let up = req
                .upstream
                .as_ref()
                .ok_or_else(|| ApiError::bad_request("A proxy repo needs an \"upstream\"."))?;
            config.upstream =
                Some(crate::proxy::Upstream::from_json(up).map_err(ApiError::bad_request)?);
        }
        VIRTUAL => {
            let members = req.members.clone().unwrap_or_default();
            if members.is_empty() || members.len() > 32 {
                return Err(ApiError::bad_request(
                    "A virtual repo needs 1 to 32 \"members\".",
                ));
            }
            for m in &members {
                validate_repo_name(m)?;
                match st.inner.db.repo(&req.provider, m).await? {
                    Some(r) if r.kind != VIRTUAL => {}
                    Some(_) => {
                        return Err(ApiError::bad_request(format!(
                            "The member {m:?} is a virtual repo; members are hosted or proxy repos."
                        )));
                    }
                    None => {
                        return Err(ApiError::bad_request(format!(
                            "There is no {} repo named {m:?} to be a member.",
                            req.provider
                        )));
                    }
                }
            }
            config.members = members;
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "Unknown repo kind {other:?}: use \"hosted\", \"proxy\" or \"virtual\"."
            )));
        }
    }
    Ok((kind.to_owned(), config))
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

pub(super) async fn create_repo(
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
    let (kind, mut config) = kind_of(&st, &req).await?;
    let mut settings = RepoSettings::default();
    let (policy, rest): (
        serde_json::Map<String, Value>,
        serde_json::Map<String, Value>,
    ) = req
        .settings
        .clone()
        .into_iter()
        .partition(|(k, _)| crate::proxy::settings::KEYS.contains(&k.as_str()));
    apply_settings(&mut settings, &rest)?;
    let p = st.inner.registry.get(&req.provider)?.clone();
    crate::proxy::settings::apply(&mut config, &kind, &policy, &|n| p.package_key(n))
        .map_err(ApiError::bad_request)?;
    let row = st.inner.db.repo_or_create(&req.provider, &req.name).await?;
    let mut am = row.into_active_model();
    am.settings =
        Set(serde_json::to_string(&settings).map_err(|e| ApiError::internal("settings", e))?);
    am.config = Set((kind != "hosted")
        .then(|| serde_json::to_string(&config))
        .transpose()
        .map_err(|e| ApiError::internal("repo configuration", e))?);
    am.kind = Set(kind);
    let row = am.update(st.inner.db.conn()).await?;
    st.inner.db.repos_changed();
    st.audit(
        &a,
        "repo-create",
        Some((&req.provider, &req.name)),
        json!({ "kind": row.kind, "settings": settings_json(&settings, &row) }),
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
