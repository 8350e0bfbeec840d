//! Domain types shared by the store and the domain modules: the bottom layer,
//! depending on nothing else in the crate.
//!
//! These mirror the `brain.v1` contract but are plain Rust: the domain never
//! sees proto types, and the grpc layer converts at the edge. Times are
//! milliseconds since the Unix epoch.

mod event;
mod image;
mod job;
#[cfg(test)]
pub(crate) mod testing;
mod transfer;

use serde::{Deserialize, Serialize};

pub use self::{
    event::{Event, EventPayload, EventType, NewEvent},
    image::{ImageAnalysis, ImageFacts, Layout, NewImage, Orientation, PaletteColor, Typography, TypographyStatus},
    job::{ClaimTurn, Job, JobStatus, NewJob},
    transfer::{EXPORT_FORMAT_VERSION, ExportHeader, ExportedTurn, ProjectRecord, RecordCounts},
};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// A new time-ordered id (UUIDv7, hyphenated lowercase).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The tenant a request acts for. Every stored row belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TenantId(pub String);

impl TenantId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    /// Unique name, as given to `keys create --tenant`.
    pub name: String,
    pub created_at: Millis,
}

/// An API key's public record (the key itself is never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyInfo {
    /// Id of the key record.
    pub id: String,
    pub tenant_id: TenantId,
    /// Owning tenant's name.
    pub tenant_name: String,
    /// First characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: Millis,
    /// Revocation time, if revoked.
    pub revoked_at: Option<Millis>,
    /// An admin key (AdminService only; `tenant_id` and `tenant_name` are empty).
    pub admin: bool,
}

/// Who a request acts as, from its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A tenant's key (or local mode's implicit tenant): brain's data RPCs, for that tenant.
    Tenant(TenantId),
    /// An admin key: AdminService only, for any tenant.
    Admin,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: String,
    pub created_at: Millis,
    /// Last change to the project or anything in it.
    pub updated_at: Millis,
}

/// What DeleteProject removed, by kind of row (the project row itself not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectDeletion {
    pub scenes: u64,
    pub memory_items: u64,
    pub conversation_turns: u64,
    /// Orchestrations, with their stored responses and idempotency keys.
    pub orchestrations: u64,
    pub image_analyses: u64,
    /// Pending, running and finished jobs.
    pub jobs: u64,
    pub events: u64,
}

impl ProjectDeletion {
    /// Rows of every kind together.
    pub fn total(&self) -> u64 {
        self.scenes
            + self.memory_items
            + self.conversation_turns
            + self.orchestrations
            + self.image_analyses
            + self.jobs
            + self.events
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &ProjectDeletion) {
        self.scenes += other.scenes;
        self.memory_items += other.memory_items;
        self.conversation_turns += other.conversation_turns;
        self.orchestrations += other.orchestrations;
        self.image_analyses += other.image_analyses;
        self.jobs += other.jobs;
        self.events += other.events;
    }
}

/// What PurgeTenant erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPurge {
    pub tenant: TenantId,
    pub projects: u64,
    pub api_keys: u64,
    /// Rows of the tenant's projects, summed over them.
    pub deleted: ProjectDeletion,
}

/// Whether a scene renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SceneStatus {
    /// It renders.
    Ok,
    /// It is broken.
    Broken,
}

impl SceneStatus {
    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            SceneStatus::Ok => "ok",
            SceneStatus::Broken => "broken",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(SceneStatus::Ok),
            "broken" => Some(SceneStatus::Broken),
            _ => None,
        }
    }
}

/// A scene of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub project_id: String,
    /// Id within the project.
    pub scene_id: String,
    pub name: String,
    /// 0-based position.
    pub position: u32,
    /// What it shows.
    pub summary: String,
    /// Stored o200k_base count of the scene's summary line.
    pub summary_tokens: u32,
    /// Length in seconds.
    pub duration_seconds: Option<f64>,
    /// Whether it renders.
    pub status: SceneStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Scene {
    /// A scene with just a name and a place: no summary, no length, rendering fine, never
    /// stored (zero timestamps). For deciders and tests that reason about scenes without a store;
    /// set other fields with struct update syntax.
    pub fn named(project_id: &str, scene_id: &str, name: &str, position: u32) -> Self {
        Self {
            project_id: project_id.into(),
            scene_id: scene_id.into(),
            name: name.into(),
            position,
            summary: String::new(),
            summary_tokens: 0,
            duration_seconds: None,
            status: SceneStatus::Ok,
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// Kind of a memory item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum MemoryType {
    /// A user preference.
    UserPreference,
    /// How a scene relates to the conversation.
    SceneRelationship,
    /// The latest interaction.
    ConversationContext,
}

impl MemoryType {
    /// Every type.
    pub const ALL: [MemoryType; 3] =
        [MemoryType::UserPreference, MemoryType::SceneRelationship, MemoryType::ConversationContext];

    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryType::UserPreference => "user_preference",
            MemoryType::SceneRelationship => "scene_relationship",
            MemoryType::ConversationContext => "conversation_context",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_preference" => Some(MemoryType::UserPreference),
            "scene_relationship" => Some(MemoryType::SceneRelationship),
            "conversation_context" => Some(MemoryType::ConversationContext),
            _ => None,
        }
    }
}

/// Where a memory item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemorySource {
    /// PutMemory.
    Api,
    /// Extracted from a prompt.
    Prompt,
    /// Derived from image facts.
    Image,
    /// Recorded from a decision.
    Decision,
}

impl MemorySource {
    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            MemorySource::Api => "api",
            MemorySource::Prompt => "prompt",
            MemorySource::Image => "image",
            MemorySource::Decision => "decision",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(MemorySource::Api),
            "prompt" => Some(MemorySource::Prompt),
            "image" => Some(MemorySource::Image),
            "decision" => Some(MemorySource::Decision),
            _ => None,
        }
    }
}

/// One remembered item of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryItem {
    pub id: String,
    pub project_id: String,
    pub memory_type: MemoryType,
    /// Key within the kind.
    pub key: String,
    pub value: String,
    /// Confidence from 0 to 1.
    pub confidence: f64,
    pub source: MemorySource,
    /// Prompt it came from, if any.
    pub source_prompt: Option<String>,
    /// Stored o200k_base count of the item's line.
    pub token_count: u32,
    /// Times the same value was seen.
    pub occurrences: u32,
    /// Expiry, if any.
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Input of CreateProject.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProject {
    pub name: String,
    pub description: String,
}

/// Input of UpdateProject: the fields to change, `None` for those left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectUpdate {
    /// Project to change.
    pub project_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Input of UpsertScene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneUpsert {
    pub project_id: String,
    /// Scene id; None lets the server assign one.
    pub scene_id: Option<String>,
    pub name: String,
    /// Target position; None appends a new scene or keeps an existing one in place.
    pub position: Option<u32>,
    pub summary: String,
    /// Length in seconds.
    pub duration_seconds: Option<f64>,
    pub status: SceneStatus,
}

/// Input of PutMemory and of memory writes by the domain.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPut {
    pub project_id: String,
    pub memory_type: MemoryType,
    pub key: String,
    pub value: String,
    /// Confidence from 0 to 1.
    pub confidence: f64,
    pub source: MemorySource,
    /// Prompt it came from.
    pub source_prompt: Option<String>,
    /// Lifetime in ms; None never expires.
    pub ttl_ms: Option<i64>,
}

/// Which memory item to delete.
#[derive(Debug, Clone, PartialEq)]
pub enum MemorySelector {
    /// By id.
    Id(String),
    /// By type and key.
    Key(MemoryType, String),
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Token for the next page; None on the last page.
    pub next_page_token: Option<String>,
}

/// Where an accepted image is in its analysis (stored in `image_analyses.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageStatus {
    /// Accepted, waiting for a worker or a retry.
    Pending,
    /// A worker is analysing it.
    Running,
    /// Facts are stored.
    Ready,
    /// Failed for good.
    Failed,
}

impl ImageStatus {
    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pending => "pending",
            ImageStatus::Running => "running",
            ImageStatus::Ready => "ready",
            ImageStatus::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ImageStatus::Pending),
            "running" => Some(ImageStatus::Running),
            "ready" => Some(ImageStatus::Ready),
            "failed" => Some(ImageStatus::Failed),
            _ => None,
        }
    }
}

/// One stored interaction of a project: what the user asked and what brain decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationTurn {
    /// Id (UUIDv7, so ids sort by time).
    pub id: String,
    /// Orchestration that recorded the turn.
    pub orchestration_id: Option<String>,
    /// What the user asked.
    pub prompt: String,
    /// What brain decided, in one line.
    pub decision_summary: String,
    /// Stored o200k_base count of the turn's lines in the enhanced prompt.
    pub token_count: u32,
    /// When it happened.
    pub created_at: Millis,
}
