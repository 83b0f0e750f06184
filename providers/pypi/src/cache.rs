//! Rendered index pages per node, valid while the repo's generation is unchanged.

use std::collections::HashMap;
use std::sync::Mutex;

use artifactd_plugin_api::bytes::Bytes;

/// (repo, page, format tag).
pub(crate) type PageKey = (String, String, &'static str);

/// Rendered pages, valid while the repo's generation is unchanged.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pages: Mutex<HashMap<PageKey, (u64, Bytes)>>,
}

const CACHE_ENTRIES: usize = 4096;

impl PageCache {
    pub(crate) fn get(&self, key: &PageKey, generation: u64) -> Option<Bytes> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages
            .get(key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    pub(crate) fn put(&self, key: PageKey, generation: u64, body: Bytes) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pages.len() >= CACHE_ENTRIES {
            pages.clear();
        }
        pages.insert(key, (generation, body));
    }

    pub(crate) fn forget_repo(&self, repo: &str) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.retain(|(r, _, _), _| r != repo);
    }
}
