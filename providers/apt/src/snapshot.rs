//! Snapshots: a dist's published state frozen under a name, served as its own signed dist at
//! `snapshots/<name>/dists/<dist>/` with its pool at `snapshots/<name>/pool/`.
//!
//! A snapshot copies the dist's index files (small) and its signed Release as they are, and
//! lists the records the indexes name; package files are not copied: the pool below the
//! snapshot serves the same blobs. Snapshots are immutable (created once, with
//! `PutMode::Create`, so two nodes cannot both create one name). Automatic snapshots, taken on
//! every publish when the repo's `auto_snapshot` setting is on, are named by the publish's UTC
//! second (`20261206T120000Z`, the form of apt's snapshot servers); a name of that form that
//! has no snapshot resolves to the latest snapshot taken before it, as on snapshot.debian.org.
//! Release carries `Snapshots:`, so apt 3's `apt update --snapshot ID` finds them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{
    ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
};
use artifactd_plugin_api::serde::{Deserialize, Serialize};
use artifactd_plugin_api::serde_json;
use artifactd_plugin_api::{Error, FileRecord, ListQuery, RepoContext, Result, time};

use crate::index::{self, Node, State, read_blob};
use crate::source;

/// A frozen dist.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde")]
pub struct Snapshot {
    /// Its name.
    pub name: String,
    /// The dist it froze.
    pub dist: String,
    /// When it was taken, ms since the epoch.
    pub created: i64,
    /// Taken by a publish, not by an administrator.
    pub auto: bool,
    /// The dist's state, its index files' blobs pointing at the snapshot's copies.
    pub state: State,
    /// `(path, sha256)` of every package file its indexes list, sorted by path.
    #[serde(default)]
    pub files: Vec<(String, String)>,
    /// The whole records, as snapshots of earlier versions kept them; read into `files`.
    #[serde(default, skip_serializing)]
    records: Vec<FileRecord>,
}

impl Snapshot {
    /// The sha256 of the package file at `path` of the snapshot.
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| self.files[i].1.as_str())
    }

    /// A snapshot as stored, with `files` from the records of an older one.
    fn read(bytes: &[u8]) -> Result<Self> {
        let mut snap: Self = serde_json::from_slice(bytes)
            .map_err(|e| Error::internal("snapshot is unreadable", e))?;
        if snap.files.is_empty() {
            snap.files = std::mem::take(&mut snap.records)
                .into_iter()
                .map(|r| (r.path, r.sha256))
                .collect();
            snap.files.sort();
        }
        Ok(snap)
    }

    /// The catalog's records of the snapshot's files, of all packages or of those with one of
    /// `keys` (a path holds one content in every dist, so any dist's record of the path with
    /// the snapshot's sha256 is the one).
    ///
    /// # Errors
    /// `Conflict` naming a file no dist has a record of any more; catalog failures.
    pub async fn records(
        &self,
        cx: &RepoContext,
        keys: Option<Vec<String>>,
    ) -> Result<Vec<FileRecord>> {
        let query = match keys {
            Some(k) => ListQuery::keys(k),
            None => ListQuery::all(),
        };
        let mut by_path: BTreeMap<String, FileRecord> = BTreeMap::new();
        for r in cx.catalog.list(query.clone()).await? {
            if self.file(&r.path) == Some(r.sha256.as_str()) {
                by_path.entry(r.path.clone()).or_insert(r);
            }
        }
        // Only a full listing tells that a file's record is gone (with keys, the names of a
        // file's packages are known from its records alone).
        let gone = if query.keys.is_none() {
            self.files.iter().find(|(p, _)| !by_path.contains_key(p))
        } else {
            None
        };
        if let Some((path, _)) = gone {
            return Err(Error::Conflict(format!(
                "Snapshot {:?} lists {path}, which no dist of the repo has a record of any more; upload it again first.",
                self.name
            )));
        }
        Ok(by_path.into_values().collect())
    }
}

/// Where a snapshot of `dist` keeps its files.
fn root(name: &str, dist: &str) -> String {
    format!("snapshots/{name}/dists/{dist}")
}

fn meta_path(name: &str, dist: &str) -> BlobPath {
    BlobPath::from(format!("{}/snapshot.json", root(name, dist)))
}

/// The name of an automatic snapshot taken at `ms`: `YYYYMMDDTHHMMSSZ`.
pub fn auto_name(ms: i64) -> String {
    let rfc = time::rfc3339_millis(ms);
    // "2026-12-06T12:00:00.000Z": keep the digits of date and time.
    let digits: String = rfc.chars().take(19).filter(char::is_ascii_digit).collect();
    format!(
        "{}T{}Z",
        &digits[..8.min(digits.len())],
        digits.get(8..).unwrap_or("")
    )
}

/// Whether `name` has the form of an automatic snapshot's name.
pub fn is_time_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The `path → sha256` of every package file the dist's `Packages` and `Sources` list.
async fn listed_files(
    cx: &RepoContext,
    state: &State,
    node: &Node,
) -> Result<BTreeMap<String, String>> {
    let mut listed = BTreeMap::new();
    for rel in state.files.keys().filter(|r| r.ends_with("/Sources")) {
        let text = node.plain.plain(cx, state, rel).await?;
        listed.extend(source::listed_in(&String::from_utf8_lossy(&text)));
    }
    for rel in state.files.keys().filter(|r| r.ends_with("/Packages")) {
        let text = node.plain.plain(cx, state, rel).await?;
        listed.extend(crate::check::listed(&String::from_utf8_lossy(&text)));
    }
    Ok(listed)
}

/// Freezes `dist` as it is published now under `name`.
///
/// # Errors
/// `NotFound` for a dist never published, `Conflict` when the name is taken for this dist or
/// the dist changed while it was read, storage failures.
pub async fn create(
    cx: &RepoContext,
    dist: &str,
    name: &str,
    auto: bool,
    node: &Node,
) -> Result<Snapshot> {
    let state = index::load_state(cx, dist)
        .await?
        .ok_or_else(|| Error::not_found(format!("There is no published dist {dist:?}.")))?;
    freeze(cx, dist, name, auto, &state, node).await
}

/// Freezes `state`, the dist's published state, under `name`.
async fn freeze(
    cx: &RepoContext,
    dist: &str,
    name: &str,
    auto: bool,
    state: &State,
    node: &Node,
) -> Result<Snapshot> {
    if read_blob(cx, &meta_path(name, dist)).await?.is_some() {
        return Err(taken(name, dist));
    }
    // The published indexes are what the snapshot freezes: their files, not the catalog's
    // rows, which may have moved on since the publish.
    let files: Vec<(String, String)> = listed_files(cx, state, node).await?.into_iter().collect();
    let mut frozen = state.clone();
    let from = format!("dists/{dist}/");
    let to = format!("{}/", root(name, dist));
    for f in frozen.files.values_mut() {
        if let Some(rest) = f.blob.strip_prefix(&from) {
            let copy = format!("{to}{rest}");
            cx.blobs
                .copy(
                    &BlobPath::from(f.blob.as_str()),
                    &BlobPath::from(copy.as_str()),
                )
                .await?;
            f.blob = copy;
        }
    }
    // The pool files stay while the snapshot does, whatever happens to the records.
    let tag = hold_tag(name, dist);
    let shas: Vec<String> = files.iter().map(|(_, sha)| sha.clone()).collect();
    cx.catalog.hold(&tag, &shas).await?;
    let snap = Snapshot {
        name: name.to_owned(),
        dist: dist.to_owned(),
        created: time::now_millis(),
        auto,
        state: frozen,
        files,
        records: Vec::new(),
    };
    let body = serde_json::to_vec(&snap).map_err(|e| Error::internal("snapshot", e))?;
    let put = cx
        .blobs
        .put_opts(
            &meta_path(name, dist),
            PutPayload::from(body),
            PutOptions::from(PutMode::Create),
        )
        .await;
    match put {
        Ok(_) => Ok(snap),
        Err(artifactd_plugin_api::object_store::Error::AlreadyExists { .. }) => {
            // Another node took the name first: its snapshot's files are the ones to hold.
            if let Some(bytes) = read_blob(cx, &meta_path(name, dist)).await?
                && let Ok(theirs) = Snapshot::read(&bytes)
            {
                let shas: Vec<String> = theirs.files.iter().map(|(_, sha)| sha.clone()).collect();
                cx.catalog.hold(&tag, &shas).await?;
            }
            Err(taken(name, dist))
        }
        Err(e) => Err(e.into()),
    }
}

/// The catalog hold of a snapshot's pool files.
fn hold_tag(name: &str, dist: &str) -> String {
    format!("snapshot:{name}/{dist}")
}

fn taken(name: &str, dist: &str) -> Error {
    Error::Conflict(format!(
        "There is a snapshot {name:?} of dist {dist:?} already; snapshots do not change."
    ))
}

/// Takes the automatic snapshot of the state a publish just switched to at `now`: named by its
/// second, or by the next free second when a publish in the same second took that name.
///
/// # Errors
/// Storage failures.
pub async fn take_auto(
    cx: &RepoContext,
    dist: &str,
    state: &State,
    now: i64,
    node: &Node,
) -> Result<String> {
    for step in 0..60 {
        let name = auto_name(now + step * 1000);
        if read_blob(cx, &meta_path(&name, dist)).await?.is_some() {
            continue;
        }
        match freeze(cx, dist, &name, true, state, node).await {
            Ok(_) => return Ok(name),
            // Another node took the name meanwhile: the next second.
            Err(Error::Conflict(_)) if read_blob(cx, &meta_path(&name, dist)).await?.is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "Dist {dist:?} was published more than 60 times in a minute; no automatic snapshot was taken."
    )))
}

/// Deletes the snapshot `name` of `dist`: it is unpublished first, then its index files go and
/// its hold on the pool files ends (the next `gc` removes those no record refers to).
///
/// # Errors
/// `NotFound`, storage and catalog failures.
pub async fn remove(cx: &RepoContext, dist: &str, name: &str, cache: &SnapshotCache) -> Result<()> {
    let meta = meta_path(name, dist);
    if read_blob(cx, &meta).await?.is_none() {
        return Err(Error::not_found(format!(
            "There is no snapshot {name:?} of dist {dist:?}."
        )));
    }
    crate::retire::delete_quietly(cx, meta).await?;
    cache.forget(&cx.repo, name, dist);
    crate::retire::delete_below(cx, &root(name, dist)).await?;
    cx.catalog.release(&hold_tag(name, dist)).await
}

/// `(name, dist)` of every snapshot of the repo, sorted.
///
/// # Errors
/// Storage failures.
async fn list(cx: &RepoContext) -> Result<Names> {
    use artifactd_plugin_api::futures::StreamExt as _;
    let mut out = BTreeSet::new();
    let mut listing = cx.blobs.list(Some(&BlobPath::from("snapshots")));
    while let Some(meta) = listing.next().await {
        let path = meta?.location.to_string();
        let parts: Vec<&str> = path.split('/').collect();
        if let ["snapshots", name, "dists", dist, "snapshot.json"] = parts.as_slice() {
            out.insert(((*name).to_owned(), (*dist).to_owned()));
        }
    }
    Ok(out)
}

/// The snapshot of `dist` that `name` means: the one of that name, or for a time-shaped name,
/// the latest time-named snapshot at or before it.
pub fn resolve<'a>(all: &'a Names, name: &str, dist: &str) -> Option<&'a str> {
    if let Some((n, _)) = all.get(&(name.to_owned(), dist.to_owned())) {
        return Some(n);
    }
    if !is_time_name(name) {
        return None;
    }
    all.iter()
        .filter(|(n, d)| d == dist && is_time_name(n) && n.as_str() <= name)
        .map(|(n, _)| n.as_str())
        .max()
}

/// `(name, dist)` of a repo's snapshots.
pub type Names = BTreeSet<(String, String)>;

/// Snapshots read once (they never change), and each repo's list of them under the catalog
/// generation it was listed at (taking or removing a snapshot is an API call or a publish,
/// and the host bumps the generation after both).
#[derive(Debug, Default)]
pub struct SnapshotCache {
    frozen: Mutex<BTreeMap<(String, String, String), Arc<Snapshot>>>,
    names: Mutex<BTreeMap<String, (u64, Arc<Names>)>>,
}

impl SnapshotCache {
    /// The repo's snapshots, listed from storage once per generation.
    ///
    /// # Errors
    /// Catalog and storage failures.
    pub async fn names(&self, cx: &RepoContext) -> Result<Arc<Names>> {
        let generation = cx.catalog.generation().await?;
        let lock = || {
            self.names
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some((g, names)) = lock().get(&cx.repo)
            && *g == generation
        {
            return Ok(names.clone());
        }
        let names = Arc::new(list(cx).await?);
        let mut all = lock();
        if all.len() > 1024 {
            all.clear();
        }
        all.insert(cx.repo.clone(), (generation, names.clone()));
        Ok(names)
    }

    /// The snapshot `name` of `dist`.
    ///
    /// # Errors
    /// `NotFound`, storage failures, an unreadable snapshot.
    pub async fn get(&self, cx: &RepoContext, name: &str, dist: &str) -> Result<Arc<Snapshot>> {
        let key = (cx.repo.clone(), name.to_owned(), dist.to_owned());
        if let Some(s) = self.lock().get(&key) {
            return Ok(s.clone());
        }
        let bytes = read_blob(cx, &meta_path(name, dist))
            .await?
            .ok_or_else(|| {
                Error::not_found(format!("There is no snapshot {name:?} of dist {dist:?}."))
            })?;
        let snap = Arc::new(Snapshot::read(&bytes)?);
        let mut frozen = self.lock();
        if frozen.len() > 256 {
            frozen.clear();
        }
        frozen.insert(key, snap.clone());
        Ok(snap)
    }

    /// Drops a deleted snapshot.
    pub fn forget(&self, repo: &str, name: &str, dist: &str) {
        self.lock()
            .remove(&(repo.to_owned(), name.to_owned(), dist.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String, String), Arc<Snapshot>>> {
        self.frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_names_have_the_form_of_apts_snapshot_servers() {
        // 2026-12-06T12:00:00Z
        let ms = 1_796_558_400_000;
        assert_eq!(auto_name(ms), "20261206T120000Z");
        assert_eq!(auto_name(ms + 1_500), "20261206T120001Z");
        assert!(is_time_name("20261206T120000Z"));
        assert!(!is_time_name("release-1.0"));
        assert!(!is_time_name("20261206T1200000"));
    }

    #[test]
    fn a_snapshot_of_an_earlier_version_reads_its_records_as_files() {
        let record = |path: &str, sha: &str| {
            FileRecord::stored(
                artifactd_plugin_api::NewRecord::new(path, "p", "p", "1.0", 1, sha),
                0,
                "admin".to_owned(),
                None,
            )
        };
        let old = serde_json::json!({
            "name": "old", "dist": "stable", "created": 0, "auto": false,
            "state": serde_json::to_value(State::default()).expect("state"),
            "records": [record("pool/main/p/p/p_1.0_amd64.deb", "bb"), record("pool/main/a/a/a_1.0_all.deb", "aa")],
        });
        let snap = Snapshot::read(&serde_json::to_vec(&old).expect("json")).expect("reads");
        assert_eq!(snap.file("pool/main/a/a/a_1.0_all.deb"), Some("aa"));
        assert_eq!(snap.file("pool/main/p/p/p_1.0_amd64.deb"), Some("bb"));
        assert_eq!(snap.file("pool/main/q/q/q_1.0_all.deb"), None);
        let again = serde_json::to_value(&snap).expect("json");
        assert!(again.get("records").is_none() && again["files"].is_array());
    }

    #[test]
    fn a_time_resolves_to_the_latest_snapshot_before_it() {
        let all: BTreeSet<(String, String)> = [
            ("20261201T000000Z", "stable"),
            ("20261203T000000Z", "stable"),
            ("20261202T000000Z", "testing"),
            ("release-1", "stable"),
        ]
        .iter()
        .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
        .collect();
        assert_eq!(resolve(&all, "release-1", "stable"), Some("release-1"));
        assert_eq!(resolve(&all, "release-1", "testing"), None);
        assert_eq!(
            resolve(&all, "20261202T120000Z", "stable"),
            Some("20261201T000000Z")
        );
        assert_eq!(
            resolve(&all, "20261203T000000Z", "stable"),
            Some("20261203T000000Z")
        );
        assert_eq!(resolve(&all, "20261130T000000Z", "stable"), None);
        assert_eq!(
            resolve(&all, "20261231T000000Z", "testing"),
            Some("20261202T000000Z")
        );
    }
}
