//! How stored items appear in the enhanced prompt, line by line.
//!
//! Token counts are taken once, when an item is written, from exactly these
//! lines. Every line starts with a letter or '-' and ends with '\n', so
//! o200k_base's pre-tokenizer never merges text across two lines and the
//! prompt's total is the sum of its lines' counts.

use crate::model::{MemoryItem, Scene, SceneStatus};

/// Makes a value safe to embed in one line: newlines and other control characters become spaces.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// A memory item's line: `- key: value (confidence 0.85)`.
pub fn memory_line(key: &str, value: &str, confidence: f64) -> String {
    format!("- {}: {} (confidence {:.2})\n", one_line(key), one_line(value), confidence)
}

/// The line of a stored memory item.
pub fn memory_item_line(item: &MemoryItem) -> String {
    memory_line(&item.key, &item.value, item.confidence)
}

/// A scene's heading line, which stays even when its summary is dropped:
/// `- Scene 1 "Intro" [id s1, 5s, broken]`.
pub fn scene_heading_line(scene: &Scene) -> String {
    let mut tags = vec![format!("id {}", scene.scene_id)];
    if let Some(d) = scene.duration_seconds {
        tags.push(format!("{}s", trim_float(d)));
    }
    if scene.status == SceneStatus::Broken {
        tags.push("broken".into());
    }
    format!("- Scene {} \"{}\" [{}]\n", scene.position + 1, one_line(&scene.name), tags.join(", "))
}

/// A scene summary's line; its tokens are the scene's `summary_tokens`.
/// An empty summary renders as nothing and costs nothing.
pub fn scene_summary_line(summary: &str) -> String {
    let summary = one_line(summary);
    if summary.is_empty() { String::new() } else { format!("Summary: {summary}\n") }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tokens::count;

    #[test]
    fn lines_are_additive_under_o200k() {
        let lines = [
            memory_line("style", "minimal, flat", 0.8),
            memory_line("color", "dark blue!\nnew line", 1.0),
            scene_summary_line("A logo reveal over a gradient."),
            memory_line("pace", "fast...", 0.55),
            scene_summary_line("Ends with a question?"),
        ];
        let joined: String = lines.concat();
        let summed: u32 = lines.iter().map(|l| count(l)).sum();
        assert_eq!(count(&joined), summed);
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(memory_line("k", "a\nb", 1.0), "- k: a b (confidence 1.00)\n");
        assert_eq!(scene_summary_line("  "), "");
    }
}
