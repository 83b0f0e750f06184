//! Test doubles for the host's services and the conformance suite every provider runs.
//!
//! [`TestHost`] plays the host's part of the upload flow (hash, store the blob, insert the
//! records, index) against an in-memory catalog, blob store and signer, so a provider crate can
//! test its hooks without a database or an HTTP server. [`conformance`] checks the contract of
//! [`crate::Provider`] on two sample files the provider supplies.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path as BlobPath;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload};
use sha2::{Digest as _, Sha256};

use crate::{
    BlobRef, Catalog, DynProvider, Error, FileRecord, IndexScope, InsertOutcome, ListQuery,
    NewRecord, RepoContext, RepoSettings, Result, ServeBody, ServeRequest, ServeResponse, Signer,
    UploadRequest, UploadedFile,
};

/// An in-memory [`Catalog`] with the host's semantics.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    /// The records, each with the generation its last insert, replace or yank produced.
    rows: Mutex<Vec<(FileRecord, u64)>>,
    generation: AtomicU64,
    overwrite: std::sync::atomic::AtomicBool,
}

impl MemoryCatalog {
    /// Whether inserts may replace rows with other bytes.
    pub fn set_overwrite(&self, allow: bool) {
        self.overwrite.store(allow, Ordering::SeqCst);
    }

    /// Bumps the generation as the host does after each index call.
    fn published(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The next generation, for a change made under the rows' lock.
    fn bump(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, Vec<(FileRecord, u64)>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn matching(&self, q: &ListQuery) -> Vec<FileRecord> {
        self.rows()
            .iter()
            .filter(|(r, _)| q.scope.as_ref().is_none_or(|s| &r.scope == s))
            .filter(|(r, _)| q.key.as_ref().is_none_or(|k| &r.key == k))
            .filter(|(r, _)| q.path.as_ref().is_none_or(|p| &r.path == p))
            .filter(|(_, g)| q.changed_since.is_none_or(|since| *g > since))
            .filter(|(_, g)| q.changed_until.is_none_or(|until| *g <= until))
            .map(|(r, _)| r.clone())
            .collect()
    }
}

use crate::time::now_millis;

#[async_trait]
impl Catalog for MemoryCatalog {
    async fn insert(&self, r: NewRecord) -> Result<InsertOutcome> {
        let mut rows = self.rows();
        let stored = FileRecord::stored(r, now_millis(), "anonymous".to_owned(), None);
        if let Some((existing, stamp)) = rows
            .iter_mut()
            .find(|(e, _)| e.scope == stored.scope && e.path == stored.path)
        {
            if existing.sha256 == stored.sha256 {
                return Ok(InsertOutcome::Identical(existing.clone()));
            }
            if !self.overwrite.load(Ordering::SeqCst) {
                return Err(Error::Conflict(format!(
                    "File already exists: {} is stored with different content.",
                    stored.path
                )));
            }
            *existing = stored.clone();
            *stamp = self.bump();
            return Ok(InsertOutcome::Replaced(stored));
        }
        rows.push((stored.clone(), self.bump()));
        Ok(InsertOutcome::Inserted(stored))
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<FileRecord>> {
        let mut out = self.matching(&q);
        out.sort_by(|a, b| (&a.key, &a.version, &a.path).cmp(&(&b.key, &b.version, &b.path)));
        Ok(out)
    }

    async fn count(&self, q: ListQuery) -> Result<u64> {
        Ok(self.matching(&q).len() as u64)
    }

    async fn keys(&self) -> Result<Vec<(String, String)>> {
        let map: BTreeMap<String, String> = self
            .rows()
            .iter()
            .map(|(r, _)| (r.key.clone(), r.name.clone()))
            .collect();
        Ok(map.into_iter().collect())
    }

    async fn delete(&self, scope: &str, path: &str) -> Result<bool> {
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|(r, _)| !(r.scope == scope && r.path == path));
        let changed = rows.len() != before;
        if changed {
            self.bump();
        }
        Ok(changed)
    }

    async fn set_yanked(&self, scope: &str, path: &str, reason: Option<String>) -> Result<bool> {
        let mut rows = self.rows();
        let Some((row, stamp)) = rows
            .iter_mut()
            .find(|(r, _)| r.scope == scope && r.path == path)
        else {
            return Ok(false);
        };
        row.yanked = reason;
        *stamp = self.bump();
        Ok(true)
    }

    async fn generation(&self) -> Result<u64> {
        Ok(self.generation.load(Ordering::SeqCst))
    }
}

/// A [`Signer`] that produces recognisable fake signatures (not OpenPGP).
#[derive(Debug, Default)]
pub struct FakeSigner;

#[async_trait]
impl Signer for FakeSigner {
    async fn public_key_armored(&self) -> Result<String> {
        Ok(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nfake\n-----END PGP PUBLIC KEY BLOCK-----\n"
                .to_owned(),
        )
    }
    async fn public_key_binary(&self) -> Result<Vec<u8>> {
        Ok(b"fake".to_vec())
    }
    async fn sign_detached(&self, data: &[u8]) -> Result<String> {
        Ok(format!(
            "-----BEGIN PGP SIGNATURE-----\n\nfake {}\n-----END PGP SIGNATURE-----\n",
            data.len()
        ))
    }
    async fn sign_cleartext(&self, text: &str) -> Result<String> {
        Ok(format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{text}-----BEGIN PGP SIGNATURE-----\n\nfake\n-----END PGP SIGNATURE-----\n"
        ))
    }
}

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file the conformance suite uploads.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The upload's file name.
    pub filename: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Upload parameters (`name`, `version` and whatever the format requires, such as `dist`).
    pub params: Vec<(String, String)>,
}

impl Sample {
    /// A sample with parameters.
    pub fn new(filename: &str, bytes: Vec<u8>, params: &[(&str, &str)]) -> Self {
        Self {
            filename: filename.to_owned(),
            bytes,
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn params(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn with_param<'a>(&'a self, key: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut p: Vec<(&str, &str)> = self
            .params()
            .into_iter()
            .filter(|(k, _)| *k != key)
            .collect();
        p.push((key, value));
        p
    }
}

/// What a provider hands the conformance suite.
#[derive(Debug, Clone)]
pub struct Kit {
    /// A valid file.
    pub first: Sample,
    /// Another valid file of another package.
    pub second: Sample,
    /// A file that stores at the same path as `first`, with other bytes.
    pub first_changed: Sample,
}

/// Runs the provider contract checks; panics with a message naming the broken rule.
///
/// Checks: upload then serve round-trips the bytes; a byte-identical re-upload is
/// [`InsertOutcome::Identical`]; other bytes at the same path are a conflict unless the repo
/// allows overwrite; a `name` parameter that disagrees with the file is invalid input; `index` is
/// idempotent; unknown paths are 404; nothing of another repo or outside the mount is reachable.
pub async fn conformance(provider: DynProvider, kit: Kit) {
    let host = TestHost::new(provider.clone());
    let kind = provider.kind();
    let repo = "conformance";

    // Upload then serve round-trips the bytes.
    let first = host
        .upload(
            repo,
            &kit.first.filename,
            &kit.first.bytes,
            &kit.first.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: uploading the first sample failed: {e}"));
    assert!(
        matches!(first.first(), Some(InsertOutcome::Inserted(_))),
        "{kind}: the first upload must insert a record"
    );
    for o in &first {
        let path = &o.record().path;
        assert!(
            !path.starts_with('/') && !path.split('/').any(|s| s == ".." || s.is_empty()),
            "{kind}: record path {path:?} must be relative with no empty or '..' segments"
        );
        let (resp, body) = host
            .get(repo, path)
            .await
            .unwrap_or_else(|e| panic!("{kind}: serving {path} failed: {e}"));
        assert_eq!(resp.status, http::StatusCode::OK, "{kind}: serving {path}");
        assert!(
            body.as_ref() == kit.first.bytes.as_slice(),
            "{kind}: {path} must serve the uploaded bytes"
        );
    }
    host.upload(
        repo,
        &kit.second.filename,
        &kit.second.bytes,
        &kit.second.params(),
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: uploading the second sample failed: {e}"));

    // A byte-identical re-upload changes nothing.
    let again = host
        .upload(
            repo,
            &kit.first.filename,
            &kit.first.bytes,
            &kit.first.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: re-uploading identical bytes must succeed: {e}"));
    assert!(
        again
            .iter()
            .all(|o| matches!(o, InsertOutcome::Identical(_))),
        "{kind}: an identical re-upload must be Identical, got {again:?}"
    );

    // Other bytes at the same path: conflict, unless overwrite is allowed; a refused upload
    // leaves no blob, derived or not.
    let blobs_before = host.derived_files(repo).await.unwrap_or_default();
    let conflict = host
        .upload(
            repo,
            &kit.first_changed.filename,
            &kit.first_changed.bytes,
            &kit.first_changed.params(),
        )
        .await;
    assert!(
        matches!(conflict, Err(Error::Conflict(_))),
        "{kind}: other bytes at a stored path must be a Conflict, got {conflict:?}"
    );
    assert!(
        host.derived_files(repo).await.unwrap_or_default() == blobs_before,
        "{kind}: a refused upload must not write derived blobs (return them in UploadOutcome::derived)"
    );
    host.set_overwrite(repo, true);
    let replaced = host
        .upload(
            repo,
            &kit.first_changed.filename,
            &kit.first_changed.bytes,
            &kit.first_changed.params(),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}: overwrite allowed, the upload must succeed: {e}"));
    assert!(
        matches!(replaced.first(), Some(InsertOutcome::Replaced(_))),
        "{kind}: with overwrite allowed the record must be Replaced"
    );
    let path = replaced[0].record().path.clone();
    let (_, body) = host
        .get(repo, &path)
        .await
        .unwrap_or_else(|e| panic!("{kind}: serving {path}: {e}"));
    assert!(
        body.as_ref() == kit.first_changed.bytes.as_slice(),
        "{kind}: {path} must serve the replacing bytes"
    );
    host.set_overwrite(repo, false);

    // A name parameter that disagrees with the file is refused, and nothing is stored.
    let before = host
        .catalog(repo)
        .list(ListQuery::all())
        .await
        .unwrap_or_default();
    let wrong = host
        .upload(
            repo,
            &kit.second.filename,
            &kit.second.bytes,
            &kit.second.with_param("name", "not-this-package"),
        )
        .await;
    assert!(
        matches!(wrong, Err(Error::InvalidInput(_))),
        "{kind}: a name parameter that disagrees with the file must be InvalidInput, got {wrong:?}"
    );
    let after = host
        .catalog(repo)
        .list(ListQuery::all())
        .await
        .unwrap_or_default();
    assert_eq!(
        before, after,
        "{kind}: a refused upload must not change the catalog"
    );
    let blobs_before = host.derived_files(repo).await.unwrap_or_default();
    let refused = host
        .upload(repo, &kit.second.filename, b"not a package at all", &[])
        .await;
    assert!(
        refused.is_err(),
        "{kind}: a file that is not a package must be refused"
    );
    assert!(
        host.derived_files(repo).await.unwrap_or_default() == blobs_before,
        "{kind}: a refused upload must not write blobs"
    );

    // Index is idempotent: the same files serve the same bytes after repeated runs.
    for _ in 0..2 {
        host.reindex(repo)
            .await
            .unwrap_or_else(|e| panic!("{kind}: index failed: {e}"));
    }
    let (_, body) = host
        .get(repo, &path)
        .await
        .unwrap_or_else(|e| panic!("{kind}: serving {path} after index: {e}"));
    assert!(
        body.as_ref() == kit.first_changed.bytes.as_slice(),
        "{kind}: index must not change served files"
    );

    // Unknown paths are 404; nothing outside the repo is reachable.
    for probe in [
        "definitely/not/here".to_owned(),
        format!("{path}.does-not-exist"),
        format!("../{path}"),
        format!("../other/{path}"),
    ] {
        assert_not_found(&host, repo, &probe, kind).await;
    }
    assert_not_found(&host, "other", &path, kind).await;
}

async fn assert_not_found(host: &TestHost, repo: &str, path: &str, kind: &str) {
    match host.get(repo, path).await {
        Err(Error::NotFound(_)) => {}
        Ok((resp, _)) if resp.status == http::StatusCode::NOT_FOUND => {}
        Ok((resp, _)) => panic!("{kind}: {repo}/{path} must be 404, got {}", resp.status),
        Err(e) => panic!("{kind}: {repo}/{path} must be 404, got error {e}"),
    }
}

/// The hex SHA-256 of `bytes`, as the host computes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
