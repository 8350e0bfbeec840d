//! ImageFactsService: images, their analyses, facts and events.

use brain_proto::v1 as pb;

use super::timestamp;
use crate::{
    events::WatchItem,
    images::{ImageInput, ImageSource},
    model::{Event, EventType, ImageAnalysis, ImageFacts, ImageStatus, Orientation, TypographyStatus},
};

/// An image from the wire (AnalyzeImages, and the images attached to a prompt).
impl From<pb::ImageInput> for ImageInput {
    fn from(input: pb::ImageInput) -> Self {
        ImageInput {
            source: input.source.map(|s| match s {
                pb::image_input::Source::Data(bytes) => ImageSource::Data(bytes),
                pb::image_input::Source::Url(url) => ImageSource::Url(url),
            }),
            mime_type: input.mime_type,
            image_id: input.image_id,
        }
    }
}

impl From<&ImageAnalysis> for pb::ImageAnalysis {
    fn from(a: &ImageAnalysis) -> Self {
        pb::ImageAnalysis {
            image_id: a.image_id.clone(),
            project_id: a.project_id.clone(),
            orchestration_id: a.orchestration_id.clone().unwrap_or_default(),
            status: pb::ImageAnalysisStatus::from(a.status) as i32,
            facts: a.facts.as_ref().map(Into::into),
            error: a.error.clone().unwrap_or_default(),
            attempts: a.attempts,
            source_url: a.source_url.clone().unwrap_or_default(),
            mime_type: a.mime_type.clone().unwrap_or_default(),
            byte_size: a.byte_size.unwrap_or_default(),
            create_time: Some(timestamp(a.created_at)),
            complete_time: a.completed_at.map(timestamp),
        }
    }
}

impl From<ImageStatus> for pb::ImageAnalysisStatus {
    fn from(s: ImageStatus) -> Self {
        match s {
            ImageStatus::Pending => pb::ImageAnalysisStatus::Pending,
            ImageStatus::Running => pb::ImageAnalysisStatus::Running,
            ImageStatus::Ready => pb::ImageAnalysisStatus::Ready,
            ImageStatus::Failed => pb::ImageAnalysisStatus::Failed,
        }
    }
}

impl From<TypographyStatus> for pb::TypographyStatus {
    fn from(s: TypographyStatus) -> Self {
        match s {
            TypographyStatus::Unknown => pb::TypographyStatus::Unknown,
            TypographyStatus::None => pb::TypographyStatus::None,
            TypographyStatus::Detected => pb::TypographyStatus::Detected,
        }
    }
}

impl From<Orientation> for pb::Orientation {
    fn from(o: Orientation) -> Self {
        match o {
            Orientation::Landscape => pb::Orientation::Landscape,
            Orientation::Portrait => pb::Orientation::Portrait,
            Orientation::Square => pb::Orientation::Square,
        }
    }
}

impl From<&ImageFacts> for pb::ImageFacts {
    fn from(f: &ImageFacts) -> Self {
        pb::ImageFacts {
            palette: f
                .palette
                .iter()
                .map(|c| pb::PaletteColor { hex: c.hex.clone(), proportion: c.proportion, name: c.name.clone() })
                .collect(),
            mood: f.mood.clone(),
            typography: Some(pb::Typography {
                status: pb::TypographyStatus::from(f.typography.status) as i32,
                font_families: f.typography.font_families.clone(),
                style: f.typography.style.clone(),
            }),
            layout: Some(pb::Layout {
                weight_grid: f.layout.weight_grid.clone(),
                dominant_region: f.layout.dominant_region.clone(),
                balance: f.layout.balance.clone(),
                description: f.layout.description.clone(),
            }),
            width: f.width,
            height: f.height,
            processing_ms: f.processing_ms,
            brightness: f.brightness,
            contrast: f.contrast,
            saturation: f.saturation,
            warmth: f.warmth,
            orientation: pb::Orientation::from(f.orientation) as i32,
            aspect_ratio: f.aspect_ratio,
            analyzer: f.analyzer.clone(),
            content_sha256: f.content_sha256.clone(),
        }
    }
}

impl From<EventType> for pb::EventType {
    fn from(t: EventType) -> Self {
        match t {
            EventType::ImageFactsReady => pb::EventType::ImageFactsReady,
            EventType::ImageFactsProcessed => pb::EventType::ImageFactsProcessed,
            EventType::ImageFactsFailed => pb::EventType::ImageFactsFailed,
        }
    }
}

/// An event (WatchImageFacts, and an orchestration's image events).
impl From<&Event> for pb::ImageFactsEvent {
    fn from(e: &Event) -> Self {
        pb::ImageFactsEvent {
            cursor: e.cursor,
            r#type: pb::EventType::from(e.what.event_type) as i32,
            project_id: e.project_id.clone(),
            image_id: e.what.image_id.clone(),
            orchestration_id: e.what.orchestration_id.clone().unwrap_or_default(),
            facts: e.what.facts.as_ref().map(Into::into),
            error: e.what.error.clone().unwrap_or_default(),
            derived_preferences: e.what.derived_preferences.iter().cloned().map(pb::MemoryItem::from).collect(),
            create_time: Some(timestamp(e.created_at)),
        }
    }
}

impl From<WatchItem> for pb::WatchImageFactsResponse {
    fn from(item: WatchItem) -> Self {
        let message = match item {
            WatchItem::Event(e) => pb::watch_image_facts_response::Message::Event(e.as_ref().into()),
            WatchItem::Heartbeat { time, latest_cursor } => {
                pb::watch_image_facts_response::Message::Heartbeat(pb::Heartbeat {
                    time: Some(timestamp(time)),
                    latest_cursor,
                })
            }
        };
        pb::WatchImageFactsResponse { message: Some(message) }
    }
}
