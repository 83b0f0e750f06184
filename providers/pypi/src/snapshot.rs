//! Read-only snapshots of a repo's index, for release pipelines that must install tomorrow
//! exactly what they tested today: `POST snapshots` `{"name": N}` freezes every file record of
//! the repo under `N` (one derived blob, `snapshots/N.json`) and holds their blobs, so deletes
//! and `gc` leave them; `snapshots/N/` (and `snapshots/N/simple/`) then serve the index as it
//! was, with the same file URLs below it. `POST snapshots/remove` ends one; `GET snapshots/`
//! lists them (JSON).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::http::StatusCode;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::serde::{Deserialize, Serialize};
use artifactd_plugin_api::serde_json::{self, json};
use artifactd_plugin_api::{
    Error, FileRecord, ListQuery, RepoContext, Result, ServeResponse, time,
};

/// How long a node serves a snapshot it read without looking again (a removal on another node
/// shows after this).
const FRESH: Duration = Duration::from_secs(30);

/// A frozen index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde")]
pub(crate) struct Frozen {
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Every file record of the repo when it was taken, sorted by path.
    pub records: Vec<FileRecord>,
}

impl Frozen {
    /// The record at a `files/…` path.
    pub fn get(&self, path: &str) -> Option<FileRecord> {
        self.records
            .binary_search_by(|r| r.path.as_str().cmp(path))
            .ok()
            .map(|i| self.records[i].clone())
    }

    /// The projects, sorted by key, with their display names.
    pub fn keys(&self) -> Vec<(String, String)> {
        let keys: BTreeMap<&str, &str> = self
            .records
            .iter()
            .map(|r| (r.key.as_str(), r.name.as_str()))
            .collect();
        keys.into_iter()
            .map(|(k, n)| (k.to_owned(), n.to_owned()))
            .collect()
    }

    /// The files of one project.
    pub fn project(&self, key: &str) -> Vec<FileRecord> {
        self.records
            .iter()
            .filter(|r| r.key == key)
            .cloned()
            .collect()
    }
}

/// Snapshots read per node: (repo, name) → when read, the snapshot.
type Read = HashMap<(String, String), (Instant, Arc<Frozen>)>;

/// Snapshots read per node.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCache {
    read: Mutex<Read>,
}

impl SnapshotCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The snapshot `name` of the repo, `None` when there is none.
    pub async fn load(&self, cx: &RepoContext, name: &str) -> Result<Option<Arc<Frozen>>> {
        let key = (cx.repo.clone(), name.to_owned());
        if let Some((at, f)) = self.lock().get(&key)
            && at.elapsed() < FRESH
        {
            return Ok(Some(f.clone()));
        }
        if !valid_name(name) {
            return Ok(None);
        }
        let bytes = match cx.blobs.get(&blob(name)).await {
            Ok(got) => got.bytes().await?,
            Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => {
                self.lock().remove(&key);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let frozen: Frozen =
            serde_json::from_slice(&bytes).map_err(|e| Error::internal("a PyPI snapshot", e))?;
        let frozen = Arc::new(frozen);
        let mut read = self.lock();
        if read.len() >= 256 {
            read.clear();
        }
        read.insert(key, (Instant::now(), frozen.clone()));
        Ok(Some(frozen))
    }

    fn forget(&self, repo: &str, name: &str) {
        self.lock().remove(&(repo.to_owned(), name.to_owned()));
    }
}

/// Snapshot names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !s.contains("..")
}

fn blob(name: &str) -> BlobPath {
    BlobPath::from(format!("snapshots/{name}.json"))
}

fn hold_tag(name: &str) -> String {
    format!("pypi-snapshot:{name}")
}

#[derive(Debug, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde", deny_unknown_fields)]
struct Call {
    name: String,
}

fn parse_call(body: &[u8]) -> Result<String> {
    let call: Call = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(format!(
            "The snapshot call takes a JSON object {{\"name\": NAME}}: {e}."
        ))
    })?;
    if !valid_name(&call.name) {
        return Err(Error::invalid(format!(
            "Invalid snapshot name {:?}: use 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit.",
            call.name.chars().take(80).collect::<String>()
        )));
    }
    Ok(call.name)
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> ServeResponse {
    ServeResponse::bytes("application/json", Bytes::from(v.to_string())).with_status(status)
}

/// `POST snapshots`: freezes the repo's index under a new name.
pub(crate) async fn create(cx: &RepoContext, body: &[u8]) -> Result<ServeResponse> {
    let name = parse_call(body)?;
    let path = blob(&name);
    if cx.blobs.head(&path).await.is_ok() {
        return Err(Error::Conflict(format!(
            "There is a snapshot {name:?} already; snapshots never change, take one under another name."
        )));
    }
    let mut records = cx.catalog.list(ListQuery::all()).await?;
    if records.is_empty() {
        return Err(Error::not_found("The repo has no files to snapshot."));
    }
    records.sort_by(|a, b| a.path.cmp(&b.path));
    // The files stay while the snapshot does, whatever happens to the records.
    let shas: Vec<String> = records.iter().map(|r| r.sha256.clone()).collect();
    cx.catalog.hold(&hold_tag(&name), &shas).await?;
    let frozen = Frozen {
        name: name.clone(),
        created_at: time::now_millis(),
        records,
    };
    let bytes = serde_json::to_vec(&frozen).map_err(|e| Error::internal("a PyPI snapshot", e))?;
    cx.blobs.put(&path, PutPayload::from(bytes)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "name": name,
            "files": frozen.records.len(),
            "url": format!("{}snapshots/{name}/", cx.base_url),
        }),
    ))
}

/// `POST snapshots/remove`: ends a snapshot (its files go with the next `gc` when no record
/// refers to them).
pub(crate) async fn remove(
    cx: &RepoContext,
    body: &[u8],
    cache: &SnapshotCache,
) -> Result<ServeResponse> {
    let name = parse_call(body)?;
    let path = blob(&name);
    if cx.blobs.head(&path).await.is_err() {
        return Err(Error::not_found(format!("There is no snapshot {name:?}.")));
    }
    cx.blobs.delete(&path).await?;
    cache.forget(&cx.repo, &name);
    cx.catalog.release(&hold_tag(&name)).await?;
    Ok(json_response(StatusCode::OK, &json!({ "removed": name })))
}

/// `GET snapshots/`: the repo's snapshots (JSON).
pub(crate) async fn list(cx: &RepoContext) -> Result<ServeResponse> {
    use artifactd_plugin_api::futures::StreamExt as _;
    let mut names = Vec::new();
    let mut listing = cx.blobs.list(Some(&BlobPath::from("snapshots")));
    while let Some(meta) = listing.next().await {
        let path = meta?.location.to_string();
        if let Some(name) = path
            .strip_prefix("snapshots/")
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|n| valid_name(n))
        {
            names.push(json!({
                "name": name,
                "url": format!("{}snapshots/{name}/", cx.base_url),
            }));
        }
    }
    names.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json_response(
        StatusCode::OK,
        &json!({ "snapshots": names }),
    ))
}
