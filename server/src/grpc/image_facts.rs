//! `brain.v1.ImageFactsService`: maps requests to [`Images`] and back.

use brain_proto::v1::{self as pb, image_facts_service_server::ImageFactsService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::{image_admission, note_project, stream, tenant};
use crate::images::Images;

/// The ImageFactsService implementation.
pub struct ImageFactsApi {
    images: Images,
    /// Ends watch streams when the server stops.
    shutdown: CancellationToken,
}

impl ImageFactsApi {
    /// Serves `images`; watch streams end on `shutdown`.
    pub fn new(images: Images, shutdown: CancellationToken) -> Self {
        Self { images, shutdown }
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
        let admission = image_admission(&request, &tenant);
        let req = request.into_inner();
        let inputs = req.images.into_iter().map(Into::into).collect();
        let analyses = self.images.analyze(&tenant, &req.project_id, inputs, &admission).await?;
        Ok(Response::new(pb::AnalyzeImagesResponse { analyses: analyses.iter().map(Into::into).collect() }))
    }

    async fn get_image_facts(
        &self,
        request: Request<pb::GetImageFactsRequest>,
    ) -> Result<Response<pb::GetImageFactsResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let found = self.images.get(&tenant, &req.project_id, &req.image_id).await?;
        Ok(Response::new(pb::GetImageFactsResponse { analysis: Some(found.as_ref().into()) }))
    }

    async fn list_image_facts(
        &self,
        request: Request<pb::ListImageFactsRequest>,
    ) -> Result<Response<pb::ListImageFactsResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let page = self.images.list(&tenant, &req.project_id, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListImageFactsResponse {
            analyses: page.items.iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn watch_image_facts(
        &self,
        request: Request<pb::WatchImageFactsRequest>,
    ) -> Result<Response<BoxStream<pb::WatchImageFactsResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let shutdown = self.shutdown.clone();
        let events = self
            .images
            .watch(&tenant, &req.project_id, req.after_cursor, &req.orchestration_id, shutdown.clone())
            .await?;
        Ok(stream::response(events, shutdown))
    }
}
