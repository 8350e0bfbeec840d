//! OrchestratorService: prompts, context packets, decisions and orchestration events.

use brain_proto::v1 as pb;

use super::{duration, timestamp};
use crate::{
    context::{
        budget::{DropAction, DroppedItem, Section, SectionTokens, TokenReport},
        packet::{ContextPacket, ImageFactsSummary, SceneContext},
    },
    decide::{Decision, DecisionBackend, EditComplexity, Outcome, Tool, ToolCall},
    error::{Error, Result},
    model::ConversationTurn,
    orchestrator::{ContextView, OrchestrateRequest, Orchestrated, Orchestration, OrchestrationEvent, StreamRequest},
    perf::StageTimings,
};

impl From<pb::OrchestrateRequest> for OrchestrateRequest {
    fn from(req: pb::OrchestrateRequest) -> Self {
        OrchestrateRequest {
            project_id: req.project_id,
            prompt: req.prompt,
            images: req.images.into_iter().map(Into::into).collect(),
            request_id: req.request_id,
            token_budget: req.token_budget,
        }
    }
}

impl TryFrom<pb::OrchestrateStreamRequest> for StreamRequest {
    type Error = Error;

    fn try_from(req: pb::OrchestrateStreamRequest) -> Result<Self> {
        let image_wait = duration("image_wait", req.image_wait.as_ref())?;
        // The same prompt as Orchestrate's, plus how long to follow the images.
        let request = pb::OrchestrateRequest {
            project_id: req.project_id,
            prompt: req.prompt,
            images: req.images,
            request_id: req.request_id,
            token_budget: req.token_budget,
        };
        Ok(StreamRequest { request: request.into(), image_wait })
    }
}

impl From<Orchestrated> for pb::OrchestrateResponse {
    fn from(done: Orchestrated) -> Self {
        pb::OrchestrateResponse { replayed: done.replayed, orchestration: Some(done.orchestration.into()) }
    }
}

impl From<OrchestrationEvent> for pb::OrchestrateStreamResponse {
    fn from(event: OrchestrationEvent) -> Self {
        use pb::orchestrate_stream_response::Event;
        let event = match event {
            OrchestrationEvent::ContextBuilt(view) => Event::ContextBuilt(view.into()),
            OrchestrationEvent::DecisionMade { orchestration_id, decision } => {
                Event::DecisionMade(pb::DecisionMade { orchestration_id, decision: Some(decision.into()) })
            }
            OrchestrationEvent::Image(e) => Event::ImageEvent(e.as_ref().into()),
            OrchestrationEvent::Completed { orchestration, replayed, pending_image_ids } => {
                Event::Completed(pb::OrchestrationCompleted {
                    orchestration: Some((*orchestration).into()),
                    replayed,
                    pending_image_ids,
                })
            }
        };
        pb::OrchestrateStreamResponse { event: Some(event) }
    }
}

impl From<ContextView> for pb::ContextBuilt {
    fn from(view: ContextView) -> Self {
        pb::ContextBuilt {
            context: Some(view.packet.into()),
            enhanced_prompt: view.enhanced_prompt,
            token_report: Some(view.report.into()),
        }
    }
}

impl From<ContextView> for pb::GetContextPacketResponse {
    fn from(view: ContextView) -> Self {
        pb::GetContextPacketResponse {
            context: Some(view.packet.into()),
            enhanced_prompt: view.enhanced_prompt,
            token_report: Some(view.report.into()),
            cache_hit: view.cache_hit,
        }
    }
}

impl From<Orchestration> for pb::Orchestration {
    fn from(o: Orchestration) -> Self {
        pb::Orchestration {
            orchestration_id: o.id,
            project_id: o.project_id,
            request_id: o.request_id.unwrap_or_default(),
            decision: Some(o.decision.into()),
            enhanced_prompt: o.enhanced_prompt,
            token_report: Some(o.token_report.into()),
            context: Some(o.context.into()),
            images: o.images.iter().map(Into::into).collect(),
            degraded: o.degraded,
            degraded_reason: o.degraded_reason.unwrap_or_default(),
            timings: Some(o.timings.into()),
            create_time: Some(timestamp(o.created_at)),
        }
    }
}

impl From<StageTimings> for pb::StageTimings {
    fn from(t: StageTimings) -> Self {
        pb::StageTimings {
            context_build_ms: t.context_build_ms,
            token_budget_ms: t.token_budget_ms,
            decision_ms: t.decision_ms,
            persistence_ms: t.persistence_ms,
            image_enqueue_ms: t.image_enqueue_ms,
            total_ms: t.total_ms,
        }
    }
}

impl From<Tool> for pb::Tool {
    fn from(t: Tool) -> Self {
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
}

impl From<EditComplexity> for pb::EditComplexity {
    fn from(c: EditComplexity) -> Self {
        match c {
            EditComplexity::Surgical => pb::EditComplexity::Surgical,
            EditComplexity::Creative => pb::EditComplexity::Creative,
            EditComplexity::Structural => pb::EditComplexity::Structural,
        }
    }
}

impl From<DecisionBackend> for pb::DecisionBackend {
    fn from(b: DecisionBackend) -> Self {
        match b {
            DecisionBackend::Rules => pb::DecisionBackend::Rules,
            DecisionBackend::Openai => pb::DecisionBackend::Openai,
        }
    }
}

impl From<ToolCall> for pb::ToolCall {
    fn from(call: ToolCall) -> Self {
        pb::ToolCall {
            tool: pb::Tool::from(call.tool) as i32,
            target_scene_id: call.target_scene_id.unwrap_or_default(),
            complexity: call.complexity.map_or(pb::EditComplexity::Unspecified, Into::into) as i32,
            params: Some(pb::ToolParams {
                duration_seconds: call.params.duration_seconds,
                image_ids: call.params.image_ids,
                attributes: call.params.attributes.into_iter().collect(),
                insert_position: call.params.insert_position,
            }),
            instruction: call.instruction,
        }
    }
}

impl From<Decision> for pb::Decision {
    fn from(d: Decision) -> Self {
        let outcome = match d.outcome {
            Outcome::Tool(call) => pb::decision::Outcome::ToolCall(call.into()),
            Outcome::Workflow(steps) => {
                pb::decision::Outcome::Workflow(pb::Workflow { steps: steps.into_iter().map(Into::into).collect() })
            }
            Outcome::Clarification { question, candidate_scene_ids } => {
                pb::decision::Outcome::Clarification(pb::Clarification { question, candidate_scene_ids })
            }
        };
        pb::Decision {
            outcome: Some(outcome),
            reasoning: d.reasoning,
            backend: pb::DecisionBackend::from(d.backend) as i32,
            fallback_reason: d.fallback_reason.unwrap_or_default(),
            confidence: d.confidence,
        }
    }
}

impl From<Section> for pb::ContextSection {
    fn from(s: Section) -> Self {
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
}

impl From<DropAction> for pb::DropAction {
    fn from(a: DropAction) -> Self {
        match a {
            DropAction::Dropped => pb::DropAction::Dropped,
            DropAction::SummaryRemoved => pb::DropAction::SummaryRemoved,
            DropAction::MiddleCut => pb::DropAction::MiddleCut,
        }
    }
}

impl From<SectionTokens> for pb::SectionTokens {
    fn from(s: SectionTokens) -> Self {
        pb::SectionTokens {
            section: pb::ContextSection::from(s.section) as i32,
            tokens_before: s.tokens_before,
            tokens_after: s.tokens_after,
            items_before: s.items_before,
            items_after: s.items_after,
        }
    }
}

impl From<DroppedItem> for pb::DroppedItem {
    fn from(d: DroppedItem) -> Self {
        pb::DroppedItem {
            section: pb::ContextSection::from(d.section) as i32,
            item_id: d.item_id,
            action: pb::DropAction::from(d.action) as i32,
            tokens: d.tokens,
        }
    }
}

impl From<TokenReport> for pb::TokenReport {
    fn from(r: TokenReport) -> Self {
        pb::TokenReport {
            budget: r.budget,
            total_before: r.total_before,
            total_after: r.total_after,
            sections: r.sections.into_iter().map(Into::into).collect(),
            dropped: r.dropped.into_iter().map(Into::into).collect(),
            truncated: r.truncated,
            prompt_truncated: r.prompt_truncated,
            budget_warning: r.budget_warning,
            encoding: r.encoding,
        }
    }
}

impl From<SceneContext> for pb::SceneContext {
    fn from(s: SceneContext) -> Self {
        pb::SceneContext {
            scene: Some(s.scene.into()),
            relationships: s.relationships.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ImageFactsSummary> for pb::ImageFactsSummary {
    fn from(i: ImageFactsSummary) -> Self {
        pb::ImageFactsSummary { image_id: i.image_id, facts: Some((&i.facts).into()) }
    }
}

impl From<ContextPacket> for pb::ContextPacket {
    fn from(p: ContextPacket) -> Self {
        pb::ContextPacket {
            project_id: p.project_id,
            preferences: p.preferences.into_iter().map(Into::into).collect(),
            scenes: p.scenes.into_iter().map(Into::into).collect(),
            image_facts: p.image_facts.into_iter().map(Into::into).collect(),
            recent_turns: p.recent_turns.into_iter().map(Into::into).collect(),
            pending_image_ids: p.pending_image_ids,
            build_time: Some(timestamp(p.built_at)),
        }
    }
}

impl From<ConversationTurn> for pb::ConversationTurn {
    fn from(t: ConversationTurn) -> Self {
        pb::ConversationTurn {
            turn_id: t.id,
            orchestration_id: t.orchestration_id.unwrap_or_default(),
            prompt: t.prompt,
            decision_summary: t.decision_summary,
            token_count: t.token_count,
            create_time: Some(timestamp(t.created_at)),
            archived: false,
        }
    }
}
