//! The plain texts of the chunked indexes (`Packages`, `Contents`, `Sources`). Only their
//! compressed forms are stored; the plain text is needed for its hash in `Release` (apt 2.6
//! ignores an index whose plain name `Release` does not list), for the incremental publish and
//! for the rare client that fetches it.

use std::io::Read as _;
use std::sync::Arc;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::{Error, RepoContext, Result};
use sha2::Digest as _;

use crate::bounded::Bounded;
use crate::index::{State, hex, read_blob};

/// The chunks of one index being published: text and gzip member per chunk, and what is known
/// of the published files' hashes.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    text: Vec<Bytes>,
    gz: Vec<Bytes>,
    /// The hash states of the published files, valid for the chunks before `clean`.
    prefixes: Prefixes,
    /// The chunks before it are the published ones.
    clean: usize,
}

/// SHA-256 states of an index's plain and gzip files before each chunk (`[i]` has absorbed
/// chunks `..i`, and the last one all of them); empty when not known.
#[derive(Debug, Default, Clone)]
pub(crate) struct Prefixes {
    text: Arc<Vec<sha2::Sha256>>,
    gz: Arc<Vec<sha2::Sha256>>,
}

impl Prefixes {
    fn bytes(&self) -> usize {
        (self.text.len() + self.gz.len()) * std::mem::size_of::<sha2::Sha256>()
    }
}

/// The hashes of an index's plain and gzip files, and their states for the next publish.
pub(crate) struct Digests {
    pub(crate) text: String,
    /// `None` when every chunk is empty (the gzip file is then one empty stream).
    pub(crate) gz: Option<String>,
    pub(crate) prefixes: Prefixes,
}

/// The SHA-256 of `chunks` one after the other, hashed from the first chunk not `clean` on,
/// from the states `known` of the published chunks; and the states before each chunk.
fn resume(chunks: &[Bytes], known: &[sha2::Sha256], clean: usize) -> (String, Vec<sha2::Sha256>) {
    let start = clean.min(known.len().saturating_sub(1));
    let mut states = Vec::with_capacity(chunks.len() + 1);
    match known.get(..=start) {
        Some(known) => states.extend_from_slice(known),
        None => states.push(sha2::Sha256::new()),
    }
    let start = states.len() - 1;
    let mut hasher = states[start].clone();
    for chunk in &chunks[start..] {
        hasher.update(chunk);
        states.push(hasher.clone());
    }
    (hex(&hasher.finalize()), states)
}

impl Parts {
    /// The plain text, chunk by chunk.
    pub(crate) fn text(&self) -> &[Bytes] {
        &self.text
    }

    /// The gzip members, one per chunk (empty for an empty chunk).
    pub(crate) fn gz(&self) -> &[Bytes] {
        &self.gz
    }

    /// Adds a chunk at the end.
    pub(crate) fn push(&mut self, text: Vec<u8>, gz: Vec<u8>) {
        self.text.push(Bytes::from(text));
        self.gz.push(Bytes::from(gz));
    }

    /// Replaces chunk `i`.
    pub(crate) fn set(&mut self, i: usize, text: Vec<u8>, gz: Vec<u8>) {
        self.text[i] = Bytes::from(text);
        self.gz[i] = Bytes::from(gz);
        self.clean = self.clean.min(i);
    }

    /// The SHA-256 of the plain and the gzip file: each hashed from the first chunk that
    /// changed, so a publish that rewrote one chunk hashes on average half of each.
    pub(crate) fn digests(&self) -> Digests {
        let (text, text_states) = resume(&self.text, &self.prefixes.text, self.clean);
        let (gz, gz_states) = if self.gz.iter().all(Bytes::is_empty) {
            (None, Vec::new())
        } else {
            let (gz, states) = resume(&self.gz, &self.prefixes.gz, self.clean);
            (Some(gz), states)
        };
        Digests {
            text,
            gz,
            prefixes: Prefixes {
                text: Arc::new(text_states),
                gz: Arc::new(gz_states),
            },
        }
    }
}

/// The chunks of the latest gzip file of each index this node published or read: plain texts,
/// members and hash states. An entry names its gzip's blob, which is the gzip's hash, so it is
/// never stale. The plain file is not stored (apt fetches the `.gz`); what is not here is
/// inflated from the `.gz`, member by member.
#[derive(Debug)]
pub struct PlainCache {
    /// By (repo, index folder and name): the `.gz` blob and its chunks.
    entries: Bounded<(String, String), (String, Arc<Cached>)>,
}

/// What [`PlainCache`] keeps of one gzip file.
#[derive(Debug)]
pub(crate) struct Cached {
    text: Vec<Bytes>,
    gz: Vec<Bytes>,
    prefixes: Prefixes,
}

/// What [`PlainCache`] holds at most.
const PLAIN_CACHE_BYTES: usize = 64 << 20;

impl Default for PlainCache {
    fn default() -> Self {
        Self {
            entries: Bounded::new(PLAIN_CACHE_BYTES),
        }
    }
}

impl PlainCache {
    /// One entry per index: its folder (from the blob's name, so per dist) and its file name
    /// (a folder may hold several, such as `main/Contents-amd64` and `main/Contents-i386`).
    fn key(repo: &str, gz_blob: &str, rel: &str) -> (String, String) {
        let folder = gz_blob.split("/by-hash/").next().unwrap_or(gz_blob);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        (repo.to_owned(), format!("{folder}/{name}"))
    }

    pub(crate) fn get(&self, repo: &str, gz_blob: &str, rel: &str) -> Option<Arc<Cached>> {
        self.entries
            .get(&Self::key(repo, gz_blob, rel))
            .filter(|(blob, _)| blob == gz_blob)
            .map(|(_, cached)| cached)
    }

    /// Keeps the chunks of the gzip file `gz_blob`, whose hash states are `prefixes` (empty
    /// when not known).
    pub(crate) fn insert(
        &self,
        repo: &str,
        gz_blob: &str,
        rel: &str,
        parts: Parts,
        prefixes: Prefixes,
    ) {
        let bytes = parts
            .text
            .iter()
            .chain(&parts.gz)
            .map(Bytes::len)
            .sum::<usize>()
            + prefixes.bytes();
        let cached = Cached {
            text: parts.text,
            gz: parts.gz,
            prefixes,
        };
        self.entries.insert(
            Self::key(repo, gz_blob, rel),
            (gz_blob.to_owned(), Arc::new(cached)),
            bytes,
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The chunks of `rel` as `state` published it; `None` when the published files do not
    /// match the state's layout.
    pub(crate) async fn parts(
        &self,
        cx: &RepoContext,
        state: &State,
        rel: &str,
    ) -> Result<Option<Parts>> {
        let (Some(layout), Some(gz_file)) =
            (state.layout.get(rel), state.files.get(&format!("{rel}.gz")))
        else {
            return Ok(None);
        };
        if let Some(c) = self.get(&cx.repo, &gz_file.blob, rel) {
            return Ok(Some(Parts {
                text: c.text.clone(),
                gz: c.gz.clone(),
                prefixes: c.prefixes.clone(),
                clean: c.gz.len(),
            }));
        }
        let Some(gz) = read_blob(cx, &BlobPath::from(gz_file.blob.as_str())).await? else {
            return Ok(None);
        };
        let mut parts = Parts::default();
        let mut g = 0usize;
        for &(tl, gl) in layout {
            let Some(end) = usize::try_from(gl).ok().and_then(|gl| g.checked_add(gl)) else {
                return Ok(None);
            };
            if end > gz.len() {
                return Ok(None);
            }
            let member = gz.slice(g..end);
            g = end;
            let mut text = Vec::new();
            if !member.is_empty() {
                flate2::read::GzDecoder::new(member.as_ref())
                    .read_to_end(&mut text)
                    .map_err(|e| Error::internal("a published index's gzip is corrupt", e))?;
            }
            if text.len() as u64 != tl {
                return Ok(None);
            }
            parts.text.push(Bytes::from(text));
            parts.gz.push(member);
        }
        // An index with no stanzas is one empty gzip stream and no member.
        if g != gz.len() && g != 0 {
            return Ok(None);
        }
        let kept = Parts {
            text: parts.text.clone(),
            gz: parts.gz.clone(),
            ..Parts::default()
        };
        self.insert(&cx.repo, &gz_file.blob, rel, kept, Prefixes::default());
        Ok(Some(parts))
    }

    /// The plain text of index `rel` (`main/binary-amd64/Packages`) of a published dist.
    ///
    /// # Errors
    /// Storage failures; not found when the dist has no such index.
    pub async fn plain(&self, cx: &RepoContext, state: &State, rel: &str) -> Result<Bytes> {
        match self.parts(cx, state, rel).await? {
            Some(parts) => Ok(Bytes::from(parts.text.concat())),
            None => Err(Error::not_found(format!("There is no index file {rel:?}."))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(chunks: &[&str]) -> Parts {
        let mut parts = Parts::default();
        for c in chunks {
            let gz = if c.is_empty() {
                Vec::new()
            } else {
                crate::index::compress(c.as_bytes()).expect("gzip")
            };
            parts.push(c.as_bytes().to_vec(), gz);
        }
        parts
    }

    fn whole(parts: &Parts) -> String {
        hex(&sha2::Sha256::digest(parts.gz().concat()))
    }

    #[test]
    fn the_plain_cache_keeps_the_latest_chunks_of_each_index() {
        let cache = PlainCache::default();
        let blob = |d: &str| format!("dists/stable/main/binary-amd64/by-hash/SHA256/{d}");
        let text = |c: &Cached| c.text.concat();
        let rel = "main/binary-amd64/Packages";
        let put = |repo: &str, blob: &str, rel: &str, t: &str| {
            cache.insert(repo, blob, rel, parts(&[t]), Prefixes::default());
        };
        put("r", &blob("aa"), rel, "one");
        put("r", &blob("bb"), rel, "two");
        put("s", &blob("aa"), rel, "other repo");
        assert!(
            cache.get("r", &blob("aa"), rel).is_none(),
            "replaced, not kept"
        );
        assert_eq!(
            cache.get("r", &blob("bb"), rel).map(|c| text(&c)),
            Some(b"two".to_vec())
        );
        assert_eq!(
            cache.get("s", &blob("aa"), rel).map(|c| text(&c)),
            Some(b"other repo".to_vec())
        );
        assert_eq!(cache.len(), 2);
        // Two indexes of one folder are kept side by side.
        let contents = |d: &str| format!("dists/stable/main/by-hash/SHA256/{d}");
        put("r", &contents("cc"), "main/Contents-amd64", "amd64");
        put("r", &contents("dd"), "main/Contents-i386", "i386");
        assert_eq!(
            cache
                .get("r", &contents("cc"), "main/Contents-amd64")
                .map(|c| text(&c)),
            Some(b"amd64".to_vec())
        );
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn the_hashes_resume_from_the_first_changed_chunk() {
        let plain = |p: &Parts| hex(&sha2::Sha256::digest(p.text().concat()));
        let mut p = parts(&["a\n", "", "b\n", "c\n"]);
        let first = p.digests();
        assert_eq!(first.gz.as_deref(), Some(whole(&p).as_str()));
        assert_eq!(first.text, plain(&p));
        assert_eq!(
            first.prefixes.gz.len(),
            5,
            "a state before each chunk and one after"
        );
        // As the cache hands the published chunks back: their states, nothing changed yet.
        p.prefixes = first.prefixes.clone();
        p.clean = p.gz.len();
        assert_eq!(p.digests().gz, first.gz);
        for (i, t) in [(2, "b2\n"), (1, "x\n"), (3, "")] {
            let gz = crate::index::compress(t.as_bytes()).expect("gzip");
            let gz = if t.is_empty() { Vec::new() } else { gz };
            p.set(i, t.as_bytes().to_vec(), gz);
            let d = p.digests();
            assert_eq!(d.gz, Some(whole(&p)), "after rewriting chunk {i}");
            assert_eq!(d.text, plain(&p), "after rewriting chunk {i}");
            p.prefixes = d.prefixes;
            p.clean = p.gz.len();
        }
        // States that do not belong to these chunks would show: the check can fail.
        p.prefixes = first.prefixes;
        let stale = p.digests();
        assert_ne!(stale.gz, Some(whole(&p)));
        assert_ne!(stale.text, plain(&p));
        assert!(
            parts(&["", ""]).digests().gz.is_none(),
            "no member: one empty stream"
        );
    }
}
