//! The image facts cache: finished analyses (ready or failed, which never
//! change again) by (project, image), so GetImageFacts on a hot image does not
//! touch the store. Bounded by entries (`image_facts_cache_capacity`, the
//! least valuable evicted first by quick_cache's CLOCK-Pro) and by age
//! (`image_facts_cache_ttl_ms`, checked on every read and swept periodically
//! so expired entries do not hold memory).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use quick_cache::sync::Cache;

use crate::model::ImageAnalysis;

#[derive(Clone)]
struct Entry {
    analysis: Arc<ImageAnalysis>,
    expires: Instant,
}

/// See the module docs.
pub struct FactsCache {
    entries: Cache<(String, String), Entry>,
    ttl: Duration,
}

impl FactsCache {
    /// A cache of up to `capacity` analyses, each kept for `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self { entries: Cache::new(capacity.max(1) as usize), ttl }
    }

    /// The cached analysis, unless missing or expired.
    pub fn get(&self, project_id: &str, image_id: &str) -> Option<Arc<ImageAnalysis>> {
        let key = (project_id.to_owned(), image_id.to_owned());
        let entry = self.entries.get(&key)?;
        if entry.expires <= Instant::now() {
            self.entries.remove_if(&key, |e| e.expires <= Instant::now());
            return None;
        }
        Some(entry.analysis)
    }

    /// Caches a finished analysis.
    pub fn insert(&self, analysis: Arc<ImageAnalysis>) {
        let key = (analysis.project_id.clone(), analysis.image_id.clone());
        self.entries.insert(key, Entry { analysis, expires: Instant::now() + self.ttl });
    }

    /// Drops every analysis of a deleted project.
    pub fn forget_project(&self, project_id: &str) {
        self.entries.retain(|(project, _), _| project != project_id);
    }

    /// Drops expired entries; returns how many remain.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        self.entries.retain(|_, e| e.expires > now);
        self.entries.len()
    }

    /// Entries now (expired ones not yet swept included).
    pub fn entries(&self) -> u64 {
        self.entries.len() as u64
    }

    /// How often [`FactsCache::sweep`] should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImageStatus, TenantId};

    fn analysis(image_id: &str) -> Arc<ImageAnalysis> {
        Arc::new(ImageAnalysis {
            image_id: image_id.into(),
            project_id: "p".into(),
            tenant_id: TenantId("t".into()),
            orchestration_id: None,
            status: ImageStatus::Failed,
            facts: None,
            error: Some("corrupt".into()),
            attempts: 1,
            source_url: None,
            mime_type: None,
            byte_size: None,
            content_sha256: None,
            created_at: 0,
            completed_at: Some(1),
        })
    }

    #[test]
    fn entries_expire_on_read_and_on_sweep() {
        let cache = FactsCache::new(10, Duration::from_millis(30));
        cache.insert(analysis("a"));
        cache.insert(analysis("b"));
        assert_eq!(cache.get("p", "a").map(|a| a.image_id.clone()).as_deref(), Some("a"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("p", "a").is_none(), "expired on read");
        assert_eq!(cache.sweep(), 0, "sweep drops the rest");
    }

    #[test]
    fn capacity_bounds_entries() {
        let cache = FactsCache::new(4, Duration::from_secs(60));
        for i in 0..50 {
            cache.insert(analysis(&i.to_string()));
        }
        assert!(cache.sweep() <= 4);
    }
}
