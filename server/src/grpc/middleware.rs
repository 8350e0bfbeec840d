//! The tower layer every RPC passes through, in this order:
//! readiness → concurrency limit → authentication → timeout → handler, then
//! one log line per RPC with its request id, tenant, method, code and duration.
//!
//! Health and reflection skip readiness, limits and authentication: probes
//! and `grpcurl` must work while the store is down and without a key.

use std::{
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tokio::sync::Semaphore;
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};
use tracing::Instrument;

use super::status::{code_name, malformed_message, oversized_message};
use crate::{
    auth::Authenticator,
    error::{Error, Reason},
    model::{TenantId, new_id},
    perf::Perf,
};

/// The request id of an RPC: the client's `x-request-id`, or a generated one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Shared state of the layer.
pub struct RpcState {
    /// Set once the store is migrated and the auth mode is known; until then brain RPCs are UNAVAILABLE.
    pub auth: OnceLock<Arc<Authenticator>>,
    /// RPCs in flight; streams hold a permit only while starting.
    pub permits: Arc<Semaphore>,
    /// Upper bound on a handler's run time.
    pub request_timeout: Duration,
    /// Largest accepted message, for the oversized-message error.
    pub max_message_bytes: usize,
    /// Where RPC outcomes are recorded.
    pub perf: Perf,
}

/// Wraps services with [`RpcService`].
#[derive(Clone)]
pub struct RpcLayer {
    state: Arc<RpcState>,
}

impl RpcLayer {
    /// A layer over shared state.
    pub fn new(state: Arc<RpcState>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService { inner, state: self.state.clone() }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    state: Arc<RpcState>,
}

impl<S, B> Service<Request<B>> for RpcService<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Take the service that was polled ready; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let started = Instant::now();
            let path = request.uri().path().to_owned();
            if !path.starts_with("/brain.v1.") {
                return inner.call(request).await;
            }
            let method = path.rsplit('/').next().unwrap_or_default().to_owned();
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map_or_else(new_id, str::to_owned);
            let span = tracing::info_span!("rpc", %method, %request_id, tenant = tracing::field::Empty);

            let mut tenant_seen: Option<TenantId> = None;
            let outcome: Result<Response<Body>, Status> = async {
                let auth = state.auth.get().ok_or_else(|| {
                    Status::from(Error::new(Reason::StoreUnavailable, "brain is starting; retry shortly"))
                })?;
                let _permit = state.permits.clone().try_acquire_owned().map_err(|_| {
                    Status::from(Error::new(Reason::Overloaded, "too many requests in flight; retry with backoff"))
                })?;
                let header = request.headers().get("authorization").and_then(|v| v.to_str().ok());
                let tenant: TenantId = auth.authenticate(header).await.map_err(Status::from)?;
                tracing::Span::current().record("tenant", tenant.as_str());
                tenant_seen = Some(tenant.clone());
                request.extensions_mut().insert(tenant);
                request.extensions_mut().insert(RequestId(request_id.clone()));
                match tokio::time::timeout(state.request_timeout, inner.call(request)).await {
                    Ok(Ok(response)) => Ok(response),
                    // The inner service's error type is tonic's Infallible in practice.
                    Ok(Err(_)) => Err(Status::from(Error::internal("the service failed to produce a response"))),
                    Err(_) => Err(Status::from(Error::new(
                        Reason::DeadlineExceeded,
                        format!("the server gave up after {} ms", state.request_timeout.as_millis()),
                    ))),
                }
            }
            .instrument(span.clone())
            .await;

            let mut response = outcome.unwrap_or_else(Status::into_http);
            let (code, message) = status_of(&response);
            if let Some(status) =
                oversized_message(code, &message, state.max_message_bytes).or_else(|| malformed_message(code, &message))
            {
                response = status.into_http();
            }
            let (code, _) = status_of(&response);
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            let elapsed = started.elapsed();
            state.perf.record_rpc(&method, code_name(code), tenant_seen.as_ref().map(TenantId::as_str), None, elapsed);
            span.in_scope(|| {
                let duration_ms = elapsed.as_secs_f64() * 1e3;
                tracing::info!(code = code_name(code), duration_ms = format_args!("{duration_ms:.2}"), "rpc finished");
            });
            Ok(response)
        })
    }
}

/// The status in a response's headers: present for errors (trailers-only
/// responses); a response without one is OK so far (unary OK or a stream that started).
fn status_of(response: &Response<Body>) -> (Code, String) {
    let headers = response.headers();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32);
    let message = headers.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    (code, message)
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
