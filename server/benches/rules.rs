//! How long the rules decider takes per decision, and preference
//! extraction per prompt.
//!
//! `cargo bench -p brain-server --bench rules`

use std::hint::black_box;

use brain_server::decide::{DecisionInput, preferences, rules};
use brain_server::model::{Scene, SceneStatus};
use criterion::{Criterion, criterion_group, criterion_main};

fn scenes(names: &[&str]) -> Vec<Scene> {
    names
        .iter()
        .enumerate()
        .map(|(k, n)| Scene {
            project_id: "p".into(),
            scene_id: format!("s{k}"),
            name: (*n).to_string(),
            position: k as u32,
            summary: String::new(),
            summary_tokens: 0,
            duration_seconds: Some(5.0),
            status: SceneStatus::Ok,
            created_at: 0,
            updated_at: 0,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let small = scenes(&["Intro", "Product Demo", "Outro"]);
    let names: Vec<String> = (0..50).map(|k| format!("Feature Highlight {k}")).collect();
    let large = scenes(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let images = vec!["img-1".to_string()];
    let long_prompt = "Please keep the overall look consistent with our brand and make sure the copy stays friendly. "
        .repeat(20)
        + "Then make the intro background dark blue and shorten scene 3 to 4 seconds.";
    let cases: [(&str, &str, &[Scene], &[String]); 6] = [
        ("edit_by_name", "make the intro background dark blue", &small, &[]),
        (
            "workflow",
            "first delete the outro, then add a scene with our logo, and finally make the intro 5 seconds",
            &small,
            &[],
        ),
        ("clarification", "make the text red", &small, &[]),
        ("image_edit", "make the intro match the colors of this image", &small, &images),
        ("fifty_scenes", "make feature highlight 42 feel more energetic", &large, &[]),
        ("long_prompt_2kb", &long_prompt, &small, &[]),
    ];
    let mut group = c.benchmark_group("rules_decide");
    for (name, prompt, scenes, image_ids) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let input = DecisionInput { prompt, scenes, image_ids, preferences: &[], enhanced_prompt: "" };
                black_box(rules::decide(black_box(&input)))
            })
        });
    }
    group.finish();
    c.bench_function("preferences_extract", |b| {
        b.iter(|| {
            black_box(preferences::extract(black_box(
                "I prefer dark backgrounds and always use serif fonts. Keep it fast-paced.",
            )))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
