//! Proxies of signed archives (APT): the upstream's files served as they are, trusted from the
//! signed documents down. A signed document (`InRelease`) is fetched for the time to live and
//! verified against the proxy's keyring before anything it lists is fetched; the files it lists
//! (indexes), and the files those list (pool files), are fetched once, checked against the hash
//! the verified chain gives, and cached under that hash. When the upstream fails, the last
//! verified document keeps being served; cached files always are.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::{BlobRef, ProxyFormat, ServeResponse, Vouch};
use sha2::Digest as _;

use super::files::{self, Wanted};
use super::upstream::{FetchError, Upstream};
use super::{Env, Freshness, MAX_PAGE_BYTES, Proxies, Served, bad_gateway, cache, mark};
use crate::db::entities::{proxy_entry, repo};
use crate::http::ApiError;
use crate::keyring::Keyring;

/// A verified document as this node read it.
#[derive(Debug, Clone)]
struct Doc {
    fetched_at: i64,
    sha256: String,
    files: Arc<HashMap<String, Vouch>>,
}

/// What this node knows of one proxy's tree.
#[derive(Debug, Default)]
struct Tree {
    /// The keyring's text and its parsed keys.
    keyring: Option<(String, Arc<Keyring>)>,
    /// Verified documents by path.
    docs: HashMap<String, Doc>,
    /// Files named by the lists read, by path.
    listed: HashMap<String, Vouch>,
    /// The lists read, by SHA-256.
    read: HashSet<String>,
}

/// Every proxy tree this node knows, by repo id.
#[derive(Debug, Default)]
pub(super) struct Trees {
    trees: Mutex<HashMap<i64, Tree>>,
}

impl Trees {
    fn with<T>(&self, repo_id: i64, f: impl FnOnce(&mut Tree) -> T) -> T {
        let mut trees = self
            .trees
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(trees.entry(repo_id).or_default())
    }

    /// The proxy's parsed keyring (parsed once per node and keyring).
    fn keyring(&self, row: &repo::Model, up: &Upstream) -> Result<Arc<Keyring>, ApiError> {
        let Some(text) = up.keyring.as_deref() else {
            return Err(ApiError::new(
                http::StatusCode::BAD_GATEWAY,
                format!(
                    "The proxy repo {} has no keyring to verify its upstream with.",
                    row.name
                ),
            ));
        };
        if let Some(k) = self.with(row.id, |t| {
            t.keyring
                .as_ref()
                .filter(|(t, _)| t == text)
                .map(|(_, k)| k.clone())
        }) {
            return Ok(k);
        }
        let keys = Arc::new(Keyring::parse(text).map_err(|e| {
            ApiError::internal(
                "proxy keyring",
                artifactd_plugin_api::Error::internal_msg(e),
            )
        })?);
        self.with(row.id, |t| {
            t.keyring = Some((text.to_owned(), keys.clone()))
        });
        Ok(keys)
    }
}

fn signed_key(path: &str) -> String {
    format!("signed:{path}")
}

/// A vouched file's key: its content.
fn content_key(sha256: &str) -> String {
    format!("file:sha256:{sha256}")
}

/// What a proxy of a signed tree needs for one request.
pub(super) struct Ctx<'a> {
    pub proxies: &'a Proxies,
    pub env: Env<'a>,
    pub row: &'a repo::Model,
    pub format: &'a dyn ProxyFormat,
    pub up: &'a Upstream,
}

impl Ctx<'_> {
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.up.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Verifies a signed document and reads what it lists.
    fn read_doc(&self, path: &str, bytes: &[u8]) -> Result<Vec<Vouch>, String> {
        let keys = self
            .proxies
            .trees
            .keyring(self.row, self.up)
            .map_err(|e| e.public_message().to_owned())?;
        let text = keys.verify_cleartext(bytes)?;
        self.format
            .vouched_by(path, &text)
            .map_err(|e| e.to_string())
    }

    fn remember(&self, path: &str, fetched_at: i64, sha256: &str, vouches: Vec<Vouch>) -> Doc {
        let doc = Doc {
            fetched_at,
            sha256: sha256.to_owned(),
            files: Arc::new(vouches.into_iter().map(|v| (v.path.clone(), v)).collect()),
        };
        self.proxies.trees.with(self.row.id, |t| {
            t.docs.insert(path.to_owned(), doc.clone());
        });
        doc
    }

    /// Reads a stored document into this node (verifying it again: the keyring may have
    /// changed); `None` when it no longer verifies.
    async fn load(&self, path: &str, e: &proxy_entry::Model) -> Result<Option<Doc>, ApiError> {
        let known = self.proxies.trees.with(self.row.id, |t| {
            t.docs
                .get(path)
                .filter(|d| d.sha256 == e.sha256 && d.fetched_at == e.fetched_at)
                .cloned()
        });
        if known.is_some() {
            return Ok(known);
        }
        let Some(bytes) = self
            .env
            .blobs
            .content_bytes(&e.sha256)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(None);
        };
        match self.read_doc(path, &bytes) {
            Ok(vouches) => Ok(Some(self.remember(path, e.fetched_at, &e.sha256, vouches))),
            Err(why) => {
                tracing::warn!(repo = %self.row.name, path, error = %why, "A cached signed document no longer verifies.");
                Ok(None)
            }
        }
    }

    /// Serves the keyring the upstream is verified with (what clients verify with too).
    pub fn keyring(&self, armored: bool) -> Result<Served, ApiError> {
        let keys = self.proxies.trees.keyring(self.row, self.up)?;
        let body = match (armored, self.up.keyring.as_deref()) {
            (true, Some(text)) => text.as_bytes().to_vec(),
            _ => keys.binary().map_err(|e| {
                ApiError::internal("keyring", artifactd_plugin_api::Error::internal_msg(e))
            })?,
        };
        Ok(Served::Render(ServeResponse::bytes(
            "application/pgp-keys",
            body,
        )))
    }

    /// Serves a signed document: fresh from this node or the shared cache, fetched and verified
    /// now, or the last verified one when the upstream fails.
    pub async fn signed(&self, path: &str) -> Result<Served, ApiError> {
        let now = crate::db::now_millis();
        let ttl = self.ttl_ms();
        let respond = |doc: &Doc, fresh: &Freshness| {
            Served::Render(mark(
                ServeResponse::blob(
                    self.format.content_type(path),
                    BlobRef::Content {
                        sha256: doc.sha256.clone(),
                    },
                ),
                fresh,
            ))
        };
        if let Some(doc) = self.proxies.trees.with(self.row.id, |t| {
            t.docs
                .get(path)
                .filter(|d| now.saturating_sub(d.fetched_at) < ttl)
                .cloned()
        }) {
            return Ok(respond(&doc, &Freshness::Hit));
        }
        let key = signed_key(path);
        let _guard = self
            .proxies
            .locks
            .lock(format!("{}:{key}", self.row.id))
            .await;
        let stored = cache::entry(self.env.db, self.row.id, &key).await?;
        let stored = match &stored {
            Some(e) => self.load(path, e).await?,
            None => None,
        };
        if let Some(doc) = &stored
            && crate::db::now_millis().saturating_sub(doc.fetched_at) < ttl
        {
            return Ok(respond(doc, &Freshness::Hit));
        }
        let url = format!("{}{path}", self.up.url);
        let fetched = match self
            .proxies
            .client
            .get_bytes(self.up, &url, None, MAX_PAGE_BYTES)
            .await
        {
            Ok(f) => self
                .read_doc(path, &f.body)
                .map(|v| (f.body, v))
                .map_err(|why| FetchError::Invalid(format!("{url}: {why}"))),
            Err(FetchError::Status { status: 404, .. }) if stored.is_none() => {
                return Err(ApiError::not_found(format!("The upstream has no {path}.")));
            }
            Err(e) => Err(e),
        };
        match fetched {
            Ok((body, vouches)) => {
                let sha = hex::encode(sha2::Sha256::digest(&body));
                let size = body.len() as u64;
                self.env
                    .blobs
                    .put_content_bytes(body.into(), &sha)
                    .await
                    .map_err(ApiError::from)?;
                let e = cache::store(
                    self.env.db,
                    self.row.id,
                    &key,
                    200,
                    &sha,
                    size,
                    self.format.content_type(path),
                )
                .await?;
                tracing::info!(repo = %self.row.name, path, files = vouches.len(), "Verified an upstream's signed document.");
                let doc = self.remember(path, e.fetched_at, &sha, vouches);
                Ok(respond(&doc, &Freshness::Miss))
            }
            Err(err) => match stored {
                Some(doc) => {
                    tracing::warn!(repo = %self.row.name, path, error = %err, "Upstream failed; serving the last verified document.");
                    Ok(respond(&doc, &Freshness::Stale(err.to_string())))
                }
                None => {
                    tracing::warn!(repo = %self.row.name, path, error = %err, "Upstream failed; nothing verified is cached.");
                    Err(bad_gateway(&err))
                }
            },
        }
    }

    /// Serves a file the verified chain lists: cached under its hash, or fetched and checked.
    pub async fn vouched(&self, path: &str, content: Option<&str>) -> Result<Served, ApiError> {
        let content_type = self.format.content_type(path);
        if let Some(sha) = content
            && let Some(e) = cache::entry(self.env.db, self.row.id, &content_key(sha)).await?
            && e.status == 200
        {
            return Ok(files::cached(content_type, e.sha256));
        }
        let vouch = match self.find(path).await? {
            Some(v) => v,
            None => {
                return Err(ApiError::not_found(format!(
                    "No document this proxy verified lists {path}: `apt-get update` through the proxy fetches them first."
                )));
            }
        };
        if content.is_some_and(|c| c != vouch.sha256) {
            return Err(ApiError::not_found(format!(
                "The verified documents list {path} with another hash."
            )));
        }
        let want = Wanted {
            key: content_key(&vouch.sha256),
            url: format!("{}{path}", self.up.url),
            sha256: vouch.sha256,
            size: vouch.size,
            filename: path.to_owned(),
            content_type,
        };
        files::fetch_checked(self.proxies, self.env, self.row, self.up, want).await
    }

    /// What the verified chain says of `path`: the newest document that lists it, or a list
    /// read from the cache. The documents are first brought up to date with the shared cache
    /// (another node may have fetched newer ones), and lists not yet read are read.
    async fn find(&self, path: &str) -> Result<Option<Vouch>, ApiError> {
        if let Some(v) = self.lookup(path) {
            // A list's files never change under one path; a document's may.
            if !self.in_docs(path) {
                return Ok(Some(v));
            }
        }
        for e in cache::entries(self.env.db, self.row.id, "signed:").await? {
            if let Some(p) = e.key.strip_prefix("signed:") {
                self.load(p, &e).await?;
            }
        }
        if let Some(v) = self.lookup(path) {
            return Ok(Some(v));
        }
        self.read_lists().await?;
        Ok(self.lookup(path))
    }

    fn in_docs(&self, path: &str) -> bool {
        self.proxies.trees.with(self.row.id, |t| {
            t.docs.values().any(|d| d.files.contains_key(path))
        })
    }

    fn lookup(&self, path: &str) -> Option<Vouch> {
        self.proxies.trees.with(self.row.id, |t| {
            t.docs
                .values()
                .filter(|d| d.files.contains_key(path))
                .max_by_key(|d| d.fetched_at)
                .and_then(|d| d.files.get(path).cloned())
                .or_else(|| t.listed.get(path).cloned())
        })
    }

    /// Reads the cached lists (indexes) the verified documents name and this node has not read.
    async fn read_lists(&self) -> Result<(), ApiError> {
        let todo: Vec<Vouch> = self.proxies.trees.with(self.row.id, |t| {
            let mut seen = HashSet::new();
            t.docs
                .values()
                .flat_map(|d| d.files.values())
                .filter(|v| self.format.lists_files(&v.path))
                .filter(|v| !t.read.contains(&v.sha256) && seen.insert(v.sha256.clone()))
                .cloned()
                .collect()
        });
        for v in todo {
            let Some(e) = cache::entry(self.env.db, self.row.id, &content_key(&v.sha256)).await?
            else {
                continue;
            };
            let Some(bytes) = self
                .env
                .blobs
                .content_bytes(&e.sha256)
                .await
                .map_err(ApiError::from)?
            else {
                continue;
            };
            let listed = read_list(self.format, &v.path, &bytes);
            match listed {
                Ok(files) => {
                    tracing::debug!(repo = %self.row.name, list = %v.path, files = files.len(), "Read a verified list.");
                    self.proxies.trees.with(self.row.id, |t| {
                        t.read.insert(v.sha256.clone());
                        t.listed
                            .extend(files.into_iter().map(|f| (f.path.clone(), f)));
                    });
                }
                Err(err) => {
                    tracing::warn!(repo = %self.row.name, list = %v.path, error = %err, "A verified list cannot be read.");
                    self.proxies.trees.with(self.row.id, |t| {
                        t.read.insert(v.sha256.clone());
                    });
                }
            }
        }
        Ok(())
    }
}

/// Reads a list, off the async workers when the runtime has others.
fn read_list(
    format: &dyn ProxyFormat,
    path: &str,
    bytes: &[u8],
) -> artifactd_plugin_api::Result<Vec<Vouch>> {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(|| format.vouches_in(path, bytes))
    } else {
        format.vouches_in(path, bytes)
    }
}
