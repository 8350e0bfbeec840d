//! Admission: at most `max_concurrent_requests` brain RPCs in flight across all connections;
//! one more is refused at once with RESOURCE_EXHAUSTED / `OVERLOADED`, never queued.
//!
//! tower's load shedding over a global concurrency limit: the limit's readiness takes a permit
//! or is not ready, and load shedding turns "not ready" into an immediate `Overloaded` error,
//! which becomes the refusal here. The decision is the first thing a call does after the
//! readiness check, before its message is decoded (tonic decodes inside the handler) and
//! before authentication may ask the store. A permit is held until the handler has produced its
//! response head: for a unary call, its whole work; a stream holds one only while it starts.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures::{FutureExt, future::Map};
use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{
    BoxError, Layer, Service, ServiceBuilder,
    limit::{ConcurrencyLimit, GlobalConcurrencyLimitLayer},
    load_shed::{LoadShed, error::Overloaded},
};

use super::refusal;
use crate::error::{Error, Reason};

/// Wraps services with [`Admission`].
#[derive(Clone)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
}

impl AdmissionLayer {
    /// Admits as many calls at once as `permits` has permits.
    pub fn new(permits: Arc<Semaphore>) -> Self {
        Self { permits }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<LoadShed<ConcurrencyLimit<S>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = ServiceBuilder::new()
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(self.permits.clone()))
            .service(inner);
        Admission { inner }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
}

type Recovered<F> = Map<F, fn(Result<Response<Body>, BoxError>) -> Result<Response<Body>, Infallible>>;

impl<S, B> Service<Request<B>> for Admission<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Recovered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Load shedding is always ready (it answers Overloaded instead of waiting); an error from
        // the services below, which do not fail, surfaces from `call` as well.
        self.inner.poll_ready(cx).map(|_| Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.inner.call(request).map(recover as fn(_) -> _)
    }
}

/// The refusal when every permit is taken.
pub fn overloaded() -> Error {
    Error::new(Reason::Overloaded, "too many requests in flight; retry with backoff")
}

fn recover(result: Result<Response<Body>, BoxError>) -> Result<Response<Body>, Infallible> {
    Ok(match result {
        Ok(response) => response,
        Err(error) if error.is::<Overloaded>() => refusal(overloaded()),
        Err(error) => refusal(Error::internal(format!("admission: {error}"))),
    })
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;
    use tonic::Code;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{ok, outcome, request};

    #[tokio::test]
    async fn calls_beyond_the_permits_are_refused_at_once_and_admitted_again_when_one_ends() {
        let permits = Arc::new(Semaphore::new(1));
        let (release, released) = oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let service = AdmissionLayer::new(permits.clone()).layer(service_fn(move |_| {
            let released = released.clone();
            async move {
                // The first call holds its permit until the test releases it.
                if let Some(released) = released.lock().await.take() {
                    let _ = released.await;
                }
                ok()
            }
        }));
        let first = tokio::spawn(service.clone().oneshot(request("Orchestrate", &[])));
        while permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = service.clone().oneshot(request("Orchestrate", &[])).await.expect("infallible");
        assert_eq!(outcome(&refused), Some((Code::ResourceExhausted, "OVERLOADED".into())));

        let _ = release.send(());
        let first = first.await.expect("joined").expect("infallible"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(outcome(&first), None, "the admitted call was served");
        assert_eq!(permits.available_permits(), 1, "its permit came back");
        let again = service.oneshot(request("Orchestrate", &[])).await.expect("infallible");
        assert_eq!(outcome(&again), None);
    }
}
