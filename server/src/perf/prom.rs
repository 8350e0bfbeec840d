//! Prometheus metrics: names, units, buckets, and the process-wide recorder.
//!
//! Names follow Prometheus conventions: a `brain_` prefix, base units
//! (seconds, bytes) in the name, `_total` on counters. Labels are bounded:
//! RPC method (contract methods only), status code, stage, cache, outcome,
//! stream kind. Tenants and projects are never labels.

use std::{
    collections::HashMap,
    sync::{OnceLock, RwLock},
    time::Duration,
};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{CacheKind, JobSample, OrchestrationSample, StreamKind, window::STAGES};

/// RPC duration, by method and code.
pub const RPC_DURATION: &str = "brain_rpc_duration_seconds";
/// RPCs finished, by method and code.
pub const RPC_REQUESTS: &str = "brain_rpc_requests_total";
/// Orchestration stage duration, by stage.
pub const STAGE_DURATION: &str = "brain_stage_duration_seconds";
/// Orchestrations finished.
pub const ORCHESTRATIONS: &str = "brain_orchestrations_total";
/// Enhanced prompt size.
pub const PROMPT_TOKENS: &str = "brain_prompt_tokens";
/// Prompts that dropped or cut context.
pub const PROMPT_TRUNCATIONS: &str = "brain_prompt_truncations_total";
/// Prompts above 90% of their budget.
pub const BUDGET_WARNINGS: &str = "brain_token_budget_warnings_total";
/// Orchestrations answered from degraded context.
pub const CONTEXT_DEGRADED: &str = "brain_context_degraded_total";
/// Cache lookups, by cache and result.
pub const CACHE_LOOKUPS: &str = "brain_cache_lookups_total";
/// Entries in a cache now, by cache.
pub const CACHE_ENTRIES: &str = "brain_cache_entries";
/// Job attempts finished, by outcome.
pub const JOBS: &str = "brain_jobs_total";
/// Job wait before claim.
pub const JOB_WAIT: &str = "brain_job_wait_seconds";
/// Job attempt run time.
pub const JOB_RUN: &str = "brain_job_run_seconds";
/// Image analysis time of successful jobs.
pub const IMAGE_ANALYSIS: &str = "brain_image_analysis_seconds";
/// Jobs waiting to run now.
pub const JOB_QUEUE_DEPTH: &str = "brain_job_queue_depth";
/// Jobs running now.
pub const JOBS_RUNNING: &str = "brain_jobs_running";
/// Open server streams, by kind.
pub const STREAMS_OPEN: &str = "brain_streams_open";
/// Bytes, set on each scrape of `/metrics`.
pub const RESIDENT_MEMORY: &str = "brain_process_resident_memory_bytes";
/// Database connections, by state (in_use, idle, max).
pub const DB_CONNECTIONS: &str = "brain_db_connections";
/// Response time of orchestrations with images whose analyses all finished.
pub const ASYNC_ACTUAL: &str = "brain_async_win_actual_seconds";
/// Their blocking-equivalent response time (response plus analysis of every image).
pub const ASYNC_BLOCKING: &str = "brain_async_win_blocking_seconds";
/// 1 - actual / blocking over the last 5 minutes, by mode (measured, estimated).
pub const ASYNC_IMPROVEMENT: &str = "brain_async_improvement_ratio";
/// The configured `perf_improvement_target`, set on each scrape.
pub const ASYNC_TARGET: &str = "brain_async_improvement_target_ratio";
/// Seconds since the recorder started, set on each scrape.
pub const UPTIME: &str = "brain_uptime_seconds";
/// Orchestrations stored by one transaction of the group commit.
pub const COMMIT_BATCH: &str = "brain_orchestration_commit_batch_size";
/// Time of one group-commit transaction, from BEGIN to COMMIT.
pub const COMMIT_DURATION: &str = "brain_orchestration_commit_seconds";

/// Calls refused by a per-tenant limit, by limit and reason.
pub const TENANT_LIMIT_REFUSALS: &str = "brain_tenant_limit_refusals_total";
/// The configured per-tenant limits, by limit (0 = off).
pub const TENANT_LIMITS: &str = "brain_tenant_limit";
/// Tenants whose rate-limit state is kept now.
pub const TENANT_LIMIT_TENANTS: &str = "brain_tenant_limit_tenants";

/// Scheduled retention runs this replica completed.
pub const RETENTION_RUNS: &str = "brain_retention_runs_total";
/// Scheduled retention failures, by stage ([`RETENTION_STAGES`]).
pub const RETENTION_FAILURES: &str = "brain_retention_failures_total";
/// 1 while the replica's gRPC health is SERVING, else 0.
pub const HEALTH_SERVING: &str = "brain_health_serving";
/// Rows scheduled retention removed (or archived, for turns), by kind.
pub const RETENTION_DELETED: &str = "brain_retention_deleted_total";

/// Latency buckets in seconds: 0.5 ms to 60 s.
const SECONDS_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Prompt size buckets, up to GPT-4o's 128k window.
const TOKEN_BUCKETS: [f64; 10] =
    [256.0, 1_024.0, 4_096.0, 8_192.0, 16_384.0, 32_768.0, 65_536.0, 98_304.0, 120_000.0, 128_000.0];

/// Group commit sizes, up to the writer's batch limit.
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Installs the process-wide Prometheus recorder once and returns its handle.
/// None when another recorder was installed first (tests that embed the server twice).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(PROMPT_TOKENS.into()), &TOKEN_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), &BATCH_BUCKETS));
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(err)) | Err(err) => {
                    tracing::warn!(error = %err, "cannot install the Prometheus recorder; /metrics will be empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (if needed) and describes every metric.
pub fn describe() {
    if handle().is_none() {
        return;
    }
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        describe_histogram!(RPC_DURATION, Unit::Seconds, "Time from request to final status, by method and code.");
        describe_counter!(RPC_REQUESTS, Unit::Count, "RPCs finished, by method and code.");
        describe_histogram!(STAGE_DURATION, Unit::Seconds, "Orchestration stage duration, by stage.");
        describe_counter!(ORCHESTRATIONS, Unit::Count, "Orchestrations finished.");
        describe_histogram!(PROMPT_TOKENS, Unit::Count, "Enhanced prompt size in o200k_base tokens.");
        describe_counter!(PROMPT_TRUNCATIONS, Unit::Count, "Enhanced prompts that dropped or cut context.");
        describe_counter!(BUDGET_WARNINGS, Unit::Count, "Enhanced prompts above 90% of their token budget.");
        describe_counter!(CONTEXT_DEGRADED, Unit::Count, "Orchestrations answered without project memory.");
        describe_counter!(CACHE_LOOKUPS, Unit::Count, "Cache lookups, by cache and result (hit, miss).");
        describe_gauge!(CACHE_ENTRIES, Unit::Count, "Entries in a cache now.");
        describe_counter!(JOBS, Unit::Count, "Job attempts finished, by outcome.");
        describe_histogram!(JOB_WAIT, Unit::Seconds, "Time from enqueue or retry due time to claim.");
        describe_histogram!(JOB_RUN, Unit::Seconds, "Run time of a job attempt.");
        describe_histogram!(IMAGE_ANALYSIS, Unit::Seconds, "Image analysis time (decode and extraction).");
        describe_gauge!(JOB_QUEUE_DEPTH, Unit::Count, "Jobs waiting to run (queued or waiting for a retry).");
        describe_gauge!(JOBS_RUNNING, Unit::Count, "Jobs running now.");
        describe_gauge!(STREAMS_OPEN, Unit::Count, "Server streams open now, by kind.");
        describe_gauge!(RESIDENT_MEMORY, Unit::Bytes, "Resident memory of the server process.");
        describe_gauge!(DB_CONNECTIONS, Unit::Count, "Database connections by state (in_use, idle, max).");
        describe_histogram!(
            ASYNC_ACTUAL,
            Unit::Seconds,
            "Response time of orchestrations with images whose analyses all finished."
        );
        describe_histogram!(
            ASYNC_BLOCKING,
            Unit::Seconds,
            "Blocking-equivalent response time of the same orchestrations (response plus image analyses)."
        );
        describe_gauge!(ASYNC_IMPROVEMENT, "1 - actual / blocking over the last 5 minutes, by mode.");
        describe_gauge!(ASYNC_TARGET, "The configured improvement target.");
        describe_gauge!(UPTIME, Unit::Seconds, "Time since the process started.");
        describe_histogram!(COMMIT_BATCH, Unit::Count, "Orchestrations stored by one group-commit transaction.");
        describe_histogram!(COMMIT_DURATION, Unit::Seconds, "Time of one group-commit transaction, BEGIN to COMMIT.");
        describe_counter!(
            TENANT_LIMIT_REFUSALS,
            Unit::Count,
            "Calls refused by a per-tenant limit on this replica, by limit (orchestrate, unary, images, \
             open_streams) and reason (RATE_LIMITED, QUOTA_EXCEEDED)."
        );
        describe_gauge!(TENANT_LIMITS, "The configured per-tenant limits on this replica, by limit (0 = off).");
        describe_gauge!(TENANT_LIMIT_TENANTS, Unit::Count, "Tenants whose rate-limit state is kept now.");
        describe_counter!(RETENTION_RUNS, Unit::Count, "Scheduled retention runs this replica completed.");
        describe_counter!(
            RETENTION_FAILURES,
            Unit::Count,
            "Scheduled retention failures on this replica, by stage (lock: the run could not start; \
             tenants: it could not list them; tenant: one tenant's part failed, the others ran)."
        );
        // At 0 from the start, so the first failure is an increase an alert can see.
        for stage in RETENTION_STAGES {
            counter!(RETENTION_FAILURES, "stage" => stage).absolute(0);
        }
        describe_gauge!(
            HEALTH_SERVING,
            "1 while this replica's gRPC health is SERVING, 0 while NOT_SERVING (store down, refusing \
             writes, starting or stopping)."
        );
        describe_counter!(
            RETENTION_DELETED,
            Unit::Count,
            "Rows scheduled retention removed, by kind (turns are archived, not deleted; request_ids are forgotten)."
        );
    });
}

/// Handles of the per-(method, code) RPC metrics, registered once each: building
/// a labelled key and looking it up on every RPC would triple the recording cost.
type RpcHandles = HashMap<(&'static str, &'static str), (metrics::Histogram, metrics::Counter)>;

pub(super) fn rpc(method: &'static str, code: &'static str, elapsed: Duration) {
    static HANDLES: OnceLock<RwLock<RpcHandles>> = OnceLock::new();
    let handles = HANDLES.get_or_init(RwLock::default);
    let known = handles.read().ok().and_then(|h| h.get(&(method, code)).cloned());
    let (duration, requests) = match known {
        Some(pair) => pair,
        None => {
            let pair = (
                histogram!(RPC_DURATION, "method" => method, "code" => code),
                counter!(RPC_REQUESTS, "method" => method, "code" => code),
            );
            if let Ok(mut h) = handles.write() {
                h.insert((method, code), pair.clone());
            }
            pair
        }
    };
    duration.record(elapsed.as_secs_f64());
    requests.increment(1);
}

pub(super) fn orchestration(sample: &OrchestrationSample, stages: &[f64; 5]) {
    for (stage, ms) in STAGES.iter().zip(stages) {
        histogram!(STAGE_DURATION, "stage" => *stage).record(ms.max(0.0) / 1e3);
    }
    counter!(ORCHESTRATIONS).increment(1);
    histogram!(PROMPT_TOKENS).record(f64::from(sample.prompt_tokens));
    if sample.truncated {
        counter!(PROMPT_TRUNCATIONS).increment(1);
    }
    if sample.budget_warning {
        counter!(BUDGET_WARNINGS).increment(1);
    }
    if sample.degraded {
        counter!(CONTEXT_DEGRADED).increment(1);
    }
}

/// One group-commit transaction that stored `orchestrations` in `elapsed`.
pub fn commit_batch(orchestrations: usize, elapsed: Duration) {
    histogram!(COMMIT_BATCH).record(orchestrations as f64);
    histogram!(COMMIT_DURATION).record(elapsed.as_secs_f64());
}

pub(super) fn cache(cache: CacheKind, hit: bool) {
    counter!(CACHE_LOOKUPS, "cache" => cache.as_str(), "result" => if hit { "hit" } else { "miss" }).increment(1);
}

pub(super) fn job(sample: &JobSample) {
    counter!(JOBS, "outcome" => sample.outcome.as_str()).increment(1);
    histogram!(JOB_WAIT).record(sample.wait.as_secs_f64());
    histogram!(JOB_RUN).record(sample.run.as_secs_f64());
    if let Some(ms) = sample.analysis_ms {
        histogram!(IMAGE_ANALYSIS).record(ms.max(0.0) / 1e3);
    }
}

pub(super) fn stream_delta(kind: StreamKind, delta: f64) {
    gauge!(STREAMS_OPEN, "kind" => kind.as_str()).increment(delta);
}

/// Publishes the configured per-tenant limits, as (limit, value) pairs.
pub fn tenant_limits(limits: &[(&'static str, u32)]) {
    for (limit, value) in limits {
        gauge!(TENANT_LIMITS, "limit" => *limit).set(f64::from(*value));
    }
}

/// A call refused by the per-tenant `limit` with `reason`. Tenants are not a label (unbounded);
/// the refused tenant is in the RPC's log line.
pub fn tenant_limit_refusal(limit: &'static str, reason: &'static str) {
    counter!(TENANT_LIMIT_REFUSALS, "limit" => limit, "reason" => reason).increment(1);
}

/// Tenants whose rate-limit state is kept now.
pub fn tenant_limit_tenants(tenants: usize) {
    gauge!(TENANT_LIMIT_TENANTS).set(tenants as f64);
}

/// One completed scheduled retention run and what it removed, as (kind, rows) pairs.
pub fn retention_run(removed: &[(&'static str, u64)]) {
    counter!(RETENTION_RUNS).increment(1);
    for (kind, rows) in removed {
        counter!(RETENTION_DELETED, "kind" => *kind).increment(*rows);
    }
}

/// Where a scheduled retention run can fail.
pub const RETENTION_STAGES: [&str; 3] = ["lock", "tenants", "tenant"];

/// A scheduled retention failure at `stage` (one of [`RETENTION_STAGES`]).
pub fn retention_failure(stage: &'static str) {
    counter!(RETENTION_FAILURES, "stage" => stage).increment(1);
}

/// The replica's gRPC health now.
pub fn health_serving(serving: bool) {
    gauge!(HEALTH_SERVING).set(if serving { 1.0 } else { 0.0 });
}

pub(super) fn measured(actual_ms: f64, blocking_ms: f64) {
    // 1 - rate(actual_sum) / rate(blocking_sum) is the measured improvement over any range.
    histogram!(ASYNC_ACTUAL).record(actual_ms.max(0.0) / 1e3);
    histogram!(ASYNC_BLOCKING).record(blocking_ms.max(0.0) / 1e3);
}
