//! What the JSON API and the web pages both show: a repo's packages, a package's versions and
//! search hits, computed once from the catalog.

use std::collections::HashSet;

use artifactd_plugin_api::FileRecord;
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::auth::Auth;

/// One package of a repo, as listings show it.
#[derive(Debug, Serialize)]
pub struct PackageRow {
    pub name: String,
    pub key: String,
    pub latest: String,
    pub versions: usize,
    pub files: usize,
    pub size: u64,
    /// Milliseconds since the epoch.
    pub last_upload: i64,
    pub summary: Option<String>,
}

/// The packages among a repo's `files` whose key or name contains `needle` (lower case; empty:
/// all), by key.
pub fn packages(mut files: Vec<FileRecord>, needle: &str) -> Vec<PackageRow> {
    files.sort_by(|x, y| x.key.cmp(&y.key).then(x.uploaded_at.cmp(&y.uploaded_at)));
    let mut rows = Vec::new();
    for group in files.chunk_by(|x, y| x.key == y.key) {
        let last = &group[group.len() - 1];
        if !needle.is_empty()
            && !last.key.to_ascii_lowercase().contains(needle)
            && !last.name.to_ascii_lowercase().contains(needle)
        {
            continue;
        }
        let versions: HashSet<&str> = group.iter().map(|f| f.version.as_str()).collect();
        rows.push(PackageRow {
            name: last.name.clone(),
            key: last.key.clone(),
            latest: last.version.clone(),
            versions: versions.len(),
            files: group.len(),
            size: group.iter().map(|f| f.size).sum(),
            last_upload: last.uploaded_at,
            summary: last
                .meta
                .get("summary")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    rows
}

/// A package's files grouped by version, newest upload first.
pub fn versions(mut files: Vec<FileRecord>) -> Vec<(String, Vec<FileRecord>)> {
    files.sort_by(|x, y| y.uploaded_at.cmp(&x.uploaded_at).then(x.path.cmp(&y.path)));
    let mut out: Vec<(String, Vec<FileRecord>)> = Vec::new();
    for f in files {
        match out.iter_mut().find(|(v, _)| *v == f.version) {
            Some((_, list)) => list.push(f),
            None => out.push((f.version.clone(), vec![f])),
        }
    }
    out
}

/// A package found by [`search`].
#[derive(Debug, Serialize)]
pub struct Hit {
    pub provider: String,
    pub repo: String,
    pub name: String,
    pub key: String,
    pub version: String,
    pub summary: Option<String>,
}

/// Packages across every repo `auth` may read whose name or summary contains `needle`, with
/// their latest upload.
///
/// # Errors
/// 400 for an empty or over-long needle; database failures.
pub async fn search(st: &AppState, auth: &Auth, needle: &str) -> Result<Vec<Hit>, ApiError> {
    use crate::db::entities::file;
    use sea_orm::{
        ColumnTrait as _, Condition, EntityTrait as _, QueryFilter as _, QueryOrder as _,
        QuerySelect as _,
    };
    let needle = needle.trim();
    if needle.is_empty() || needle.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "The search text q must be 1 to 100 characters.",
        ));
    }
    let plain: String = needle
        .chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect();
    let like = format!("%{plain}%");
    let rows = file::Entity::find()
        .filter(
            Condition::any()
                .add(file::Column::Pkey.like(like.to_ascii_lowercase()))
                .add(file::Column::Name.like(like.clone()))
                .add(file::Column::Meta.like(like)),
        )
        .order_by_desc(file::Column::UploadedAt)
        .order_by_desc(file::Column::Id)
        .limit(500)
        .all(st.inner.db.conn())
        .await?;
    let repos = st.inner.db.all_repos().await?;
    let lower = plain.to_lowercase();
    let mut hits = Vec::new();
    let mut seen = HashSet::new();
    for f in rows {
        let Some(r) = repos.iter().find(|r| r.id == f.repo_id) else {
            continue;
        };
        if !st.can_read(auth, r) || !seen.insert((f.repo_id, f.pkey.clone())) {
            continue;
        }
        let summary = serde_json::from_str::<Value>(&f.meta)
            .ok()
            .and_then(|m| m.get("summary").and_then(Value::as_str).map(str::to_owned));
        // The metadata text also holds descriptions and stanzas: keep name and summary matches.
        let matches = f.name.to_lowercase().contains(&lower)
            || f.pkey.contains(&lower)
            || summary
                .as_deref()
                .is_some_and(|s| s.to_lowercase().contains(&lower));
        if matches {
            hits.push(Hit {
                provider: r.provider.clone(),
                repo: r.name.clone(),
                name: f.name,
                key: f.pkey,
                version: f.version,
                summary,
            });
        }
    }
    Ok(hits)
}
