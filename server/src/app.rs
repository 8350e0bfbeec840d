//! The running service: configuration, store and domain services, built once
//! and shared by the grpc layer and background tasks.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    changes::ProjectChanges,
    config::Config,
    context::cache::ContextCache,
    decide,
    error::Error,
    events::EventBus,
    images::Images,
    jobs::{self, JobQueue, Workers},
    orchestrator::Orchestrator,
    perf::{CacheKind, Perf, PerfConfig},
    projects::Projects,
    retention::Retention,
    store::{Backend, Store},
};

/// Events a watch stream buffers before it counts as lagging and catches up from the store.
const WATCH_BUFFER: usize = 256;

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
    pub retention: Retention,
    /// Cancelled on SIGTERM: streams end and background work stops.
    pub shutdown: CancellationToken,
    /// Context packets per project, invalidated through `changes`.
    pub context_cache: Arc<ContextCache>,
    /// Orchestrate and GetContextPacket.
    pub orchestrator: Orchestrator,
    /// Live delivery of committed events to this replica's subscribers.
    pub events: EventBus,
    /// The durable job queue.
    pub jobs: JobQueue,
    /// Image acceptance, analyses and facts.
    pub images: Images,
    workers: tokio::sync::Mutex<Option<Workers>>,
    scheduled_retention: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl App {
    /// Builds the domain services over an opened (not necessarily reachable) store.
    /// Fails if a configured backend (the decider's HTTP client) cannot be built.
    pub fn new(config: Arc<Config>, store: Store, shutdown: CancellationToken) -> Result<Arc<Self>, Error> {
        let changes = Arc::new(ProjectChanges::new());
        let projects = Projects::new(store.clone(), changes.clone());
        let perf = Perf::with_config(PerfConfig::from_config(&config));
        let retention = Retention::new(store.clone(), config.retention.clone(), perf.clone());
        let context_cache = Arc::new(ContextCache::new(config.orchestration.context_cache_capacity));
        let invalidate = context_cache.clone();
        changes.subscribe(move |project_id| invalidate.invalidate(project_id));
        let weak = Arc::downgrade(&context_cache);
        perf.register_cache_size(CacheKind::ContextPacket, move || weak.upgrade().map_or(0, |cache| cache.len()));
        let events = EventBus::new(store.clone(), shutdown.clone(), WATCH_BUFFER);
        let jobs = JobQueue::new(store.clone(), config.clone());
        let images =
            Images::new(store.clone(), config.clone(), changes.clone(), events.clone(), jobs.clone(), perf.clone())?;
        let (bus, facts) = (events.clone(), images.clone());
        changes.subscribe_deletions(move |project_id| {
            bus.project_deleted(project_id);
            facts.cache().forget_project(project_id);
        });
        let orchestrator = Orchestrator::new(
            store.clone(),
            config.clone(),
            context_cache.clone(),
            decide::decider_from_config(&config)?,
            changes.clone(),
            images.clone(),
            perf.clone(),
        );
        Ok(Arc::new(Self {
            config,
            store,
            projects,
            changes,
            perf,
            retention,
            shutdown,
            context_cache,
            orchestrator,
            events,
            jobs,
            images,
            workers: tokio::sync::Mutex::new(None),
            scheduled_retention: tokio::sync::Mutex::new(None),
        }))
    }

    /// Starts background work once the store is migrated: job workers, the
    /// PostgreSQL listener (other replicas' events and jobs), interrupted
    /// project deletions, the image facts cache sweep and scheduled retention.
    pub async fn start(&self) {
        *self.scheduled_retention.lock().await = self.retention.spawn_scheduled(self.shutdown.clone());
        let replica = format!("{}:{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let handlers = jobs::Handlers::from([(jobs::KIND_ANALYZE_IMAGE, self.images.job_handler())]);
        let workers = Workers::start(
            self.jobs.clone(),
            handlers,
            self.perf.clone(),
            replica.clone(),
            self.config.jobs.workers,
            self.shutdown.clone(),
        );
        *self.workers.lock().await = Some(workers);
        tracing::info!(replica = %replica, workers = self.config.jobs.workers, "job workers started");

        if self.store.backend() == Backend::Postgres {
            let jobs = self.jobs.clone();
            tokio::spawn(crate::events::listener::run(
                self.config.store.database_url.expose().to_owned(),
                self.config.store.acquire_timeout,
                self.events.clone(),
                self.changes.clone(),
                move || jobs.wake(),
                self.shutdown.clone(),
            ));
        }

        if self.store.backend() == Backend::Sqlite {
            let store = self.store.clone();
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                let mut next = crate::store::CHECKPOINT_EVERY;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(next) => {
                            match store.checkpoint().await {
                                Ok(wait) => next = wait,
                                Err(err) => {
                                    // A full disk cannot take the copy; keep trying often.
                                    next = crate::store::CHECKPOINT_EVERY_SHORT;
                                    tracing::debug!(error = %err, "WAL checkpoint did not run");
                                }
                            }
                        }
                        () = shutdown.cancelled() => return,
                    }
                }
            });
        }

        let projects = self.projects.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // Deletions a stopped server left halfway; retried while the store is unreachable.
            let mut pause = Duration::from_secs(1);
            loop {
                match projects.finish_deletions().await {
                    Ok(_) => return,
                    Err(err) => tracing::warn!(error = %err, "cannot finish interrupted project deletions; retrying"),
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => pause = (pause * 2).min(Duration::from_secs(60)),
                    () = shutdown.cancelled() => return,
                }
            }
        });

        let images = self.images.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let every = images.cache().sweep_interval();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => { images.cache().sweep(); }
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Stops background work after the server drained: running jobs get until
    /// the shutdown grace period to finish, then go back to the queue.
    pub async fn stop(&self) {
        // Shutdown is cancelled by now: a scheduled retention run stops before its next tenant.
        if let Some(run) = self.scheduled_retention.lock().await.take()
            && let Err(err) = run.await
        {
            tracing::warn!(error = %err, "the scheduled retention task failed");
        }
        if let Some(workers) = self.workers.lock().await.take() {
            workers.stop(self.config.shutdown.grace).await;
        }
    }
}
