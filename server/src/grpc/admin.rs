//! `brain.v1.AdminService`.

use brain_proto::v1::{self as pb, admin_service_server::AdminService};
use tonic::{Request, Response, Status};

use super::{note_project, tenant};
use crate::retention::Retention;

/// The AdminService implementation.
pub struct AdminApi {
    retention: Retention,
}

impl AdminApi {
    /// Serves retention runs.
    pub fn new(retention: Retention) -> Self {
        Self { retention }
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn run_retention(
        &self,
        request: Request<pb::RunRetentionRequest>,
    ) -> Result<Response<pb::RunRetentionResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let report = self.retention.run_retention(&tenant, &req.project_id, req.dry_run).await?;
        Ok(Response::new(pb::RunRetentionResponse { dry_run: req.dry_run, ..report.into() }))
    }
}
