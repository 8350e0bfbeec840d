//! Orchestration: what backends call on every user prompt.
//!
//! validate (attached images too) → idempotency lookup → context (cache,
//! else store; degraded on a read failure; the attached images listed as
//! pending) → token budget → decide → queue the writes for the group commit
//! (orchestration row with the response, conversation turn, memory bank,
//! the images' analyses and jobs, committed together with whatever else is
//! queued: see [`commit`]) → announce the change, wake the workers →
//! performance sample. The images' facts arrive later, as events.
//!
//! `Orchestrate` never changes scenes: the backend runs the decided tool and
//! then calls `UpsertScene` / `DeleteScene`.

mod commit;
pub mod memory;
mod stream;

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use self::commit::{Committer, Pending, Writer, Written};
pub use self::stream::{MAX_IMAGE_WAIT, OrchestrationEvent, StreamRequest};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::{
    changes::ProjectChanges,
    config::Config,
    context::{
        budget::{self, TokenReport},
        build::{self, MAX_PENDING_IMAGES, PacketLimits},
        cache::ContextCache,
        flight::Flights,
        packet::{ContextPacket, PreparedPacket},
        render, tokens,
    },
    decide::{Decider, Decision, DecisionInput, Outcome, preferences},
    error::{Error, ErrorKind, Reason, Result},
    images::{ImageAdmission, ImageInput, ImageSource, Images, PreparedImage},
    model::{ImageAnalysis, MemoryPut, MemorySource, MemoryType, Millis, TenantId, new_id, now_ms},
    perf::{CacheKind, OrchestrationSample, Perf, StageTimings},
    store::{Store, StoredRequest},
    validate,
};

/// One processed prompt: what brain saw, decided and stored. This is also
/// the stored response an idempotent retry returns (as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orchestration {
    /// Id.
    pub id: String,
    /// The project.
    pub project_id: String,
    /// The client's idempotency key.
    pub request_id: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// The context rendered into headed sections, then the prompt, within the budget.
    pub enhanced_prompt: String,
    /// Token accounting for `enhanced_prompt`.
    pub token_report: TokenReport,
    /// The context as the enhanced prompt carries it.
    pub context: ContextPacket,
    /// Memory could not be read; the decision used the prompt alone.
    pub degraded: bool,
    /// Why.
    pub degraded_reason: Option<String>,
    /// Where the time went, up to the final insert (the commit is in the performance report).
    pub timings: StageTimings,
    /// When it was stored.
    pub created_at: Millis,
    /// Images accepted with the prompt, as accepted (PENDING); their facts arrive as events.
    #[serde(default)]
    pub images: Vec<ImageAnalysis>,
}

/// An orchestration returned to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Orchestrated {
    /// The stored orchestration.
    pub orchestration: Orchestration,
    /// True when a request id matched an earlier orchestration.
    pub replayed: bool,
    /// The project's event cursor before this orchestration's images: their
    /// events come after it (0 on a replay: the whole stored log).
    pub events_after: u64,
}

/// A prompt to orchestrate, as the caller sent it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrchestrateRequest {
    /// The project.
    pub project_id: String,
    /// The user's message.
    pub prompt: String,
    /// Images attached, analysed in the background.
    pub images: Vec<ImageInput>,
    /// Idempotency key; empty for none.
    pub request_id: String,
    /// Token budget; 0 for the default.
    pub token_budget: u32,
}

/// The context of a prompt, rendered and fitted to its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextView {
    /// The packet as the enhanced prompt carries it.
    pub packet: ContextPacket,
    /// The enhanced prompt.
    pub enhanced_prompt: String,
    /// Its token accounting.
    pub report: TokenReport,
    /// Whether the packet came from the cache.
    pub cache_hit: bool,
}

/// Packet builds from the store in flight, by tenant, project and cache generation.
type PacketBuilds = Flights<(TenantId, String, u64), Result<Arc<PreparedPacket>>>;

/// The orchestration domain service.
#[derive(Clone)]
pub struct Orchestrator {
    store: Store,
    config: Arc<Config>,
    cache: Arc<ContextCache>,
    builds: Arc<PacketBuilds>,
    decider: Arc<dyn Decider>,
    images: Images,
    perf: Perf,
    committer: Arc<Committer>,
}

/// A validated request.
struct Checked {
    project_id: String,
    prompt: String,
    request_id: Option<String>,
    budget: u32,
    hash: String,
    images: Vec<PreparedImage>,
}

impl Orchestrator {
    /// A service over the store, announcing its writes on `changes`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        cache: Arc<ContextCache>,
        decider: Arc<dyn Decider>,
        changes: Arc<ProjectChanges>,
        images: Images,
        perf: Perf,
    ) -> Self {
        let committer = Arc::new(Committer::new(Writer {
            store: store.clone(),
            changes: changes.clone(),
            cache: cache.clone(),
            images: images.clone(),
            limits: packet_limits(&config),
            recent: Arc::default(),
        }));
        Self { store, config, cache, builds: Arc::default(), decider, images, perf, committer }
    }

    /// The context cache.
    pub fn cache(&self) -> &ContextCache {
        &self.cache
    }

    /// Builds the context, decides, stores the interaction and returns it.
    /// `context_built` (for streams) receives the fitted context as soon as
    /// it exists; it is left unused on a replay.
    pub async fn orchestrate(
        &self,
        tenant: &TenantId,
        request: OrchestrateRequest,
        admission: &ImageAdmission,
        context_built: Option<oneshot::Sender<ContextView>>,
    ) -> Result<Orchestrated> {
        let started = Instant::now();
        let mut checked = self.check(&request, admission)?;

        if let Some(request_id) = &checked.request_id {
            match self.store.find_request(tenant, request_id).await {
                Ok(Some(stored)) => return replay(&stored, &checked.hash),
                Ok(None) => {}
                // A store that does not answer will not take the write either: end the call
                // after this one wait instead of waiting again for each later statement.
                Err(err) if err.kind() == ErrorKind::Unavailable => return Err(err),
                // The unique index and the lookup inside the write transaction still guard the key.
                Err(err) => tracing::warn!(error = %err, "idempotency lookup failed; continuing"),
            }
        }

        let mut timings = StageTimings::default();
        let stage = Instant::now();
        let (prepared, degraded_reason) = match self.prepared(tenant, &checked.project_id).await {
            Ok((prepared, _)) => (prepared, None),
            // Degraded mode is for memory that cannot be read (a row this build cannot map), not
            // for a store that does not answer: that one would only fail the write after another wait.
            Err(err) if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::Unavailable) => return Err(err),
            Err(err) => {
                tracing::warn!(
                    project_id = %checked.project_id,
                    error = %err,
                    "project memory could not be read; deciding from the prompt alone"
                );
                let empty = ContextPacket::empty(&checked.project_id, now_ms());
                let reason = format!(
                    "project memory could not be read ({}); decided from the prompt alone",
                    err.reason().as_str()
                );
                (Arc::new(PreparedPacket::prepare(empty)), Some(reason))
            }
        };
        let image_ids: Vec<String> = checked.images.iter().map(|i| i.image_id.clone()).collect();
        // The attached images are being analysed: the packet says so (and the
        // writer does not refresh the cached packet after the write: the store now lists them).
        let prepared = if image_ids.is_empty() {
            prepared
        } else {
            Arc::new(PreparedPacket::prepare(with_pending(&prepared.packet, &image_ids)))
        };
        timings.context_build_ms = ms(stage);

        let stage = Instant::now();
        let fitted = budget::fit(&prepared, &checked.prompt, checked.budget)?;
        let packet = budget::kept_packet(&prepared, &fitted.kept);
        timings.token_budget_ms = ms(stage);
        warn_if_near_budget(&checked.project_id, &fitted.report);
        if let Some(tx) = context_built {
            let _ = tx.send(ContextView {
                packet: packet.clone(),
                enhanced_prompt: fitted.enhanced_prompt.clone(),
                report: fitted.report.clone(),
                cache_hit: false,
            });
        }

        let stage = Instant::now();
        let scenes = prepared.packet.scene_list();
        let decision = self
            .decider
            .decide(&DecisionInput {
                prompt: &checked.prompt,
                scenes: &scenes,
                image_ids: &image_ids,
                preferences: &packet.preferences,
                enhanced_prompt: &fitted.enhanced_prompt,
            })
            .await;
        timings.decision_ms = ms(stage);

        let orchestration = Orchestration {
            id: new_id(),
            project_id: checked.project_id.clone(),
            request_id: checked.request_id.clone(),
            decision,
            enhanced_prompt: fitted.enhanced_prompt,
            token_report: fitted.report,
            context: packet,
            degraded: degraded_reason.is_some(),
            degraded_reason,
            timings,
            created_at: 0,
            images: Vec::new(),
        };
        let image_count = checked.images.len() as u32;
        let orchestration = Arc::new(orchestration);
        let pending = self.pending(tenant, &mut checked, &scenes, orchestration.clone(), started);
        let outcome = self.committer.commit(pending).await?;
        match outcome {
            Written::Stored { stamp, persistence_ms, events_after, refresh } => {
                if let Some(refresh) = refresh {
                    refresh.cache();
                }
                let mut orchestration = Arc::try_unwrap(orchestration).unwrap_or_else(|shared| (*shared).clone());
                stamp.apply(&mut orchestration);
                let mut full = orchestration.timings;
                full.persistence_ms = persistence_ms;
                full.total_ms = ms(started);
                self.perf.record_orchestration(&OrchestrationSample {
                    tenant_id: tenant.0.clone(),
                    project_id: orchestration.project_id.clone(),
                    orchestration_id: orchestration.id.clone(),
                    timings: full,
                    image_count,
                    prompt_tokens: orchestration.token_report.total_after,
                    truncated: orchestration.token_report.truncated,
                    budget_warning: orchestration.token_report.budget_warning,
                    degraded: orchestration.degraded,
                });
                Ok(Orchestrated { orchestration, replayed: false, events_after })
            }
            Written::Existing(stored) => replay(&stored, &checked.hash),
        }
    }

    /// The context Orchestrate would build for `prompt`, without deciding or writing.
    pub async fn context_packet(
        &self,
        tenant: &TenantId,
        project_id: &str,
        prompt: &str,
        token_budget: u32,
    ) -> Result<ContextView> {
        let project_id = validate::id("project_id", project_id)?;
        if !prompt.is_empty() {
            self.check_prompt(prompt)?;
        }
        let budget = budget::resolve_budget(token_budget, self.config.orchestration.token_budget)?;
        let (prepared, cache_hit) = self.prepared(tenant, &project_id).await?;
        let fitted = budget::fit(&prepared, prompt, budget)?;
        warn_if_near_budget(&project_id, &fitted.report);
        Ok(ContextView {
            packet: budget::kept_packet(&prepared, &fitted.kept),
            enhanced_prompt: fitted.enhanced_prompt,
            report: fitted.report,
            cache_hit,
        })
    }

    /// The project's prepared packet, from the cache or the store, and
    /// whether it was a hit. Concurrent misses on one project share one
    /// store read ([`Flights`]).
    async fn prepared(&self, tenant: &TenantId, project_id: &str) -> Result<(Arc<PreparedPacket>, bool)> {
        let found = self.cache.get(tenant, project_id).or_else(|| self.committer.refreshed(tenant, project_id));
        self.perf.record_cache(CacheKind::ContextPacket, found.is_some());
        if let Some(prepared) = found {
            return Ok((prepared, true));
        }
        let generation = self.cache.generation(project_id);
        let key = (tenant.clone(), project_id.to_owned(), generation);
        let prepared = self
            .builds
            .run(key, || async {
                let limits = packet_limits(&self.config);
                let prepared = Arc::new(build::from_store(&self.store, tenant, project_id, limits).await?);
                self.cache.insert(tenant, project_id, generation, prepared.clone());
                Ok(prepared)
            })
            .await?;
        Ok((prepared, false))
    }

    /// The orchestration's writes, prepared for the group commit: everything
    /// that does not depend on the stored state is computed here, outside
    /// the writer.
    fn pending(
        &self,
        tenant: &TenantId,
        checked: &mut Checked,
        scenes: &[crate::model::Scene],
        orchestration: Arc<Orchestration>,
        started: Instant,
    ) -> Pending {
        let project_id = &checked.project_id;
        let mut extracted = BTreeMap::new();
        for p in preferences::extract(&checked.prompt) {
            extracted.insert(p.key.clone(), p);
        }
        let mut counted = Vec::new();
        let confidence = orchestration.decision.confidence;
        for (scene_id, value) in memory::relationships(&orchestration.decision, &checked.prompt, scenes) {
            let put = memory_put(
                project_id,
                MemoryType::SceneRelationship,
                &scene_id,
                value,
                confidence,
                MemorySource::Decision,
            );
            let token_count = line_tokens(&put);
            counted.push((put, token_count));
        }
        let summary = memory::decision_summary(&orchestration.decision);
        let put = memory_put(
            project_id,
            MemoryType::ConversationContext,
            memory::LATEST_CONTEXT_KEY,
            memory::conversation_context(&checked.prompt, &summary),
            1.0,
            MemorySource::Decision,
        );
        let token_count = line_tokens(&put);
        counted.push((put, token_count));
        let turn_tokens = tokens::count(&render::turn_lines(&checked.prompt, &summary));
        Pending {
            tenant: tenant.clone(),
            request_hash: checked.hash.clone(),
            prompt: checked.prompt.clone(),
            extracted,
            counted,
            summary,
            turn_tokens,
            orchestration,
            attached: std::mem::take(&mut checked.images),
            started,
            queued: Instant::now(),
        }
    }

    fn check(&self, request: &OrchestrateRequest, admission: &ImageAdmission) -> Result<Checked> {
        let project_id = validate::id("project_id", &request.project_id)?;
        self.check_prompt(&request.prompt)?;
        // Images are validated before any work, so a bad one costs nothing and writes nothing.
        let images =
            if request.images.is_empty() { Vec::new() } else { self.images.prepare(request.images.clone())? };
        let request_id = validate::optional_id("request_id", &request.request_id)?;
        let budget = budget::resolve_budget(request.token_budget, self.config.orchestration.token_budget)?;
        // Last, so a request refused for any field spends none of the tenant's image budget.
        admission.admit(images.len())?;
        let digests: Vec<String> = request.images.iter().map(image_digest).collect();
        let hash = request_hash(&project_id, &request.prompt, &digests, budget);
        Ok(Checked { project_id, prompt: request.prompt.clone(), request_id, budget, hash, images })
    }

    fn check_prompt(&self, prompt: &str) -> Result<()> {
        let max = self.config.orchestration.max_prompt_bytes;
        if prompt.len() > max {
            return Err(Error::new(
                Reason::PromptTooLarge,
                format!("prompt has {} bytes; the limit is {max}", prompt.len()),
            )
            .with_field("prompt")
            .with_limit(max));
        }
        if prompt.trim().is_empty() {
            return Err(Error::new(Reason::PromptEmpty, "prompt is empty").with_field("prompt"));
        }
        if prompt.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(Error::invalid(
                "prompt",
                "prompt must not contain control characters other than newlines and tabs",
            ));
        }
        Ok(())
    }
}

/// SHA-256 over everything that makes two requests the same: project,
/// prompt, attached images (their digests) and the effective budget.
fn request_hash(project_id: &str, prompt: &str, image_digests: &[String], budget: u32) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"brain.orchestrate.v1");
    field(project_id.as_bytes());
    field(prompt.as_bytes());
    for digest in image_digests {
        field(digest.as_bytes());
    }
    field(&budget.to_be_bytes());
    hex::encode(h.finalize())
}

/// What makes an attached image the same in a retry: the id the client sent
/// (empty when the server assigns one) and the bytes' SHA-256, or the URL.
fn image_digest(image: &ImageInput) -> String {
    let source = match &image.source {
        Some(ImageSource::Data(bytes)) => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
        Some(ImageSource::Url(url)) => format!("url:{}", url.trim()),
        None => String::new(),
    };
    format!("{}\n{source}", image.image_id)
}

/// The packet with `attached` listed as pending: the attached images always,
/// then the oldest other pending images up to the packet's limit.
fn with_pending(packet: &ContextPacket, attached: &[String]) -> ContextPacket {
    let mut next = packet.clone();
    let room = (MAX_PENDING_IMAGES as usize).saturating_sub(attached.len());
    next.pending_image_ids.retain(|id| !attached.contains(id));
    next.pending_image_ids.truncate(room);
    next.pending_image_ids.extend(attached.iter().cloned());
    next
}

fn replay(stored: &StoredRequest, hash: &str) -> Result<Orchestrated> {
    if stored.request_hash != hash {
        return Err(Error::new(
            Reason::RequestIdReused,
            "request_id was already used for a different request (project, prompt, images or budget differ)",
        )
        .with_field("request_id"));
    }
    let orchestration: Orchestration = serde_json::from_str(&stored.response).map_err(|e| {
        Error::internal(format!("stored response of orchestration {} does not parse: {e}", stored.orchestration_id))
    })?;
    Ok(Orchestrated { orchestration, replayed: true, events_after: 0 })
}

fn warn_if_near_budget(project_id: &str, report: &TokenReport) {
    if report.budget_warning {
        tracing::warn!(
            %project_id,
            budget = report.budget,
            total = report.total_after,
            dropped = report.dropped.len(),
            "enhanced prompt is above 90% of its token budget"
        );
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn memory_put(
    project_id: &str,
    memory_type: MemoryType,
    key: &str,
    value: String,
    confidence: f64,
    source: MemorySource,
) -> MemoryPut {
    MemoryPut {
        project_id: project_id.to_owned(),
        memory_type,
        key: memory::clip(&render::one_line(key), validate::MAX_NAME_CHARS),
        value: memory::clip(&value, validate::MAX_TEXT_CHARS),
        // Model backends may report anything; memory holds 0..=1.
        confidence: if confidence.is_finite() { confidence.clamp(0.0, 1.0) } else { 0.5 },
        source,
        source_prompt: None,
        ttl_ms: None,
    }
}

/// Tokens of the item's line, exactly as the context renders it.
fn line_tokens(put: &MemoryPut) -> u32 {
    tokens::count(&render::memory_line(&put.key, &put.value, put.confidence))
}

fn tool_name(decision: &Decision) -> &'static str {
    match &decision.outcome {
        Outcome::Tool(call) => call.tool.as_str(),
        Outcome::Workflow(_) => "workflow",
        Outcome::Clarification { .. } => "clarification",
    }
}

/// The configured part of what a context packet holds.
fn packet_limits(config: &Config) -> PacketLimits {
    let settings = &config.orchestration;
    PacketLimits { recent_turns: settings.recent_turns, preferences: settings.max_preferences }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_hash_separates_fields() {
        let a = request_hash("p1", "ab", &[], 1000);
        assert_eq!(a, request_hash("p1", "ab", &[], 1000));
        assert_ne!(a, request_hash("p1a", "b", &[], 1000));
        assert_ne!(a, request_hash("p1", "ab", &[], 1001));
        assert_ne!(a, request_hash("p1", "ab", &["d".into()], 1000));
        assert_eq!(a.len(), 64);
    }
}
