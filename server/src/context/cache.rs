//! The context packet cache: one prepared packet per project, in a sharded
//! `quick_cache`, invalidated by every committed write to the project.
//!
//! A build that raced a write must never be served: each project maps to
//! one of many generation counters, bumped by every invalidation. A build
//! reads the generation *before* it reads the store and the entry is stamped
//! with it; a lookup only returns entries whose stamp is still current. So a
//! packet read before (or while) a write committed is stale the moment that
//! write announces itself, even if it was inserted afterwards. Projects that
//! share a counter only cost each other an occasional extra miss.
//!
//! Entries are keyed by project id (globally unique) and remember their
//! tenant; a lookup by another tenant misses and falls through to the store,
//! which answers PROJECT_NOT_FOUND.

use std::{
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use quick_cache::sync::Cache;

use super::{build::first_expiry, packet::PreparedPacket};
use crate::model::{Millis, TenantId, now_ms};

/// Generation counters; a power of two. Two projects written in the same
/// group commit that share a counter cost each other the in-place refresh,
/// so there are many (512 KiB).
const GENERATIONS: usize = 1 << 16;

struct Entry {
    tenant: TenantId,
    generation: u64,
    expires_at: Option<Millis>,
    prepared: Arc<PreparedPacket>,
}

/// Prepared context packets per project.
pub struct ContextCache {
    entries: Cache<String, Arc<Entry>>,
    generations: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
}

impl ContextCache {
    /// A cache holding up to `capacity` projects' packets.
    pub fn new(capacity: u64) -> Self {
        Self {
            entries: Cache::new(usize::try_from(capacity.max(1)).unwrap_or(usize::MAX)),
            generations: (0..GENERATIONS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn slot(&self, project_id: &str) -> &AtomicU64 {
        let index = (self.hasher.hash_one(project_id) as usize) & (GENERATIONS - 1);
        &self.generations[index]
    }

    /// The project's current generation; read it before reading the store for a build.
    pub fn generation(&self, project_id: &str) -> u64 {
        self.slot(project_id).load(Ordering::SeqCst)
    }

    /// The project's packet, if it is cached, current and the tenant's.
    pub fn get(&self, tenant: &TenantId, project_id: &str) -> Option<Arc<PreparedPacket>> {
        self.current(tenant, project_id).map(|(prepared, _)| prepared)
    }

    /// The project's packet and its generation stamp, if it is cached,
    /// current and the tenant's.
    pub fn current(&self, tenant: &TenantId, project_id: &str) -> Option<(Arc<PreparedPacket>, u64)> {
        let current = self.generation(project_id);
        self.entries
            .get(project_id)
            .filter(|e| e.generation == current && &e.tenant == tenant && e.expires_at.is_none_or(|at| now_ms() < at))
            .map(|entry| (entry.prepared.clone(), entry.generation))
    }

    /// Caches a packet built from a store read that started at `generation`
    /// (or derived from such a packet and the writes announced since, each
    /// adding one to it); ignored when the project changed since.
    pub fn insert(&self, tenant: &TenantId, project_id: &str, generation: u64, prepared: Arc<PreparedPacket>) {
        if self.generation(project_id) != generation {
            return;
        }
        let expires_at = first_expiry(&prepared.packet);
        let entry = Entry { tenant: tenant.clone(), generation, expires_at, prepared };
        self.entries.insert(project_id.to_owned(), Arc::new(entry));
    }

    /// Forgets the project's packet; call after every committed write to it.
    pub fn invalidate(&self, project_id: &str) {
        self.slot(project_id).fetch_add(1, Ordering::SeqCst);
        self.entries.remove(project_id);
    }

    /// Packets cached now.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether no packet is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::packet::ContextPacket;

    fn packet() -> Arc<PreparedPacket> {
        Arc::new(PreparedPacket::prepare(ContextPacket::empty("p1", 0)))
    }

    #[test]
    fn hits_until_invalidated() {
        let cache = ContextCache::new(10);
        let tenant = TenantId("t".into());
        assert!(cache.get(&tenant, "p1").is_none());
        cache.insert(&tenant, "p1", cache.generation("p1"), packet());
        assert!(cache.get(&tenant, "p1").is_some());
        assert!(cache.get(&TenantId("other".into()), "p1").is_none(), "another tenant never sees it");
        cache.invalidate("p1");
        assert!(cache.get(&tenant, "p1").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_write_refreshes_only_a_packet_no_other_write_touched() {
        let cache = ContextCache::new(10);
        let tenant = TenantId("t".into());
        let base = cache.generation("p1");
        cache.insert(&tenant, "p1", base, packet());
        assert_eq!(cache.current(&tenant, "p1").map(|(_, g)| g), Some(base));
        cache.invalidate("p1"); // our own write's announcement
        cache.insert(&tenant, "p1", base + 1, packet());
        assert!(cache.get(&tenant, "p1").is_some());

        let base = cache.generation("p1");
        cache.invalidate("p1"); // someone else's write
        cache.invalidate("p1"); // ours
        cache.insert(&tenant, "p1", base + 1, packet());
        assert!(cache.get(&tenant, "p1").is_none());
    }

    #[test]
    fn a_build_that_raced_a_write_is_never_served() {
        let cache = ContextCache::new(10);
        let tenant = TenantId("t".into());
        let generation = cache.generation("p1");
        // The store read happens here; a write commits and invalidates meanwhile.
        cache.invalidate("p1");
        cache.insert(&tenant, "p1", generation, packet());
        assert!(cache.get(&tenant, "p1").is_none());
    }
}
