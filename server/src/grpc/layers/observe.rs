//! One log line, one performance sample and the Prometheus series per brain RPC, written once
//! its final status is known: at once for a trailers-only (error) response, otherwise when the
//! response body yields its trailers (for a server stream, when the stream ends).
//!
//! A call that ends before that still counts, exactly once. Two things drop a call's future or
//! body without a status passing through here: hyper, when the client resets the stream (a
//! cancelled call), and tonic's own `grpc-timeout` handling, which wraps every layer and gives
//! up on the call when the client's deadline passes. So the future and the body finish the RPC
//! when they are dropped unfinished: `DEADLINE_EXCEEDED` when the client's deadline (read from
//! the same `grpc-timeout` header) has passed, `CANCELLED` otherwise.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use brain_proto::code_name;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};
use tracing::{Instrument, instrument::Instrumented};

use super::{Arrival, RequestId, RpcContext, method_name, status_in};
use crate::perf::Perf;

/// Wraps services with [`Observe`].
#[derive(Clone)]
pub struct ObserveLayer {
    perf: Perf,
}

impl ObserveLayer {
    /// Records into `perf` (which also feeds `/metrics` when it is on).
    pub fn new(perf: Perf) -> Self {
        Self { perf }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, perf: self.perf.clone() }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    perf: Perf,
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Observed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = request.extensions().get::<Arrival>().map_or_else(Instant::now, |arrival| arrival.0);
        let deadline = client_timeout(request.headers()).map(|timeout| started + timeout);
        let method = method_name(request.uri().path()).to_owned();
        let request_id = request.extensions().get::<RequestId>().map(|id| id.0.clone()).unwrap_or_default();
        let context = Arc::new(RpcContext::default());
        request.extensions_mut().insert(context.clone());
        let span = tracing::info_span!(
            "rpc",
            %method,
            %request_id,
            tenant = tracing::field::Empty,
            project = tracing::field::Empty
        );
        let inner = span.in_scope(|| self.inner.call(request)).instrument(span);
        let finish = Finish { perf: self.perf.clone(), method, request_id, context, started, deadline };
        Observed { inner: Box::pin(inner), finish: Some(finish) }
    }
}

/// The inner call, finishing its RPC when it resolves or when it is dropped unresolved.
pub struct Observed<F> {
    inner: Pin<Box<Instrumented<F>>>,
    finish: Option<Finish>,
}

impl<F, E> Future for Observed<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = ready!(self.inner.as_mut().poll(cx));
        let Some(finish) = self.finish.take() else { return Poll::Ready(result) };
        Poll::Ready(match result {
            Ok(response) => Ok(match status_in(response.headers()) {
                // Trailers-only: the status is final now.
                Some((code, _)) => {
                    finish.done(code);
                    response
                }
                None => response.map(|body| Body::new(Tracked { body, finish: Some(finish) })),
            }),
            Err(error) => {
                // The stack's services do not fail (refusals are responses); count it anyway.
                finish.done(Code::Unknown);
                Err(error)
            }
        })
    }
}

impl<F> Drop for Observed<F> {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.abandoned();
        }
    }
}

/// A call dropped this close before its client deadline counts as past it: a client that gives
/// up at its deadline started the clock before sending, so its reset arrives a little early.
const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// What is needed to finish an RPC once its status is known.
struct Finish {
    perf: Perf,
    method: String,
    request_id: String,
    context: Arc<RpcContext>,
    started: Instant,
    /// When the client's `grpc-timeout` runs out.
    deadline: Option<Instant>,
}

impl Finish {
    /// Records the performance sample and writes the RPC's log line.
    fn done(self, code: Code) {
        let elapsed = self.started.elapsed();
        let tenant = self.context.tenant().map(|t| t.as_str());
        let project = self.context.project();
        self.perf.record_rpc(&self.method, code_name(code), tenant, project, elapsed);
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

    /// Finishes an RPC whose future or body was dropped before its status was known.
    fn abandoned(self) {
        let code = match self.deadline {
            Some(deadline) if Instant::now() + DEADLINE_SLACK >= deadline => Code::DeadlineExceeded,
            _ => Code::Cancelled,
        };
        self.done(code);
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
            finish.abandoned();
        }
    }
}

/// The client's `grpc-timeout` (gRPC over HTTP/2: up to 8 digits and a unit of H, M, S, m, u or n).
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{failed, ok, request};

    fn count(perf: &Perf, code: &str) -> u64 {
        perf.rpc_count("GetProject", code)
    }

    #[test]
    fn grpc_timeouts_are_read_like_tonic_reads_them() {
        let header = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", v.parse().expect("ascii"));
            client_timeout(&headers)
        };
        assert_eq!(header("10m"), Some(Duration::from_millis(10)));
        assert_eq!(header("2S"), Some(Duration::from_secs(2)));
        assert_eq!(header("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(header("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(header("123456789m"), None, "at most 8 digits");
        assert_eq!(header("10x"), None);
        assert_eq!(header("m"), None);
        assert_eq!(client_timeout(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_trailers_only_response_is_counted_at_once() {
        let perf = Perf::default();
        let service = ObserveLayer::new(perf.clone()).layer(service_fn(|_| async { failed(Status::not_found("no")) }));
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(status_in(response.headers()).map(|s| s.0), Some(Code::NotFound));
        assert_eq!(count(&perf, "NOT_FOUND"), 1);
    }

    #[tokio::test]
    async fn a_streamed_response_is_counted_when_its_trailers_pass() {
        use http_body_util::BodyExt;

        let perf = Perf::default();
        let service = ObserveLayer::new(perf.clone()).layer(service_fn(|_| async {
            let (mut parts, ()) = Response::new(()).into_parts();
            parts.headers.insert("content-type", "application/grpc".parse().expect("ascii"));
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().expect("ascii"));
            let body = http_body_util::StreamBody::new(futures::stream::iter([
                Ok::<_, Status>(Frame::data(bytes::Bytes::from_static(b"\0\0\0\0\0"))),
                Ok(Frame::trailers(trailers)),
            ]));
            Ok::<_, Infallible>(Response::from_parts(parts, Body::new(body)))
        }));
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(count(&perf, "OK"), 0, "not before the trailers");
        let collected = response.into_body().collect().await.expect("a body");
        assert!(collected.trailers().is_some());
        assert_eq!(count(&perf, "OK"), 1);
    }

    #[tokio::test]
    async fn a_call_dropped_before_its_response_is_cancelled() {
        let perf = Perf::default();
        let service = ObserveLayer::new(perf.clone())
            .layer(service_fn(|_| std::future::pending::<Result<Response<Body>, Infallible>>()));
        let call = service.oneshot(request("GetProject", &[("grpc-timeout", "10S")]));
        assert!(tokio::time::timeout(Duration::from_millis(20), call).await.is_err());
        assert_eq!(count(&perf, "CANCELLED"), 1);
        assert_eq!(count(&perf, "DEADLINE_EXCEEDED"), 0);
    }

    #[tokio::test]
    async fn a_call_dropped_after_the_client_deadline_is_deadline_exceeded() {
        let perf = Perf::default();
        let service = ObserveLayer::new(perf.clone())
            .layer(service_fn(|_| std::future::pending::<Result<Response<Body>, Infallible>>()));
        let call = service.oneshot(request("GetProject", &[("grpc-timeout", "5m")]));
        assert!(tokio::time::timeout(Duration::from_millis(30), call).await.is_err());
        assert_eq!(count(&perf, "DEADLINE_EXCEEDED"), 1);
        assert_eq!(count(&perf, "CANCELLED"), 0);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_trailers_is_cancelled_once() {
        let perf = Perf::default();
        let service = ObserveLayer::new(perf.clone()).layer(service_fn(|_| async { ok() }));
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(count(&perf, "CANCELLED"), 0);
        drop(response);
        assert_eq!(count(&perf, "CANCELLED"), 1);
        assert_eq!(perf.rpc_count("GetProject", "OK"), 0);
    }
}
