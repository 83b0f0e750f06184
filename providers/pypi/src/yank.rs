//! `POST -/yank`: yank or un-yank a version or one file (PEP 592), as JSON.

use artifactd_plugin_api::serde_json::{self, Value, json};
use artifactd_plugin_api::{Error, ListQuery, RepoContext, Result, ServeRequest, ServeResponse};

use crate::names::normalize;
use crate::version;

/// Answers a yank request.
///
/// # Errors
/// [`Error::InvalidInput`] for a malformed request, [`Error::NotFound`] when nothing matches.
pub(crate) async fn yank(cx: &RepoContext, req: &ServeRequest) -> Result<ServeResponse> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| Error::invalid(format!("The body is not JSON ({e}).")))?;
    let project = body
        .get("project")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("Name the \"project\" to yank."))?;
    let version = body.get("version").and_then(Value::as_str);
    let filename = body.get("filename").and_then(Value::as_str);
    if version.is_none() && filename.is_none() {
        return Err(Error::invalid(
            "Name a \"version\" or a \"filename\" to yank.",
        ));
    }
    let yanked = body.get("yanked").and_then(Value::as_bool).unwrap_or(true);
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if reason.chars().count() > 512 || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            "The yank reason must be one line of at most 512 characters.",
        ));
    }
    let want_version = version.and_then(version::canonical);
    let files = cx.catalog.list(ListQuery::key(normalize(project))).await?;
    let mut changed = Vec::new();
    for f in files {
        let fname = f.path.rsplit('/').next().unwrap_or(&f.path).to_owned();
        let version_ok = want_version
            .as_deref()
            .is_none_or(|v| version::canonical(&f.version).as_deref() == Some(v));
        let file_ok = filename.is_none_or(|n| n == fname);
        if version_ok && file_ok {
            cx.catalog
                .set_yanked(&f.scope, &f.path, yanked.then(|| reason.clone()))
                .await?;
            changed.push(fname);
        }
    }
    if changed.is_empty() {
        return Err(Error::not_found(
            "No file of this repo matches the yank request.",
        ));
    }
    let out = serde_json::to_vec(
        &json!({ "project": normalize(project), "yanked": yanked, "files": changed }),
    )
    .map_err(|e| Error::internal("json", e))?;
    Ok(ServeResponse::bytes("application/json", out))
}
