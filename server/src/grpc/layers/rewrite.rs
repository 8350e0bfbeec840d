//! Rewrites the two errors tonic's codec produces by itself, so they follow the domain's rules
//! like every other error: an oversized message (tonic says OUT_OF_RANGE; gRPC asks for
//! RESOURCE_EXHAUSTED → `MESSAGE_TOO_LARGE` with its `limit`) and a body that is not valid
//! protobuf (tonic says INTERNAL, blaming the server for the client's bytes → INVALID_ARGUMENT /
//! `INVALID_FIELD`). The codec runs inside the handler, so both arrive as a trailers-only
//! response; nothing else is touched.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::body::Body;
use tower::{Layer, Service};

use super::status_in;
use crate::grpc::status::{malformed_message, oversized_message};

/// Wraps services with [`Rewrite`].
#[derive(Debug, Clone, Copy)]
pub struct RewriteLayer {
    max_message_bytes: usize,
}

impl RewriteLayer {
    /// `max_message_bytes` is the limit named in the oversized-message error.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> Layer<S> for RewriteLayer {
    type Service = Rewrite<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rewrite { inner, max_message_bytes: self.max_message_bytes }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Rewrite<S> {
    inner: S,
    max_message_bytes: usize,
}

impl<S, B> Service<Request<B>> for Rewrite<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let response = self.inner.call(request);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let response = response.await?;
            let Some((code, message)) = status_in(response.headers()) else { return Ok(response) };
            match oversized_message(code, &message, limit).or_else(|| malformed_message(code, &message)) {
                Some(status) => Ok(status.into_http()),
                None => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::grpc::layers::testing::{failed, ok, outcome, request};

    async fn rewritten(status: Status) -> Option<(Code, String)> {
        let service = RewriteLayer::new(1024).layer(service_fn(move |_| {
            let status = Status::new(status.code(), status.message());
            async move { failed(status) }
        }));
        let response = service.oneshot(request("CreateProject", &[])).await.expect("infallible");
        outcome(&response)
    }

    #[tokio::test]
    async fn codec_errors_become_domain_errors() {
        let oversized =
            Status::out_of_range("Error, decoded message length too large: found 2048 bytes, the limit is: 1024 bytes");
        assert_eq!(rewritten(oversized).await, Some((Code::ResourceExhausted, "MESSAGE_TOO_LARGE".into())));
        let malformed =
            Status::internal("failed to decode Protobuf message: CreateProjectRequest.name: invalid string");
        assert_eq!(rewritten(malformed).await, Some((Code::InvalidArgument, "INVALID_FIELD".into())));
    }

    #[tokio::test]
    async fn other_responses_pass_untouched() {
        assert_eq!(
            rewritten(Status::internal("the server logged the details")).await,
            Some((Code::Internal, String::new()))
        );
        assert_eq!(rewritten(Status::out_of_range("page 9 of 3")).await, Some((Code::OutOfRange, String::new())));
        let service = RewriteLayer::new(1024).layer(service_fn(|_| async { ok() }));
        let response = service.oneshot(request("CreateProject", &[])).await.expect("infallible");
        assert_eq!(outcome(&response), None);
    }
}
