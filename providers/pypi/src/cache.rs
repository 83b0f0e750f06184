//! Rendered index pages per node, valid while the repo's generation is unchanged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use artifactd_plugin_api::bytes::Bytes;
use artifactd_plugin_api::flight::Flights;

/// (repo, page, format tag).
pub(crate) type PageKey = (String, String, &'static str);

/// Rendered pages, valid while the repo's generation is unchanged.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    /// key → (generation, when it was rendered, page).
    pages: Mutex<HashMap<PageKey, (u64, Instant, Bytes)>>,
    /// Renders in progress: one per page at a time, so a thousand readers of a page that a
    /// publish just changed make one catalog query, not a thousand.
    pub(crate) renders: Flights<PageKey>,
}

const CACHE_ENTRIES: usize = 4096;

impl PageCache {
    /// The page of `key` at `generation`, or at a later one rendered after `since`: a reader
    /// that waited for another's render takes its page, which shows a state at least as new as
    /// the one the reader saw. With the generation the page is of.
    pub(crate) fn get_since(
        &self,
        key: &PageKey,
        generation: u64,
        since: Option<Instant>,
    ) -> Option<(u64, Bytes)> {
        let pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages
            .get(key)
            .filter(|(g, at, _)| {
                *g == generation || (*g > generation && since.is_some_and(|s| *at >= s))
            })
            .map(|(g, _, b)| (*g, b.clone()))
    }

    pub(crate) fn put(&self, key: PageKey, generation: u64, body: Bytes) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pages.len() >= CACHE_ENTRIES {
            pages.clear();
        }
        pages.insert(key, (generation, Instant::now(), body));
    }

    pub(crate) fn forget_repo(&self, repo: &str) {
        let mut pages = self
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pages.retain(|(r, _, _), _| r != repo);
    }
}

#[cfg(test)]
mod tests {
    use super::PageCache;
    use artifactd_plugin_api::bytes::Bytes;
    use std::time::Instant;

    /// A newer page serves a reader of an older generation only when it was rendered while
    /// the reader waited: an old entry of a later generation (a repo deleted and made again
    /// counts from 0) is never taken for a newer state.
    #[test]
    fn a_newer_page_serves_only_readers_that_waited_for_it() {
        let cache = PageCache::default();
        let key = ("r".to_owned(), "p/".to_owned(), "html");
        let before = Instant::now();
        cache.put(key.clone(), 5, Bytes::from_static(b"five"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let after = Instant::now();
        assert_eq!(
            cache.get_since(&key, 5, None).map(|(_, b)| b).as_deref(),
            Some(&b"five"[..])
        );
        assert_eq!(cache.get_since(&key, 4, None), None);
        assert_eq!(
            cache.get_since(&key, 4, Some(before)).map(|(g, _)| g),
            Some(5)
        );
        assert_eq!(cache.get_since(&key, 4, Some(after)), None);
        assert_eq!(cache.get_since(&key, 6, Some(before)), None);
    }
}
