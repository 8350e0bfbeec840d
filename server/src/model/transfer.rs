//! ExportProject and ImportProject: a project as a sequence of records.

use super::{ConversationTurn, ImageAnalysis, MemoryItem, Millis, Scene};

/// The export format this server writes and reads.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// How many records of each kind an export holds (or an import stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    pub scenes: u64,
    pub memory_items: u64,
    /// Archived ones included.
    pub conversation_turns: u64,
    pub image_analyses: u64,
}

impl RecordCounts {
    /// Records of every kind together.
    pub fn total(&self) -> u64 {
        self.scenes + self.memory_items + self.conversation_turns + self.image_analyses
    }
}

/// The first record of an export: the project and what follows.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportHeader {
    pub format_version: u32,
    /// Id of the exported project (an import assigns a new one).
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Records that follow, by kind.
    pub counts: RecordCounts,
}

/// One record of an export, in the order an export lists them: the header,
/// then scenes, memory items, turns and image analyses ([`ProjectRecord::rank`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectRecord {
    Header(ExportHeader),
    Scene(Scene),
    Memory(MemoryItem),
    Turn(ExportedTurn),
    /// Boxed: an analysis with its facts is three times the size of any other record.
    Image(Box<ImageAnalysis>),
}

/// A conversation turn with what only an export carries: whether it is archived.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedTurn {
    pub turn: ConversationTurn,
    /// Retention archived it: kept, but no longer in context packets.
    pub archived: bool,
}

impl ProjectRecord {
    /// Where the record's kind comes in an export: records never go back to an earlier kind.
    pub fn rank(&self) -> u8 {
        match self {
            ProjectRecord::Header(_) => 0,
            ProjectRecord::Scene(_) => 1,
            ProjectRecord::Memory(_) => 2,
            ProjectRecord::Turn(_) => 3,
            ProjectRecord::Image(_) => 4,
        }
    }

    /// The record's kind as its field in the contract's `ProjectRecord` oneof.
    pub fn kind(&self) -> &'static str {
        match self {
            ProjectRecord::Header(_) => "header",
            ProjectRecord::Scene(_) => "scene",
            ProjectRecord::Memory(_) => "memory",
            ProjectRecord::Turn(_) => "turn",
            ProjectRecord::Image(_) => "image",
        }
    }
}
