//! What one publish writes: each index's `.gz` (and for `Sources` its `.xz`) under its by-hash
//! name, the by-hash alias of its plain text, and the entries `Release` lists, or the published
//! files kept when an index did not change.

use std::collections::BTreeMap;
use std::io::Write as _;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::{RepoContext, Result};
use sha2::Digest as _;

use crate::index::{IndexFile, Node, State, compress, hex, index_dir};
use crate::plain::Parts;
use crate::retire;

/// What one publish writes: the new index files and their chunk layout.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub(crate) files: BTreeMap<String, IndexFile>,
    pub(crate) layout: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Draft {
    /// Keeps an index as `previous` published it; `false` when it has no such index (or not
    /// every compressed form of it).
    pub(crate) fn keep(&mut self, previous: &State, rel: &str) -> bool {
        let gz_name = format!("{rel}.gz");
        let xz_name = format!("{rel}.xz");
        let (Some(layout), Some(p), Some(g)) = (
            previous.layout.get(rel),
            previous.files.get(rel),
            previous.files.get(&gz_name),
        ) else {
            return false;
        };
        let xz = previous.files.get(&xz_name);
        if wants_xz(rel) && xz.is_none() {
            return false;
        }
        self.layout.insert(rel.to_owned(), layout.clone());
        self.files.insert(rel.to_owned(), p.clone());
        self.files.insert(gz_name, g.clone());
        if let Some(x) = xz {
            self.files.insert(xz_name, x.clone());
        }
        true
    }

    /// Writes one index from its chunks, or keeps the published files when nothing changed.
    /// Only the compressed forms are stored; the plain text is hashed for `Release`, and the
    /// chunks stay in the node's cache for the next publish.
    pub(crate) async fn write(
        &mut self,
        cx: &RepoContext,
        dist: &str,
        rel: &str,
        parts: Parts,
        previous: &State,
        node: &Node,
    ) -> Result<()> {
        let layout: Vec<(u64, u64)> = parts
            .text()
            .iter()
            .zip(parts.gz())
            .map(|(t, g)| (t.len() as u64, g.len() as u64))
            .collect();
        let digests = parts.digests();
        let sha = digests.text;
        if previous.layout.get(rel) == Some(&layout)
            && previous.files.get(rel).is_some_and(|p| p.sha256 == sha)
            && self.keep(previous, rel)
        {
            return Ok(());
        }
        let size = parts.text().iter().map(|t| t.len() as u64).sum();
        self.layout.insert(rel.to_owned(), layout);
        self.files.insert(
            rel.to_owned(),
            IndexFile {
                sha256: sha.clone(),
                size,
                blob: String::new(),
            },
        );
        if wants_xz(rel) {
            let xz = compress_xz(parts.text())?;
            let sha256 = hex(&sha2::Sha256::digest(&xz));
            let blob = self.put(cx, dist, rel, sha256, xz.into(), node).await?;
            self.files.insert(format!("{rel}.xz"), blob);
        }
        let (gz_sha, body) = match digests.gz {
            // One buffer: a store writes a payload part by part, and thousands of small
            // writes cost more than copying the members once.
            Some(gz_sha) => (gz_sha, parts.gz().concat()),
            None => {
                let empty = compress(b"")?;
                (hex(&sha2::Sha256::digest(&empty)), empty)
            }
        };
        let gz = self.put(cx, dist, rel, gz_sha, body.into(), node).await?;
        // The plain file's by-hash name, for clients of this Release after it is replaced.
        cx.blobs
            .put(
                &retire::alias_path(dist, rel, &sha),
                PutPayload::from(gz.blob.clone().into_bytes()),
            )
            .await?;
        node.plain
            .insert(&cx.repo, &gz.blob, rel, parts, digests.prefixes);
        self.files.insert(format!("{rel}.gz"), gz);
        Ok(())
    }

    /// Stores one compressed form of index `rel`, whose SHA-256 is `sha256`, under its by-hash
    /// name.
    async fn put(
        &self,
        cx: &RepoContext,
        dist: &str,
        rel: &str,
        sha256: String,
        body: PutPayload,
        node: &Node,
    ) -> Result<IndexFile> {
        let blob = format!("dists/{dist}/{}by-hash/SHA256/{sha256}", index_dir(rel));
        let size = body.content_length() as u64;
        cx.blobs.put(&BlobPath::from(blob.as_str()), body).await?;
        node.sweeper.wrote(&cx.repo, dist, size);
        Ok(IndexFile { sha256, size, blob })
    }
}

/// Whether index `rel` is also published as `.xz`: `Sources` is, as Debian's archive does (it
/// changes only with a source upload, so its one xz stream is cheap); `Packages` and `Contents`
/// are gzip only, in chunks, so that a publish recompresses only what changed.
fn wants_xz(rel: &str) -> bool {
    rel.ends_with("/Sources")
}

/// One xz stream of an index's text. Preset 1: at most a few MB of text, compressed in a
/// fraction of a second, a little larger than preset 6 would make it.
fn compress_xz(text: &[Bytes]) -> Result<Vec<u8>> {
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    for t in text {
        xz.write_all(t)?;
    }
    Ok(xz.finish()?)
}
