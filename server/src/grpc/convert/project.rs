//! ProjectService: projects, scenes and memory.

use brain_proto::v1 as pb;

use super::{duration_ms, timestamp, wire_enum};
use crate::{
    error::{Error, Reason, Result},
    model::{self, MemoryPut, MemorySelector, MemorySource, MemoryType, ProjectUpdate, SceneStatus, SceneUpsert},
};

/// A memory type from the wire; `None` for UNSPECIFIED.
pub fn memory_type(field: &str, value: i32) -> Result<Option<MemoryType>> {
    Ok(match wire_enum::<pb::MemoryType>(field, value)? {
        pb::MemoryType::Unspecified => None,
        pb::MemoryType::UserPreference => Some(MemoryType::UserPreference),
        pb::MemoryType::SceneRelationship => Some(MemoryType::SceneRelationship),
        pb::MemoryType::ConversationContext => Some(MemoryType::ConversationContext),
    })
}

/// A required memory type from the wire.
pub fn required_memory_type(field: &str, value: i32) -> Result<MemoryType> {
    memory_type(field, value)?.ok_or_else(|| Error::missing(field))
}

/// A scene status from the wire; UNSPECIFIED means OK.
pub fn scene_status(field: &str, value: i32) -> Result<SceneStatus> {
    wire_enum::<pb::SceneStatus>(field, value).map(SceneStatus::from)
}

impl From<pb::SceneStatus> for SceneStatus {
    fn from(s: pb::SceneStatus) -> Self {
        match s {
            pb::SceneStatus::Unspecified | pb::SceneStatus::Ok => SceneStatus::Ok,
            pb::SceneStatus::Broken => SceneStatus::Broken,
        }
    }
}

impl TryFrom<pb::UpsertSceneRequest> for SceneUpsert {
    type Error = Error;

    fn try_from(req: pb::UpsertSceneRequest) -> Result<Self> {
        Ok(SceneUpsert {
            status: scene_status("status", req.status)?,
            project_id: req.project_id,
            scene_id: Some(req.scene_id).filter(|id| !id.is_empty()),
            name: req.name,
            position: req.position,
            summary: req.summary,
            duration_seconds: req.duration_seconds,
        })
    }
}

/// UpdateProject per AIP-134: the mask names the fields to change; without a mask, every field
/// the request sets (non-empty) changes, because proto3 cannot tell an empty string from an unset
/// one. Validating the values is the service's job.
impl TryFrom<pb::UpdateProjectRequest> for ProjectUpdate {
    type Error = Error;

    fn try_from(req: pb::UpdateProjectRequest) -> Result<Self> {
        let project = req.project.ok_or_else(|| Error::missing("project"))?;
        let paths = req.update_mask.map(|mask| mask.paths).unwrap_or_default();
        let (mut name, mut description) = (false, false);
        if paths.is_empty() {
            name = !project.name.is_empty();
            description = !project.description.is_empty();
        }
        for path in &paths {
            match path.as_str() {
                "name" => name = true,
                "description" => description = true,
                "*" => (name, description) = (true, true),
                other => {
                    return Err(Error::invalid(
                        "update_mask",
                        format!("update_mask path {other:?} is not one of \"name\", \"description\", \"*\""),
                    ));
                }
            }
        }
        if !name && !description {
            return Err(Error::new(
                Reason::MissingField,
                "nothing to update: set update_mask, or a name or description",
            )
            .with_field("update_mask"));
        }
        Ok(ProjectUpdate {
            project_id: project.project_id,
            name: name.then_some(project.name),
            description: description.then_some(project.description),
        })
    }
}

/// PutMemory stores what the API client says, as said by the API.
impl TryFrom<pb::PutMemoryRequest> for MemoryPut {
    type Error = Error;

    fn try_from(req: pb::PutMemoryRequest) -> Result<Self> {
        Ok(MemoryPut {
            memory_type: required_memory_type("type", req.r#type)?,
            ttl_ms: duration_ms("ttl", req.ttl.as_ref())?,
            project_id: req.project_id,
            key: req.key,
            value: req.value,
            confidence: req.confidence.unwrap_or(1.0),
            source: MemorySource::Api,
            source_prompt: None,
        })
    }
}

impl TryFrom<Option<pb::delete_memory_request::Target>> for MemorySelector {
    type Error = Error;

    fn try_from(target: Option<pb::delete_memory_request::Target>) -> Result<Self> {
        match target {
            Some(pb::delete_memory_request::Target::MemoryId(id)) => Ok(MemorySelector::Id(id)),
            Some(pb::delete_memory_request::Target::MemoryKey(k)) => {
                Ok(MemorySelector::Key(required_memory_type("memory_key.type", k.r#type)?, k.key))
            }
            None => Err(Error::missing("memory_id")),
        }
    }
}

impl From<MemoryType> for pb::MemoryType {
    fn from(t: MemoryType) -> Self {
        match t {
            MemoryType::UserPreference => pb::MemoryType::UserPreference,
            MemoryType::SceneRelationship => pb::MemoryType::SceneRelationship,
            MemoryType::ConversationContext => pb::MemoryType::ConversationContext,
        }
    }
}

impl From<MemorySource> for pb::MemorySource {
    fn from(s: MemorySource) -> Self {
        match s {
            MemorySource::Api => pb::MemorySource::Api,
            MemorySource::Prompt => pb::MemorySource::Prompt,
            MemorySource::Image => pb::MemorySource::Image,
            MemorySource::Decision => pb::MemorySource::Decision,
        }
    }
}

impl From<SceneStatus> for pb::SceneStatus {
    fn from(s: SceneStatus) -> Self {
        match s {
            SceneStatus::Ok => pb::SceneStatus::Ok,
            SceneStatus::Broken => pb::SceneStatus::Broken,
        }
    }
}

impl From<model::Project> for pb::Project {
    fn from(p: model::Project) -> Self {
        pb::Project {
            project_id: p.id,
            name: p.name,
            description: p.description,
            create_time: Some(timestamp(p.created_at)),
            update_time: Some(timestamp(p.updated_at)),
        }
    }
}

impl From<model::ProjectDeletion> for pb::DeletedRows {
    fn from(d: model::ProjectDeletion) -> Self {
        Self {
            scenes: d.scenes,
            memory_items: d.memory_items,
            conversation_turns: d.conversation_turns,
            orchestrations: d.orchestrations,
            image_analyses: d.image_analyses,
            jobs: d.jobs,
            events: d.events,
        }
    }
}

impl From<model::Scene> for pb::Scene {
    fn from(s: model::Scene) -> Self {
        pb::Scene {
            scene_id: s.scene_id,
            project_id: s.project_id,
            name: s.name,
            position: s.position,
            summary: s.summary,
            duration_seconds: s.duration_seconds,
            status: pb::SceneStatus::from(s.status) as i32,
            summary_tokens: s.summary_tokens,
            create_time: Some(timestamp(s.created_at)),
            update_time: Some(timestamp(s.updated_at)),
        }
    }
}

impl From<model::MemoryItem> for pb::MemoryItem {
    fn from(m: model::MemoryItem) -> Self {
        pb::MemoryItem {
            memory_id: m.id,
            project_id: m.project_id,
            r#type: pb::MemoryType::from(m.memory_type) as i32,
            key: m.key,
            value: m.value,
            confidence: m.confidence,
            source: pb::MemorySource::from(m.source) as i32,
            source_prompt: m.source_prompt.unwrap_or_default(),
            token_count: m.token_count,
            occurrences: m.occurrences,
            create_time: Some(timestamp(m.created_at)),
            update_time: Some(timestamp(m.updated_at)),
            expire_time: m.expires_at.map(timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, description: &str, paths: Option<&[&str]>) -> pb::UpdateProjectRequest {
        pb::UpdateProjectRequest {
            project: Some(pb::Project {
                project_id: "p".into(),
                name: name.into(),
                description: description.into(),
                ..Default::default()
            }),
            update_mask: paths.map(|p| prost_types::FieldMask { paths: p.iter().map(|s| (*s).to_owned()).collect() }),
        }
    }

    fn fields(update: &ProjectUpdate) -> (Option<&str>, Option<&str>) {
        (update.name.as_deref(), update.description.as_deref())
    }

    #[test]
    fn update_mask_picks_the_fields() {
        let named = ProjectUpdate::try_from(request("n", "d", Some(&["name"]))).expect("name");
        assert_eq!(fields(&named), (Some("n"), None));
        let cleared = ProjectUpdate::try_from(request("n", "", Some(&["description"]))).expect("description");
        assert_eq!(fields(&cleared), (None, Some("")));
        let all = ProjectUpdate::try_from(request("n", "d", Some(&["*"]))).expect("all");
        assert_eq!(fields(&all), (Some("n"), Some("d")));
    }

    #[test]
    fn without_a_mask_the_non_empty_fields_change() {
        let implied = ProjectUpdate::try_from(request("n", "", None)).expect("no mask");
        assert_eq!(fields(&implied), (Some("n"), None));
        let implied = ProjectUpdate::try_from(request("", "d", Some(&[]))).expect("empty mask");
        assert_eq!(fields(&implied), (None, Some("d")));
        let nothing = ProjectUpdate::try_from(request("", "", None)).expect_err("nothing to update");
        assert_eq!(nothing.reason(), Reason::MissingField);
    }

    #[test]
    fn unknown_paths_are_invalid() {
        let err = ProjectUpdate::try_from(request("n", "", Some(&["name", "create_time"]))).expect_err("unknown");
        assert_eq!(err.reason(), Reason::InvalidField);
        assert_eq!(err.field(), Some("update_mask"));
        assert!(err.message().contains("create_time"), "{err:?}");
    }
}
