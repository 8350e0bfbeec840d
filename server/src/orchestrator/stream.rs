//! OrchestrateStream's protocol: the events of one orchestration, in order.
//!
//! ContextBuilt (as soon as the fitted context exists, or from the stored
//! orchestration on a replay) → DecisionMade → the attached images' events
//! (READY, PROCESSED, FAILED) while the stream waits for them → Completed,
//! naming the images still without a final event. An error ends the stream
//! instead. The transport only converts these events and decides how the
//! stream ends when the server stops.

use std::{sync::Arc, time::Duration};

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{ContextView, OrchestrateRequest, Orchestrated, Orchestration, Orchestrator};
use crate::{
    decide::Decision,
    error::{Error, Reason, Result},
    images::ImageAdmission,
    model::{Event, TenantId},
    perf::StreamKind,
};

/// Longest image wait a stream accepts.
pub const MAX_IMAGE_WAIT: Duration = Duration::from_secs(10 * 60);

/// Events buffered between the orchestration task and a slow client.
const BUFFERED_EVENTS: usize = 4;

/// A prompt to orchestrate as a stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamRequest {
    /// The prompt.
    pub request: OrchestrateRequest,
    /// How long to follow the attached images; None for the configured default.
    pub image_wait: Option<Duration>,
}

/// One event of an orchestration stream.
#[derive(Debug, Clone, PartialEq)]
pub enum OrchestrationEvent {
    /// The context, fitted to the budget; first.
    ContextBuilt(ContextView),
    /// The decision; after the context.
    DecisionMade {
        /// The orchestration.
        orchestration_id: String,
        /// What was decided.
        decision: Decision,
    },
    /// An event of one of the attached images.
    Image(Arc<Event>),
    /// The stored orchestration; last.
    Completed {
        /// The orchestration (boxed: it is by far the largest event).
        orchestration: Box<Orchestration>,
        /// True when a request id matched an earlier orchestration.
        replayed: bool,
        /// Attached images without a final event when the stream stopped waiting
        /// (they complete in the background all the same).
        pending_image_ids: Vec<String>,
    },
}

impl Orchestrator {
    /// Orchestrates `request` as a stream of [`OrchestrationEvent`]s. The work
    /// runs on its own task: a consumer that goes away stops receiving, not the
    /// write. Image events are followed until `shutdown`, then Completed says
    /// which images are still pending. An image wait above [`MAX_IMAGE_WAIT`]
    /// is refused before any work.
    pub fn orchestrate_stream(
        &self,
        tenant: TenantId,
        request: StreamRequest,
        admission: ImageAdmission,
        shutdown: CancellationToken,
    ) -> Result<impl Stream<Item = Result<OrchestrationEvent>> + Send + 'static> {
        let image_wait = self.image_wait(request.image_wait)?;
        let guard = self.perf.stream_opened(StreamKind::OrchestrateStream);
        let (tx, rx) = mpsc::channel(BUFFERED_EVENTS);
        let orchestrator = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let stream = Emitter { orchestrator, tenant, admission, image_wait, shutdown, tx };
            stream.run(request.request).await;
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) }))
    }

    /// The image wait a stream uses: the requested one, at most [`MAX_IMAGE_WAIT`], or the configured default.
    fn image_wait(&self, requested: Option<Duration>) -> Result<Duration> {
        match requested {
            Some(wait) if wait > MAX_IMAGE_WAIT => {
                Err(Error::invalid("image_wait", "image_wait must be at most 10 minutes").with_limit("600s"))
            }
            Some(wait) => Ok(wait),
            None => Ok(self.config.orchestration.image_wait),
        }
    }
}

/// The task behind one orchestration stream.
struct Emitter {
    orchestrator: Orchestrator,
    tenant: TenantId,
    admission: ImageAdmission,
    image_wait: Duration,
    shutdown: CancellationToken,
    tx: mpsc::Sender<Result<OrchestrationEvent>>,
}

impl Emitter {
    /// Orchestrates and sends the events; a send fails only when the consumer went away.
    async fn run(self, request: OrchestrateRequest) {
        let (context_tx, mut context_rx) = oneshot::channel::<ContextView>();
        let work = self.orchestrator.orchestrate(&self.tenant, request, &self.admission, Some(context_tx));
        tokio::pin!(work);
        let mut context_sent = false;
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                view = &mut context_rx, if !context_sent => {
                    context_sent = true;
                    if let Ok(view) = view {
                        self.send(OrchestrationEvent::ContextBuilt(view)).await;
                    }
                }
            }
        };
        let Orchestrated { orchestration: o, replayed, events_after } = match result {
            Ok(done) => done,
            Err(err) => {
                let _ = self.tx.send(Err(err)).await;
                return;
            }
        };
        if !context_sent {
            let view = ContextView {
                packet: o.context.clone(),
                enhanced_prompt: o.enhanced_prompt.clone(),
                report: o.token_report.clone(),
                cache_hit: false,
            };
            self.send(OrchestrationEvent::ContextBuilt(view)).await;
        }
        self.send(OrchestrationEvent::DecisionMade { orchestration_id: o.id.clone(), decision: o.decision.clone() })
            .await;
        let pending_image_ids = if o.images.is_empty() {
            Vec::new()
        } else {
            match self.follow_images(&o, events_after).await {
                Ok(pending) => pending,
                Err(deleted) => {
                    // The project is gone: there is nothing to complete.
                    let _ = self.tx.send(Err(deleted)).await;
                    return;
                }
            }
        };
        self.send(OrchestrationEvent::Completed { orchestration: Box::new(o), replayed, pending_image_ids }).await;
    }

    /// Sends `event`; false when the consumer went away.
    async fn send(&self, event: OrchestrationEvent) -> bool {
        self.tx.send(Ok(event)).await.is_ok()
    }

    /// Sends the orchestration's image events until every image has its final
    /// one, the wait runs out, the consumer goes away or the server stops;
    /// returns the images still without a final event. PROJECT_NOT_FOUND when
    /// the project was deleted meanwhile (the stream ends with it); any other
    /// failure to follow completes the stream with the images still pending.
    async fn follow_images(&self, o: &Orchestration, events_after: u64) -> Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + self.image_wait;
        let ids: Vec<String> = o.images.iter().map(|a| a.image_id.clone()).collect();
        let images = &self.orchestrator.images;
        let follow =
            images.follow(&self.tenant, &o.project_id, &o.id, events_after, ids.clone(), self.shutdown.clone());
        let mut follow = match follow.await {
            Ok(follow) => follow,
            Err(err) if err.reason() == Reason::ProjectNotFound => return Err(err),
            Err(err) => {
                tracing::warn!(orchestration_id = %o.id, error = %err, "cannot follow the images' events");
                return Ok(ids);
            }
        };
        while let Some(item) = follow.next(deadline).await {
            match item {
                Ok(event) => {
                    if !self.send(OrchestrationEvent::Image(event)).await {
                        break;
                    }
                }
                Err(err) if err.reason() == Reason::ProjectNotFound => return Err(err),
                Err(err) => {
                    tracing::warn!(orchestration_id = %o.id, error = %err, "lost the images' events; completing");
                    break;
                }
            }
        }
        Ok(follow.pending())
    }
}
