//! The performance report, /metrics and the operator HTTP API agree with a
//! known mix of concurrent calls, and with a short orchestration load with
//! images (percentiles, cache hit rates, the measured and estimated async win,
//! tokens, the job queue); windows, project filters and tenancy behave;
//! WatchPerformanceReport streams.

mod common;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, create_key, http_get};
use brain_proto::{
    code_name,
    v1::{
        self as pb, CreateProjectRequest, EventType, GetContextPacketRequest, GetImageFactsRequest,
        GetPerformanceReportRequest, GetProjectRequest, ImageAnalysisStatus, ListProjectsRequest, MemoryType,
        OrchestrateRequest, PutMemoryRequest, ReportWindow, UpsertSceneRequest, WatchPerformanceReportRequest,
    },
};
use common::{
    Behavior, ImageHost, analyze, by_url, encode, events, inline, picture, png, project, truncated_png, watch,
};
use futures::StreamExt;
use tonic::Code;

/// Client-side durations per method, to bound the server's own figures.
#[derive(Default)]
struct Sent {
    calls: HashMap<(&'static str, Code), u64>,
    slowest_ms: HashMap<&'static str, f64>,
}

impl Sent {
    fn add(&mut self, method: &'static str, code: Code, elapsed: Duration) {
        *self.calls.entry((method, code)).or_default() += 1;
        let ms = elapsed.as_secs_f64() * 1e3;
        let slowest = self.slowest_ms.entry(method).or_default();
        *slowest = slowest.max(ms);
    }

    fn count(&self, method: &str) -> u64 {
        self.calls.iter().filter(|((m, _), _)| *m == method).map(|(_, n)| n).sum()
    }

    fn total(&self) -> u64 {
        self.calls.values().sum()
    }

    fn errors(&self, code: Code) -> u64 {
        self.calls.iter().filter(|((_, c), _)| *c == code).map(|(_, n)| n).sum()
    }
}

async fn timed<T>(fut: impl Future<Output = Result<T, tonic::Status>>) -> (Code, Duration) {
    let started = Instant::now();
    let code = match fut.await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    (code, started.elapsed())
}

fn metrics_on() -> ServerOptions {
    ServerOptions::new().set("metrics_addr", "127.0.0.1:0")
}

async fn report(
    server: &Server,
    key: &str,
    window: ReportWindow,
    project_id: &str,
) -> Result<pb::PerformanceReport, tonic::Status> {
    let mut perf = server.performance(Some(key)).await;
    let response = perf
        .get_performance_report(GetPerformanceReportRequest { window: window.into(), project_id: project_id.into() })
        .await?;
    Ok(response.into_inner().report.expect("report"))
}

fn latency<'a>(report: &'a pb::PerformanceReport, name: &str) -> Option<&'a pb::LatencySummary> {
    report.rpc_latencies.iter().find(|l| l.name == name)
}

/// Drives a known mix of ProjectService calls for one tenant, concurrently; returns what was sent and the two projects.
async fn drive_mix(server: &Server, key: &str) -> (Sent, String, String) {
    let mut sent = Sent::default();
    let mut projects = server.projects(Some(key)).await;
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta"] {
        let started = Instant::now();
        let project = projects
            .create_project(CreateProjectRequest { name: name.into(), description: String::new() })
            .await
            .expect("create project")
            .into_inner()
            .project
            .expect("project");
        sent.add("CreateProject", Code::Ok, started.elapsed());
        ids.push(project.project_id);
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());

    let mut calls: Vec<futures::future::BoxFuture<'static, (&'static str, Code, Duration)>> = Vec::new();
    for _ in 0..30 {
        let (mut c, a) = (projects.clone(), a.clone());
        calls.push(Box::pin(async move {
            let (code, d) = timed(c.get_project(GetProjectRequest { project_id: a })).await;
            ("GetProject", code, d)
        }));
    }
    for i in 0..20 {
        let (mut c, b) = (projects.clone(), b.clone());
        calls.push(Box::pin(async move {
            let request = PutMemoryRequest {
                project_id: b,
                r#type: MemoryType::UserPreference.into(),
                key: format!("k{i}"),
                value: "likes short scenes".into(),
                confidence: None,
                ttl: None,
            };
            let (code, d) = timed(c.put_memory(request)).await;
            ("PutMemory", code, d)
        }));
    }
    for _ in 0..10 {
        let mut c = projects.clone();
        calls.push(Box::pin(async move {
            let (code, d) = timed(c.get_project(GetProjectRequest { project_id: "no-such-project".into() })).await;
            ("GetProject", code, d)
        }));
    }
    for _ in 0..8 {
        let (mut c, a) = (projects.clone(), a.clone());
        calls.push(Box::pin(async move {
            // An empty name is INVALID_ARGUMENT.
            let request = UpsertSceneRequest { project_id: a, name: String::new(), ..Default::default() };
            let (code, d) = timed(c.upsert_scene(request)).await;
            ("UpsertScene", code, d)
        }));
    }
    for _ in 0..12 {
        let mut c = projects.clone();
        calls.push(Box::pin(async move {
            let (code, d) =
                timed(c.list_projects(ListProjectsRequest { page_size: 10, page_token: String::new() })).await;
            ("ListProjects", code, d)
        }));
    }
    let results = futures::stream::iter(calls).buffer_unordered(16).collect::<Vec<_>>().await;
    for (method, code, elapsed) in results {
        sent.add(method, code, elapsed);
    }
    (sent, a, b)
}

async fn report_agrees_with_what_was_sent(db: Arc<TestDb>) {
    let key = create_key(&db, "acme");
    let other_key = create_key(&db, "globex");
    let server = Server::start_with(&db, metrics_on()).await;

    let (sent, a, b) = drive_mix(&server, &key).await;
    assert_eq!(sent.total(), 82);
    assert_eq!(sent.errors(Code::NotFound), 10);
    assert_eq!(sent.errors(Code::InvalidArgument), 8);
    // Another tenant's traffic must not show in acme's report.
    let mut globex = server.projects(Some(&other_key)).await;
    for _ in 0..5 {
        globex.list_projects(ListProjectsRequest { page_size: 1, page_token: String::new() }).await.expect("list");
    }

    let r = report(&server, &key, ReportWindow::Last1Minute, "").await.expect("report");
    let requests = r.requests.as_ref().expect("requests");
    assert_eq!(requests.total, 82, "{r:#?}");
    assert_eq!(requests.errors, 18);
    let codes: Vec<(&str, u64)> = requests.errors_by_code.iter().map(|c| (c.code.as_str(), c.count)).collect();
    assert_eq!(codes, vec![("NOT_FOUND", 10), ("INVALID_ARGUMENT", 8)], "largest first");
    assert!(requests.throughput_rps > 0.0);
    for method in ["CreateProject", "GetProject", "PutMemory", "UpsertScene", "ListProjects"] {
        let l = latency(&r, method).unwrap_or_else(|| panic!("{method} missing: {r:#?}"));
        assert_eq!(l.count, sent.count(method), "{method}");
        assert!(l.max_ms > 0.0, "{method}");
        // The server's time is inside the client's round trip.
        assert!(l.max_ms <= sent.slowest_ms[method] + 1.0, "{method}: {} > {}", l.max_ms, sent.slowest_ms[method]);
        assert!(l.p50_ms > 0.0 && l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.max_ms, "{l:?}");
        assert!(l.mean_ms > 0.0 && l.mean_ms <= l.max_ms, "{l:?}");
    }
    assert_eq!(r.rpc_latencies[0].name, "GetProject", "busiest first");
    assert_eq!(r.stage_latencies.len(), 5);
    let covered = r.covered.as_ref().expect("covered");
    assert!(covered.seconds <= 70, "{covered:?}");
    let jobs = r.jobs.as_ref().expect("jobs");
    assert_eq!((jobs.depth, jobs.running, jobs.failures), (0, 0, 0));
    assert!(r.resident_memory_bytes > 4 << 20, "{}", r.resident_memory_bytes);
    assert!(r.database_pool.as_ref().expect("pool").max > 0);
    let win = r.async_win.as_ref().expect("async win");
    assert_eq!(win.target, 0.30);
    assert!(!win.target_met, "no orchestrations, no claim");
    let estimated = win.estimated.as_ref().expect("estimate");
    assert_eq!(
        (estimated.old_context_ms, estimated.old_decision_ms, estimated.old_image_ms),
        (500.0, 2_000.0, 3_000.0)
    );
    assert_eq!(r.window, ReportWindow::Last1Minute as i32);

    // Project filters: CreateProject is attributed to the project it created.
    let ra = report(&server, &key, ReportWindow::Last1Minute, &a).await.expect("report A");
    assert_eq!(ra.project_id, a);
    let ra_requests = ra.requests.as_ref().expect("requests");
    assert_eq!(ra_requests.total, 1 + 30 + 8, "{ra:#?}");
    assert_eq!(ra_requests.errors, 8);
    assert_eq!(latency(&ra, "UpsertScene").map(|l| l.count), Some(8));
    let rb = report(&server, &key, ReportWindow::Last1Minute, &b).await.expect("report B");
    assert_eq!(rb.requests.as_ref().expect("requests").total, 1 + 20);
    assert_eq!(latency(&rb, "PutMemory").map(|l| l.count), Some(20));
    assert!(latency(&rb, "GetProject").is_none());

    // Tenancy: globex sees its own five calls and cannot filter by acme's project.
    let rg = report(&server, &other_key, ReportWindow::Last1Minute, "").await.expect("globex report");
    assert_eq!(rg.requests.as_ref().expect("requests").total, 5, "{rg:#?}");
    assert_error(report(&server, &other_key, ReportWindow::Last1Minute, &a).await, Code::NotFound, "PROJECT_NOT_FOUND");

    // Windows: since start includes everything the last minute does, plus the reports asked since.
    let since = report(&server, &key, ReportWindow::SinceStart, "").await.expect("since start");
    assert!(since.requests.as_ref().expect("requests").total >= 82 + 3);
    assert!(latency(&since, "GetPerformanceReport").is_some_and(|l| l.count >= 3));
    let five = report(&server, &key, ReportWindow::Unspecified, "").await.expect("default window");
    assert_eq!(five.window, ReportWindow::Last5Minutes as i32);

    // Bad input.
    let mut perf = server.performance(Some(&key)).await;
    assert_error(
        perf.get_performance_report(GetPerformanceReportRequest { window: 99, project_id: String::new() }).await,
        Code::InvalidArgument,
        "UNKNOWN_ENUM_VALUE",
    );
    assert_error(
        perf.get_performance_report(GetPerformanceReportRequest { window: 0, project_id: "bad id!".into() }).await,
        Code::InvalidArgument,
        "INVALID_ID",
    );
    assert_error(
        perf.get_performance_report(GetPerformanceReportRequest { window: 0, project_id: "nope".into() }).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );

    // /metrics, parsed by a Prometheus text-format parser, counts exactly what was sent.
    let metrics_addr = server.metrics_addr().expect("metrics_addr in the ready file");
    let (status, text) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse /metrics");
    for ((method, code), n) in &sent.calls {
        let code = code_name(*code);
        // globex's five ListProjects calls are in /metrics too: it is the operator's view.
        let n = if *method == "ListProjects" { n + 5 } else { *n };
        let buckets = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "brain_rpc_duration_seconds"
                    && s.labels.get("method") == Some(method)
                    && s.labels.get("code") == Some(code)
            })
            .unwrap_or_else(|| panic!("no histogram for {method}/{code}:\n{text}"));
        let prometheus_parse::Value::Histogram(buckets) = &buckets.value else { panic!("not a histogram") };
        let inf = buckets.iter().find(|b| b.less_than.is_infinite()).expect("+Inf bucket");
        assert_eq!(inf.count, n as f64, "{method}/{code} +Inf bucket");
        assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count));
        let count = sample_value(&scrape, "brain_rpc_duration_seconds_count", &[("method", method), ("code", code)]);
        assert_eq!(count, Some(n as f64), "{method}/{code} _count");
        let total = sample_value(&scrape, "brain_rpc_requests_total", &[("method", method), ("code", code)]);
        assert_eq!(total, Some(n as f64), "{method}/{code} requests_total");
    }
    for gauge in ["brain_process_resident_memory_bytes", "brain_job_queue_depth", "brain_uptime_seconds"] {
        assert!(sample_value(&scrape, gauge, &[]).is_some(), "{gauge} missing");
    }
    assert_eq!(sample_value(&scrape, "brain_db_connections", &[("state", "max")]).map(|v| v > 0.0), Some(true));
    assert!(scrape.docs.contains_key("brain_rpc_duration_seconds"), "metrics are described");

    // The dashboard's JSON sees every tenant.
    let (status, body) = http_get(metrics_addr, "/api/report?window=1m").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("report json");
    assert!(json["requests"]["total"].as_u64().expect("total") >= 82 + 5);
    let (status, body) = http_get(metrics_addr, &format!("/api/report?window=1m&project_id={b}")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("report json");
    // B's 21 calls plus the GetPerformanceReport that asked about B.
    assert_eq!(json["requests"]["total"].as_u64(), Some(21 + 1));
    let (status, body) = http_get(metrics_addr, "/api/timeline").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("timeline json");
    let points = json["points"].as_array().expect("points");
    let requests: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap_or(0)).sum();
    assert!(requests >= 82 + 5, "{body}");
    assert!(points.iter().any(|p| p["p95_ms"].as_f64().is_some_and(|v| v > 0.0)));
    assert_eq!(http_get(metrics_addr, "/api/report?window=2h").await.0, 400);
    assert_eq!(http_get(metrics_addr, "/api/report?project_id=bad%20id").await.0, 400);
    let (status, page) = http_get(metrics_addr, "/dashboard").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-chart=\"latency\"") && !page.contains("://cdn"), "self-contained page");
}

/// Close enough for sums of milliseconds that went through f64 arithmetic in a different order.
fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0)
}

/// A short load through the project's own client: concurrent Orchestrate calls with and without
/// images (one image by URL fails twice before it downloads), a corrupt image by AnalyzeImages,
/// context packet reads and image facts reads. Every figure of the report is checked against what
/// was sent, what the responses said and what the image events carried.
async fn report_agrees_with_an_orchestration_load(db: Arc<TestDb>) {
    const WAIT: Duration = Duration::from_secs(60);
    let host = ImageHost::start().await;
    let flaky = host.add("flaky.png", png(), Behavior::FailFirst(2, 500));
    let options = metrics_on()
        .set("job_workers", 2)
        .set("job_poll_interval_ms", 200)
        .set("job_backoff_ms", 100)
        .set("allow_private_image_urls", true);
    let server = Server::start_with(&db, options).await;
    let now = || async { report_of(&server).await };

    // The context cache on a quiet project: the first read builds the packet, the next four are hits.
    let quiet = project(&server, "Quiet").await;
    let mut orchestrator = server.orchestrator(None).await;
    for _ in 0..5 {
        orchestrator
            .get_context_packet(GetContextPacketRequest { project_id: quiet.clone(), ..Default::default() })
            .await
            .expect("context packet");
    }
    let cache = now().await.context_cache.expect("context cache");
    assert_eq!((cache.hits, cache.misses, cache.hit_rate), (4, 1, 0.8), "{cache:?}");

    // The load: twelve orchestrations, six at a time; every other one attaches two or three images.
    const ORCHESTRATIONS: usize = 12;
    let busy = project(&server, "Busy").await;
    let mut log_stream = watch(&server, &busy, 0).await;
    let calls = (0..ORCHESTRATIONS).map(|i| {
        let mut client = orchestrator.clone();
        let busy = busy.clone();
        let flaky = flaky.clone();
        async move {
            let images = if i % 2 == 0 {
                let shade = (i * 20) as u8;
                let mut images: Vec<_> = ["a", "b"]
                    .iter()
                    .enumerate()
                    .map(|(k, name)| {
                        let img = picture(64 + 16 * k as u32, 48, [shade, 90, 200], [230, shade, 30]);
                        inline(encode(&img, image::ImageFormat::Png), &format!("o{i}-{name}"))
                    })
                    .collect();
                if i == 0 {
                    images.push(by_url(&flaky, "o0-flaky"));
                }
                images
            } else {
                Vec::new()
            };
            let prompt = if images.is_empty() {
                format!("add a closing scene number {i} with the team photo")
            } else {
                format!("build scene {i} from these mockups")
            };
            let request = OrchestrateRequest { project_id: busy, prompt, images, ..Default::default() };
            let started = Instant::now();
            let o = client.orchestrate(request).await.expect("orchestrate").into_inner().orchestration;
            (started.elapsed(), o.expect("orchestration"))
        }
    });
    let done: Vec<(Duration, pb::Orchestration)> = futures::stream::iter(calls).buffer_unordered(6).collect().await;
    analyze(&server, &busy, vec![inline(truncated_png(), "broken")]).await;

    let with_images: Vec<&(Duration, pb::Orchestration)> = done.iter().filter(|(_, o)| !o.images.is_empty()).collect();
    assert_eq!(with_images.len(), ORCHESTRATIONS / 2);
    let image_count: usize = with_images.iter().map(|(_, o)| o.images.len()).sum();
    assert_eq!(image_count, 13);

    // Every image's events: READY and PROCESSED each, FAILED for the broken one. READY carries the analysis time.
    let log = events(&mut log_stream, 2 * image_count + 1, WAIT).await;
    let analysis_ms: HashMap<String, f64> = log
        .iter()
        .filter(|e| e.r#type() == EventType::ImageFactsReady)
        .map(|e| (e.image_id.clone(), e.facts.as_ref().expect("facts").processing_ms))
        .collect();
    assert_eq!(analysis_ms.len(), image_count);
    assert!(analysis_ms.values().all(|ms| *ms > 0.0), "{analysis_ms:?}");
    let failed: Vec<&str> =
        log.iter().filter(|e| e.r#type() == EventType::ImageFactsFailed).map(|e| e.image_id.as_str()).collect();
    assert_eq!(failed, ["broken"]);

    // Image facts reads: every finished image is served from the cache; an unknown one goes to the store.
    let mut facts = server.image_facts(None).await;
    for image_id in analysis_ms.keys() {
        let analysis = facts
            .get_image_facts(GetImageFactsRequest { project_id: busy.clone(), image_id: image_id.clone() })
            .await
            .expect("image facts")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(analysis.status(), ImageAnalysisStatus::Ready, "{image_id}");
    }
    let missing =
        facts.get_image_facts(GetImageFactsRequest { project_id: busy.clone(), image_id: "nope".into() }).await;
    assert_error(missing, Code::NotFound, "IMAGE_NOT_FOUND");

    // The jobs' results reach the recorder just after their events: wait until all are in.
    let deadline = Instant::now() + WAIT;
    let r = loop {
        let r = now().await;
        let jobs = r.jobs.as_ref().expect("jobs");
        let samples = r.async_win.as_ref().and_then(|w| w.measured.as_ref()).map_or(0, |m| m.samples);
        if jobs.completed + jobs.failures > image_count as u64 && samples >= with_images.len() as u64 {
            break r;
        }
        assert!(Instant::now() < deadline, "the recorder never saw every job: {r:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // RPC latencies: counts as sent, the server's time inside the client's round trip.
    let orchestrate = latency(&r, "Orchestrate").expect("Orchestrate latency");
    assert_eq!(orchestrate.count, ORCHESTRATIONS as u64);
    let slowest = done.iter().map(|(d, _)| d.as_secs_f64() * 1e3).fold(0.0, f64::max);
    assert!(orchestrate.max_ms > 0.0 && orchestrate.max_ms <= slowest + 1.0, "{orchestrate:?} vs {slowest} ms");
    let o = orchestrate;
    assert!(o.p50_ms <= o.p95_ms && o.p95_ms <= o.p99_ms && o.p99_ms <= o.max_ms, "{o:?}");
    assert_eq!(latency(&r, "GetContextPacket").map(|l| l.count), Some(5));
    assert_eq!(latency(&r, "AnalyzeImages").map(|l| l.count), Some(1));
    assert_eq!(latency(&r, "GetImageFacts").map(|l| l.count), Some(image_count as u64 + 1));
    assert_eq!(latency(&r, "CreateProject").map(|l| l.count), Some(2));
    let requests = r.requests.as_ref().expect("requests");
    let codes: Vec<(&str, u64)> = requests.errors_by_code.iter().map(|c| (c.code.as_str(), c.count)).collect();
    assert_eq!(codes, [("NOT_FOUND", 1)]);

    // Stage latencies: one sample per orchestration; the pre-write stages' maxima are the responses' own.
    let responses: Vec<&pb::Orchestration> = done.iter().map(|(_, o)| o).collect();
    let timings = |o: &pb::Orchestration| o.timings.expect("timings");
    for (stage, of) in [
        ("context_build", (|t: &pb::StageTimings| t.context_build_ms) as fn(&pb::StageTimings) -> f64),
        ("token_budget", |t| t.token_budget_ms),
        ("decision", |t| t.decision_ms),
    ] {
        let summary = r.stage_latencies.iter().find(|l| l.name == stage).expect(stage);
        assert_eq!(summary.count, ORCHESTRATIONS as u64, "{stage}");
        let max = responses.iter().map(|o| of(&timings(o))).fold(0.0, f64::max);
        assert!((summary.max_ms - max).abs() <= 0.001, "{stage}: {} vs {max}", summary.max_ms);
    }
    for stage in ["persistence", "image_enqueue"] {
        let summary = r.stage_latencies.iter().find(|l| l.name == stage).expect(stage);
        assert_eq!(summary.count, ORCHESTRATIONS as u64, "{stage}");
    }

    // The measured async win: each orchestration with images against itself plus its images' analysis times.
    let win = r.async_win.as_ref().expect("async win");
    let measured = win.measured.as_ref().expect("measured");
    let samples = with_images.len() as f64;
    assert_eq!(measured.samples, with_images.len() as u64);
    let analysis_sum: f64 =
        with_images.iter().flat_map(|(_, o)| &o.images).map(|image| analysis_ms[&image.image_id]).sum();
    assert!(
        close(measured.mean_blocking_ms - measured.mean_actual_ms, analysis_sum / samples),
        "blocking - actual = {} ms, the images' analyses took {} ms per orchestration",
        measured.mean_blocking_ms - measured.mean_actual_ms,
        analysis_sum / samples
    );
    // The recorded response time is taken just after the one in the response, and inside the client's round trip.
    let mean_of = |list: &[&(Duration, pb::Orchestration)], f: &dyn Fn(&(Duration, pb::Orchestration)) -> f64| {
        list.iter().map(|x| f(x)).sum::<f64>() / list.len() as f64
    };
    let reported = mean_of(&with_images, &|(_, o)| timings(o).total_ms);
    let round_trip = mean_of(&with_images, &|(d, _)| d.as_secs_f64() * 1e3);
    assert!(
        measured.mean_actual_ms >= reported && measured.mean_actual_ms <= round_trip,
        "{reported} <= {} <= {round_trip}",
        measured.mean_actual_ms
    );
    assert!(close(measured.improvement, 1.0 - measured.mean_actual_ms / measured.mean_blocking_ms), "{measured:?}");
    assert_eq!(win.target_met, measured.improvement >= win.target, "{win:?}");

    // The estimate: every orchestration against the old flow's configured stages (+3 s with images).
    let estimated = win.estimated.as_ref().expect("estimated");
    assert!(close(estimated.mean_old_ms, (6.0 * 5_500.0 + 6.0 * 2_500.0) / 12.0), "{estimated:?}");
    let all: Vec<&(Duration, pb::Orchestration)> = done.iter().collect();
    let reported = mean_of(&all, &|(_, o)| timings(o).total_ms);
    let round_trip = mean_of(&all, &|(d, _)| d.as_secs_f64() * 1e3);
    assert!(estimated.mean_actual_ms >= reported && estimated.mean_actual_ms <= round_trip, "{estimated:?}");
    assert!(close(estimated.improvement, 1.0 - estimated.mean_actual_ms / estimated.mean_old_ms));

    // Tokens: as the responses' token reports said.
    let tokens = r.tokens.as_ref().expect("tokens");
    let after: Vec<u64> =
        responses.iter().map(|o| u64::from(o.token_report.as_ref().expect("report").total_after)).collect();
    assert_eq!(tokens.prompts, ORCHESTRATIONS as u64);
    assert_eq!(tokens.max_prompt_tokens, after.iter().copied().max().unwrap_or(0));
    assert!(close(tokens.mean_prompt_tokens, after.iter().sum::<u64>() as f64 / after.len() as f64), "{tokens:?}");
    let truncated = responses.iter().filter(|o| o.token_report.as_ref().is_some_and(|t| t.truncated)).count();
    assert_eq!(tokens.truncations, truncated as u64);

    // Caches: the quiet project's 4 hits and 1 miss, plus one lookup per orchestration;
    // every finished image read from the image facts cache, the unknown one missed.
    let context = r.context_cache.as_ref().expect("context cache");
    assert_eq!(context.hits + context.misses, 5 + ORCHESTRATIONS as u64, "{context:?}");
    assert!(context.hits >= 4, "{context:?}");
    assert!(close(context.hit_rate, context.hits as f64 / (context.hits + context.misses) as f64));
    let image_cache = r.image_facts_cache.as_ref().expect("image facts cache");
    assert_eq!((image_cache.hits, image_cache.misses), (image_count as u64, 1), "{image_cache:?}");
    assert!(image_cache.entries >= image_count as u64, "{image_cache:?}");

    // The job queue: 13 analyses done, one failed for good, two retried attempts, nothing left.
    let jobs = r.jobs.as_ref().expect("jobs");
    assert_eq!((jobs.completed, jobs.failures, jobs.retries), (image_count as u64, 1, 2), "{jobs:?}");
    assert_eq!((jobs.depth, jobs.running), (0, 0), "{jobs:?}");
    assert!(jobs.wait_p95_ms > 0.0 && jobs.run_p95_ms > 0.0, "{jobs:?}");
    assert_eq!(host.hits("flaky.png"), 3);
    let analysis = r.image_analysis.as_ref().expect("image analysis latency");
    assert_eq!(analysis.count, image_count as u64);
    let slowest_analysis = analysis_ms.values().copied().fold(0.0, f64::max);
    assert!((analysis.max_ms - slowest_analysis).abs() <= 0.001, "{analysis:?} vs {slowest_analysis}");
    assert_eq!(r.streams.as_ref().expect("streams").watch_image_facts, 1);

    // /metrics counts the same.
    let (status, text) = http_get(server.metrics_addr().expect("metrics"), "/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse /metrics");
    assert_eq!(sample_value(&scrape, "brain_orchestrations_total", &[]), Some(ORCHESTRATIONS as f64));
    for (outcome, n) in [("succeeded", image_count as f64), ("failed", 1.0), ("retried", 2.0)] {
        assert_eq!(sample_value(&scrape, "brain_jobs_total", &[("outcome", outcome)]), Some(n), "{outcome}");
    }
    for (cache, result, n) in [
        ("context_packet", "hit", context.hits),
        ("context_packet", "miss", context.misses),
        ("image_facts", "hit", image_cache.hits),
        ("image_facts", "miss", image_cache.misses),
    ] {
        let value = sample_value(&scrape, "brain_cache_lookups_total", &[("cache", cache), ("result", result)]);
        assert_eq!(value, Some(n as f64), "{cache}/{result}");
    }
    let blocking = scrape.samples.iter().find(|s| s.metric == "brain_async_win_blocking_seconds").expect("blocking");
    let prometheus_parse::Value::Histogram(buckets) = &blocking.value else { panic!("not a histogram") };
    let inf = buckets.iter().find(|b| b.less_than.is_infinite()).expect("+Inf bucket");
    assert_eq!(inf.count, samples);
    let blocking_sum = sample_value(&scrape, "brain_async_win_blocking_seconds_sum", &[]).expect("sum");
    assert!((blocking_sum * 1e3 - measured.mean_blocking_ms * samples).abs() < 0.01, "{blocking_sum}");
}

async fn watch_streams_reports_and_counts_itself(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut perf = server.performance(None).await;
    let interval = |seconds| Some(prost_types::Duration { seconds, nanos: 0 });

    assert_error(
        perf.watch_performance_report(WatchPerformanceReportRequest {
            window: 0,
            project_id: String::new(),
            interval: Some(prost_types::Duration { seconds: 0, nanos: 500_000_000 }),
        })
        .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_error(
        perf.watch_performance_report(WatchPerformanceReportRequest {
            window: 0,
            project_id: String::new(),
            interval: interval(3601),
        })
        .await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_error(
        perf.watch_performance_report(WatchPerformanceReportRequest {
            window: 7,
            project_id: String::new(),
            interval: interval(1),
        })
        .await,
        Code::InvalidArgument,
        "UNKNOWN_ENUM_VALUE",
    );

    let started = Instant::now();
    let mut stream = perf
        .watch_performance_report(WatchPerformanceReportRequest {
            window: ReportWindow::SinceStart.into(),
            project_id: String::new(),
            interval: interval(1),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut reports = Vec::new();
    while reports.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("a report within 10 s");
        reports.push(next.expect("stream open").expect("report").report.expect("report"));
    }
    assert!(started.elapsed() >= Duration::from_millis(1_900), "one report per second: {:?}", started.elapsed());
    let times: Vec<i64> = reports.iter().map(|r| r.generate_time.as_ref().expect("time").seconds).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(reports[2].streams.as_ref().expect("streams").watch_performance_report, 1);

    let during = report_of(&server).await;
    assert_eq!(during.streams.as_ref().expect("streams").watch_performance_report, 1);
    drop(stream);
    // The stream's end is noticed by the server shortly after the client goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = report_of(&server).await;
        if after.streams.as_ref().expect("streams").watch_performance_report == 0 {
            // The finished stream is one WatchPerformanceReport RPC, CANCELLED by the client.
            let watch = latency(&after, "WatchPerformanceReport").expect("the stream was recorded when it ended");
            assert!(watch.count >= 1);
            assert!(watch.max_ms >= 1_900.0, "a stream's duration is its lifetime: {watch:?}");
            break;
        }
        assert!(Instant::now() < deadline, "stream still counted: {after:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn report_of(server: &Server) -> pb::PerformanceReport {
    let mut perf = server.performance(None).await;
    perf.get_performance_report(GetPerformanceReportRequest {
        window: ReportWindow::SinceStart.into(),
        project_id: String::new(),
    })
    .await
    .expect("report")
    .into_inner()
    .report
    .expect("report")
}

async fn watch_ends_on_shutdown(db: Arc<TestDb>) {
    let mut server = Server::start(&db).await;
    let mut perf = server.performance(None).await;
    let mut stream = perf
        .watch_performance_report(WatchPerformanceReportRequest {
            window: 0,
            project_id: String::new(),
            interval: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("first report at once");
    assert!(first.expect("open").is_ok());
    server.sigterm();
    let end = tokio::time::timeout(Duration::from_secs(15), stream.next()).await.expect("stream ends on SIGTERM");
    assert!(end.is_none_or(|item| item.is_err_and(|s| s.code() == Code::Unavailable || s.code() == Code::Cancelled)));
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{}", server.logs());
}

/// The job queue figures come from the store: rows written as the job queue writes them.
async fn report_counts_the_job_queue(db: Arc<TestDb>) {
    use sea_orm::{ConnectionTrait, Database};

    // No job workers (an API-only replica): they would claim the rows this test writes.
    let server = Server::start_with(&db, metrics_on().set("job_workers", "0")).await;
    let mut projects = server.projects(None).await;
    let mut ids = Vec::new();
    for name in ["Queue A", "Queue B"] {
        let project = projects
            .create_project(CreateProjectRequest { name: name.into(), description: String::new() })
            .await
            .expect("create")
            .into_inner()
            .project
            .expect("project");
        ids.push(project.project_id);
    }
    let conn = Database::connect(&db.url).await.expect("connect to the test database");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let rows: [(&str, &str, Option<i64>, Option<i64>); 9] = [
        (&ids[0], "queued", None, None),
        (&ids[0], "queued", None, None),
        (&ids[0], "queued", None, None),
        (&ids[0], "running", Some(now + 60_000), None),
        (&ids[0], "running", Some(now + 60_000), None),
        // A worker died: its lease expired, so the job is waiting again.
        (&ids[0], "running", Some(now - 1_000), None),
        (&ids[0], "succeeded", None, Some(now)),
        (&ids[0], "failed", None, Some(now)),
        (&ids[1], "queued", None, None),
    ];
    for (i, (project, status, lease, finished)) in rows.iter().enumerate() {
        let sql = |v: Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
        conn.execute_unprepared(&format!(
            "INSERT INTO jobs (id, tenant_id, project_id, kind, subject_id, payload, status, attempts, max_attempts, \
             run_after, lease_until, lease_owner, last_error, created_at, updated_at, started_at, finished_at) \
             SELECT 'job-{i}', tenant_id, id, 'image_analysis', 'img-{i}', NULL, '{status}', 1, 5, {now}, {lease}, \
             NULL, NULL, {now}, {now}, NULL, {finished} FROM projects WHERE id = '{project}'",
            lease = sql(*lease),
            finished = sql(*finished),
        ))
        .await
        .expect("insert a job row");
    }
    conn.close().await.ok();

    let jobs = |r: pb::PerformanceReport| r.jobs.expect("jobs");
    let mut perf = server.performance(None).await;
    let get = |project_id: &str| GetPerformanceReportRequest { window: 0, project_id: project_id.into() };
    let all = jobs(perf.get_performance_report(get("")).await.expect("report").into_inner().report.expect("report"));
    assert_eq!((all.depth, all.running), (5, 2));
    let a = jobs(perf.get_performance_report(get(&ids[0])).await.expect("report").into_inner().report.expect("r"));
    assert_eq!((a.depth, a.running), (4, 2));
    let b = jobs(perf.get_performance_report(get(&ids[1])).await.expect("report").into_inner().report.expect("r"));
    assert_eq!((b.depth, b.running), (1, 0));

    // /metrics reuses the all-tenant counts for up to a second; the next scrape after that sees the rows.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, text) = http_get(server.metrics_addr().expect("metrics"), "/metrics").await;
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse");
        let depth = sample_value(&scrape, "brain_job_queue_depth", &[]);
        let running = sample_value(&scrape, "brain_jobs_running", &[]);
        if (depth, running) == (Some(5.0), Some(2.0)) {
            break;
        }
        assert!(Instant::now() < deadline, "queue gauges stuck at {depth:?}/{running:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

backend_tests!(
    report_agrees_with_what_was_sent,
    report_agrees_with_an_orchestration_load,
    report_counts_the_job_queue,
    watch_streams_reports_and_counts_itself,
    watch_ends_on_shutdown
);

fn sample_value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .and_then(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
}
