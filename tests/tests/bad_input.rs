//! Bad input gets the right code, ErrorInfo reason and `field` metadata, and changes nothing:
//! after every rejected request the tenant's projects, scenes and memory items are exactly as
//! before.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use brain_e2e::{ApiKey, Server, ServerOptions, TestDb, assert_error, backend_tests, error_field};
use brain_proto::v1::{
    CreateProjectRequest, DeleteMemoryRequest, DeleteSceneRequest, EventType, GetImageFactsRequest, GetProjectRequest,
    ImageAnalysisStatus, ListMemoriesRequest, ListProjectsRequest, ListScenesRequest, MemoryItem, MemoryKey,
    MemoryType, OrchestrateRequest, OrchestrateStreamRequest, Project, PutMemoryRequest, Scene, UpsertSceneRequest,
    WatchPerformanceReportRequest, delete_memory_request::Target, project_service_client::ProjectServiceClient,
};
use common::{Behavior, ImageHost, by_url, encode, inline, jpeg_claiming, next_event, picture, watch};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

type Projects = ProjectServiceClient<InterceptedService<Channel, ApiKey>>;

/// Everything the tenant has stored, to compare before and after rejected requests.
#[derive(Debug, PartialEq)]
struct Snapshot {
    projects: Vec<Project>,
    scenes: Vec<Scene>,
    memories: Vec<MemoryItem>,
}

async fn snapshot(client: &mut Projects, project_id: &str) -> Snapshot {
    let projects = client
        .list_projects(ListProjectsRequest { page_size: 500, page_token: String::new() })
        .await
        .expect("list projects")
        .into_inner()
        .projects;
    let scenes = client
        .list_scenes(ListScenesRequest { project_id: project_id.into(), page_size: 500, page_token: String::new() })
        .await
        .expect("list scenes")
        .into_inner()
        .scenes;
    let memories = client
        .list_memories(ListMemoriesRequest { project_id: project_id.into(), page_size: 500, ..Default::default() })
        .await
        .expect("list memories")
        .into_inner()
        .memories;
    Snapshot { projects, scenes, memories }
}

/// Asserts code, reason and the `field` metadata (None: no field named).
#[track_caller]
fn rejected<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str, field: Option<&str>) {
    let status = assert_error(result, code, reason);
    assert_eq!(error_field(&status).as_deref(), field, "field of {status:?}");
}

/// A project with three scenes and two memory items, so a stray write would show.
async fn seeded(client: &mut Projects) -> String {
    let pid = client
        .create_project(CreateProjectRequest { name: "seeded".into(), description: String::new() })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project")
        .project_id;
    for id in ["a", "b", "c"] {
        client
            .upsert_scene(UpsertSceneRequest {
                project_id: pid.clone(),
                scene_id: id.into(),
                name: format!("Scene {id}"),
                summary: "something".into(),
                ..Default::default()
            })
            .await
            .expect("scene");
    }
    for key in ["style", "pace"] {
        client
            .put_memory(PutMemoryRequest {
                project_id: pid.clone(),
                r#type: MemoryType::UserPreference as i32,
                key: key.into(),
                value: "v".into(),
                ..Default::default()
            })
            .await
            .expect("memory");
    }
    pid
}

fn valid_scene(pid: &str) -> UpsertSceneRequest {
    UpsertSceneRequest {
        project_id: pid.into(),
        scene_id: "b".into(),
        name: "Moved".into(),
        position: Some(0),
        summary: "changed".into(),
        ..Default::default()
    }
}

fn valid_memory(pid: &str) -> PutMemoryRequest {
    PutMemoryRequest {
        project_id: pid.into(),
        r#type: MemoryType::UserPreference as i32,
        key: "style".into(),
        value: "changed".into(),
        ..Default::default()
    }
}

/// Empty and malformed ids, on every RPC that takes one.
async fn ids_are_checked(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;
    let invalid = "INVALID_ID";
    let missing = "MISSING_FIELD";
    let arg = Code::InvalidArgument;

    rejected(c.get_project(GetProjectRequest { project_id: String::new() }).await, arg, missing, Some("project_id"));
    for bad in ["a b", "../etc/passwd", "ü", "id;DROP TABLE projects", &"x".repeat(129)] {
        rejected(c.get_project(GetProjectRequest { project_id: bad.into() }).await, arg, invalid, Some("project_id"));
        rejected(
            c.upsert_scene(UpsertSceneRequest { project_id: bad.into(), ..valid_scene(&pid) }).await,
            arg,
            invalid,
            Some("project_id"),
        );
        rejected(
            c.upsert_scene(UpsertSceneRequest { scene_id: bad.into(), ..valid_scene(&pid) }).await,
            arg,
            invalid,
            Some("scene_id"),
        );
        rejected(
            c.put_memory(PutMemoryRequest { project_id: bad.into(), ..valid_memory(&pid) }).await,
            arg,
            invalid,
            Some("project_id"),
        );
        rejected(
            c.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: bad.into() }).await,
            arg,
            invalid,
            Some("scene_id"),
        );
        rejected(
            c.delete_memory(DeleteMemoryRequest {
                project_id: pid.clone(),
                target: Some(Target::MemoryId(bad.into())),
            })
            .await,
            arg,
            invalid,
            Some("memory_id"),
        );
        rejected(
            c.list_scenes(ListScenesRequest { project_id: bad.into(), ..Default::default() }).await,
            arg,
            invalid,
            Some("project_id"),
        );
    }
    rejected(
        c.upsert_scene(UpsertSceneRequest { project_id: String::new(), ..valid_scene(&pid) }).await,
        arg,
        missing,
        Some("project_id"),
    );
    rejected(
        c.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: String::new() }).await,
        arg,
        missing,
        Some("scene_id"),
    );
    rejected(
        c.list_memories(ListMemoriesRequest { project_id: String::new(), ..Default::default() }).await,
        arg,
        missing,
        Some("project_id"),
    );
    rejected(
        c.delete_memory(DeleteMemoryRequest { project_id: pid.clone(), target: None }).await,
        arg,
        missing,
        Some("memory_id"),
    );
    // A well-formed id that does not exist is NOT_FOUND, and writes nothing either.
    rejected(
        c.upsert_scene(UpsertSceneRequest { project_id: "nope".into(), ..valid_scene(&pid) }).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
        Some("project_id"),
    );
    rejected(
        c.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: "nope".into() }).await,
        Code::NotFound,
        "SCENE_NOT_FOUND",
        Some("scene_id"),
    );
    assert_eq!(snapshot(&mut c, &pid).await, before, "rejected requests changed stored data");
}

/// Negative page sizes and page tokens that were not issued for the list.
async fn paging_input_is_checked(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let arg = Code::InvalidArgument;
    for size in [-1, i32::MIN] {
        rejected(
            c.list_projects(ListProjectsRequest { page_size: size, page_token: String::new() }).await,
            arg,
            "INVALID_PAGE_SIZE",
            Some("page_size"),
        );
        rejected(
            c.list_scenes(ListScenesRequest { project_id: pid.clone(), page_size: size, page_token: String::new() })
                .await,
            arg,
            "INVALID_PAGE_SIZE",
            Some("page_size"),
        );
        rejected(
            c.list_memories(ListMemoriesRequest { project_id: pid.clone(), page_size: size, ..Default::default() })
                .await,
            arg,
            "INVALID_PAGE_SIZE",
            Some("page_size"),
        );
    }
    // Garbage, a valid encoding with a wrong scope, and base64 of nonsense.
    for token in ["not a token", "djF8MDAwMDAwMDAwMDAwfGFiYw", "AAAA", "%%%"] {
        rejected(
            c.list_projects(ListProjectsRequest { page_size: 1, page_token: token.into() }).await,
            arg,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
        );
        rejected(
            c.list_scenes(ListScenesRequest { project_id: pid.clone(), page_size: 1, page_token: token.into() }).await,
            arg,
            "INVALID_PAGE_TOKEN",
            Some("page_token"),
        );
    }
}

/// Enum values this server does not know, and unset required enums.
async fn enums_are_checked(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;
    let arg = Code::InvalidArgument;
    rejected(
        c.upsert_scene(UpsertSceneRequest { status: 99, ..valid_scene(&pid) }).await,
        arg,
        "UNKNOWN_ENUM_VALUE",
        Some("status"),
    );
    rejected(
        c.upsert_scene(UpsertSceneRequest { status: -1, ..valid_scene(&pid) }).await,
        arg,
        "UNKNOWN_ENUM_VALUE",
        Some("status"),
    );
    rejected(
        c.put_memory(PutMemoryRequest { r#type: 42, ..valid_memory(&pid) }).await,
        arg,
        "UNKNOWN_ENUM_VALUE",
        Some("type"),
    );
    rejected(
        c.put_memory(PutMemoryRequest { r#type: MemoryType::Unspecified as i32, ..valid_memory(&pid) }).await,
        arg,
        "MISSING_FIELD",
        Some("type"),
    );
    rejected(
        c.list_memories(ListMemoriesRequest { project_id: pid.clone(), r#type: 7, ..Default::default() }).await,
        arg,
        "UNKNOWN_ENUM_VALUE",
        Some("type"),
    );
    rejected(
        c.delete_memory(DeleteMemoryRequest {
            project_id: pid.clone(),
            target: Some(Target::MemoryKey(MemoryKey { r#type: 7, key: "style".into() })),
        })
        .await,
        arg,
        "UNKNOWN_ENUM_VALUE",
        Some("memory_key.type"),
    );
    assert_eq!(snapshot(&mut c, &pid).await, before, "rejected requests changed stored data");
}

/// Names, free text, numbers and durations outside their allowed forms.
async fn fields_are_checked(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;
    let arg = Code::InvalidArgument;
    let too_large = Code::ResourceExhausted;

    for name in ["", "   ", "\t\n"] {
        rejected(
            c.create_project(CreateProjectRequest { name: name.into(), description: String::new() }).await,
            arg,
            "MISSING_FIELD",
            Some("name"),
        );
        rejected(
            c.upsert_scene(UpsertSceneRequest { name: name.into(), ..valid_scene(&pid) }).await,
            arg,
            "MISSING_FIELD",
            Some("name"),
        );
    }
    rejected(
        c.create_project(CreateProjectRequest { name: "bell\u{7}".into(), description: String::new() }).await,
        arg,
        "INVALID_FIELD",
        Some("name"),
    );
    let status = assert_error(
        c.create_project(CreateProjectRequest { name: "n".repeat(201), description: String::new() }).await,
        too_large,
        "VALUE_TOO_LARGE",
    );
    assert_eq!(error_field(&status).as_deref(), Some("name"));
    let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("200"));
    rejected(
        c.create_project(CreateProjectRequest { name: "ok".into(), description: "d".repeat(2001) }).await,
        too_large,
        "VALUE_TOO_LARGE",
        Some("description"),
    );
    rejected(
        c.upsert_scene(UpsertSceneRequest { summary: "s".repeat(4001), ..valid_scene(&pid) }).await,
        too_large,
        "VALUE_TOO_LARGE",
        Some("summary"),
    );
    for seconds in [0.0, -1.0, 3600.5, f64::NAN, f64::INFINITY] {
        rejected(
            c.upsert_scene(UpsertSceneRequest { duration_seconds: Some(seconds), ..valid_scene(&pid) }).await,
            arg,
            "INVALID_FIELD",
            Some("duration_seconds"),
        );
    }
    for value in ["", "   "] {
        rejected(
            c.put_memory(PutMemoryRequest { value: value.into(), ..valid_memory(&pid) }).await,
            arg,
            "MISSING_FIELD",
            Some("value"),
        );
    }
    rejected(
        c.put_memory(PutMemoryRequest { value: "v".repeat(4001), ..valid_memory(&pid) }).await,
        too_large,
        "VALUE_TOO_LARGE",
        Some("value"),
    );
    rejected(
        c.put_memory(PutMemoryRequest { key: String::new(), ..valid_memory(&pid) }).await,
        arg,
        "MISSING_FIELD",
        Some("key"),
    );
    for confidence in [-0.1, 1.01, f64::NAN] {
        rejected(
            c.put_memory(PutMemoryRequest { confidence: Some(confidence), ..valid_memory(&pid) }).await,
            arg,
            "INVALID_FIELD",
            Some("confidence"),
        );
    }
    for ttl in [
        prost_types::Duration { seconds: -1, nanos: 0 },
        prost_types::Duration { seconds: 0, nanos: -5 },
        prost_types::Duration { seconds: 0, nanos: 0 },
        prost_types::Duration { seconds: i64::MAX, nanos: 0 },
    ] {
        rejected(
            c.put_memory(PutMemoryRequest { ttl: Some(ttl), ..valid_memory(&pid) }).await,
            arg,
            "INVALID_FIELD",
            Some("ttl"),
        );
    }
    assert_eq!(snapshot(&mut c, &pid).await, before, "rejected requests changed stored data");
}

/// A request larger than `max_message_bytes` is RESOURCE_EXHAUSTED / MESSAGE_TOO_LARGE with the
/// limit, and writes nothing; the server keeps serving.
async fn oversized_messages_are_refused(db: Arc<TestDb>) {
    let limit = 64 * 1024;
    let server =
        Server::start_with(&db, ServerOptions::new().set("max_message_bytes", limit).set("max_image_bytes", limit))
            .await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;

    for size in [limit + 1, 4 * limit, 8 << 20] {
        let status = assert_error(
            c.create_project(CreateProjectRequest { name: "big".into(), description: "x".repeat(size) }).await,
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
        );
        let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
        assert_eq!(info.metadata.get("limit"), Some(&limit.to_string()));
        assert_error(
            c.upsert_scene(UpsertSceneRequest { summary: "y".repeat(size), ..valid_scene(&pid) }).await,
            Code::ResourceExhausted,
            "MESSAGE_TOO_LARGE",
        );
    }
    assert_eq!(snapshot(&mut c, &pid).await, before, "an oversized request wrote something");
    // Just under the limit is decoded (and then judged on its fields).
    rejected(
        c.create_project(CreateProjectRequest { name: "big".into(), description: "x".repeat(limit - 64) }).await,
        Code::ResourceExhausted,
        "VALUE_TOO_LARGE",
        Some("description"),
    );
}

/// Bytes that are not a valid request message: INVALID_ARGUMENT with a reason, never INTERNAL, and
/// nothing written.
async fn malformed_messages_are_invalid_arguments(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;
    let create = "/brain.v1.ProjectService/CreateProject";
    let cases: [(&str, Vec<u8>); 4] = [
        // field 1 (name), length 2, invalid UTF-8
        ("invalid UTF-8 in a string", vec![0x0a, 0x02, 0xff, 0xfe]),
        // field 1, length 10, but only 2 bytes follow
        ("truncated length-delimited field", vec![0x0a, 0x0a, b'h', b'i']),
        // a varint that never ends
        ("unterminated varint", vec![0x10, 0xff, 0xff, 0xff]),
        // field number 0 is illegal
        ("field number zero", vec![0x02, 0x01, 0x00]),
    ];
    for (what, bytes) in cases {
        let status = assert_error(server.raw_unary(create, bytes, None).await, Code::InvalidArgument, "INVALID_FIELD");
        assert!(!status.message().is_empty(), "{what}: {status:?}");
    }
    // A valid encoding still works through the same path (the harness is not the problem).
    let ok = server.raw_unary(create, vec![0x0a, 0x02, b'o', b'k'], None).await.expect("valid raw request");
    assert!(!ok.is_empty());
    let after = snapshot(&mut c, &pid).await;
    assert_eq!(after.projects.len(), before.projects.len() + 1, "only the valid request wrote");
    assert_eq!((after.scenes, after.memories), (before.scenes, before.memories));
}

/// Durations: `nanos` outside 0..999,999,999 is INVALID_FIELD naming `<field>.nanos`; negative
/// durations stay refused; a ttl far beyond the limit (i64::MAX seconds) is refused with a message
/// and ErrorInfo `limit` that state the real limit, which is itself accepted. Nothing is written.
async fn durations_are_checked(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let before = snapshot(&mut c, &pid).await;
    let arg = Code::InvalidArgument;
    let duration = |seconds, nanos| Some(prost_types::Duration { seconds, nanos });
    let bad_nanos = [(0, 1_000_000_000), (0, i32::MAX), (1, -1), (0, i32::MIN), (7, -999_999_999)];

    // (seconds, nanos, field, message, limit); i64::MAX seconds is over the limit, not "not positive".
    let limit_seconds = 3650 * 86_400;
    let within = "from 1 ms to 3650 days (315360000 s)";
    let mut ttl_cases: Vec<(i64, i32, &str, &str, Option<&str>)> =
        bad_nanos.iter().map(|&(s, n)| (s, n, "ttl.nanos", "0 to 999,999,999", Some("0..999999999"))).collect();
    for (seconds, nanos) in [(-1, 0), (0, -1), (-5, -500_000_000), (i64::MIN, 0)] {
        ttl_cases.push((seconds, nanos, "ttl", "must not be negative", None));
    }
    for (seconds, nanos) in [(i64::MAX, 999_999_999), (i64::MAX, 0), (limit_seconds, 1_000_000), (0, 0)] {
        ttl_cases.push((seconds, nanos, "ttl", within, Some("315360000s")));
    }
    for (seconds, nanos, field, message, limit) in ttl_cases {
        let status = assert_error(
            c.put_memory(PutMemoryRequest { ttl: duration(seconds, nanos), ..valid_memory(&pid) }).await,
            arg,
            "INVALID_FIELD",
        );
        assert_eq!(error_field(&status).as_deref(), Some(field), "{seconds}s {nanos}ns: {status:?}");
        assert!(status.message().contains(message), "{seconds}s {nanos}ns: {status:?}");
        let info = tonic_types::StatusExt::get_details_error_info(&status).expect("error info");
        assert_eq!(info.metadata.get("limit").map(String::as_str), limit, "{seconds}s {nanos}ns");
    }

    // image_wait on OrchestrateStream and interval on WatchPerformanceReport, through the same rules.
    let mut orchestrator = server.orchestrator(None).await;
    let stream = |image_wait| OrchestrateStreamRequest {
        project_id: pid.clone(),
        prompt: "add a scene".into(),
        image_wait,
        ..Default::default()
    };
    for (seconds, nanos) in bad_nanos {
        let status =
            assert_error(orchestrator.orchestrate_stream(stream(duration(seconds, nanos))).await, arg, "INVALID_FIELD");
        assert_eq!(error_field(&status).as_deref(), Some("image_wait.nanos"), "{status:?}");
    }
    for (wait, message) in [(duration(-1, 0), "must not be negative"), (duration(i64::MAX, 0), "at most 10 minutes")] {
        let status = assert_error(orchestrator.orchestrate_stream(stream(wait)).await, arg, "INVALID_FIELD");
        assert_eq!(error_field(&status).as_deref(), Some("image_wait"), "{status:?}");
        assert!(status.message().contains(message), "{status:?}");
    }
    let mut performance = server.performance(None).await;
    let status = assert_error(
        performance
            .watch_performance_report(WatchPerformanceReportRequest {
                interval: duration(5, 1_000_000_000),
                ..Default::default()
            })
            .await,
        arg,
        "INVALID_FIELD",
    );
    assert_eq!(error_field(&status).as_deref(), Some("interval.nanos"), "{status:?}");
    assert_eq!(snapshot(&mut c, &pid).await, before, "rejected requests changed stored data");

    // The limit itself, and the largest nanos, are accepted.
    c.put_memory(PutMemoryRequest { ttl: duration(limit_seconds, 0), ..valid_memory(&pid) })
        .await
        .expect("a ttl of exactly 3650 days");
    c.put_memory(PutMemoryRequest { ttl: duration(1, 999_999_999), ..valid_memory(&pid) })
        .await
        .expect("nanos 999,999,999");
}

/// A JPEG of a few hundred bytes whose header claims 8000x8000 cannot hold that image: its
/// analysis FAILS with a reason that says so (inline and by URL on AnalyzeImages, and attached to
/// Orchestrate), once, without retries, while a real JPEG in the same request is analysed.
async fn images_too_small_for_their_size_fail(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let server = Server::start_with(
        &db,
        ServerOptions::new()
            .set("job_workers", 2)
            .set("job_poll_interval_ms", 200)
            .set("allow_private_image_urls", true),
    )
    .await;
    let mut c = server.projects(None).await;
    let pid = seeded(&mut c).await;
    let mut stream = watch(&server, &pid, 0).await;
    let liar = jpeg_claiming(8000, 8000);
    assert!(liar.len() < 1_000, "{} bytes", liar.len());
    let real = encode(&picture(64, 48, [220, 40, 40], [30, 30, 170]), image::ImageFormat::Jpeg);
    let url = host.add("liar.jpg", liar.clone(), Behavior::Serve);

    let mut images = server.image_facts(None).await;
    images
        .analyze_images(brain_proto::v1::AnalyzeImagesRequest {
            project_id: pid.clone(),
            images: vec![inline(liar.clone(), "liar"), by_url(&url, "liar-by-url"), inline(real, "real")],
        })
        .await
        .expect("accepted: the bytes are a JPEG, decoding is the job's business");
    let mut orchestrator = server.orchestrator(None).await;
    orchestrator
        .orchestrate(OrchestrateRequest {
            project_id: pid.clone(),
            prompt: "make a scene from this mockup".into(),
            images: vec![inline(liar, "liar-attached")],
            ..Default::default()
        })
        .await
        .expect("the orchestration answers at once");

    // Each image's events, until every one has its final event (FAILED, or PROCESSED after READY).
    let mut seen: HashMap<String, Vec<(EventType, String)>> = HashMap::new();
    let is_final =
        |e: &(EventType, String)| matches!(e.0, EventType::ImageFactsFailed | EventType::ImageFactsProcessed);
    while seen.len() < 4 || !seen.values().all(|events| events.iter().any(is_final)) {
        let event = next_event(&mut stream, Duration::from_secs(30)).await;
        seen.entry(event.image_id.clone()).or_default().push((event.r#type(), event.error.clone()));
    }
    let kinds = |id: &str| seen[id].iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(kinds("real"), [EventType::ImageFactsReady, EventType::ImageFactsProcessed], "{seen:?}");
    for id in ["liar", "liar-by-url", "liar-attached"] {
        let [(kind, reason)] = seen[id].as_slice() else { panic!("{id}: one final event expected: {seen:?}") };
        assert_eq!(*kind, EventType::ImageFactsFailed, "{id}: {seen:?}");
        assert!(reason.contains("truncated JPEG") && reason.contains("8000x8000"), "{id}: {reason}");
        let analysis = images
            .get_image_facts(GetImageFactsRequest { project_id: pid.clone(), image_id: id.into() })
            .await
            .expect("get image facts")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(analysis.status(), ImageAnalysisStatus::Failed, "{id}");
        assert_eq!(analysis.attempts, 1, "{id}: a permanent failure is not retried");
        assert!(analysis.facts.is_none(), "{id}: no facts are invented");
    }
    assert_eq!(host.hits("liar.jpg"), 1);
}

backend_tests!(
    ids_are_checked,
    paging_input_is_checked,
    enums_are_checked,
    fields_are_checked,
    durations_are_checked,
    images_too_small_for_their_size_fail,
    oversized_messages_are_refused,
    malformed_messages_are_invalid_arguments,
);
