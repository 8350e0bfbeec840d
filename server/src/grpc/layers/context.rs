//! What the layers and the handlers of one RPC share through its request extensions.

use std::{sync::OnceLock, time::Instant};

use crate::model::TenantId;

/// The request id of an RPC: the client's valid `x-request-id`, or a generated one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// When the server took the call: set by [`super::BrainOnly`] as the call enters the layers,
/// before tonic starts the clock of the client's `grpc-timeout`, so the observe layer can tell
/// a call dropped at its deadline from one the client cancelled, and durations include the wait
/// for the first poll.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub Instant);

/// Per-RPC facts that inner layers and handlers add for the log line and the performance
/// sample, which the observe layer writes once the RPC is over; see [`crate::grpc::note_project`].
#[derive(Debug, Default)]
pub struct RpcContext {
    tenant: OnceLock<TenantId>,
    project_id: OnceLock<String>,
}

impl RpcContext {
    /// Records the project the RPC is about; see [`crate::grpc::note_project`].
    pub fn note_project(&self, project_id: &str) {
        if crate::validate::id("project_id", project_id).is_ok() && self.project_id.set(project_id.to_owned()).is_ok() {
            tracing::Span::current().record("project", project_id);
        }
    }

    /// The project, when a handler noted one.
    pub fn project(&self) -> Option<&str> {
        self.project_id.get().map(String::as_str)
    }

    /// Records the authenticated tenant (the authentication layer does, once).
    pub fn note_tenant(&self, tenant: &TenantId) {
        if self.tenant.set(tenant.clone()).is_ok() {
            tracing::Span::current().record("tenant", tenant.as_str());
        }
    }

    /// The tenant, once authenticated.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.get()
    }
}
