//! One packet build per project at a time.
//!
//! When a hot project's packet is not cached (a write from outside the
//! orchestrations invalidated it, or it was evicted), every call in flight
//! would otherwise read the store and prepare the same packet. Callers that
//! miss with the same key (tenant, project, cache generation) share one
//! build instead: the first runs it, the others wait for its result.
//!
//! The generation is part of the key so a caller never joins a build that
//! started before a write it has already seen acknowledged (read your
//! writes): after the write's announcement the generation differs and the
//! caller starts a new build. A build whose caller goes away (cancelled,
//! deadline) hands over to one of the waiting callers, which builds anew.

use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{Mutex, MutexGuard},
};

use tokio::sync::watch;

/// Builds in flight, by key.
pub struct Flights<K, V> {
    inflight: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

enum Role<V> {
    /// Runs the build and publishes its result.
    Leader(watch::Sender<Option<V>>),
    /// Waits for the leader's result.
    Follower(watch::Receiver<Option<V>>),
}

impl<K: Eq + Hash + Clone, V: Clone> Default for Flights<K, V> {
    fn default() -> Self {
        Self { inflight: Mutex::new(HashMap::new()) }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    /// Runs `build` unless a build with the same key is in flight, whose
    /// result is then returned instead.
    pub async fn run<F, Fut>(&self, key: K, build: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let publish = loop {
            match self.join(&key) {
                Role::Leader(publish) => break publish,
                Role::Follower(mut result) => {
                    if let Ok(value) = result.wait_for(Option::is_some).await
                        && let Some(value) = value.as_ref()
                    {
                        return value.clone();
                    }
                    // The leader's caller went away before its build ended: take over.
                }
            }
        };
        // Declared after `publish`, so it is dropped first: the entry is gone
        // before the followers hear the leader left, and one of them leads.
        let _landing = Landing { flights: self, key: &key, channel: publish.subscribe() };
        let value = build().await;
        let _ = publish.send(Some(value.clone()));
        value
    }

    /// Builds in flight now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no build is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn join(&self, key: &K) -> Role<V> {
        let mut inflight = self.lock();
        if let Some(result) = inflight.get(key) {
            return Role::Follower(result.clone());
        }
        let (publish, result) = watch::channel(None);
        inflight.insert(key.clone(), result);
        Role::Leader(publish)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, watch::Receiver<Option<V>>>> {
        // The map is left consistent by every critical section (one insert or remove).
        match self.inflight.lock() {
            Ok(inflight) => inflight,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Removes the leader's entry when its build ends or is dropped.
struct Landing<'a, K: Eq + Hash + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    key: &'a K,
    channel: watch::Receiver<Option<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Landing<'_, K, V> {
    fn drop(&mut self) {
        let mut inflight = self.flights.lock();
        if inflight.get(self.key).is_some_and(|entry| entry.same_channel(&self.channel)) {
            inflight.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_build() {
        let flights: Arc<Flights<&str, u32>> = Arc::new(Flights::default());
        let builds = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (flights, builds) = (flights.clone(), builds.clone());
                tokio::spawn(async move {
                    flights
                        .run("p1", || async {
                            builds.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            7
                        })
                        .await
                })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.ok(), Some(7));
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty(), "a finished build leaves nothing behind");
    }

    #[tokio::test]
    async fn different_keys_build_separately() {
        let flights: Flights<(&str, u64), u64> = Flights::default();
        let (a, b) = tokio::join!(
            flights.run(("p1", 1), || async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                1
            }),
            flights.run(("p1", 2), || async { 2 }),
        );
        assert_eq!((a, b), (1, 2), "a caller that saw a newer generation does not get an older build");
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over() {
        let flights: Arc<Flights<&str, u32>> = Arc::new(Flights::default());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run("p1", || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        1
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("p1", || async { 2 }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let answer = tokio::time::timeout(Duration::from_secs(5), follower).await;
        assert_eq!(answer.ok().and_then(Result::ok), Some(2), "the follower built it itself");
        assert!(flights.is_empty());
    }
}
