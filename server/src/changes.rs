//! Per-project cache invalidation.
//!
//! Caches of per-project data (the context packet cache, for one) subscribe
//! here; every committed write to a project announces itself here, after the
//! commit, so no cache keeps serving what the store no longer holds.

use std::sync::{Arc, RwLock};

type Listener = Arc<dyn Fn(&str) + Send + Sync>;

/// Fans "project P changed" out to every subscribed cache.
#[derive(Default)]
pub struct ProjectChanges {
    listeners: RwLock<Vec<Listener>>,
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

    /// Announces a committed write to `project_id`.
    pub fn changed(&self, project_id: &str) {
        let listeners = match self.listeners.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for listener in listeners {
            listener(project_id);
        }
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
}
