//! What the RPC layers promise, end to end: every call that reached the server is logged and
//! counted once however it ends (answered, past the client's deadline, abandoned by the
//! client) in the log, `/metrics` and the performance report; a burst beyond
//! `max_concurrent_requests` ends OK or OVERLOADED, never hangs or fails otherwise, and health
//! answers meanwhile; a client's `x-request-id` that could forge log fields never reaches the
//! log as given, in either log format.

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use brain_e2e::{Server, ServerOptions, TestDb, WriteBlocker, backend_tests, http_get};
use brain_proto::v1::{CreateProjectRequest, GetPerformanceReportRequest, OrchestrateRequest, ReportWindow};
use tonic::{Code, Request};
use tonic_types::StatusExt;

backend_tests!(every_call_is_counted_once_however_it_ends, a_burst_beyond_the_limit_ends_ok_or_overloaded);

/// Calls sent with a client deadline they cannot meet.
const PAST_DEADLINE: usize = 40;
/// Calls the client abandons while the server works on them.
const ABANDONED: usize = 20;

fn prompt(project_id: &str) -> OrchestrateRequest {
    OrchestrateRequest {
        project_id: project_id.into(),
        prompt: "make the intro title red".into(),
        ..Default::default()
    }
}

/// The "rpc finished" lines of `method` in a JSON log, counted by code.
fn finished_by_code(logs: &str, method: &str) -> HashMap<String, usize> {
    let mut codes = HashMap::new();
    for line in logs.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        if line["message"] == "rpc finished" && line["method"] == method {
            *codes.entry(line["code"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
    }
    codes
}

/// The `brain_rpc_requests_total` series of `method`, by code.
async fn metric_by_code(server: &Server, method: &str) -> HashMap<String, usize> {
    let addr = server.metrics_addr().expect("the metrics port is on");
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("a Prometheus scrape");
    let mut codes = HashMap::new();
    for sample in scrape.samples.iter().filter(|s| s.metric == "brain_rpc_requests_total") {
        if sample.labels.get("method") == Some(method)
            && let prometheus_parse::Value::Counter(n) = sample.value
        {
            codes.insert(sample.labels.get("code").unwrap_or_default().to_owned(), n as usize);
        }
    }
    codes
}

/// Orchestrate calls past their deadline and abandoned by the client wait on held writes, so
/// each is still running on the server when it ends; the log, `/metrics` and the report then
/// hold exactly one entry per call, with the code it ended with.
async fn every_call_is_counted_once_however_it_ends(db: Arc<TestDb>) {
    let server = Server::start_with(
        &db,
        ServerOptions::new().set("metrics_addr", "127.0.0.1:0").set("sqlite_busy_timeout_ms", 30_000),
    )
    .await;
    let project_id = common::project(&server, "counted").await;
    let mut client = server.orchestrator(None).await;
    client.orchestrate(prompt(&project_id)).await.expect("one answered call");

    let blocker = WriteBlocker::hold(&db, &project_id).await;
    let mut past_deadline = Vec::new();
    for _ in 0..PAST_DEADLINE {
        let (mut client, project_id) = (client.clone(), project_id.clone());
        past_deadline.push(tokio::spawn(async move {
            let mut request = Request::new(prompt(&project_id));
            request.set_timeout(Duration::from_millis(300));
            client.orchestrate(request).await
        }));
    }
    let mut abandoned = Vec::new();
    for _ in 0..ABANDONED {
        let (mut client, project_id) = (client.clone(), project_id.clone());
        // Dropping the call resets its HTTP/2 stream, as a client that gives up does.
        abandoned.push(tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(600), client.orchestrate(prompt(&project_id))).await.is_err()
        }));
    }
    for call in past_deadline {
        let result = call.await.expect("task");
        assert!(result.is_err(), "no call can be answered while writes are held: {result:?}");
    }
    for call in abandoned {
        assert!(call.await.expect("task"), "the call was abandoned while the server worked on it");
    }
    blocker.release().await;

    let want = HashMap::from([
        ("OK".to_owned(), 1),
        ("DEADLINE_EXCEEDED".to_owned(), PAST_DEADLINE),
        ("CANCELLED".to_owned(), ABANDONED),
    ]);
    // An abandoned call is finished when the server notices the reset; wait for the last ones,
    // then make sure nothing is counted twice.
    for _ in 0..200 {
        if finished_by_code(&server.logs(), "Orchestrate") == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(finished_by_code(&server.logs(), "Orchestrate"), want, "log lines by code:\n{}", server.logs());
    assert_eq!(metric_by_code(&server, "Orchestrate").await, want, "brain_rpc_requests_total by code");

    let report = server
        .performance(None)
        .await
        .get_performance_report(GetPerformanceReportRequest {
            window: ReportWindow::SinceStart.into(),
            project_id: project_id.clone(),
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("a report");
    let orchestrate = report.rpc_latencies.iter().find(|l| l.name == "Orchestrate").expect("Orchestrate samples");
    assert_eq!(orchestrate.count, (1 + PAST_DEADLINE + ABANDONED) as u64);
    let errors: HashMap<String, u64> =
        report.requests.expect("request stats").errors_by_code.into_iter().map(|c| (c.code, c.count)).collect();
    assert_eq!(errors.get("DEADLINE_EXCEEDED"), Some(&(PAST_DEADLINE as u64)), "{errors:?}");
    assert_eq!(errors.get("CANCELLED"), Some(&(ABANDONED as u64)), "{errors:?}");
}

/// Bursts of Orchestrate calls against `max_concurrent_requests` = 64 while writes are held:
/// 64 calls are admitted and wait, every other call is refused with OVERLOADED at once; health
/// answers SERVING throughout and while every permit is taken; once writes go on, the admitted
/// calls are answered OK. Nothing else happens to any call, and nothing hangs.
async fn a_burst_beyond_the_limit_ends_ok_or_overloaded(db: Arc<TestDb>) {
    const LIMIT: usize = 64;
    let server = Arc::new(
        Server::start_with(
            &db,
            ServerOptions::new().set("max_concurrent_requests", LIMIT).set("sqlite_busy_timeout_ms", 120_000),
        )
        .await,
    );
    let project_id = common::project(&server, "burst").await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.orchestrator(None).await);
    }

    // Health checks on their own connection for as long as the bursts last; each must answer.
    let done = Arc::new(AtomicBool::new(false));
    let health = {
        let (server, done) = (server.clone(), done.clone());
        tokio::spawn(async move {
            let mut client = server.health_client().await;
            let mut answered = 0;
            while !done.load(Ordering::SeqCst) {
                // It must answer; what it says may flip to NOT_SERVING on SQLite, where the
                // test's own write lock makes the store probe fail after about 1.5 s.
                client
                    .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                    .await
                    .expect("health answers during the burst");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answered
        })
    };

    for burst in [1_000, 4_000] {
        let blocker = WriteBlocker::hold(&db, &project_id).await;
        let (outcomes, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..burst {
            let (mut client, project_id, outcomes) =
                (clients[i % clients.len()].clone(), project_id.clone(), outcomes.clone());
            tokio::spawn(async move {
                let outcome = match client.orchestrate(prompt(&project_id)).await {
                    Ok(_) => (Code::Ok, String::new()),
                    Err(status) => {
                        (status.code(), status.get_details_error_info().map(|i| i.reason).unwrap_or_default())
                    }
                };
                let _ = outcomes.send(outcome);
            });
        }
        drop(outcomes);

        // Everything beyond the limit comes back while the admitted calls still wait.
        let overloaded = (Code::ResourceExhausted, "OVERLOADED".to_owned());
        for _ in 0..burst - LIMIT {
            let outcome = tokio::time::timeout(Duration::from_secs(120), rx.recv())
                .await
                .expect("no refusal hangs")
                .expect("an outcome");
            assert_eq!(outcome, overloaded, "burst of {burst}: every call beyond the limit is refused");
        }
        // Every permit is taken: health still answers.
        server.health("").await.expect("health answers at the limit");

        blocker.release().await;
        for _ in 0..LIMIT {
            let outcome = tokio::time::timeout(Duration::from_secs(120), rx.recv())
                .await
                .expect("no call hangs")
                .expect("an outcome");
            assert_eq!(outcome, (Code::Ok, String::new()), "burst of {burst}: the admitted calls are answered");
        }
        assert!(rx.recv().await.is_none());
    }
    done.store(true, Ordering::SeqCst);
    let answered = health.await.expect("the health checks held");
    assert!(answered > 0);

    // The server is still fine: a call is answered.
    clients[0].orchestrate(prompt(&project_id)).await.expect("served after the bursts");
}

/// A request id with spaces, quotes and `=` would print fake fields ahead of the real ones in
/// the pretty log; it is refused (one WARN line shows it escaped), a generated id takes its
/// place in the log line and the response header, and a valid id is kept. Both log formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_request_id_never_reaches_the_log() {
    const FORGED: &str = r#"fake tenant="victim" project="p" code="OK" duration_ms="0.1""#;
    for format in ["pretty", "json"] {
        let db = TestDb::sqlite().await;
        let server = Server::start_with(&db, ServerOptions::new().set("log_format", format)).await;
        let mut projects = server.projects(None).await;

        let mut request = Request::new(CreateProjectRequest { name: "forged".into(), description: String::new() });
        request.metadata_mut().insert("x-request-id", FORGED.parse().expect("visible ASCII"));
        let response = projects.create_project(request).await.expect("the call is served");
        let id = response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).expect("an id").to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{format}: a generated id replaces the forged one, got {id}");

        let mut request = Request::new(CreateProjectRequest { name: "kept".into(), description: String::new() });
        request.metadata_mut().insert("x-request-id", "client-7:trace.42_a".parse().expect("ascii"));
        let kept = projects.create_project(request).await.expect("served");
        assert_eq!(kept.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("client-7:trace.42_a"));

        let mut logs = server.logs();
        for _ in 0..100 {
            if logs.matches("rpc finished").count() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            logs = server.logs();
        }
        assert!(!logs.contains("victim\""), "{format}: the forged fields reached the log:\n{logs}");
        assert!(!logs.contains("fake tenant"), "{format}: the forged id reached the log:\n{logs}");
        let refusals: Vec<&str> = logs.lines().filter(|l| l.contains("x-request-id refused")).collect();
        assert_eq!(refusals.len(), 1, "{format}: one line says the id was refused:\n{logs}");
        assert!(refusals[0].contains("WARN") && refusals[0].contains(&id), "{format}: {}", refusals[0]);
        let finished: Vec<&str> = logs.lines().filter(|l| l.contains("rpc finished")).collect();
        assert_eq!(finished.iter().filter(|l| l.contains(&id)).count(), 1, "{format}: {finished:?}");
        assert_eq!(finished.iter().filter(|l| l.contains("client-7:trace.42_a")).count(), 1, "{format}: {finished:?}");
        if format == "json" {
            let refusal: serde_json::Value = serde_json::from_str(refusals[0]).expect("a JSON line");
            assert_eq!(refusal["level"], "WARN");
            assert_eq!(refusal["request_id"], id.as_str());
            assert_eq!(
                refusal["given"],
                r"fake\x20tenant\x3d\x22victim\x22\x20project\x3d\x22p\x22\x20code\x3d\x22OK\x22\x20duration_ms\x3d\x220.1\x22"
            );
        }
    }
}
