//! Context build for a project with 5,000 memory items (~120k tokens).
//!
//! - `warm/fit`: what a context build costs once the packet is prepared
//!   (cached): sum the stored counts, tokenize only the prompt, render the
//!   enhanced prompt and the token report within the default 120,000 budget.
//! - `naive/tokenize_all`: the same packet rendered and tokenized in full on
//!   every build, which is what stored counts avoid (a lower bound: it does
//!   not even fit the budget).
//! - `cold/prepare_and_fit`: a cache miss after the store read: render and
//!   count what is not stored (scene headings), then fit.
//!
//! Run: `cargo bench -p brain-server --bench context`

use std::hint::black_box;

use brain_server::{
    context::{
        budget,
        packet::{ContextPacket, PreparedPacket, SceneContext},
        render, tokens,
    },
    model::{ConversationTurn, MemoryItem, MemorySource, MemoryType, Scene, SceneStatus},
};
use criterion::{Criterion, criterion_group, criterion_main};

const ASPECTS: &[&str] = &[
    "style",
    "pace",
    "color",
    "font",
    "music",
    "transition",
    "logo",
    "tone",
    "camera",
    "layout",
    "caption",
    "duration",
];
const ADJECTIVES: &[&str] = &[
    "minimal",
    "bold",
    "playful",
    "calm",
    "energetic",
    "corporate",
    "elegant",
    "retro",
    "warm",
    "cool",
    "dark",
    "bright",
];
const NOUNS: &[&str] =
    &["gradients", "typography", "cuts", "fades", "shapes", "icons", "backgrounds", "titles", "overlays", "charts"];

/// A realistic preference, about 24 tokens on its line.
fn preference(i: usize) -> MemoryItem {
    let key = format!("{}-{}", ASPECTS[i % ASPECTS.len()], i);
    let value = format!(
        "prefers {} {} with {} accents in scene {} and keeps the {} {} consistent",
        ADJECTIVES[i % ADJECTIVES.len()],
        NOUNS[(i / 3) % NOUNS.len()],
        ADJECTIVES[(i / 7) % ADJECTIVES.len()],
        i % 40 + 1,
        ADJECTIVES[(i / 11) % ADJECTIVES.len()],
        NOUNS[(i / 5) % NOUNS.len()],
    );
    let confidence = 0.3 + (i % 70) as f64 / 100.0;
    MemoryItem {
        id: format!("m{i:05}"),
        project_id: "bench".into(),
        memory_type: MemoryType::UserPreference,
        // Counted once, as a write would.
        token_count: tokens::count(&render::memory_line(&key, &value, confidence)),
        key,
        value,
        confidence,
        source: MemorySource::Prompt,
        source_prompt: None,
        occurrences: 1,
        expires_at: None,
        created_at: 0,
        updated_at: i as i64,
    }
}

fn packet() -> ContextPacket {
    let mut preferences: Vec<MemoryItem> = (0..5_000).map(preference).collect();
    preferences.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let scenes = (0..12u32)
        .map(|i| {
            let summary = format!("Scene {i} shows the product dashboard with animated charts and a bold title.");
            SceneContext {
                scene: Scene {
                    project_id: "bench".into(),
                    scene_id: format!("scene-{i}"),
                    name: format!("Scene {i}"),
                    position: i,
                    summary_tokens: tokens::count(&render::scene_summary_line(&summary)),
                    summary,
                    duration_seconds: Some(4.0),
                    status: SceneStatus::Ok,
                    created_at: 0,
                    updated_at: i64::from(i),
                },
                relationships: Vec::new(),
            }
        })
        .collect();
    let recent_turns = (0..10)
        .map(|i| {
            let prompt = format!("make scene {i} feel more energetic and shorten it to three seconds");
            let summary = format!("editScene on scene scene-{i} (creative)");
            ConversationTurn {
                id: format!("t{i}"),
                orchestration_id: None,
                token_count: tokens::count(&render::turn_lines(&prompt, &summary)),
                prompt,
                decision_summary: summary,
                created_at: i,
            }
        })
        .collect();
    ContextPacket {
        project_id: "bench".into(),
        preferences,
        scenes,
        image_facts: Vec::new(),
        recent_turns,
        pending_image_ids: Vec::new(),
        built_at: 0,
    }
}

const PROMPT: &str = "Make the intro feel more energetic: faster cuts, a brighter palette, and keep the logo on screen \
                      a little longer before the product demo starts.";

fn bench(c: &mut Criterion) {
    tokens::warm_up();
    let packet = packet();
    let prepared = PreparedPacket::prepare(packet.clone());
    let full = budget::fit(&prepared, PROMPT, 128_000).expect("fits the window");
    let fitted = budget::fit(&prepared, PROMPT, 120_000).expect("fits the default budget");
    assert_eq!(fitted.report.total_after, tokens::count(&fitted.enhanced_prompt));
    eprintln!(
        "packet: {} memory items, {} tokens in full; default budget keeps {} tokens, drops {} items",
        packet.preferences.len(),
        full.report.total_after,
        fitted.report.total_after,
        fitted.report.dropped.len()
    );

    let mut group = c.benchmark_group("context_build_5000_items");
    group.sample_size(30);
    group.bench_function("warm/fit", |b| {
        b.iter(|| {
            black_box(budget::fit(black_box(&prepared), black_box(PROMPT), 120_000)).map(|f| f.report.total_after)
        })
    });
    group.bench_function("naive/tokenize_all", |b| {
        b.iter(|| {
            // Render every line and count the whole prompt, as a build without stored counts must.
            let mut text = String::with_capacity(full.enhanced_prompt.len());
            text.push_str(render::CONTEXT_HEADING);
            text.push_str(render::PREFERENCES_HEADING);
            for m in &packet.preferences {
                text.push_str(&render::memory_item_line(m));
            }
            text.push_str(render::SCENES_HEADING);
            for s in &packet.scenes {
                text.push_str(&render::scene_heading_line(&s.scene));
                text.push_str(&render::scene_summary_line(&s.scene.summary));
            }
            text.push_str(render::CONVERSATION_HEADING);
            for t in &packet.recent_turns {
                text.push_str(&render::turn_lines(&t.prompt, &t.decision_summary));
            }
            text.push_str(render::PROMPT_HEADING);
            text.push_str(PROMPT);
            black_box(tokens::count(&text))
        })
    });
    group.bench_function("cold/prepare_and_fit", |b| {
        b.iter(|| {
            let prepared = PreparedPacket::prepare(black_box(packet.clone()));
            black_box(budget::fit(&prepared, PROMPT, 120_000)).map(|f| f.report.total_after)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
