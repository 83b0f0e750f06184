//! Serving a published dist: the signed Release files and the index files, by name and by
//! hash, from the dist's state.

use std::sync::Arc;

use artifactd_plugin_api::http::HeaderValue;
use artifactd_plugin_api::http::header::CACHE_CONTROL;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::{BlobRef, Error, RepoContext, Result, ServeResponse};

use artifactd_plugin_api::serde_json;

use crate::{AptProvider, index, retire, snapshot, view};

impl AptProvider {
    pub(crate) async fn state(&self, cx: &RepoContext, dist: &str) -> Result<Arc<index::State>> {
        let generation = cx.catalog.generation().await?;
        let key = (cx.repo.clone(), dist.to_owned());
        if let Some((g, s)) = self
            .cache
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && *g == generation
        {
            return Ok(s.clone());
        }
        let state = index::load_state(cx, dist)
            .await?
            .ok_or_else(|| Error::not_found(format!("There is no dist {dist:?} in this repo.")))?;
        let state = Arc::new(state);
        let mut states = self
            .cache
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if states.len() > 1024 {
            states.clear();
        }
        states.insert(key, (generation, state.clone()));
        Ok(state)
    }

    pub(crate) async fn serve_dist(
        &self,
        cx: &RepoContext,
        dist: &str,
        rest: &str,
    ) -> Result<ServeResponse> {
        if rest.is_empty() {
            return view::dist_page(cx, dist).await;
        }
        if rest == "install" {
            let state = self.state(cx, dist).await?;
            return Ok(ServeResponse::bytes(
                "text/x-shellscript; charset=utf-8",
                view::install_script(cx, dist, &state),
            ));
        }
        if rest.contains("/by-hash/SHA256/") {
            let hexpart = rest.rsplit('/').next().unwrap_or_default();
            if hexpart.len() != 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::not_found("There is no such index file."));
            }
            // Compressed indexes are stored under their hash; the plain `Packages` (which apt
            // fetches only when the `.gz` fails, or when told to) is inflated from its `.gz`.
            // One folder may hold several indexes (`main/Contents-amd64`, `-i386`).
            let dir = rest.split("by-hash/").next().unwrap_or_default();
            let rel = index::plain_index(dir);
            let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
            let mut listed_gz = false;
            if let Ok(state) = self.state(cx, dist).await {
                let mut here = state
                    .files
                    .iter()
                    .filter(|(r, f)| index::index_dir(r) == dir && f.sha256 == hexpart);
                if let Some((plain, _)) = here.clone().find(|(_, f)| f.blob.is_empty()) {
                    return Ok(ServeResponse::bytes(
                        "application/octet-stream",
                        self.node.plain.plain(cx, &state, plain).await?,
                    ));
                }
                listed_gz = here.next().is_some();
            }
            // Not current: a replaced plain `Packages` that an earlier Release listed.
            if !listed_gz && let Some(text) = retire::retired_plain(cx, dist, &rel, hexpart).await?
            {
                return Ok(ServeResponse::bytes("application/octet-stream", text)
                    .with_header(CACHE_CONTROL, immutable));
            }
            return Ok(ServeResponse::blob(
                "application/octet-stream",
                BlobRef::Derived(BlobPath::from(format!("dists/{dist}/{rest}"))),
            )
            .with_header(CACHE_CONTROL, immutable));
        }
        let state = self.state(cx, dist).await?;
        let no_cache = HeaderValue::from_static("no-cache");
        match rest {
            "InRelease" => Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                state.inrelease.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            "Release" => Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                state.release.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            "Release.gpg" => Ok(ServeResponse::bytes(
                "application/pgp-signature",
                state.release_gpg.clone(),
            )
            .with_header(CACHE_CONTROL, no_cache)),
            _ => {
                let blob = &state
                    .files
                    .get(rest)
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "There is no index file {rest:?} in dist {dist:?}."
                        ))
                    })?
                    .blob;
                if blob.is_empty() {
                    return Ok(ServeResponse::bytes(
                        "text/plain; charset=utf-8",
                        self.node.plain.plain(cx, &state, rest).await?,
                    )
                    .with_header(CACHE_CONTROL, no_cache));
                }
                Ok(ServeResponse::blob(
                    index_content_type(rest),
                    BlobRef::Derived(BlobPath::from(blob.as_str())),
                )
                .with_header(CACHE_CONTROL, no_cache))
            }
        }
    }
}

impl AptProvider {
    /// A read below `snapshots/`: the list (`snapshots/`), a frozen dist
    /// (`snapshots/<name>/dists/<dist>/…`) or its pool (`snapshots/<name>/pool/…`).
    pub(crate) async fn serve_snapshot(
        &self,
        cx: &RepoContext,
        rest: &str,
    ) -> Result<ServeResponse> {
        let all = self.snapshots.names(cx).await?;
        if rest.is_empty() {
            let list: Vec<_> = all
                .iter()
                .map(|(name, dist)| serde_json::json!({ "name": name, "dist": dist }))
                .collect();
            return Ok(ServeResponse::bytes(
                "application/json",
                serde_json::to_vec(&serde_json::json!({ "snapshots": list }))
                    .map_err(|e| Error::internal("snapshot list", e))?,
            ));
        }
        let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if !crate::valid_segment(name) {
            return Err(Error::not_found("There is no such snapshot."));
        }
        let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
        if rest.starts_with("pool/") {
            let dists: std::collections::BTreeSet<&str> =
                all.iter().map(|(_, d)| d.as_str()).collect();
            for dist in dists {
                let Some(found) = snapshot::resolve(&all, name, dist) else {
                    continue;
                };
                let snap = self.snapshots.get(cx, found, dist).await?;
                if let Some(sha256) = snap.file(rest) {
                    return Ok(ServeResponse::blob(
                        crate::pool_content_type(rest),
                        BlobRef::Content {
                            sha256: sha256.to_owned(),
                        },
                    )
                    .with_header(CACHE_CONTROL, immutable));
                }
            }
            return Err(Error::not_found(format!(
                "There is no file {rest:?} in snapshot {name:?}."
            )));
        }
        let Some((dist, file)) = rest.strip_prefix("dists/").and_then(|r| r.split_once('/')) else {
            return Err(Error::not_found(format!(
                "There is nothing at this path of snapshot {name:?}."
            )));
        };
        let found = snapshot::resolve(&all, name, dist).ok_or_else(|| {
            Error::not_found(format!("There is no snapshot {name:?} of dist {dist:?}."))
        })?;
        let snap = self.snapshots.get(cx, found, dist).await?;
        let state = &snap.state;
        let text = |body: &str| {
            ServeResponse::bytes("text/plain; charset=utf-8", body.to_owned())
                .with_header(CACHE_CONTROL, immutable.clone())
        };
        match file {
            "InRelease" => return Ok(text(&state.inrelease)),
            "Release" => return Ok(text(&state.release)),
            "Release.gpg" => {
                return Ok(ServeResponse::bytes(
                    "application/pgp-signature",
                    state.release_gpg.clone(),
                )
                .with_header(CACHE_CONTROL, immutable));
            }
            _ => {}
        }
        // By name, or by hash: `main/binary-amd64/by-hash/SHA256/<hex>` is the file of that
        // folder with that hash.
        let rel = match file.split_once("by-hash/SHA256/") {
            Some((dir, hex)) => state
                .files
                .iter()
                .find(|(rel, f)| {
                    f.sha256 == hex
                        && rel
                            .rsplit_once('/')
                            .is_some_and(|(d, _)| format!("{d}/") == dir)
                })
                .map(|(rel, _)| rel.as_str()),
            None => state.files.contains_key(file).then_some(file),
        }
        .ok_or_else(|| {
            Error::not_found(format!(
                "There is no index file {file:?} in snapshot {name:?} of dist {dist:?}."
            ))
        })?;
        let blob = state
            .files
            .get(rel)
            .map(|f| f.blob.clone())
            .unwrap_or_default();
        if blob.is_empty() {
            return Ok(ServeResponse::bytes(
                "text/plain; charset=utf-8",
                self.node.plain.plain(cx, state, rel).await?,
            )
            .with_header(CACHE_CONTROL, immutable));
        }
        Ok(ServeResponse::blob(
            index_content_type(rel),
            BlobRef::Derived(BlobPath::from(blob.as_str())),
        )
        .with_header(CACHE_CONTROL, immutable))
    }
}

/// The content type of a stored index file, by its name.
fn index_content_type(rel: &str) -> &'static str {
    if rel.ends_with(".gz") {
        "application/gzip"
    } else if rel.ends_with(".xz") {
        "application/x-xz"
    } else {
        "text/plain; charset=utf-8"
    }
}
