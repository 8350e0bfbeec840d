//! Server streams: a domain stream of events on the wire, with one shutdown rule.
//!
//! When the server stops, a response stream ends promptly. Items the domain
//! stream has ready are delivered first. A domain stream that ends at once by
//! itself at shutdown (the watches, which also abandon a read in flight: their
//! clients resume after the last cursor or simply watch again) ends with OK, as
//! it would anyway; one that is still at work (an orchestration) ends with
//! UNAVAILABLE SHUTTING_DOWN instead of looking complete.

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Response, Status, codegen::BoxStream};

use crate::error::{Error, Reason};

/// `events` as a tonic response stream of `M`, ending at `shutdown` as the module says.
pub fn response<T, M>(
    events: impl Stream<Item = Result<T, Error>> + Send + 'static,
    shutdown: CancellationToken,
) -> Response<BoxStream<M>>
where
    M: From<T> + Send + 'static,
{
    let state = (Box::pin(events), shutdown, false);
    let stream = futures::stream::unfold(state, |(mut events, shutdown, ended)| async move {
        if ended {
            return None;
        }
        tokio::select! {
            biased;
            item = events.next() => {
                let message = item?.map(M::from).map_err(Status::from);
                Some((message, (events, shutdown, false)))
            }
            () = shutdown.cancelled() => {
                let err = Error::new(Reason::ShuttingDown, "the server is shutting down; retry with the same request_id");
                Some((Err(Status::from(err)), (events, shutdown, true)))
            }
        }
    });
    Response::new(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, stream};
    use tonic::Code;

    use super::*;

    /// A wire message for the tests: the domain item as is.
    #[derive(Debug, PartialEq)]
    struct Wire(u32);

    impl From<u32> for Wire {
        fn from(n: u32) -> Self {
            Wire(n)
        }
    }

    async fn collect(response: Response<BoxStream<Wire>>) -> Vec<Result<Wire, Code>> {
        response.into_inner().map(|item| item.map_err(|status| status.code())).collect().await
    }

    #[tokio::test]
    async fn items_and_errors_are_converted_until_the_domain_stream_ends() {
        let events = stream::iter([Ok(1), Err(Error::missing("prompt")), Ok(2)]);
        let items = collect(response(events, CancellationToken::new())).await;
        assert_eq!(items, [Ok(Wire(1)), Err(Code::InvalidArgument), Ok(Wire(2))]);
    }

    #[tokio::test]
    async fn a_stream_still_at_work_at_shutdown_ends_with_shutting_down() {
        let shutdown = CancellationToken::new();
        let events = stream::iter([Ok(1)]).chain(stream::pending());
        let mut wire = response(events, shutdown.clone()).into_inner();
        assert_eq!(wire.next().await.map(|item| item.map_err(|s| s.code())), Some(Ok(Wire(1))));
        shutdown.cancel();
        let status = wire.next().await.expect("a last item").expect_err("an error");
        assert_eq!(status.code(), Code::Unavailable);
        assert!(status.message().contains("shutting down"), "{}", status.message());
        assert!(wire.next().await.is_none(), "nothing after the shutdown error");
    }

    #[tokio::test]
    async fn a_stream_that_ends_at_shutdown_ends_with_ok() {
        let shutdown = CancellationToken::new();
        let ends_at_shutdown = stream::pending().take_until(shutdown.clone().cancelled_owned());
        let events = stream::iter([Ok(1), Ok(2)]).chain(ends_at_shutdown);
        let mut wire = response(events, shutdown.clone()).into_inner();
        for n in [1, 2] {
            assert_eq!(wire.next().await.map(|item| item.map_err(|s| s.code())), Some(Ok(Wire(n))));
        }
        shutdown.cancel();
        assert!(wire.next().await.is_none(), "ends with OK");
    }
}
