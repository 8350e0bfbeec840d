//! `brain.v1.ImageFactsService`: maps requests to [`Images`] and back, and
//! turns a [`Watch`](crate::events::Watch) into a server stream.

use brain_proto::v1::{self as pb, image_facts_service_server::ImageFactsService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::{charge_images, convert::timestamp, note_project, tenant};
use crate::{
    events::WatchItem,
    images::{ImageInput, ImageSource, Images},
    model::{Event, EventType, ImageAnalysis, ImageFacts, ImageStatus, Orientation, TypographyStatus},
    perf::{Perf, StreamKind},
};

/// The ImageFactsService implementation.
pub struct ImageFactsApi {
    images: Images,
    perf: Perf,
    /// Ends watch streams when the server stops.
    shutdown: CancellationToken,
}

impl ImageFactsApi {
    /// Serves `images`; counts open streams in `perf`.
    pub fn new(images: Images, perf: Perf, shutdown: CancellationToken) -> Self {
        Self { images, perf, shutdown }
    }
}

#[tonic::async_trait]
impl ImageFactsService for ImageFactsApi {
    async fn analyze_images(
        &self,
        request: Request<pb::AnalyzeImagesRequest>,
    ) -> Result<Response<pb::AnalyzeImagesResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        charge_images(&request, &tenant, request.get_ref().images.len())?;
        let req = request.into_inner();
        let inputs = req.images.into_iter().map(image_input).collect();
        let analyses = self.images.analyze(&tenant, &req.project_id, inputs).await?;
        Ok(Response::new(pb::AnalyzeImagesResponse { analyses: analyses.iter().map(analysis).collect() }))
    }

    async fn get_image_facts(
        &self,
        request: Request<pb::GetImageFactsRequest>,
    ) -> Result<Response<pb::GetImageFactsResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.into_inner();
        let found = self.images.get(&tenant, &req.project_id, &req.image_id).await?;
        Ok(Response::new(pb::GetImageFactsResponse { analysis: Some(analysis(&found)) }))
    }

    async fn list_image_facts(
        &self,
        request: Request<pb::ListImageFactsRequest>,
    ) -> Result<Response<pb::ListImageFactsResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.into_inner();
        let page = self.images.list(&tenant, &req.project_id, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListImageFactsResponse {
            analyses: page.items.iter().map(analysis).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn watch_image_facts(
        &self,
        request: Request<pb::WatchImageFactsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<pb::WatchImageFactsResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.into_inner();
        let watch = self
            .images
            .watch(&tenant, &req.project_id, req.after_cursor, &req.orchestration_id, self.shutdown.clone())
            .await?;
        let guard = self.perf.stream_opened(StreamKind::WatchImageFacts);
        // No task or channel per stream: the stream is the subscription itself,
        // and dropping it (client gone) unregisters from the hub.
        let stream = futures::stream::unfold((watch, guard), |(mut watch, guard)| async move {
            let message = match watch.next().await? {
                Ok(WatchItem::Event(e)) => Ok(pb::WatchImageFactsResponse {
                    message: Some(pb::watch_image_facts_response::Message::Event(event(&e))),
                }),
                Ok(WatchItem::Heartbeat { time, latest_cursor }) => Ok(pb::WatchImageFactsResponse {
                    message: Some(pb::watch_image_facts_response::Message::Heartbeat(pb::Heartbeat {
                        time: Some(timestamp(time)),
                        latest_cursor,
                    })),
                }),
                Err(err) => Err(Status::from(err)),
            };
            Some((message, (watch, guard)))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// An image from the wire (also used by the orchestrator for attached images).
pub fn image_input(input: pb::ImageInput) -> ImageInput {
    ImageInput {
        source: input.source.map(|s| match s {
            pb::image_input::Source::Data(bytes) => ImageSource::Data(bytes),
            pb::image_input::Source::Url(url) => ImageSource::Url(url),
        }),
        mime_type: input.mime_type,
        image_id: input.image_id,
    }
}

/// An analysis on the wire.
pub fn analysis(a: &ImageAnalysis) -> pb::ImageAnalysis {
    pb::ImageAnalysis {
        image_id: a.image_id.clone(),
        project_id: a.project_id.clone(),
        orchestration_id: a.orchestration_id.clone().unwrap_or_default(),
        status: status(a.status) as i32,
        facts: a.facts.as_ref().map(facts),
        error: a.error.clone().unwrap_or_default(),
        attempts: a.attempts,
        source_url: a.source_url.clone().unwrap_or_default(),
        mime_type: a.mime_type.clone().unwrap_or_default(),
        byte_size: a.byte_size.unwrap_or_default(),
        create_time: Some(timestamp(a.created_at)),
        complete_time: a.completed_at.map(timestamp),
    }
}

fn status(s: ImageStatus) -> pb::ImageAnalysisStatus {
    match s {
        ImageStatus::Pending => pb::ImageAnalysisStatus::Pending,
        ImageStatus::Running => pb::ImageAnalysisStatus::Running,
        ImageStatus::Ready => pb::ImageAnalysisStatus::Ready,
        ImageStatus::Failed => pb::ImageAnalysisStatus::Failed,
    }
}

/// Image facts on the wire.
pub fn facts(f: &ImageFacts) -> pb::ImageFacts {
    pb::ImageFacts {
        palette: f
            .palette
            .iter()
            .map(|c| pb::PaletteColor { hex: c.hex.clone(), proportion: c.proportion, name: c.name.clone() })
            .collect(),
        mood: f.mood.clone(),
        typography: Some(pb::Typography {
            status: match f.typography.status {
                TypographyStatus::Unknown => pb::TypographyStatus::Unknown,
                TypographyStatus::None => pb::TypographyStatus::None,
                TypographyStatus::Detected => pb::TypographyStatus::Detected,
            } as i32,
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
        orientation: match f.orientation {
            Orientation::Landscape => pb::Orientation::Landscape,
            Orientation::Portrait => pb::Orientation::Portrait,
            Orientation::Square => pb::Orientation::Square,
        } as i32,
        aspect_ratio: f.aspect_ratio,
        analyzer: f.analyzer.clone(),
        content_sha256: f.content_sha256.clone(),
    }
}

/// An event on the wire (also used by OrchestrateStream).
pub fn event(e: &Event) -> pb::ImageFactsEvent {
    pb::ImageFactsEvent {
        cursor: e.cursor,
        r#type: match e.what.event_type {
            EventType::ImageFactsReady => pb::EventType::ImageFactsReady,
            EventType::ImageFactsProcessed => pb::EventType::ImageFactsProcessed,
            EventType::ImageFactsFailed => pb::EventType::ImageFactsFailed,
        } as i32,
        project_id: e.project_id.clone(),
        image_id: e.what.image_id.clone(),
        orchestration_id: e.what.orchestration_id.clone().unwrap_or_default(),
        facts: e.what.facts.as_ref().map(facts),
        error: e.what.error.clone().unwrap_or_default(),
        derived_preferences: e.what.derived_preferences.iter().cloned().map(pb::MemoryItem::from).collect(),
        create_time: Some(timestamp(e.created_at)),
    }
}
