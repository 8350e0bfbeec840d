//! The `openai` decider against a loopback stand-in that speaks the
//! chat-completions wire format: good answers decide; malformed, off-schema
//! and out-of-context answers, slow answers, HTTP errors and a dead endpoint
//! fall back to the rules with a reason; retryable failures are retried;
//! persistent failures open the circuit, which recovers through a probe.
//!
//! Run with `cargo test -p brain-server --test openai_decider`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use brain_server::config::{Config, DeciderKind, OpenAiSettings};
use brain_server::decide::openai::{CircuitState, OpenAiDecider};
use brain_server::decide::rules::{self, RulesDecider};
use brain_server::decide::{
    Decider, Decision, DecisionBackend, DecisionInput, EditComplexity, Outcome, Tool, ToolCall, decider_from_config,
};
use brain_server::model::{Scene, SceneStatus};
use brain_server::redact::Secret;
use serde_json::{Value, json};

// ---------------------------------------------------------------- stand-in

/// What the stand-in answers to one request.
#[derive(Clone, Debug)]
enum Reply {
    /// 200 with a chat completion whose message content is this.
    Content(String),
    /// This status and raw body, with an optional `Retry-After` in seconds.
    Status(u16, String, Option<u64>),
    /// Waits, then answers.
    Slow(Duration, Box<Reply>),
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    otherwise: Option<Reply>,
    requests: Vec<(Option<String>, Value)>,
}

#[derive(Clone, Default)]
struct StandIn(Arc<Mutex<Script>>);

impl StandIn {
    /// Answers the next requests with these, in order.
    fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.0.lock().unwrap().queue.extend(replies);
    }
    /// Answers with this once the queue is empty.
    fn otherwise(&self, reply: Reply) {
        self.0.lock().unwrap().otherwise = Some(reply);
    }
    /// Requests received so far.
    fn requests(&self) -> usize {
        self.0.lock().unwrap().requests.len()
    }
    fn last_request(&self) -> (Option<String>, Value) {
        self.0.lock().unwrap().requests.last().cloned().expect("a request")
    }
}

fn chat(content: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "decider-test",
        "choices": [{
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": content, "refusal": null}
        }],
        "usage": {"prompt_tokens": 900, "completion_tokens": 60, "total_tokens": 960}
    }))
    .into_response()
}

async fn reply(r: Reply) -> Response {
    let mut r = r;
    loop {
        match r {
            Reply::Content(content) => return chat(&content),
            Reply::Status(code, body, retry_after) => {
                let status = StatusCode::from_u16(code).unwrap();
                let mut response = (status, [("content-type", "application/json")], body).into_response();
                if let Some(s) = retry_after {
                    response.headers_mut().insert("retry-after", s.to_string().parse().unwrap());
                }
                return response;
            }
            Reply::Slow(wait, then) => {
                tokio::time::sleep(wait).await;
                r = *then;
            }
        }
    }
}

async fn completions(State(s): State<StandIn>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let next = {
        let mut script = s.0.lock().unwrap();
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        script.requests.push((auth, body));
        script.queue.pop_front().or_else(|| script.otherwise.clone())
    };
    match next {
        Some(r) => reply(r).await,
        None => (StatusCode::INTERNAL_SERVER_ERROR, "no scripted reply").into_response(),
    }
}

async fn stand_in() -> (SocketAddr, StandIn) {
    let state = StandIn::default();
    let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

// ---------------------------------------------------------------- helpers

fn settings(addr: SocketAddr) -> OpenAiSettings {
    OpenAiSettings {
        base_url: Secret::url(format!("http://{addr}/v1/")),
        api_key: Some(Secret::new("test-key")),
        model: "decider-test".into(),
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(10),
        max_retries: 2,
        backoff: Duration::from_millis(10),
        breaker_threshold: 5,
        breaker_cooldown: Duration::from_secs(30),
        ..Config::default().openai
    }
}

fn decider(settings: OpenAiSettings) -> OpenAiDecider {
    OpenAiDecider::new(settings, Arc::new(RulesDecider)).unwrap()
}

fn scenes() -> Vec<Scene> {
    vec![
        Scene::named("p", "s1", "Intro", 0),
        Scene::named("p", "s2", "Product Demo", 1),
        Scene::named("p", "s3", "Outro", 2),
    ]
}

const PROMPT: &str = "make the intro background dark blue";
const CONTEXT: &str = "# Project context\n## Scenes (in order)\n- Scene 1 \"Intro\" [id s1]\n# User prompt\n";

async fn decide(d: &dyn Decider, scenes: &[Scene], prompt: &str, images: &[String]) -> Decision {
    let enhanced = format!("{CONTEXT}{prompt}");
    d.decide(&DecisionInput { prompt, scenes, image_ids: images, preferences: &[], enhanced_prompt: &enhanced }).await
}

fn rules_decision(scenes: &[Scene], prompt: &str, images: &[String]) -> Decision {
    rules::decide(&DecisionInput { prompt, scenes, image_ids: images, preferences: &[], enhanced_prompt: "" })
}

/// A decision in the wire shape of the response schema.
fn wire(d: &Decision) -> Value {
    fn step(c: &ToolCall) -> Value {
        let attributes: Vec<Value> = c.params.attributes.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        json!({
            "tool": c.tool.as_str(),
            "target_scene_id": c.target_scene_id,
            "complexity": c.complexity.map(EditComplexity::as_str),
            "duration_seconds": c.params.duration_seconds,
            "insert_position": c.params.insert_position,
            "image_ids": c.params.image_ids,
            "attributes": attributes,
            "instruction": c.instruction,
        })
    }
    let (kind, steps, question, candidates) = match &d.outcome {
        Outcome::Tool(c) => ("tool", vec![step(c)], None, vec![]),
        Outcome::Workflow(cs) => ("workflow", cs.iter().map(step).collect(), None, vec![]),
        Outcome::Clarification { question, candidate_scene_ids } => {
            ("clarification", vec![], Some(question.clone()), candidate_scene_ids.clone())
        }
    };
    json!({
        "kind": kind,
        "steps": steps,
        "question": question,
        "candidate_scene_ids": candidates,
        "reasoning": d.reasoning,
        "confidence": d.confidence,
    })
}

fn edit_intro() -> String {
    json!({
        "kind": "tool",
        "steps": [{
            "tool": "editScene",
            "target_scene_id": "s1",
            "complexity": "surgical",
            "duration_seconds": null,
            "insert_position": null,
            "image_ids": [],
            "attributes": [{"key": "background", "value": "dark blue"}],
            "instruction": "make the intro background dark blue"
        }],
        "question": null,
        "candidate_scene_ids": [],
        "reasoning": "One property of the Intro scene changes.",
        "confidence": 0.92
    })
    .to_string()
}

fn good() -> Reply {
    Reply::Content(edit_intro())
}

fn server_error(code: u16) -> Reply {
    Reply::Status(code, json!({"error": {"message": "upstream overloaded", "type": "server_error"}}).to_string(), None)
}

fn reason(d: &Decision) -> &str {
    d.fallback_reason.as_deref().unwrap_or("")
}

/// The fallback is exactly what the rules decide, plus the reason.
fn assert_rules_fallback(d: &Decision, prompt: &str, code: &str) {
    assert_eq!(d.backend, DecisionBackend::Rules, "{d:?}");
    assert!(reason(d).starts_with(&format!("{code}: ")), "expected {code}, got {:?}", d.fallback_reason);
    let rules = rules_decision(&scenes(), prompt, &[]);
    assert_eq!((&d.outcome, &d.reasoning, d.confidence), (&rules.outcome, &rules.reasoning, rules.confidence));
}

// ---------------------------------------------------------------- tests

/// Named so that `cargo test -p brain-server openai` selects these.
mod openai {
    use super::*;

    #[tokio::test]
    async fn a_good_answer_decides_and_the_request_is_the_chat_completions_wire_format() {
        let (addr, s) = stand_in().await;
        s.then([good()]);
        let d = decide(&decider(settings(addr)), &scenes(), PROMPT, &[]).await;

        assert_eq!(d.backend, DecisionBackend::Openai);
        assert_eq!(d.fallback_reason, None);
        assert_eq!(d.reasoning, "One property of the Intro scene changes.");
        assert_eq!(d.confidence, 0.92);
        let Outcome::Tool(call) = &d.outcome else { panic!("{d:?}") };
        assert_eq!(call.tool, Tool::EditScene);
        assert_eq!(call.target_scene_id.as_deref(), Some("s1"));
        assert_eq!(call.complexity, Some(EditComplexity::Surgical));
        assert_eq!(call.params.attributes.get("background").map(String::as_str), Some("dark blue"));
        assert_eq!(s.requests(), 1);

        let (auth, body) = s.last_request();
        assert_eq!(auth.as_deref(), Some("Bearer test-key"));
        assert_eq!(body["model"], "decider-test");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["name"], "brain_decision");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        let tools =
            &body["response_format"]["json_schema"]["schema"]["properties"]["steps"]["items"]["properties"]["tool"];
        assert_eq!(tools["enum"].as_array().map(Vec::len), Some(8));
        let messages = body["messages"].as_array().unwrap();
        assert_eq!((messages[0]["role"].as_str(), messages[1]["role"].as_str()), (Some("system"), Some("user")));
        let system = messages[0]["content"].as_str().unwrap();
        for tool in Tool::ALL {
            assert!(system.contains(tool.as_str()), "the tool catalogue names {}", tool.as_str());
        }
        let user = messages[1]["content"].as_str().unwrap();
        assert!(user.starts_with("Scene list (in order):\n1. id \"s1\" name \"Intro\"\n"), "{user}");
        assert!(user.ends_with(&format!("{CONTEXT}{PROMPT}")), "the enhanced prompt closes the user message: {user}");
    }

    #[tokio::test]
    async fn every_rules_decision_on_the_fixtures_passes_as_a_model_answer() {
        // The contract the rules follow and the one model answers are held to are the same:
        // every decision the rules make on the labelled fixtures, sent back as a model
        // answer, is accepted unchanged.
        let (addr, s) = stand_in().await;
        let d = decider(settings(addr));
        let mut checked = 0;
        for file in ["decisions.jsonl", "decisions_extra.jsonl", "decisions_holdout.jsonl", "decisions_holdout2.jsonl"]
        {
            let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
            for (line, text) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                if text.trim().is_empty() {
                    continue;
                }
                let case: Value = serde_json::from_str(text).unwrap();
                let scenes: Vec<Scene> = case["scenes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        let mut sc =
                            Scene::named("p", v["id"].as_str().unwrap(), v["name"].as_str().unwrap(), k as u32);
                        sc.duration_seconds = v.get("duration").and_then(Value::as_f64);
                        if v.get("status").and_then(Value::as_str) == Some("broken") {
                            sc.status = SceneStatus::Broken;
                        }
                        sc
                    })
                    .collect();
                let images: Vec<String> =
                    (1..=case["images"].as_u64().unwrap_or(0)).map(|k| format!("img-{k}")).collect();
                let prompt = case["prompt"].as_str().unwrap();
                let rules = rules_decision(&scenes, prompt, &images);
                s.then([Reply::Content(wire(&rules).to_string())]);
                let got = decide(&d, &scenes, prompt, &images).await;
                assert_eq!(got.fallback_reason, None, "{file}:{}: {prompt}", line + 1);
                assert_eq!(got.backend, DecisionBackend::Openai);
                assert_eq!(got.outcome, rules.outcome, "{file}:{}: {prompt}", line + 1);
                checked += 1;
            }
        }
        assert!(checked >= 250, "only {checked} fixture cases");
        assert_eq!(s.requests(), checked);
    }

    #[tokio::test]
    async fn malformed_answers_fall_back_without_retrying() {
        let (addr, s) = stand_in().await;
        let d = decider(settings(addr));
        let cases = [
            (Reply::Content("{\"kind\": \"tool\", \"steps\": [".into()), "malformed_output: the content is not JSON"),
            (Reply::Content("Sure! I would edit the intro.".into()), "malformed_output: the content is not JSON"),
            (
                Reply::Status(200, "<html>gateway</html>".into(), None),
                "malformed_output: the body is not a chat-completions response",
            ),
            (
                Reply::Status(200, json!({"choices": []}).to_string(), None),
                "malformed_output: the response has no choices",
            ),
        ];
        for (k, (r, expected)) in cases.into_iter().enumerate() {
            s.then([r]);
            let decision = decide(&d, &scenes(), PROMPT, &[]).await;
            assert_rules_fallback(&decision, PROMPT, "malformed_output");
            assert!(reason(&decision).starts_with(expected), "{:?}", decision.fallback_reason);
            assert_eq!(s.requests(), k + 1, "a bad answer is not retried");
        }
    }

    #[tokio::test]
    async fn answers_off_the_schema_or_the_project_fall_back_with_the_reason() {
        let (addr, s) = stand_in().await;
        let d = decider(settings(addr));
        let mut answer: Value = serde_json::from_str(&edit_intro()).unwrap();

        answer["steps"][0]["tool"] = json!("renderVideo");
        s.then([Reply::Content(answer.to_string())]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "invalid_output");
        assert_eq!(reason(&decision), "invalid_output: unknown tool \"renderVideo\"");

        answer["steps"][0]["tool"] = json!("editScene");
        answer["confidence"] = json!("very");
        s.then([Reply::Content(answer.to_string())]);
        assert_rules_fallback(&decide(&d, &scenes(), PROMPT, &[]).await, PROMPT, "invalid_output");

        answer["confidence"] = json!(0.9);
        answer["steps"][0]["target_scene_id"] = json!("s9");
        s.then([Reply::Content(answer.to_string())]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "invalid_decision");
        assert_eq!(reason(&decision), "invalid_decision: scene \"s9\" is not in the project");

        answer["steps"][0]["target_scene_id"] = json!("s1");
        answer["steps"][0]["complexity"] = json!(null);
        s.then([Reply::Content(answer.to_string())]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!(reason(&decision), "invalid_decision: editScene needs a complexity");

        let mut ask: Value = serde_json::from_str(&edit_intro()).unwrap();
        ask["kind"] = json!("clarification");
        ask["steps"] = json!([]);
        ask["question"] = json!("");
        s.then([Reply::Content(ask.to_string())]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!(reason(&decision), "invalid_decision: a clarification without a question");
        assert_eq!(s.requests(), 5, "no answer was retried");
        assert_eq!(d.circuit_state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn a_slow_model_times_out_is_retried_and_falls_back() {
        let (addr, s) = stand_in().await;
        s.otherwise(Reply::Slow(Duration::from_secs(5), Box::new(good())));
        let d = decider(OpenAiSettings { timeout: Duration::from_millis(300), max_retries: 1, ..settings(addr) });
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "timeout");
        assert_eq!(reason(&decision), "timeout: no answer within 300 ms after 2 attempts");
        assert_eq!(s.requests(), 2);
    }

    #[tokio::test]
    async fn the_deadline_bounds_all_attempts() {
        let (addr, s) = stand_in().await;
        s.otherwise(Reply::Slow(Duration::from_secs(5), Box::new(good())));
        let d = decider(OpenAiSettings {
            timeout: Duration::from_secs(2),
            deadline: Duration::from_millis(400),
            max_retries: 3,
            ..settings(addr)
        });
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "timeout");
        // The attempt got what was left of the 400 ms deadline.
        let text = reason(&decision);
        assert!(text.starts_with("timeout: no answer within "), "{text}");
        assert!(text.ends_with(" ms after 1 attempt; the decision deadline left no time for another"), "{text}");
        let ms: u64 = text["timeout: no answer within ".len()..].split(' ').next().unwrap().parse().unwrap();
        assert!((200..=400).contains(&ms), "{text}");
        assert_eq!(s.requests(), 1);
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_an_answer_comes() {
        let (addr, s) = stand_in().await;
        s.then([server_error(500), server_error(503), good()]);
        let d = decider(settings(addr));
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!(decision.backend, DecisionBackend::Openai);
        assert_eq!(decision.fallback_reason, None);
        assert_eq!(s.requests(), 3);

        // Out of retries: the last failure is the reason.
        s.then([server_error(500), server_error(502), server_error(504)]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "http_error");
        assert_eq!(reason(&decision), "http_error: HTTP 504 (upstream overloaded) after 3 attempts");
        assert_eq!(s.requests(), 6);
    }

    #[tokio::test]
    async fn rate_limits_are_retried_and_a_long_retry_after_ends_the_retries() {
        let (addr, s) = stand_in().await;
        let limited = |retry_after| {
            Reply::Status(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests"}}).to_string(),
                retry_after,
            )
        };
        s.then([limited(None), good()]);
        let d = decider(OpenAiSettings { deadline: Duration::from_secs(5), ..settings(addr) });
        assert_eq!(decide(&d, &scenes(), PROMPT, &[]).await.backend, DecisionBackend::Openai);
        assert_eq!(s.requests(), 2);

        // Retry-After 60 s does not fit a 5 s deadline: give up at once rather than wait.
        s.then([limited(Some(60))]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "rate_limited");
        assert_eq!(
            reason(&decision),
            "rate_limited: HTTP 429 (Rate limit reached) after 1 attempt; the decision deadline left no time for another"
        );
        assert_eq!(s.requests(), 3);
    }

    #[tokio::test]
    async fn client_errors_are_not_retried_and_never_echo_the_key() {
        let (addr, s) = stand_in().await;
        let d = decider(settings(addr));
        s.then([Reply::Status(
            400,
            json!({"error": {"message": "Invalid schema for response_format 'brain_decision'", "type": "invalid_request_error"}})
                .to_string(),
            None,
        )]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "http_error");
        assert_eq!(
            reason(&decision),
            "http_error: HTTP 400 (Invalid schema for response_format 'brain_decision') after 1 attempt"
        );

        s.then([Reply::Status(
            401,
            json!({"error": {"message": "Incorrect API key provided: test-key", "type": "invalid_request_error"}})
                .to_string(),
            None,
        )]);
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!(reason(&decision), "http_error: HTTP 401 after 1 attempt");
        assert!(!format!("{decision:?}{d:?}").contains("test-key"));
        assert_eq!(s.requests(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_falls_back() {
        // A port that was just free: connections are refused.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let d = decider(OpenAiSettings { max_retries: 1, ..settings(addr) });
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "connection_failed");
        assert_eq!(reason(&decision), "connection_failed: could not reach the model endpoint after 2 attempts");
    }

    #[tokio::test]
    async fn persistent_failures_open_the_circuit_and_a_probe_closes_it() {
        let (addr, s) = stand_in().await;
        s.otherwise(server_error(500));
        // Long enough that a loaded machine does not see it pass between two calls.
        let cooldown = Duration::from_millis(1_000);
        let d = decider(OpenAiSettings {
            max_retries: 1,
            breaker_threshold: 3,
            breaker_cooldown: cooldown,
            ..settings(addr)
        });

        // Three failed decisions (two attempts each) open the circuit.
        for k in 1..=3 {
            let decision = decide(&d, &scenes(), PROMPT, &[]).await;
            assert_eq!(reason(&decision), "http_error: HTTP 500 (upstream overloaded) after 2 attempts");
            assert_eq!(s.requests(), 2 * k);
        }
        assert_eq!(d.circuit_state(), CircuitState::Open);

        // Open: the model is not called at all.
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "circuit_open");
        assert!(
            reason(&decision).starts_with("circuit_open: the model failed repeatedly; next trial in "),
            "{decision:?}"
        );
        assert_eq!(s.requests(), 6);

        // After the cooldown one probe goes through; it fails (one attempt, no retries) and re-opens.
        tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!(reason(&decision), "http_error: HTTP 500 (upstream overloaded) after 1 attempt");
        assert_eq!(s.requests(), 7);
        assert_eq!(d.circuit_state(), CircuitState::Open);
        assert_rules_fallback(&decide(&d, &scenes(), PROMPT, &[]).await, PROMPT, "circuit_open");
        assert_eq!(s.requests(), 7);

        // The model recovers: the next probe succeeds and closes the circuit.
        s.otherwise(good());
        tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
        let decision = decide(&d, &scenes(), PROMPT, &[]).await;
        assert_eq!((decision.backend, decision.fallback_reason.as_deref()), (DecisionBackend::Openai, None));
        assert_eq!(d.circuit_state(), CircuitState::Closed);
        assert_eq!(s.requests(), 8);
        assert_eq!(decide(&d, &scenes(), PROMPT, &[]).await.backend, DecisionBackend::Openai);
        assert_eq!(s.requests(), 9);
    }

    #[tokio::test]
    async fn while_the_probe_is_in_flight_others_fall_back_at_once() {
        let (addr, s) = stand_in().await;
        let cooldown = Duration::from_millis(200);
        let d = Arc::new(decider(OpenAiSettings {
            max_retries: 0,
            breaker_threshold: 1,
            breaker_cooldown: cooldown,
            ..settings(addr)
        }));
        s.then([server_error(500)]);
        assert_eq!(decide(d.as_ref(), &scenes(), PROMPT, &[]).await.backend, DecisionBackend::Rules);
        assert_eq!(d.circuit_state(), CircuitState::Open);

        tokio::time::sleep(cooldown + Duration::from_millis(50)).await;
        s.then([Reply::Slow(Duration::from_millis(600), Box::new(good()))]);
        let probe = {
            let d = d.clone();
            tokio::spawn(async move { decide(d.as_ref(), &scenes(), PROMPT, &[]).await })
        };
        // Wait until the probe has reached the stand-in.
        while s.requests() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(d.circuit_state(), CircuitState::HalfOpen);
        let meanwhile = decide(d.as_ref(), &scenes(), PROMPT, &[]).await;
        assert_eq!(reason(&meanwhile), "circuit_open: the model failed repeatedly and a trial call is in flight");
        let probed = probe.await.unwrap();
        assert_eq!(probed.backend, DecisionBackend::Openai);
        assert_eq!(d.circuit_state(), CircuitState::Closed);
        assert_eq!(s.requests(), 2);
    }

    #[tokio::test]
    async fn decider_from_config_picks_the_backend() {
        let rules = decider_from_config(&Config::default()).unwrap();
        let decision = decide(rules.as_ref(), &scenes(), PROMPT, &[]).await;
        assert_eq!((decision.backend, decision.fallback_reason), (DecisionBackend::Rules, None));

        let (addr, s) = stand_in().await;
        s.then([good()]);
        let mut config = Config::default();
        config.orchestration.decider = DeciderKind::Openai;
        config.openai.base_url = Secret::url(format!("http://{addr}/v1"));
        config.openai.api_key = None;
        config.openai.model = "configured-model".into();
        config.validate().unwrap();
        let openai = decider_from_config(&config).unwrap();
        let decision = decide(openai.as_ref(), &scenes(), PROMPT, &[]).await;
        assert_eq!((decision.backend, decision.fallback_reason), (DecisionBackend::Openai, None));
        let (auth, body) = s.last_request();
        assert_eq!(auth, None, "no key configured, no Authorization header");
        assert_eq!(body["model"], "configured-model");

        // The configured backend falls back to the rules, and says so.
        s.then([Reply::Content("not json".into())]);
        let decision = decide(openai.as_ref(), &scenes(), PROMPT, &[]).await;
        assert_rules_fallback(&decision, PROMPT, "malformed_output");
    }
}
