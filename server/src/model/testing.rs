//! Values for unit tests across the crate.

use super::Scene;

/// A scene of project "p": no summary, no length, rendering fine, zero
/// timestamps. Tests set other fields with struct update syntax.
pub(crate) fn scene(id: &str, name: &str, position: u32) -> Scene {
    Scene::named("p", id, name, position)
}

/// Scenes with these names, in order, with ids "s1", "s2", ...
pub(crate) fn scenes(names: &[&str]) -> Vec<Scene> {
    names.iter().zip(0u32..).map(|(name, k)| scene(&format!("s{}", k + 1), name, k)).collect()
}
