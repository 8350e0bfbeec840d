//! Authentication: the `authorization` metadata (`Bearer <API key>`) names the tenant the call
//! acts for; without keys configured (local mode) a call without one acts for the implicit
//! tenant. The tenant goes into the request extensions for the handler
//! ([`crate::grpc::tenant`]) and into the RPC's context for its log line and sample; a missing or
//! wrong key is UNAUTHENTICATED and never reaches the handler.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

use super::{Gate, RpcContext, readiness::starting, take_ready};
use crate::model::Caller;

/// Marks a request allowed to call AdminService: an admin key, or local mode's implicit caller.
#[derive(Debug, Clone, Copy)]
pub struct AdminAccess;

/// Wraps services with [`Authentication`].
#[derive(Clone)]
pub struct AuthenticationLayer {
    gate: Gate,
}

impl AuthenticationLayer {
    /// Authenticates with the gate's authenticator.
    pub fn new(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authentication { inner, gate: self.gate.clone() }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Authentication<S> {
    inner: S,
    gate: Gate,
}

impl<S, B> Service<Request<B>> for Authentication<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let authenticator = self.gate.authenticator().cloned();
        Box::pin(async move {
            // The readiness layer refuses calls before the gate opens; this is its second line.
            let Some(authenticator) = authenticator else { return Ok(Status::from(starting()).into_http()) };
            let header = request.headers().get("authorization").and_then(|v| v.to_str().ok());
            let (tenant, admin) = match authenticator.authenticate(header).await {
                // Local mode has no keys at all: its one caller is also the operator.
                Ok(Caller::Tenant(tenant)) => (Some(tenant), authenticator.is_open()),
                // No tenant: tenant handlers refuse (TENANT_KEY_REQUIRED), AdminService serves.
                Ok(Caller::Admin) => (None, true),
                Err(error) => return Ok(Status::from(error).into_http()),
            };
            if admin {
                request.extensions_mut().insert(AdminAccess);
                // AdminService tells the key cache when it purges a tenant.
                request.extensions_mut().insert(authenticator);
            }
            if let Some(tenant) = tenant {
                if let Some(context) = request.extensions().get::<Arc<RpcContext>>() {
                    context.note_tenant(&tenant);
                }
                request.extensions_mut().insert(tenant);
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tower::{ServiceExt, service_fn, util::BoxCloneService};

    use super::*;
    use crate::grpc::layers::testing::{authenticator, ok, outcome, request};
    use crate::model::TenantId;

    /// The layer over a handler that answers OK when it sees the tenant `want`.
    fn expecting(gate: Gate, want: &'static str) -> BoxCloneService<Request<Body>, Response<Body>, Infallible> {
        AuthenticationLayer::new(gate)
            .layer(service_fn(move |request: Request<Body>| async move {
                assert_eq!(request.extensions().get::<TenantId>().map(TenantId::as_str), Some(want));
                let context = request.extensions().get::<Arc<RpcContext>>().expect("a context"); // ok: unit test only (#[cfg(test)]), not on a request path
                assert_eq!(context.tenant().map(TenantId::as_str), Some(want));
                ok()
            }))
            .boxed_clone()
    }

    fn with_context(mut request: Request<Body>) -> Request<Body> {
        request.extensions_mut().insert(Arc::new(RpcContext::default()));
        request
    }

    #[tokio::test]
    async fn local_mode_serves_the_implicit_tenant_and_refuses_wrong_keys() {
        let gate = Gate::default();
        let (_dir, local) = authenticator(Some(TenantId("implicit".into()))).await;
        gate.open(local);
        let service = expecting(gate, "implicit");
        let response = service.clone().oneshot(with_context(request("GetProject", &[]))).await.expect("infallible");
        assert_eq!(outcome(&response), None, "served");
        let wrong = request("GetProject", &[("authorization", "Bearer not-a-key")]);
        let response = service.oneshot(with_context(wrong)).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::Unauthenticated, "API_KEY_INVALID".into())));
    }

    #[tokio::test]
    async fn with_keys_a_call_without_one_is_refused() {
        let gate = Gate::default();
        let (_dir, keyed) = authenticator(None).await;
        gate.open(keyed);
        let response =
            expecting(gate, "-").oneshot(with_context(request("GetProject", &[]))).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::Unauthenticated, "API_KEY_MISSING".into())));
    }

    #[tokio::test]
    async fn a_closed_gate_is_unavailable() {
        let response = expecting(Gate::default(), "-").oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::Unavailable, "STORE_UNAVAILABLE".into())));
    }
}
