//! The tower layer every RPC passes through, in this order:
//! readiness → concurrency limit → authentication → timeout → handler, then
//! one log line per RPC with its request id, tenant, project, method, code
//! and duration, and one performance sample.
//!
//! An RPC finishes when its final status is known: at once for a
//! trailers-only (error) response, otherwise when the response body yields
//! its trailers — for a server stream, when the stream ends. A body dropped
//! before its trailers (the client went away) finishes as CANCELLED.
//!
//! Health and reflection skip readiness, limits and authentication: probes
//! and `grpcurl` must work while the store is down and without a key.

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
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

/// Per-RPC facts handlers add for the log line and the performance sample;
/// see [`super::note_project`].
#[derive(Debug, Default)]
pub struct RpcContext {
    project_id: OnceLock<String>,
}

impl RpcContext {
    /// Records the project the RPC is about; see [`super::note_project`].
    pub fn note_project(&self, project_id: &str) {
        if crate::validate::id("project_id", project_id).is_ok() && self.project_id.set(project_id.to_owned()).is_ok() {
            tracing::Span::current().record("project", project_id);
        }
    }

    /// The project, when a handler noted one.
    pub fn project(&self) -> Option<&str> {
        self.project_id.get().map(String::as_str)
    }
}

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
            let span = tracing::info_span!(
                "rpc",
                %method,
                %request_id,
                tenant = tracing::field::Empty,
                project = tracing::field::Empty
            );
            let context = Arc::new(RpcContext::default());
            request.extensions_mut().insert(context.clone());

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
            let head_status = status_in(response.headers());
            if let Some((code, message)) = &head_status
                && let Some(status) = oversized_message(*code, message, state.max_message_bytes)
                    .or_else(|| malformed_message(*code, message))
            {
                response = status.into_http();
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            let finish = Finish { state, method, request_id, tenant: tenant_seen, context, started };
            match status_in(response.headers()) {
                // Trailers-only: the status is final now.
                Some((code, _)) => {
                    finish.done(code);
                    Ok(response)
                }
                None => Ok(response.map(|body| Body::new(Tracked { body, finish: Some(finish) }))),
            }
        })
    }
}

/// What is needed to finish an RPC once its status is known.
struct Finish {
    state: Arc<RpcState>,
    method: String,
    request_id: String,
    tenant: Option<TenantId>,
    context: Arc<RpcContext>,
    started: Instant,
}

impl Finish {
    /// Records the performance sample and writes the RPC's log line.
    fn done(self, code: Code) {
        let elapsed = self.started.elapsed();
        let tenant = self.tenant.as_ref().map(TenantId::as_str);
        let project = self.context.project();
        self.state.perf.record_rpc(&self.method, code_name(code), tenant, project, elapsed);
        let duration_ms = elapsed.as_secs_f64() * 1e3;
        tracing::info!(
            request_id = %self.request_id,
            tenant = tenant.unwrap_or(""),
            project = project.unwrap_or(""),
            method = %self.method,
            code = code_name(code),
            duration_ms = format_args!("{duration_ms:.2}"),
            "rpc finished"
        );
    }
}

/// A response body that finishes its RPC when the trailers pass (or when it is dropped early).
struct Tracked {
    body: Body,
    finish: Option<Finish>,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Status>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(|t| status_in(t).map_or(Code::Unknown, |s| s.0)),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            // A gRPC response always ends with trailers; ending without them is a broken stream.
            Poll::Ready(None) => Some(Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(finish) = self.finish.take()
        {
            finish.done(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // Until the status is seen, keep hyper polling, so a body that ends without trailers is noticed.
        self.finish.is_none() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.done(Code::Cancelled);
        }
    }
}

/// The gRPC status in headers or trailers, if there is one.
fn status_in(headers: &HeaderMap) -> Option<(Code, String)> {
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
