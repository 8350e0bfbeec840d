//! Images: accepting them for analysis, their analyses, and the facts that
//! arrive late.
//!
//! Accepting is validation without I/O ([`prepare`]) followed by writes inside
//! the caller's transaction ([`Images::accept_in`]): an analysis row (PENDING)
//! and a durable job per image, all or nothing. A worker later analyses the
//! image and commits, in one transaction, the facts, the preferences they
//! imply, and the READY and PROCESSED events (or a FAILED event with the
//! reason); see [`worker`].

mod cache;
mod worker;

use std::{collections::HashSet, sync::Arc};

use bytes::Bytes;
use futures::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::cache::FactsCache;
use crate::{
    changes::ProjectChanges,
    config::Config,
    error::{Error, Reason, Result},
    events::{EventBus, Watch, WatchItem},
    jobs::{self, JobHandler, JobQueue},
    model::{Event, ImageAnalysis, ImageStatus, NewImage, NewJob, Page, TenantId, new_id},
    pagination::PageRequest,
    perf::{CacheKind, Perf, StreamKind},
    store::{Store, WriteTx},
    validate,
    vision::{self, Analyzer, Fetcher},
};

/// One image sent to brain.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    /// The bytes or the URL; None when the client set neither.
    pub source: Option<ImageSource>,
    /// Declared MIME type of inline data (informational: the bytes decide).
    pub mime_type: String,
    /// Client-chosen id; empty to let the server assign one.
    pub image_id: String,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Encoded image bytes.
    Data(Bytes),
    /// An http(s) URL to fetch in the background.
    Url(String),
}

/// A validated image, ready to be written by [`Images::accept_in`].
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedImage {
    /// The image's id (client-chosen or assigned).
    pub image_id: String,
    /// Detected MIME type of inline data.
    pub mime_type: Option<&'static str>,
    /// Size of inline data.
    pub byte_size: Option<u64>,
    /// The bytes or the URL.
    pub source: ImageSource,
}

/// Images accepted inside a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// One per image, in request order, all PENDING.
    pub analyses: Vec<ImageAnalysis>,
    /// The project's event cursor before these images: their events come after it.
    pub events_after: u64,
}

/// Charges a request's images to its tenant's image rate limit
/// (`rate_limit_images_per_minute`, kept by the gRPC layer). Services call it
/// once the images are known to be valid, so a request refused for its images
/// spends nothing.
#[derive(Clone, Default)]
pub struct ImageAdmission(Option<Arc<dyn Fn(usize) -> Result<()> + Send + Sync>>);

impl ImageAdmission {
    /// Admission through `charge`, which refuses with `RATE_LIMITED` when over the limit.
    pub fn new(charge: impl Fn(usize) -> Result<()> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(charge)))
    }

    /// Admits any number of images (no limit applies: unit tests, internal callers).
    pub fn unlimited() -> Self {
        Self(None)
    }

    /// Charges `images` validated images.
    pub fn admit(&self, images: usize) -> Result<()> {
        match &self.0 {
            Some(charge) => charge(images),
            None => Ok(()),
        }
    }
}

/// Validates images without I/O: count, ids, sizes, types and URLs. All or
/// nothing: the first bad image fails the whole request.
pub fn prepare(inputs: Vec<ImageInput>, config: &Config) -> Result<Vec<PreparedImage>> {
    if inputs.is_empty() {
        return Err(Error::missing("images"));
    }
    let max = config.images.max_per_request as usize;
    if inputs.len() > max {
        return Err(Error::new(
            Reason::TooManyImages,
            format!("{} images sent; at most {max} are accepted per request", inputs.len()),
        )
        .with_field("images")
        .with_limit(max));
    }
    let mut seen = HashSet::new();
    let mut prepared = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let id_field = format!("images[{i}].image_id");
        let image_id = validate::optional_id(&id_field, &input.image_id)?.unwrap_or_else(new_id);
        if !seen.insert(image_id.clone()) {
            return Err(Error::new(Reason::ImageIdTaken, format!("image_id {image_id} appears twice in this request"))
                .with_field(id_field));
        }
        let image = match input.source {
            None => return Err(Error::missing(&format!("images[{i}].source"))),
            Some(ImageSource::Data(data)) => {
                let field = format!("images[{i}].data");
                if data.is_empty() {
                    return Err(Error::missing(&field));
                }
                let format =
                    vision::intake::check_inline(&data, config.images.max_bytes).map_err(|e| e.with_field(&field))?;
                PreparedImage {
                    image_id,
                    mime_type: Some(format.mime()),
                    byte_size: Some(data.len() as u64),
                    source: ImageSource::Data(data),
                }
            }
            Some(ImageSource::Url(url)) => {
                let field = format!("images[{i}].url");
                let url = url.trim();
                if url.is_empty() {
                    return Err(Error::missing(&field));
                }
                let url = vision::intake::validate_url(url, config.images.allow_private_urls)
                    .map_err(|e| e.with_field(&field))?;
                PreparedImage { image_id, mime_type: None, byte_size: None, source: ImageSource::Url(url.into()) }
            }
        };
        prepared.push(image);
    }
    Ok(prepared)
}

/// The images domain service. Cheap to clone.
#[derive(Clone)]
pub struct Images {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Arc<Config>,
    changes: Arc<ProjectChanges>,
    bus: EventBus,
    jobs: JobQueue,
    cache: FactsCache,
    analyzer: Arc<dyn Analyzer>,
    fetcher: Fetcher,
    perf: Perf,
}

impl Images {
    /// The service over its collaborators, with the configured analyser and
    /// URL fetcher.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        changes: Arc<ProjectChanges>,
        bus: EventBus,
        jobs: JobQueue,
        perf: Perf,
    ) -> Result<Self> {
        let images = Self {
            inner: Arc::new(Inner {
                cache: FactsCache::new(config.images.facts_cache_capacity, config.images.facts_cache_ttl),
                analyzer: vision::analyzer_from_config(&config)?,
                fetcher: Fetcher::from_config(&config)?,
                store,
                config,
                changes,
                bus,
                jobs,
                perf,
            }),
        };
        // Weak: the recorder must not keep the service (and itself) alive.
        let weak = Arc::downgrade(&images.inner);
        images.inner.perf.register_cache_size(CacheKind::ImageFacts, move || {
            weak.upgrade().map_or(0, |inner| inner.cache.entries())
        });
        Ok(images)
    }

    /// The job handler that analyses accepted images.
    pub fn job_handler(&self) -> Arc<dyn JobHandler> {
        Arc::new(worker::AnalyzeImage { images: self.clone() })
    }

    /// The facts cache (for the periodic sweep).
    pub fn cache(&self) -> &FactsCache {
        &self.inner.cache
    }

    /// Validates images against the configured limits; see [`prepare`].
    pub fn prepare(&self, inputs: Vec<ImageInput>) -> Result<Vec<PreparedImage>> {
        prepare(inputs, &self.inner.config)
    }

    /// Writes PENDING analyses and their jobs inside the caller's transaction
    /// (which must be a write transaction of this store). The project must
    /// belong to the tenant. Call [`Images::accepted`] after the commit.
    pub async fn accept_in(
        &self,
        txn: &WriteTx,
        tenant: &TenantId,
        project_id: &str,
        orchestration_id: Option<&str>,
        prepared: Vec<PreparedImage>,
    ) -> Result<Accepted> {
        let events_after = txn.event_cursor(tenant, project_id).await?;
        let rows: Vec<NewImage> = prepared
            .iter()
            .map(|p| NewImage {
                image_id: p.image_id.clone(),
                source_url: match &p.source {
                    ImageSource::Url(url) => Some(url.clone()),
                    ImageSource::Data(_) => None,
                },
                mime_type: p.mime_type.map(str::to_owned),
                byte_size: p.byte_size,
                content_sha256: None,
            })
            .collect();
        let analyses = txn.insert_images(tenant, project_id, orchestration_id, &rows).await?;
        for image in prepared {
            let payload = match image.source {
                ImageSource::Data(bytes) => Some(bytes.to_vec()),
                ImageSource::Url(_) => None,
            };
            let job = NewJob {
                tenant_id: tenant.clone(),
                project_id: project_id.to_owned(),
                kind: jobs::KIND_ANALYZE_IMAGE,
                subject_id: image.image_id,
                payload,
                max_attempts: self.inner.config.jobs.max_attempts,
            };
            txn.enqueue_job(&job).await?;
        }
        Ok(Accepted { analyses, events_after })
    }

    /// Call after committing [`Images::accept_in`]: wakes idle workers and
    /// announces the change (the context lists the images as pending).
    pub fn accepted(&self, project_id: &str) {
        self.wake_workers();
        self.inner.changes.changed(project_id);
    }

    /// Wakes this replica's idle workers (after committing new jobs; other
    /// replicas hear of them through PostgreSQL notifications).
    pub fn wake_workers(&self) {
        self.inner.jobs.wake();
    }

    /// AnalyzeImages: accepts images in one transaction and returns them, all PENDING.
    pub async fn analyze(
        &self,
        tenant: &TenantId,
        project_id: &str,
        inputs: Vec<ImageInput>,
        admission: &ImageAdmission,
    ) -> Result<Vec<ImageAnalysis>> {
        let project_id = validate::id("project_id", project_id)?;
        let prepared = self.prepare(inputs)?;
        admission.admit(prepared.len())?;
        let txn = self.inner.store.begin_write().await?;
        let accepted = self.accept_in(&txn, tenant, &project_id, None, prepared).await?;
        txn.commit().await?;
        self.accepted(&project_id);
        Ok(accepted.analyses)
    }

    /// GetImageFacts: one image's analysis, from the cache when finished.
    pub async fn get(&self, tenant: &TenantId, project_id: &str, image_id: &str) -> Result<Arc<ImageAnalysis>> {
        let project_id = validate::id("project_id", project_id)?;
        let image_id = validate::id("image_id", image_id)?;
        if let Some(hit) = self.inner.cache.get(&project_id, &image_id)
            && hit.tenant_id == *tenant
        {
            self.inner.perf.record_cache(CacheKind::ImageFacts, true);
            return Ok(hit);
        }
        self.inner.perf.record_cache(CacheKind::ImageFacts, false);
        let analysis = Arc::new(self.inner.store.get_image(tenant, &project_id, &image_id).await?);
        if matches!(analysis.status, ImageStatus::Ready | ImageStatus::Failed) {
            self.inner.cache.insert(analysis.clone());
        }
        Ok(analysis)
    }

    /// ListImageFacts: a page of the project's analyses, oldest first.
    pub async fn list(
        &self,
        tenant: &TenantId,
        project_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<ImageAnalysis>> {
        let project_id = validate::id("project_id", project_id)?;
        let page = PageRequest::parse(page_size, page_token, &format!("images:{project_id}"))?;
        self.inner.store.list_images(tenant, &project_id, &page).await
    }

    /// The project's events after `after_cursor`, then live ones.
    async fn open_watch(
        &self,
        tenant: &TenantId,
        project_id: &str,
        after_cursor: u64,
        orchestration_id: &str,
        shutdown: CancellationToken,
    ) -> Result<Watch> {
        let project_id = validate::id("project_id", project_id)?;
        let orchestration_id = validate::optional_id("orchestration_id", orchestration_id)?;
        self.inner.store.get_project(tenant, &project_id).await?;
        let heartbeat = self.inner.config.server.stream_heartbeat;
        Watch::open(&self.inner.bus, &project_id, after_cursor, orchestration_id.as_deref(), heartbeat, shutdown).await
    }

    /// WatchImageFacts: the project's events after `after_cursor`, then live
    /// ones, and heartbeats while idle; counted as an open stream until dropped
    /// (the consumer gone). Ends at `shutdown`: the client resumes after the
    /// last cursor it received.
    pub async fn watch(
        &self,
        tenant: &TenantId,
        project_id: &str,
        after_cursor: u64,
        orchestration_id: &str,
        shutdown: CancellationToken,
    ) -> Result<impl Stream<Item = Result<WatchItem>> + Send + 'static> {
        let watch = self.open_watch(tenant, project_id, after_cursor, orchestration_id, shutdown).await?;
        let guard = self.inner.perf.stream_opened(StreamKind::WatchImageFacts);
        // No task or channel per stream: the stream is the subscription itself,
        // and dropping it unregisters from the hub.
        Ok(futures::stream::unfold((watch, guard), |(mut watch, guard)| async move {
            let item = watch.next().await?;
            Some((item, (watch, guard)))
        }))
    }

    /// For OrchestrateStream: follows the events of an orchestration's images
    /// (`image_ids`, whose events come after `events_after`) until each has its
    /// final event (PROCESSED or FAILED); see [`ImageWait::next`].
    pub async fn follow(
        &self,
        tenant: &TenantId,
        project_id: &str,
        orchestration_id: &str,
        events_after: u64,
        image_ids: impl IntoIterator<Item = String>,
        shutdown: CancellationToken,
    ) -> Result<ImageWait> {
        let watch = self.open_watch(tenant, project_id, events_after, orchestration_id, shutdown).await?;
        Ok(ImageWait { watch, waiting: image_ids.into_iter().collect() })
    }
}

/// The events of one orchestration's images, until all are final or time runs out.
pub struct ImageWait {
    watch: Watch,
    waiting: HashSet<String>,
}

impl ImageWait {
    /// The next event; `None` when every image has its final event, `deadline`
    /// passed, or the server is stopping.
    pub async fn next(&mut self, deadline: Instant) -> Option<Result<Arc<Event>>> {
        loop {
            if self.waiting.is_empty() {
                return None;
            }
            let item = tokio::select! {
                item = self.watch.next() => item?,
                () = tokio::time::sleep_until(deadline) => return None,
            };
            match item {
                Ok(WatchItem::Event(event)) => {
                    if event.what.event_type.is_final() {
                        self.waiting.remove(&event.what.image_id);
                    }
                    return Some(Ok(event));
                }
                Ok(WatchItem::Heartbeat { .. }) => {}
                Err(err) => return Some(Err(err)),
            }
        }
    }

    /// Images whose final event has not arrived.
    pub fn pending(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.waiting.iter().cloned().collect();
        ids.sort();
        ids
    }
}
