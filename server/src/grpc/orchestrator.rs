//! `brain.v1.OrchestratorService`: maps requests to [`Orchestrator`] and back.

use std::time::Duration;

use brain_proto::v1::{
    self as pb, orchestrate_stream_response::Event, orchestrator_service_server::OrchestratorService,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::{convert, note_project, tenant};
use crate::{
    error::{Error, Reason},
    images::Images,
    model::TenantId,
    orchestrator::{ContextView, OrchestrateRequest, Orchestrated, Orchestration, Orchestrator},
    perf::{Perf, StreamKind},
};

/// Longest `image_wait` a stream accepts.
const MAX_IMAGE_WAIT_MS: i64 = 10 * 60 * 1000;

/// The OrchestratorService implementation.
pub struct OrchestratorApi {
    orchestrator: Orchestrator,
    /// Streams follow an orchestration's images here.
    images: Images,
    perf: Perf,
    /// How long a stream follows pending images when the request does not say.
    default_image_wait: Duration,
    /// Ends streams when the server stops.
    shutdown: CancellationToken,
}

impl OrchestratorApi {
    /// Serves `orchestrator`; streams follow images in `images` for up to
    /// `default_image_wait` unless the request says otherwise.
    pub fn new(
        orchestrator: Orchestrator,
        images: Images,
        perf: Perf,
        default_image_wait: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self { orchestrator, images, perf, default_image_wait, shutdown }
    }
}

#[tonic::async_trait]
impl OrchestratorService for OrchestratorApi {
    async fn orchestrate(
        &self,
        request: Request<pb::OrchestrateRequest>,
    ) -> Result<Response<pb::OrchestrateResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let input = OrchestrateRequest::from(request.into_inner());
        let done = self.orchestrator.orchestrate(&tenant, input, None).await?;
        Ok(Response::new(done.into()))
    }

    async fn orchestrate_stream(
        &self,
        request: Request<pb::OrchestrateStreamRequest>,
    ) -> Result<Response<BoxStream<pb::OrchestrateStreamResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.into_inner();
        let image_wait = match convert::duration_ms("image_wait", req.image_wait.as_ref())? {
            Some(ms) if ms > MAX_IMAGE_WAIT_MS => {
                return Err(Error::invalid("image_wait", "image_wait must be at most 10 minutes")
                    .with_limit("600s")
                    .into());
            }
            Some(ms) => Duration::from_millis(ms.max(0) as u64),
            None => self.default_image_wait,
        };
        let input = OrchestrateRequest {
            project_id: req.project_id,
            prompt: req.prompt,
            images: req.images.into_iter().map(Into::into).collect(),
            request_id: req.request_id,
            token_budget: req.token_budget,
        };
        let guard = self.perf.stream_opened(StreamKind::OrchestrateStream);
        let orchestrator = self.orchestrator.clone();
        let images = self.images.clone();
        let stopping = self.shutdown.clone();
        let (tx, rx) = mpsc::channel::<Result<pb::OrchestrateStreamResponse, Status>>(4);
        // The work runs on its own task: a client that goes away stops receiving, not the write.
        tokio::spawn(async move {
            let _guard = guard;
            let (context_tx, mut context_rx) = oneshot::channel::<ContextView>();
            let work = orchestrator.orchestrate(&tenant, input, Some(context_tx));
            tokio::pin!(work);
            let mut context_sent = false;
            let result = loop {
                tokio::select! {
                    result = &mut work => break result,
                    view = &mut context_rx, if !context_sent => {
                        context_sent = true;
                        if let Ok(view) = view {
                            let _ = tx.send(Ok(event(Event::ContextBuilt(view.into())))).await;
                        }
                    }
                }
            };
            match result {
                Err(err) => {
                    let _ = tx.send(Err(err.into())).await;
                }
                Ok(Orchestrated { orchestration: o, replayed, events_after }) => {
                    if !context_sent {
                        let view = ContextView {
                            packet: o.context.clone(),
                            enhanced_prompt: o.enhanced_prompt.clone(),
                            report: o.token_report.clone(),
                            cache_hit: false,
                        };
                        let _ = tx.send(Ok(event(Event::ContextBuilt(view.into())))).await;
                    }
                    let made = Event::DecisionMade(pb::DecisionMade {
                        orchestration_id: o.id.clone(),
                        decision: Some(o.decision.clone().into()),
                    });
                    let _ = tx.send(Ok(event(made))).await;
                    let pending_image_ids = if o.images.is_empty() {
                        Vec::new()
                    } else {
                        let follow =
                            ImageFollow { images: &images, tenant: &tenant, wait: image_wait, shutdown: stopping };
                        follow.stream(&o, events_after, &tx).await
                    };
                    let completed = Event::Completed(pb::OrchestrationCompleted {
                        orchestration: Some(o.into()),
                        replayed,
                        pending_image_ids,
                    });
                    let _ = tx.send(Ok(event(completed))).await;
                }
            }
        });
        let shutdown = self.shutdown.clone();
        // Ends promptly on shutdown, saying so, instead of looking complete.
        let stream = futures::stream::unfold((rx, shutdown, false), |(mut rx, shutdown, ended)| async move {
            if ended {
                return None;
            }
            tokio::select! {
                biased;
                message = rx.recv() => message.map(|m| (m, (rx, shutdown, false))),
                () = shutdown.cancelled() => {
                    let status = Status::from(Error::new(Reason::ShuttingDown, "the server is shutting down; retry with the same request_id"));
                    Some((Err(status), (rx, shutdown, true)))
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_context_packet(
        &self,
        request: Request<pb::GetContextPacketRequest>,
    ) -> Result<Response<pb::GetContextPacketResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let view = self.orchestrator.context_packet(&tenant, &req.project_id, &req.prompt, req.token_budget).await?;
        Ok(Response::new(view.into()))
    }
}

/// How an orchestration stream follows its images.
struct ImageFollow<'a> {
    images: &'a Images,
    tenant: &'a TenantId,
    wait: Duration,
    shutdown: CancellationToken,
}

impl ImageFollow<'_> {
    /// Sends the orchestration's image events (READY, PROCESSED, FAILED) until
    /// every image has its final one, the wait runs out, the client goes away
    /// or the server stops; returns the images still without a final event
    /// (they complete in the background all the same).
    async fn stream(
        self,
        o: &Orchestration,
        events_after: u64,
        tx: &mpsc::Sender<Result<pb::OrchestrateStreamResponse, Status>>,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + self.wait;
        let ids: Vec<String> = o.images.iter().map(|a| a.image_id.clone()).collect();
        let follow = self.images.follow(self.tenant, &o.project_id, &o.id, events_after, ids.clone(), self.shutdown);
        let mut follow = match follow.await {
            Ok(follow) => follow,
            Err(err) => {
                tracing::warn!(orchestration_id = %o.id, error = %err, "cannot follow the images' events");
                return ids;
            }
        };
        while let Some(item) = follow.next(deadline).await {
            match item {
                Ok(e) => {
                    if tx.send(Ok(event(Event::ImageEvent(e.as_ref().into())))).await.is_err() {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(orchestration_id = %o.id, error = %err, "lost the images' events; completing");
                    break;
                }
            }
        }
        follow.pending()
    }
}

fn event(event: Event) -> pb::OrchestrateStreamResponse {
    pb::OrchestrateStreamResponse { event: Some(event) }
}
