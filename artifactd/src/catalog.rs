//! The plugin API's [`Catalog`] on the database: one repo's file records.

use artifactd_plugin_api::{
    Catalog, Error, FileRecord, InsertOutcome, ListQuery, NewRecord, Result, async_trait,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, ExprTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};

use crate::db::entities::{blob_hold, file, repo};
use crate::db::{Db, VALUES_PER_STATEMENT, now_millis};

fn db_err(e: DbErr) -> Error {
    if crate::db::unreachable(&e) {
        return Error::Unavailable {
            message: crate::db::UNREACHABLE.to_owned(),
            source: Some(Box::new(e)),
        };
    }
    Error::internal("catalog query failed", e)
}

/// The records of one repo. A repo that does not exist yet (`repo_id` is `None`) reads as empty.
#[derive(Debug, Clone)]
pub struct DbCatalog {
    db: Db,
    repo_id: Option<i64>,
    overwrite: bool,
    uploader: String,
    /// The generation read with the repo row at the start of the request, until this catalog
    /// writes (reads then need no second query; `u64::MAX`: unknown).
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl DbCatalog {
    /// The catalog of a repo.
    pub fn new(db: Db, repo_id: Option<i64>, overwrite: bool, uploader: String) -> Self {
        Self {
            db,
            repo_id,
            overwrite,
            uploader,
            generation: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        }
    }

    /// Remembers the generation read with the repo row, for this request's reads.
    pub fn with_generation(self, generation: i64) -> Self {
        if let Ok(g) = u64::try_from(generation) {
            self.generation
                .store(g, std::sync::atomic::Ordering::Relaxed);
        }
        self
    }

    fn changed(&self) {
        self.generation
            .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    }

    fn repo_id(&self) -> Result<i64> {
        self.repo_id
            .ok_or_else(|| Error::internal_msg("write to a repo that does not exist yet"))
    }
}

/// Converts a row.
pub fn to_record(m: file::Model) -> FileRecord {
    let meta = serde_json::from_str(&m.meta).unwrap_or(serde_json::Value::Null);
    let size = u64::try_from(m.size).unwrap_or(0);
    let new = NewRecord::new(m.path, m.name, m.pkey, m.version, size, m.sha256)
        .with_scope(m.scope)
        .with_meta(meta);
    FileRecord::stored(new, m.uploaded_at, m.uploader, m.yanked)
}

/// An update of a repo row's file count and total size by `files` and `bytes`.
fn add_counts(files: i64, bytes: i64) -> sea_orm::UpdateMany<repo::Entity> {
    repo::Entity::update_many()
        .col_expr(
            repo::Column::FileCount,
            Expr::col(repo::Column::FileCount).add(files),
        )
        .col_expr(
            repo::Column::TotalSize,
            Expr::col(repo::Column::TotalSize).add(bytes),
        )
}

/// Bumps the repo's generation and counters inside `conn`'s transaction.
pub async fn bump(
    conn: &impl sea_orm::ConnectionTrait,
    repo_id: i64,
    files: i64,
    bytes: i64,
    upload_at: Option<i64>,
) -> Result<(), DbErr> {
    let mut q = add_counts(files, bytes).col_expr(
        repo::Column::Generation,
        Expr::col(repo::Column::Generation).add(1),
    );
    if let Some(at) = upload_at {
        q = q.col_expr(repo::Column::LastUpload, Expr::value(at));
    }
    q.filter(repo::Column::Id.eq(repo_id)).exec(conn).await?;
    Ok(())
}

/// The repo's generation as `conn` sees it (inside a writer's transaction: the one its own
/// [`bump`] produced, which stamps the rows it changes).
pub async fn generation_of(
    conn: &impl sea_orm::ConnectionTrait,
    repo_id: i64,
) -> Result<i64, DbErr> {
    let g: Option<i64> = repo::Entity::find_by_id(repo_id)
        .select_only()
        .column(repo::Column::Generation)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(g.unwrap_or(0))
}

/// Bumps the generation like [`bump`] and returns the new one, the stamp of the rows a write
/// changes. The repo row stays locked until the transaction ends, so stamps follow commit order.
async fn bump_stamp(
    txn: &sea_orm::DatabaseTransaction,
    repo_id: i64,
    files: i64,
    bytes: i64,
    upload_at: Option<i64>,
) -> Result<i64> {
    bump(txn, repo_id, files, bytes, upload_at)
        .await
        .map_err(db_err)?;
    generation_of(txn, repo_id).await.map_err(db_err)
}

/// Records in the open transaction that its write removed records: the repo's latest removal
/// is the generation the write stamps (see [`Catalog::last_removal`]).
async fn stamp_removal(txn: &sea_orm::DatabaseTransaction, repo_id: i64) -> Result<()> {
    repo::Entity::update_many()
        .col_expr(
            repo::Column::RemovedGen,
            Expr::col(repo::Column::Generation),
        )
        .filter(repo::Column::Id.eq(repo_id))
        .exec(txn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// `q` as queries of at most [`VALUES_PER_STATEMENT`] distinct keys each, whose results add up.
fn split_keys(mut q: ListQuery) -> Vec<ListQuery> {
    let Some(mut keys) = q.keys.take() else {
        return vec![q];
    };
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Vec::new();
    }
    keys.chunks(VALUES_PER_STATEMENT)
        .map(|part| {
            let mut one = q.clone();
            one.keys = Some(part.to_vec());
            one
        })
        .collect()
}

/// The rows of `repo_id` that `q` selects, unordered.
fn select(repo_id: i64, q: ListQuery) -> sea_orm::Select<file::Entity> {
    let mut find = match q.path {
        // A path names one record per scope. `+repo_id` keeps the repo out of index choice, so
        // the database looks the path up by its index instead of walking the repo's rows in key
        // order (SQLite without statistics prefers that, for the order).
        Some(p) => file::Entity::find()
            .filter(file::Column::Path.eq(p))
            .filter(Expr::cust(format!("+repo_id = {repo_id}"))),
        None => file::Entity::find().filter(file::Column::RepoId.eq(repo_id)),
    };
    if let Some(s) = q.scope {
        find = find.filter(file::Column::Scope.eq(s));
    }
    if let Some(k) = q.key {
        find = find.filter(file::Column::Pkey.eq(k));
    }
    if let Some(ks) = q.keys {
        find = find.filter(file::Column::Pkey.is_in(ks));
    }
    if let Some(g) = q.changed_since {
        find = find.filter(file::Column::ChangedGen.gt(i64::try_from(g).unwrap_or(i64::MAX)));
    }
    if let Some(g) = q.changed_until {
        find = find.filter(file::Column::ChangedGen.lte(i64::try_from(g).unwrap_or(i64::MAX)));
    }
    find
}

impl DbCatalog {
    /// One of the repo row's generation counters, read from the database.
    async fn counter(&self, repo_id: i64, column: repo::Column) -> Result<u64> {
        let value: Option<i64> = repo::Entity::find_by_id(repo_id)
            .select_only()
            .column(column)
            .into_tuple()
            .one(self.db.conn())
            .await
            .map_err(db_err)?;
        Ok(u64::try_from(value.unwrap_or(0)).unwrap_or(0))
    }

    async fn find(&self, repo_id: i64, scope: &str, path: &str) -> Result<Option<file::Model>> {
        file::Entity::find()
            .filter(file::Column::RepoId.eq(repo_id))
            .filter(file::Column::Scope.eq(scope))
            .filter(file::Column::Path.eq(path))
            .one(self.db.conn())
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl Catalog for DbCatalog {
    async fn insert(&self, r: NewRecord) -> Result<InsertOutcome> {
        self.changed();
        let repo_id = self.repo_id()?;
        let now = now_millis();
        let size = i64::try_from(r.size).map_err(|_| Error::invalid("The file is too large."))?;
        let meta = serde_json::to_string(&r.meta).map_err(|e| Error::internal("metadata", e))?;
        let mut row = file::ActiveModel {
            repo_id: Set(repo_id),
            scope: Set(r.scope.clone()),
            path: Set(r.path.clone()),
            name: Set(r.name.clone()),
            pkey: Set(r.key.clone()),
            version: Set(r.version.clone()),
            size: Set(size),
            sha256: Set(r.sha256.clone()),
            meta: Set(meta.clone()),
            uploaded_at: Set(now),
            uploader: Set(self.uploader.clone()),
            yanked: Set(None),
            ..Default::default()
        };
        // The repo row is updated first in every write: its row lock orders concurrent writers
        // of one repo, so racing inserts of one path wait instead of deadlocking (MySQL).
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        row.changed_gen = Set(bump_stamp(&txn, repo_id, 1, size, Some(now)).await?);
        match row.insert(&txn).await {
            Ok(m) => {
                self.db.commit(txn).await.map_err(db_err)?;
                return Ok(InsertOutcome::Inserted(to_record(m)));
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await.map_err(db_err)?;
            }
            Err(e) => return Err(db_err(e)),
        }
        let existing = self
            .find(repo_id, &r.scope, &r.path)
            .await?
            .ok_or_else(|| Error::internal_msg("a conflicting row vanished; retry the upload"))?;
        if existing.sha256 == r.sha256 {
            return Ok(InsertOutcome::Identical(to_record(existing)));
        }
        if !self.overwrite {
            return Err(Error::Conflict(format!(
                "File already exists: {} is stored with different content (sha256 {}); the repo does not allow overwrite.",
                r.path, existing.sha256
            )));
        }
        let old_size = existing.size;
        let mut am = existing.into_active_model();
        am.name = Set(r.name);
        am.pkey = Set(r.key);
        am.version = Set(r.version);
        am.size = Set(size);
        am.sha256 = Set(r.sha256);
        am.meta = Set(meta);
        am.uploaded_at = Set(now);
        am.uploader = Set(self.uploader.clone());
        am.yanked = Set(None);
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        am.changed_gen = Set(bump_stamp(&txn, repo_id, 0, size - old_size, Some(now)).await?);
        let m = am.update(&txn).await.map_err(db_err)?;
        self.db.commit(txn).await.map_err(db_err)?;
        Ok(InsertOutcome::Replaced(to_record(m)))
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<FileRecord>> {
        let Some(repo_id) = self.repo_id else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        for q in split_keys(q) {
            let by_path = q.path.is_some();
            let mut find = select(repo_id, q);
            if !by_path {
                find = find
                    .order_by_asc(file::Column::Pkey)
                    .order_by_asc(file::Column::Version)
                    .order_by_asc(file::Column::Path);
            }
            rows.extend(find.all(self.db.conn()).await.map_err(db_err)?);
        }
        rows.sort_by(|a, b| (&a.pkey, &a.version, &a.path).cmp(&(&b.pkey, &b.version, &b.path)));
        Ok(rows.into_iter().map(to_record).collect())
    }

    async fn count(&self, q: ListQuery) -> Result<u64> {
        let Some(repo_id) = self.repo_id else {
            return Ok(0);
        };
        let mut total = 0;
        for q in split_keys(q) {
            let n: Option<i64> = select(repo_id, q)
                .select_only()
                .column_as(Expr::cust("COUNT(*)"), "n")
                .into_tuple()
                .one(self.db.conn())
                .await
                .map_err(db_err)?;
            total += n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        }
        Ok(total)
    }

    async fn keys(&self) -> Result<Vec<(String, String)>> {
        let Some(repo_id) = self.repo_id else {
            return Ok(Vec::new());
        };
        file::Entity::find()
            .select_only()
            .column(file::Column::Pkey)
            .column_as(Expr::col(file::Column::Name).max(), "name")
            .filter(file::Column::RepoId.eq(repo_id))
            .group_by(file::Column::Pkey)
            .order_by_asc(file::Column::Pkey)
            .into_tuple::<(String, String)>()
            .all(self.db.conn())
            .await
            .map_err(db_err)
    }

    async fn changed_scopes(&self, since: u64) -> Result<std::collections::BTreeSet<String>> {
        let Some(repo_id) = self.repo_id else {
            return Ok(std::collections::BTreeSet::new());
        };
        // The scope only, from the (repo, changed_gen, scope) index: a promotion's thousand
        // new records are not read back whole to learn which dist they are in.
        let scopes: Vec<String> = file::Entity::find()
            .select_only()
            .column(file::Column::Scope)
            .distinct()
            .filter(file::Column::RepoId.eq(repo_id))
            .filter(file::Column::ChangedGen.gt(i64::try_from(since).unwrap_or(i64::MAX)))
            .into_tuple()
            .all(self.db.conn())
            .await
            .map_err(db_err)?;
        Ok(scopes.into_iter().collect())
    }

    async fn delete(&self, scope: &str, path: &str) -> Result<bool> {
        self.changed();
        let Some(repo_id) = self.repo_id else {
            return Ok(false);
        };
        let Some(existing) = self.find(repo_id, scope, path).await? else {
            return Ok(false);
        };
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        bump(&txn, repo_id, -1, -existing.size, None)
            .await
            .map_err(db_err)?;
        stamp_removal(&txn, repo_id).await?;
        let res = file::Entity::delete_by_id(existing.id)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 1 {
            self.db.commit(txn).await.map_err(db_err)?;
        } else {
            txn.rollback().await.map_err(db_err)?;
        }
        Ok(res.rows_affected == 1)
    }

    async fn set_yanked(&self, scope: &str, path: &str, reason: Option<String>) -> Result<bool> {
        self.changed();
        let Some(repo_id) = self.repo_id else {
            return Ok(false);
        };
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        let stamp = bump_stamp(&txn, repo_id, 0, 0, None).await?;
        let res = file::Entity::update_many()
            .col_expr(file::Column::Yanked, Expr::value(reason))
            .col_expr(file::Column::ChangedGen, Expr::value(stamp))
            .filter(file::Column::RepoId.eq(repo_id))
            .filter(file::Column::Scope.eq(scope))
            .filter(file::Column::Path.eq(path))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        if res.rows_affected > 0 {
            self.db.commit(txn).await.map_err(db_err)?;
        } else {
            txn.rollback().await.map_err(db_err)?;
        }
        Ok(res.rows_affected > 0)
    }

    async fn generation(&self) -> Result<u64> {
        let Some(repo_id) = self.repo_id else {
            return Ok(0);
        };
        let known = self.generation.load(std::sync::atomic::Ordering::Relaxed);
        if known != u64::MAX {
            return Ok(known);
        }
        self.counter(repo_id, repo::Column::Generation).await
    }

    async fn last_removal(&self) -> Result<u64> {
        let Some(repo_id) = self.repo_id else {
            return Ok(0);
        };
        // Always from the database: another node may have removed a record.
        self.counter(repo_id, repo::Column::RemovedGen).await
    }

    async fn apply(&self, remove: &[(String, String)], insert: Vec<NewRecord>) -> Result<()> {
        self.changed();
        let repo_id = self.repo_id()?;
        let now = now_millis();
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        // The repo row first, as in every write; the counts are corrected below.
        let stamp = bump_stamp(&txn, repo_id, 0, 0, Some(now)).await?;
        let (mut files, mut bytes) = (0i64, 0i64);
        for (scope, path) in remove {
            let gone = file::Entity::find()
                .filter(file::Column::RepoId.eq(repo_id))
                .filter(file::Column::Scope.eq(scope.as_str()))
                .filter(file::Column::Path.eq(path.as_str()))
                .one(&txn)
                .await
                .map_err(db_err)?;
            if let Some(m) = gone {
                file::Entity::delete_by_id(m.id)
                    .exec(&txn)
                    .await
                    .map_err(db_err)?;
                files -= 1;
                bytes -= m.size;
            }
        }
        if files < 0 {
            stamp_removal(&txn, repo_id).await?;
        }
        let mut rows = Vec::with_capacity(insert.len());
        for r in insert {
            let size =
                i64::try_from(r.size).map_err(|_| Error::invalid("The file is too large."))?;
            files += 1;
            bytes += size;
            rows.push(file::ActiveModel {
                repo_id: Set(repo_id),
                scope: Set(r.scope),
                path: Set(r.path),
                name: Set(r.name),
                pkey: Set(r.key),
                version: Set(r.version),
                size: Set(size),
                sha256: Set(r.sha256),
                meta: Set(
                    serde_json::to_string(&r.meta).map_err(|e| Error::internal("metadata", e))?
                ),
                uploaded_at: Set(now),
                uploader: Set(self.uploader.clone()),
                yanked: Set(None),
                changed_gen: Set(stamp),
                ..Default::default()
            });
        }
        // Bounded statements: every database limits the values one statement binds.
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let part: Vec<file::ActiveModel> = rows.by_ref().take(100).collect();
            match file::Entity::insert_many(part).exec(&txn).await {
                Ok(_) => {}
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    txn.rollback().await.map_err(db_err)?;
                    return Err(Error::Conflict(
                        "A file of this change exists already in its dist; nothing was changed."
                            .to_owned(),
                    ));
                }
                Err(e) => return Err(db_err(e)),
            }
        }
        // The counts, now that they are known (the generation moved once, above).
        add_counts(files, bytes)
            .filter(repo::Column::Id.eq(repo_id))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        self.db.commit(txn).await.map_err(db_err)
    }

    async fn hold(&self, tag: &str, sha256s: &[String]) -> Result<()> {
        let repo_id = self.repo_id()?;
        let txn = self.db.conn().begin().await.map_err(db_err)?;
        blob_hold::Entity::delete_many()
            .filter(blob_hold::Column::RepoId.eq(repo_id))
            .filter(blob_hold::Column::Tag.eq(tag))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let mut shas: Vec<&String> = sha256s.iter().collect();
        shas.sort_unstable();
        shas.dedup();
        // Bounded statements: every database has a limit on bound values.
        for part in shas.chunks(VALUES_PER_STATEMENT) {
            let rows = part.iter().map(|sha| blob_hold::ActiveModel {
                repo_id: Set(repo_id),
                tag: Set(tag.to_owned()),
                sha256: Set((*sha).clone()),
                ..Default::default()
            });
            blob_hold::Entity::insert_many(rows)
                .exec(&txn)
                .await
                .map_err(db_err)?;
        }
        self.db.commit(txn).await.map_err(db_err)
    }

    async fn release(&self, tag: &str) -> Result<()> {
        let Some(repo_id) = self.repo_id else {
            return Ok(());
        };
        blob_hold::Entity::delete_many()
            .filter(blob_hold::Column::RepoId.eq(repo_id))
            .filter(blob_hold::Column::Tag.eq(tag))
            .exec(self.db.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
