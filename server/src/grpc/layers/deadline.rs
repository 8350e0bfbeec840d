//! Bounds a handler's run time by `request_timeout_ms` (tower's timeout); past it the call ends
//! with DEADLINE_EXCEEDED / `DEADLINE_EXCEEDED` and the handler is dropped. A shorter client
//! deadline (`grpc-timeout`) is enforced by tonic around the whole stack.
//!
//! Client-streaming methods (ImportProject) are exempt: the handler reads the client's whole
//! stream, which takes as long as the project is big. The client's own deadline and the tenant's
//! open-stream bound (`rate_limit_open_streams`) bound it instead.

use std::{
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::body::Body;
use tower::{
    BoxError, Layer, Service,
    timeout::{Timeout, error::Elapsed},
};

use super::{method_name, refusal};
use crate::error::{Error, Reason};

/// The client-streaming methods, which the timeout does not apply to (see the module docs); a
/// test checks the list against the contract, so a new client-streaming RPC is not cut short.
const UNBOUNDED_METHODS: [&str; 1] = ["ImportProject"];

/// Wraps services with [`Deadline`].
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    /// Gives handlers `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner: Timeout::new(inner, self.timeout), timeout: self.timeout }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: Timeout<S>,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The handlers are always ready; an error would surface from `call` as well.
        self.inner.poll_ready(cx).map(|_| Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if UNBOUNDED_METHODS.contains(&method_name(request.uri().path())) {
            let response = self.inner.get_mut().call(request);
            return Box::pin(async move { Ok(response.await.unwrap_or_else(|_| no_response())) });
        }
        let response = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            Ok(match response.await {
                Ok(response) => response,
                Err(error) if error.is::<Elapsed>() => refusal(Error::new(
                    Reason::DeadlineExceeded,
                    format!("the server gave up after {} ms", timeout.as_millis()),
                )),
                Err(_) => no_response(),
            })
        })
    }
}

/// The answer when the inner service fails (its error type is tonic's Infallible in practice).
fn no_response() -> Response<Body> {
    refusal(Error::internal("the service failed to produce a response"))
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{brain_methods, ok, outcome, request};

    #[test]
    fn every_client_streaming_method_is_unbounded() {
        let methods = brain_methods();
        let mut client_streaming: Vec<&str> =
            methods.iter().filter(|m| m.client_streaming()).map(|m| m.name()).collect();
        client_streaming.sort_unstable();
        assert_eq!(client_streaming, UNBOUNDED_METHODS);
    }

    #[tokio::test]
    async fn a_handler_past_the_timeout_is_deadline_exceeded() {
        let slow = DeadlineLayer::new(Duration::from_millis(20)).layer(service_fn(|_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ok()
        }));
        let response = slow.oneshot(request("Orchestrate", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), Some((Code::DeadlineExceeded, "DEADLINE_EXCEEDED".into())));

        let quick = DeadlineLayer::new(Duration::from_millis(500)).layer(service_fn(|_| async { ok() }));
        let response = quick.oneshot(request("Orchestrate", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None);
    }

    #[tokio::test]
    async fn an_import_runs_as_long_as_its_stream() {
        let long_import = DeadlineLayer::new(Duration::from_millis(20)).layer(service_fn(|_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            ok()
        }));
        let response = long_import.oneshot(request("ImportProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None);
    }
}
