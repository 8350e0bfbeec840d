//! `grpc.health.v1.Health`: tonic-health's statuses, with Watch streams that
//! end on shutdown.
//!
//! A Watch stream never finishes by itself, and graceful shutdown waits for
//! every open stream, so one watcher (gRPC clients with client-side health
//! checking keep one open) would hold every shutdown for the whole grace
//! period and then be cut. On shutdown each watcher gets NOT_SERVING, once,
//! and its stream ends.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::{
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_check_response::ServingStatus,
        health_server::{Health, HealthServer},
    },
    server::{HealthReporter, HealthService},
};

/// The health service over `reporter`'s statuses; Watch streams end when `shutdown` is cancelled.
pub fn service(reporter: &HealthReporter, shutdown: CancellationToken) -> HealthServer<ShutdownAwareHealth> {
    HealthServer::new(ShutdownAwareHealth { inner: HealthService::from_health_reporter(reporter.clone()), shutdown })
}

/// See the module docs.
pub struct ShutdownAwareHealth {
    inner: HealthService,
    shutdown: CancellationToken,
}

type Updates = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Health for ShutdownAwareHealth {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = Updates;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let updates = self.inner.watch(request).await?.into_inner();
        Ok(Response::new(until_shutdown(Box::pin(updates), self.shutdown.clone())))
    }
}

struct Watcher {
    updates: Updates,
    shutdown: CancellationToken,
    last: Option<ServingStatus>,
    done: bool,
}

/// Passes `updates` through until `shutdown`, then makes sure the last status
/// sent is NOT_SERVING and ends.
fn until_shutdown(updates: Updates, shutdown: CancellationToken) -> Updates {
    let watcher = Watcher { updates, shutdown, last: None, done: false };
    Box::pin(futures::stream::unfold(watcher, |mut w| async move {
        if w.done {
            return None;
        }
        tokio::select! {
            // An update that is already there goes out first, so NOT_SERVING is not sent twice.
            biased;
            item = w.updates.next() => {
                let item = item?;
                if let Ok(response) = &item {
                    w.last = Some(response.status());
                }
                Some((item, w))
            }
            () = w.shutdown.cancelled() => {
                w.done = true;
                if w.last == Some(ServingStatus::NotServing) {
                    None
                } else {
                    let last = HealthCheckResponse { status: ServingStatus::NotServing as i32 };
                    Some((Ok(last), w))
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: ServingStatus) -> Result<HealthCheckResponse, Status> {
        Ok(HealthCheckResponse { status: s as i32 })
    }

    #[tokio::test]
    async fn watch_ends_with_one_not_serving_on_shutdown() {
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let updates: Updates = Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        let mut stream = until_shutdown(updates, shutdown.clone());
        tx.send(status(ServingStatus::Serving)).expect("send"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(stream.next().await.and_then(Result::ok).map(|r| r.status()), Some(ServingStatus::Serving));
        shutdown.cancel();
        assert_eq!(stream.next().await.and_then(Result::ok).map(|r| r.status()), Some(ServingStatus::NotServing));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_not_serving_update_before_shutdown_is_not_repeated() {
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let updates: Updates = Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
        let mut stream = until_shutdown(updates, shutdown.clone());
        tx.send(status(ServingStatus::NotServing)).expect("send"); // ok: unit test only (#[cfg(test)]), not on a request path
        shutdown.cancel();
        assert_eq!(stream.next().await.and_then(Result::ok).map(|r| r.status()), Some(ServingStatus::NotServing));
        assert!(stream.next().await.is_none());
    }
}
