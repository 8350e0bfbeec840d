//! The gRPC edge: tonic service implementations (thin: proto <-> domain),
//! the tower middleware every RPC passes through, health, reflection and the
//! server's lifecycle.

mod admin;
pub mod convert;
mod health;
pub mod image_facts;
mod middleware;
mod orchestrator;
mod pending;
mod project;
pub mod server;
pub mod status;

pub use middleware::RequestId;

use tonic::{Request, Status};

use crate::{error::Error, model::TenantId};

/// The tenant the middleware authenticated for this request.
pub(crate) fn tenant<T>(request: &Request<T>) -> Result<TenantId, Status> {
    request
        .extensions()
        .get::<TenantId>()
        .cloned()
        .ok_or_else(|| Error::internal("request reached a handler without an authenticated tenant").into())
}
