//! Publishing and deleting: provider index hooks run one at a time per repo (and across nodes
//! through a lock row), and deletions that republish and drop unreferenced blobs.

use std::collections::HashMap;
use std::time::Instant;

use artifactd_plugin_api::{DynProvider, IndexScope, RepoContext};
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::Auth;
use crate::db::entities::repo;
use crate::db::settings_of;

impl AppState {
    /// Deletes records, republishes the provider's indexes, removes blobs nothing references any
    /// more, and deletes the repo when it is empty and its settings say so. Returns the paths.
    ///
    /// # Errors
    /// Catalog, index and storage failures.
    pub async fn delete_records(
        &self,
        auth: &Auth,
        provider: &DynProvider,
        row: &repo::Model,
        cx: &RepoContext,
        records: Vec<artifactd_plugin_api::FileRecord>,
    ) -> Result<Vec<String>, ApiError> {
        self.delete_records_as("delete", auth, provider, row, cx, records)
            .await
    }

    /// [`AppState::delete_records`], audited as `action`.
    pub(super) async fn delete_records_as(
        &self,
        action: &str,
        auth: &Auth,
        provider: &DynProvider,
        row: &repo::Model,
        cx: &RepoContext,
        records: Vec<artifactd_plugin_api::FileRecord>,
    ) -> Result<Vec<String>, ApiError> {
        use sea_orm::{ColumnTrait as _, EntityTrait as _, PaginatorTrait as _, QueryFilter as _};
        let mut deleted = Vec::new();
        let mut scopes = Vec::new();
        for r in &records {
            if cx.catalog.delete(&r.scope, &r.path).await? {
                deleted.push(r.path.clone());
                scopes.push(r.scope.clone());
            }
        }
        scopes.sort();
        scopes.dedup();
        self.reindex(provider, row.id, cx, IndexScope::Scopes(scopes))
            .await?;
        let mut shas: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
        shas.sort_unstable();
        shas.dedup();
        for sha in shas {
            if !crate::db::blob_in_use(self.inner.db.conn(), sha).await? {
                self.inner.blobs.delete_content(sha).await?;
            }
        }
        self.audit(
            auth,
            action,
            Some((&row.provider, &row.name)),
            json!({ "paths": deleted }),
        )
        .await;
        if settings_of(row).delete_empty {
            let left = crate::db::entities::file::Entity::find()
                .filter(crate::db::entities::file::Column::RepoId.eq(row.id))
                .count(self.inner.db.conn())
                .await?;
            if left == 0 {
                crate::db::entities::repo::Entity::delete_by_id(row.id)
                    .exec(self.inner.db.conn())
                    .await?;
                self.inner.db.repos_changed();
                self.inner
                    .blobs
                    .delete_derived(&row.provider, &row.name)
                    .await?;
                tracing::info!(provider = %row.provider, repo = %row.name, "Deleted the empty repo.");
                self.audit(
                    auth,
                    "delete-repo",
                    Some((&row.provider, &row.name)),
                    json!({}),
                )
                .await;
            }
        }
        Ok(deleted)
    }

    async fn generation_of(&self, repo_id: i64) -> Result<i64, ApiError> {
        Ok(crate::catalog::generation_of(self.inner.db.conn(), repo_id).await?)
    }

    /// Runs a provider's index hook, one at a time per repo.
    pub(super) async fn reindex(
        &self,
        provider: &DynProvider,
        repo_id: i64,
        cx: &RepoContext,
        scope: IndexScope,
    ) -> Result<(), ApiError> {
        let lock = {
            let mut locks = self
                .inner
                .index_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(repo_id).or_default().clone()
        };
        // The change that asked for this publish is committed: the generation now is at least
        // its own. Concurrent uploads queue on the lock; a publish that read the catalog after
        // their commits covers them, and they return without publishing again.
        let needed = self.generation_of(repo_id).await?;
        let mut published = lock.lock().await;
        let scopes: Option<Vec<String>> = match &scope {
            IndexScope::Scopes(s) => Some(s.clone()),
            _ => None,
        };
        if let Some(scopes) = &scopes
            && scopes
                .iter()
                .all(|s| published.covered.get(s).is_some_and(|g| *g >= needed))
        {
            return Ok(());
        }
        let reading_at = self.generation_of(repo_id).await?;
        let started = Instant::now();
        let conn = self.inner.db.conn();
        let result = self.index_locked(provider, repo_id, cx, scope).await;
        crate::metrics::published(provider.kind(), result.is_ok(), started.elapsed());
        result?;
        // The catalog change bumped the generation before this publish; bump it again now that
        // the published files are in place, so that every node drops what it cached in between.
        crate::catalog::bump(conn, repo_id, 0, 0, None).await?;
        self.inner.db.repos_changed();
        match scopes {
            Some(scopes) => {
                for s in scopes {
                    published.covered.insert(s, reading_at);
                }
            }
            None => published.covered.clear(),
        }
        tracing::info!(provider = provider.kind(), repo = %cx.repo, ms = started.elapsed().as_millis() as u64, "Published index.");
        Ok(())
    }

    /// Runs the index hook under the cross-node publish lock of the repo. Across nodes sharing
    /// one database, a lock row per repo serializes publishing: each publisher reads the catalog
    /// only after the previous one finished, so no index misses a committed file. The lock row
    /// has no foreign key, so holding it never blocks uploads or key creation. SQLite is one
    /// node's file: the in-process lock is enough.
    async fn index_locked(
        &self,
        provider: &DynProvider,
        repo_id: i64,
        cx: &RepoContext,
        scope: IndexScope,
    ) -> Result<(), ApiError> {
        let conn = self.inner.db.conn();
        if conn.get_database_backend() == sea_orm::DbBackend::Sqlite {
            provider.index(cx, scope).await?;
        } else {
            use crate::db::entities::publish_lock;
            use sea_orm::{
                ActiveModelTrait as _, EntityTrait as _, QuerySelect as _, TransactionTrait as _,
            };
            let row = publish_lock::ActiveModel {
                repo_id: sea_orm::Set(repo_id),
            };
            if let Err(e) = row.insert(conn).await
                && !matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                )
            {
                return Err(e.into());
            }
            let txn = conn.begin().await?;
            publish_lock::Entity::find_by_id(repo_id)
                .lock_exclusive()
                .one(&txn)
                .await?;
            let result = provider.index(cx, scope).await;
            txn.commit().await?;
            result?;
        }
        Ok(())
    }
}

/// Per record scope, the repo generation that the last completed publish of this node read the
/// catalog at: a change committed at or before it is already published.
#[derive(Debug, Default)]
pub(super) struct Published {
    covered: HashMap<String, i64>,
}
