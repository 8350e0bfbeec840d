//! Runs an admitted call on the work runtime.
//!
//! The gRPC server (its accept loop, its HTTP/2 connections, the task of every stream, and the
//! layers up to admission) runs on a runtime of its own; the domain work of an admitted call
//! (authentication, decoding, the handler) runs on the work runtime with the store and the
//! background tasks. On one shared runtime, tokio's run queue is first in, first out: when the
//! CPU is saturated, a refusal, a health check or a connection reading its next frames waits
//! behind every admitted call's slice of work, so at 5,000 calls in flight OVERLOADED took
//! seconds to arrive (docs/PERFORMANCE.md, "Overload"). With two runtimes the operating
//! system's scheduler shares the cores between their threads, and the server's threads, which
//! run briefly and sleep, get a core promptly.
//!
//! Dropping the call (the client cancelled, its deadline passed) aborts the task.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use tokio::{runtime::Handle, task::JoinHandle};
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{refusal, take_ready};
use crate::error::Error;

/// Wraps services with [`Offload`].
#[derive(Clone)]
pub struct OffloadLayer {
    work: Handle,
}

impl OffloadLayer {
    /// Runs calls on `work`.
    pub fn new(work: Handle) -> Self {
        Self { work }
    }
}

impl<S> Layer<S> for OffloadLayer {
    type Service = Offload<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Offload { inner, work: self.work.clone() }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Offload<S> {
    inner: S,
    work: Handle,
}

impl<S, B> Service<Request<B>> for Offload<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Offloaded;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        // The inner services are called on the work runtime too, so their timers live there.
        let task = self.work.spawn(async move { inner.call(request).await }.in_current_span());
        Offloaded { task }
    }
}

/// The call's task; aborted when dropped unfinished.
pub struct Offloaded {
    task: JoinHandle<Result<Response<Body>, Infallible>>,
}

impl Future for Offloaded {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(Pin::new(&mut self.task).poll(cx)) {
            Ok(result) => result,
            // A panic in a handler, or the work runtime shutting down under the call.
            Err(error) => Ok(refusal(Error::internal(format!("the call's task ended without a response: {error}")))),
        })
    }
}

impl Drop for Offloaded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        time::Duration,
    };

    use tonic::Code;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{ok, outcome, request};

    fn work_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-work")
            .enable_all()
            .build()
            .expect("a runtime") // ok: unit test only (#[cfg(test)]), not on a request path
    }

    #[tokio::test]
    async fn calls_run_on_the_work_runtime() {
        let work = work_runtime();
        let service = OffloadLayer::new(work.handle().clone()).layer(service_fn(|_| async {
            let thread = std::thread::current().name().unwrap_or_default().to_owned();
            assert_eq!(thread, "test-work");
            ok()
        }));
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None);
        work.shutdown_background();
    }

    #[tokio::test]
    async fn a_dropped_call_is_aborted_and_a_panic_is_an_internal_error() {
        let work = work_runtime();
        let finished = Arc::new(AtomicBool::new(false));
        let seen = finished.clone();
        let slow = OffloadLayer::new(work.handle().clone()).layer(service_fn(move |_| {
            let seen = seen.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                seen.store(true, Ordering::SeqCst);
                ok()
            }
        }));
        assert!(
            tokio::time::timeout(Duration::from_millis(20), slow.oneshot(request("GetProject", &[]))).await.is_err()
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!finished.load(Ordering::SeqCst), "the handler was dropped with the call");

        let panicking = OffloadLayer::new(work.handle().clone()).layer(service_fn(|_| async {
            if std::hint::black_box(true) {
                panic!("a handler bug");
            }
            ok()
        }));
        let response = panicking.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::Internal, "INTERNAL".into())));
        work.shutdown_background();
    }
}
