//! How the enhanced prompt looks, line by line.
//!
//! Token counts are taken once, when an item is written (memory items, scene
//! summaries, conversation turns) or when a packet is assembled (scene
//! headings, image facts, pending images), from exactly these lines.
//!
//! Why the counts add up: o200k_base first splits text into pieces with a
//! regex and then encodes each piece on its own. Every line here starts with
//! a letter, '-' or '#' and ends with '\n' right after a non-space character,
//! so no regex piece can span two lines: the '\n' ends its piece (alone, or
//! glued to the punctuation before it), and the next line's first character
//! can neither extend a whitespace run nor be swallowed by the `[\r\n/]*`
//! tail of a punctuation piece. The count of a concatenation of lines is
//! therefore the sum of the lines' counts. The user's prompt is free text and
//! comes last, counted together with its heading, so it cannot break this.

use crate::model::{ImageFacts, MemoryItem, Orientation, Scene, SceneStatus, TypographyStatus};

/// First line of the context, when there is any.
pub const CONTEXT_HEADING: &str = "# Project context\n";
/// Heading of the preferences section.
pub const PREFERENCES_HEADING: &str = "## User preferences (highest confidence first)\n";
/// Heading of the scenes section.
pub const SCENES_HEADING: &str = "## Scenes (in order)\n";
/// Heading of the image facts section.
pub const IMAGE_FACTS_HEADING: &str = "## Image facts (newest first)\n";
/// Heading of the conversation section.
pub const CONVERSATION_HEADING: &str = "## Recent conversation (oldest first)\n";
/// Heading of the pending images section.
pub const PENDING_IMAGES_HEADING: &str = "## Images still being analysed\n";
/// Heading of the user's prompt, which always comes last.
pub const PROMPT_HEADING: &str = "# User prompt\n";

/// Makes a value safe to embed in one line: newlines and other control characters become spaces.
pub fn one_line(text: &str) -> String {
    // Most values have no control character: one scan and one copy instead of a char-by-char
    // rebuild and a second copy (a quarter of a cold context build's time went there).
    if !text.chars().any(char::is_control) {
        return text.trim().to_owned();
    }
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// A memory item's line: `- key: value (confidence 0.85)`. Preferences and
/// scene relationships both render this way.
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

/// A conversation turn's two lines; their tokens are the turn's `token_count`.
pub fn turn_lines(prompt: &str, decision_summary: &str) -> String {
    format!("- User: {}\n- Brain: {}\n", or_dash(one_line(prompt)), or_dash(one_line(decision_summary)))
}

/// An analysed image's line: its mood, palette, size, tone, typography and layout.
pub fn image_facts_line(image_id: &str, facts: &ImageFacts) -> String {
    let mut parts = Vec::with_capacity(6);
    let mood = one_line(&facts.mood);
    if !mood.is_empty() {
        parts.push(format!("mood {mood}"));
    }
    let palette: Vec<String> = facts
        .palette
        .iter()
        .map(|c| format!("{} {} {}%", one_line(&c.name), one_line(&c.hex), (c.proportion * 100.0).round()))
        .collect();
    if !palette.is_empty() {
        parts.push(format!("palette {}", palette.join(", ")));
    }
    let orientation = match facts.orientation {
        Orientation::Landscape => "landscape",
        Orientation::Portrait => "portrait",
        Orientation::Square => "square",
    };
    parts.push(format!(
        "{}x{} {orientation}, brightness {:.2}, contrast {:.2}, saturation {:.2}, warmth {:+.2}",
        facts.width, facts.height, facts.brightness, facts.contrast, facts.saturation, facts.warmth
    ));
    match facts.typography.status {
        TypographyStatus::Unknown => {}
        TypographyStatus::None => parts.push("no text".into()),
        TypographyStatus::Detected => {
            let families: Vec<String> = facts.typography.font_families.iter().map(|f| one_line(f)).collect();
            let style = one_line(&facts.typography.style);
            let described = [families.join(" / "), style].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>();
            parts.push(format!("typography {}", or_dash(described.join(", "))));
        }
    }
    let layout = [
        one_line(&facts.layout.balance),
        Some(one_line(&facts.layout.dominant_region))
            .filter(|r| !r.is_empty())
            .map_or(String::new(), |r| format!("weight {r}")),
        one_line(&facts.layout.description),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>();
    if !layout.is_empty() {
        parts.push(format!("layout {}", layout.join(", ")));
    }
    format!("- Image {}: {}\n", one_line(image_id), parts.join("; "))
}

/// A pending image's line.
pub fn pending_image_line(image_id: &str) -> String {
    format!("- Image {} (analysis in progress)\n", one_line(image_id))
}

fn or_dash(text: String) -> String {
    if text.is_empty() { "-".into() } else { text }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{
        context::tokens::count,
        model::{Layout, PaletteColor, Typography},
    };

    #[test]
    fn lines_are_additive_under_o200k() {
        let lines = [
            memory_line("style", "minimal, flat", 0.8),
            memory_line("color", "dark blue!\nnew line", 1.0),
            scene_summary_line("A logo reveal over a gradient."),
            memory_line("pace", "fast...", 0.55),
            scene_summary_line("Ends with a question?"),
            turn_lines("make it /faster/ ", "editScene on scene s1 (surgical)"),
            pending_image_line("img-1"),
            PROMPT_HEADING.to_owned(),
        ];
        let joined: String = lines.concat();
        let summed: u32 = lines.iter().map(|l| count(l)).sum();
        assert_eq!(count(&joined), summed);
    }

    /// Text meant to stress the pre-tokenizer: every Unicode class the o200k
    /// regex distinguishes, runs of whitespace and newlines, digits,
    /// contractions, slashes and lookalikes of special tokens.
    pub(crate) fn nasty_text(rng: &mut StdRng, max_len: usize) -> String {
        const PIECES: &[&str] = &[
            " ",
            "  ",
            "\n",
            "\r\n",
            "\t",
            "\u{2028}",
            "\u{a0}",
            "/",
            "//",
            "-",
            "#",
            "'s",
            "'LL",
            "\"",
            "(",
            ")",
            ":",
            "...",
            "!?",
            "1",
            "42",
            "2024",
            "3.14",
            "é",
            "É",
            "ß",
            "ǅ",
            "ʰ",
            "\u{301}",
            "日本語",
            "한국어",
            "ـ",
            "👍🏽",
            "🇫🇷",
            "<|endoftext|>",
            "word",
            "Word",
            "WORD",
            "camelCase",
            "x",
            "\u{85}",
            "\u{0}",
            "\u{feff}",
            "٣",
        ];
        let len = rng.random_range(0..=max_len);
        let mut s = String::new();
        for _ in 0..len {
            if rng.random_bool(0.15) {
                s.push(char::from_u32(rng.random_range(0x20..0x3_0000)).unwrap_or('?'));
            } else {
                s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
        }
        s
    }

    pub(crate) fn random_facts(rng: &mut StdRng) -> ImageFacts {
        ImageFacts {
            palette: (0..rng.random_range(0..6))
                .map(|_| PaletteColor {
                    hex: format!("#{:06x}", rng.random_range(0..0x100_0000)),
                    proportion: rng.random_range(0.0..1.0),
                    name: nasty_text(rng, 3),
                })
                .collect(),
            mood: nasty_text(rng, 2),
            typography: Typography {
                status: [TypographyStatus::Unknown, TypographyStatus::None, TypographyStatus::Detected]
                    [rng.random_range(0..3)],
                font_families: (0..rng.random_range(0..3)).map(|_| nasty_text(rng, 2)).collect(),
                style: nasty_text(rng, 2),
            },
            layout: Layout {
                weight_grid: vec![1.0 / 9.0; 9],
                dominant_region: nasty_text(rng, 2),
                balance: nasty_text(rng, 2),
                description: nasty_text(rng, 6),
            },
            width: rng.random_range(1..5000),
            height: rng.random_range(1..5000),
            processing_ms: 1.0,
            brightness: rng.random_range(0.0..1.0),
            contrast: rng.random_range(0.0..1.0),
            saturation: rng.random_range(0.0..1.0),
            warmth: rng.random_range(-1.0..1.0),
            orientation: Orientation::Landscape,
            aspect_ratio: 1.5,
            analyzer: "pixels".into(),
            content_sha256: String::new(),
        }
    }

    #[test]
    fn random_lines_are_additive_under_o200k() {
        let mut rng = StdRng::seed_from_u64(0x0062_7261_696e);
        for round in 0..300 {
            let mut lines = Vec::new();
            for _ in 0..rng.random_range(1..12) {
                let line = match rng.random_range(0..7) {
                    0 => memory_line(&nasty_text(&mut rng, 4), &nasty_text(&mut rng, 20), rng.random_range(0.0..1.0)),
                    1 => scene_summary_line(&nasty_text(&mut rng, 20)),
                    2 => turn_lines(&nasty_text(&mut rng, 20), &nasty_text(&mut rng, 8)),
                    3 => image_facts_line(&nasty_text(&mut rng, 3), &random_facts(&mut rng)),
                    4 => pending_image_line("img_1.b-2"),
                    5 => [CONTEXT_HEADING, PREFERENCES_HEADING, SCENES_HEADING, CONVERSATION_HEADING]
                        [rng.random_range(0..4)]
                    .to_owned(),
                    _ => {
                        let scene = Scene {
                            duration_seconds: Some(rng.random_range(0.1..100.0)),
                            status: SceneStatus::Broken,
                            ..crate::model::testing::scene("s1", &nasty_text(&mut rng, 5), rng.random_range(0..100))
                        };
                        scene_heading_line(&scene)
                    }
                };
                lines.push(line);
            }
            let joined: String = lines.concat();
            let summed: u32 = lines.iter().map(|l| count(l)).sum();
            assert_eq!(count(&joined), summed, "round {round}: {joined:?}");
        }
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(memory_line("k", "a\nb", 1.0), "- k: a b (confidence 1.00)\n");
        assert_eq!(scene_summary_line("  "), "");
        assert_eq!(turn_lines("a\r\nb", ""), "- User: a  b\n- Brain: -\n");
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let line = image_facts_line("i", &random_facts(&mut rng));
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            assert!(line.ends_with('\n'));
        }
    }
}
