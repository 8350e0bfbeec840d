//! Refuses brain RPCs with `STORE_UNAVAILABLE` until the [`Gate`] opens: the server listens
//! (and serves health and reflection) before the store is connected and migrated, and the auth
//! mode is known only then.

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use futures::future::Either;
use http::{Request, Response};
use tonic::body::Body;
use tower::{Layer, Service};

use super::refusal;
use crate::{
    auth::Authenticator,
    error::{Error, Reason},
};

/// Opened once, by startup, with the authenticator of the auth mode it settled on.
#[derive(Clone, Default)]
pub struct Gate(Arc<OnceLock<Arc<Authenticator>>>);

impl Gate {
    /// Opens brain RPCs; later calls are ignored (the auth mode is decided once per process).
    pub fn open(&self, authenticator: Authenticator) {
        let _ = self.0.set(Arc::new(authenticator));
    }

    /// Whether brain RPCs are served.
    pub fn is_open(&self) -> bool {
        self.0.get().is_some()
    }

    /// The authenticator, once open.
    pub fn authenticator(&self) -> Option<&Arc<Authenticator>> {
        self.0.get()
    }
}

/// The refusal before the gate opens.
pub fn starting() -> Error {
    Error::new(Reason::StoreUnavailable, "brain is starting; retry shortly")
}

/// Wraps services with [`Readiness`].
#[derive(Clone)]
pub struct ReadinessLayer {
    gate: Gate,
}

impl ReadinessLayer {
    /// Refuses until `gate` opens.
    pub fn new(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<S> Layer<S> for ReadinessLayer {
    type Service = Readiness<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Readiness { inner, gate: self.gate.clone(), open: false }
    }
}

/// See the module docs.
pub struct Readiness<S> {
    inner: S,
    gate: Gate,
    /// Whether the gate was open when this call was readied; `call` follows that decision.
    open: bool,
}

impl<S: Clone> Clone for Readiness<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), gate: self.gate.clone(), open: false }
    }
}

impl<S, B> Service<Request<B>> for Readiness<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<std::future::Ready<Result<Response<Body>, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.open = self.gate.is_open();
        // Only an open gate readies the services below (admission takes its permit then).
        if self.open { self.inner.poll_ready(cx) } else { Poll::Ready(Ok(())) }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if std::mem::take(&mut self.open) {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(std::future::ready(Ok(refusal(starting()))))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{authenticator, ok, outcome, request};

    #[tokio::test]
    async fn brain_rpcs_are_unavailable_until_the_gate_opens() {
        let gate = Gate::default();
        let service = ReadinessLayer::new(gate.clone()).layer(service_fn(|_| async { ok() }));
        let response = service.clone().oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::Unavailable, "STORE_UNAVAILABLE".into())));

        let (_dir, authenticator) = authenticator(None).await;
        gate.open(authenticator);
        let response = service.oneshot(request("GetProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None, "served");
    }
}
