//! Runs an admitted call on the serving runtime while few are in flight there, else on the
//! work runtime.
//!
//! The gRPC server (its accept loop, its HTTP/2 connections, the task of every stream, and the
//! layers up to admission) runs on a runtime of its own; background work and the store's
//! connections run on the work runtime. On one shared runtime, tokio's run queue is first in,
//! first out: when the CPU is saturated, a refusal, a health check or a connection reading its
//! next frames waits behind every admitted call's slice of work, so at 5,000 calls in flight
//! OVERLOADED took seconds to arrive (docs/PERFORMANCE.md, "Overload"). With two runtimes the
//! operating system's scheduler shares the cores between their threads, and the server's
//! threads, which run briefly and sleep, get a core promptly.
//!
//! Handing every call to the other runtime has a price, though: each call then crosses threads
//! several times (the spawn, the request body, the response), which cost GetProject ~20% more
//! CPU per call and ~20% of its throughput at 32 calls in flight. So up to [`INLINE_CALLS`]
//! calls at a time run where they arrived (a refusal then waits behind at most that many slices
//! of work) and only the ones beyond are offloaded.
//!
//! Dropping the call (the client cancelled, its deadline passed) drops or aborts its handler; a
//! panicking handler answers INTERNAL on either path.

use std::{
    convert::Infallible,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
};

use futures::{FutureExt, future::CatchUnwind};
use http::{Request, Response};
use tokio::{runtime::Handle, task::JoinHandle};
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use super::{refusal, take_ready};
use crate::error::Error;

/// Admitted calls that run on the serving runtime at once; the rest run on the work runtime.
/// Each is a few slices of work of ~0.1 ms, so a refusal queued behind all of them still
/// leaves within a few milliseconds.
pub const INLINE_CALLS: usize = 64;

/// Wraps services with [`Offload`].
#[derive(Clone)]
pub struct OffloadLayer {
    work: Handle,
    inline_limit: usize,
}

impl OffloadLayer {
    /// Runs up to [`INLINE_CALLS`] calls in place and the rest on `work`.
    pub fn new(work: Handle) -> Self {
        Self::with_inline_limit(work, INLINE_CALLS)
    }

    /// Runs up to `inline_limit` calls in place and the rest on `work`.
    pub fn with_inline_limit(work: Handle, inline_limit: usize) -> Self {
        Self { work, inline_limit }
    }
}

impl<S> Layer<S> for OffloadLayer {
    type Service = Offload<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Offload { inner, work: self.work.clone(), inline: Arc::default(), inline_limit: self.inline_limit }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Offload<S> {
    inner: S,
    work: Handle,
    /// Calls running in place now.
    inline: Arc<AtomicUsize>,
    inline_limit: usize,
}

impl<S, B> Service<Request<B>> for Offload<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Offloaded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        if let Some(slot) = InlineSlot::take(&self.inline, self.inline_limit) {
            let call = Box::pin(AssertUnwindSafe(inner.call(request)).catch_unwind());
            return Offloaded::Inline { call, _slot: slot };
        }
        // The inner services are called on the work runtime too, so their timers live there.
        let task = self.work.spawn(async move { inner.call(request).await }.in_current_span());
        Offloaded::Spawned { task }
    }
}

/// One of the [`INLINE_CALLS`]; given back when the call ends or is dropped.
pub struct InlineSlot(Arc<AtomicUsize>);

impl InlineSlot {
    fn take(count: &Arc<AtomicUsize>, limit: usize) -> Option<Self> {
        count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok()?;
        Some(Self(count.clone()))
    }
}

impl Drop for InlineSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The call, running in place or as a task of the work runtime (aborted when dropped unfinished).
pub enum Offloaded<F> {
    /// Polled by the caller's task.
    Inline {
        /// The handler, with its panic caught.
        call: Pin<Box<CatchUnwind<AssertUnwindSafe<F>>>>,
        /// Held until the call ends.
        _slot: InlineSlot,
    },
    /// Running on the work runtime.
    Spawned {
        /// The call's task.
        task: JoinHandle<Result<Response<Body>, Infallible>>,
    },
}

impl<F> Future for Offloaded<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Both variants are Unpin (a pinned box and a join handle).
        let outcome = match self.get_mut() {
            Offloaded::Inline { call, .. } => ready!(call.as_mut().poll(cx)).map_err(|_| "it panicked".to_owned()),
            Offloaded::Spawned { task } => ready!(Pin::new(task).poll(cx)).map_err(|error| error.to_string()),
        };
        Poll::Ready(match outcome {
            Ok(result) => result,
            // A panic in a handler, or the work runtime shutting down under the call.
            Err(error) => Ok(refusal(Error::internal(format!("the call's task ended without a response: {error}")))),
        })
    }
}

impl<F> Drop for Offloaded<F> {
    fn drop(&mut self) {
        if let Offloaded::Spawned { task } = self {
            task.abort();
        }
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

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn calls_run_in_place_up_to_the_limit_and_on_the_work_runtime_beyond() {
        let work = work_runtime();
        let release = Arc::new(tokio::sync::Notify::new());
        let holding = Arc::new(AtomicBool::new(true));
        let (wait, hold) = (release.clone(), holding.clone());
        let service = OffloadLayer::with_inline_limit(work.handle().clone(), 2).layer(service_fn(move |_| {
            let (wait, hold) = (wait.clone(), hold.clone());
            async move {
                let thread = thread_name();
                if thread != "test-work" && hold.load(Ordering::SeqCst) {
                    wait.notified().await; // the in-place calls stay in flight
                }
                Ok::<_, Infallible>(Response::new(Body::new(thread)))
            }
        }));
        let first = tokio::spawn(service.clone().oneshot(request("GetProject", &[])));
        let second = tokio::spawn(service.clone().oneshot(request("GetProject", &[])));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = tokio::time::timeout(Duration::from_secs(5), service.clone().oneshot(request("GetProject", &[])))
            .await
            .expect("the third call ran in place and waits there")
            .expect("infallible");
        assert_eq!(body_text(third).await, "test-work", "the third call found both in-place slots taken");
        holding.store(false, Ordering::SeqCst);
        release.notify_waiters();
        for call in [first, second] {
            let response = call.await.expect("joined").expect("infallible");
            assert_ne!(body_text(response).await, "test-work");
        }
        let fourth = service.oneshot(request("GetProject", &[])).await;
        assert_ne!(body_text(fourth.expect("infallible")).await, "test-work", "the slots came back");
        work.shutdown_background();
    }

    async fn body_text(response: Response<Body>) -> String {
        use http_body_util::BodyExt;
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn calls_beyond_the_limit_run_on_the_work_runtime() {
        let work = work_runtime();
        let service = OffloadLayer::with_inline_limit(work.handle().clone(), 0).layer(service_fn(|_| async {
            assert_eq!(thread_name(), "test-work");
            ok()
        }));
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None);
        work.shutdown_background();
    }

    #[tokio::test]
    async fn a_dropped_call_is_aborted_and_a_panic_is_an_internal_error() {
        let work = work_runtime();
        for inline_limit in [0, INLINE_CALLS] {
            let finished = Arc::new(AtomicBool::new(false));
            let seen = finished.clone();
            let layer = OffloadLayer::with_inline_limit(work.handle().clone(), inline_limit);
            let slow = layer.clone().layer(service_fn(move |_| {
                let seen = seen.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    seen.store(true, Ordering::SeqCst);
                    ok()
                }
            }));
            assert!(
                tokio::time::timeout(Duration::from_millis(20), slow.oneshot(request("GetProject", &[])))
                    .await
                    .is_err()
            );
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert!(!finished.load(Ordering::SeqCst), "the handler was dropped with the call ({inline_limit})");

            let panicking = layer.layer(service_fn(|_| async {
                if std::hint::black_box(true) {
                    panic!("a handler bug");
                }
                ok()
            }));
            let response = panicking.oneshot(request("GetProject", &[])).await.expect("infallible");
            assert_eq!(outcome(&response), Some((Code::Internal, "INTERNAL".into())), "inline limit {inline_limit}");
        }
        work.shutdown_background();
    }
}
