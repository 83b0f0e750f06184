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
use super::upload::SpooledFile;
use super::{ApiError, AppState, auth_of, validate_repo_name};
use crate::auth::{Auth, Scope};

/// The most files one `/addpkg` form carries: a source package's `.dsc` and what it lists.
const MAX_FILES: usize = 64;

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
    let spooled = st
        .spool_form(&parts.headers, body, Some("f"), MAX_FILES)
        .await?;
    let mut params: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, _)| k != "provider" && k != "reponame")
        .collect();
    params.extend(spooled.fields);
    let done = ingest(
        &st,
        &auth,
        &base,
        &provider,
        &name,
        None,
        params,
        spooled.files,
        Flow::Form,
    )
    .await?;
    Ok(done.response)
}

fn valid_record_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && p.bytes().all(|b| b.is_ascii_graphic())
}

/// What an upload stored: the answer for the client, and the hashes of the files it used.
pub(super) struct Ingested {
    /// The JSON answer.
    pub response: Response,
    /// SHA-256 of every file a stored record refers to.
    pub used: Vec<String>,
}

/// How [`ingest`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Every file of the form must be used; retention and the publish follow.
    Form,
    /// The files come from a staging area (dput): those the upload does not use stay there.
    Staged,
    /// One of many files of an import: no retention, no publish (the import publishes once,
    /// at its end).
    Bulk,
}

/// The upload flow shared by `/addpkg` and the providers' own upload protocols. With `staged`,
/// the files come from a staging area (dput) and those the upload does not use stay there;
/// otherwise every file of the form must be used.
#[allow(clippy::too_many_arguments)] // One call site per protocol; a struct would only rename them.
pub(super) async fn ingest(
    st: &AppState,
    auth: &Auth,
    base: &str,
    provider: &DynProvider,
    name: &str,
    native_path: Option<String>,
    params: Vec<(String, String)>,
    files: Vec<SpooledFile>,
    flow: Flow,
) -> Result<Ingested, ApiError> {
    let staged = flow == Flow::Staged;
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
    let mut uploaded = files.iter().map(|f| {
        UploadedFile::new(
            f.filename.clone(),
            f.temp.to_path_buf(),
            f.size,
            f.sha256.clone(),
        )
    });
    let first = uploaded
        .next()
        .ok_or_else(|| ApiError::bad_request("Missing the package file."))?;
    let request =
        UploadRequest::new(native_path, params, first).with_companions(uploaded.collect());
    let outcome = provider.upload(&cx, request).await?;
    if outcome.records.is_empty() {
        return Err(ApiError::internal(
            "upload hook",
            artifactd_plugin_api::Error::internal_msg(format!(
                "provider {kind} returned no records"
            )),
        ));
    }
    // Every file of the form is some record's content, or the upload is not what it seems.
    if !staged
        && let Some(unused) = files
            .iter()
            .find(|f| !outcome.records.iter().any(|r| r.sha256 == f.sha256))
    {
        return Err(ApiError::bad_request(format!(
            "The form carries the file {:?}, which this upload does not use; send one package per request (a source package: its .dsc and the files it lists).",
            unused.filename.chars().take(80).collect::<String>()
        )));
    }
    for r in &outcome.records {
        if !files
            .iter()
            .any(|f| f.sha256 == r.sha256 && f.size == r.size)
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
    let mut used: Vec<String> = outcome.records.iter().map(|r| r.sha256.clone()).collect();
    used.sort();
    used.dedup();
    for f in &files {
        if used.binary_search(&f.sha256).is_ok() {
            st.inner.blobs.put_content(&f.temp, &f.sha256).await?;
        }
    }
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
    // Retention for the packages this upload added to; its delete publishes, which covers
    // this upload too.
    let mut touched: Vec<(String, String)> = done
        .iter()
        .filter(|o| o.changed())
        .map(|o| (o.record().scope.clone(), o.record().key.clone()))
        .collect();
    touched.sort();
    touched.dedup();
    if !touched.is_empty() && flow != Flow::Bulk {
        st.retain(auth, provider, &row, &cx, Some(&touched), false)
            .await?;
    }
    if !changed.is_empty() && flow != Flow::Bulk {
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
    Ok(Ingested {
        response: (status, axum::Json(body)).into_response(),
        used,
    })
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
