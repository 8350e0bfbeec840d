//! PerformanceService: report windows, watch intervals and the report.

use std::time::Duration;

use brain_proto::v1 as pb;

use super::{duration, timestamp, wire_enum};
use crate::{
    error::Result,
    perf::{Report, Window, report, watch_interval},
};

/// A report window from the wire; UNSPECIFIED means the last 5 minutes.
pub fn window_of(value: i32) -> Result<Window> {
    wire_enum::<pb::ReportWindow>("window", value).map(Window::from)
}

/// A watch interval from the wire, checked against the watch's limits.
pub fn interval_of(interval: Option<&prost_types::Duration>) -> Result<Duration> {
    watch_interval(duration("interval", interval)?)
}

impl From<pb::ReportWindow> for Window {
    fn from(w: pb::ReportWindow) -> Self {
        match w {
            pb::ReportWindow::Unspecified | pb::ReportWindow::Last5Minutes => Window::Last5Minutes,
            pb::ReportWindow::Last1Minute => Window::Last1Minute,
            pb::ReportWindow::Last15Minutes => Window::Last15Minutes,
            pb::ReportWindow::SinceStart => Window::SinceStart,
        }
    }
}

impl From<Window> for pb::ReportWindow {
    fn from(w: Window) -> Self {
        match w {
            Window::Last1Minute => pb::ReportWindow::Last1Minute,
            Window::Last5Minutes => pb::ReportWindow::Last5Minutes,
            Window::Last15Minutes => pb::ReportWindow::Last15Minutes,
            Window::SinceStart => pb::ReportWindow::SinceStart,
        }
    }
}

impl From<&report::LatencySummary> for pb::LatencySummary {
    fn from(l: &report::LatencySummary) -> Self {
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
}

impl From<&report::CacheStats> for pb::CacheStats {
    fn from(c: &report::CacheStats) -> Self {
        pb::CacheStats { hits: c.hits, misses: c.misses, hit_rate: c.hit_rate, entries: c.entries }
    }
}

impl From<Report> for pb::WatchPerformanceReportResponse {
    fn from(r: Report) -> Self {
        pb::WatchPerformanceReportResponse { report: Some((&r).into()) }
    }
}

impl From<&Report> for pb::PerformanceReport {
    fn from(r: &Report) -> Self {
        let covered = Duration::from_millis(r.covered_ms);
        pb::PerformanceReport {
            generate_time: Some(timestamp(r.generated_at_ms)),
            window: pb::ReportWindow::from(r.window).into(),
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
            rpc_latencies: r.rpc_latencies.iter().map(Into::into).collect(),
            stage_latencies: r.stage_latencies.iter().map(Into::into).collect(),
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
            context_cache: Some((&r.context_cache).into()),
            image_facts_cache: Some((&r.image_facts_cache).into()),
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
            image_analysis: Some((&r.image_analysis).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{error::Reason, perf::DEFAULT_INTERVAL};

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
