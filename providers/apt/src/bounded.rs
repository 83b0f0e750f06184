//! A map of cached values with a bound on the bytes they hold: when an insert would pass the
//! bound, everything is dropped first. The caches it backs are keyed so that an entry is never
//! stale (by content hash), and refilling them costs one read per entry, so the simplest
//! eviction is enough.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub struct Bounded<K, V> {
    limit: usize,
    held: Mutex<Held<K, V>>,
}

#[derive(Debug)]
struct Held<K, V> {
    bytes: usize,
    map: HashMap<K, (V, usize)>,
}

impl<K: Hash + Eq, V: Clone> Bounded<K, V> {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Mutex::new(Held {
                bytes: 0,
                map: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held<K, V>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().map.get(key).map(|(v, _)| v.clone())
    }

    /// Keeps `value` under `key` (replacing what was there), counted as `bytes`.
    pub fn insert(&self, key: K, value: V, bytes: usize) {
        let mut held = self.lock();
        if let Some((_, old)) = held.map.remove(&key) {
            held.bytes -= old;
        }
        if held.bytes + bytes > self.limit {
            held.map.clear();
            held.bytes = 0;
        }
        held.map.insert(key, (value, bytes));
        held.bytes += bytes;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// The bytes the entries count.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_until_the_bound_and_replacements_are_counted_once() {
        let m: Bounded<&str, u32> = Bounded::new(10);
        m.insert("a", 1, 4);
        m.insert("a", 2, 4);
        assert_eq!((m.get("a"), m.len(), m.bytes()), (Some(2), 1, 4));
        m.insert("b", 3, 6);
        assert_eq!((m.len(), m.bytes()), (2, 10));
        // Past the bound: everything goes, the new entry stays.
        m.insert("c", 4, 1);
        assert_eq!(
            (m.get("a"), m.get("c"), m.len(), m.bytes()),
            (None, Some(4), 1, 1)
        );
    }
}
