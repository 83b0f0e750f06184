//! The plain `Packages` files. Only `Packages.gz` is stored; the plain text is needed for its
//! hash in `Release`, for the incremental publish, and for the rare client that fetches it.

use std::io::Read as _;
use std::sync::Arc;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::{Error, RepoContext, Result};

use crate::bounded::Bounded;
use crate::index::{State, read_blob};

/// The chunks of one `Packages` file being published: text and gzip member per chunk.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) text: Vec<Bytes>,
    pub(crate) gz: Vec<Bytes>,
}

/// Plain `Packages` texts, chunk by chunk, of the latest `.gz` of each index this node published
/// or read. An entry names its gzip's blob, which is the gzip's hash, so it is never stale. The
/// plain file is not stored (apt fetches the `.gz`); what is not here is inflated from the `.gz`,
/// member by member.
#[derive(Debug)]
pub struct PlainCache {
    /// By (repo, index folder): the `.gz` blob and the plain chunks.
    texts: Bounded<(String, String), PlainEntry>,
}

type PlainEntry = (String, Arc<Vec<Bytes>>);

/// What [`PlainCache`] holds at most.
const PLAIN_CACHE_BYTES: usize = 64 << 20;

impl Default for PlainCache {
    fn default() -> Self {
        Self {
            texts: Bounded::new(PLAIN_CACHE_BYTES),
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

    pub(crate) fn get(&self, repo: &str, gz_blob: &str, rel: &str) -> Option<Arc<Vec<Bytes>>> {
        self.texts
            .get(&Self::key(repo, gz_blob, rel))
            .filter(|(blob, _)| blob == gz_blob)
            .map(|(_, texts)| texts)
    }

    pub(crate) fn insert(&self, repo: &str, gz_blob: &str, rel: &str, texts: Arc<Vec<Bytes>>) {
        let bytes = texts.iter().map(Bytes::len).sum();
        self.texts.insert(
            Self::key(repo, gz_blob, rel),
            (gz_blob.to_owned(), texts),
            bytes,
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }

    /// The plain chunks of `rel` as `state` published it, with its gzip members; `None` when the
    /// published files do not match the state's layout.
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
        let Some(gz) = read_blob(cx, &BlobPath::from(gz_file.blob.as_str())).await? else {
            return Ok(None);
        };
        let mut members = Vec::new();
        let mut g = 0usize;
        for &(_, gl) in layout {
            let Some(end) = usize::try_from(gl).ok().and_then(|gl| g.checked_add(gl)) else {
                return Ok(None);
            };
            if end > gz.len() {
                return Ok(None);
            }
            members.push(gz.slice(g..end));
            g = end;
        }
        // An index with no stanzas is one empty gzip stream and no member.
        if g != gz.len() && g != 0 {
            return Ok(None);
        }
        let cached = self.get(&cx.repo, &gz_file.blob, rel);
        let text = match cached {
            Some(t) => t,
            None => {
                let mut texts = Vec::with_capacity(members.len());
                for (member, &(tl, _)) in members.iter().zip(layout) {
                    let mut text = Vec::new();
                    if !member.is_empty() {
                        flate2::read::GzDecoder::new(member.as_ref())
                            .read_to_end(&mut text)
                            .map_err(|e| {
                                Error::internal("a published Packages.gz is corrupt", e)
                            })?;
                    }
                    if text.len() as u64 != tl {
                        return Ok(None);
                    }
                    texts.push(Bytes::from(text));
                }
                let texts = Arc::new(texts);
                self.insert(&cx.repo, &gz_file.blob, rel, texts.clone());
                texts
            }
        };
        Ok(Some(Parts {
            text: text.as_ref().clone(),
            gz: members,
        }))
    }

    /// The plain `Packages` at `rel` of a published dist.
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
