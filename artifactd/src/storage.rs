//! Blob storage: uploaded files by content hash, and each provider's derived files per repo.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use artifactd_plugin_api::{Error, Result};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as BlobPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use tokio::io::AsyncReadExt as _;

use crate::config::BlobConfig;
use crate::metrics::Counted;

/// A typed key in the bucket; no other code formats storage paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKey<'a> {
    /// An uploaded file, by lower-case hex SHA-256: `content/sha256/ab/cd/abcd…`.
    Content(&'a str),
    /// The root of a provider's derived files for one repo: `derived/<provider>/<repo>`.
    Derived {
        /// Provider kind.
        provider: &'a str,
        /// Repo name.
        repo: &'a str,
    },
}

impl StorageKey<'_> {
    /// The object path.
    pub fn path(&self) -> BlobPath {
        match self {
            Self::Content(sha) if sha.len() >= 4 => {
                BlobPath::from(format!("content/sha256/{}/{}/{sha}", &sha[..2], &sha[2..4]))
            }
            Self::Content(sha) => BlobPath::from(format!("content/sha256/{sha}")),
            Self::Derived { provider, repo } => {
                BlobPath::from(format!("derived/{provider}/{repo}"))
            }
        }
    }
}

/// Why blob storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StorageStartError {
    /// The local folder is unusable.
    #[error("cannot use the blob folder {path}")]
    Local {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// S3 is configured but unusable.
    #[error("cannot use the S3 bucket: {0}")]
    S3(String),
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// For a local store: its root, so uploads can be moved into place instead of copied.
    local_root: Option<PathBuf>,
}

/// Multipart uploads: S3's smallest part, grown for files that would need more than S3's 10,000
/// parts; with `PARTS_IN_FLIGHT` parts sent at once, an upload holds about 15 MiB whatever its
/// size.
const MIN_PART_SIZE: u64 = 5 << 20;
const PARTS_IN_FLIGHT: usize = 2;

impl BlobStore {
    /// Opens the configured store, creating what is missing.
    ///
    /// # Errors
    /// [`StorageStartError`] naming the problem.
    pub async fn open(cfg: &BlobConfig) -> Result<Self, StorageStartError> {
        match cfg {
            BlobConfig::Local(root) => {
                let local =
                    |source: Box<dyn std::error::Error + Send + Sync>| StorageStartError::Local {
                        path: root.clone(),
                        source,
                    };
                std::fs::create_dir_all(root).map_err(|e| local(e.into()))?;
                let root = std::fs::canonicalize(root).map_err(|e| local(e.into()))?;
                let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| local(e.into()))?;
                Ok(Self {
                    store: Arc::new(Counted::new(Arc::new(store))),
                    local_root: Some(root),
                })
            }
            BlobConfig::S3(cfg) => {
                let virtual_hosted =
                    std::env::var("S3_VIRTUAL_HOSTED_STYLE").is_ok_and(|v| v == "1" || v == "true");
                let (access, secret) = crate::s3::credentials(cfg);
                let store = AmazonS3Builder::from_env()
                    .with_endpoint(&cfg.endpoint)
                    .with_allow_http(cfg.endpoint.starts_with("http://"))
                    .with_bucket_name(&cfg.bucket)
                    .with_region(&cfg.region)
                    .with_access_key_id(access)
                    .with_secret_access_key(secret)
                    .with_virtual_hosted_style_request(virtual_hosted)
                    .build()
                    .map_err(|e| StorageStartError::S3(e.to_string()))?;
                crate::s3::ensure_bucket(&store, cfg).await?;
                // One round trip now, so a wrong secret fails at start and not at the first upload.
                let probe = BlobPath::from("artifactd/start-probe");
                store
                    .put(&probe, object_store::PutPayload::from_static(b"ok"))
                    .await
                    .map_err(|e| {
                        StorageStartError::S3(format!(
                            "cannot write to bucket {:?}: {}",
                            cfg.bucket,
                            crate::error_chain(&e)
                        ))
                    })?;
                Ok(Self {
                    store: Arc::new(Counted::new(Arc::new(store))),
                    local_root: None,
                })
            }
        }
    }

    /// An in-process store over any object store (tests).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The derived-file store of one provider's repo.
    pub fn derived(&self, provider: &str, repo: &str) -> Arc<dyn ObjectStore> {
        Arc::new(PrefixStore::new(
            self.store.clone(),
            StorageKey::Derived { provider, repo }.path(),
        ))
    }

    /// Stores an uploaded file under its content key. A local store moves the file into place;
    /// any other store streams it in parts. Storing bytes that are already there is harmless.
    ///
    /// # Errors
    /// Storage and file I/O failures.
    pub async fn put_content(&self, file: &Path, sha256: &str) -> Result<()> {
        let key = StorageKey::Content(sha256).path();
        if let Some(root) = &self.local_root {
            let target = root.join(key.as_ref());
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            if tokio::fs::rename(file, &target).await.is_ok() {
                return Ok(());
            }
        }
        self.put_file(&key, file).await
    }

    /// Stores the local file `file` under `key`, streamed in parts (the file stays).
    ///
    /// # Errors
    /// Storage and file I/O failures.
    pub async fn put_file(&self, key: &BlobPath, file: &Path) -> Result<()> {
        let mut f = tokio::fs::File::open(file).await?;
        let size = f.metadata().await?.len();
        let part = usize::try_from(MIN_PART_SIZE.max(size.div_ceil(9_000)))
            .map_err(|_| Error::internal_msg("the file is too large for a multipart upload"))?;
        let upload = self.store.put_multipart(key).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }

    /// Stores small bytes (a proxy's page) under their content key.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn put_content_bytes(&self, bytes: bytes::Bytes, sha256: &str) -> Result<()> {
        self.store
            .put(
                &StorageKey::Content(sha256).path(),
                object_store::PutPayload::from(bytes),
            )
            .await?;
        Ok(())
    }

    /// Reads a small content blob whole (a proxy's page); `None` when it is missing.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn content_bytes(&self, sha256: &str) -> Result<Option<bytes::Bytes>> {
        match self.store.get(&StorageKey::Content(sha256).path()).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// Copies a content blob into the local file `file`, streamed; `false` when it is missing.
    ///
    /// # Errors
    /// Storage and file I/O failures.
    pub async fn content_to_file(&self, sha256: &str, file: &Path) -> Result<bool> {
        self.get_to_file(&StorageKey::Content(sha256).path(), file)
            .await
    }

    /// Copies the blob `key` into the local file `file`, streamed; `false` when it is missing.
    ///
    /// # Errors
    /// Storage and file I/O failures.
    pub async fn get_to_file(&self, key: &BlobPath, file: &Path) -> Result<bool> {
        use futures_util::StreamExt as _;
        use tokio::io::AsyncWriteExt as _;
        let got = match self.store.get(key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(Error::Storage(e)),
        };
        let mut out = tokio::fs::File::create(file).await?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await?;
        }
        out.flush().await?;
        Ok(true)
    }

    /// Every blob below `prefix`, as its key.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn keys_under(&self, prefix: &BlobPath) -> Result<Vec<BlobPath>> {
        use futures_util::StreamExt as _;
        let mut listing = self.store.list(Some(prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            out.push(meta?.location);
        }
        Ok(out)
    }

    /// Removes a content blob (missing is fine).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_content(&self, sha256: &str) -> Result<()> {
        match self.store.delete(&StorageKey::Content(sha256).path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// Content blobs last modified before `cutoff` whose hash `referenced` does not know, as
    /// `(sha256, size)`.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn orphans(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        referenced: &std::collections::HashSet<String>,
    ) -> Result<Vec<(String, u64)>> {
        use futures_util::StreamExt as _;
        let prefix = BlobPath::from("content/sha256");
        let mut listing = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let Some(sha) = meta.location.filename().map(str::to_owned) else {
                continue;
            };
            if meta.last_modified < cutoff && !referenced.contains(&sha) {
                out.push((sha, meta.size));
            }
        }
        Ok(out)
    }

    /// Removes the [`BlobStore::orphans`]; returns how many and how many bytes.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn remove_orphans(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        referenced: &std::collections::HashSet<String>,
    ) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for (sha, size) in self.orphans(cutoff, referenced).await? {
            self.delete_content(&sha).await?;
            n += 1;
            bytes += size;
        }
        Ok((n, bytes))
    }

    /// The size of the content blob `sha256`, `None` when it is not stored.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn content_size(&self, sha256: &str) -> Result<Option<u64>> {
        match self.store.head(&StorageKey::Content(sha256).path()).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// The SHA-256 of the content blob `sha256`'s bytes as stored (read through, a chunk at a
    /// time), `None` when it is not stored.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn content_digest(&self, sha256: &str) -> Result<Option<String>> {
        use futures_util::StreamExt as _;
        use sha2::Digest as _;
        let got = match self.store.get(&StorageKey::Content(sha256).path()).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::Storage(e)),
        };
        let mut hasher = sha2::Sha256::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            hasher.update(chunk.map_err(Error::Storage)?);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    /// Removes the derived files that belong to a content blob no longer referenced
    /// (`derived/<provider>/<repo>/<folder>/<sha256>` for a provider's per-file folders) and
    /// older than `cutoff`; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn remove_orphan_derived(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        referenced: &std::collections::HashSet<String>,
        folders: &[(&str, &str)],
    ) -> Result<u64> {
        use futures_util::StreamExt as _;
        let mut n = 0u64;
        for (provider, folder) in folders {
            let prefix = BlobPath::from(format!("derived/{provider}"));
            let mut listing = self.store.list(Some(&prefix));
            let mut gone = Vec::new();
            while let Some(meta) = listing.next().await {
                let meta = meta?;
                let path = meta.location.to_string();
                let parts: Vec<&str> = path.split('/').collect();
                if let [_, _, _repo, f, sha] = parts.as_slice()
                    && f == folder
                    && meta.last_modified < cutoff
                    && !referenced.contains(*sha)
                {
                    gone.push(meta.location.clone());
                }
            }
            for p in gone {
                match self.store.delete(&p).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                    Err(e) => return Err(Error::Storage(e)),
                }
            }
        }
        Ok(n)
    }

    /// Whether the store answers (a metadata read of a name nothing uses), for readiness.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn probe(&self) -> Result<()> {
        match self.store.head(&BlobPath::from("readyz-probe")).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Storage(e)),
        }
    }

    /// Removes every derived file of a provider's repo (when the repo is deleted).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn delete_derived(&self, provider: &str, repo: &str) -> Result<()> {
        use futures_util::StreamExt as _;
        let prefix = StorageKey::Derived { provider, repo }.path();
        let paths: Vec<BlobPath> = self
            .store
            .list(Some(&prefix))
            .map(|m| m.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for p in paths {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::Storage(e)),
            }
        }
        Ok(())
    }
}
