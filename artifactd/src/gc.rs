//! `artifactd gc`: removes content blobs no file record refers to, the files providers derived
//! from them, and stale temporary upload files. A blob is stored before its record (so a crash between the two leaves an orphan, never
//! a record without its blob); the grace period keeps uploads in flight safe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sea_orm::{ColumnTrait as _, EntityTrait, QueryFilter as _, QuerySelect as _};

use crate::config::Config;
use crate::db::Db;
use crate::db::entities::{blob_hold, file, incoming_file, proxy_entry};
use crate::server::ServerBuilder;
use crate::storage::BlobStore;

/// Every value of the hash column `column` of `entity`.
async fn shas<E: EntityTrait>(
    db: &Db,
    _entity: E,
    column: E::Column,
) -> Result<Vec<String>, sea_orm::DbErr> {
    E::find()
        .select_only()
        .column(column)
        .into_tuple::<String>()
        .all(db.conn())
        .await
}

/// Every content hash something refers to: records, what proxies cached (pages and files),
/// what providers hold without a record (snapshots) and staged uploads.
///
/// # Errors
/// Database failures.
pub async fn referenced(db: &Db) -> Result<HashSet<String>, sea_orm::DbErr> {
    let mut referenced: HashSet<String> = HashSet::new();
    referenced.extend(shas(db, file::Entity, file::Column::Sha256).await?);
    referenced.extend(shas(db, proxy_entry::Entity, proxy_entry::Column::Sha256).await?);
    referenced.extend(shas(db, blob_hold::Entity, blob_hold::Column::Sha256).await?);
    referenced.extend(shas(db, incoming_file::Entity, incoming_file::Column::Sha256).await?);
    Ok(referenced)
}

/// `artifactd gc`: retention for every hosted repo, then [`run`]. With `dry_run`, describes
/// what retention would remove and removes nothing.
///
/// # Errors
/// Start-up, database, index, storage and file-system failures.
pub async fn collect(
    builder: ServerBuilder,
    config: Config,
    grace_secs: u64,
    dry_run: bool,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let state = builder.build_state(config.clone()).await?;
    let mut report = String::new();
    for (provider, repo, gone) in state.retain_all(dry_run).await? {
        for r in gone {
            let verb = if dry_run { "would remove" } else { "removed" };
            let scope = if r.scope.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.scope)
            };
            report.push_str(&format!(
                "retention {verb} {provider}/{repo}{scope} {} {}: {}\n",
                r.name, r.version, r.path
            ));
        }
    }
    if dry_run {
        report.push_str("dry run: nothing removed");
        return Ok(report);
    }
    let folders = state.per_file_derived();
    report.push_str(&run(&config, grace_secs, &folders).await?);
    Ok(report)
}

/// Runs one collection and describes what it removed.
///
/// # Errors
/// Database, storage and file-system failures.
pub async fn run(
    config: &Config,
    grace_secs: u64,
    per_file: &[(&str, &str)],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let db = Db::open(&config.database_url).await?;
    let blobs = BlobStore::open(&config.blobs).await?;
    let grace = Duration::from_secs(grace_secs);
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace)?;
    // Only blobs older than the grace period are candidates: an upload inserts its record right
    // after storing its blob, far within the grace period.
    // Staged uploads (dput) never completed within the grace period go; their blobs with them.
    let staged_before = chrono::Utc::now().timestamp_millis()
        - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let staged = incoming_file::Entity::delete_many()
        .filter(incoming_file::Column::CreatedAt.lt(staged_before))
        .exec(db.conn())
        .await?
        .rows_affected;
    let referenced = referenced(&db).await?;
    let (blobs_removed, bytes) = blobs.remove_orphans(cutoff, &referenced).await?;
    // What providers derived from a file (metadata, file lists) goes with it.
    let derived = blobs
        .remove_orphan_derived(cutoff, &referenced, per_file)
        .await?;
    let mut temps = 0u64;
    let tmp = config.data_dir.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        let limit = SystemTime::now() - grace;
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < limit);
            if old && std::fs::remove_file(e.path()).is_ok() {
                temps += 1;
            }
        }
    }
    tracing::info!(
        blobs = blobs_removed,
        bytes,
        temps,
        staged,
        derived,
        "Garbage collected."
    );
    Ok(format!(
        "removed {blobs_removed} unreferenced blob(s) ({bytes} bytes), {derived} file(s) derived from them, {temps} stale temporary file(s) and {staged} staged upload file(s) never completed"
    ))
}
