//! The watch's resume logic against a stand-in `WatchImageFacts` server that
//! misbehaves on purpose: it fails mid-stream, ends a stream cleanly, and sends
//! an event the client already has. The live scenario (`scenario.rs`) proves
//! resume against the real server through a proxy that cuts the connection;
//! this test pins the cases a real server cannot be made to produce on demand.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use brain_client::{BrainClient, Code, RetryPolicy, proto};
use futures::{Stream, StreamExt};
use proto::image_facts_service_server::{ImageFactsService, ImageFactsServiceServer};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::WatchImageFactsResponse, Status>> + Send>>;

/// Serves a five-event log (cursors 1 to 5) over three connections:
/// 1. events after the cursor up to 2, then UNAVAILABLE;
/// 2. event 2 again (a duplicate), then 3, then a clean end of stream;
/// 3. a heartbeat (latest 5), events 4 and 5, then nothing until cancelled.
///
/// Project "forbidden" fails with NOT_FOUND (not retryable).
#[derive(Default)]
struct StandIn {
    requests: Mutex<Vec<u64>>,
}

fn event(cursor: u64) -> proto::WatchImageFactsResponse {
    proto::WatchImageFactsResponse {
        message: Some(proto::watch_image_facts_response::Message::Event(proto::ImageFactsEvent {
            cursor,
            r#type: proto::EventType::ImageFactsReady.into(),
            project_id: "p".into(),
            image_id: format!("image-{cursor}"),
            ..Default::default()
        })),
    }
}

fn heartbeat(latest_cursor: u64) -> proto::WatchImageFactsResponse {
    proto::WatchImageFactsResponse {
        message: Some(proto::watch_image_facts_response::Message::Heartbeat(proto::Heartbeat {
            time: None,
            latest_cursor,
        })),
    }
}

#[tonic::async_trait]
impl ImageFactsService for StandIn {
    async fn watch_image_facts(
        &self,
        request: Request<proto::WatchImageFactsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        if request.project_id == "forbidden" {
            return Err(Status::not_found("no such project"));
        }
        let connection = {
            let mut requests = self.requests.lock().map_err(|_| Status::internal("poisoned"))?;
            requests.push(request.after_cursor);
            requests.len()
        };
        let after = request.after_cursor;
        let items: Vec<Result<proto::WatchImageFactsResponse, Status>> = match connection {
            1 => (after + 1..=2).map(|c| Ok(event(c))).chain([Err(Status::unavailable("connection lost"))]).collect(),
            2 => vec![Ok(event(after)), Ok(event(3))],
            _ => vec![Ok(heartbeat(5)), Ok(event(4)), Ok(event(5))],
        };
        let stream = futures::stream::iter(items);
        let stream: EventStream =
            if connection >= 3 { Box::pin(stream.chain(futures::stream::pending())) } else { Box::pin(stream) };
        Ok(Response::new(stream))
    }
}

async fn serve(stand_in: Arc<StandIn>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let service = ImageFactsServiceServer::from_arc(stand_in);
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_from_its_cursor_and_never_repeats_an_event() {
    let stand_in = Arc::new(StandIn::default());
    let addr = serve(Arc::clone(&stand_in)).await;
    let fast = RetryPolicy { max_attempts: 0, initial_backoff: Duration::from_millis(20), ..RetryPolicy::default() };
    let client = BrainClient::builder(addr).watch_backoff(fast).connect().await.expect("connect");

    let mut watch = client.watch_image_facts("p", 0);
    let mut cursors = Vec::new();
    while cursors.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch goes on")
            .expect("an event");
        cursors.push(event.cursor);
    }
    assert_eq!(cursors, [1, 2, 3, 4, 5], "every event once, in order");
    assert_eq!(*stand_in.requests.lock().expect("requests"), [0, 2, 3], "each reconnect resumes after the last cursor");
    assert_eq!(watch.reconnects(), 2);
    assert_eq!(watch.cursor(), 5);
    assert_eq!(watch.latest_cursor(), 5, "heartbeats are consumed, not yielded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_ends_on_an_error_that_is_not_a_disconnect() {
    let addr = serve(Arc::new(StandIn::default())).await;
    let client = BrainClient::builder(addr).connect().await.expect("connect");
    let mut watch = client.watch_image_facts("forbidden", 0);
    let err = watch.next().await.expect("an item").expect_err("an error");
    assert_eq!(err.code(), Code::NotFound);
    assert!(watch.next().await.is_none(), "the watch ended");
    assert_eq!(watch.reconnects(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gives_up_after_its_reconnect_budget() {
    // Nothing listens on this port once the listener is dropped.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let bounded = RetryPolicy { max_attempts: 3, initial_backoff: Duration::from_millis(10), ..RetryPolicy::default() };
    let client = BrainClient::builder(addr).watch_backoff(bounded).connect_lazy().expect("client");
    let mut watch = client.watch_image_facts("p", 7);
    let err = watch.next().await.expect("an item").expect_err("unreachable");
    assert!(err.is_retryable(), "{err}");
    assert!(watch.next().await.is_none());
    assert_eq!(watch.reconnects(), 2, "three attempts: the first and two reconnects");
    assert_eq!(watch.cursor(), 7, "the cursor is kept for a later resume");
}
