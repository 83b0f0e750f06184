//! What one publish writes: each index's `.gz` under its by-hash name, the by-hash alias of its
//! plain text, and the entries `Release` lists, or the published files kept when an index did
//! not change.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Keeps an index as `previous` published it; `false` when it has no such index.
    pub(crate) fn keep(&mut self, previous: &State, rel: &str) -> bool {
        let gz_name = format!("{rel}.gz");
        let (Some(layout), Some(p), Some(g)) = (
            previous.layout.get(rel),
            previous.files.get(rel),
            previous.files.get(&gz_name),
        ) else {
            return false;
        };
        self.layout.insert(rel.to_owned(), layout.clone());
        self.files.insert(rel.to_owned(), p.clone());
        self.files.insert(gz_name, g.clone());
        true
    }

    /// Writes one index from its chunks, or keeps the published files when nothing changed.
    /// Only `Packages.gz` is stored; the plain text is hashed for `Release` and kept in `plain`.
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
        let mut gz: Vec<u8> = parts.gz.concat();
        if gz.is_empty() {
            gz = compress(b"")?;
        }
        let digest = hex(&sha2::Sha256::digest(&gz));
        let dir = index_dir(rel);
        let blob = format!("dists/{dist}/{dir}by-hash/SHA256/{digest}");
        let size = gz.len() as u64;
        cx.blobs
            .put(&BlobPath::from(blob.as_str()), PutPayload::from(gz))
            .await?;
        // The plain file's by-hash name, for clients of this Release after it is replaced.
        cx.blobs
            .put(
                &retire::alias_path(dist, rel, &sha),
                PutPayload::from(blob.clone().into_bytes()),
            )
            .await?;
        node.sweeper.wrote(&cx.repo, dist, size);
        node.plain
            .insert(&cx.repo, &blob, rel, Arc::new(parts.text));
        self.files.insert(
            format!("{rel}.gz"),
            IndexFile {
                sha256: digest,
                size,
                blob,
            },
        );
        Ok(())
    }
}
