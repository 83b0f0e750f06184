//! Proxied files: served from the blob store once cached; on the first request fetched,
//! streamed to the client while written to a temporary file and hashed, and kept only when the
//! hash is the listing's. The last bytes go to the client only after that check, so a tampered
//! file never completes a download.

use artifactd_plugin_api::{BlobRef, ProxyFormat, ServeResponse};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use sha2::Digest as _;

use super::upstream::{FetchError, Upstream};
use super::{CACHE_HEADER, Env, Policy, Proxies, Served, bad_gateway, cache, policy};
use crate::db::entities::repo;
use crate::http::ApiError;

/// Chunks waiting for a slow client (each at most what the upstream sent at once).
const CLIENT_QUEUE: usize = 16;

pub(super) fn cached(content_type: &'static str, sha256: String) -> Served {
    Served::Render(
        ServeResponse::blob(content_type, BlobRef::Content { sha256 }).with_header(
            http::HeaderName::from_static(CACHE_HEADER),
            HeaderValue::from_static("hit"),
        ),
    )
}

/// A 404 when `project` is quarantined: by the repo's own mark, else by its listing's status.
fn quarantine(
    own: &artifactd_plugin_api::RepoSettings,
    listing: Option<&artifactd_plugin_api::Listing>,
    project: &str,
) -> Result<(), ApiError> {
    let status = own
        .status_of(project)
        .or_else(|| listing.and_then(|l| l.status.as_ref()));
    match status.filter(|s| s.status.hides_files()) {
        Some(s) => {
            let why = s
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            Err(ApiError::not_found(format!(
                "The project {project} is quarantined{why}; its files are withheld."
            )))
        }
        None => Ok(()),
    }
}

/// Answers a request for `filename` of `project`.
#[allow(clippy::too_many_arguments)] // The proxy's parts, named where they are used.
pub(super) async fn serve(
    proxies: &Proxies,
    env: Env<'_>,
    row: &repo::Model,
    format: &dyn ProxyFormat,
    up: &Upstream,
    policy: &Policy,
    project: &str,
    filename: &str,
) -> Result<Served, ApiError> {
    // A quarantine holds for cached files too: the repo's own mark, or the upstream's as this
    // node last read it.
    let own = crate::db::settings_of(row);
    let known = proxies
        .listings
        .get(row.id, project)
        .and_then(|k| k.listing);
    quarantine(&own, known.as_deref(), project)?;
    let key = cache::file_key(filename);
    if let Some(e) = cache::entry(env.db, row.id, &key).await?
        && e.status == 200
    {
        return Ok(cached(format.content_type(filename), e.sha256));
    }
    let (listing, _) = proxies.listing(env, row, format, up, project).await?;
    let listing = listing
        .ok_or_else(|| ApiError::not_found(format!("The upstream has no project {project:?}.")))?;
    // The file itself, or a companion of one (its name with the companion's suffix).
    let found = listing
        .file(filename)
        .map(|f| (f.url.clone(), f.sha256.clone(), f.size))
        .or_else(|| {
            listing.files.iter().find_map(|f| {
                f.companions.iter().find_map(|(suffix, sha)| {
                    (format!("{}{suffix}", f.filename) == filename)
                        .then(|| (format!("{}{suffix}", f.url), Some(sha.clone()), None))
                })
            })
        });
    let Some((url, sha256, size)) = found else {
        return Err(ApiError::not_found(format!(
            "The upstream lists no file {filename:?}."
        )));
    };
    // The repo's policy holds for downloads too, not just for pages.
    let main = listing.files.iter().find(|f| {
        f.filename == filename
            || f.companions
                .iter()
                .any(|(suffix, _)| format!("{}{suffix}", f.filename) == filename)
    });
    if let Some(reason) =
        main.and_then(|f| policy::blocked_reason(policy, project, f, crate::db::now_millis()))
    {
        return Err(ApiError::not_found(format!(
            "This repo does not serve {filename:?}: {reason}."
        )));
    }
    quarantine(&own, Some(&listing), project)?;
    let Some(sha256) = sha256 else {
        return Err(ApiError::not_found(format!(
            "The upstream gives no SHA-256 for {filename:?}; the proxy serves only files it can check."
        )));
    };
    let want = Wanted {
        key,
        url,
        sha256,
        size,
        filename: filename.to_owned(),
        content_type: format.content_type(filename),
    };
    fetch_checked(proxies, env, row, up, want).await
}

/// A file to fetch once and check: its cache key, where the upstream has it, the hash it must
/// have.
pub(super) struct Wanted {
    pub key: String,
    pub url: String,
    pub sha256: String,
    pub size: Option<u64>,
    /// The name for messages and logs.
    pub filename: String,
    pub content_type: &'static str,
}

/// Serves a checked file: cached, or fetched now (one fetch per key) and streamed while it is
/// written and hashed.
pub(super) async fn fetch_checked(
    proxies: &Proxies,
    env: Env<'_>,
    row: &repo::Model,
    up: &Upstream,
    want: Wanted,
) -> Result<Served, ApiError> {
    let Wanted {
        key,
        url,
        sha256,
        size,
        filename,
        content_type,
    } = want;
    let filename = filename.as_str();
    let guard = proxies.locks.lock(format!("{}:{key}", row.id)).await;
    if let Some(e) = cache::entry(env.db, row.id, &key).await?
        && e.status == 200
    {
        return Ok(cached(content_type, e.sha256));
    }
    let resp = match proxies.client.get(up, &url, None).await {
        Ok(r) => r,
        Err(FetchError::Status { status: 404, .. }) => {
            return Err(ApiError::not_found(format!(
                "The upstream has no file at {url}."
            )));
        }
        Err(e) => return Err(bad_gateway(&e)),
    };
    let length = resp.content_length().or(size);
    if length.is_some_and(|l| l > env.max_bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "The upstream's {filename} is larger than this server's limit of {} bytes.",
                env.max_bytes
            ),
        ));
    }
    let temp = tempfile::Builder::new()
        .prefix("proxy-")
        .tempfile_in(env.tmp_dir)
        .map_err(|e| ApiError::internal("cannot create a temporary file", e))?
        .into_temp_path();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CLIENT_QUEUE);
    let job = Fetch {
        db: env.db.clone(),
        blobs: env.blobs.clone(),
        repo_id: row.id,
        repo: row.name.clone(),
        key,
        filename: filename.to_owned(),
        content_type,
        sha256,
        max_bytes: env.max_bytes,
    };
    tokio::spawn(async move {
        // Holds the key's lock until the file is kept or given up: requests for it meanwhile
        // wait, then find it cached.
        let _guard = guard;
        job.run(resp, temp, tx).await;
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut out = Response::new(body);
    let h = out.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(l) = length {
        h.insert(CONTENT_LENGTH, HeaderValue::from(l));
    }
    h.insert(
        http::HeaderName::from_static(CACHE_HEADER),
        HeaderValue::from_static("miss"),
    );
    Ok(Served::Stream(out))
}

/// Chunks waiting for the writer thread.
const WRITER_QUEUE: usize = 8;

/// A blocking thread that hashes and writes the chunks it is sent to `temp`; it answers the
/// hex SHA-256 and the bytes written once the sender is dropped.
#[allow(clippy::type_complexity)] // A channel and the task's handle, named where used.
fn hash_and_write(
    temp: &std::path::Path,
) -> Result<
    (
        tokio::sync::mpsc::Sender<Bytes>,
        tokio::task::JoinHandle<Result<(String, u64), String>>,
    ),
    String,
> {
    use std::io::Write as _;
    let file =
        std::fs::File::create(temp).map_err(|e| format!("cannot write a temporary file: {e}"))?;
    let (wtx, mut wrx) = tokio::sync::mpsc::channel::<Bytes>(WRITER_QUEUE);
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = sha2::Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = wrx.blocking_recv() {
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| format!("cannot write a temporary file: {e}"))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .map_err(|e| format!("cannot write a temporary file: {e}"))?;
        Ok((hex::encode(hasher.finalize()), written))
    });
    Ok((wtx, writer))
}

/// One first fetch of a file.
struct Fetch {
    db: crate::db::Db,
    blobs: crate::storage::BlobStore,
    repo_id: i64,
    repo: String,
    key: String,
    filename: String,
    content_type: &'static str,
    sha256: String,
    max_bytes: u64,
}

impl Fetch {
    async fn run(
        self,
        mut resp: reqwest::Response,
        temp: tempfile::TempPath,
        tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) {
        let fail = |why: String| std::io::Error::other(why);
        match self.copy(&mut resp, &temp, &tx).await {
            Ok((size, last)) => match self.keep(&temp, size).await {
                Ok(()) => {
                    if let Some(last) = last {
                        let _ = tx.send(Ok(last)).await;
                    }
                    tracing::info!(repo = %self.repo, file = %self.filename, size, "Cached an upstream file.");
                }
                Err(e) => {
                    tracing::error!(repo = %self.repo, file = %self.filename, error = %e, "Cannot keep an upstream file.");
                    let _ = tx.send(Err(fail(e))).await;
                }
            },
            Err(why) => {
                tracing::warn!(repo = %self.repo, file = %self.filename, error = %why, "Upstream file refused.");
                let _ = tx.send(Err(fail(why))).await;
            }
        }
    }

    /// Passes the upstream's bytes on to the client (all but the last chunk, while it listens)
    /// and to a writer thread that hashes them and writes the temporary file, so receiving,
    /// hashing and writing overlap; returns the size and the held-back chunk once the hash is
    /// the index's.
    async fn copy(
        &self,
        resp: &mut reqwest::Response,
        temp: &std::path::Path,
        tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) -> Result<(u64, Option<Bytes>), String> {
        let (wtx, writer) = hash_and_write(temp)?;
        let mut size = 0u64;
        let mut held: Option<Bytes> = None;
        let mut listening = true;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(format!(
                        "the upstream stopped sending {}: {}",
                        self.filename,
                        crate::error_chain(&e)
                    ));
                }
            };
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(format!(
                    "{} is larger than the limit of {} bytes",
                    self.filename, self.max_bytes
                ));
            }
            if wtx.send(chunk.clone()).await.is_err() {
                // The writer stopped: its error says why.
                break;
            }
            if let Some(previous) = held.replace(chunk)
                && listening
                && tx.send(Ok(previous)).await.is_err()
            {
                // The client left; the file is still fetched for the next one.
                listening = false;
            }
        }
        drop(wtx);
        let (digest, written) = writer
            .await
            .map_err(|e| format!("the writer task failed: {e}"))??;
        if written != size {
            return Err(format!(
                "cannot write a temporary file: {written} of {size} bytes written"
            ));
        }
        if digest != self.sha256 {
            return Err(format!(
                "{} has SHA-256 {digest}, not the {} the upstream's index gives",
                self.filename, self.sha256
            ));
        }
        Ok((size, held.filter(|_| listening)))
    }

    /// Makes the checked file durable, stores it and records its row.
    async fn keep(&self, temp: &std::path::Path, size: u64) -> Result<(), String> {
        let path = temp.to_path_buf();
        tokio::task::spawn_blocking(move || std::fs::File::open(path)?.sync_data())
            .await
            .map_err(|e| format!("the sync task failed: {e}"))?
            .map_err(|e| format!("cannot write a temporary file: {e}"))?;
        self.blobs
            .put_content(temp, &self.sha256)
            .await
            .map_err(|e| format!("cannot store the file: {e}"))?;
        cache::store(
            &self.db,
            self.repo_id,
            &self.key,
            200,
            &self.sha256,
            size,
            self.content_type,
        )
        .await
        .map_err(|e| format!("cannot record the file: {e}"))?;
        Ok(())
    }
}
