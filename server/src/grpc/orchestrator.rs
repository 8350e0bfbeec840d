//! `brain.v1.OrchestratorService`: maps requests to [`Orchestrator`] and back.

use brain_proto::v1::{self as pb, orchestrator_service_server::OrchestratorService};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, codegen::BoxStream};

use super::{image_admission, note_project, stream, tenant};
use crate::orchestrator::{OrchestrateRequest, Orchestrator, StreamRequest};

/// The OrchestratorService implementation.
pub struct OrchestratorApi {
    orchestrator: Orchestrator,
    /// Ends streams when the server stops.
    shutdown: CancellationToken,
}

impl OrchestratorApi {
    /// Serves `orchestrator`; streams end on `shutdown`.
    pub fn new(orchestrator: Orchestrator, shutdown: CancellationToken) -> Self {
        Self { orchestrator, shutdown }
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
        let admission = image_admission(&request, &tenant);
        let input = OrchestrateRequest::from(request.into_inner());
        let done = self.orchestrator.orchestrate(&tenant, input, &admission, None).await?;
        Ok(Response::new(done.into()))
    }

    async fn orchestrate_stream(
        &self,
        request: Request<pb::OrchestrateStreamRequest>,
    ) -> Result<Response<BoxStream<pb::OrchestrateStreamResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let admission = image_admission(&request, &tenant);
        let input = StreamRequest::try_from(request.into_inner())?;
        let events = self.orchestrator.orchestrate_stream(tenant, input, admission, self.shutdown.clone())?;
        Ok(stream::response(events, self.shutdown.clone()))
    }

    async fn get_context_packet(
        &self,
        request: Request<pb::GetContextPacketRequest>,
    ) -> Result<Response<pb::GetContextPacketResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let view = self.orchestrator.context_packet(&tenant, &req.project_id, &req.prompt, req.token_budget).await?;
        Ok(Response::new(view.into()))
    }
}
