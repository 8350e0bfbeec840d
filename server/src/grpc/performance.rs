//! `brain.v1.PerformanceService`: the performance report, once or periodically.
//!
//! A tenant sees its own RPCs, orchestrations and jobs (optionally one
//! project's); caches, streams, memory and the database pool are process-wide.

use std::{sync::Arc, time::Duration};

use brain_proto::v1::{self as pb, performance_service_server::PerformanceService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{
    convert::{self, window_of},
    note_project, tenant,
};
use crate::{
    error::{Error, Result},
    model::TenantId,
    perf::{ReportQuery, Reporter, StreamKind},
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
        Ok(Response::new(pb::GetPerformanceReportResponse { report: Some((&report).into()) }))
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
                    let item = pb::WatchPerformanceReportResponse { report: Some((&report).into()) };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    #[test]
    fn intervals_are_validated() {
        assert_eq!(interval_of(None).ok(), Some(DEFAULT_INTERVAL));
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(interval_of(Some(&d(1, 0))).ok(), Some(Duration::from_secs(1)));
        assert_eq!(interval_of(Some(&d(3600, 0))).ok(), Some(Duration::from_secs(3600)));
        assert_eq!(interval_of(Some(&d(0, 500_000_000))).map_err(|e| e.reason()), Err(Reason::InvalidField));
        assert_eq!(interval_of(Some(&d(3601, 0))).map_err(|e| e.reason()), Err(Reason::InvalidField));
        assert!(interval_of(Some(&d(-1, 0))).is_err());
    }
}
