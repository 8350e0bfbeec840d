//! The gRPC edge: tonic service implementations (thin: proto <-> domain),
//! the tower layers every RPC passes through, health, reflection and the
//! router that serves them.

mod admin;
pub mod convert;
mod health;
mod image_facts;
pub mod layers;
mod orchestrator;
mod performance;
mod project;
pub mod server;
pub mod status;
mod stream;

pub use layers::{RequestId, RpcContext};

use tonic::{Request, Status};

use crate::{
    error::{Error, Reason},
    images::ImageAdmission,
    model::TenantId,
};

/// The tenant the authentication layer authenticated for this request;
/// TENANT_KEY_REQUIRED for an admin key (AdminService only).
pub(crate) fn tenant<T>(request: &Request<T>) -> Result<TenantId, Status> {
    if let Some(tenant) = request.extensions().get::<TenantId>() {
        return Ok(tenant.clone());
    }
    if request.extensions().get::<layers::authentication::AdminAccess>().is_some() {
        let message = "an admin key can only call AdminService; use the tenant's own key";
        return Err(Error::new(Reason::TenantKeyRequired, message).into());
    }
    Err(Error::internal("request reached a handler without an authenticated tenant").into())
}

/// Checks the request may call AdminService (an admin key, or local mode);
/// ADMIN_KEY_REQUIRED for a tenant's key.
pub(crate) fn admin<T>(request: &Request<T>) -> Result<(), Status> {
    if request.extensions().get::<layers::authentication::AdminAccess>().is_some() {
        return Ok(());
    }
    let message = "AdminService needs an admin key (brain-server keys create --admin); a tenant's key cannot call it";
    Err(Error::new(Reason::AdminKeyRequired, message).into())
}

/// How the call's images are charged to `tenant`'s per-minute image limit
/// (`rate_limit_images_per_minute`; over it the call is `RATE_LIMITED`): the service charges them
/// once they are validated. Outside the layers (unit tests) nothing is charged.
pub(crate) fn image_admission<T>(request: &Request<T>, tenant: &TenantId) -> ImageAdmission {
    match request.extensions().get::<layers::TenantLimits>() {
        Some(limits) => {
            let (limits, tenant) = (limits.clone(), tenant.clone());
            ImageAdmission::new(move |images| limits.charge_images(&tenant, images))
        }
        None => ImageAdmission::unlimited(),
    }
}

/// Attributes this RPC to `project_id`: its log line, its performance sample
/// and the project filter of the performance report. Handlers call it as soon
/// as they know the project (the request's `project_id`). Ids that are not
/// well-formed are ignored, so client input cannot grow the report with junk
/// keys; the first id noted wins. To note a project only known after the
/// request was consumed (one just created), keep [`rpc_context`] first.
pub fn note_project<T>(request: &Request<T>, project_id: &str) {
    if let Some(context) = rpc_context(request) {
        context.note_project(project_id);
    }
}

/// This RPC's context (None outside the layers, e.g. in unit tests).
pub fn rpc_context<T>(request: &Request<T>) -> Option<std::sync::Arc<RpcContext>> {
    request.extensions().get::<std::sync::Arc<RpcContext>>().cloned()
}
