//! Index files a publish replaced. A client reads `InRelease` and then fetches the files it
//! lists, by hash; if a publish lands in between, those files are no longer current, and they
//! must still be there. So nothing below a dist's `by-hash/` folders is deleted when it is
//! replaced: a sweep, at most every [`SWEEP_EVERY_MS`] per dist (sooner when a lot was written),
//! lists them and deletes what the current state does not list once it is [`RETAIN_MS`] old, or,
//! oldest first, what exceeds [`BUDGET_BYTES`]. Since the listing finds every file, files left by
//! a crashed publish or by older versions go the same way.
//!
//! The plain `Packages` is not stored; its by-hash name is an alias, a tiny file holding the name
//! of the `Packages.gz` it inflates from, so a retired plain file is served from its retired gzip.

use std::collections::{BTreeSet, HashMap};
use std::io::Read as _;
use std::sync::Mutex;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStore as _, ObjectStoreExt as _};
use artifactd_plugin_api::{Error, RepoContext, Result};
use sha2::Digest as _;

use crate::index::{State, read_blob};

/// How long a replaced index file stays downloadable (ms).
pub const RETAIN_MS: i64 = 5 * 60 * 1000;
/// Replaced index files of one dist beyond this many bytes go sooner, oldest first (only a
/// stream of uploads into a large dist gets there: each publish replaces its `Packages.gz`).
pub const BUDGET_BYTES: u64 = 1 << 30;
/// How often a dist's folders are listed (ms).
pub const SWEEP_EVERY_MS: i64 = 30 * 1000;
/// Or after this many bytes of index files were written since the last sweep.
const SWEEP_AFTER_BYTES: u64 = BUDGET_BYTES / 8;
/// The largest plain `Packages` inflated for a request.
const MAX_PLAIN_BYTES: u64 = 1 << 30;

/// The by-hash name of a plain `Packages` (`rel` is `main/binary-amd64/Packages`): an alias
/// that holds the name of its `Packages.gz`.
pub fn alias_path(dist: &str, rel: &str, sha256: &str) -> BlobPath {
    let dir = crate::index::index_dir(rel);
    BlobPath::from(format!("dists/{dist}/{dir}by-hash/plain/{sha256}"))
}

/// Every blob the state serves: its `Packages.gz` files and the aliases of its plain files.
fn current(dist: &str, state: &State) -> BTreeSet<String> {
    state
        .files
        .iter()
        .map(|(rel, f)| {
            if f.blob.is_empty() {
                alias_path(dist, rel, &f.sha256).to_string()
            } else {
                f.blob.clone()
            }
        })
        .collect()
}

/// A stale index file: its path, when it was written (ms) and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The blob.
    pub path: String,
    /// Last written, ms since the epoch.
    pub written: i64,
    /// Bytes.
    pub size: u64,
}

/// Which stale files go at `now`: older than [`RETAIN_MS`], or beyond [`BUDGET_BYTES`] counted
/// from the newest.
pub fn expired(mut stale: Vec<Stale>, now: i64) -> Vec<String> {
    stale.sort_by(|a, b| b.written.cmp(&a.written).then_with(|| a.path.cmp(&b.path)));
    let mut kept = 0u64;
    let mut out = Vec::new();
    for s in stale {
        kept = kept.saturating_add(s.size);
        if now.saturating_sub(s.written) > RETAIN_MS || kept > BUDGET_BYTES {
            out.push(s.path);
        }
    }
    out
}

/// Per node: when each dist was swept last and what was written since.
#[derive(Debug, Default)]
pub struct Sweeper {
    dists: Mutex<HashMap<(String, String), (i64, u64)>>,
}

impl Sweeper {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (i64, u64)>> {
        self.dists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts index bytes a publish wrote.
    pub fn wrote(&self, repo: &str, dist: &str, bytes: u64) {
        let mut dists = self.lock();
        let entry = dists.entry((repo.to_owned(), dist.to_owned())).or_default();
        entry.1 = entry.1.saturating_add(bytes);
    }

    /// Sweeps `dist` if it is due at `now`: the first publish on this node, [`SWEEP_EVERY_MS`]
    /// since the last sweep, or much written since. Returns the files deleted.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn maybe_sweep(
        &self,
        cx: &RepoContext,
        dist: &str,
        state: &State,
        now: i64,
    ) -> Result<Vec<String>> {
        let key = (cx.repo.clone(), dist.to_owned());
        let due = self.lock().get(&key).is_none_or(|(at, written)| {
            now.saturating_sub(*at) >= SWEEP_EVERY_MS || *written >= SWEEP_AFTER_BYTES
        });
        if !due {
            return Ok(Vec::new());
        }
        let deleted = sweep(cx, dist, state, now).await?;
        self.lock().insert(key, (now, 0));
        Ok(deleted)
    }
}

/// Lists the dist's by-hash folders and deletes what [`expired`] says.
///
/// # Errors
/// Storage failures.
pub async fn sweep(cx: &RepoContext, dist: &str, state: &State, now: i64) -> Result<Vec<String>> {
    use artifactd_plugin_api::futures::StreamExt as _;
    let keep = current(dist, state);
    let mut stale = Vec::new();
    let prefix = BlobPath::from(format!("dists/{dist}"));
    let mut listing = cx.blobs.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let path = meta.location.to_string();
        if path.contains("/by-hash/") && !keep.contains(&path) {
            stale.push(Stale {
                path,
                written: meta.last_modified.timestamp_millis(),
                size: meta.size,
            });
        }
    }
    let gone = expired(stale, now);
    for path in &gone {
        delete_quietly(cx, BlobPath::from(path.as_str())).await?;
    }
    Ok(gone)
}

/// Deletes every file of a dist (its last package went).
///
/// # Errors
/// Storage failures.
pub async fn delete_dist(cx: &RepoContext, dist: &str) -> Result<()> {
    // The state first: the dist is unpublished before its files go.
    delete_quietly(cx, crate::index::state_path(dist)).await?;
    delete_below(cx, &format!("dists/{dist}")).await
}

/// Deletes every derived file below `prefix`.
///
/// # Errors
/// Storage failures.
pub async fn delete_below(cx: &RepoContext, prefix: &str) -> Result<()> {
    use artifactd_plugin_api::futures::StreamExt as _;
    let prefix = BlobPath::from(prefix);
    let paths: Vec<BlobPath> = cx
        .blobs
        .list(Some(&prefix))
        .map(|m| m.map(|m| m.location))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<std::result::Result<_, _>>()?;
    for p in paths {
        delete_quietly(cx, p).await?;
    }
    Ok(())
}

/// Deletes a derived file; one that is gone already is fine.
pub async fn delete_quietly(cx: &RepoContext, path: BlobPath) -> Result<()> {
    match cx.blobs.delete(&path).await {
        Ok(()) | Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A plain `Packages` that an earlier publish listed, by its hash: inflated from the retired
/// `Packages.gz` its alias names, checked against the hash. `None` when there is no such alias.
///
/// # Errors
/// Storage failures; a corrupt retired file.
pub async fn retired_plain(
    cx: &RepoContext,
    dist: &str,
    rel: &str,
    sha256: &str,
) -> Result<Option<Bytes>> {
    let Some(gz_name) = read_blob(cx, &alias_path(dist, rel, sha256)).await? else {
        return Ok(None);
    };
    let gz_name = String::from_utf8_lossy(&gz_name).into_owned();
    if !gz_name.starts_with(&format!("dists/{dist}/")) {
        return Err(Error::internal_msg(format!(
            "the alias of {rel} names {gz_name:?}, outside its dist"
        )));
    }
    let Some(gz) = read_blob(cx, &BlobPath::from(gz_name.as_str())).await? else {
        return Ok(None);
    };
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(gz.as_ref())
        .take(MAX_PLAIN_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| Error::internal("a retired Packages.gz is corrupt", e))?;
    let digest: String = sha2::Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if digest != sha256 {
        return Ok(None);
    }
    Ok(Some(Bytes::from(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale(path: &str, written: i64, size: u64) -> Stale {
        Stale {
            path: path.to_owned(),
            written,
            size,
        }
    }

    #[test]
    fn replaced_files_stay_five_minutes_within_the_budget() {
        let now = 10 * RETAIN_MS;
        let files = vec![
            stale("new", now - 1_000, 10),
            stale("four-minutes", now - 4 * 60 * 1000, 10),
            stale("old", now - RETAIN_MS - 1, 10),
        ];
        assert_eq!(expired(files, now), ["old"]);
        // Over the budget, the oldest go first, however young.
        let files = vec![
            stale("a", now - 3, BUDGET_BYTES / 2),
            stale("b", now - 2, BUDGET_BYTES / 2),
            stale("c", now - 1, BUDGET_BYTES / 2),
        ];
        assert_eq!(expired(files, now), ["a"]);
    }

    #[test]
    fn aliases_sit_beside_the_by_hash_files() {
        assert_eq!(
            alias_path("stable", "main/binary-amd64/Packages", "ab").to_string(),
            "dists/stable/main/binary-amd64/by-hash/plain/ab"
        );
    }
}
