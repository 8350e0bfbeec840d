//! The running service: configuration, store and domain services, built once
//! and shared by the grpc layer and background tasks.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{
    admin::Admin,
    cache::ProjectChanges,
    config::Config,
    perf::{Perf, PerfConfig},
    projects::Projects,
    store::Store,
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
}

impl App {
    /// Builds the domain services over an opened (not necessarily reachable) store.
    pub fn new(config: Arc<Config>, store: Store, shutdown: CancellationToken) -> Arc<Self> {
        let changes = Arc::new(ProjectChanges::new());
        let projects = Projects::new(store.clone(), changes.clone());
        let admin = Admin::new(store.clone(), &config);
        let perf = Perf::with_config(PerfConfig::from_config(&config));
        Arc::new(Self { config, store, projects, changes, perf, admin, shutdown })
    }

    /// Starts background work once the store is migrated.
    pub async fn start(&self) {}

    /// Stops background work after the server drained.
    pub async fn stop(&self) {}
}
