//! [`ImageFactsWatch`]: a `WatchImageFacts` subscription that survives disconnects.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use brain_proto::v1::{self as pb, watch_image_facts_response::Message};
use futures::{Stream, stream::BoxStream};
use tonic::Streaming;

use crate::{BrainClient, BrainError};

/// A stream of a project's image events that resumes across disconnects.
///
/// It yields each [`ImageFactsEvent`](pb::ImageFactsEvent) once, in cursor
/// order. When the connection drops (any [retryable](BrainError::is_retryable)
/// error: UNAVAILABLE, a reset or closed connection, a server restart or
/// shutdown, or a clean end of the stream), it reconnects with
/// backoff and asks for the events after the last cursor it yielded, so
/// nothing is lost and nothing is repeated; a cursor at or below the last one
/// is never yielded. Heartbeats keep the stream alive and are not yielded;
/// [`latest_cursor`](Self::latest_cursor) reports the newest one.
///
/// Any other error (UNAUTHENTICATED, NOT_FOUND, INVALID_ARGUMENT, ...) is
/// yielded once and ends the stream, as does reaching the client's watch
/// backoff `max_attempts` consecutive failed reconnects (0: never give up).
/// The watch has no deadline; drop it to stop.
pub struct ImageFactsWatch {
    inner: BoxStream<'static, Result<pb::ImageFactsEvent, BrainError>>,
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    cursor: AtomicU64,
    latest: AtomicU64,
    reconnects: AtomicU64,
}

struct State {
    client: BrainClient,
    request: pb::WatchImageFactsRequest,
    stream: Option<Streaming<pb::WatchImageFactsResponse>>,
    failures: u32,
    finished: bool,
    progress: Arc<Progress>,
}

impl ImageFactsWatch {
    pub(crate) fn new(client: BrainClient, request: pb::WatchImageFactsRequest) -> Self {
        let progress = Arc::new(Progress::default());
        progress.cursor.store(request.after_cursor, Ordering::Relaxed);
        let state =
            State { client, request, stream: None, failures: 0, finished: false, progress: Arc::clone(&progress) };
        let inner = futures::stream::unfold(state, |mut state| async move {
            let item = state.next_event().await?;
            Some((item, state))
        });
        Self { inner: Box::pin(inner), progress }
    }

    /// The cursor of the last event yielded (or the starting cursor); resume
    /// from it in a new watch to continue where this one stopped.
    pub fn cursor(&self) -> u64 {
        self.progress.cursor.load(Ordering::Relaxed)
    }

    /// The project's latest committed cursor, per the last heartbeat (0 before one arrived).
    pub fn latest_cursor(&self) -> u64 {
        self.progress.latest.load(Ordering::Relaxed)
    }

    /// Reconnect attempts so far: every retryable failure counts, whether or not the next
    /// connection succeeds.
    pub fn reconnects(&self) -> u64 {
        self.progress.reconnects.load(Ordering::Relaxed)
    }
}

impl Stream for ImageFactsWatch {
    type Item = Result<pb::ImageFactsEvent, BrainError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for ImageFactsWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFactsWatch")
            .field("cursor", &self.cursor())
            .field("reconnects", &self.reconnects())
            .finish_non_exhaustive()
    }
}

impl State {
    async fn next_event(&mut self) -> Option<Result<pb::ImageFactsEvent, BrainError>> {
        loop {
            if self.finished {
                return None;
            }
            let Some(stream) = self.stream.as_mut() else {
                match self.open().await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(err) => {
                        if let Some(err) = self.after_failure(err).await {
                            return Some(Err(err));
                        }
                    }
                }
                continue;
            };
            match stream.message().await {
                Ok(Some(response)) => {
                    self.failures = 0;
                    match response.message {
                        Some(Message::Event(event)) => {
                            let cursor = self.progress.cursor.load(Ordering::Relaxed);
                            if event.cursor > cursor {
                                self.progress.cursor.store(event.cursor, Ordering::Relaxed);
                                return Some(Ok(event));
                            }
                            tracing::debug!(cursor = event.cursor, "skipping an image event already delivered");
                        }
                        Some(Message::Heartbeat(heartbeat)) => {
                            self.progress.latest.store(heartbeat.latest_cursor, Ordering::Relaxed);
                        }
                        None => {}
                    }
                }
                // A watch never ends by itself: the server closed it (draining), so resume.
                Ok(None) => {
                    self.stream = None;
                    let err = BrainError::local(tonic::Code::Unavailable, "the server ended the watch");
                    if let Some(err) = self.after_failure(err).await {
                        return Some(Err(err));
                    }
                }
                Err(status) => {
                    self.stream = None;
                    if let Some(err) = self.after_failure(BrainError::from(status)).await {
                        return Some(Err(err));
                    }
                }
            }
        }
    }

    async fn open(&self) -> Result<Streaming<pb::WatchImageFactsResponse>, BrainError> {
        let request = pb::WatchImageFactsRequest {
            after_cursor: self.progress.cursor.load(Ordering::Relaxed),
            ..self.request.clone()
        };
        let request = self.client.request(request, None)?;
        let response = BrainClient::image_facts_stub(self.client.channel()).watch_image_facts(request).await?;
        Ok(response.into_inner())
    }

    /// Waits before the next reconnect, or returns the error that ends the watch.
    async fn after_failure(&mut self, err: BrainError) -> Option<BrainError> {
        let policy = self.client.watch_backoff();
        self.failures += 1;
        let exhausted = policy.max_attempts > 0 && self.failures >= policy.max_attempts;
        if !err.is_retryable() || exhausted {
            self.finished = true;
            return Some(err);
        }
        let wait = policy.backoff(self.failures).max(err.retry_delay().unwrap_or_default());
        tracing::info!(
            cursor = self.progress.cursor.load(Ordering::Relaxed),
            wait_ms = wait.as_millis() as u64,
            error = %err,
            "image facts watch disconnected; resuming"
        );
        self.progress.reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
        None
    }
}
