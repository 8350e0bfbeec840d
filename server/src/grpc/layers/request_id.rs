//! Gives every brain RPC a request id and returns it in the `x-request-id` response header.
//!
//! The client's `x-request-id` is kept only when it is 1-128 characters of `[A-Za-z0-9._:-]`:
//! the id is printed in every log line of the RPC, and a value with spaces, quotes or `=` could
//! forge fields there (`fake tenant="victim" code="OK"`). Anything else is replaced by a
//! generated id, and one WARN line says so, showing the refused value escaped.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::{REQUEST_ID_HEADER, RequestId, method_name};
use crate::model::new_id;

/// Longest request id accepted from a client.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Longest escaped rendering of a refused id in the log line.
const MAX_ESCAPED_CHARS: usize = 160;

/// Wraps services with [`SetRequestId`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetRequestId { inner }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S, B, ResB> Service<Request<B>> for SetRequestId<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = match request.headers().get(REQUEST_ID_HEADER) {
            None => new_id(),
            Some(given) => match given.to_str().ok().filter(|id| is_valid(id)) {
                Some(id) => id.to_owned(),
                None => {
                    let id = new_id();
                    tracing::warn!(
                        request_id = %id,
                        method = method_name(request.uri().path()),
                        given_bytes = given.len(),
                        given = %escape(given.as_bytes()),
                        "x-request-id refused (1-128 characters of A-Z a-z 0-9 . _ : - are accepted); using a generated one"
                    );
                    id
                }
            },
        };
        // Generated and accepted ids are plain ASCII, so they are always valid header values.
        let header = HeaderValue::from_str(&id).ok();
        request.extensions_mut().insert(RequestId(id));
        WithRequestId { inner: Box::pin(self.inner.call(request)), header }
    }
}

/// The inner response, with the `x-request-id` header set.
pub struct WithRequestId<F> {
    inner: Pin<Box<F>>,
    header: Option<HeaderValue>,
}

impl<F, ResB, E> Future for WithRequestId<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.inner.as_mut().poll(cx))?;
        if let Some(header) = self.header.take() {
            response.headers_mut().insert(REQUEST_ID_HEADER, header);
        }
        Poll::Ready(Ok(response))
    }
}

/// Whether a client's request id is safe to log and echo as it is.
pub fn is_valid(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A refused id as log-safe text: accepted characters as they are, every other byte as `\xNN`,
/// cut at [`MAX_ESCAPED_CHARS`]; it contains no space, quote or `=`, so it cannot pose as a field.
fn escape(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_ESCAPED_CHARS) + 4);
    for &b in raw {
        if out.len() >= MAX_ESCAPED_CHARS {
            out.push_str("...");
            break;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;

    /// Calls the layer over a service that answers with the request id it was given.
    async fn call(header: Option<&[u8]>) -> (String, Option<String>) {
        let service = RequestIdLayer.layer(service_fn(|request: Request<()>| async move {
            let seen = request.extensions().get::<RequestId>().map(|id| id.0.clone()).unwrap_or_default();
            Ok::<_, Infallible>(Response::new(seen))
        }));
        let mut request = Request::builder().uri("/brain.v1.ProjectService/GetProject");
        if let Some(value) = header {
            request = request.header(REQUEST_ID_HEADER, HeaderValue::from_bytes(value).expect("a header value"));
        }
        let response = service.oneshot(request.body(()).expect("request")).await.expect("infallible");
        let echoed = response.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (response.into_body(), echoed)
    }

    #[tokio::test]
    async fn a_valid_id_is_kept_and_echoed() {
        let id = "trace-42.a_b:c";
        assert_eq!(call(Some(id.as_bytes())).await, (id.to_owned(), Some(id.to_owned())));
        let longest = "a".repeat(MAX_REQUEST_ID_CHARS);
        assert_eq!(call(Some(longest.as_bytes())).await.0, longest);
    }

    #[tokio::test]
    async fn a_missing_or_invalid_id_is_replaced_by_a_generated_one() {
        let forged = b"fake tenant=\"victim\" code=\"OK\"".as_slice();
        let too_long = "a".repeat(MAX_REQUEST_ID_CHARS + 1);
        for header in [None, Some(forged), Some(b"".as_slice()), Some(too_long.as_bytes()), Some(b"caf\xc3\xa9")] {
            let (seen, echoed) = call(header).await;
            assert!(is_valid(&seen) && uuid::Uuid::parse_str(&seen).is_ok(), "{header:?} gave {seen}");
            assert_eq!(echoed.as_deref(), Some(seen.as_str()));
        }
    }

    #[test]
    fn refused_ids_are_escaped_into_one_harmless_word() {
        let escaped = escape(b"fake tenant=\"victim\" code=\"OK\"\n");
        assert_eq!(escaped, r"fake\x20tenant\x3d\x22victim\x22\x20code\x3d\x22OK\x22\x0a");
        assert!(!escaped.contains([' ', '"', '=', '\n']));
        let long = escape(&[b' '; 1000]);
        assert!(long.len() <= MAX_ESCAPED_CHARS + 4 + 3 && long.ends_with("..."), "{long}");
    }
}
