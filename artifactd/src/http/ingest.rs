//! The upload flow shared by `/addpkg` and the providers' own upload protocols: spool, the
//! provider's upload hook, conflict checks, blobs, records, publish.

use artifactd_plugin_api::{
    DynProvider, IndexScope, InsertOutcome, ListQuery, UploadRequest, UploadedFile,
};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::extract::Query;
use super::upload::{self, Limits, SpooledFile};
use super::{ApiError, AppState, auth_of, validate_repo_name};
use crate::auth::{Auth, Scope};

pub(super) async fn addpkg(
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
pub(super) async fn ingest(
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
    let mut existing = st.inner.db.repo(kind, name).await?;
    // A virtual repo's uploads go to its upload_to member, or its first hosted one.
    let target;
    let name = match &existing {
        Some(row) if row.kind == crate::proxy::VIRTUAL => {
            target = upload_target(st, row).await?.ok_or_else(|| {
                ApiError::new(
                    http::StatusCode::METHOD_NOT_ALLOWED,
                    format!("The virtual repo {kind}/{name} has no hosted member to upload to."),
                )
            })?;
            st.authorize(auth, Some((kind, &target)), false, Scope::Write)?;
            existing = st.inner.db.repo(kind, &target).await?;
            target.as_str()
        }
        _ => name,
    };
    if let Some(row) = &existing
        && row.kind != "hosted"
    {
        return Err(ApiError::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "The repo {kind}/{name} is a {} repo; upload to a hosted repo.",
                row.kind
            ),
        ));
    }
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
        if let Some(ps) = cx.settings.status_of(&r.key)
            && ps.status.refuses_uploads()
        {
            let why = ps
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Err(artifactd_plugin_api::Error::Conflict(format!(
                "The project {} is {} in this repo{why}, so it takes no uploads.",
                r.name,
                ps.status.as_str()
            ))
            .into());
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
    // Accepted: derived files first, then the content blob, then the records (a crash in
    // between leaves orphans for `gc`, never a record without its blobs).
    for d in outcome.derived {
        use object_store::ObjectStoreExt as _;
        cx.blobs
            .put(&d.path, object_store::PutPayload::from(d.bytes))
            .await
            .map_err(artifactd_plugin_api::Error::from)?;
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

/// Where a virtual repo's uploads go: its `upload_to` member, or its first hosted member.
async fn upload_target(
    st: &AppState,
    row: &crate::db::entities::repo::Model,
) -> Result<Option<String>, ApiError> {
    let config = crate::proxy::RepoConfig::of(row);
    if let Some(t) = config.policy.upload_to {
        return Ok(Some(t));
    }
    for m in &config.members {
        if let Some(r) = st.inner.db.repo(&row.provider, m).await?
            && r.kind == "hosted"
        {
            return Ok(Some(m.clone()));
        }
    }
    Ok(None)
}
