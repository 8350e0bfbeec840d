//! `brain.v1.OrchestratorService`: maps requests to [`Orchestrator`] and back.

use std::time::Duration;

use brain_proto::v1::{self as pb, orchestrator_service_server::OrchestratorService};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::{
    charge_images,
    convert::timestamp,
    image_facts::{analysis, event as image_event, facts as image_facts, image_input},
    note_project, tenant,
};
use crate::{
    context::{
        budget::{DropAction, DroppedItem, Section, SectionTokens, TokenReport},
        packet::{ContextPacket, ImageFactsSummary, SceneContext},
    },
    decide::{self, DecisionBackend, EditComplexity, Outcome, Tool},
    error::{Error, Reason},
    images::Images,
    model::ConversationTurn,
    model::TenantId,
    orchestrator::{ContextView, OrchestrateRequest, Orchestrated, Orchestration, Orchestrator},
    perf::{Perf, StageTimings, StreamKind},
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
        charge_images(&request, &tenant, request.get_ref().images.len())?;
        let req = request.into_inner();
        let input = OrchestrateRequest {
            project_id: req.project_id,
            prompt: req.prompt,
            images: req.images.into_iter().map(image_input).collect(),
            request_id: req.request_id,
            token_budget: req.token_budget,
        };
        let done = self.orchestrator.orchestrate(&tenant, input, None).await?;
        Ok(Response::new(pb::OrchestrateResponse {
            replayed: done.replayed,
            orchestration: Some(orchestration(done.orchestration)),
        }))
    }

    async fn orchestrate_stream(
        &self,
        request: Request<pb::OrchestrateStreamRequest>,
    ) -> Result<Response<BoxStream<pb::OrchestrateStreamResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        charge_images(&request, &tenant, request.get_ref().images.len())?;
        let req = request.into_inner();
        let image_wait = match crate::grpc::convert::duration_ms("image_wait", req.image_wait.as_ref())? {
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
            images: req.images.into_iter().map(image_input).collect(),
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
                            let _ = tx.send(Ok(event(context_built(view.packet, view.enhanced_prompt, view.report)))).await;
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
                        let built = context_built(o.context.clone(), o.enhanced_prompt.clone(), o.token_report.clone());
                        let _ = tx.send(Ok(event(built))).await;
                    }
                    let made = pb::orchestrate_stream_response::Event::DecisionMade(pb::DecisionMade {
                        orchestration_id: o.id.clone(),
                        decision: Some(decision(o.decision.clone())),
                    });
                    let _ = tx.send(Ok(pb::OrchestrateStreamResponse { event: Some(made) })).await;
                    let pending_image_ids = if o.images.is_empty() {
                        Vec::new()
                    } else {
                        let follow =
                            ImageFollow { images: &images, tenant: &tenant, wait: image_wait, shutdown: stopping };
                        follow.stream(&o, events_after, &tx).await
                    };
                    let completed = pb::orchestrate_stream_response::Event::Completed(pb::OrchestrationCompleted {
                        orchestration: Some(orchestration(o)),
                        replayed,
                        pending_image_ids,
                    });
                    let _ = tx.send(Ok(pb::OrchestrateStreamResponse { event: Some(completed) })).await;
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
        Ok(Response::new(pb::GetContextPacketResponse {
            context: Some(context_packet(view.packet)),
            enhanced_prompt: view.enhanced_prompt,
            token_report: Some(token_report(view.report)),
            cache_hit: view.cache_hit,
        }))
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
                    let message = pb::orchestrate_stream_response::Event::ImageEvent(image_event(&e));
                    if tx.send(Ok(pb::OrchestrateStreamResponse { event: Some(message) })).await.is_err() {
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

fn event(built: pb::ContextBuilt) -> pb::OrchestrateStreamResponse {
    pb::OrchestrateStreamResponse { event: Some(pb::orchestrate_stream_response::Event::ContextBuilt(built)) }
}

fn context_built(packet: ContextPacket, enhanced_prompt: String, report: TokenReport) -> pb::ContextBuilt {
    pb::ContextBuilt {
        context: Some(context_packet(packet)),
        enhanced_prompt,
        token_report: Some(token_report(report)),
    }
}

fn orchestration(o: Orchestration) -> pb::Orchestration {
    pb::Orchestration {
        orchestration_id: o.id,
        project_id: o.project_id,
        request_id: o.request_id.unwrap_or_default(),
        decision: Some(decision(o.decision)),
        enhanced_prompt: o.enhanced_prompt,
        token_report: Some(token_report(o.token_report)),
        context: Some(context_packet(o.context)),
        images: o.images.iter().map(analysis).collect(),
        degraded: o.degraded,
        degraded_reason: o.degraded_reason.unwrap_or_default(),
        timings: Some(timings(o.timings)),
        create_time: Some(timestamp(o.created_at)),
    }
}

fn timings(t: StageTimings) -> pb::StageTimings {
    pb::StageTimings {
        context_build_ms: t.context_build_ms,
        token_budget_ms: t.token_budget_ms,
        decision_ms: t.decision_ms,
        persistence_ms: t.persistence_ms,
        image_enqueue_ms: t.image_enqueue_ms,
        total_ms: t.total_ms,
    }
}

fn tool(t: Tool) -> pb::Tool {
    match t {
        Tool::AddScene => pb::Tool::AddScene,
        Tool::EditScene => pb::Tool::EditScene,
        Tool::DeleteScene => pb::Tool::DeleteScene,
        Tool::FixBrokenScene => pb::Tool::FixBrokenScene,
        Tool::ChangeDuration => pb::Tool::ChangeDuration,
        Tool::AnalyzeImage => pb::Tool::AnalyzeImage,
        Tool::CreateSceneFromImage => pb::Tool::CreateSceneFromImage,
        Tool::EditSceneWithImage => pb::Tool::EditSceneWithImage,
    }
}

fn complexity(c: Option<EditComplexity>) -> pb::EditComplexity {
    match c {
        None => pb::EditComplexity::Unspecified,
        Some(EditComplexity::Surgical) => pb::EditComplexity::Surgical,
        Some(EditComplexity::Creative) => pb::EditComplexity::Creative,
        Some(EditComplexity::Structural) => pb::EditComplexity::Structural,
    }
}

fn tool_call(call: decide::ToolCall) -> pb::ToolCall {
    pb::ToolCall {
        tool: tool(call.tool) as i32,
        target_scene_id: call.target_scene_id.unwrap_or_default(),
        complexity: complexity(call.complexity) as i32,
        params: Some(pb::ToolParams {
            duration_seconds: call.params.duration_seconds,
            image_ids: call.params.image_ids,
            attributes: call.params.attributes.into_iter().collect(),
            insert_position: call.params.insert_position,
        }),
        instruction: call.instruction,
    }
}

fn decision(d: decide::Decision) -> pb::Decision {
    let outcome = match d.outcome {
        Outcome::Tool(call) => pb::decision::Outcome::ToolCall(tool_call(call)),
        Outcome::Workflow(steps) => {
            pb::decision::Outcome::Workflow(pb::Workflow { steps: steps.into_iter().map(tool_call).collect() })
        }
        Outcome::Clarification { question, candidate_scene_ids } => {
            pb::decision::Outcome::Clarification(pb::Clarification { question, candidate_scene_ids })
        }
    };
    pb::Decision {
        outcome: Some(outcome),
        reasoning: d.reasoning,
        backend: match d.backend {
            DecisionBackend::Rules => pb::DecisionBackend::Rules,
            DecisionBackend::Openai => pb::DecisionBackend::Openai,
        } as i32,
        fallback_reason: d.fallback_reason.unwrap_or_default(),
        confidence: d.confidence,
    }
}

fn section(s: Section) -> pb::ContextSection {
    match s {
        Section::Preferences => pb::ContextSection::Preferences,
        Section::Scenes => pb::ContextSection::Scenes,
        Section::ImageFacts => pb::ContextSection::ImageFacts,
        Section::Conversation => pb::ContextSection::Conversation,
        Section::PendingImages => pb::ContextSection::PendingImages,
        Section::Prompt => pb::ContextSection::Prompt,
        Section::Frame => pb::ContextSection::Frame,
    }
}

fn token_report(r: TokenReport) -> pb::TokenReport {
    pb::TokenReport {
        budget: r.budget,
        total_before: r.total_before,
        total_after: r.total_after,
        sections: r
            .sections
            .into_iter()
            .map(|s: SectionTokens| pb::SectionTokens {
                section: section(s.section) as i32,
                tokens_before: s.tokens_before,
                tokens_after: s.tokens_after,
                items_before: s.items_before,
                items_after: s.items_after,
            })
            .collect(),
        dropped: r
            .dropped
            .into_iter()
            .map(|d: DroppedItem| pb::DroppedItem {
                section: section(d.section) as i32,
                item_id: d.item_id,
                action: match d.action {
                    DropAction::Dropped => pb::DropAction::Dropped,
                    DropAction::SummaryRemoved => pb::DropAction::SummaryRemoved,
                    DropAction::MiddleCut => pb::DropAction::MiddleCut,
                } as i32,
                tokens: d.tokens,
            })
            .collect(),
        truncated: r.truncated,
        prompt_truncated: r.prompt_truncated,
        budget_warning: r.budget_warning,
        encoding: r.encoding,
    }
}

fn context_packet(p: ContextPacket) -> pb::ContextPacket {
    pb::ContextPacket {
        project_id: p.project_id,
        preferences: p.preferences.into_iter().map(Into::into).collect(),
        scenes: p
            .scenes
            .into_iter()
            .map(|s: SceneContext| pb::SceneContext {
                scene: Some(s.scene.into()),
                relationships: s.relationships.into_iter().map(Into::into).collect(),
            })
            .collect(),
        image_facts: p
            .image_facts
            .into_iter()
            .map(|i: ImageFactsSummary| pb::ImageFactsSummary {
                image_id: i.image_id,
                facts: Some(image_facts(&i.facts)),
            })
            .collect(),
        recent_turns: p.recent_turns.into_iter().map(turn).collect(),
        pending_image_ids: p.pending_image_ids,
        build_time: Some(timestamp(p.built_at)),
    }
}

fn turn(t: ConversationTurn) -> pb::ConversationTurn {
    pb::ConversationTurn {
        turn_id: t.id,
        orchestration_id: t.orchestration_id.unwrap_or_default(),
        prompt: t.prompt,
        decision_summary: t.decision_summary,
        token_count: t.token_count,
        create_time: Some(timestamp(t.created_at)),
    }
}
