//! Applying retention ([`crate::retention`]) to a repo: its records and the blobs snapshots hold
//! are read, the plan is made, and what it names goes through the same delete as the API's (one
//! publish, blobs nothing refers to removed, audited as `retention`).

use std::collections::HashSet;

use artifactd_plugin_api::{DynProvider, FileRecord, ListQuery, RepoContext};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QuerySelect as _};

use super::{ApiError, AppState};
use crate::auth::Auth;
use crate::db::entities::{blob_hold, repo};

impl AppState {
    /// Applies `row`'s retention settings; with `only`, to those (scope, package key) pairs
    /// (what an upload touched). With `dry_run` nothing changes. Returns what goes (or would).
    ///
    /// # Errors
    /// Catalog, index and storage failures.
    pub(super) async fn retain(
        &self,
        auth: &Auth,
        provider: &DynProvider,
        row: &repo::Model,
        cx: &RepoContext,
        only: Option<&[(String, String)]>,
        dry_run: bool,
    ) -> Result<Vec<FileRecord>, ApiError> {
        if cx.settings.keep_last.is_none() || row.kind != "hosted" {
            return Ok(Vec::new());
        }
        let records = match only {
            Some(pairs) => {
                let mut out = Vec::new();
                for (scope, key) in pairs {
                    out.extend(
                        cx.catalog
                            .list(ListQuery::key(key.clone()).in_scope(scope.clone()))
                            .await?,
                    );
                }
                out
            }
            None => cx.catalog.list(ListQuery::all()).await?,
        };
        // Only the holds on these records' files: a repo with many snapshots holds many
        // times more rows than one upload's package has versions.
        let mut shas: Vec<&str> = records.iter().map(|r| r.sha256.as_str()).collect();
        shas.sort_unstable();
        shas.dedup();
        let mut held: HashSet<String> = HashSet::new();
        for part in shas.chunks(crate::db::VALUES_PER_STATEMENT) {
            held.extend(
                blob_hold::Entity::find()
                    .filter(blob_hold::Column::RepoId.eq(row.id))
                    .filter(blob_hold::Column::Sha256.is_in(part.iter().copied()))
                    .select_only()
                    .column(blob_hold::Column::Sha256)
                    .distinct()
                    .into_tuple::<String>()
                    .all(self.inner.db.conn())
                    .await?,
            );
        }
        let doomed = crate::retention::plan(
            &records,
            &cx.settings,
            provider.as_ref(),
            &held,
            crate::db::now_millis(),
            only,
        );
        if doomed.is_empty() || dry_run {
            return Ok(doomed);
        }
        tracing::info!(provider = %row.provider, repo = %row.name, removed = doomed.len(), "Retention removes old versions.");
        self.delete_records_as("retention", auth, provider, row, cx, doomed.clone())
            .await?;
        Ok(doomed)
    }

    /// Each provider's per-file derived folders, as `(provider, folder)`, for `gc`.
    pub fn per_file_derived(&self) -> Vec<(&'static str, &'static str)> {
        self.inner
            .registry
            .providers()
            .flat_map(|p| p.per_file_derived().iter().map(move |f| (p.kind(), *f)))
            .collect()
    }

    /// Applies retention to every hosted repo (`artifactd gc`); returns, per repo, what goes.
    ///
    /// # Errors
    /// Catalog, index and storage failures.
    pub async fn retain_all(
        &self,
        dry_run: bool,
    ) -> Result<Vec<(String, String, Vec<FileRecord>)>, ApiError> {
        let auth = Auth::system("retention");
        let mut out = Vec::new();
        for row in repo::Entity::find().all(self.inner.db.conn()).await? {
            let Ok(provider) = self.inner.registry.get(&row.provider).cloned() else {
                continue;
            };
            let cx = self.task_context(&auth, &row);
            let gone = self
                .retain(&auth, &provider, &row, &cx, None, dry_run)
                .await?;
            if !gone.is_empty() {
                out.push((row.provider.clone(), row.name.clone(), gone));
            }
        }
        Ok(out)
    }
}
