//! What a proxy has fetched: one row per page or file in `proxy_entries` (shared by every node
//! on the database), the bytes in the blob store under their hash; a node keeps the listings it
//! read in memory while they are fresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use artifactd_plugin_api::Listing;
use sea_orm::{ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set};

use crate::db::Db;
use crate::db::entities::proxy_entry;

/// An entry's key: `page:<project>`.
pub fn page_key(project: &str) -> String {
    format!("page:{project}")
}

/// An entry's key: `file:<filename>`.
pub fn file_key(filename: &str) -> String {
    format!("file:{filename}")
}

/// The row of `key` in repo `repo_id`.
///
/// # Errors
/// Database failures.
pub async fn entry(
    db: &Db,
    repo_id: i64,
    key: &str,
) -> Result<Option<proxy_entry::Model>, sea_orm::DbErr> {
    proxy_entry::Entity::find()
        .filter(proxy_entry::Column::RepoId.eq(repo_id))
        .filter(proxy_entry::Column::Key.eq(key))
        .one(db.conn())
        .await
}

/// Records what was fetched for `key` (replacing an older row).
///
/// # Errors
/// Database failures.
pub async fn store(
    db: &Db,
    repo_id: i64,
    key: &str,
    status: i32,
    sha256: &str,
    size: u64,
    content_type: &str,
) -> Result<proxy_entry::Model, sea_orm::DbErr> {
    let now = crate::db::now_millis();
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    for _ in 0..2 {
        if let Some(row) = entry(db, repo_id, key).await? {
            let mut am: proxy_entry::ActiveModel = row.into();
            am.status = Set(status);
            am.sha256 = Set(sha256.to_owned());
            am.size = Set(size);
            am.content_type = Set(content_type.to_owned());
            am.fetched_at = Set(now);
            return am.update(db.conn()).await;
        }
        let am = proxy_entry::ActiveModel {
            repo_id: Set(repo_id),
            key: Set(key.to_owned()),
            status: Set(status),
            sha256: Set(sha256.to_owned()),
            size: Set(size),
            content_type: Set(content_type.to_owned()),
            fetched_at: Set(now),
            ..Default::default()
        };
        match am.insert(db.conn()).await {
            Ok(row) => return Ok(row),
            // Another node stored it meanwhile: update theirs.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) => {}
            Err(e) => return Err(e),
        }
    }
    entry(db, repo_id, key)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound(key.to_owned()))
}

/// The projects a proxy has fetched pages of: (key, name).
///
/// # Errors
/// Database failures.
pub async fn cached_projects(
    db: &Db,
    repo_id: i64,
) -> Result<Vec<(String, String)>, sea_orm::DbErr> {
    Ok(entries(db, repo_id, "page:")
        .await?
        .into_iter()
        .filter(|e| e.status == 200)
        .filter_map(|e| {
            e.key
                .strip_prefix("page:")
                .map(|p| (p.to_owned(), p.to_owned()))
        })
        .collect())
}

/// Every entry of a repo whose key starts with `prefix`.
///
/// # Errors
/// Database failures.
pub async fn entries(
    db: &Db,
    repo_id: i64,
    prefix: &str,
) -> Result<Vec<proxy_entry::Model>, sea_orm::DbErr> {
    proxy_entry::Entity::find()
        .filter(proxy_entry::Column::RepoId.eq(repo_id))
        .filter(proxy_entry::Column::Key.starts_with(prefix))
        .all(db.conn())
        .await
}

/// A listing as read on this node: `None` for an upstream "no such project".
#[derive(Debug, Clone)]
pub struct Known {
    /// When it was fetched (ms since the epoch), on whichever node.
    pub fetched_at: i64,
    /// The listing.
    pub listing: Option<Arc<Listing>>,
}

/// Listings this node read, by (repo, project); an entry is used while its row's `fetched_at`
/// is fresh, and re-read when the row says a newer fetch happened elsewhere.
#[derive(Debug, Default)]
pub struct Listings {
    known: Mutex<HashMap<(i64, String), Known>>,
}

/// At most this many listings are kept per node.
const MAX_LISTINGS: usize = 4096;

impl Listings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), Known>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What this node knows of a project.
    pub fn get(&self, repo_id: i64, project: &str) -> Option<Known> {
        self.lock().get(&(repo_id, project.to_owned())).cloned()
    }

    /// Remembers a listing.
    pub fn put(&self, repo_id: i64, project: &str, known: Known) {
        let mut map = self.lock();
        if map.len() >= MAX_LISTINGS {
            map.clear();
        }
        map.insert((repo_id, project.to_owned()), known);
    }
}

/// One lock per key, so that one request fetches and the others wait for its result.
#[derive(Debug, Default)]
pub struct KeyLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// The lock of `key` (created on first use; dropped again once nobody holds it).
    pub async fn lock(&self, key: String) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Locks nobody holds or waits for go.
            if locks.len() > 1024 {
                locks.retain(|_, l| Arc::strong_count(l) > 1);
            }
            locks.entry(key).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// A rendered page's key: (repo, path, `Accept`).
pub type PageKey = (i64, String, String);
/// A rendered page and the token of what it was made from.
type RenderedPage = (Vec<i64>, artifactd_plugin_api::ServeResponse);

/// Pages this node rendered, by (repo, path, `Accept`), with the token of what they were made
/// from (generations and fetch times): served again while the token is the same.
#[derive(Debug, Default)]
pub struct Rendered {
    pages: Mutex<HashMap<PageKey, RenderedPage>>,
}

/// At most this many rendered pages are kept per node.
const MAX_RENDERED: usize = 4096;

impl Rendered {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PageKey, RenderedPage>> {
        self.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The page rendered from `token`, if any.
    pub fn get(&self, key: &PageKey, token: &[i64]) -> Option<artifactd_plugin_api::ServeResponse> {
        self.lock()
            .get(key)
            .filter(|(t, _)| t == token)
            .map(|(_, r)| r.clone())
    }

    /// Keeps a rendered page.
    pub fn put(&self, key: PageKey, token: Vec<i64>, resp: artifactd_plugin_api::ServeResponse) {
        let mut pages = self.lock();
        if pages.len() >= MAX_RENDERED {
            pages.clear();
        }
        pages.insert(key, (token, resp));
    }
}

/// A hosted listing and the generation it was read at.
type AtGeneration = (i64, Option<Arc<Listing>>);

/// Hosted members' listings for virtual repos, by (repo, project), valid for one generation.
#[derive(Debug, Default)]
pub struct HostedListings {
    known: Mutex<HashMap<(i64, String), AtGeneration>>,
}

impl HostedListings {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(i64, String), AtGeneration>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The listing read at `generation`, if this node has it.
    pub fn get(
        &self,
        repo_id: i64,
        project: &str,
        generation: i64,
    ) -> Option<Option<Arc<Listing>>> {
        self.lock()
            .get(&(repo_id, project.to_owned()))
            .filter(|(g, _)| *g == generation)
            .map(|(_, l)| l.clone())
    }

    /// Keeps a listing read at `generation`.
    pub fn put(&self, repo_id: i64, project: &str, generation: i64, listing: Option<Arc<Listing>>) {
        let mut map = self.lock();
        if map.len() >= MAX_LISTINGS {
            map.clear();
        }
        map.insert((repo_id, project.to_owned()), (generation, listing));
    }
}
