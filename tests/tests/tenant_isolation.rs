//! Tenants are isolated in shared resources, not only in data: one tenant
//! flooding the performance recorder with series, trickling image URLs or
//! calling over its rate limits leaves another tenant's report, images and
//! calls as they were.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, create_key, create_project, http_get};
use brain_proto::v1::{
    AnalyzeImagesRequest, EventType, GetImageFactsRequest, GetPerformanceReportRequest, GetProjectRequest,
    ImageAnalysisStatus, ImageInput, OrchestrateRequest, ReportWindow, WatchImageFactsRequest,
    watch_image_facts_response::Message,
};
use common::{by_url, encode, inline, png};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Creates a project for the tenant of `key`; returns its id.
async fn project_of(server: &Server, key: &str, name: &str) -> String {
    create_project(&mut server.projects(Some(key)).await, name).await.project_id
}

/// GetProject calls `key`'s tenant made, in the last minute, on `project_id` ("" = all its projects).
async fn get_project_calls(server: &Server, key: &str, project_id: &str) -> u64 {
    let mut perf = server.performance(Some(key)).await;
    let report = perf
        .get_performance_report(GetPerformanceReportRequest {
            window: ReportWindow::Last1Minute.into(),
            project_id: project_id.into(),
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    report.rpc_latencies.iter().find(|l| l.name == "GetProject").map_or(0, |l| l.count)
}

/// Tenant B asks for 3,000 random well-formed project ids (each a new series);
/// tenant A's project, created afterwards, still has its exact count.
async fn a_flood_of_series_leaves_other_tenants_reports_exact(db: Arc<TestDb>) {
    let key_a = create_key(&db, "acme");
    let key_b = create_key(&db, "globex");
    let server = Server::start_with(&db, ServerOptions::new()).await;

    let flooder = server.projects(Some(&key_b)).await;
    let flood = 3_000u64;
    let started = Instant::now();
    let codes: Vec<Code> = futures::stream::iter(0..flood)
        .map(|_| {
            let mut client = flooder.clone();
            async move {
                let request = GetProjectRequest { project_id: uuid::Uuid::now_v7().to_string() };
                match client.get_project(request).await {
                    Ok(_) => Code::Ok,
                    Err(status) => status.code(),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(codes.iter().all(|c| *c == Code::NotFound), "{:?}", codes.iter().find(|c| **c != Code::NotFound));
    eprintln!("tenant B sent {flood} GetProject calls on random ids in {:?}", started.elapsed());

    let project = project_of(&server, &key_a, "New launch").await;
    let mut projects = server.projects(Some(&key_a)).await;
    for _ in 0..7 {
        projects.get_project(GetProjectRequest { project_id: project.clone() }).await.expect("get project");
    }

    assert_eq!(get_project_calls(&server, &key_a, &project).await, 7, "tenant A's new project is counted exactly");
    assert_eq!(get_project_calls(&server, &key_a, "").await, 7);
    assert_eq!(get_project_calls(&server, &key_b, "").await, flood, "the flooding tenant's total stays exact");
}

/// A loopback HTTP server that answers every request by writing a PNG response
/// (headers included) one byte every half second, the way a hostile or broken
/// image host holds a fetcher. Counts the connections it accepted.
struct TricklingHost {
    addr: SocketAddr,
    connections: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl TricklingHost {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind trickling host");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicU32::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let response = b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000\r\n\r\n\x89PNG";
                    for byte in response.iter().chain(std::iter::repeat_n(&0u8, 1_000)) {
                        if socket.write_all(&[*byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                });
            }
        });
        Self { addr, connections, task }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/img/{name}.png", self.addr)
    }

    async fn wait_connections(&self, n: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.connections.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the workers never fetched from the trickling host");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TricklingHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn analyze_as(server: &Server, key: &str, project_id: &str, images: Vec<ImageInput>) {
    let mut client = server.image_facts(Some(key)).await;
    client
        .analyze_images(AnalyzeImagesRequest { project_id: project_id.into(), images })
        .await
        .expect("analyze images");
}

/// A ~1 KB PNG: a gradient compresses less than flat colour.
fn small_png() -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(24, 24, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, ((x * y) % 255) as u8]));
    encode(&image::DynamicImage::ImageRgb8(img), image::ImageFormat::Png)
}

/// Tenant B sends 8 image URLs whose host trickles 1 byte every 0.5 s, taking
/// both workers; tenant A's small PNG, sent right after, is READY within a
/// couple of seconds, and B's images fail as too slow after two attempts
/// (not five at the full deadline).
async fn trickling_image_urls_do_not_hold_other_tenants_images(db: Arc<TestDb>) {
    let key_a = create_key(&db, "acme");
    let key_b = create_key(&db, "globex");
    let server = Server::start_with(&db, ServerOptions::new().set("allow_private_image_urls", true)).await;
    let project_a = project_of(&server, &key_a, "Fast").await;
    let project_b = project_of(&server, &key_b, "Trickle").await;
    let host = TricklingHost::start().await;

    let slow: Vec<ImageInput> = (0..8).map(|i| by_url(&host.url(&format!("slow{i}")), &format!("slow{i}"))).collect();
    analyze_as(&server, &key_b, &project_b, slow).await;
    // Both workers (the default two) are now held by B's trickling fetches.
    host.wait_connections(2, Duration::from_secs(10)).await;

    let mut watch = server
        .image_facts(Some(&key_a))
        .await
        .watch_image_facts(WatchImageFactsRequest {
            project_id: project_a.clone(),
            after_cursor: 0,
            orchestration_id: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let png = small_png();
    let bytes = png.len();
    let sent = Instant::now();
    analyze_as(&server, &key_a, &project_a, vec![inline(png, "quick")]).await;
    let ready = loop {
        let message = tokio::time::timeout(Duration::from_secs(30), watch.message())
            .await
            .expect("tenant A's image never finished")
            .expect("stream failed")
            .expect("stream ended");
        if let Some(Message::Event(event)) = message.message {
            assert_eq!(event.r#type(), EventType::ImageFactsReady, "{event:?}");
            break sent.elapsed();
        }
    };
    eprintln!(
        "tenant A's {bytes}-byte PNG was READY {} ms after it was sent, behind 8 trickling URLs of tenant B \
         (target: under 2 s)",
        ready.as_millis()
    );
    // The target is 2 s; the assertion allows 5 s because CI machines are slow and shared.
    assert!(ready < Duration::from_secs(5), "{ready:?}");

    // B's images fail as too slow after two attempts each, long before 5 attempts x 15 s.
    let mut images = server.image_facts(Some(&key_b)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let image = images
            .get_image_facts(GetImageFactsRequest { project_id: project_b.clone(), image_id: "slow0".into() })
            .await
            .expect("get image facts")
            .into_inner()
            .analysis
            .expect("analysis");
        if image.status() == ImageAnalysisStatus::Failed {
            break image;
        }
        assert!(Instant::now() < deadline, "B's trickling image never failed: {image:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(failed.attempts, 2, "{failed:?}");
    assert!(failed.error.contains("too slow"), "a clear reason: {}", failed.error);
}

/// Low limits for the rate-limit test: 5 calls a second with a burst of 10 for unary calls,
/// 2 orchestrations a second with a burst of 3, 8 images a minute, 2 open streams.
fn low_limits() -> ServerOptions {
    ServerOptions::new()
        .set("metrics_addr", "127.0.0.1:0")
        .set("rate_limit_unary_per_sec", 5)
        .set("rate_limit_unary_burst", 10)
        .set("rate_limit_orchestrate_per_sec", 2)
        .set("rate_limit_orchestrate_burst", 3)
        .set("rate_limit_images_per_minute", 8)
        .set("rate_limit_open_streams", 2)
}

/// The RetryInfo delay of a refusal.
fn retry_delay(status: &Status) -> Duration {
    status.get_details_retry_info().and_then(|r| r.retry_delay).unwrap_or_else(|| panic!("no RetryInfo: {status:?}"))
}

/// The value of a Prometheus sample `name` with `labels` in a `/metrics` scrape (0 when absent).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// With low limits configured, tenant B sends 40 GetProject calls at once: the first ones (its
/// burst) are served and the rest are RESOURCE_EXHAUSTED / RATE_LIMITED with a RetryInfo delay
/// under a second; tenant A's 8 calls, in the same second, all succeed, and so do B's
/// Orchestrate calls (a bucket of their own). After the advertised delay B is served again.
/// Images are counted per image, per minute, once they are valid; open streams are a quota
/// (QUOTA_EXCEEDED).
/// `/metrics` shows the limits and the refusals.
async fn a_tenant_over_its_rate_limit_does_not_limit_another(db: Arc<TestDb>) {
    let key_a = create_key(&db, "acme");
    let key_b = create_key(&db, "globex");
    let server = Server::start_with(&db, low_limits()).await;
    // One call each of their 10-call burst.
    let project_a = project_of(&server, &key_a, "Calm").await;
    let project_b = project_of(&server, &key_b, "Busy").await;

    let started = Instant::now();
    let flooder = server.projects(Some(&key_b)).await;
    let b_results: Vec<Result<(), Status>> = futures::stream::iter(0..40)
        .map(|_| {
            let (mut client, project_id) = (flooder.clone(), project_b.clone());
            async move { client.get_project(GetProjectRequest { project_id }).await.map(|_| ()) }
        })
        .buffer_unordered(40)
        .collect()
        .await;
    let mut calm = server.projects(Some(&key_a)).await;
    let mut a_results = Vec::new();
    for _ in 0..8 {
        a_results.push(calm.get_project(GetProjectRequest { project_id: project_a.clone() }).await.map(|_| ()));
    }
    let elapsed = started.elapsed();

    let b_served = b_results.iter().filter(|r| r.is_ok()).count();
    let b_refused: Vec<Status> = b_results.into_iter().filter_map(Result::err).collect();
    eprintln!(
        "in {} ms: tenant B {b_served} served, {} refused; tenant A {} of {} served",
        elapsed.as_millis(),
        b_refused.len(),
        a_results.iter().filter(|r| r.is_ok()).count(),
        a_results.len()
    );
    assert!(elapsed < Duration::from_secs(1), "the calls took {elapsed:?}; the test needs them within a second");
    for result in a_results {
        result.expect("tenant A is not limited by tenant B's calls");
    }
    // B's burst had 9 calls left (plus what refilled at 5/s while the calls ran).
    assert!((9..=14).contains(&b_served), "B served {b_served}");
    assert_eq!(b_refused.len(), 40 - b_served);
    let mut longest = Duration::ZERO;
    for status in &b_refused {
        assert_error::<()>(Err(status.clone()), Code::ResourceExhausted, "RATE_LIMITED");
        let delay = retry_delay(status);
        assert!(delay > Duration::ZERO && delay <= Duration::from_millis(200), "one token at 5/s: {delay:?}");
        longest = longest.max(delay);
    }

    // Orchestrate calls have their own bucket: B may still orchestrate, up to its burst of 3.
    let mut orchestrator = server.orchestrator(Some(&key_b)).await;
    let orchestrate = || OrchestrateRequest {
        project_id: project_b.clone(),
        prompt: "make the intro title red".into(),
        ..Default::default()
    };
    for _ in 0..3 {
        orchestrator.orchestrate(orchestrate()).await.expect("B's Orchestrate bucket is its own");
    }
    let refused = assert_error(orchestrator.orchestrate(orchestrate()).await, Code::ResourceExhausted, "RATE_LIMITED");
    assert!(retry_delay(&refused) <= Duration::from_millis(500), "one token at 2/s: {refused:?}");

    // After the advertised delay, B is served again.
    tokio::time::sleep(longest).await;
    let mut again = server.projects(Some(&key_b)).await;
    again.get_project(GetProjectRequest { project_id: project_b.clone() }).await.expect("B after its retry delay");

    // Every call below is a unary call too: two seconds refill both tenants' unary buckets.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Images: 8 a minute. B's 8 are accepted, a 9th is RATE_LIMITED until one image refills
    // (7.5 s at 8 a minute); A's image is accepted.
    let mut b_images = server.image_facts(Some(&key_b)).await;
    // Requests refused for their images spend none of that budget: nine images (over the
    // per-request cap: TOO_MANY_IMAGES, not a RATE_LIMITED no wait could cure) and a bad image id.
    let nine = (0..9).map(|i| inline(png(), &format!("x{i}"))).collect();
    let too_many = AnalyzeImagesRequest { project_id: project_b.clone(), images: nine };
    assert_error(b_images.analyze_images(too_many).await, Code::ResourceExhausted, "TOO_MANY_IMAGES");
    let bad_id = AnalyzeImagesRequest { project_id: project_b.clone(), images: vec![inline(png(), "not an id")] };
    assert_error(b_images.analyze_images(bad_id).await, Code::InvalidArgument, "INVALID_ID");
    let eight = (0..8).map(|i| inline(png(), &format!("b{i}"))).collect();
    let analyze = AnalyzeImagesRequest { project_id: project_b.clone(), images: eight };
    b_images.analyze_images(analyze).await.expect("B's 8 images of the minute");
    let ninth = AnalyzeImagesRequest { project_id: project_b.clone(), images: vec![inline(png(), "b8")] };
    let refused = assert_error(b_images.analyze_images(ninth).await, Code::ResourceExhausted, "RATE_LIMITED");
    let delay = retry_delay(&refused);
    assert!(delay > Duration::from_secs(7) && delay <= Duration::from_millis(7_500), "{delay:?}");
    analyze_as(&server, &key_a, &project_a, vec![inline(png(), "a0")]).await;

    // Open streams are a quota: A may hold 2, the third is QUOTA_EXCEEDED until one closes.
    let mut watcher = server.image_facts(Some(&key_a)).await;
    let watch =
        || WatchImageFactsRequest { project_id: project_a.clone(), after_cursor: 0, orchestration_id: String::new() };
    let first = watcher.watch_image_facts(watch()).await.expect("first stream");
    let _second = watcher.watch_image_facts(watch()).await.expect("second stream");
    let refused = assert_error(watcher.watch_image_facts(watch()).await, Code::ResourceExhausted, "QUOTA_EXCEEDED");
    assert!(retry_delay(&refused) > Duration::ZERO);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match watcher.watch_image_facts(watch()).await {
            Ok(_) => break,
            Err(status) => {
                assert_error::<()>(Err(status), Code::ResourceExhausted, "QUOTA_EXCEEDED");
                assert!(Instant::now() < deadline, "the closed stream never gave its slot back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    let (status, text) = http_get(server.metrics_addr().expect("metrics_addr"), "/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse /metrics");
    let refusals = "brain_tenant_limit_refusals_total";
    assert_eq!(sample(&scrape, refusals, &[("limit", "unary"), ("reason", "RATE_LIMITED")]), b_refused.len() as f64);
    assert_eq!(sample(&scrape, refusals, &[("limit", "orchestrate"), ("reason", "RATE_LIMITED")]), 1.0);
    assert_eq!(sample(&scrape, refusals, &[("limit", "images"), ("reason", "RATE_LIMITED")]), 1.0);
    assert!(sample(&scrape, refusals, &[("limit", "open_streams"), ("reason", "QUOTA_EXCEEDED")]) >= 1.0);
    assert_eq!(sample(&scrape, "brain_tenant_limit", &[("limit", "unary_per_sec")]), 5.0);
    assert_eq!(sample(&scrape, "brain_tenant_limit", &[("limit", "orchestrate_burst")]), 3.0);
    assert_eq!(sample(&scrape, "brain_tenant_limit_tenants", &[]), 2.0);
}

/// Local mode has one implicit tenant, with no neighbour to protect: the same low limits do not
/// apply to it (a load test on a laptop must not see RATE_LIMITED).
async fn local_mode_is_not_rate_limited(db: Arc<TestDb>) {
    let server = Server::start_with(&db, low_limits()).await;
    let mut projects = server.projects(None).await;
    for i in 0..40 {
        projects
            .get_project(GetProjectRequest { project_id: format!("p{i}") })
            .await
            .map(|_| ())
            .or_else(|status| if status.code() == tonic::Code::NotFound { Ok(()) } else { Err(status) })
            .unwrap_or_else(|status| panic!("call {i} refused in local mode: {status:?}"));
    }
}

backend_tests!(
    a_flood_of_series_leaves_other_tenants_reports_exact,
    trickling_image_urls_do_not_hold_other_tenants_images,
    a_tenant_over_its_rate_limit_does_not_limit_another,
    local_mode_is_not_rate_limited
);
