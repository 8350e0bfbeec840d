//! Events: late results of image analysis, in a project's log.

use serde::{Deserialize, Serialize};

use super::{ImageFacts, MemoryItem, Millis};

/// Kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An image's facts are stored.
    ImageFactsReady,
    /// An image's facts were turned into preferences; the project's context includes them.
    ImageFactsProcessed,
    /// An image's analysis failed for good.
    ImageFactsFailed,
}

impl EventType {
    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ImageFactsReady => "image_facts_ready",
            EventType::ImageFactsProcessed => "image_facts_processed",
            EventType::ImageFactsFailed => "image_facts_failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image_facts_ready" => Some(EventType::ImageFactsReady),
            "image_facts_processed" => Some(EventType::ImageFactsProcessed),
            "image_facts_failed" => Some(EventType::ImageFactsFailed),
            _ => None,
        }
    }

    /// Whether this is the last event an image gets.
    pub fn is_final(self) -> bool {
        matches!(self, EventType::ImageFactsProcessed | EventType::ImageFactsFailed)
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub image_id: String,
    /// Orchestration that attached the image.
    pub orchestration_id: Option<String>,
    /// Facts, for READY and PROCESSED.
    pub facts: Option<ImageFacts>,
    /// Reason, for FAILED.
    pub error: Option<String>,
    /// Preferences produced or reinforced, for PROCESSED.
    pub derived_preferences: Vec<MemoryItem>,
}

/// A stored event: what happened, where it sits in its project's log, and when it was committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the project's log.
    pub cursor: u64,
    pub project_id: String,
    /// Commit time.
    pub created_at: Millis,
    /// What happened, as its writer appended it.
    pub what: NewEvent,
}

/// What `events.payload` holds (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// Facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<ImageFacts>,
    /// Reason of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Derived preferences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_preferences: Vec<MemoryItem>,
}
