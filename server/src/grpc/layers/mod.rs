//! The tower layers every brain RPC passes through, outermost first, each with one job:
//!
//! 1. [`request_id`]: the client's `x-request-id` when it is safe to log, else a generated one;
//!    returned in the `x-request-id` response header.
//! 2. [`observe`]: one log line, one performance sample and the Prometheus series per RPC, written
//!    once its final status is known, also when the client cancels or its deadline passes.
//! 3. [`rewrite`]: tonic's own codec errors (oversized or malformed messages) become the domain's.
//! 4. [`readiness`]: brain RPCs are `STORE_UNAVAILABLE` until the store is migrated.
//! 5. [`admission`]: above `max_concurrent_requests` in flight a call is refused at once with
//!    `OVERLOADED`, before its message is decoded; never queued.
//! 6. [`offload`]: admitted calls beyond the first [`offload::INLINE_CALLS`] in flight run on the
//!    work runtime, so admitted work never delays for long the runtime that accepts, refuses and
//!    answers calls (see the module docs).
//! 7. [`authentication`]: the tenant, from the API key (or the implicit tenant in local mode).
//! 8. [`tenant_limits`]: the tenant's rate limits and open-stream bound (`rate_limit_*`); over
//!    one the call is refused with `RATE_LIMITED` or `QUOTA_EXCEEDED`, before its message is
//!    decoded.
//! 9. [`deadline`]: `request_timeout_ms` bounds the handler; past it the call is
//!    `DEADLINE_EXCEEDED`.
//!
//! Health and reflection bypass the stack ([`RpcLayers`] routes by path): probes and `grpcurl`
//! must work while the store is down, without a key and while the server is overloaded.

pub mod admission;
pub mod authentication;
mod context;
pub mod deadline;
pub mod observe;
pub mod offload;
pub mod readiness;
pub mod request_id;
pub mod rewrite;
pub mod tenant_limits;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

pub use context::{Arrival, RequestId, RpcContext};
use futures::future::{BoxFuture, Either};
use http::{HeaderMap, Request, Response};
use tokio::{runtime::Handle, sync::Semaphore};
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, util::BoxCloneService};

pub use self::{readiness::Gate, tenant_limits::TenantLimits};
use crate::{error::Error, perf::Perf};

/// The metadata key of the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Path prefix of the brain services; everything else (health, reflection) bypasses the stack.
const BRAIN_PATH_PREFIX: &str = "/brain.v1.";

/// What the stack needs from the running server.
#[derive(Clone)]
pub struct RpcLayers {
    /// Opened once the store is migrated and the auth mode is known.
    pub gate: Gate,
    /// One permit per admitted RPC in flight (`max_concurrent_requests`).
    pub permits: Arc<Semaphore>,
    /// The runtime admitted calls run on.
    pub work: Handle,
    /// Upper bound on a handler's run time.
    pub request_timeout: Duration,
    /// Largest accepted message, for the oversized-message error.
    pub max_message_bytes: usize,
    /// Where RPC outcomes are recorded.
    pub perf: Perf,
    /// Per-tenant rate limits and quotas.
    pub tenant_limits: TenantLimits,
}

type BrainService = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

impl<S> Layer<S> for RpcLayers
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Service = BrainOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let brain = ServiceBuilder::new()
            .layer(request_id::RequestIdLayer)
            .layer(observe::ObserveLayer::new(self.perf.clone()))
            .layer(rewrite::RewriteLayer::new(self.max_message_bytes))
            .layer(readiness::ReadinessLayer::new(self.gate.clone()))
            .layer(admission::AdmissionLayer::new(self.permits.clone()))
            .layer(offload::OffloadLayer::new(self.work.clone()))
            .layer(authentication::AuthenticationLayer::new(self.gate.clone()))
            .layer(tenant_limits::TenantLimitLayer::new(self.tenant_limits.clone()))
            .layer(deadline::DeadlineLayer::new(self.request_timeout))
            .service(inner.clone());
        BrainOnly { brain: BoxCloneService::new(brain), bypass: inner }
    }
}

/// Sends brain RPCs through the stack and everything else straight to the router.
#[derive(Clone)]
pub struct BrainOnly<S> {
    brain: BrainService,
    bypass: S,
}

impl<S> Service<Request<Body>> for BrainOnly<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future =
        Either<BoxFuture<'static, Result<Response<Body>, Infallible>>, tower::util::Oneshot<S, Request<Body>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call readies its own clone of the path it takes (admission decides in the brain
        // stack's readiness, per call), so the router itself is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        if request.uri().path().starts_with(BRAIN_PATH_PREFIX) {
            // Now, not when the stack below first runs: tonic's deadline clock starts right after.
            request.extensions_mut().insert(Arrival(std::time::Instant::now()));
            Either::Left(Box::pin(self.brain.clone().oneshot(request)))
        } else {
            Either::Right(self.bypass.clone().oneshot(request))
        }
    }
}

/// The service that was polled ready, for a call that uses it later; a fresh clone stays behind
/// (tower's rule: a clone must be readied again before it is called).
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}

/// The method name of a gRPC path (`/brain.v1.ProjectService/GetProject` → `GetProject`).
pub fn method_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// A trailers-only response carrying `error`, the way the stack refuses a call.
pub fn refusal(error: Error) -> Response<Body> {
    Status::from(error).into_http()
}

/// The gRPC status in headers or trailers, if there is one.
pub fn status_in(headers: &HeaderMap) -> Option<(Code, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok().map(Code::from_i32)?;
    let message = headers.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    Some((code, message))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Stand-ins for the layers' unit tests.

    use std::convert::Infallible;

    use http::{Request, Response};
    use tonic::{Status, body::Body};

    use super::status_in;
    use crate::{auth::Authenticator, config::Config, model::TenantId, store::Store};

    /// An authenticator over a store in a fresh directory (opened, not migrated: enough for
    /// requests that never reach the store); keep the directory while it is used.
    pub async fn authenticator(implicit_tenant: Option<TenantId>) -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().expect("a temp dir"); // ok: unit test only (#[cfg(test)]), not on a request path
        let mut config = Config::default();
        config.store.database_url = crate::redact::Secret::url(format!("sqlite://{}/brain.db", dir.path().display()));
        let store = Store::open(&config).await.expect("open"); // ok: unit test only (#[cfg(test)]), not on a request path
        (dir, Authenticator::new(store, std::time::Duration::from_secs(30), implicit_tenant))
    }

    /// A brain request to `method` with `headers`.
    pub fn request(method: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut request = Request::builder().uri(format!("/brain.v1.ProjectService/{method}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).expect("a valid request") // ok: unit test only (#[cfg(test)]), not on a request path
    }

    /// The response a handler gives when it answers OK (grpc-status comes in the trailers).
    pub fn ok() -> Result<Response<Body>, Infallible> {
        Ok(Response::new(Body::empty()))
    }

    /// A trailers-only response with `status`.
    pub fn failed(status: Status) -> Result<Response<Body>, Infallible> {
        Ok(status.into_http())
    }

    /// Every method of the brain.v1 services, from the contract's descriptors.
    pub fn brain_methods() -> Vec<prost_types::MethodDescriptorProto> {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(brain_proto::FILE_DESCRIPTOR_SET).expect("descriptor set"); // ok: unit test only (#[cfg(test)]), not on a request path
        set.file
            .into_iter()
            .filter(|f| f.package() == "brain.v1")
            .flat_map(|f| f.service)
            .flat_map(|s| s.method)
            .collect()
    }

    /// The code and ErrorInfo reason of a trailers-only response (None for a streaming one).
    pub fn outcome(response: &Response<Body>) -> Option<(tonic::Code, String)> {
        let (code, _) = status_in(response.headers())?;
        let status = Status::from_header_map(response.headers())?;
        let reason = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.reason).unwrap_or_default();
        Some((code, reason))
    }
}
