//! Publishing a dist: `Packages` and `Contents` (plain and `.gz`) per component and
//! architecture and `Sources` per component, written
//! under `by-hash/SHA256/` names before the signed `Release` that lists them; the dist's state
//! (Release, InRelease, Release.gpg and the name → by-hash map) is switched in one write, last.
//!
//! Stanzas come from the catalog (computed once at upload), so publishing never reads package
//! files. Each `Packages` file is a sequence of chunks: a package's stanzas sit in the chunk its
//! name hashes to, sorted by path, and `Packages.gz` is one gzip member per non-empty chunk
//! (members concatenate into one stream for zlib, apt and Python alike). The state records each
//! chunk's length in both files, the catalog generation it covers and the dist's record count,
//! so a publish after an upload lists only the records changed since (one indexed query),
//! rewrites and recompresses only their chunks, and splices the others from the published files.
//! A full publish lays out the same bytes; it runs when the incremental one cannot be sure: a
//! key change, a record count that the changes do not explain (a deletion), a new component or
//! architecture, a chunk count outgrown, or a state from before chunking.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::serde::{Deserialize, Serialize};
use artifactd_plugin_api::serde_json::{self, Value};
use artifactd_plugin_api::{Error, FileRecord, ListQuery, RepoContext, Result, time};

use crate::draft::Draft;
use crate::plain::{Parts, PlainCache};
use crate::{contents, retire, source};

/// Architectures announced by a dist that only has `Architecture: all` packages.
const DEFAULT_ARCHES: &[&str] = &["amd64", "arm64", "i386"];

/// Stanzas per chunk that a full publish aims at; an incremental one lets chunks grow to four
/// times that before it lays the dist out again.
const CHUNK_TARGET: u64 = 64;
/// The most chunks a `Packages` file is cut into.
const MAX_CHUNKS: u64 = 4096;

pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// One published index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde")]
pub struct IndexFile {
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its derived blob (a `by-hash/SHA256/` name).
    pub blob: String,
}

/// What a published dist serves, and what the next publish starts from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(crate = "artifactd_plugin_api::serde")]
pub struct State {
    /// The signed text.
    pub release: String,
    /// `Release`, cleartext-signed.
    pub inrelease: String,
    /// The detached signature of `release`.
    pub release_gpg: String,
    /// Components, sorted.
    pub components: Vec<String>,
    /// Architectures, sorted.
    pub architectures: Vec<String>,
    /// Index files by their path below the dist (`main/binary-amd64/Packages.gz`).
    pub files: BTreeMap<String, IndexFile>,
    /// The catalog generation whose changes this state includes; `None` for states written
    /// before chunking, which the next publish redoes in full.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Records in the dist.
    #[serde(default)]
    pub count: u64,
    /// Chunks per `Packages` file.
    #[serde(default)]
    pub chunks: u64,
    /// Whether `architectures` are [`DEFAULT_ARCHES`] because every package is `all`.
    #[serde(default)]
    pub default_arches: bool,
    /// Per `Packages` path, each chunk's length in the plain and in the gzip file.
    #[serde(default)]
    pub layout: BTreeMap<String, Vec<(u64, u64)>>,
}

/// What a node keeps per dist between publishes: plain texts, and when it swept.
#[derive(Debug, Default)]
pub struct Node {
    /// The plain `Packages` texts.
    pub plain: PlainCache,
    /// Replaced index files.
    pub sweeper: retire::Sweeper,
    /// The packages' Contents lines.
    pub lists: contents::ListCache,
}

/// The state file of a dist.
pub fn state_path(dist: &str) -> BlobPath {
    BlobPath::from(format!("dists/{dist}/state.json"))
}

pub(crate) async fn read_blob(cx: &RepoContext, path: &BlobPath) -> Result<Option<Bytes>> {
    match cx.blobs.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(artifactd_plugin_api::object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads a dist's published state.
///
/// # Errors
/// Storage failures other than "not published".
pub async fn load_state(cx: &RepoContext, dist: &str) -> Result<Option<State>> {
    let Some(bytes) = read_blob(cx, &state_path(dist)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::internal("dist state is unreadable", e))
}

pub fn component(r: &FileRecord) -> &str {
    r.meta
        .get("component")
        .and_then(Value::as_str)
        .unwrap_or("main")
}

pub fn arch(r: &FileRecord) -> &str {
    r.meta.get("arch").and_then(Value::as_str).unwrap_or("all")
}

/// One Packages stanza: the control paragraph plus what the repository computes.
pub fn stanza(r: &FileRecord) -> String {
    let control = r
        .meta
        .get("stanza")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!(
        "{control}\nFilename: {}\nSize: {}\nSHA256: {}\n",
        r.path, r.size, r.sha256
    )
}

/// Gzip of one chunk (a member of `Packages.gz`). No `.xz`: apt reads gzip as well, and xz
/// (preset 6) took ten times as long as everything else in a publish of a large dist.
pub(crate) fn compress(text: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text)?;
    Ok(gz.finish()?)
}

/// How many chunks a dist of `n` records gets.
fn chunks_for(n: u64) -> u64 {
    n.div_ceil(CHUNK_TARGET).next_power_of_two().min(MAX_CHUNKS)
}

/// The chunk of a package (FNV-1a of its catalog key: stable across builds and nodes).
pub(crate) fn chunk_of(key: &str, chunks: u64) -> usize {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(h % chunks.max(1)).unwrap_or(0)
}

/// Whether `r` is listed in `comp/binary-a/Packages` (and `comp/Contents-a`), or for `a` =
/// `source` in `comp/source/Sources`.
pub(crate) fn belongs(r: &FileRecord, comp: &str, a: &str) -> bool {
    component(r) == comp
        && if a == source::SOURCE_ARCH {
            source::is_dsc(r)
        } else {
            arch(r) == a || arch(r) == "all"
        }
}

/// The stanza of `r` in the index it belongs to.
fn entry(r: &FileRecord) -> String {
    if source::is_dsc(r) {
        source::stanza(r)
    } else {
        stanza(r)
    }
}

/// The folder of an index file below the dist (`main/binary-amd64/` of
/// `main/binary-amd64/Packages`).
pub fn index_dir(rel: &str) -> &str {
    rel.rfind('/').map_or("", |i| &rel[..=i])
}

/// The uncompressed index in folder `dir` (`…/source/Sources`, else `…/Packages`).
pub fn plain_index(dir: &str) -> String {
    if dir.ends_with("source/") {
        format!("{dir}Sources")
    } else {
        format!("{dir}Packages")
    }
}

/// A chunk's stanzas by path; each stanza text ends in a blank line.
type Chunk = BTreeMap<String, String>;

/// The stanzas of a published chunk. `None` when the text is not what publishing writes.
fn parse_chunk(text: &[u8]) -> Option<Chunk> {
    let text = std::str::from_utf8(text).ok()?;
    let mut chunk = Chunk::new();
    for stanza in text.split_inclusive("\n\n") {
        let path = match stanza
            .split('\n')
            .find_map(|l| l.strip_prefix("Filename: "))
        {
            Some(p) => p.to_owned(),
            None => source::stanza_path(stanza)?,
        };
        chunk.insert(path, stanza.to_owned());
    }
    Some(chunk)
}

/// A chunk's plain text and gzip member (none when the chunk is empty).
pub(crate) fn render_chunk(chunk: &Chunk) -> Result<(Vec<u8>, Vec<u8>)> {
    let text: String = chunk.values().map(String::as_str).collect();
    let gz = if text.is_empty() {
        Vec::new()
    } else {
        compress(text.as_bytes())?
    };
    Ok((text.into_bytes(), gz))
}

/// The dist's layout: components and architectures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    components: Vec<String>,
    architectures: Vec<String>,
    default_arches: bool,
}

impl Shape {
    fn of(records: &[FileRecord]) -> Self {
        let components: BTreeSet<&str> = records.iter().map(component).collect();
        let arches: BTreeSet<&str> = records
            .iter()
            .map(arch)
            .filter(|a| *a != "all" && *a != source::SOURCE_ARCH)
            .collect();
        let default_arches = arches.is_empty();
        let architectures = if default_arches {
            DEFAULT_ARCHES.iter().map(|a| (*a).to_owned()).collect()
        } else {
            arches.into_iter().map(str::to_owned).collect()
        };
        Self {
            components: components.into_iter().map(str::to_owned).collect(),
            architectures,
            default_arches,
        }
    }

    /// Whether a record fits this shape without changing it.
    fn fits(&self, r: &FileRecord) -> bool {
        self.components.iter().any(|c| c == component(r))
            && match arch(r) {
                "all" | source::SOURCE_ARCH => true,
                a => !self.default_arches && self.architectures.iter().any(|x| x == a),
            }
    }

    /// `(component, architecture, index path)` of every index: `Packages` and `Contents` per
    /// architecture and `Sources` (architecture `source`), for each component.
    fn indexes(&self) -> Vec<(&str, &str, String)> {
        let mut out = Vec::new();
        for c in &self.components {
            for a in &self.architectures {
                out.push((c.as_str(), a.as_str(), format!("{c}/binary-{a}/Packages")));
                out.push((c.as_str(), a.as_str(), format!("{c}/Contents-{a}")));
            }
            out.push((
                c.as_str(),
                source::SOURCE_ARCH,
                format!("{c}/source/Sources"),
            ));
        }
        out
    }
}

/// How a dist was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// From all its records.
    Full,
    /// By applying the records changed since the last publish.
    Changes,
    /// Nothing had changed; the published files stay.
    Unchanged,
}

/// Regenerates and signs one dist; `full` lays it out from all its records, otherwise only the
/// records changed since the last publish are applied when that is sound.
///
/// # Errors
/// Catalog, storage and signing failures.
pub async fn publish(cx: &RepoContext, dist: &str, full: bool, node: &Node) -> Result<Published> {
    // Read first: every change stamped at or below it is visible to the queries below.
    let generation = cx.catalog.generation().await?;
    let previous = load_state(cx, dist).await?;
    if !full && let Some(previous) = &previous {
        match publish_changes(cx, dist, generation, previous, node).await? {
            Some(true) => return Ok(Published::Changes),
            Some(false) => return Ok(Published::Unchanged),
            None => {}
        }
    }
    publish_all(cx, dist, generation, previous.as_ref(), node).await?;
    Ok(Published::Full)
}

/// Lays a dist out again from all its records, writing every index file even where the
/// published one looks unchanged (a repair after index files were lost).
///
/// # Errors
/// Catalog, storage and signing failures.
pub async fn rebuild(cx: &RepoContext, dist: &str, node: &Node) -> Result<()> {
    let generation = cx.catalog.generation().await?;
    publish_all(cx, dist, generation, None, node).await
}

/// The full publish.
async fn publish_all(
    cx: &RepoContext,
    dist: &str,
    generation: u64,
    previous: Option<&State>,
    node: &Node,
) -> Result<()> {
    let records = cx.catalog.list(ListQuery::all().in_scope(dist)).await?;
    if records.is_empty() {
        // The dist's last package went: the dist goes, its state first (InRelease is then a
        // 404), then every file it published, current or replaced.
        return retire::delete_dist(cx, dist).await;
    }
    let shape = Shape::of(&records);
    let chunks = chunks_for(records.len() as u64);
    let none = State::default();
    let previous = previous.unwrap_or(&none);
    let mut draft = Draft::default();
    for (comp, a, rel) in shape.indexes() {
        if contents::is_contents(&rel) {
            let parts = contents::full(cx, &records, comp, a, chunks, &node.lists).await?;
            draft.write(cx, dist, &rel, parts, previous, node).await?;
            continue;
        }
        let mut split = vec![Chunk::new(); usize::try_from(chunks).unwrap_or(1)];
        for r in records.iter().filter(|r| belongs(r, comp, a)) {
            if let Some(chunk) = split.get_mut(chunk_of(&r.key, chunks)) {
                chunk.insert(r.path.clone(), entry(r) + "\n");
            }
        }
        let mut parts = Parts::default();
        for chunk in &split {
            let (text, gz) = render_chunk(chunk)?;
            parts.push(text, gz);
        }
        draft.write(cx, dist, &rel, parts, previous, node).await?;
    }
    let state = State {
        generation: Some(generation),
        count: records.len() as u64,
        chunks,
        ..State::default()
    };
    finish(cx, dist, state, shape, draft, previous, node).await
}

/// The incremental publish: whether anything changed, `None` when it cannot be sure and a full
/// one must run.
async fn publish_changes(
    cx: &RepoContext,
    dist: &str,
    generation: u64,
    previous: &State,
    node: &Node,
) -> Result<Option<bool>> {
    let Some(since) = previous.generation else {
        return Ok(None);
    };
    if previous.chunks == 0 {
        return Ok(None);
    }
    let shape = Shape {
        components: previous.components.clone(),
        architectures: previous.architectures.clone(),
        default_arches: previous.default_arches,
    };
    // Both queries stop at `generation`: uploads committed meanwhile are the next publish's.
    let changed = cx
        .catalog
        .list(
            ListQuery::all()
                .in_scope(dist)
                .changed_since(since)
                .changed_until(generation),
        )
        .await?;
    if !changed.iter().all(|r| shape.fits(r)) {
        return Ok(None);
    }
    let changed_paths: BTreeSet<&str> = changed.iter().map(|r| r.path.as_str()).collect();
    // Paths that were published already: replaced, not added.
    let mut replaced: BTreeSet<&str> = BTreeSet::new();
    let mut rewritten = Vec::new();
    for (comp, a, rel) in shape.indexes() {
        let mine: Vec<&FileRecord> = changed.iter().filter(|r| belongs(r, comp, a)).collect();
        if mine.is_empty() {
            continue;
        }
        let Some(mut parts) = node.plain.parts(cx, previous, &rel).await? else {
            return Ok(None);
        };
        if contents::is_contents(&rel) {
            let index = (comp, a);
            match contents::apply(cx, dist, parts, &mine, index, previous.chunks, &node.lists)
                .await?
            {
                Some(parts) => rewritten.push((rel, parts)),
                None => return Ok(None),
            }
            continue;
        }
        let mut touched: HashMap<usize, Vec<&FileRecord>> = HashMap::new();
        for r in mine {
            touched
                .entry(chunk_of(&r.key, previous.chunks))
                .or_default()
                .push(r);
        }
        for (i, records) in touched {
            let Some(mut chunk) = parts.text().get(i).and_then(|t| parse_chunk(t)) else {
                return Ok(None);
            };
            for p in &changed_paths {
                if chunk.remove(*p).is_some() {
                    replaced.insert(p);
                }
            }
            for r in records {
                chunk.insert(r.path.clone(), entry(r) + "\n");
            }
            let (text, gz) = render_chunk(&chunk)?;
            parts.set(i, text, gz);
        }
        rewritten.push((rel, parts));
    }
    let count = previous.count + changed.len().saturating_sub(replaced.len()) as u64;
    // Removals leave no stamped row: when one happened since the last publish (in any dist of
    // the repo), the count shows whether it was here (or a replace committed meanwhile moved a
    // row past `generation`); the full publish is the sound answer then. Without one, counting
    // the dist's rows would only cost a scan of them.
    if count > previous.chunks * CHUNK_TARGET * 4 && previous.chunks < MAX_CHUNKS
        || cx.catalog.last_removal().await? > since
            && cx
                .catalog
                .count(ListQuery::all().in_scope(dist).changed_until(generation))
                .await?
                != count
    {
        return Ok(None);
    }
    if changed.is_empty() {
        return Ok(Some(false));
    }
    let mut draft = Draft::default();
    for (_, _, rel) in shape.indexes() {
        if !rewritten.iter().any(|(r, _)| *r == rel) && !draft.keep(previous, &rel) {
            return Ok(None);
        }
    }
    for (rel, parts) in rewritten {
        draft.write(cx, dist, &rel, parts, previous, node).await?;
    }
    let state = State {
        generation: Some(generation),
        count,
        chunks: previous.chunks,
        ..State::default()
    };
    finish(cx, dist, state, shape, draft, previous, node).await?;
    Ok(Some(true))
}

/// Writes `Release` for the drafted files, signs it and switches the dist's state; then, when
/// the repo asks for it and the indexes changed, takes an automatic snapshot; then, when due,
/// deletes index files replaced long enough ago.
async fn finish(
    cx: &RepoContext,
    dist: &str,
    mut state: State,
    shape: Shape,
    draft: Draft,
    previous: &State,
    node: &Node,
) -> Result<()> {
    let changed = previous.files != draft.files;
    let now = time::now_millis();
    let mut release = format!(
        "Origin: artifactd\nLabel: {repo}\nSuite: {dist}\nCodename: {dist}\nDate: {date}\nArchitectures: {arches}\nComponents: {comps}\nDescription: artifactd repository {repo}, {dist}\nAcquire-By-Hash: yes\nSnapshots: {base}snapshots/@SNAPSHOTID@/\nSHA256:\n",
        base = cx.base_url,
        repo = cx.repo,
        date = time::rfc2822(now),
        arches = shape.architectures.join(" "),
        comps = shape.components.join(" "),
    );
    for (name, f) in &draft.files {
        release.push_str(&format!(" {} {:>16} {name}\n", f.sha256, f.size));
    }
    // The keys that sign this Release, which apt (2.3 and later) accepts for the next one: the
    // new key of a rotation is listed before the old one stops signing.
    let signers = cx.signer.fingerprints().await?;
    if !signers.is_empty() {
        let at = release.find("SHA256:\n").unwrap_or(release.len());
        release.insert_str(at, &format!("Signed-By: {}\n", signers.join(", ")));
    }
    state.inrelease = cx.signer.sign_cleartext(&release).await?;
    state.release_gpg = cx.signer.sign_detached(release.as_bytes()).await?;
    state.release = release;
    state.components = shape.components;
    state.architectures = shape.architectures;
    state.default_arches = shape.default_arches;
    state.files = draft.files;
    state.layout = draft.layout;
    let body = serde_json::to_vec(&state).map_err(|e| Error::internal("dist state", e))?;
    cx.blobs
        .put(&state_path(dist), PutPayload::from(body))
        .await?;
    if cx.settings.auto_snapshot && changed {
        crate::snapshot::take_auto(cx, dist, &state, now, node).await?;
    }
    node.sweeper.maybe_sweep(cx, dist, &state, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_with_the_dist() {
        assert_eq!(chunks_for(0), 1);
        assert_eq!(chunks_for(64), 1);
        assert_eq!(chunks_for(65), 2);
        assert_eq!(chunks_for(10_000), 256);
        assert_eq!(chunks_for(10_000_000), MAX_CHUNKS);
    }

    #[test]
    fn a_chunk_reads_back_by_path() {
        let text = "Package: a\nFilename: pool/a.deb\nSize: 1\n\nPackage: b\nX: y\n z\nFilename: pool/b.deb\nSize: 2\n\n";
        let chunk = parse_chunk(text.as_bytes()).expect("parses");
        assert_eq!(
            chunk.keys().collect::<Vec<_>>(),
            ["pool/a.deb", "pool/b.deb"]
        );
        assert_eq!(
            render_chunk(&chunk).expect("render").0,
            text.as_bytes().to_vec()
        );
        assert!(parse_chunk(b"Package: a\n\n").is_none());
    }
}
