//! Checking each hosted repo (`artifactd fsck`): every record's blob is stored with its size
//! (and, deep, its SHA-256); the provider's check finds what its published indexes get wrong;
//! every signed document it serves verifies with the repo's keys. A repair quarantines records
//! whose blob is gone or wrong (the record leaves the catalog, whole in the audit log; the
//! blob, if any, stays) and rebuilds the repo's indexes.

use artifactd_plugin_api::{FileRecord, IndexScope, ListQuery, Problem, RepoContext};
use sea_orm::EntityTrait as _;
use serde_json::json;

use super::{ApiError, AppState};
use crate::auth::Auth;
use crate::db::entities::repo;
use crate::fsck::Finding;

impl AppState {
    /// The base URL of a task without a request (`gc`, `fsck`, `import`): the configured
    /// one, else the listen address.
    pub(super) fn task_base(&self) -> String {
        self.inner
            .config
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.inner.config.listen))
    }

    /// The context of a task on `row` (see [`AppState::task_base`]).
    pub(super) fn task_context(&self, auth: &Auth, row: &repo::Model) -> RepoContext {
        self.context(
            &row.provider,
            &row.name,
            Some(row),
            auth.principal.clone(),
            &self.task_base(),
        )
    }

    /// Checks every hosted repo; with `repair`, repairs what it can. Returns what was found
    /// and what the repair did.
    ///
    /// # Errors
    /// Catalog, index and storage failures.
    pub async fn check_repos(
        &self,
        deep: bool,
        repair: bool,
    ) -> Result<(Vec<Finding>, Vec<String>), ApiError> {
        let auth = Auth::system("fsck");
        let mut found = Vec::new();
        let mut repaired = Vec::new();
        for row in repo::Entity::find().all(self.inner.db.conn()).await? {
            if row.kind != "hosted" {
                continue;
            }
            let repo = format!("{}/{}", row.provider, row.name);
            let Ok(provider) = self.inner.registry.get(&row.provider).cloned() else {
                found.push(Finding::new(
                    &repo,
                    "",
                    "No provider of this kind is registered: nothing below it was checked.",
                ));
                continue;
            };
            let cx = self.task_context(&auth, &row);
            let records = cx.catalog.list(ListQuery::all()).await?;
            let mut broken = Vec::new();
            for r in records {
                if let Some(why) = self.record_problem(&r, deep).await? {
                    found.push(Finding::new(&repo, &r.path, &why));
                    broken.push(r);
                }
            }
            let report = provider.check(&cx).await?;
            let mut index_problems: Vec<Problem> = report.problems;
            if !report.signed.is_empty() {
                let keys = cx.signer.public_key_armored().await?;
                let keyring = crate::keyring::Keyring::parse(&keys);
                for (path, document) in &report.signed {
                    let verified = match &keyring {
                        Ok(k) => k.verify_cleartext(document.as_bytes()).map(|_| ()),
                        Err(e) => Err(e.clone()),
                    };
                    if let Err(why) = verified {
                        index_problems.push(Problem::new(
                            path.clone(),
                            format!("The signature does not verify with the repo's keys: {why}."),
                        ));
                    }
                }
            }
            for p in &index_problems {
                found.push(Finding::new(&repo, &p.path, &p.message));
            }
            if !repair || (broken.is_empty() && index_problems.is_empty()) {
                continue;
            }
            for r in &broken {
                cx.catalog.delete(&r.scope, &r.path).await?;
                self.audit(
                    &auth,
                    "fsck-quarantine",
                    Some((&row.provider, &row.name)),
                    json!({
                        "path": r.path, "scope": r.scope, "name": r.name, "version": r.version,
                        "sha256": r.sha256, "size": r.size, "meta": r.meta,
                    }),
                )
                .await;
                repaired.push(format!(
                    "{repo}: quarantined the record of {} (the blob, if any, is kept)",
                    r.path
                ));
            }
            self.reindex(&provider, row.id, &cx, IndexScope::Rebuild)
                .await?;
            self.audit(
                &auth,
                "fsck-republish",
                Some((&row.provider, &row.name)),
                json!({ "problems": index_problems.len() }),
            )
            .await;
            repaired.push(format!("{repo}: rebuilt the published indexes"));
        }
        Ok((found, repaired))
    }

    /// Content blobs older than `cutoff` that nothing refers to, as `(sha256, size)`.
    ///
    /// # Errors
    /// Database and storage failures.
    pub async fn unreferenced_blobs(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, u64)>, ApiError> {
        let referenced = crate::gc::referenced(&self.inner.db).await?;
        Ok(self.inner.blobs.orphans(cutoff, &referenced).await?)
    }

    /// What is wrong with a record's blob, if anything.
    async fn record_problem(&self, r: &FileRecord, deep: bool) -> Result<Option<String>, ApiError> {
        let Some(size) = self.inner.blobs.content_size(&r.sha256).await? else {
            return Ok(Some(format!("The blob {} is missing.", r.sha256)));
        };
        if size != r.size {
            return Ok(Some(format!(
                "The blob {} has {size} bytes; the record says {}.",
                r.sha256, r.size
            )));
        }
        if deep
            && let Some(digest) = self.inner.blobs.content_digest(&r.sha256).await?
            && digest != r.sha256
        {
            return Ok(Some(format!(
                "The blob {}'s bytes hash to {digest}: it is corrupt.",
                r.sha256
            )));
        }
        Ok(None)
    }
}
