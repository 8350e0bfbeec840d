//! Error tracking and logs: the real Sentry SDK delivers tagged events to a
//! loopback endpoint named in the DSN, and no request content reaches the
//! events or the INFO log.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use brain_e2e::{Server, ServerOptions, TestDb};
use brain_proto::v1::{CreateProjectRequest, GetProjectRequest, MemoryType, PutMemoryRequest, UpsertSceneRequest};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// Text no log line or error event may contain: it only ever travels inside request fields.
const MARKER: &str = "PROMPT-MARKER-7f3a9c";

/// One request the fake Sentry received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    auth: String,
    body: String,
}

/// A loopback HTTP/1.1 server that accepts Sentry envelopes, as ingest does.
async fn fake_sentry() -> (u16, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake sentry");
    let port = listener.local_addr().expect("addr").port();
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                // Keep-alive: serve requests until the client closes.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    let (mut length, mut auth) = (0usize, String::new());
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.to_ascii_lowercase().as_str() {
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "x-sentry-auth" => auth = value.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let body = String::from_utf8_lossy(&body).into_owned();
                    sink.lock().expect("sink").push(Received { path, auth, body });
                    let reply = "{\"id\":\"00000000000000000000000000000000\"}";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

/// The JSON items of type `event` in a Sentry envelope.
fn events(envelope: &str) -> Vec<serde_json::Value> {
    let mut lines = envelope.lines();
    let _header = lines.next();
    let mut out = Vec::new();
    while let Some(item_header) = lines.next() {
        let Ok(header) = serde_json::from_str::<serde_json::Value>(item_header) else { continue };
        let Some(payload) = lines.next() else { break };
        if header["type"] == "event"
            && let Ok(event) = serde_json::from_str(payload)
        {
            out.push(event);
        }
    }
    out
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_receives_tagged_background_failures_without_request_content() {
    let (port, received) = fake_sentry().await;
    let db = TestDb::sqlite().await;
    // A tiny anomaly threshold turns any busy RPC into a performance anomaly: a failure no client sees.
    let server = Server::start_with(
        &db,
        ServerOptions::new()
            .env("SENTRY_DSN", format!("http://public@127.0.0.1:{port}/1"))
            .set("environment", "e2e")
            .set("perf_anomaly_p95_ms", 0.001)
            .set("perf_anomaly_interval_ms", 300),
    )
    .await;
    send_marked_requests(&server, 25).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let anomaly = loop {
        let got = received.lock().expect("sink").clone();
        let found = got.iter().flat_map(|r| events(&r.body)).find(|e| e["tags"]["failure"] == "performance_anomaly");
        if let Some(event) = found {
            break event;
        }
        assert!(Instant::now() < deadline, "no anomaly event within 30 s; got {got:#?}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(anomaly["tags"]["error_class"], "timeout", "{anomaly:#}");
    assert_eq!(anomaly["tags"]["service"], "brain");
    assert_eq!(anomaly["environment"], "e2e");
    // The SDK omits the level when it is the default, error.
    assert!(anomaly["level"].is_null() || anomaly["level"] == "error", "{anomaly:#}");
    assert!(anomaly["tags"]["stage"].as_str().is_some_and(|s| s.starts_with("rpc.")), "{anomaly:#}");
    assert!(anomaly["release"].as_str().is_some_and(|r| r.starts_with("brain-server@")), "{anomaly:#}");

    // Let anything else in flight arrive, then check every request the SDK made.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = received.lock().expect("sink").clone();
    for request in &got {
        assert_eq!(request.path, "/api/1/envelope/");
        assert!(request.auth.contains("sentry_key=public"), "{}", request.auth);
        assert!(!request.body.contains(MARKER), "request content leaked to error tracking:\n{}", request.body);
        for event in events(&request.body) {
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
    // The finish line is written as the response completes; give the last one a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = server.logs();
    assert!(!logs.contains(MARKER), "request content leaked to the log:\n{logs}");

    let rpc_lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "rpc finished")
        .collect();
    // 1 create + 3 rounds of 5 calls.
    assert_eq!(rpc_lines.len(), 16, "{logs}");
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
    assert_eq!(rpc_lines.iter().filter(|l| l["code"] == "INVALID_ARGUMENT").count(), 6);
    let get_invalid: Vec<_> =
        rpc_lines.iter().filter(|l| l["method"] == "GetProject" && l["code"] == "INVALID_ARGUMENT").collect();
    assert_eq!(get_invalid.len(), 3);
    assert!(get_invalid.iter().all(|l| l["project"] == ""), "a malformed project id is not attributed");
    let not_found: Vec<_> = rpc_lines.iter().filter(|l| l["code"] == "NOT_FOUND").collect();
    assert_eq!(not_found.len(), 3);
    assert!(not_found.iter().all(|l| l["project"] == "00000000-0000-0000-0000-000000000000"));
}
