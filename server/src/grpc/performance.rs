//! `brain.v1.PerformanceService`: the performance report, once or periodically.
//!
//! A tenant sees its own RPCs, orchestrations and jobs (optionally one
//! project's); caches, streams, memory and the database pool are process-wide.

use std::sync::Arc;

use brain_proto::v1::{self as pb, performance_service_server::PerformanceService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::{
    convert::{interval_of, window_of},
    note_project, stream, tenant,
};
use crate::{
    error::Result,
    model::TenantId,
    perf::{ReportQuery, Reporter},
    projects::Projects,
};

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
    ) -> Result<Response<BoxStream<pb::WatchPerformanceReportResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let interval = interval_of(req.interval.as_ref())?;
        let query = self.query(tenant, req.window, &req.project_id).await?;
        let reports = self.reporter.clone().watch(query, interval, self.shutdown.clone());
        Ok(stream::response(reports, self.shutdown.clone()))
    }
}
