//! The performance report: built from the recorder's windows plus what only
//! the process and the store know (job queue, pool, memory).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{
    CacheKind, Perf, StreamKind,
    hist::Hist,
    is_streaming,
    window::{Agg, CODE_NAMES, CacheCounts, Filter, SLOT_MS, STAGES, Span},
};
use crate::{
    model::TenantId,
    store::{QueueCounts, Store},
};

/// The span of time a report covers, rounded out to whole 10-second slots:
/// up to 10 s more than its name (see [`Report::covered_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Last1Minute,
    /// The default.
    Last5Minutes,
    Last15Minutes,
    /// Since the process started.
    SinceStart,
}

impl Window {
    fn span(self) -> Span {
        match self {
            Window::Last1Minute => Span::Last(60_000),
            Window::Last5Minutes => Span::Last(300_000),
            Window::Last15Minutes => Span::Last(900_000),
            Window::SinceStart => Span::SinceStart,
        }
    }

    /// Parses the short forms the HTTP API accepts: 1m, 5m, 15m, start.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1m" => Some(Window::Last1Minute),
            "" | "5m" => Some(Window::Last5Minutes),
            "15m" => Some(Window::Last15Minutes),
            "start" | "all" => Some(Window::SinceStart),
            _ => None,
        }
    }
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    pub window: Window,
    /// Only this tenant's RPCs, orchestrations and jobs; None for every tenant (operator views).
    pub tenant: Option<TenantId>,
    /// Only this project's RPCs, orchestrations and jobs; None for every project.
    pub project_id: Option<String>,
}

/// Latency distribution of one RPC method or stage, in milliseconds. Count, mean and
/// max are exact (to the microsecond); percentiles come from a log-linear histogram
/// (within about 3%, see [`Hist`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// RPC method or stage name, or `unary` / `image_analysis` for those aggregates.
    pub name: String,
    /// Samples; every figure below is 0 when there are none.
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    fn of(name: &str, h: &Hist) -> Self {
        Self {
            name: name.to_owned(),
            count: h.count(),
            mean_ms: h.mean_ms(),
            p50_ms: h.quantile_ms(0.50),
            p95_ms: h.quantile_ms(0.95),
            p99_ms: h.quantile_ms(0.99),
            max_ms: h.max_ms(),
        }
    }
}

/// RPCs that ended with one status code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeCount {
    /// As the gRPC spec spells it, e.g. `NOT_FOUND`.
    pub code: String,
    pub count: u64,
}

/// RPC counts in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestStats {
    /// RPCs finished, streams included (a stream counts when it ends).
    pub total: u64,
    /// RPCs not OK.
    pub errors: u64,
    /// RPCs per second over the covered span.
    pub throughput_rps: f64,
    /// Non-OK RPCs by code, largest first.
    pub errors_by_code: Vec<CodeCount>,
}

/// The measured async win.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MeasuredAsyncWin {
    /// Orchestrations with images whose analyses all finished in the window.
    pub samples: u64,
    /// Mean response time brain took.
    pub mean_actual_ms: f64,
    /// Mean of response time plus every image's analysis time: what a client
    /// of the old sequential flow would have waited.
    pub mean_blocking_ms: f64,
    /// 1 - actual / blocking; 0 without samples.
    pub improvement: f64,
}

/// The estimate from the old flow's configured stage costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EstimatedAsyncWin {
    /// Orchestrations in the window.
    pub samples: u64,
    /// `perf_old_context_ms`.
    pub old_context_ms: f64,
    /// `perf_old_decision_ms`.
    pub old_decision_ms: f64,
    /// `perf_old_image_ms`, counted only for orchestrations with images.
    pub old_image_ms: f64,
    /// Mean over orchestrations of the stages above summed (the image stage only where there were images).
    pub mean_old_ms: f64,
    /// Mean measured response time.
    pub mean_actual_ms: f64,
    /// 1 - actual / old; 0 without orchestrations.
    pub improvement: f64,
}

/// The win from not waiting for image analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AsyncWin {
    pub measured: MeasuredAsyncWin,
    pub estimated: EstimatedAsyncWin,
    /// `perf_improvement_target`, 0..=1.
    pub target: f64,
    /// Measured improvement (or the estimate, without measured samples) meets the target.
    pub target_met: bool,
}

/// One cache's lookups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// hits / lookups; 0 without lookups.
    pub hit_rate: f64,
    /// Entries now, whatever the window; 0 when the cache did not register its size.
    pub entries: u64,
}

/// Enhanced prompt sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenStats {
    /// Orchestrations in the window: each builds one enhanced prompt.
    pub prompts: u64,
    /// In o200k_base tokens; 0 without prompts.
    pub mean_prompt_tokens: f64,
    pub max_prompt_tokens: u64,
    /// Prompts that dropped or cut context.
    pub truncations: u64,
    /// Prompts above 90% of their budget.
    pub budget_warnings: u64,
}

/// The job queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobQueueStats {
    /// Waiting now, whatever the window: queued (new or waiting for a retry) or with an expired lease.
    pub depth: u64,
    /// Running now.
    pub running: u64,
    /// p95 wait before claim, in the window.
    pub wait_p95_ms: f64,
    /// p95 attempt run time, in the window.
    pub run_p95_ms: f64,
    /// Attempts retried, in the window.
    pub retries: u64,
    /// Jobs failed for good, in the window.
    pub failures: u64,
    /// Jobs succeeded, in the window.
    pub completed: u64,
}

/// Open server streams.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamStats {
    pub watch_image_facts: u64,
    pub orchestrate_stream: u64,
    pub watch_performance_report: u64,
}

/// Database pool occupancy; on SQLite, the writer's connection and the read pool together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolView {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// One snapshot of how brain is performing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// When it was built, epoch ms.
    pub generated_at_ms: i64,
    /// The window asked for.
    pub window: Window,
    /// The span actually covered, ms (slot-aligned; shorter right after start).
    pub covered_ms: u64,
    /// The project filter.
    pub project_id: Option<String>,
    pub requests: RequestStats,
    /// Per RPC method, busiest first.
    pub rpc_latencies: Vec<LatencySummary>,
    /// All unary RPCs together (streams excluded: their duration is their lifetime). JSON only.
    pub unary_latency: LatencySummary,
    /// Per orchestration stage, in pipeline order.
    pub stage_latencies: Vec<LatencySummary>,
    pub async_win: AsyncWin,
    /// Context packet cache (process-wide).
    pub context_cache: CacheStats,
    /// Image facts cache (process-wide).
    pub image_facts_cache: CacheStats,
    pub tokens: TokenStats,
    pub jobs: JobQueueStats,
    /// Open streams (process-wide).
    pub streams: StreamStats,
    /// Resident memory (process-wide).
    pub resident_memory_bytes: u64,
    /// Database pools (process-wide).
    pub database_pool: PoolView,
    /// Analysis time (decode and extraction) of the image jobs that succeeded in the window.
    pub image_analysis: LatencySummary,
    /// Time since the process started, ms.
    pub uptime_ms: u64,
    /// Orchestrations with images still waiting for their analyses (process-wide).
    pub orchestrations_awaiting_images: u64,
}

/// One 10-second point of the dashboard's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Slot start, epoch ms.
    pub t_ms: i64,
    /// RPCs finished.
    pub requests: u64,
    /// RPCs not OK.
    pub errors: u64,
    /// Unary RPC latency percentiles (streams excluded: their duration is their lifetime);
    /// None without unary RPCs in the slot.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Orchestrations finished.
    pub orchestrations: u64,
    /// Measured improvement of orchestrations whose images finished in the slot.
    pub measured_improvement: Option<f64>,
    /// Estimated improvement of the slot's orchestrations.
    pub estimated_improvement: Option<f64>,
    /// Process-wide; None without lookups in the slot.
    pub context_hit_rate: Option<f64>,
    /// Process-wide; None without lookups in the slot.
    pub image_facts_hit_rate: Option<f64>,
    /// From the slot's last sample of the whole job queue (taken every 5 s; the project filter
    /// does not apply); None when no sample fell in the slot.
    pub queue_depth: Option<u64>,
    /// From the same sample as `queue_depth`.
    pub jobs_running: Option<u64>,
}

/// What only the store and the process know.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Job queue now.
    pub queue: QueueCounts,
    pub pool: PoolView,
    /// 0 where /proc/self/status cannot be read.
    pub resident_memory_bytes: u64,
}

/// Builds a report from the recorder and `extras`.
pub fn build(perf: &Perf, query: &ReportQuery, extras: &Extras) -> Report {
    let filter = Filter { tenant: query.tenant.as_ref().map(TenantId::as_str), project: query.project_id.as_deref() };
    let merged = perf.windows().merged(query.window.span(), &filter);
    let agg = &merged.agg;
    let config = perf.config();

    let mut total = 0;
    let mut by_code = [0u64; 17];
    let mut unary = Hist::default();
    let mut rpc_latencies: Vec<LatencySummary> = agg
        .rpcs
        .iter()
        .map(|(method, rpc)| {
            total += rpc.hist.count();
            if !is_streaming(method) {
                unary.merge(&rpc.hist);
            }
            for (sum, n) in by_code.iter_mut().zip(rpc.codes) {
                *sum += n;
            }
            LatencySummary::of(method, &rpc.hist)
        })
        .collect();
    rpc_latencies.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let mut errors_by_code: Vec<CodeCount> = by_code
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| CodeCount { code: CODE_NAMES[i].to_owned(), count: *n })
        .collect();
    errors_by_code.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
    let covered_s = (merged.covered_ms.max(1)) as f64 / 1e3;

    let measured = MeasuredAsyncWin {
        samples: agg.measured_samples,
        mean_actual_ms: mean(agg.measured_actual_ms_sum, agg.measured_samples),
        mean_blocking_ms: mean(agg.measured_blocking_ms_sum, agg.measured_samples),
        improvement: improvement(agg.measured_actual_ms_sum, agg.measured_blocking_ms_sum),
    };
    let estimated = EstimatedAsyncWin {
        samples: agg.orchestrations,
        old_context_ms: config.settings.old_context_ms,
        old_decision_ms: config.settings.old_decision_ms,
        old_image_ms: config.settings.old_image_ms,
        mean_old_ms: mean(agg.old_ms_sum, agg.orchestrations),
        mean_actual_ms: mean(agg.actual_ms_sum, agg.orchestrations),
        improvement: improvement(agg.actual_ms_sum, agg.old_ms_sum),
    };
    let target_met = if measured.samples > 0 {
        measured.improvement >= config.settings.improvement_target
    } else {
        estimated.samples > 0 && estimated.improvement >= config.settings.improvement_target
    };

    Report {
        generated_at_ms: crate::model::now_ms(),
        window: query.window,
        covered_ms: merged.covered_ms,
        project_id: query.project_id.clone(),
        requests: RequestStats {
            total,
            errors: total.saturating_sub(by_code[0]),
            throughput_rps: total as f64 / covered_s,
            errors_by_code,
        },
        rpc_latencies,
        unary_latency: LatencySummary::of("unary", &unary),
        stage_latencies: STAGES.iter().zip(&agg.stages).map(|(name, h)| LatencySummary::of(name, h)).collect(),
        async_win: AsyncWin { measured, estimated, target: config.settings.improvement_target, target_met },
        context_cache: cache_stats(
            &merged.caches,
            CacheKind::ContextPacket,
            perf.cache_entries(CacheKind::ContextPacket),
        ),
        image_facts_cache: cache_stats(
            &merged.caches,
            CacheKind::ImageFacts,
            perf.cache_entries(CacheKind::ImageFacts),
        ),
        tokens: TokenStats {
            prompts: agg.orchestrations,
            mean_prompt_tokens: mean(agg.prompt_tokens_sum as f64, agg.orchestrations),
            max_prompt_tokens: agg.prompt_tokens_max,
            truncations: agg.truncations,
            budget_warnings: agg.budget_warnings,
        },
        jobs: JobQueueStats {
            depth: extras.queue.depth,
            running: extras.queue.running,
            wait_p95_ms: agg.job_wait.quantile_ms(0.95),
            run_p95_ms: agg.job_run.quantile_ms(0.95),
            retries: agg.job_retries,
            failures: agg.job_failures,
            completed: agg.job_completed,
        },
        streams: StreamStats {
            watch_image_facts: perf.open_streams(StreamKind::WatchImageFacts),
            orchestrate_stream: perf.open_streams(StreamKind::OrchestrateStream),
            watch_performance_report: perf.open_streams(StreamKind::WatchPerformanceReport),
        },
        resident_memory_bytes: extras.resident_memory_bytes,
        database_pool: extras.pool.clone(),
        image_analysis: LatencySummary::of("image_analysis", &agg.image_analysis),
        uptime_ms: perf.windows().uptime_ms(),
        orchestrations_awaiting_images: perf.orchestrations_awaiting_images() as u64,
    }
}

/// The last `slots` 10-second slots for the dashboard, oldest first.
pub fn timeline(perf: &Perf, project_id: Option<&str>, slots: usize) -> Vec<TimelinePoint> {
    let filter = Filter { tenant: None, project: project_id };
    let samples = perf.queue_samples();
    let started = perf.started_at_ms();
    perf.windows()
        .timeline(slots, &filter)
        .into_iter()
        .map(|view| {
            let agg: &Agg = &view.agg;
            let mut unary = Hist::default();
            let (mut requests, mut ok) = (0, 0);
            for (method, rpc) in &agg.rpcs {
                requests += rpc.hist.count();
                ok += rpc.codes[0];
                if !is_streaming(method) {
                    unary.merge(&rpc.hist);
                }
            }
            let has = unary.count() > 0;
            let queue = samples.iter().rev().find(|(at, _, _)| *at >= view.start_ms && *at < view.start_ms + SLOT_MS);
            TimelinePoint {
                t_ms: started + view.start_ms as i64,
                requests,
                errors: requests - ok,
                p50_ms: has.then(|| unary.quantile_ms(0.50)),
                p95_ms: has.then(|| unary.quantile_ms(0.95)),
                p99_ms: has.then(|| unary.quantile_ms(0.99)),
                orchestrations: agg.orchestrations,
                measured_improvement: (agg.measured_samples > 0)
                    .then(|| improvement(agg.measured_actual_ms_sum, agg.measured_blocking_ms_sum)),
                estimated_improvement: (agg.orchestrations > 0).then(|| improvement(agg.actual_ms_sum, agg.old_ms_sum)),
                context_hit_rate: hit_rate(&view.caches, CacheKind::ContextPacket),
                image_facts_hit_rate: hit_rate(&view.caches, CacheKind::ImageFacts),
                queue_depth: queue.map(|q| q.1),
                jobs_running: queue.map(|q| q.2),
            }
        })
        .collect()
}

fn mean(sum: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// 1 - actual / blocking (0 when nothing blocked).
fn improvement(actual: f64, blocking: f64) -> f64 {
    if blocking > 0.0 { 1.0 - actual / blocking } else { 0.0 }
}

fn hit_rate(caches: &CacheCounts, kind: CacheKind) -> Option<f64> {
    let [hits, misses] = caches[kind.index()];
    (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
}

fn cache_stats(caches: &CacheCounts, kind: CacheKind, entries: u64) -> CacheStats {
    let [hits, misses] = caches[kind.index()];
    CacheStats { hits, misses, hit_rate: hit_rate(caches, kind).unwrap_or(0.0), entries }
}

/// Resident memory of this process, from /proc/self/status (0 where unavailable).
pub fn resident_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim();
                kb.parse::<u64>().ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Builds reports: the recorder plus the store's job queue and pool.
pub struct Reporter {
    perf: Perf,
    store: Store,
    /// The all-tenant queue counts, reused for a second: the dashboard, /metrics
    /// and the monitor all ask, and the count scans unfinished jobs.
    global_queue: Mutex<Option<(Instant, QueueCounts)>>,
}

impl Reporter {
    pub fn new(perf: Perf, store: Store) -> Self {
        Self { perf, store, global_queue: Mutex::new(None) }
    }

    pub fn perf(&self) -> &Perf {
        &self.perf
    }

    /// A report. Store figures are best effort: when the store does not
    /// answer, the job queue shows the last figures known (or zeros).
    pub async fn report(&self, query: &ReportQuery) -> Report {
        let queue = self.queue(query.tenant.as_ref(), query.project_id.as_deref()).await;
        build(&self.perf, query, &self.extras(queue))
    }

    /// Process-wide figures for `/metrics`.
    pub async fn extras_global(&self) -> Extras {
        let queue = self.queue(None, None).await;
        self.extras(queue)
    }

    fn extras(&self, queue: QueueCounts) -> Extras {
        let pool = self.store.pool_stats();
        Extras {
            queue,
            pool: PoolView { in_use: pool.in_use, idle: pool.idle, max: pool.max },
            resident_memory_bytes: resident_memory_bytes(),
        }
    }

    /// Job queue counts for a tenant and project (None: all).
    pub async fn queue(&self, tenant: Option<&TenantId>, project_id: Option<&str>) -> QueueCounts {
        let global = tenant.is_none() && project_id.is_none();
        let cached = self.global_queue.lock().ok().and_then(|c| *c);
        if global && let Some((_, counts)) = cached.filter(|(at, _)| at.elapsed() < Duration::from_secs(1)) {
            return counts;
        }
        match self.store.job_queue_counts(tenant, project_id, crate::model::now_ms()).await {
            Ok(counts) => {
                if global && let Ok(mut slot) = self.global_queue.lock() {
                    *slot = Some((Instant::now(), counts));
                }
                counts
            }
            Err(err) => {
                tracing::debug!(error = %err, "job queue counts unavailable");
                if global { cached.map(|(_, c)| c).unwrap_or_default() } else { QueueCounts::default() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::perf::{JobOutcome, JobSample, OrchestrationSample, StageTimings};

    #[test]
    fn report_counts_and_target() {
        let perf = Perf::new();
        for (code, ms) in [("OK", 10), ("OK", 20), ("NOT_FOUND", 5), ("INVALID_ARGUMENT", 1), ("NOT_FOUND", 2)] {
            perf.record_rpc("GetProject", code, Some("t1"), Some("p1"), Duration::from_millis(ms));
        }
        perf.record_rpc("CreateProject", "OK", Some("t2"), None, Duration::from_millis(3));
        perf.record_cache(CacheKind::ContextPacket, true);
        perf.record_cache(CacheKind::ContextPacket, false);
        perf.record_cache(CacheKind::ContextPacket, true);
        perf.record_cache(CacheKind::ContextPacket, true);
        perf.record_orchestration(&OrchestrationSample {
            tenant_id: "t1".into(),
            project_id: "p1".into(),
            orchestration_id: "o1".into(),
            timings: StageTimings { total_ms: 100.0, decision_ms: 50.0, ..StageTimings::default() },
            image_count: 1,
            prompt_tokens: 1_000,
            truncated: false,
            budget_warning: true,
            degraded: false,
        });
        perf.record_job(&JobSample {
            tenant_id: "t1".into(),
            project_id: "p1".into(),
            orchestration_id: Some("o1".into()),
            wait: Duration::from_millis(3),
            run: Duration::from_millis(400),
            analysis_ms: Some(300.0),
            outcome: JobOutcome::Succeeded,
        });
        let query = ReportQuery { window: Window::Last1Minute, tenant: Some(TenantId("t1".into())), project_id: None };
        let r = build(&perf, &query, &Extras::default());
        assert_eq!(r.requests.total, 5, "t2's call is not t1's");
        assert_eq!(r.requests.errors, 3);
        assert_eq!(r.requests.errors_by_code[0], CodeCount { code: "NOT_FOUND".into(), count: 2 });
        assert_eq!(r.rpc_latencies[0].name, "GetProject");
        assert_eq!(r.rpc_latencies[0].max_ms, 20.0);
        assert!(r.rpc_latencies[0].p50_ms >= 1.0 && r.rpc_latencies[0].p50_ms <= 20.0);
        assert_eq!(r.context_cache.hits, 3);
        assert_eq!(r.context_cache.hit_rate, 0.75);
        assert_eq!(r.async_win.measured.samples, 1);
        assert_eq!(r.async_win.measured.mean_blocking_ms, 400.0);
        assert!((r.async_win.measured.improvement - 0.75).abs() < 1e-9);
        assert!(r.async_win.target_met);
        // Estimate: 500 + 2000 + 3000 (images present) = 5500 ms old vs 100 ms.
        assert_eq!(r.async_win.estimated.mean_old_ms, 5_500.0);
        assert_eq!(r.tokens.budget_warnings, 1);
        assert_eq!(r.stage_latencies.len(), 5);
        assert_eq!(r.stage_latencies[2].name, "decision");
        assert_eq!(r.stage_latencies[2].max_ms, 50.0);
        assert_eq!(r.jobs.completed, 1);
        assert_eq!(r.image_analysis.count, 1);

        let everyone = build(&perf, &ReportQuery { tenant: None, ..query.clone() }, &Extras::default());
        assert_eq!(everyone.requests.total, 6);
        let other = build(&perf, &ReportQuery { project_id: Some("p9".into()), ..query }, &Extras::default());
        assert_eq!(other.requests.total, 0);
        assert!(!other.async_win.target_met, "no samples, no claim");
    }

    #[test]
    fn memory_is_read() {
        assert!(resident_memory_bytes() > 1 << 20);
    }

    #[test]
    fn timeline_shows_the_current_slot() {
        let perf = Perf::new();
        perf.record_rpc("GetProject", "OK", Some("t"), None, Duration::from_millis(4));
        perf.record_rpc("GetProject", "INTERNAL", Some("t"), None, Duration::from_millis(8));
        perf.push_queue_sample(3, 1);
        let points = timeline(&perf, None, 90);
        let last = points.last().expect("a point");
        assert_eq!(last.requests, 2);
        assert_eq!(last.errors, 1);
        assert_eq!(last.p99_ms, Some(8.0));
        assert_eq!(last.queue_depth, Some(3));
    }
}
