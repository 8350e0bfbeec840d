//! Per-project cache invalidation.
//!
//! Caches of per-project data (the context packet cache, for one) subscribe
//! here; every committed write to a project announces itself here, after the
//! commit, so no cache keeps serving what the store no longer holds. A deleted
//! project is announced to the change listeners and to the deletion listeners
//! (live streams, caches keyed by project).

use std::sync::{Arc, RwLock};

type Listener = Arc<dyn Fn(&str) + Send + Sync>;

/// Fans "project P changed" out to every subscribed cache.
#[derive(Default)]
pub struct ProjectChanges {
    listeners: RwLock<Vec<Listener>>,
    deletion_listeners: RwLock<Vec<Listener>>,
}

impl ProjectChanges {
    /// An empty fan-out.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `listener` with the project id after every committed write to a project.
    pub fn subscribe(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// Calls `listener` with the project id when a project is deleted.
    pub fn subscribe_deletions(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.deletion_listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    /// Announces a committed write to `project_id`.
    pub fn changed(&self, project_id: &str) {
        notify(&self.listeners, project_id);
    }

    /// Announces that `project_id` is deleted (its tombstone committed).
    pub fn deleted(&self, project_id: &str) {
        notify(&self.listeners, project_id);
        notify(&self.deletion_listeners, project_id);
    }
}

fn notify(listeners: &RwLock<Vec<Listener>>, project_id: &str) {
    // Called outside the lock: a listener may take its own locks.
    let listeners = match listeners.read() {
        Ok(l) => l.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    for listener in listeners {
        listener(project_id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_listener_hears_every_change() {
        let changes = ProjectChanges::new();
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let count = count.clone();
            changes.subscribe(move |p| {
                assert_eq!(p, "p1");
                count.fetch_add(1, Ordering::SeqCst);
            });
        }
        changes.changed("p1");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_deletion_reaches_change_and_deletion_listeners() {
        let changes = ProjectChanges::new();
        let heard = Arc::new(AtomicUsize::new(0));
        let (a, b) = (heard.clone(), heard.clone());
        changes.subscribe(move |_| {
            a.fetch_add(1, Ordering::SeqCst);
        });
        changes.subscribe_deletions(move |_| {
            b.fetch_add(10, Ordering::SeqCst);
        });
        changes.changed("p1");
        assert_eq!(heard.load(Ordering::SeqCst), 1, "a write is not a deletion");
        changes.deleted("p1");
        assert_eq!(heard.load(Ordering::SeqCst), 12);
    }
}
