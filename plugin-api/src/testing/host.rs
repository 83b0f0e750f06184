//! [`TestHost`]: the host's part of the upload flow, in memory.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as BlobPath;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload};
use sha2::{Digest as _, Sha256};

use super::{FakeSigner, MemoryCatalog, hex};
use crate::{
    BlobRef, DynProvider, Error, IndexScope, InsertOutcome, ListQuery, RepoContext, RepoSettings,
    Result, ServeBody, ServeRequest, ServeResponse, UploadRequest, UploadedFile,
};

#[derive(Debug)]
struct TestRepo {
    catalog: Arc<MemoryCatalog>,
    blobs: Arc<InMemory>,
    settings: RepoSettings,
}

/// The host's part of the flow, in memory, for one provider.
#[derive(Debug)]
pub struct TestHost {
    provider: DynProvider,
    content: Arc<InMemory>,
    repos: Mutex<BTreeMap<String, Arc<TestRepo>>>,
    dir: std::path::PathBuf,
    counter: AtomicU64,
}

impl TestHost {
    /// A host with one provider and no repos.
    pub fn new(provider: DynProvider) -> Self {
        static HOSTS: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "artifactd-testhost-{}-{}",
            std::process::id(),
            HOSTS.fetch_add(1, Ordering::SeqCst)
        ));
        Self {
            provider,
            content: Arc::new(InMemory::new()),
            repos: Mutex::new(BTreeMap::new()),
            dir,
            counter: AtomicU64::new(0),
        }
    }

    fn repo(&self, name: &str) -> Arc<TestRepo> {
        let mut repos = self
            .repos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        repos
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(TestRepo {
                    catalog: Arc::new(MemoryCatalog::default()),
                    blobs: Arc::new(InMemory::new()),
                    settings: RepoSettings::default(),
                })
            })
            .clone()
    }

    /// Sets whether `repo` allows overwrite.
    pub fn set_overwrite(&self, repo: &str, allow: bool) {
        let r = self.repo(repo);
        r.catalog.set_overwrite(allow);
        let mut repos = self
            .repos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut settings = r.settings.clone();
        settings.overwrite = allow;
        repos.insert(
            repo.to_owned(),
            Arc::new(TestRepo {
                catalog: r.catalog.clone(),
                blobs: r.blobs.clone(),
                settings,
            }),
        );
    }

    /// The context a hook on `repo` gets.
    pub fn context(&self, repo: &str) -> RepoContext {
        let r = self.repo(repo);
        RepoContext::new(
            repo,
            format!("http://127.0.0.1/repo/{}/{repo}/", self.provider.kind()),
            r.catalog.clone(),
            r.blobs.clone(),
            Arc::new(FakeSigner),
        )
        .with_settings(r.settings.clone())
    }

    /// The catalog of `repo`.
    pub fn catalog(&self, repo: &str) -> Arc<MemoryCatalog> {
        self.repo(repo).catalog.clone()
    }

    /// Uploads like the host's `/addpkg`: hook, blob, records, index.
    pub async fn upload(
        &self,
        repo: &str,
        filename: &str,
        bytes: &[u8],
        params: &[(&str, &str)],
    ) -> Result<Vec<InsertOutcome>> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!(
            "upload-{}",
            self.counter.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::File::create(&path)?.write_all(bytes)?;
        let sha256 = hex(&Sha256::digest(bytes));
        let file = UploadedFile::new(filename, path.clone(), bytes.len() as u64, sha256.clone());
        let params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let cx = self.context(repo);
        let result = self
            .store(&cx, UploadRequest::new(None, params, file), bytes)
            .await;
        let _ = std::fs::remove_file(&path);
        result
    }

    async fn store(
        &self,
        cx: &RepoContext,
        req: UploadRequest,
        bytes: &[u8],
    ) -> Result<Vec<InsertOutcome>> {
        let sha256 = req.file.sha256.clone();
        let outcome = self.provider.upload(cx, req).await?;
        if outcome.records.is_empty() {
            return Err(Error::internal_msg("the upload hook returned no records"));
        }
        // Like the host: a conflict is refused before anything is stored.
        if !cx.settings.overwrite {
            for r in &outcome.records {
                let stored = cx
                    .catalog
                    .list(ListQuery::path(&r.path).in_scope(&r.scope))
                    .await?;
                if stored.iter().any(|s| s.sha256 != r.sha256) {
                    return Err(Error::Conflict(format!(
                        "File already exists: {} is stored with different content.",
                        r.path
                    )));
                }
            }
        }
        for d in outcome.derived {
            cx.blobs.put(&d.path, PutPayload::from(d.bytes)).await?;
        }
        self.content
            .put(&BlobPath::from(sha256), PutPayload::from(bytes.to_vec()))
            .await?;
        let mut done = Vec::new();
        for record in outcome.records {
            done.push(cx.catalog.insert(record).await?);
        }
        let scopes = done.iter().map(|o| o.record().scope.clone()).collect();
        self.provider.index(cx, IndexScope::Scopes(scopes)).await?;
        self.catalog(&cx.repo).published();
        Ok(done)
    }

    /// Serves `path` of `repo`, resolving blobs to their bytes.
    pub async fn get(&self, repo: &str, path: &str) -> Result<(ServeResponse, Bytes)> {
        self.serve(repo, ServeRequest::get(path)).await
    }

    /// Serves a request, resolving blobs to their bytes.
    pub async fn serve(&self, repo: &str, req: ServeRequest) -> Result<(ServeResponse, Bytes)> {
        let cx = self.context(repo);
        let resp = self.provider.serve(&cx, req).await?;
        let body = match &resp.body {
            ServeBody::Empty => Bytes::new(),
            ServeBody::Bytes(b) => b.clone(),
            ServeBody::Blob(BlobRef::Content { sha256 }) => {
                self.content
                    .get(&BlobPath::from(sha256.as_str()))
                    .await?
                    .bytes()
                    .await?
            }
            ServeBody::Blob(BlobRef::Derived(p)) => cx.blobs.get(p).await?.bytes().await?,
        };
        Ok((resp, body))
    }

    /// Every blob in `repo`'s derived store, with its bytes (to prove that a refused upload
    /// wrote nothing).
    pub async fn derived_files(&self, repo: &str) -> Result<BTreeMap<String, Bytes>> {
        use futures_util::StreamExt as _;
        let blobs = self.repo(repo).blobs.clone();
        let mut out = BTreeMap::new();
        let mut listing = blobs.list(None);
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let bytes = blobs.get(&meta.location).await?.bytes().await?;
            out.insert(meta.location.to_string(), bytes);
        }
        Ok(out)
    }

    /// Runs the index hook on everything.
    pub async fn reindex(&self, repo: &str) -> Result<()> {
        self.provider
            .index(&self.context(repo), IndexScope::All)
            .await?;
        self.catalog(repo).published();
        Ok(())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
