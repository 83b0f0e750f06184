//! `artifactd gc`: removes content blobs no file record refers to and stale temporary upload
//! files. A blob is stored before its record (so a crash between the two leaves an orphan, never
//! a record without its blob); the grace period keeps uploads in flight safe.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sea_orm::{EntityTrait, QuerySelect as _};

use crate::config::Config;
use crate::db::Db;
use crate::db::entities::{blob_hold, file, proxy_entry};
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

/// Runs one collection and describes what it removed.
///
/// # Errors
/// Database, storage and file-system failures.
pub async fn run(
    config: &Config,
    grace_secs: u64,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let db = Db::open(&config.database_url).await?;
    let blobs = BlobStore::open(&config.blobs).await?;
    let grace = Duration::from_secs(grace_secs);
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace)?;
    // Only blobs older than the grace period are candidates: an upload inserts its record right
    // after storing its blob, far within the grace period.
    // Records, what proxies cached (pages and files) and what providers hold without a
    // record (snapshots) refer to blobs.
    let mut referenced: HashSet<String> = HashSet::new();
    referenced.extend(shas(&db, file::Entity, file::Column::Sha256).await?);
    referenced.extend(shas(&db, proxy_entry::Entity, proxy_entry::Column::Sha256).await?);
    referenced.extend(shas(&db, blob_hold::Entity, blob_hold::Column::Sha256).await?);
    let (blobs_removed, bytes) = blobs.remove_orphans(cutoff, &referenced).await?;
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
    tracing::info!(blobs = blobs_removed, bytes, temps, "Garbage collected.");
    Ok(format!(
        "removed {blobs_removed} unreferenced blob(s) ({bytes} bytes) and {temps} stale temporary file(s)"
    ))
}
