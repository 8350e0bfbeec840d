//! Exact-match evaluation of the rules decider on the labelled decision
//! examples: the shared set (`fixtures/decisions.jsonl`, copied unchanged
//! from the eval README) and our own (`fixtures/decisions_extra.jsonl`, same
//! format; scenes may also carry `"status": "broken"` and `"duration"`),
//! plus two held-out batches (`fixtures/decisions_holdout.jsonl`,
//! `fixtures/decisions_holdout2.jsonl`), each labelled before the rules
//! were run on it (first-run scores are in docs/RULES.md), so that the score
//! is not only measured on cases the rules were shaped around.
//!
//! Run with `cargo test -p brain-server --test rules_eval -- --nocapture`
//! to see the scores, the per-label confusion and every miss.

use std::collections::BTreeMap;

use brain_server::decide::rules;
use brain_server::decide::{DecisionInput, Outcome, ToolCall};
use brain_server::model::{Scene, SceneStatus};
use serde_json::Value;

const REQUIRED_ACCURACY: f64 = 0.90;

struct Case {
    file: &'static str,
    line: usize,
    prompt: String,
    scenes: Vec<Scene>,
    images: Vec<String>,
    expect: Value,
}

fn load(file: &'static str) -> Vec<Case> {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1));
            let scenes = v["scenes"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}:{}: scenes", i + 1))
                .iter()
                .enumerate()
                .map(|(k, s)| Scene {
                    duration_seconds: s.get("duration").and_then(Value::as_f64),
                    status: match s.get("status").and_then(Value::as_str) {
                        Some("broken") => SceneStatus::Broken,
                        _ => SceneStatus::Ok,
                    },
                    ..Scene::named(
                        "p",
                        s["id"].as_str().expect("scene id"),
                        s["name"].as_str().expect("scene name"),
                        k as u32,
                    )
                })
                .collect();
            let n = v["images"].as_u64().unwrap_or(0) as usize;
            Case {
                file,
                line: i + 1,
                prompt: v["prompt"].as_str().expect("prompt").to_string(),
                scenes,
                images: (1..=n).map(|k| format!("img-{k}")).collect(),
                expect: v["expect"].clone(),
            }
        })
        .collect()
}

/// "5" or 5 → 5.0.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn step_matches(expect: &Value, call: &ToolCall) -> bool {
    if expect["kind"] != "tool" || expect["tool"].as_str() != Some(call.tool.as_str()) {
        return false;
    }
    if let Some(t) = expect.get("target").and_then(Value::as_str)
        && call.target_scene_id.as_deref() != Some(t)
    {
        return false;
    }
    if let Some(c) = expect.get("complexity").and_then(Value::as_str)
        && call.complexity.map(|x| x.as_str()) != Some(c)
    {
        return false;
    }
    if let Some(d) = expect.get("params").and_then(|p| p.get("duration_seconds")).and_then(number) {
        match call.params.duration_seconds {
            Some(got) if (got - d).abs() < 1e-6 => {}
            _ => return false,
        }
    }
    true
}

fn matches(expect: &Value, outcome: &Outcome) -> bool {
    match (expect["kind"].as_str(), outcome) {
        (Some("tool"), Outcome::Tool(call)) => step_matches(expect, call),
        (Some("workflow"), Outcome::Workflow(calls)) => {
            let steps = expect["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            steps.len() == calls.len() && steps.iter().zip(calls).all(|(e, c)| step_matches(e, c))
        }
        (Some("clarification"), Outcome::Clarification { .. }) => true,
        _ => false,
    }
}

fn expected_label(expect: &Value) -> String {
    match expect["kind"].as_str() {
        Some("tool") => expect["tool"].as_str().unwrap_or("?").to_string(),
        Some(k) => k.to_string(),
        None => "?".to_string(),
    }
}

fn actual_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Tool(c) => c.tool.as_str().to_string(),
        Outcome::Workflow(_) => "workflow".to_string(),
        Outcome::Clarification { .. } => "clarification".to_string(),
    }
}

fn describe(outcome: &Outcome) -> String {
    let call = |c: &ToolCall| {
        let mut s = c.tool.as_str().to_string();
        if let Some(t) = &c.target_scene_id {
            s.push_str(&format!(" target={t}"));
        }
        if let Some(x) = c.complexity {
            s.push_str(&format!(" {}", x.as_str()));
        }
        if let Some(d) = c.params.duration_seconds {
            s.push_str(&format!(" duration={d}"));
        }
        s
    };
    match outcome {
        Outcome::Tool(c) => call(c),
        Outcome::Workflow(cs) => format!("workflow[{}]", cs.iter().map(call).collect::<Vec<_>>().join(", ")),
        Outcome::Clarification { question, .. } => format!("clarification: {question}"),
    }
}

#[derive(Default)]
struct Score {
    hits: usize,
    total: usize,
}

impl Score {
    fn pct(&self) -> f64 {
        if self.total == 0 { 0.0 } else { 100.0 * self.hits as f64 / self.total as f64 }
    }
}

#[test]
fn rules_decider_exact_match_on_labelled_examples() {
    let mut cases = load("decisions.jsonl");
    let shared_count = cases.len();
    cases.extend(load("decisions_extra.jsonl"));
    let holdout = load("decisions_holdout.jsonl");
    assert!(holdout.len() >= 50, "the held-out set has {} cases", holdout.len());
    cases.extend(holdout);
    cases.extend(load("decisions_holdout2.jsonl"));
    assert!(shared_count >= 30, "the shared set has {shared_count} cases");
    assert!(cases.len() - shared_count >= 80, "the extra set has {} cases", cases.len() - shared_count);

    let mut by_file: BTreeMap<&str, Score> = BTreeMap::new();
    let mut per_label: BTreeMap<String, Score> = BTreeMap::new();
    // expected label → actual label → count
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in &cases {
        let input = DecisionInput {
            prompt: &case.prompt,
            scenes: &case.scenes,
            image_ids: &case.images,
            preferences: &[],
            enhanced_prompt: "",
        };
        let decision = rules::decide(&input);
        let hit = matches(&case.expect, &decision.outcome);
        let file = by_file.entry(case.file).or_default();
        file.total += 1;
        file.hits += usize::from(hit);
        let label = expected_label(&case.expect);
        let score = per_label.entry(label.clone()).or_default();
        score.total += 1;
        score.hits += usize::from(hit);
        *confusion.entry(label).or_default().entry(actual_label(&decision.outcome)).or_default() += 1;
        if !hit {
            misses.push(format!(
                "  {}:{} {:?} (scenes {}, images {})\n      expected {}\n      got      {}",
                case.file,
                case.line,
                case.prompt,
                case.scenes.len(),
                case.images.len(),
                case.expect,
                describe(&decision.outcome)
            ));
        }
    }
    let overall =
        Score { hits: by_file.values().map(|s| s.hits).sum(), total: by_file.values().map(|s| s.total).sum() };

    println!("\nrules decider exact match");
    for (file, s) in &by_file {
        println!("  {file:<24} {:>3}/{:<3} {:>6.1}%", s.hits, s.total, s.pct());
    }
    println!("  {:<24} {:>3}/{:<3} {:>6.1}%", "overall", overall.hits, overall.total, overall.pct());
    println!("\nper expected label: hits/total, then what the decider answered");
    for (label, s) in &per_label {
        let answered: Vec<String> = confusion[label].iter().map(|(a, n)| format!("{a}={n}")).collect();
        println!("  {label:<22} {:>3}/{:<3} {:>6.1}%   {}", s.hits, s.total, s.pct(), answered.join(" "));
    }
    println!("\nmisses ({}):", misses.len());
    for m in &misses {
        println!("{m}");
    }

    let accuracy = overall.hits as f64 / overall.total as f64;
    assert!(
        accuracy >= REQUIRED_ACCURACY,
        "exact match {:.1}% is below {:.0}%",
        accuracy * 100.0,
        REQUIRED_ACCURACY * 100.0
    );
}
