//! Runs the rules decider on one prompt and prints the decision as JSON,
//! followed by the preferences the prompt states.
//!
//! ```text
//! cargo run -p brain-server --example decide -- "make the intro 5 seconds" "Intro,Product Demo,Outro" 0
//! ```
//! Scenes are comma-separated names; append `!` for a broken scene and
//! `=N` for a scene of N seconds ("Intro=6,Demo!,Outro"). The last argument
//! is the number of attached images. With `-` as the prompt, prompts are
//! read one per line from stdin.

use std::io::BufRead;

use brain_server::decide::{DecisionInput, preferences, rules};
use brain_server::model::{Scene, SceneStatus};

fn scenes(spec: &str) -> Vec<Scene> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(k, raw)| {
            let (raw, broken) = raw.strip_suffix('!').map(|r| (r, true)).unwrap_or((raw, false));
            let (name, duration) = match raw.split_once('=') {
                Some((n, d)) => (n, d.parse().ok()),
                None => (raw, None),
            };
            Scene {
                project_id: "p".into(),
                scene_id: format!("s{}", k + 1),
                name: name.to_string(),
                position: k as u32,
                summary: String::new(),
                summary_tokens: 0,
                duration_seconds: duration,
                status: if broken { SceneStatus::Broken } else { SceneStatus::Ok },
                created_at: 0,
                updated_at: 0,
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let prompt = args.first().cloned().unwrap_or_default();
    let scenes = scenes(args.get(1).map(String::as_str).unwrap_or("Intro,Product Demo,Outro"));
    let images: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
    let image_ids: Vec<String> = (1..=images).map(|k| format!("img-{k}")).collect();
    let prompts: Vec<String> =
        if prompt == "-" { std::io::stdin().lock().lines().map_while(Result::ok).collect() } else { vec![prompt] };
    for prompt in prompts {
        let input = DecisionInput {
            prompt: &prompt,
            scenes: &scenes,
            image_ids: &image_ids,
            preferences: &[],
            enhanced_prompt: "",
        };
        let decision = rules::decide(&input);
        match serde_json::to_string(&decision) {
            Ok(json) => println!("{prompt}\n  {json}"),
            Err(e) => eprintln!("{prompt}: {e}"),
        }
        let prefs: Vec<String> = preferences::extract(&prompt)
            .into_iter()
            .map(|p| format!("{}={} ({:.2})", p.key, p.value, p.confidence))
            .collect();
        println!("  preferences: [{}]", prefs.join(", "));
    }
}
