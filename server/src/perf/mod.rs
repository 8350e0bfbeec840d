//! Performance recording: what the rest of the server reports, and what the
//! performance report and `/metrics` are built from.
//!
//! This is the recording API every module calls. It is safe under any
//! concurrency: each request records its own sample into per-thread shards
//! of 10-second slots (see [`window`]); nothing is shared mutable state keyed
//! by request. Recording costs a mutex that is almost never contended, a
//! couple of hash lookups and a histogram update, well under a microsecond,
//! plus the Prometheus update when `/metrics` is enabled.
//!
//! What a tenant sees: its own RPCs, orchestrations and jobs (optionally one
//! project's). Process-wide figures — cache hit rates, open streams, resident
//! memory, the database pool — are the same for every caller. The operator
//! endpoints (`/metrics`, `/dashboard`) see every tenant.

mod asyncwin;
pub mod hist;
pub mod monitor;
pub mod prom;
pub mod report;
mod watch;
pub mod window;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub use report::{Report, ReportQuery, Reporter, Window};
pub use watch::{DEFAULT_INTERVAL, MAX_INTERVAL, MIN_INTERVAL, watch_interval};
use window::{STAGES, Windows, code_index};

use crate::{
    config::{Config, PerfSettings},
    error::ErrorKind,
    telemetry,
};

/// Where one orchestration spent its time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StageTimings {
    /// Assembling the context packet.
    pub context_build_ms: f64,
    /// Rendering and fitting the enhanced prompt to the budget.
    pub token_budget_ms: f64,
    /// The decider's call, a model's retries and any fallback to the rules included.
    pub decision_ms: f64,
    /// From queueing for the group commit to the batch's commit: the wait for the batch included.
    pub persistence_ms: f64,
    /// Validating and queueing images.
    pub image_enqueue_ms: f64,
    /// The whole orchestration.
    pub total_ms: f64,
}

impl StageTimings {
    /// The stage durations in [`window::STAGES`] order.
    fn stages(&self) -> [f64; 5] {
        [self.context_build_ms, self.token_budget_ms, self.decision_ms, self.persistence_ms, self.image_enqueue_ms]
    }
}

/// One finished orchestration, as the report sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestrationSample {
    pub tenant_id: String,
    pub project_id: String,
    /// Orchestration id (to attach image analysis times later).
    pub orchestration_id: String,
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
    ImageFacts,
}

impl CacheKind {
    fn index(self) -> usize {
        match self {
            CacheKind::ContextPacket => 0,
            CacheKind::ImageFacts => 1,
        }
    }

    /// Label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::ContextPacket => "context_packet",
            CacheKind::ImageFacts => "image_facts",
        }
    }
}

/// How a job attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    Succeeded,
    /// Failed and will be retried.
    Retried,
    /// Failed for good.
    Failed,
}

impl JobOutcome {
    /// Label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Retried => "retried",
            JobOutcome::Failed => "failed",
        }
    }
}

/// One finished job attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSample {
    pub tenant_id: String,
    pub project_id: String,
    /// Orchestration that attached the image, if any.
    pub orchestration_id: Option<String>,
    /// Time from enqueue (or retry due time) to claim.
    pub wait: Duration,
    /// Time the attempt ran.
    pub run: Duration,
    /// Analysis time of the image (decode and extraction), when it succeeded.
    pub analysis_ms: Option<f64>,
    pub outcome: JobOutcome,
}

/// Kinds of server streams counted in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    WatchImageFacts,
    OrchestrateStream,
    WatchPerformanceReport,
}

impl StreamKind {
    fn index(self) -> usize {
        match self {
            StreamKind::WatchImageFacts => 0,
            StreamKind::OrchestrateStream => 1,
            StreamKind::WatchPerformanceReport => 2,
        }
    }

    /// Label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::WatchImageFacts => "watch_image_facts",
            StreamKind::OrchestrateStream => "orchestrate_stream",
            StreamKind::WatchPerformanceReport => "watch_performance_report",
        }
    }
}

/// The settings the recorder needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfConfig {
    /// The `perf_*` settings.
    pub settings: PerfSettings,
    /// Feed the Prometheus recorder too.
    pub prometheus: bool,
    /// How often scheduled retention runs (zero: off), for the dashboard's retention line.
    pub retention_interval: Duration,
}

impl PerfConfig {
    /// The recorder settings of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            settings: config.perf.clone(),
            prometheus: config.server.metrics_addr.is_some(),
            retention_interval: config.retention.interval,
        }
    }

    /// The old blocking flow's estimated response time for an orchestration.
    pub fn old_flow_ms(&self, image_count: u32) -> f64 {
        let s = &self.settings;
        s.old_context_ms + s.old_decision_ms + if image_count > 0 { s.old_image_ms } else { 0.0 }
    }
}

impl Default for PerfConfig {
    fn default() -> Self {
        let mut config = Self::from_config(&Config::default());
        config.prometheus = false;
        config
    }
}

type SizeFn = Arc<dyn Fn() -> u64 + Send + Sync>;

struct Inner {
    config: PerfConfig,
    windows: Windows,
    tracker: Mutex<asyncwin::Tracker>,
    streams: [AtomicU64; 3],
    cache_sizes: RwLock<[Option<SizeFn>; 2]>,
    /// Last anomaly report per stage or method, for rate limiting.
    anomalies: Mutex<HashMap<String, Instant>>,
    /// Queue depth samples for the dashboard timeline: (uptime ms, depth, running).
    queue_samples: Mutex<std::collections::VecDeque<(u64, u64, u64)>>,
    started_at_ms: i64,
    /// The last scheduled retention run on this replica, for the dashboard.
    last_retention_run: Mutex<Option<RetentionRun>>,
}

/// One scheduled retention run, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetentionRun {
    /// When it finished (ms since the epoch).
    pub finished_at_ms: i64,
    pub elapsed_ms: u64,
    pub tenants: u64,
    /// Tenants whose run failed (logged); the others still ran.
    pub failed_tenants: u64,
    /// Rows archived or deleted, by kind (the `kind` label of `brain_retention_deleted_total`).
    pub removed: Vec<(String, u64)>,
}

/// Records performance samples. Cheap to clone and share.
#[derive(Clone)]
pub struct Perf {
    inner: Arc<Inner>,
}

impl Default for Perf {
    fn default() -> Self {
        Self::new()
    }
}

impl Perf {
    /// A recorder with default settings and no Prometheus output.
    pub fn new() -> Self {
        Self::with_config(PerfConfig::default())
    }

    pub fn with_config(config: PerfConfig) -> Self {
        if config.prometheus {
            prom::describe();
        }
        Self {
            inner: Arc::new(Inner {
                windows: Windows::new(config.settings.max_series, config.settings.max_series_per_tenant),
                config,
                tracker: Mutex::default(),
                streams: Default::default(),
                cache_sizes: RwLock::default(),
                anomalies: Mutex::default(),
                queue_samples: Mutex::default(),
                started_at_ms: crate::model::now_ms(),
                last_retention_run: Mutex::default(),
            }),
        }
    }

    pub fn config(&self) -> &PerfConfig {
        &self.inner.config
    }

    /// One finished RPC.
    /// `code` is the gRPC status name, e.g. "OK" or "INVALID_ARGUMENT".
    pub fn record_rpc(
        &self,
        method: &str,
        code: &str,
        tenant_id: Option<&str>,
        project_id: Option<&str>,
        elapsed: Duration,
    ) {
        let method = known_method(method);
        let code_index = code_index(code);
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.inner.windows.record(tenant_id.unwrap_or(""), project_id.unwrap_or(""), |agg| {
            let rpc = agg.rpc(method);
            rpc.hist.record_us(us);
            rpc.codes[code_index] += 1;
        });
        if self.inner.config.prometheus {
            prom::rpc(method, window::CODE_NAMES[code_index], elapsed);
        }
    }

    /// One finished orchestration. One with images also waits in the async-win
    /// tracker for its images' analyses; one built on degraded context is
    /// reported to error tracking.
    pub fn record_orchestration(&self, sample: &OrchestrationSample) {
        let config = &self.inner.config;
        let stages = sample.timings.stages();
        let old_ms = config.old_flow_ms(sample.image_count);
        self.inner.windows.record(&sample.tenant_id, &sample.project_id, |agg| {
            for (hist, ms) in agg.stages.iter_mut().zip(stages) {
                hist.record_ms(ms);
            }
            agg.orchestrations += 1;
            agg.actual_ms_sum += sample.timings.total_ms;
            agg.old_ms_sum += old_ms;
            agg.prompt_tokens_sum += u64::from(sample.prompt_tokens);
            agg.prompt_tokens_max = agg.prompt_tokens_max.max(u64::from(sample.prompt_tokens));
            agg.truncations += u64::from(sample.truncated);
            agg.budget_warnings += u64::from(sample.budget_warning);
            agg.degraded += u64::from(sample.degraded);
        });
        if sample.image_count > 0 {
            let completed = self.tracker().orchestration(
                &sample.orchestration_id,
                &sample.tenant_id,
                &sample.project_id,
                sample.timings.total_ms,
                sample.image_count,
                Instant::now(),
            );
            if let Some(done) = completed {
                self.record_measured(&done);
            }
        }
        if config.prometheus {
            prom::orchestration(sample, &stages);
        }
        if sample.degraded {
            telemetry::background_failure(
                telemetry::Failure::ContextDegraded,
                ErrorKind::Unavailable,
                Some(&sample.project_id),
                "the context packet was built without project memory because the store could not be read",
            );
        }
    }

    pub fn record_cache(&self, cache: CacheKind, hit: bool) {
        self.inner.windows.record_cache(cache.index(), hit);
        if self.inner.config.prometheus {
            prom::cache(cache, hit);
        }
    }

    /// One finished job attempt. A success or a final failure also counts its
    /// image as finished for the orchestration's measured async win (with its
    /// run time when it has no analysis time).
    pub fn record_job(&self, sample: &JobSample) {
        self.inner.windows.record(&sample.tenant_id, &sample.project_id, |agg| {
            agg.job_wait.record_us(duration_us(sample.wait));
            agg.job_run.record_us(duration_us(sample.run));
            match sample.outcome {
                JobOutcome::Succeeded => {
                    agg.job_completed += 1;
                    if let Some(ms) = sample.analysis_ms {
                        agg.image_analysis.record_ms(ms);
                    }
                }
                JobOutcome::Retried => agg.job_retries += 1,
                JobOutcome::Failed => agg.job_failures += 1,
            }
        });
        // A retried attempt leaves the image unfinished; success or final failure finishes it.
        if sample.outcome != JobOutcome::Retried
            && let Some(orchestration_id) = &sample.orchestration_id
        {
            let analysis_ms = sample.analysis_ms.unwrap_or(sample.run.as_secs_f64() * 1e3);
            let completed = self.tracker().job_finished(orchestration_id, analysis_ms, Instant::now());
            if let Some(done) = completed {
                self.record_measured(&done);
            }
        }
        if self.inner.config.prometheus {
            prom::job(sample);
        }
    }

    /// Counts an open stream until the guard drops.
    pub fn stream_opened(&self, kind: StreamKind) -> StreamGuard {
        self.inner.streams[kind.index()].fetch_add(1, Ordering::Relaxed);
        if self.inner.config.prometheus {
            prom::stream_delta(kind, 1.0);
        }
        StreamGuard { perf: self.clone(), kind }
    }

    /// Keeps `run` as the last scheduled retention run.
    pub fn record_retention_run(&self, run: RetentionRun) {
        *self.inner.last_retention_run.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(run);
    }

    /// The last scheduled retention run on this replica, if any ran yet.
    pub fn last_retention_run(&self) -> Option<RetentionRun> {
        self.inner.last_retention_run.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Lets a cache report its current entry count (called when the report is built).
    pub fn register_cache_size(&self, cache: CacheKind, entries: impl Fn() -> u64 + Send + Sync + 'static) {
        let mut sizes = self.inner.cache_sizes.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        sizes[cache.index()] = Some(Arc::new(entries));
    }

    /// Streams open now, by kind.
    pub fn open_streams(&self, kind: StreamKind) -> u64 {
        self.inner.streams[kind.index()].load(Ordering::Relaxed)
    }

    /// Entries in `cache` now (0 when the cache did not register).
    pub fn cache_entries(&self, cache: CacheKind) -> u64 {
        let sizes = self.inner.cache_sizes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        sizes[cache.index()].as_ref().map_or(0, |f| f())
    }

    /// Orchestrations with images still waiting for their analyses.
    pub fn orchestrations_awaiting_images(&self) -> usize {
        self.tracker().waiting()
    }

    /// When the recorder started, epoch ms.
    pub fn started_at_ms(&self) -> i64 {
        self.inner.started_at_ms
    }

    pub(crate) fn windows(&self) -> &Windows {
        &self.inner.windows
    }

    /// RPCs of `method` recorded with `code` since start, across tenants (for unit tests).
    #[cfg(test)]
    pub(crate) fn rpc_count(&self, method: &str, code: &str) -> u64 {
        let filter = window::Filter { tenant: None, project: None };
        let merged = self.inner.windows.merged(window::Span::SinceStart, &filter);
        merged.agg.rpcs.iter().filter(|(m, _)| &**m == method).map(|(_, rpc)| rpc.codes[code_index(code)]).sum()
    }

    fn record_measured(&self, done: &asyncwin::Completed) {
        self.inner.windows.record(&done.tenant_id, &done.project_id, |agg| {
            agg.measured_samples += 1;
            agg.measured_actual_ms_sum += done.actual_ms;
            agg.measured_blocking_ms_sum += done.blocking_ms;
        });
        if self.inner.config.prometheus {
            prom::measured(done.actual_ms, done.blocking_ms);
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, asyncwin::Tracker> {
        self.inner.tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stages and unary RPC methods whose p95 over the last minute is above
    /// the anomaly threshold, at most once per name per 5 minutes.
    pub fn take_anomalies(&self) -> Vec<monitor::Anomaly> {
        monitor::anomalies(self, &self.inner.anomalies)
    }

    pub(crate) fn push_queue_sample(&self, depth: u64, running: u64) {
        let mut samples = self.inner.queue_samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.push_back((self.inner.windows.uptime_ms(), depth, running));
        // Two samples per slot at most are useful; keep 15 minutes' worth at a 1 s sampling rate.
        while samples.len() > 900 {
            samples.pop_front();
        }
    }

    pub(crate) fn queue_samples(&self) -> Vec<(u64, u64, u64)> {
        let samples = self.inner.queue_samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.iter().copied().collect()
    }
}

/// Keeps a stream counted while alive.
pub struct StreamGuard {
    perf: Perf,
    kind: StreamKind,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.perf.inner.streams[self.kind.index()].fetch_sub(1, Ordering::Relaxed);
        if self.perf.inner.config.prometheus {
            prom::stream_delta(self.kind, -1.0);
        }
    }
}

fn duration_us(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The RPC methods of the brain.v1 contract, and which of them stream.
fn contract_methods() -> &'static (HashSet<String>, HashSet<String>) {
    static METHODS: OnceLock<(HashSet<String>, HashSet<String>)> = OnceLock::new();
    METHODS.get_or_init(|| {
        use prost::Message;
        let mut all = HashSet::new();
        let mut streaming = HashSet::new();
        if let Ok(set) = prost_types::FileDescriptorSet::decode(brain_proto::FILE_DESCRIPTOR_SET) {
            for method in set.file.iter().flat_map(|f| &f.service).flat_map(|s| &s.method) {
                let name = method.name().to_owned();
                if method.server_streaming() || method.client_streaming() {
                    streaming.insert(name.clone());
                }
                all.insert(name);
            }
        }
        (all, streaming)
    })
}

/// `method` when the contract has it, else "Unknown": paths are client input,
/// and must not grow the report or metric labels without bound.
fn known_method(method: &str) -> &'static str {
    contract_methods().0.get(method).map_or("Unknown", String::as_str)
}

/// Whether `method` is a streaming RPC (its duration is the stream's lifetime).
pub fn is_streaming(method: &str) -> bool {
    contract_methods().1.contains(method)
}

/// The stage names, in report order.
pub fn stage_names() -> &'static [&'static str; 5] {
    &STAGES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, images: u32, total: f64) -> OrchestrationSample {
        OrchestrationSample {
            tenant_id: "t".into(),
            project_id: "p".into(),
            orchestration_id: id.into(),
            timings: StageTimings {
                context_build_ms: 1.0,
                token_budget_ms: 2.0,
                decision_ms: 3.0,
                persistence_ms: 4.0,
                image_enqueue_ms: 0.5,
                total_ms: total,
            },
            image_count: images,
            prompt_tokens: 100,
            truncated: images > 0,
            budget_warning: false,
            degraded: false,
        }
    }

    #[test]
    fn contract_methods_are_known_and_others_are_not() {
        assert_eq!(known_method("CreateProject"), "CreateProject");
        assert_eq!(known_method("GetPerformanceReport"), "GetPerformanceReport");
        assert_eq!(known_method("DropAllTables"), "Unknown");
        assert!(is_streaming("WatchImageFacts"));
        assert!(is_streaming("OrchestrateStream"));
        assert!(!is_streaming("Orchestrate"));
    }

    #[test]
    fn measured_win_needs_every_image() {
        let perf = Perf::new();
        perf.record_orchestration(&sample("o1", 2, 20.0));
        let job = |outcome, analysis_ms| JobSample {
            tenant_id: "t".into(),
            project_id: "p".into(),
            orchestration_id: Some("o1".into()),
            wait: Duration::from_millis(5),
            run: Duration::from_millis(50),
            analysis_ms,
            outcome,
        };
        perf.record_job(&job(JobOutcome::Succeeded, Some(40.0)));
        perf.record_job(&job(JobOutcome::Retried, None));
        let all = window::Filter::default();
        let m = perf.windows().merged(window::Span::SinceStart, &all);
        assert_eq!(m.agg.measured_samples, 0, "one image still running");
        perf.record_job(&job(JobOutcome::Succeeded, Some(60.0)));
        let m = perf.windows().merged(window::Span::SinceStart, &all);
        assert_eq!(m.agg.measured_samples, 1);
        assert_eq!(m.agg.measured_blocking_ms_sum, 120.0);
        assert_eq!(m.agg.job_completed, 2);
        assert_eq!(m.agg.job_retries, 1);
        assert_eq!(m.agg.image_analysis.count(), 2);
        assert_eq!(m.agg.truncations, 1);
    }

    #[test]
    fn streams_are_counted_while_open() {
        let perf = Perf::new();
        let a = perf.stream_opened(StreamKind::WatchImageFacts);
        let b = perf.stream_opened(StreamKind::WatchImageFacts);
        assert_eq!(perf.open_streams(StreamKind::WatchImageFacts), 2);
        drop(a);
        assert_eq!(perf.open_streams(StreamKind::WatchImageFacts), 1);
        drop(b);
        assert_eq!(perf.open_streams(StreamKind::WatchImageFacts), 0);
    }

    #[test]
    fn estimate_uses_the_configured_old_flow() {
        let config = PerfConfig::default();
        assert_eq!(config.old_flow_ms(0), 2_500.0);
        assert_eq!(config.old_flow_ms(3), 5_500.0);
    }
}
