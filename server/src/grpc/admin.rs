//! `brain.v1.AdminService`: admin keys (or local mode) only.

use std::sync::Arc;

use brain_proto::v1::{self as pb, admin_service_server::AdminService};
use tonic::{Request, Response, Status};

use super::{admin, note_project};
use crate::{auth::Authenticator, error::Error, model::TenantId, projects::Projects, retention::Retention};

/// The AdminService implementation.
pub struct AdminApi {
    retention: Retention,
    projects: Projects,
}

impl AdminApi {
    /// Serves retention runs and tenant purges.
    pub fn new(retention: Retention, projects: Projects) -> Self {
        Self { retention, projects }
    }

    /// The tenant a request names; in local mode an empty name is the implicit tenant.
    async fn tenant<T>(&self, request: &Request<T>, name: &str) -> Result<TenantId, Status> {
        if name.trim().is_empty() {
            let implicit = request.extensions().get::<TenantId>().cloned();
            return implicit.ok_or_else(|| Error::missing("tenant").into());
        }
        Ok(self.projects.tenant_named(name).await?)
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn run_retention(
        &self,
        request: Request<pb::RunRetentionRequest>,
    ) -> Result<Response<pb::RunRetentionResponse>, Status> {
        admin(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let tenant = self.tenant(&request, &request.get_ref().tenant).await?;
        let req = request.get_ref();
        let report = self.retention.run_retention(&tenant, &req.project_id, req.dry_run).await?;
        Ok(Response::new(pb::RunRetentionResponse { dry_run: req.dry_run, ..report.into() }))
    }

    async fn purge_tenant(
        &self,
        request: Request<pb::PurgeTenantRequest>,
    ) -> Result<Response<pb::PurgeTenantResponse>, Status> {
        admin(&request)?;
        let purge = self.projects.purge_tenant(&request.get_ref().tenant).await?;
        // Cached keys of the tenant stop working now, not when the cache entry expires.
        if let Some(keys) = request.extensions().get::<Arc<Authenticator>>() {
            keys.forget_tenant(&purge.tenant);
        }
        Ok(Response::new(pb::PurgeTenantResponse {
            projects: purge.projects,
            api_keys: purge.api_keys,
            deleted: Some(purge.deleted.into()),
        }))
    }
}
