//! `brain.v1.PerformanceService`: the performance report, once or periodically.
//!
//! A tenant sees its own RPCs, orchestrations and jobs (optionally one
//! project's); caches, streams, memory and the database pool are process-wide.

use std::{sync::Arc, time::Duration};

use brain_proto::v1::{self as pb, performance_service_server::PerformanceService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{convert, note_project, tenant};
use crate::{
    error::{Error, Reason, Result},
    model::TenantId,
    perf::{Report, ReportQuery, Reporter, StreamKind, Window, report},
    projects::Projects,
};

/// Default time between WatchPerformanceReport reports.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest accepted interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest accepted interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The PerformanceService implementation.
pub struct PerformanceApi {
    reporter: Arc<Reporter>,
    projects: Projects,
    shutdown: CancellationToken,
}

impl PerformanceApi {
    /// Serves reports from `reporter`; project filters are checked against `projects`; streams end on `shutdown`.
    pub fn new(reporter: Arc<Reporter>, projects: Projects, shutdown: CancellationToken) -> Self {
        Self { reporter, projects, shutdown }
    }

    /// Validates the window and the project filter (which must be one of the tenant's projects).
    async fn query(&self, tenant: TenantId, window: i32, project_id: &str) -> Result<ReportQuery> {
        let window = window_of(window)?;
        let project_id =
            if project_id.is_empty() { None } else { Some(self.projects.get(&tenant, project_id).await?.id) };
        Ok(ReportQuery { window, tenant: Some(tenant), project_id })
    }
}

#[tonic::async_trait]
impl PerformanceService for PerformanceApi {
    async fn get_performance_report(
        &self,
        request: Request<pb::GetPerformanceReportRequest>,
    ) -> Result<Response<pb::GetPerformanceReportResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let query = self.query(tenant, req.window, &req.project_id).await?;
        let report = self.reporter.report(&query).await;
        Ok(Response::new(pb::GetPerformanceReportResponse { report: Some(to_proto(&report)) }))
    }

    async fn watch_performance_report(
        &self,
        request: Request<pb::WatchPerformanceReportRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::WatchPerformanceReportResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let interval = interval_of(req.interval.as_ref())?;
        let query = self.query(tenant, req.window, &req.project_id).await?;
        let state = Watch {
            reporter: self.reporter.clone(),
            query,
            shutdown: self.shutdown.clone(),
            ticker: None,
            interval,
            _guard: self.reporter.perf().stream_opened(StreamKind::WatchPerformanceReport),
        };
        let stream = futures::stream::unfold(state, |mut state| async move {
            let ticker = state.ticker.get_or_insert_with(|| {
                // The first tick fires at once: the first report arrives without waiting an interval.
                let mut t = tokio::time::interval(state.interval);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            tokio::select! {
                () = state.shutdown.cancelled() => None,
                _ = ticker.tick() => {
                    let report = state.reporter.report(&state.query).await;
                    let item = pb::WatchPerformanceReportResponse { report: Some(to_proto(&report)) };
                    Some((Ok(item), state))
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// State of one WatchPerformanceReport stream; dropping it (client gone) uncounts the stream.
struct Watch {
    reporter: Arc<Reporter>,
    query: ReportQuery,
    shutdown: CancellationToken,
    ticker: Option<tokio::time::Interval>,
    interval: Duration,
    _guard: crate::perf::StreamGuard,
}

fn window_of(value: i32) -> Result<Window> {
    match pb::ReportWindow::try_from(value) {
        Ok(pb::ReportWindow::Unspecified | pb::ReportWindow::Last5Minutes) => Ok(Window::Last5Minutes),
        Ok(pb::ReportWindow::Last1Minute) => Ok(Window::Last1Minute),
        Ok(pb::ReportWindow::Last15Minutes) => Ok(Window::Last15Minutes),
        Ok(pb::ReportWindow::SinceStart) => Ok(Window::SinceStart),
        Err(_) => {
            Err(Error::new(Reason::UnknownEnumValue, format!("window has unknown value {value}")).with_field("window"))
        }
    }
}

fn interval_of(interval: Option<&prost_types::Duration>) -> Result<Duration> {
    let Some(ms) = convert::duration_ms("interval", interval)? else { return Ok(DEFAULT_INTERVAL) };
    let range = MIN_INTERVAL.as_millis() as i64..=MAX_INTERVAL.as_millis() as i64;
    if !range.contains(&ms) {
        return Err(Error::invalid("interval", "interval must be from 1 second to 1 hour").with_limit(format!(
            "{}s..{}s",
            MIN_INTERVAL.as_secs(),
            MAX_INTERVAL.as_secs()
        )));
    }
    Ok(Duration::from_millis(ms as u64))
}

fn window_to_proto(window: Window) -> pb::ReportWindow {
    match window {
        Window::Last1Minute => pb::ReportWindow::Last1Minute,
        Window::Last5Minutes => pb::ReportWindow::Last5Minutes,
        Window::Last15Minutes => pb::ReportWindow::Last15Minutes,
        Window::SinceStart => pb::ReportWindow::SinceStart,
    }
}

fn latency(l: &report::LatencySummary) -> pb::LatencySummary {
    pb::LatencySummary {
        name: l.name.clone(),
        count: l.count,
        mean_ms: l.mean_ms,
        p50_ms: l.p50_ms,
        p95_ms: l.p95_ms,
        p99_ms: l.p99_ms,
        max_ms: l.max_ms,
    }
}

fn cache(c: &report::CacheStats) -> pb::CacheStats {
    pb::CacheStats { hits: c.hits, misses: c.misses, hit_rate: c.hit_rate, entries: c.entries }
}

/// The report in its wire form.
pub fn to_proto(r: &Report) -> pb::PerformanceReport {
    let covered = Duration::from_millis(r.covered_ms);
    pb::PerformanceReport {
        generate_time: Some(convert::timestamp(r.generated_at_ms)),
        window: window_to_proto(r.window).into(),
        covered: Some(prost_types::Duration {
            seconds: covered.as_secs() as i64,
            nanos: covered.subsec_nanos() as i32,
        }),
        project_id: r.project_id.clone().unwrap_or_default(),
        requests: Some(pb::RequestStats {
            total: r.requests.total,
            errors: r.requests.errors,
            throughput_rps: r.requests.throughput_rps,
            errors_by_code: r
                .requests
                .errors_by_code
                .iter()
                .map(|c| pb::CodeCount { code: c.code.clone(), count: c.count })
                .collect(),
        }),
        rpc_latencies: r.rpc_latencies.iter().map(latency).collect(),
        stage_latencies: r.stage_latencies.iter().map(latency).collect(),
        async_win: Some(pb::AsyncWin {
            measured: Some(pb::MeasuredAsyncWin {
                samples: r.async_win.measured.samples,
                mean_actual_ms: r.async_win.measured.mean_actual_ms,
                mean_blocking_ms: r.async_win.measured.mean_blocking_ms,
                improvement: r.async_win.measured.improvement,
            }),
            estimated: Some(pb::EstimatedAsyncWin {
                old_context_ms: r.async_win.estimated.old_context_ms,
                old_decision_ms: r.async_win.estimated.old_decision_ms,
                old_image_ms: r.async_win.estimated.old_image_ms,
                mean_old_ms: r.async_win.estimated.mean_old_ms,
                mean_actual_ms: r.async_win.estimated.mean_actual_ms,
                improvement: r.async_win.estimated.improvement,
            }),
            target: r.async_win.target,
            target_met: r.async_win.target_met,
        }),
        context_cache: Some(cache(&r.context_cache)),
        image_facts_cache: Some(cache(&r.image_facts_cache)),
        tokens: Some(pb::TokenStats {
            prompts: r.tokens.prompts,
            mean_prompt_tokens: r.tokens.mean_prompt_tokens,
            max_prompt_tokens: r.tokens.max_prompt_tokens,
            truncations: r.tokens.truncations,
            budget_warnings: r.tokens.budget_warnings,
        }),
        jobs: Some(pb::JobQueueStats {
            depth: r.jobs.depth,
            running: r.jobs.running,
            wait_p95_ms: r.jobs.wait_p95_ms,
            run_p95_ms: r.jobs.run_p95_ms,
            retries: r.jobs.retries,
            failures: r.jobs.failures,
            completed: r.jobs.completed,
        }),
        streams: Some(pb::StreamStats {
            watch_image_facts: r.streams.watch_image_facts,
            orchestrate_stream: r.streams.orchestrate_stream,
            watch_performance_report: r.streams.watch_performance_report,
        }),
        resident_memory_bytes: r.resident_memory_bytes,
        database_pool: Some(pb::DatabasePoolStats {
            in_use: r.database_pool.in_use,
            idle: r.database_pool.idle,
            max: r.database_pool.max,
        }),
        image_analysis: Some(latency(&r.image_analysis)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_intervals_are_validated() {
        assert_eq!(window_of(0).ok(), Some(Window::Last5Minutes));
        assert_eq!(window_of(4).ok(), Some(Window::SinceStart));
        assert_eq!(window_of(99).map_err(|e| e.reason()), Err(Reason::UnknownEnumValue));
        assert_eq!(interval_of(None).ok(), Some(DEFAULT_INTERVAL));
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(interval_of(Some(&d(1, 0))).ok(), Some(Duration::from_secs(1)));
        assert_eq!(interval_of(Some(&d(3600, 0))).ok(), Some(Duration::from_secs(3600)));
        assert_eq!(interval_of(Some(&d(0, 500_000_000))).map_err(|e| e.reason()), Err(Reason::InvalidField));
        assert_eq!(interval_of(Some(&d(3601, 0))).map_err(|e| e.reason()), Err(Reason::InvalidField));
        assert!(interval_of(Some(&d(-1, 0))).is_err());
    }
}
