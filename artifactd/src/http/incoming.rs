//! Uploads in several requests (Debian's `dput`): each file is `PUT` below the provider's
//! staging folder and kept per uploader (its blob stored, a row in `incoming_files`); the file
//! that completes the upload (the `.changes`) is checked against the repo's uploader keyring
//! when it has one, and goes through the normal upload flow with every staged file as
//! companions. What it uses leaves the staging area; the rest waits for `artifactd gc`.

use artifactd_plugin_api::{DynProvider, Staging};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use sea_orm::{ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set};
use serde_json::json;

use super::ingest::{Flow, ingest};
use super::upload::{self, SpooledFile};
use super::{ApiError, AppState};
use crate::auth::{Auth, Scope};
use crate::db::entities::incoming_file;

/// The most files one uploader may have staged in a repo.
const MAX_STAGED: usize = 256;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'~' | b'_' | b'-'))
}

/// One `PUT` below the staging folder `rest` of `kind/name`.
#[allow(clippy::too_many_arguments)] // The request's parts, as the dispatcher has them.
pub(super) async fn put(
    st: &AppState,
    auth: &Auth,
    base: &str,
    provider: &DynProvider,
    staging: Staging,
    name: &str,
    rest: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = provider.kind();
    let max = st.inner.config.max_upload_bytes;
    // dput sends the whole file before it reads the answer: read it, then refuse.
    if let Err(e) = st.authorize(auth, Some((kind, name)), false, Scope::Write) {
        upload::drain(body, max).await;
        return Err(e);
    }
    let filename = rest.strip_prefix(staging.prefix).unwrap_or_default();
    if !valid_name(filename) {
        upload::drain(body, max).await;
        return Err(ApiError::bad_request(format!(
            "Invalid file name {:?}: PUT files as {}NAME, NAME of ASCII letters, digits and '+', '.', '~', '_', '-'.",
            filename.chars().take(80).collect::<String>(),
            staging.prefix
        )));
    }
    if let Some(row) = st.inner.db.repo(kind, name).await?
        && row.kind != "hosted"
    {
        upload::drain(body, max).await;
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "The repo {kind}/{name} is a {} repo; upload to a hosted repo.",
                row.kind
            ),
        ));
    }
    let file =
        upload::spool_raw(headers, body, &st.inner.tmp_dir, max, filename.to_owned()).await?;
    let uploader = auth.principal.label();
    if !filename.ends_with(staging.completes) {
        return stage(st, kind, name, &uploader, file).await;
    }
    let row = st.inner.db.repo_or_create(kind, name).await?;
    let settings = crate::db::settings_of(&row);
    if let Some(keyring) = &settings.uploaders {
        let text = tokio::fs::read(&file.temp)
            .await
            .map_err(|e| ApiError::internal("cannot read the upload", e))?;
        let ring = crate::keyring::Keyring::parse(keyring)
            .map_err(|e| ApiError::internal("the uploader keyring", std::io::Error::other(e)))?;
        if let Err(why) = ring.verify_cleartext(&text) {
            return Err(ApiError::forbidden(format!(
                "The {filename} is not signed by a key on the repo's uploader keyring ({why})."
            )));
        }
    }
    let staged = incoming_file::Entity::find()
        .filter(incoming_file::Column::RepoId.eq(row.id))
        .filter(incoming_file::Column::Uploader.eq(uploader.as_str()))
        .all(st.inner.db.conn())
        .await?;
    let mut files = vec![file];
    for s in &staged {
        let temp = tempfile::Builder::new()
            .prefix("staged-")
            .tempfile_in(&st.inner.tmp_dir)
            .map_err(|e| ApiError::internal("cannot create a temporary file", e))?
            .into_temp_path();
        if st.inner.blobs.content_to_file(&s.sha256, &temp).await? {
            files.push(SpooledFile {
                filename: s.filename.clone(),
                temp,
                size: u64::try_from(s.size).unwrap_or_default(),
                sha256: s.sha256.clone(),
            });
        }
    }
    let done = ingest(
        st,
        auth,
        base,
        provider,
        name,
        Some(rest.to_owned()),
        Vec::new(),
        files,
        Flow::Staged,
    )
    .await?;
    let used: Vec<i64> = staged
        .iter()
        .filter(|s| done.used.binary_search(&s.sha256).is_ok())
        .map(|s| s.id)
        .collect();
    if !used.is_empty() {
        incoming_file::Entity::delete_many()
            .filter(incoming_file::Column::Id.is_in(used))
            .exec(st.inner.db.conn())
            .await?;
    }
    Ok(done.response)
}

/// Keeps one file of an upload in progress.
async fn stage(
    st: &AppState,
    kind: &str,
    name: &str,
    uploader: &str,
    file: SpooledFile,
) -> Result<Response, ApiError> {
    let row = st.inner.db.repo_or_create(kind, name).await?;
    let mine = incoming_file::Entity::find()
        .filter(incoming_file::Column::RepoId.eq(row.id))
        .filter(incoming_file::Column::Uploader.eq(uploader))
        .all(st.inner.db.conn())
        .await?;
    let again: Vec<i64> = mine
        .iter()
        .filter(|m| m.filename == file.filename)
        .map(|m| m.id)
        .collect();
    if again.is_empty() && mine.len() >= MAX_STAGED {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "You have {MAX_STAGED} files waiting in this repo's staging area; complete or abandon an upload first."
            ),
        ));
    }
    st.inner.blobs.put_content(&file.temp, &file.sha256).await?;
    // A file sent again replaces the one staged under its name.
    if !again.is_empty() {
        incoming_file::Entity::delete_many()
            .filter(incoming_file::Column::Id.is_in(again))
            .exec(st.inner.db.conn())
            .await?;
    }
    incoming_file::ActiveModel {
        repo_id: Set(row.id),
        uploader: Set(uploader.to_owned()),
        filename: Set(file.filename.clone()),
        sha256: Set(file.sha256.clone()),
        size: Set(i64::try_from(file.size).unwrap_or(i64::MAX)),
        created_at: Set(crate::db::now_millis()),
        ..Default::default()
    }
    .insert(st.inner.db.conn())
    .await?;
    tracing::info!(provider = kind, repo = name, file = %file.filename, "Staged an upload file.");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "staged": file.filename,
            "size": file.size,
            "sha256": file.sha256,
        })),
    )
        .into_response())
}
