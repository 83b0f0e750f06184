//! File records: the catalog rows a provider describes at upload and reads back to index and serve.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::upload::UploadedFile;

/// A stored file, as the catalog returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileRecord {
    /// Provider-defined partition of the repo (APT: the dist); `""` when the format has none.
    pub scope: String,
    /// The file's path below the repo mount, unique within (repo, scope).
    pub path: String,
    /// The package name as the file spells it.
    pub name: String,
    /// The normalized name used for look-ups (PyPI: PEP 503 form).
    pub key: String,
    /// The package version as the file spells it.
    pub version: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes; also the blob's address.
    pub sha256: String,
    /// Provider-defined metadata (parsed fields, extra digests, index stanzas, …).
    pub meta: serde_json::Value,
    /// Upload time, milliseconds since the Unix epoch (UTC).
    pub uploaded_at: i64,
    /// Who uploaded it ([`crate::Principal::label`]).
    pub uploader: String,
    /// The yank reason, when the file is yanked (`Some("")` for no reason given).
    pub yanked: Option<String>,
}

/// A record to insert: everything but what the host fills in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewRecord {
    /// See [`FileRecord::scope`].
    pub scope: String,
    /// See [`FileRecord::path`].
    pub path: String,
    /// See [`FileRecord::name`].
    pub name: String,
    /// See [`FileRecord::key`].
    pub key: String,
    /// See [`FileRecord::version`].
    pub version: String,
    /// See [`FileRecord::size`].
    pub size: u64,
    /// See [`FileRecord::sha256`].
    pub sha256: String,
    /// See [`FileRecord::meta`].
    pub meta: serde_json::Value,
}

impl FileRecord {
    /// A stored record: `new` plus what the store adds.
    pub fn stored(
        new: NewRecord,
        uploaded_at: i64,
        uploader: String,
        yanked: Option<String>,
    ) -> Self {
        Self {
            scope: new.scope,
            path: new.path,
            name: new.name,
            key: new.key,
            version: new.version,
            size: new.size,
            sha256: new.sha256,
            meta: new.meta,
            uploaded_at,
            uploader,
            yanked,
        }
    }
}

impl NewRecord {
    /// A record with every identifying field, in the default scope, with no metadata.
    pub fn new(
        path: impl Into<String>,
        name: impl Into<String>,
        key: impl Into<String>,
        version: impl Into<String>,
        size: u64,
        sha256: impl Into<String>,
    ) -> Self {
        Self {
            scope: String::new(),
            path: path.into(),
            name: name.into(),
            key: key.into(),
            version: version.into(),
            size,
            sha256: sha256.into(),
            meta: serde_json::Value::Null,
        }
    }

    /// A record for an uploaded file, in the default scope, with no metadata.
    pub fn for_upload(
        file: &UploadedFile,
        path: impl Into<String>,
        name: impl Into<String>,
        key: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self::new(path, name, key, version, file.size, file.sha256.clone())
    }

    /// Sets the scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// Sets the metadata.
    pub fn with_meta(mut self, meta: serde_json::Value) -> Self {
        self.meta = meta;
        self
    }
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// A new row.
    Inserted(FileRecord),
    /// A row with the same (scope, path) and the same bytes was there already; nothing changed.
    Identical(FileRecord),
    /// The repo allows overwrite and the row's bytes were replaced.
    Replaced(FileRecord),
}

impl InsertOutcome {
    /// The record as stored now.
    pub fn record(&self) -> &FileRecord {
        match self {
            Self::Inserted(r) | Self::Identical(r) | Self::Replaced(r) => r,
        }
    }

    /// Whether the catalog changed.
    pub fn changed(&self) -> bool {
        !matches!(self, Self::Identical(_))
    }
}

/// A filter for [`Catalog::list`]; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Only this scope.
    pub scope: Option<String>,
    /// Only records with this key.
    pub key: Option<String>,
    /// Only records with one of these keys.
    pub keys: Option<Vec<String>>,
    /// Only this path.
    pub path: Option<String>,
    /// Only records inserted, replaced or yanked by a change that raised the repo's
    /// [`Catalog::generation`] above this number.
    pub changed_since: Option<u64>,
    /// Only records whose last insert, replace or yank left the generation at or below this
    /// number: with a generation read earlier, what was committed by then.
    pub changed_until: Option<u64>,
}

impl ListQuery {
    /// Everything in the repo.
    pub fn all() -> Self {
        Self::default()
    }

    /// Records with this key.
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::default()
        }
    }

    /// Records with one of these keys (none when the list is empty).
    pub fn keys<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            keys: Some(keys.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Records at this path (in any scope).
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// Restricts to one scope.
    pub fn in_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Restricts to records changed after `generation` (see [`Catalog::generation`]).
    pub fn changed_since(mut self, generation: u64) -> Self {
        self.changed_since = Some(generation);
        self
    }

    /// Restricts to records last changed at or before `generation`.
    pub fn changed_until(mut self, generation: u64) -> Self {
        self.changed_until = Some(generation);
        self
    }
}

/// The file records of one repo, implemented by the host on its database.
///
/// # Contract
/// - `(scope, path)` is unique within a repo, enforced by the store itself, so concurrent
///   inserts of the same file produce exactly one row.
/// - [`Catalog::insert`] of a record whose `(scope, path)` exists returns
///   [`InsertOutcome::Identical`] when the SHA-256 is the same; otherwise it replaces the row when
///   the repo allows overwrite and fails with [`crate::Error::Conflict`] when it does not.
/// - Every change bumps the repo's [`Catalog::generation`]. An inserted, replaced or yanked
///   record is stamped with the generation its change produced, and changes are stamped in the
///   order they commit: once [`Catalog::generation`] has returned `g`, every record stamped at or
///   below `g` is visible, so a provider that read `g` and then listed
///   [`ListQuery::changed_since`] its last `g` and [`ListQuery::changed_until`] `g` has seen
///   every insert and replace in between, however many writers commit meanwhile (deletions
///   leave no row: [`Catalog::count`] shows them).
/// - [`Catalog::list`] returns records ordered by key, then version, then path.
///
/// # Errors
/// Database failures are [`crate::Error::Internal`].
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// Inserts a record whose blob is already stored.
    async fn insert(&self, record: NewRecord) -> Result<InsertOutcome>;
    /// The records matching `query`.
    async fn list(&self, query: ListQuery) -> Result<Vec<FileRecord>>;
    /// The distinct keys of the repo, sorted, with their display names.
    async fn keys(&self) -> Result<Vec<(String, String)>>;
    /// Removes one record; `false` when there was none.
    async fn delete(&self, scope: &str, path: &str) -> Result<bool>;
    /// Sets or clears the yank reason of one record; `false` when there was none.
    async fn set_yanked(&self, scope: &str, path: &str, reason: Option<String>) -> Result<bool>;
    /// A number that grows with every change to the repo and again after every completed
    /// [`crate::Provider::index`] call (for cache validation across nodes: anything derived
    /// while this number is current is current).
    async fn generation(&self) -> Result<u64>;

    /// Removes the records at `remove` (scope, path) and inserts `insert` as one change: a
    /// reader sees all of it or none (a promotion between dists). An insert at a path that
    /// exists in its scope fails the whole change with `Conflict`; remove it in the same call
    /// to replace it.
    async fn apply(&self, remove: &[(String, String)], insert: Vec<NewRecord>) -> Result<()>;

    /// Keeps the blobs `sha256s` under `tag` (e.g. the pool files of a snapshot) even when no
    /// record refers to them any more: deletes and `gc` never remove a held blob. Holding
    /// under a tag again replaces its set.
    async fn hold(&self, tag: &str, sha256s: &[String]) -> Result<()>;
    /// Ends the hold `tag` (its blobs go with the next `gc` if nothing else refers to them).
    async fn release(&self, tag: &str) -> Result<()>;

    /// The generation of the latest removal of a record, in any scope. A removal leaves no row
    /// for [`ListQuery::changed_since`] to find, so whoever applies the changes since
    /// generation `g` must look further (count the rows) only when this is above `g`.
    /// `u64::MAX` when not known: a removal may have happened at any time.
    async fn last_removal(&self) -> Result<u64> {
        Ok(u64::MAX)
    }

    /// How many records match `query`.
    async fn count(&self, query: ListQuery) -> Result<u64> {
        Ok(self.list(query).await?.len() as u64)
    }

    /// The scopes of the records inserted, replaced or yanked after generation `since`.
    async fn changed_scopes(&self, since: u64) -> Result<std::collections::BTreeSet<String>> {
        Ok(self
            .list(ListQuery::all().changed_since(since))
            .await?
            .into_iter()
            .map(|r| r.scope)
            .collect())
    }

    /// The record at `path` in any scope, if there is one.
    async fn get(&self, path: &str) -> Result<Option<FileRecord>> {
        Ok(self.list(ListQuery::path(path)).await?.into_iter().next())
    }
}
