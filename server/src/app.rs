//! The running service: configuration, store and domain services, built once
//! and shared by the grpc layer and background tasks.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{
    admin::Admin, brain, cache::ProjectChanges, config::Config, context::cache::ContextCache, error::Error,
    orchestrator::Orchestrator, perf::Perf, projects::Projects, store::Store,
};

/// Everything the server runs on.
pub struct App {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// Projects, scenes and memory.
    pub projects: Projects,
    /// Announces committed writes per project, for cache invalidation.
    pub changes: Arc<ProjectChanges>,
    /// Performance recording.
    pub perf: Perf,
    /// Maintenance (retention).
    pub admin: Admin,
    /// Cancelled on SIGTERM: streams end and background work stops.
    pub shutdown: CancellationToken,
    /// Context packets per project, invalidated through `changes`.
    pub context_cache: Arc<ContextCache>,
    /// Orchestrate and GetContextPacket.
    pub orchestrator: Orchestrator,
}

impl App {
    /// Builds the domain services over an opened (not necessarily reachable) store.
    /// Fails if a configured backend (the decider's HTTP client) cannot be built.
    pub fn new(config: Arc<Config>, store: Store, shutdown: CancellationToken) -> Result<Arc<Self>, Error> {
        let changes = Arc::new(ProjectChanges::new());
        let projects = Projects::new(store.clone(), changes.clone());
        let perf = Perf::new();
        let admin = Admin::new(store.clone(), &config);
        let context_cache = Arc::new(ContextCache::new(config.context_cache_capacity));
        let invalidate = context_cache.clone();
        changes.subscribe(move |project_id| invalidate.invalidate(project_id));
        let orchestrator = Orchestrator::new(
            store.clone(),
            config.clone(),
            context_cache.clone(),
            brain::decider_from_config(&config)?,
            changes.clone(),
            perf.clone(),
        );
        Ok(Arc::new(Self { config, store, projects, changes, perf, admin, shutdown, context_cache, orchestrator }))
    }

    /// Starts background work once the store is migrated.
    pub async fn start(&self) {}

    /// Stops background work after the server drained.
    pub async fn stop(&self) {}
}
