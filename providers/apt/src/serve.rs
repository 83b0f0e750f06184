//! Serving a published dist: the signed Release files and the index files, by name and by
//! hash, from the dist's state.

use std::sync::Arc;

use artifactd_plugin_api::http::HeaderValue;
use artifactd_plugin_api::http::header::CACHE_CONTROL;
use artifactd_plugin_api::object_store::path::Path as BlobPath;
use artifactd_plugin_api::{BlobRef, Error, RepoContext, Result, ServeResponse};

use crate::{AptProvider, index, retire, view};

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
            let rel = format!(
                "{}Packages",
                rest.split("by-hash/").next().unwrap_or_default()
            );
            let immutable = HeaderValue::from_static("public, max-age=31536000, immutable");
            let mut listed_gz = false;
            if let Ok(state) = self.state(cx, dist).await {
                if state.files.get(&rel).is_some_and(|f| f.sha256 == hexpart) {
                    return Ok(ServeResponse::bytes(
                        "application/octet-stream",
                        self.node.plain.plain(cx, &state, &rel).await?,
                    ));
                }
                listed_gz = state
                    .files
                    .get(&format!("{rel}.gz"))
                    .is_some_and(|f| f.sha256 == hexpart);
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
                let ct = if rest.ends_with(".gz") {
                    "application/gzip"
                } else if rest.ends_with(".xz") {
                    "application/x-xz"
                } else {
                    "text/plain; charset=utf-8"
                };
                Ok(
                    ServeResponse::blob(ct, BlobRef::Derived(BlobPath::from(blob.as_str())))
                        .with_header(CACHE_CONTROL, no_cache),
                )
            }
        }
    }
}
