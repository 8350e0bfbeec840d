//! ExportProject and ImportProject: records both ways. Wire → domain checks
//! only what the wire can get wrong (enums, missing timestamps); the service
//! checks values as the write RPCs do. Field names are relative to the record
//! (`scene.create_time`); the handler places them (`records[N].scene.create_time`).

use brain_proto::v1 as pb;
use prost_types::Timestamp;

use super::{project::required_memory_type, scene_status, timestamp, wire_enum};
use crate::{
    error::{Error, Result},
    model::{
        ConversationTurn, ExportHeader, ExportedTurn, ImageAnalysis, ImageFacts, ImageStatus, Layout, MemoryItem,
        MemorySource, Millis, Orientation, PaletteColor, ProjectRecord, RecordCounts, Scene, TenantId, Typography,
        TypographyStatus,
    },
};

impl From<ProjectRecord> for pb::ExportProjectResponse {
    fn from(record: ProjectRecord) -> Self {
        use pb::project_record::Record;
        let record = match record {
            ProjectRecord::Header(h) => Record::Header(pb::ExportHeader {
                format_version: h.format_version,
                project: Some(pb::Project {
                    project_id: h.project_id,
                    name: h.name,
                    description: h.description,
                    create_time: Some(timestamp(h.created_at)),
                    update_time: Some(timestamp(h.updated_at)),
                }),
                counts: Some(h.counts.into()),
            }),
            ProjectRecord::Scene(scene) => Record::Scene(scene.into()),
            ProjectRecord::Memory(memory) => Record::Memory(memory.into()),
            ProjectRecord::Turn(t) => Record::Turn(pb::ConversationTurn { archived: t.archived, ..t.turn.into() }),
            ProjectRecord::Image(image) => Record::Image(image.as_ref().into()),
        };
        pb::ExportProjectResponse { record: Some(pb::ProjectRecord { record: Some(record) }) }
    }
}

impl From<RecordCounts> for pb::ProjectRecordCounts {
    fn from(c: RecordCounts) -> Self {
        pb::ProjectRecordCounts {
            scenes: c.scenes,
            memory_items: c.memory_items,
            conversation_turns: c.conversation_turns,
            image_analyses: c.image_analyses,
        }
    }
}

/// One record of an ImportProject stream.
pub fn project_record(record: Option<pb::ProjectRecord>) -> Result<ProjectRecord> {
    use pb::project_record::Record;
    let Some(record) = record.and_then(|r| r.record) else {
        return Err(Error::missing("record"));
    };
    Ok(match record {
        Record::Header(h) => {
            let project = h.project.ok_or_else(|| Error::missing("header.project"))?;
            let counts = h.counts.unwrap_or_default();
            ProjectRecord::Header(ExportHeader {
                format_version: h.format_version,
                created_at: millis("header.project.create_time", project.create_time)?,
                updated_at: millis("header.project.update_time", project.update_time)?,
                project_id: project.project_id,
                name: project.name,
                description: project.description,
                counts: RecordCounts {
                    scenes: counts.scenes,
                    memory_items: counts.memory_items,
                    conversation_turns: counts.conversation_turns,
                    image_analyses: counts.image_analyses,
                },
            })
        }
        Record::Scene(s) => ProjectRecord::Scene(Scene {
            status: scene_status("scene.status", s.status)?,
            created_at: millis("scene.create_time", s.create_time)?,
            updated_at: millis("scene.update_time", s.update_time)?,
            project_id: s.project_id,
            scene_id: s.scene_id,
            name: s.name,
            position: s.position,
            summary: s.summary,
            summary_tokens: s.summary_tokens,
            duration_seconds: s.duration_seconds,
        }),
        Record::Memory(m) => ProjectRecord::Memory(MemoryItem {
            memory_type: required_memory_type("memory.type", m.r#type)?,
            source: memory_source(m.source)?,
            expires_at: m.expire_time.map(|t| millis("memory.expire_time", Some(t))).transpose()?,
            created_at: millis("memory.create_time", m.create_time)?,
            updated_at: millis("memory.update_time", m.update_time)?,
            id: m.memory_id,
            project_id: m.project_id,
            key: m.key,
            value: m.value,
            confidence: m.confidence,
            source_prompt: Some(m.source_prompt).filter(|p| !p.is_empty()),
            token_count: m.token_count,
            occurrences: m.occurrences,
        }),
        Record::Turn(t) => ProjectRecord::Turn(ExportedTurn {
            turn: ConversationTurn {
                created_at: millis("turn.create_time", t.create_time)?,
                id: t.turn_id,
                orchestration_id: Some(t.orchestration_id).filter(|id| !id.is_empty()),
                prompt: t.prompt,
                decision_summary: t.decision_summary,
                token_count: t.token_count,
            },
            archived: t.archived,
        }),
        Record::Image(a) => ProjectRecord::Image(Box::new(image_analysis(a)?)),
    })
}

fn memory_source(value: i32) -> Result<MemorySource> {
    Ok(match wire_enum::<pb::MemorySource>("memory.source", value)? {
        pb::MemorySource::Unspecified => return Err(Error::missing("memory.source")),
        pb::MemorySource::Api => MemorySource::Api,
        pb::MemorySource::Prompt => MemorySource::Prompt,
        pb::MemorySource::Image => MemorySource::Image,
        pb::MemorySource::Decision => MemorySource::Decision,
    })
}

fn image_analysis(a: pb::ImageAnalysis) -> Result<ImageAnalysis> {
    let status = match wire_enum::<pb::ImageAnalysisStatus>("image.status", a.status)? {
        pb::ImageAnalysisStatus::Unspecified => return Err(Error::missing("image.status")),
        pb::ImageAnalysisStatus::Pending => ImageStatus::Pending,
        pb::ImageAnalysisStatus::Running => ImageStatus::Running,
        pb::ImageAnalysisStatus::Ready => ImageStatus::Ready,
        pb::ImageAnalysisStatus::Failed => ImageStatus::Failed,
    };
    let facts = a.facts.map(image_facts).transpose()?;
    Ok(ImageAnalysis {
        content_sha256: facts.as_ref().map(|f| f.content_sha256.clone()).filter(|h| !h.is_empty()),
        facts,
        status,
        created_at: millis("image.create_time", a.create_time)?,
        completed_at: a.complete_time.map(|t| millis("image.complete_time", Some(t))).transpose()?,
        image_id: a.image_id,
        // Both are the importing project's; the store writes those.
        project_id: a.project_id,
        tenant_id: TenantId(String::new()),
        orchestration_id: Some(a.orchestration_id).filter(|id| !id.is_empty()),
        error: Some(a.error).filter(|e| !e.is_empty()),
        attempts: a.attempts,
        source_url: Some(a.source_url).filter(|u| !u.is_empty()),
        mime_type: Some(a.mime_type).filter(|m| !m.is_empty()),
        byte_size: Some(a.byte_size).filter(|&b| b > 0),
    })
}

fn image_facts(f: pb::ImageFacts) -> Result<ImageFacts> {
    let typography = f.typography.ok_or_else(|| Error::missing("image.facts.typography"))?;
    let layout = f.layout.ok_or_else(|| Error::missing("image.facts.layout"))?;
    Ok(ImageFacts {
        palette: f
            .palette
            .into_iter()
            .map(|c| PaletteColor { hex: c.hex, proportion: c.proportion, name: c.name })
            .collect(),
        mood: f.mood,
        typography: Typography {
            status: match wire_enum::<pb::TypographyStatus>("image.facts.typography.status", typography.status)? {
                pb::TypographyStatus::Unspecified | pb::TypographyStatus::Unknown => TypographyStatus::Unknown,
                pb::TypographyStatus::None => TypographyStatus::None,
                pb::TypographyStatus::Detected => TypographyStatus::Detected,
            },
            font_families: typography.font_families,
            style: typography.style,
        },
        layout: Layout {
            weight_grid: layout.weight_grid,
            dominant_region: layout.dominant_region,
            balance: layout.balance,
            description: layout.description,
        },
        width: f.width,
        height: f.height,
        processing_ms: f.processing_ms,
        brightness: f.brightness,
        contrast: f.contrast,
        saturation: f.saturation,
        warmth: f.warmth,
        orientation: match wire_enum::<pb::Orientation>("image.facts.orientation", f.orientation)? {
            pb::Orientation::Unspecified => return Err(Error::missing("image.facts.orientation")),
            pb::Orientation::Landscape => Orientation::Landscape,
            pb::Orientation::Portrait => Orientation::Portrait,
            pb::Orientation::Square => Orientation::Square,
        },
        aspect_ratio: f.aspect_ratio,
        analyzer: f.analyzer,
        content_sha256: f.content_sha256,
    })
}

/// A required Timestamp as ms since the epoch; nanos must be 0..=999,999,999 and the
/// time must fit in ms.
fn millis(field: &str, time: Option<Timestamp>) -> Result<Millis> {
    let time = time.ok_or_else(|| Error::missing(field))?;
    if !(0..=999_999_999).contains(&time.nanos) {
        return Err(Error::invalid(field, format!("{field}.nanos must be from 0 to 999,999,999")));
    }
    time.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(time.nanos / 1_000_000)))
        .ok_or_else(|| Error::invalid(field, format!("{field} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Reason;

    fn round_trip(record: ProjectRecord) -> ProjectRecord {
        let wire = pb::ExportProjectResponse::from(record);
        project_record(wire.record).expect("reads back")
    }

    #[test]
    fn records_survive_the_wire() {
        let scene = Scene {
            summary: "a beach".into(),
            duration_seconds: Some(4.5),
            created_at: 7,
            updated_at: 9,
            ..Scene::named("p", "s1", "Intro", 0)
        };
        assert_eq!(round_trip(ProjectRecord::Scene(scene.clone())), ProjectRecord::Scene(scene));
        let turn = ExportedTurn {
            turn: ConversationTurn {
                id: "t1".into(),
                orchestration_id: Some("o1".into()),
                prompt: "make it blue".into(),
                decision_summary: "editScene".into(),
                token_count: 12,
                created_at: 1_700_000_000_123,
            },
            archived: true,
        };
        assert_eq!(round_trip(ProjectRecord::Turn(turn.clone())), ProjectRecord::Turn(turn));
    }

    #[test]
    fn wire_mistakes_name_their_field() {
        let err = project_record(None).expect_err("empty");
        assert_eq!((err.reason(), err.field()), (Reason::MissingField, Some("record")));
        let scene = pb::ProjectRecord { record: Some(pb::project_record::Record::Scene(pb::Scene::default())) };
        let err = project_record(Some(scene)).expect_err("no timestamps");
        assert_eq!(err.field(), Some("scene.create_time"));
        let bad_time = Some(Timestamp { seconds: i64::MAX, nanos: 0 });
        assert_eq!(millis("t", bad_time).map_err(|e| e.reason()), Err(Reason::InvalidField));
    }
}
