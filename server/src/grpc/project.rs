//! `brain.v1.ProjectService`: maps requests to [`Projects`] and back.

use brain_proto::v1::{self as pb, project_service_server::ProjectService};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming, codegen::BoxStream};

use super::{convert, note_project, rpc_context, status::unreadable_stream_message, stream, tenant};
use crate::{
    model::{MemoryPut, MemorySelector, ProjectUpdate, SceneUpsert},
    projects::Projects,
};

/// The ProjectService implementation.
pub struct ProjectApi {
    projects: Projects,
    /// Ends exports when the server stops.
    shutdown: CancellationToken,
    /// Largest message accepted, named in an import's oversized-record error.
    max_message_bytes: usize,
}

impl ProjectApi {
    /// Serves `projects`; exports end on `shutdown`.
    pub fn new(projects: Projects, shutdown: CancellationToken, max_message_bytes: usize) -> Self {
        Self { projects, shutdown, max_message_bytes }
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let tenant = tenant(&request)?;
        let context = rpc_context(&request);
        let req = request.into_inner();
        let project = self.projects.create(&tenant, &req.name, &req.description).await?;
        if let Some(context) = context {
            context.note_project(&project.id);
        }
        Ok(Response::new(pb::CreateProjectResponse { project: Some(project.into()) }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let project = self.projects.get(&tenant, &request.get_ref().project_id).await?;
        Ok(Response::new(pb::GetProjectResponse { project: Some(project.into()) }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let tenant = tenant(&request)?;
        let req = request.get_ref();
        let page = self.projects.list(&tenant, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn update_project(
        &self,
        request: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::UpdateProjectResponse>, Status> {
        let tenant = tenant(&request)?;
        let project_id = request.get_ref().project.as_ref().map(|p| p.project_id.clone()).unwrap_or_default();
        note_project(&request, &project_id);
        let update = ProjectUpdate::try_from(request.into_inner())?;
        let project = self.projects.update(&tenant, update).await?;
        Ok(Response::new(pb::UpdateProjectResponse { project: Some(project.into()) }))
    }

    async fn delete_project(
        &self,
        request: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let deleted = self.projects.delete(&tenant, &request.get_ref().project_id).await?;
        Ok(Response::new(pb::DeleteProjectResponse { deleted: Some(deleted.into()) }))
    }

    async fn export_project(
        &self,
        request: Request<pb::ExportProjectRequest>,
    ) -> Result<Response<BoxStream<pb::ExportProjectResponse>>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let records = self.projects.export(&tenant, &request.get_ref().project_id).await?;
        Ok(stream::response(records, self.shutdown.clone()))
    }

    async fn import_project(
        &self,
        request: Request<Streaming<pb::ImportProjectRequest>>,
    ) -> Result<Response<pb::ImportProjectResponse>, Status> {
        let tenant = tenant(&request)?;
        let context = rpc_context(&request);
        let limit = self.max_message_bytes;
        let records = request.into_inner().zip(futures::stream::iter(0u64..)).map(move |(item, index)| {
            let record = match item {
                Ok(message) => convert::project_record(message.record),
                // The client's stream broke or a message could not be decoded (too large, malformed).
                Err(status) => Err(unreadable_stream_message(&status, "record", limit)),
            };
            record.map_err(|err| err.in_record(index))
        });
        let (project, imported) = self.projects.import(&tenant, Box::pin(records)).await?;
        if let Some(context) = context {
            context.note_project(&project.id);
        }
        Ok(Response::new(pb::ImportProjectResponse { project: Some(project.into()), imported: Some(imported.into()) }))
    }

    async fn upsert_scene(
        &self,
        request: Request<pb::UpsertSceneRequest>,
    ) -> Result<Response<pb::UpsertSceneResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let up = SceneUpsert::try_from(request.into_inner())?;
        let (scene, created) = self.projects.upsert_scene(&tenant, up).await?;
        Ok(Response::new(pb::UpsertSceneResponse { scene: Some(scene.into()), created }))
    }

    async fn delete_scene(
        &self,
        request: Request<pb::DeleteSceneRequest>,
    ) -> Result<Response<pb::DeleteSceneResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        self.projects.delete_scene(&tenant, &req.project_id, &req.scene_id).await?;
        Ok(Response::new(pb::DeleteSceneResponse {}))
    }

    async fn list_scenes(
        &self,
        request: Request<pb::ListScenesRequest>,
    ) -> Result<Response<pb::ListScenesResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let page = self.projects.list_scenes(&tenant, &req.project_id, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListScenesResponse {
            scenes: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn put_memory(
        &self,
        request: Request<pb::PutMemoryRequest>,
    ) -> Result<Response<pb::PutMemoryResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let put = MemoryPut::try_from(request.into_inner())?;
        let (memory, created) = self.projects.put_memory(&tenant, put).await?;
        Ok(Response::new(pb::PutMemoryResponse { memory: Some(memory.into()), created }))
    }

    async fn delete_memory(
        &self,
        request: Request<pb::DeleteMemoryRequest>,
    ) -> Result<Response<pb::DeleteMemoryResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.into_inner();
        let selector = MemorySelector::try_from(req.target)?;
        self.projects.delete_memory(&tenant, &req.project_id, selector).await?;
        Ok(Response::new(pb::DeleteMemoryResponse {}))
    }

    async fn list_memories(
        &self,
        request: Request<pb::ListMemoriesRequest>,
    ) -> Result<Response<pb::ListMemoriesResponse>, Status> {
        let tenant = tenant(&request)?;
        note_project(&request, &request.get_ref().project_id);
        let req = request.get_ref();
        let memory_type = convert::memory_type("type", req.r#type)?;
        let page =
            self.projects.list_memories(&tenant, &req.project_id, memory_type, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListMemoriesResponse {
            memories: page.items.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
