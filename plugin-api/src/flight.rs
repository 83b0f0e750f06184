//! One computation per key at a time, for caches: readers that miss the same entry together
//! (right after a publish changed it) wait for the first one's result instead of each reading
//! the catalog or the store and building it again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::watch;

/// Computations in progress, by key.
///
/// A cache that misses calls [`Flights::join`]: the first caller for a key gets a [`Leader`],
/// computes, stores the entry and drops the leader; the callers that came meanwhile wait until
/// then, all woken at once, and look in the cache again. A leader that fails or is cancelled
/// wakes them too, and one of them leads the next try.
#[derive(Debug)]
pub struct Flights<K> {
    running: Mutex<HashMap<K, watch::Receiver<()>>>,
}

impl<K> Default for Flights<K> {
    fn default() -> Self {
        Self {
            running: Mutex::new(HashMap::new()),
        }
    }
}

/// The caller that computes an entry; its drop ends the flight.
#[derive(Debug)]
pub struct Leader<'a, K: Hash + Eq> {
    flights: &'a Flights<K>,
    key: K,
    /// Dropped after the entry left the map: closing the channel wakes the followers.
    _done: watch::Sender<()>,
}

impl<K: Hash + Eq + Clone> Flights<K> {
    /// `Some` leader when no computation of `key` runs; else waits for the running one to end
    /// and returns `None`, and the caller looks in its cache again.
    pub async fn join(&self, key: &K) -> Option<Leader<'_, K>> {
        let mut running_one = {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match running.get(key) {
                Some(rx) => rx.clone(),
                None => {
                    let (done, rx) = watch::channel(());
                    running.insert(key.clone(), rx);
                    return Some(Leader {
                        flights: self,
                        key: key.clone(),
                        _done: done,
                    });
                }
            }
        };
        // Nothing is ever sent: the channel closes when the leader is dropped.
        let _ = running_one.changed().await;
        None
    }
}

impl<K: Hash + Eq> Drop for Leader<'_, K> {
    fn drop(&mut self) {
        self.flights
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::Flights;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Ten readers of one missing entry: one computes it, nine wait and find it.
    #[tokio::test]
    async fn one_computation_per_key() {
        let flights = Flights::default();
        let cache = std::sync::Mutex::new(None::<u32>);
        let computed = AtomicUsize::new(0);
        let reader = || async {
            loop {
                if let Some(v) = *cache.lock().unwrap() {
                    return v;
                }
                if let Some(_leader) = flights.join(&"page").await {
                    computed.fetch_add(1, Ordering::SeqCst);
                    // The computation waits, as a catalog query does, while the others come.
                    tokio::task::yield_now().await;
                    *cache.lock().unwrap() = Some(7);
                    return 7;
                }
            }
        };
        let values = futures_util::future::join_all((0..10).map(|_| reader())).await;
        assert_eq!(values, vec![7; 10]);
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    /// A leader that gives up (an error, a cancelled request) wakes the waiting readers, and
    /// one of them computes.
    #[tokio::test]
    async fn a_failed_leader_hands_over() {
        let flights = Flights::default();
        let first = flights.join(&1).await.expect("leads");
        let waiter = flights.join(&1);
        let (_, second) = tokio::join!(
            async {
                tokio::task::yield_now().await;
                drop(first);
            },
            async { waiter.await.is_none() && flights.join(&1).await.is_some() }
        );
        assert!(second);
    }
}
