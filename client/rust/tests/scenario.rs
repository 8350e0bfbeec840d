//! The scenario every client runs against a live `brain-server`: projects,
//! scenes with pagination, memory, errors with reasons, orchestration with an
//! attached image, its late facts over a watch that is cut and resumed, the
//! performance report, deleting the project, and AdminService with an admin key.

mod support;

use std::{sync::Arc, time::Duration};

use brain_client::{BrainClient, Code, ImageFactsWatch, RetryPolicy, proto};
use futures::StreamExt;
use support::{BrainServer, Proxy, sunset_png};
use tokio::time::{Instant, timeout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_scenario() {
    let server = BrainServer::start().await;
    let client = server.client().await;

    auth_errors(&server).await;
    let project_id = project(&client).await;
    scenes(&client, &project_id).await;
    memory(&client, &project_id).await;
    bad_input(&client, &project_id).await;
    let image_id = orchestrate_with_image(&client, &project_id).await;
    watch_late_facts(&server, &client, &project_id, image_id).await;
    performance_report(&client, &project_id).await;
    delete_project(&client, &project_id).await;
    admin(&server, &client).await;
}

async fn auth_errors(server: &BrainServer) {
    let wrong = BrainClient::connect(server.addr.clone(), Some("brk_not_a_real_key")).await.expect("connect");
    let err = wrong.list_projects(Default::default()).await.expect_err("a wrong key is refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert_eq!(err.reason(), Some("API_KEY_INVALID"), "{err}");
    assert_eq!(err.domain(), Some("brain.v1"));
    assert_eq!(err.error_reason(), Some(proto::ErrorReason::ApiKeyInvalid));

    let anonymous = BrainClient::connect(server.addr.clone(), None).await.expect("connect");
    let err = anonymous.list_projects(Default::default()).await.expect_err("a missing key is refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert_eq!(err.reason(), Some("API_KEY_MISSING"), "{err}");
}

async fn project(client: &BrainClient) -> String {
    let project = client
        .create_project(proto::CreateProjectRequest {
            name: "Launch video".into(),
            description: "Client scenario (Rust)".into(),
        })
        .await
        .expect("create project");
    assert!(!project.project_id.is_empty());
    assert_eq!(project.name, "Launch video");
    assert!(project.create_time.is_some());
    let fetched = client.get_project(project.project_id.clone()).await.expect("get project");
    assert_eq!(fetched.project_id, project.project_id);
    assert_eq!(fetched.description, "Client scenario (Rust)");
    project.project_id
}

async fn scenes(client: &BrainClient, project_id: &str) {
    let names = [
        ("intro", "Intro", "Logo fades in over a dark blue background"),
        ("demo", "Demo", "Product walkthrough"),
        ("outro", "Outro", "Call to action"),
    ];
    for (position, (scene_id, name, summary)) in names.iter().enumerate() {
        let response = client
            .upsert_scene(proto::UpsertSceneRequest {
                project_id: project_id.into(),
                scene_id: (*scene_id).into(),
                name: (*name).into(),
                summary: (*summary).into(),
                duration_seconds: Some(4.0),
                ..Default::default()
            })
            .await
            .expect("upsert scene");
        assert!(response.created, "{scene_id} is new");
        let scene = response.scene.expect("scene");
        assert_eq!(scene.position as usize, position);
        assert!(scene.summary_tokens > 0, "summary tokens are counted at write time");
    }

    let first = client
        .list_scenes(proto::ListScenesRequest {
            project_id: project_id.into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("first page");
    assert_eq!(first.scenes.iter().map(|s| s.scene_id.as_str()).collect::<Vec<_>>(), ["intro", "demo"]);
    assert!(!first.next_page_token.is_empty(), "a second page follows");
    let second = client
        .list_scenes(proto::ListScenesRequest {
            project_id: project_id.into(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .expect("second page");
    assert_eq!(second.scenes.iter().map(|s| s.scene_id.as_str()).collect::<Vec<_>>(), ["outro"]);
    assert!(second.next_page_token.is_empty(), "the second page is the last");
}

async fn memory(client: &BrainClient, project_id: &str) {
    for (key, value) in [("style", "minimal"), ("pace", "fast")] {
        let response = client
            .put_memory(proto::PutMemoryRequest {
                project_id: project_id.into(),
                r#type: proto::MemoryType::UserPreference.into(),
                key: key.into(),
                value: value.into(),
                confidence: Some(0.9),
                ttl: None,
            })
            .await
            .expect("put memory");
        assert!(response.created);
        let item = response.memory.expect("memory");
        assert_eq!(item.value, value);
        assert_eq!(item.source(), proto::MemorySource::Api);
        assert!(item.token_count > 0);
    }
    // Same type and key again: replaced, not duplicated.
    let replaced = client
        .put_memory(proto::PutMemoryRequest {
            project_id: project_id.into(),
            r#type: proto::MemoryType::UserPreference.into(),
            key: "style".into(),
            value: "bold".into(),
            ..Default::default()
        })
        .await
        .expect("replace memory");
    assert!(!replaced.created);

    let listed = client
        .list_memories(proto::ListMemoriesRequest {
            project_id: project_id.into(),
            r#type: proto::MemoryType::UserPreference.into(),
            ..Default::default()
        })
        .await
        .expect("list memories");
    let mut pairs: Vec<_> = listed.memories.iter().map(|m| (m.key.as_str(), m.value.as_str())).collect();
    pairs.sort();
    assert_eq!(pairs, [("pace", "fast"), ("style", "bold")]);
}

async fn bad_input(client: &BrainClient, project_id: &str) {
    let err = client.get_project("").await.expect_err("an empty id is refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(err.reason(), Some("MISSING_FIELD"), "{err}");
    assert_eq!(err.field(), Some("project_id"), "{err}");

    let err = client
        .list_scenes(proto::ListScenesRequest { project_id: project_id.into(), page_size: -1, ..Default::default() })
        .await
        .expect_err("a negative page size is refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(err.reason(), Some("INVALID_PAGE_SIZE"), "{err}");

    let err = client.get_project("no-such-project").await.expect_err("an unknown project");
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.reason(), Some("PROJECT_NOT_FOUND"), "{err}");
}

/// Orchestrates a prompt with the test image attached; returns the image id.
async fn orchestrate_with_image(client: &BrainClient, project_id: &str) -> String {
    let request = proto::OrchestrateRequest {
        project_id: project_id.into(),
        prompt: "Make the intro dark blue like this photo".into(),
        images: vec![proto::ImageInput {
            source: Some(proto::image_input::Source::Data(sunset_png().into())),
            mime_type: "image/png".into(),
            image_id: "sunset".into(),
        }],
        request_id: format!("rust-scenario-{project_id}"),
        token_budget: 0,
    };
    let started = Instant::now();
    let response = client.orchestrate(request.clone()).await.expect("orchestrate");
    let elapsed = started.elapsed();
    assert!(!response.replayed);
    let orchestration = response.orchestration.expect("orchestration");
    let decision = orchestration.decision.as_ref().expect("decision");
    assert!(decision.outcome.is_some(), "a decision has an outcome: {decision:?}");
    let tokens = orchestration.token_report.as_ref().expect("token report");
    assert_eq!(tokens.encoding, "o200k_base");
    assert!(tokens.total_after > 0 && tokens.total_after <= tokens.budget, "{tokens:?}");
    assert!(orchestration.enhanced_prompt.contains("dark blue like this photo"));
    assert_eq!(orchestration.images.len(), 1);
    assert_eq!(orchestration.images[0].image_id, "sunset");
    println!("orchestrate answered in {elapsed:?} with image status {:?}", orchestration.images[0].status());

    let replay = client.orchestrate(request).await.expect("replay");
    assert!(replay.replayed, "the same request_id replays the stored response");
    assert_eq!(replay.orchestration.expect("orchestration").orchestration_id, orchestration.orchestration_id);
    "sunset".into()
}

/// Receives the image's late facts through a proxy that is cut after the
/// first event: the watch resumes by cursor and yields every event once.
async fn watch_late_facts(server: &BrainServer, client: &BrainClient, project_id: &str, image_id: String) {
    let proxy = Proxy::start(&server.addr).await;
    let fast_reconnect =
        RetryPolicy { max_attempts: 0, initial_backoff: Duration::from_millis(50), ..RetryPolicy::default() };
    let via_proxy = BrainClient::builder(proxy.addr.clone())
        .api_key(server.api_key.clone())
        .watch_backoff(fast_reconnect)
        .connect()
        .await
        .expect("connect through the proxy");

    let mut watch = via_proxy.watch_image_facts(project_id, 0);
    let mut events = vec![next(&mut watch).await.expect("first event")];
    proxy.cut();
    // Analysis is fast: the first image's events may all have arrived before the
    // cut. A second image analysed after the cut can only reach the watch through
    // a new connection, so waiting for its final event proves resume-by-cursor.
    let later = client
        .analyze_images(proto::AnalyzeImagesRequest {
            project_id: project_id.into(),
            images: vec![proto::ImageInput {
                source: Some(proto::image_input::Source::Data(sunset_png().into())),
                mime_type: "image/png".into(),
                image_id: "sunset-after-cut".into(),
            }],
        })
        .await
        .expect("analyze a second image after the cut");
    let later_id = later.analyses[0].image_id.clone();
    while ![&image_id, &later_id].iter().all(|id| events.iter().any(|e| &e.image_id == *id && is_final(e))) {
        events.push(next(&mut watch).await.expect("event after the cut"));
    }
    assert!(watch.reconnects() >= 1, "the cut forced a reconnect");
    let cursors: Vec<u64> = events.iter().map(|e| e.cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors strictly increase, no duplicates: {cursors:?}");
    assert_eq!(watch.cursor(), *cursors.last().expect("cursor"));
    let ready = events
        .iter()
        .find(|e| e.image_id == image_id && e.r#type() == proto::EventType::ImageFactsReady)
        .unwrap_or_else(|| panic!("a READY event for {image_id}: {events:?}"));
    let facts = ready.facts.as_ref().expect("facts");
    assert_eq!((facts.width, facts.height), (96, 64));
    assert_eq!(facts.palette.len(), 5);

    // The stored log replays the same events, and resuming mid-way yields the rest.
    let mut replay = client.watch_image_facts(project_id, 0);
    for expected in &cursors {
        assert_eq!(next(&mut replay).await.expect("replayed event").cursor, *expected);
    }
    let mut resumed = client.watch_image_facts(project_id, cursors[0]);
    assert_eq!(next(&mut resumed).await.expect("resumed event").cursor, cursors[1]);

    let analysis = client.get_image_facts(project_id, image_id).await.expect("get image facts");
    assert_eq!(analysis.status(), proto::ImageAnalysisStatus::Ready);
}

fn is_final(event: &proto::ImageFactsEvent) -> bool {
    matches!(event.r#type(), proto::EventType::ImageFactsProcessed | proto::EventType::ImageFactsFailed)
}

async fn next(watch: &mut ImageFactsWatch) -> Result<proto::ImageFactsEvent, brain_client::BrainError> {
    timeout(Duration::from_secs(30), watch.next()).await.expect("an event within 30 s").expect("the watch ended")
}

async fn performance_report(client: &BrainClient, project_id: &str) {
    let request = proto::GetPerformanceReportRequest {
        window: proto::ReportWindow::SinceStart.into(),
        project_id: String::new(),
    };
    let report = client.get_performance_report(request).await.expect("performance report");
    assert!(report.generate_time.is_some());
    let requests = report.requests.as_ref().expect("request stats");
    assert!(requests.total > 0, "the scenario's calls are counted: {requests:?}");
    assert!(requests.errors > 0, "the scenario's refused calls are counted as errors: {requests:?}");
    assert!(report.rpc_latencies.iter().any(|l| l.count > 0), "{:?}", report.rpc_latencies);
    let scoped = client
        .get_performance_report(proto::GetPerformanceReportRequest {
            window: proto::ReportWindow::SinceStart.into(),
            project_id: project_id.into(),
        })
        .await
        .expect("project report");
    assert_eq!(scoped.project_id, project_id);
}

/// Deletes the project: the counts cover what the scenario wrote, and the project is
/// NOT_FOUND afterwards, to a second delete too.
async fn delete_project(client: &BrainClient, project_id: &str) {
    // The scenario wrote 3 scenes, 2 preferences, one orchestration (one turn) and 2 images.
    let deleted = client.delete_project(project_id).await.expect("delete project");
    assert!(deleted.scenes >= 3 && deleted.memory_items >= 2, "{deleted:?}");
    assert!(deleted.orchestrations >= 1 && deleted.conversation_turns >= 1, "{deleted:?}");
    assert!(deleted.image_analyses >= 2 && deleted.events >= 1, "{deleted:?}");

    let err = client.get_project(project_id).await.expect_err("a deleted project is gone");
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.reason(), Some("PROJECT_NOT_FOUND"), "{err}");
    let err = client
        .list_scenes(proto::ListScenesRequest { project_id: project_id.into(), ..Default::default() })
        .await
        .expect_err("a deleted project has no scenes");
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.reason(), Some("PROJECT_NOT_FOUND"), "{err}");
    // Deleting it again is NOT_FOUND too (a replayed delete would answer the same, so it is not retried).
    let err = client.delete_project(project_id).await.expect_err("a second delete");
    assert_eq!(err.code(), Code::NotFound, "{err}");
    assert_eq!(err.reason(), Some("PROJECT_NOT_FOUND"), "{err}");
}

/// AdminService needs an admin key, and an admin key calls nothing else; retention names its
/// tenant; purging erases one tenant, and an unknown (or already purged) one is TENANT_NOT_FOUND.
async fn admin(server: &BrainServer, client: &BrainClient) {
    let err = client.run_retention(Default::default()).await.expect_err("a tenant's key runs no retention");
    assert_eq!((err.code(), err.reason()), (Code::PermissionDenied, Some("ADMIN_KEY_REQUIRED")), "{err}");
    assert_eq!(err.error_reason(), Some(proto::ErrorReason::AdminKeyRequired));
    let err = client.purge_tenant(support::PURGE_TENANT).await.expect_err("a tenant's key purges nothing");
    assert_eq!((err.code(), err.reason()), (Code::PermissionDenied, Some("ADMIN_KEY_REQUIRED")), "{err}");

    let admin = server.client_with(&server.admin_key).await;
    let err = admin.list_projects(Default::default()).await.expect_err("an admin key reads no tenant's data");
    assert_eq!((err.code(), err.reason()), (Code::PermissionDenied, Some("TENANT_KEY_REQUIRED")), "{err}");
    assert_eq!(err.error_reason(), Some(proto::ErrorReason::TenantKeyRequired));

    let retention = proto::RunRetentionRequest { dry_run: true, tenant: support::TENANT.into(), ..Default::default() };
    let run = admin.run_retention(retention).await.expect("retention for the test tenant");
    assert!(run.dry_run, "{run:?}");
    let err = admin
        .run_retention(proto::RunRetentionRequest { dry_run: true, ..Default::default() })
        .await
        .expect_err("an admin key names the tenant");
    assert_eq!((err.code(), err.reason(), err.field()), (Code::InvalidArgument, Some("MISSING_FIELD"), Some("tenant")));

    let err = admin.purge_tenant("no-such-tenant").await.expect_err("an unknown tenant");
    assert_eq!((err.code(), err.reason()), (Code::NotFound, Some("TENANT_NOT_FOUND")), "{err}");
    assert_eq!(err.error_reason(), Some(proto::ErrorReason::TenantNotFound));

    // The purged tenant holds one project with one scene.
    let doomed = server.client_with(&server.purge_key).await;
    let project = doomed
        .create_project(proto::CreateProjectRequest { name: "Doomed".into(), ..Default::default() })
        .await
        .expect("create a project to purge");
    let scene = proto::UpsertSceneRequest {
        project_id: project.project_id.clone(),
        name: "Only scene".into(),
        ..Default::default()
    };
    doomed.upsert_scene(scene).await.expect("add a scene");
    let purged = admin.purge_tenant(support::PURGE_TENANT).await.expect("purge");
    assert_eq!((purged.projects, purged.api_keys), (1, 1), "{purged:?}");
    assert_eq!(purged.deleted.expect("deleted rows").scenes, 1);
    // Its key stops working at once; purging it again (what a replay would do) is NOT_FOUND.
    let err = doomed.list_projects(Default::default()).await.expect_err("a purged tenant's key");
    assert_eq!((err.code(), err.reason()), (Code::Unauthenticated, Some("API_KEY_INVALID")), "{err}");
    let err = admin.purge_tenant(support::PURGE_TENANT).await.expect_err("a second purge");
    assert_eq!((err.code(), err.reason()), (Code::NotFound, Some("TENANT_NOT_FOUND")), "{err}");
    client.list_projects(Default::default()).await.expect("the other tenant is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_only_idempotent_calls_within_the_deadline() {
    let server = BrainServer::start().await;
    let proxy = Arc::new(Proxy::start(&server.addr).await);
    let patient = RetryPolicy {
        max_attempts: 50,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        multiplier: 2.0,
        jitter: 0.1,
    };
    let client = BrainClient::builder(proxy.addr.clone())
        .api_key(server.api_key.clone())
        .retry(patient)
        .connect()
        .await
        .expect("connect through the proxy");
    let project = client
        .create_project(proto::CreateProjectRequest { name: "Retries".into(), ..Default::default() })
        .await
        .expect("create project");

    // The server is unreachable: a non-idempotent call fails at once.
    proxy.refuse();
    let started = Instant::now();
    let err = client
        .create_project(proto::CreateProjectRequest { name: "Never".into(), ..Default::default() })
        .await
        .expect_err("unreachable");
    assert!(err.is_retryable(), "a connection failure: {err}");
    assert!(started.elapsed() < Duration::from_millis(500), "not retried: {:?}", started.elapsed());

    // An idempotent call is retried until the server is back.
    let restorer = {
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            proxy.restore().await;
        })
    };
    let started = Instant::now();
    let fetched = client.get_project(project.project_id.clone()).await.expect("retried through the outage");
    assert_eq!(fetched.project_id, project.project_id);
    assert!(started.elapsed() >= Duration::from_millis(300), "it waited for the outage: {:?}", started.elapsed());
    restorer.await.expect("restorer");
    let direct = server.client().await;
    let all = direct.list_projects(Default::default()).await.expect("list");
    assert_eq!(all.projects.len(), 1, "the refused CreateProject wrote nothing");

    // Retries stop at the deadline.
    proxy.refuse();
    let started = Instant::now();
    let err =
        client.with_timeout(Duration::from_millis(300)).list_projects(Default::default()).await.expect_err("down");
    assert!(err.is_retryable() || err.code() == Code::DeadlineExceeded, "{err}");
    assert!(started.elapsed() < Duration::from_millis(1000), "bounded by the deadline: {:?}", started.elapsed());

    // A server that never answers fails with DEADLINE_EXCEEDED at the deadline.
    proxy.restore().await;
    proxy.stall();
    let stalled = BrainClient::builder(proxy.addr.clone())
        .api_key(server.api_key.clone())
        .timeout(Duration::from_millis(300))
        .connect_lazy()
        .expect("client");
    let started = Instant::now();
    let err = stalled.list_projects(Default::default()).await.expect_err("stalled");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_example_runs() {
    let server = BrainServer::start().await;
    // <target>/debug/deps/<test binary> -> <target>/debug/examples/quickstart
    let exe = std::env::current_exe().expect("test binary");
    let example = exe.ancestors().nth(2).expect("profile dir").join("examples/quickstart");
    assert!(example.exists(), "cargo test builds examples: {}", example.display());
    let output = tokio::process::Command::new(&example)
        .env("BRAIN_ADDR", &server.addr)
        .env("BRAIN_API_KEY", &server.api_key)
        .output()
        .await
        .expect("run the quickstart");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "quickstart failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("has 1 scene(s)"), "{stdout}");
    assert!(stdout.contains("deleted 1 scene(s), 0 memory item(s)"), "{stdout}");
    assert!(stdout.contains("NOT_FOUND PROJECT_NOT_FOUND"), "{stdout}");

    let readme = std::fs::read_to_string(support::repo_root().join("client/rust/README.md")).expect("README");
    let example_source =
        std::fs::read_to_string(support::repo_root().join("client/rust/examples/quickstart.rs")).expect("example");
    assert!(readme.contains(example_source.trim()), "README.md shows examples/quickstart.rs verbatim");
}

/// Export a project and import it: a new project with the same scenes and memory. Neither
/// stream is bound by the client's default deadline (here 1 ms, far shorter than either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_a_project() {
    let server = BrainServer::start().await;
    let client = server.client().await;
    let project = client
        .create_project(proto::CreateProjectRequest { name: "Exported".into(), description: "to be copied".into() })
        .await
        .expect("create project");
    let project_id = project.project_id.clone();
    for (scene_id, name, seconds) in [("intro", "Intro", Some(4.5)), ("outro", "Outro", None)] {
        client
            .upsert_scene(proto::UpsertSceneRequest {
                project_id: project_id.clone(),
                scene_id: scene_id.into(),
                name: name.into(),
                summary: format!("{name} on dark blue"),
                duration_seconds: seconds,
                ..Default::default()
            })
            .await
            .expect("upsert scene");
    }
    for (key, value, confidence) in [("style", "minimal, flat colours", 0.9), ("font", "serif", 0.35)] {
        client
            .put_memory(proto::PutMemoryRequest {
                project_id: project_id.clone(),
                r#type: proto::MemoryType::UserPreference.into(),
                key: key.into(),
                value: value.into(),
                confidence: Some(confidence),
                ttl: None,
            })
            .await
            .expect("put memory");
    }

    let hasty = client.with_timeout(Duration::from_millis(1));
    let records: Vec<proto::ProjectRecord> = export(&hasty, &project_id).await;
    let Some(proto::project_record::Record::Header(header)) = &records[0].record else {
        panic!("an export starts with its header: {:?}", records[0]);
    };
    assert_eq!(header.format_version, 1);
    assert_eq!(header.project.as_ref().map(|p| p.project_id.as_str()), Some(project_id.as_str()));
    let counts = header.counts.expect("counts");
    assert_eq!((counts.scenes, counts.memory_items, counts.conversation_turns, counts.image_analyses), (2, 2, 0, 0));
    assert_eq!(records.len(), 5, "the header and one record per item: {records:?}");

    let imported = hasty.import_project(futures::stream::iter(records.clone())).await.expect("import");
    let copy = imported.project.expect("project");
    assert_ne!(copy.project_id, project_id, "an import creates a new project");
    assert_eq!((copy.name.as_str(), copy.description.as_str()), ("Exported", "to be copied"));
    assert_eq!(imported.imported, Some(counts));

    let scenes = |id: String| {
        let client = client.clone();
        async move {
            let listed = client
                .list_scenes(proto::ListScenesRequest { project_id: id, ..Default::default() })
                .await
                .expect("list scenes");
            let scenes: Vec<_> = listed
                .scenes
                .into_iter()
                .map(|s| (s.scene_id, s.position, s.name, s.summary, s.duration_seconds))
                .collect();
            scenes
        }
    };
    let memories = |id: String| {
        let client = client.clone();
        async move {
            let listed = client
                .list_memories(proto::ListMemoriesRequest { project_id: id, ..Default::default() })
                .await
                .expect("list memories");
            let memories: Vec<_> =
                listed.memories.into_iter().map(|m| (m.r#type, m.key, m.value, m.confidence)).collect();
            memories
        }
    };
    let original_scenes = scenes(project_id.clone()).await;
    assert_eq!(original_scenes.len(), 2);
    assert_eq!(scenes(copy.project_id.clone()).await, original_scenes);
    assert_eq!(memories(copy.project_id.clone()).await, memories(project_id.clone()).await);
    // The copy exports as the original did, but for its id.
    let again = export(&client, &copy.project_id).await;
    assert_eq!(again.len(), records.len());

    // A project that is not there (never was, or was deleted) is NOT_FOUND when the export opens.
    client.delete_project(project_id.clone()).await.expect("delete");
    for missing in ["no-such-project", project_id.as_str()] {
        let err = client.export_project(missing).await.err().expect("exporting a missing project fails");
        assert_eq!(err.code(), Code::NotFound, "{err}");
        assert_eq!(err.reason(), Some("PROJECT_NOT_FOUND"), "{err}");
    }

    // A bad record is INVALID_ARGUMENT naming it, and nothing of that import stays.
    let before = client.list_projects(Default::default()).await.expect("list projects").projects.len();
    let mut bad = records.clone();
    if let Some(proto::project_record::Record::Memory(memory)) = &mut bad[3].record {
        memory.key.clear();
    }
    let err = client.import_project(futures::stream::iter(bad)).await.expect_err("a memory item without a key");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.field().is_some_and(|f| f.starts_with("records[3]")), "{err}");
    let err = client
        .import_project(futures::stream::iter(records[..4].to_vec()))
        .await
        .expect_err("an import with fewer records than its header announces");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let after = client.list_projects(Default::default()).await.expect("list projects").projects.len();
    assert_eq!(after, before, "failed imports leave no project");
}

async fn export(client: &BrainClient, project_id: &str) -> Vec<proto::ProjectRecord> {
    let stream = client.export_project(project_id).await.expect("export");
    stream.map(|record| record.expect("record")).collect().await
}
