//! Values for unit tests across the crate.

use super::{Scene, SceneStatus};

/// A scene of project "p": no summary, no length, rendering fine, zero
/// timestamps. Tests set other fields with struct update syntax.
pub(crate) fn scene(id: &str, name: &str, position: u32) -> Scene {
    Scene {
        project_id: "p".into(),
        scene_id: id.into(),
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

/// Scenes with these names, in order, with ids "s1", "s2", ...
pub(crate) fn scenes(names: &[&str]) -> Vec<Scene> {
    names.iter().zip(0u32..).map(|(name, k)| scene(&format!("s{}", k + 1), name, k)).collect()
}
