//! Error tracking and logs: the real Sentry SDK delivers tagged events to a
//! loopback endpoint named in the DSN, and no request content (prompts included)
//! reaches the events or the INFO log.

mod common;

use std::time::Duration;

use brain_e2e::{Server, ServerOptions, TestDb, sentry::FakeSentry};
use brain_proto::v1::{
    AnalyzeImagesRequest, CreateProjectRequest, GetContextPacketRequest, GetProjectRequest, MemoryType,
    OrchestrateRequest, OrchestrateStreamRequest, PutMemoryRequest, UpsertSceneRequest,
};
use common::{by_url, inline, png, truncated_png};

/// Text no log line or error event may contain: it only ever travels inside request fields.
const MARKER: &str = "PROMPT-MARKER-7f3a9c";

/// Sends request content carrying the marker through every text field, successes and failures alike.
async fn send_marked_requests(server: &Server, rounds: usize) -> String {
    let mut projects = server.projects(None).await;
    let project = projects
        .create_project(CreateProjectRequest {
            name: format!("Launch video {MARKER}"),
            description: format!("make the intro pop {MARKER}"),
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project");
    for i in 0..rounds {
        projects
            .put_memory(PutMemoryRequest {
                project_id: project.project_id.clone(),
                r#type: MemoryType::UserPreference.into(),
                key: format!("style-{i}"),
                value: format!("the user said: {MARKER} make every scene pink"),
                confidence: None,
                ttl: None,
            })
            .await
            .expect("put memory");
        projects
            .upsert_scene(UpsertSceneRequest {
                project_id: project.project_id.clone(),
                name: format!("Scene {MARKER}"),
                summary: format!("a pink intro {MARKER}"),
                ..Default::default()
            })
            .await
            .expect("upsert scene");
        // Failures: invalid and unknown input that carries the marker.
        let bad = projects
            .put_memory(PutMemoryRequest {
                project_id: project.project_id.clone(),
                r#type: 0,
                key: MARKER.into(),
                value: MARKER.repeat(2000),
                confidence: Some(7.0),
                ttl: None,
            })
            .await;
        assert!(bad.is_err());
        // A malformed id (it has spaces) is INVALID_ARGUMENT and never attributed or logged.
        let malformed = projects.get_project(GetProjectRequest { project_id: format!("no such {MARKER}") }).await;
        assert!(malformed.is_err());
        let missing =
            projects.get_project(GetProjectRequest { project_id: "00000000-0000-0000-0000-000000000000".into() }).await;
        assert!(missing.is_err());
    }
    project.project_id
}

/// Prompts carrying the marker through the orchestrator, answered and refused, with an attached image
/// whose analysis fails in the background (a failure no client sees), and an image URL carrying it.
/// Returns the number of RPCs made and how many of them were INVALID_ARGUMENT.
async fn send_marked_prompts(server: &Server, project_id: &str) -> (usize, usize) {
    let prompt = format!("build a scene from these mockups; the user wrote {MARKER} and wants it pink");
    let mut orchestrator = server.orchestrator(None).await;
    let answered = orchestrator
        .orchestrate(OrchestrateRequest {
            project_id: project_id.into(),
            prompt: prompt.clone(),
            images: vec![inline(png(), "good-shot"), inline(truncated_png(), "broken-shot")],
            ..Default::default()
        })
        .await
        .expect("orchestrate")
        .into_inner()
        .orchestration
        .expect("orchestration");
    assert!(answered.enhanced_prompt.contains(MARKER), "the prompt itself does travel in the response");
    // A control character refuses the prompt.
    let refused = orchestrator
        .orchestrate(OrchestrateRequest {
            project_id: project_id.into(),
            prompt: format!("{prompt}\u{7}"),
            ..Default::default()
        })
        .await;
    assert_eq!(refused.map(|_| ()).expect_err("refused").code(), tonic::Code::InvalidArgument);
    let mut stream = orchestrator
        .orchestrate_stream(OrchestrateStreamRequest {
            project_id: project_id.into(),
            prompt: format!("add a closing scene {MARKER}"),
            ..Default::default()
        })
        .await
        .expect("orchestrate stream")
        .into_inner();
    while stream.message().await.expect("stream message").is_some() {}
    orchestrator
        .get_context_packet(GetContextPacketRequest {
            project_id: project_id.into(),
            prompt: prompt.clone(),
            ..Default::default()
        })
        .await
        .expect("context packet");
    let mut images = server.image_facts(None).await;
    let forbidden = images
        .analyze_images(AnalyzeImagesRequest {
            project_id: project_id.into(),
            images: vec![by_url(&format!("http://127.0.0.1:9/{MARKER}.png"), "")],
        })
        .await;
    assert_eq!(forbidden.map(|_| ()).expect_err("forbidden").code(), tonic::Code::InvalidArgument);
    (5, 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_receives_tagged_background_failures_without_request_content() {
    let sentry = FakeSentry::start().await;
    let db = TestDb::sqlite().await;
    // A tiny anomaly threshold turns any busy RPC into a performance anomaly: a failure no client sees.
    let server = Server::start_with(
        &db,
        ServerOptions::new()
            .env("SENTRY_DSN", sentry.dsn())
            .set("environment", "e2e")
            .set("perf_anomaly_p95_ms", 0.001)
            .set("perf_anomaly_interval_ms", 300),
    )
    .await;
    let project_id = send_marked_requests(&server, 25).await;
    send_marked_prompts(&server, &project_id).await;

    // The broken image attached to the orchestration failed in the background: reported, tagged, no prompt.
    let image = sentry
        .wait_for_event(Duration::from_secs(30), |e| e["tags"]["failure"] == "image_analysis")
        .await
        .unwrap_or_else(|| panic!("no image_analysis event within 30 s; got {:#?}", sentry.requests()));
    assert_eq!(image["tags"]["error_class"], "validation", "{image:#}");
    assert_eq!(image["tags"]["project_id"], project_id.as_str(), "{image:#}");

    let anomaly = sentry
        .wait_for_event(Duration::from_secs(30), |e| e["tags"]["failure"] == "performance_anomaly")
        .await
        .unwrap_or_else(|| panic!("no anomaly event within 30 s; got {:#?}\n{}", sentry.requests(), server.logs()));
    assert_eq!(anomaly["tags"]["error_class"], "timeout", "{anomaly:#}");
    assert_eq!(anomaly["tags"]["service"], "brain");
    assert_eq!(anomaly["environment"], "e2e");
    // The SDK omits the level when it is the default, error.
    assert!(anomaly["level"].is_null() || anomaly["level"] == "error", "{anomaly:#}");
    assert!(anomaly["tags"]["stage"].as_str().is_some_and(|s| s.starts_with("rpc.")), "{anomaly:#}");
    assert!(anomaly["release"].as_str().is_some_and(|r| r.starts_with("brain-server@")), "{anomaly:#}");

    // Let anything else in flight arrive, then check every request the SDK made.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for request in sentry.requests() {
        assert_eq!(request.path, "/api/1/envelope/");
        assert!(request.auth.starts_with("Sentry ") && request.auth.contains("sentry_version=7"), "{}", request.auth);
        assert!(request.auth.contains("sentry_key=public"), "{}", request.auth);
        assert!(request.auth.contains("sentry_client=sentry.rust/"), "{}", request.auth);
        // The SDK's ureq transport sends no Content-Type; ingest does not need one.
        assert!(request.content_type.is_empty() || request.content_type == "application/x-sentry-envelope");
        let body = String::from_utf8_lossy(&request.body);
        assert!(!body.contains(MARKER), "request content leaked to error tracking:\n{body}");
        let envelope = request.envelope.as_ref().unwrap_or_else(|e| panic!("not an envelope ({e}):\n{body}"));
        assert!(
            envelope.header["event_id"].as_str().is_some_and(|id| id.replace('-', "").len() == 32),
            "{:?}",
            envelope.header
        );
        for event in envelope.events() {
            let class = event["tags"]["error_class"].as_str().unwrap_or_default();
            assert!(
                ["validation", "not_found", "permission", "timeout", "unavailable", "internal"].contains(&class),
                "every event carries an error class: {event:#}"
            );
        }
    }
    assert!(!server.logs().contains(MARKER), "request content leaked to the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_one_json_line_per_rpc_and_no_request_content() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let project_id = send_marked_requests(&server, 3).await;
    let (prompt_calls, prompt_refusals) = send_marked_prompts(&server, &project_id).await;
    // The finish line is written as the response completes; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.logs();
    assert!(!logs.contains(MARKER), "request content leaked to the log:\n{logs}");

    let rpc_lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "rpc finished")
        .collect();
    // 1 create + 3 rounds of 5 calls, and the orchestrator's and image facts' calls.
    assert_eq!(rpc_lines.len(), 16 + prompt_calls, "{logs}");
    for line in &rpc_lines {
        assert_eq!(line["level"], "INFO");
        for field in ["request_id", "tenant", "method", "code", "duration_ms"] {
            assert!(line[field].as_str().is_some_and(|v| !v.is_empty()), "{field} missing in {line}");
        }
        assert!(line.get("project").is_some(), "{line}");
        assert!(line["duration_ms"].as_str().and_then(|d| d.parse::<f64>().ok()).is_some(), "{line}");
    }
    let put_ok = rpc_lines.iter().filter(|l| l["method"] == "PutMemory" && l["code"] == "OK").count();
    assert_eq!(put_ok, 3);
    assert!(rpc_lines.iter().filter(|l| l["method"] == "PutMemory").all(|l| l["project"] == project_id.as_str()));
    assert_eq!(rpc_lines.iter().filter(|l| l["code"] == "INVALID_ARGUMENT").count(), 6 + prompt_refusals);
    for method in ["Orchestrate", "OrchestrateStream", "GetContextPacket", "AnalyzeImages"] {
        assert!(rpc_lines.iter().any(|l| l["method"] == method && l["project"] == project_id.as_str()), "{method}");
    }
    let get_invalid: Vec<_> =
        rpc_lines.iter().filter(|l| l["method"] == "GetProject" && l["code"] == "INVALID_ARGUMENT").collect();
    assert_eq!(get_invalid.len(), 3);
    assert!(get_invalid.iter().all(|l| l["project"] == ""), "a malformed project id is not attributed");
    let not_found: Vec<_> = rpc_lines.iter().filter(|l| l["code"] == "NOT_FOUND").collect();
    assert_eq!(not_found.len(), 3);
    assert!(not_found.iter().all(|l| l["project"] == "00000000-0000-0000-0000-000000000000"));
}
