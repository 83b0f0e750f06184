//! Test doubles of the host's services: an in-memory catalog and a fake signer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::{Catalog, Error, FileRecord, InsertOutcome, ListQuery, NewRecord, Result, Signer};

/// An in-memory [`Catalog`] with the host's semantics.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    /// The records, each with the generation its last insert, replace or yank produced.
    rows: Mutex<Vec<(FileRecord, u64)>>,
    generation: AtomicU64,
    /// The generation of the latest removal.
    removed: AtomicU64,
    overwrite: std::sync::atomic::AtomicBool,
    holds: Mutex<BTreeMap<String, Vec<String>>>,
}

impl MemoryCatalog {
    /// Whether inserts may replace rows with other bytes.
    pub fn set_overwrite(&self, allow: bool) {
        self.overwrite.store(allow, Ordering::SeqCst);
    }

    /// The blobs held under `tag`.
    pub fn held(&self, tag: &str) -> Vec<String> {
        self.holds_lock().get(tag).cloned().unwrap_or_default()
    }

    fn holds_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<String>>> {
        self.holds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bumps the generation as the host does after each index call.
    pub(super) fn published(&self) {
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
            .filter(|(r, _)| q.keys.as_ref().is_none_or(|ks| ks.contains(&r.key)))
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
            self.removed.store(self.bump(), Ordering::SeqCst);
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

    async fn last_removal(&self) -> Result<u64> {
        Ok(self.removed.load(Ordering::SeqCst))
    }

    async fn apply(&self, remove: &[(String, String)], insert: Vec<NewRecord>) -> Result<()> {
        let mut rows = self.rows();
        let left: Vec<(FileRecord, u64)> = rows
            .iter()
            .filter(|(r, _)| !remove.iter().any(|(s, p)| *s == r.scope && *p == r.path))
            .cloned()
            .collect();
        if let Some(n) = insert.iter().find(|n| {
            left.iter()
                .any(|(r, _)| r.scope == n.scope && r.path == n.path)
        }) {
            return Err(Error::Conflict(format!(
                "{} exists in {:?}.",
                n.path, n.scope
            )));
        }
        let stamp = self.bump();
        if left.len() < rows.len() {
            self.removed.store(stamp, Ordering::SeqCst);
        }
        *rows = left;
        for n in insert {
            rows.push((
                FileRecord::stored(n, now_millis(), "test".into(), None),
                stamp,
            ));
        }
        Ok(())
    }

    async fn hold(&self, tag: &str, sha256s: &[String]) -> Result<()> {
        self.holds_lock().insert(tag.to_owned(), sha256s.to_vec());
        Ok(())
    }

    async fn release(&self, tag: &str) -> Result<()> {
        self.holds_lock().remove(tag);
        Ok(())
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
