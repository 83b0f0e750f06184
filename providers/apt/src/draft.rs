//! What one publish writes: each index's `.gz` (and for `Sources` its `.xz`) under its by-hash
//! name, the by-hash alias of its plain text, and the entries `Release` lists, or the published
//! files kept when an index did not change.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::object_store::{ObjectStoreExt as _, PutPayload};
use artifactd_plugin_api::{RepoContext, Result};
use sha2::Digest as _;

use crate::index::{IndexFile, Node, State, compress, hex, index_dir};
use crate::plain::Parts;
use crate::retire;

/// What one publish writes: the new `Packages` files and their chunk layout.
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
    /// Only the compressed forms are stored; the plain text is hashed for `Release` and kept in
    /// `plain`.
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
            .text
            .iter()
            .zip(&parts.gz)
            .map(|(t, g)| (t.len() as u64, g.len() as u64))
            .collect();
        let mut hasher = sha2::Sha256::new();
        for t in &parts.text {
            hasher.update(t);
        }
        let sha = hex(&hasher.finalize());
        if previous.layout.get(rel) == Some(&layout)
            && previous.files.get(rel).is_some_and(|p| p.sha256 == sha)
            && self.keep(previous, rel)
        {
            return Ok(());
        }
        let size = parts.text.iter().map(|t| t.len() as u64).sum();
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
            let xz = compress_xz(&parts.text)?;
            let blob = self.put(cx, dist, rel, xz, node).await?;
            self.files.insert(format!("{rel}.xz"), blob);
        }
        let mut gz: Vec<u8> = parts.gz.concat();
        if gz.is_empty() {
            gz = compress(b"")?;
        }
        let gz = self.put(cx, dist, rel, gz, node).await?;
        let blob = gz.blob.clone();
        // The plain file's by-hash name, for clients of this Release after it is replaced.
        cx.blobs
            .put(
                &retire::alias_path(dist, rel, &sha),
                PutPayload::from(blob.clone().into_bytes()),
            )
            .await?;
        node.plain
            .insert(&cx.repo, &blob, rel, Arc::new(parts.text));
        self.files.insert(format!("{rel}.gz"), gz);
        Ok(())
    }

    /// Stores one compressed form of index `rel` under its by-hash name.
    async fn put(
        &self,
        cx: &RepoContext,
        dist: &str,
        rel: &str,
        body: Vec<u8>,
        node: &Node,
    ) -> Result<IndexFile> {
        let sha256 = hex(&sha2::Sha256::digest(&body));
        let blob = format!("dists/{dist}/{}by-hash/SHA256/{sha256}", index_dir(rel));
        let size = body.len() as u64;
        cx.blobs
            .put(&BlobPath::from(blob.as_str()), PutPayload::from(body))
            .await?;
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
