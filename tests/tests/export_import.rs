//! ExportProject and ImportProject end to end: a project exported from a server
//! on one backend and imported into a server on the other gives the same
//! context packet, enhanced prompt and token counts; the same export imported
//! twice on one server gets new ids in the same order; a long history pages and
//! batches; bad, truncated, oversized or abandoned imports fail naming the
//! record and leave nothing; another tenant's project is NOT_FOUND.

mod common;

use std::{sync::Arc, time::Duration};

use brain_e2e::{
    Server, ServerOptions, TestDb, assert_error, backend_tests, create_key, env_usize, error_field,
    seed::{self, History},
};
use brain_proto::v1::{
    ExportHeader, ExportProjectRequest, GetContextPacketRequest, GetContextPacketResponse, ImageAnalysisStatus,
    ImportProjectRequest, ImportProjectResponse, ListImageFactsRequest, ListProjectsRequest, MemoryType,
    OrchestrateRequest, Project, ProjectRecord, ProjectRecordCounts, PutMemoryRequest, RunRetentionRequest,
    SceneStatus, UpsertSceneRequest, project_record::Record,
};
use common::*;
use futures::StreamExt;
use image::ImageFormat;
use tonic::{Code, Status};
use tonic_types::StatusExt;

const WAIT: Duration = Duration::from_secs(30);
const PROMPT: &str = "make the intro warmer and keep the outro short";

fn options() -> ServerOptions {
    ServerOptions::new().set("job_workers", 2).set("job_poll_interval_ms", 100).set("retention_keep_turns", 6)
}

/// A server on the other backend when PostgreSQL is configured, else on a second SQLite file.
async fn other_backend(db: &TestDb) -> Arc<TestDb> {
    match db.backend {
        brain_e2e::Backend::Sqlite => match TestDb::postgres().await {
            Some(pg) => pg,
            None => TestDb::sqlite_at("import-target").await,
        },
        brain_e2e::Backend::Postgres => TestDb::sqlite_at("import-target").await,
    }
}

/// Scenes, memory items, orchestrations (turns, derived memory), analysed images
/// and archived turns, all through the API.
async fn rich_project(server: &Server) -> String {
    let project_id = project(server, "Rich").await;
    let mut projects = server.projects(None).await;
    for (i, (scene, status)) in
        [("intro", SceneStatus::Ok), ("middle", SceneStatus::Broken), ("outro", SceneStatus::Ok)]
            .into_iter()
            .enumerate()
    {
        projects
            .upsert_scene(UpsertSceneRequest {
                project_id: project_id.clone(),
                scene_id: scene.into(),
                name: format!("The {scene}"),
                summary: format!("the {scene}: a beach at dusk, scene {i}"),
                duration_seconds: Some(2.5 + i as f64),
                status: status as i32,
                ..Default::default()
            })
            .await
            .expect("upsert scene");
    }
    for (key, value, confidence) in [("font", "serif", 0.9), ("pace", "slow", 0.6), ("music", "none", 0.95)] {
        projects
            .put_memory(PutMemoryRequest {
                project_id: project_id.clone(),
                r#type: MemoryType::UserPreference as i32,
                key: key.into(),
                value: value.into(),
                confidence: Some(confidence),
                ttl: (key == "pace").then_some(prost_types::Duration { seconds: 86_400, nanos: 0 }),
            })
            .await
            .expect("put memory");
    }
    let mut orchestrator = server.orchestrator(None).await;
    for i in 0..12 {
        let prompt = match i % 3 {
            0 => format!("make the intro brighter, I prefer warm colours ({i})"),
            1 => format!("edit the outro: shorter please ({i})"),
            _ => format!("add a scene with a sunset after the middle ({i})"),
        };
        let request = OrchestrateRequest { project_id: project_id.clone(), prompt, ..Default::default() };
        orchestrator.orchestrate(request).await.expect("orchestrate");
    }
    let blue = encode(&picture(64, 48, [20, 40, 200], [30, 60, 220]), ImageFormat::Png);
    let red = encode(&picture(48, 64, [220, 40, 20], [200, 90, 40]), ImageFormat::Jpeg);
    analyze(server, &project_id, vec![inline(blue, "moodboard-blue"), inline(red, "moodboard-red")]).await;
    wait_analysed(server, &project_id, 2).await;
    // Archive the oldest turns (retention_keep_turns = 6), so the export carries archived ones.
    let mut admin = server.admin(None).await;
    let report = admin
        .run_retention(RunRetentionRequest { project_id: project_id.clone(), ..Default::default() })
        .await
        .expect("retention")
        .into_inner();
    assert_eq!(report.archived_turns, 6, "{report:?}");
    project_id
}

/// Waits until the project's `n` images are analysed.
async fn wait_analysed(server: &Server, project_id: &str, n: usize) {
    let mut images = server.image_facts(None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = images
            .list_image_facts(ListImageFactsRequest { project_id: project_id.into(), ..Default::default() })
            .await
            .expect("list image facts")
            .into_inner();
        let ready = list.analyses.iter().filter(|a| a.status == ImageAnalysisStatus::Ready as i32).count();
        if ready == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "images not analysed in time: {:?}", list.analyses);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn export(server: &Server, project_id: &str) -> Result<Vec<ProjectRecord>, Status> {
    let mut projects = server.projects(None).await;
    let mut stream =
        projects.export_project(ExportProjectRequest { project_id: project_id.into() }).await?.into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.next().await {
        records.push(message?.record.expect("a record"));
    }
    Ok(records)
}

async fn import(
    server: &Server,
    key: Option<&str>,
    records: Vec<ProjectRecord>,
) -> Result<ImportProjectResponse, Status> {
    let mut projects = server.projects(key).await;
    let requests =
        futures::stream::iter(records.into_iter().map(|record| ImportProjectRequest { record: Some(record) }));
    projects.import_project(requests).await.map(tonic::Response::into_inner)
}

async fn context(server: &Server, project_id: &str) -> GetContextPacketResponse {
    let mut orchestrator = server.orchestrator(None).await;
    let request = GetContextPacketRequest { project_id: project_id.into(), prompt: PROMPT.into(), token_budget: 0 };
    orchestrator.get_context_packet(request).await.expect("context packet").into_inner()
}

/// The context with what necessarily differs between two projects cleared: the project id, the
/// build time and whether it came from the cache.
fn comparable(mut response: GetContextPacketResponse) -> GetContextPacketResponse {
    let packet = response.context.as_mut().expect("a packet");
    packet.project_id.clear();
    packet.build_time = None;
    for scene in &mut packet.scenes {
        scene.scene.as_mut().expect("scene").project_id.clear();
        for relationship in &mut scene.relationships {
            relationship.project_id.clear();
        }
    }
    for preference in &mut packet.preferences {
        preference.project_id.clear();
    }
    response.cache_hit = false;
    response
}

/// The records with the project ids they carry cleared (an import assigns a new one).
fn without_project_ids(records: &[ProjectRecord]) -> Vec<ProjectRecord> {
    let mut records = records.to_vec();
    for record in &mut records {
        match record.record.as_mut().expect("record") {
            Record::Header(h) => h.project.as_mut().expect("project").project_id.clear(),
            Record::Scene(s) => s.project_id.clear(),
            Record::Memory(m) => m.project_id.clear(),
            Record::Turn(_) => {}
            Record::Image(a) => a.project_id.clear(),
        }
    }
    records
}

fn header(records: &[ProjectRecord]) -> &ExportHeader {
    match records.first().and_then(|r| r.record.as_ref()) {
        Some(Record::Header(h)) => h,
        other => panic!("the first record is not the header: {other:?}"),
    }
}

/// Export on one backend, import on the other: the same context packet, enhanced prompt and
/// token counts, byte for byte; exporting the copy gives the same records.
async fn a_round_trip_across_backends_keeps_the_context(db: Arc<TestDb>) {
    let source = Server::start_with(&db, options()).await;
    let project_id = rich_project(&source).await;
    let before = context(&source, &project_id).await;
    let records = export(&source, &project_id).await.expect("export");
    let counts = header(&records).counts.expect("counts");
    assert_eq!(
        counts,
        ProjectRecordCounts { scenes: 3, memory_items: counts.memory_items, conversation_turns: 12, image_analyses: 2 }
    );
    assert!(counts.memory_items >= 3, "{counts:?}");
    assert_eq!(records.len() as u64, 1 + counts.scenes + counts.memory_items + 12 + 2);
    let archived = records.iter().filter(|r| matches!(&r.record, Some(Record::Turn(t)) if t.archived)).count();
    assert_eq!(archived, 6, "archived turns are exported");

    let target_db = other_backend(&db).await;
    let target = Server::start_with(&target_db, options()).await;
    let imported = import(&target, None, records.clone()).await.expect("import");
    let copy = imported.project.expect("project");
    assert_ne!(copy.project_id, project_id, "an import creates a new project");
    assert_eq!(imported.imported, Some(counts));
    let source_project = header(&records).project.clone().expect("project");
    assert_eq!(
        (copy.name.as_str(), copy.description.as_str(), copy.create_time),
        (source_project.name.as_str(), source_project.description.as_str(), source_project.create_time)
    );

    let after = context(&target, &copy.project_id).await;
    assert_eq!(after.enhanced_prompt, before.enhanced_prompt, "the enhanced prompt is byte for byte the same");
    assert_eq!(after.token_report, before.token_report, "the same token counts");
    assert_eq!(comparable(after), comparable(before), "the same context packet");

    let again = export(&target, &copy.project_id).await.expect("export the copy");
    assert_eq!(without_project_ids(&again), without_project_ids(&records), "the copy exports the same records");
}

/// The same export imported twice on one server: the second copy cannot keep the memory and
/// turn ids (the first holds them) and gets new ones, in the same order: same prompt, same
/// packet but for those ids.
async fn a_second_import_gets_new_ids_in_the_same_order(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = rich_project(&server).await;
    let records = export(&server, &project_id).await.expect("export");
    let first = import(&server, None, records.clone()).await.expect("first import").project.expect("project");
    let second = import(&server, None, records.clone()).await.expect("second import").project.expect("project");
    assert_ne!(first.project_id, second.project_id);

    let (original, copy) = (context(&server, &project_id).await, context(&server, &second.project_id).await);
    assert_eq!(copy.enhanced_prompt, original.enhanced_prompt);
    assert_eq!(copy.token_report, original.token_report);
    let ids = |response: &GetContextPacketResponse| {
        let packet = response.context.as_ref().expect("packet");
        let memories = packet.preferences.iter().map(|m| m.memory_id.clone());
        memories.chain(packet.recent_turns.iter().map(|t| t.turn_id.clone())).collect::<Vec<_>>()
    };
    let (original_ids, copy_ids) = (ids(&original), ids(&copy));
    assert_eq!(original_ids.len(), copy_ids.len());
    assert!(original_ids.iter().zip(&copy_ids).all(|(a, b)| a != b), "new memory and turn ids");
    let turns = |r: &GetContextPacketResponse| {
        let packet = r.context.as_ref().expect("packet");
        packet.recent_turns.iter().map(|t| (t.prompt.clone(), t.create_time)).collect::<Vec<_>>()
    };
    assert_eq!(turns(&copy), turns(&original), "turns in the same order");
    let mut copy_ids_sorted =
        copy.context.as_ref().expect("packet").recent_turns.iter().map(|t| t.turn_id.clone()).collect::<Vec<_>>();
    let in_order = copy_ids_sorted.clone();
    copy_ids_sorted.sort();
    assert_eq!(in_order, copy_ids_sorted, "new turn ids sort in the turns' order");
}

/// A long seeded history exports in pages and imports in batches: every record arrives, in
/// order, and the copy exports the same records (but for ids and recounted token counts).
async fn a_long_history_round_trips(db: Arc<TestDb>) {
    let turns = env_usize("BRAIN_EXPORT_TURNS", 1_300);
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Long").await;
    seed::history(&db, &project_id, History { turns, memories: 700, analyses: 600, events: 50 }).await;
    let started = std::time::Instant::now();
    let records = export(&server, &project_id).await.expect("export");
    let exported_in = started.elapsed();
    assert_eq!(records.len(), 1 + turns + 700 + 600);
    let started = std::time::Instant::now();
    // Token counts in an export are not trusted: every one is made up here, and recounted.
    let mut tampered = records.clone();
    for record in &mut tampered {
        match record.record.as_mut() {
            Some(Record::Turn(t)) => t.token_count = 1,
            Some(Record::Memory(m)) => m.token_count = 1,
            _ => {}
        }
    }
    let copy = import(&server, None, tampered).await.expect("import").project.expect("project");
    eprintln!("{turns} turns: export {exported_in:?}, import {:?}", started.elapsed());
    let again = export(&server, &copy.project_id).await.expect("export the copy");
    let essence = |records: &[ProjectRecord]| {
        records
            .iter()
            .skip(1)
            .map(|r| match r.record.as_ref().expect("record") {
                Record::Turn(t) => {
                    format!("turn {} {} {:?} {}", t.prompt, t.decision_summary, t.create_time, t.archived)
                }
                Record::Memory(m) => format!("memory {} {} {}", m.key, m.value, m.confidence),
                Record::Image(a) => format!("image {} {} {}", a.image_id, a.status, a.error),
                Record::Scene(s) => format!("scene {}", s.scene_id),
                Record::Header(_) => "header".into(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(essence(&again), essence(&records));
    // The import recounted what the tampered export said (1 each) back to the true counts.
    let token_counts = |records: &[ProjectRecord]| {
        records
            .iter()
            .filter_map(|r| match &r.record {
                Some(Record::Turn(t)) => Some(t.token_count),
                Some(Record::Memory(m)) => Some(m.token_count),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(token_counts(&records).iter().all(|&n| n > 1), "the seed stores real token counts");
    assert_eq!(token_counts(&again), token_counts(&records), "token counts are recounted, not trusted");
}

/// Projects the tenant can see.
async fn visible_projects(server: &Server) -> usize {
    let mut projects = server.projects(None).await;
    let list = projects.list_projects(ListProjectsRequest { page_size: 500, ..Default::default() }).await;
    list.expect("list").into_inner().projects.len()
}

/// Waits until no hidden (tombstoned) project is left: a failed import's rows go in a task of
/// their own.
async fn wait_nothing_hidden(db: &TestDb) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(db, "SELECT CAST(COUNT(*) AS TEXT) FROM projects WHERE deleted_at IS NOT NULL").await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "a failed import left its project behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows in every per-project table.
async fn all_rows(db: &TestDb) -> u64 {
    let mut total = 0;
    for table in ["projects", "scenes", "memories", "conversation_turns", "image_analyses"] {
        total += count(db, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}")).await;
    }
    total
}

/// Malformed, out-of-order, duplicate, truncated and oversized imports are INVALID_ARGUMENT
/// naming the record; none leaves a row. An import whose client hangs up leaves none either.
async fn bad_imports_name_the_record_and_leave_nothing(db: Arc<TestDb>) {
    // A small message limit, so one record can exceed it.
    let server =
        Server::start_with(&db, options().set("max_message_bytes", 65_536).set("max_image_bytes", 65_536)).await;
    let project_id = rich_project(&server).await;
    let records = export(&server, &project_id).await.expect("export");
    let rows_before = all_rows(&db).await;
    let visible_before = visible_projects(&server).await;
    let first_of = |kind: fn(&Record) -> bool| {
        records.iter().position(|r| kind(r.record.as_ref().expect("record"))).expect("a record of that kind")
    };
    let first_memory = first_of(|r| matches!(r, Record::Memory(_)));
    let first_scene = first_of(|r| matches!(r, Record::Scene(_)));
    let first_turn = first_of(|r| matches!(r, Record::Turn(_)));

    let mut cases: Vec<(&str, Vec<ProjectRecord>, String)> = Vec::new();
    // A value over PutMemory's 4,000 characters.
    let mut oversized_value = records.clone();
    if let Some(Record::Memory(m)) = oversized_value[first_memory].record.as_mut() {
        m.value = "x".repeat(4_001);
    }
    cases.push(("a value over its limit", oversized_value, format!("records[{first_memory}].memory.value")));
    // A header that announces more records than an import takes.
    let mut oversized_header = records.clone();
    if let Some(Record::Header(h)) = oversized_header[0].record.as_mut() {
        h.counts.as_mut().expect("counts").conversation_turns = 2_000_000;
    }
    cases.push(("an oversized export", oversized_header, "records[0].header.counts".into()));
    // Truncated: the last record missing.
    let mut truncated = records.clone();
    truncated.pop();
    let missing_at = truncated.len();
    cases.push(("a truncated export", truncated, format!("records[{missing_at}]")));
    // No header first.
    cases.push(("no header", records[1..].to_vec(), "records[0].header".into()));
    // The last scene after the first turn.
    let mut out_of_order = records.clone();
    let scene = out_of_order.remove(first_scene + 2);
    out_of_order.insert(first_turn, scene);
    cases.push(("a record out of order", out_of_order, format!("records[{first_turn}].scene")));
    // The same memory twice (and so one memory item more than announced, checked after).
    let mut duplicate = records.clone();
    if let Some(Record::Header(h)) = duplicate[0].record.as_mut() {
        h.counts.as_mut().expect("counts").memory_items += 1;
    }
    duplicate.insert(first_memory + 1, records[first_memory].clone());
    cases.push(("a duplicate memory id", duplicate, format!("records[{}].memory.memory_id", first_memory + 1)));
    // An enum value the contract does not define.
    let mut unknown_enum = records.clone();
    if let Some(Record::Scene(s)) = unknown_enum[first_scene].record.as_mut() {
        s.status = 42;
    }
    cases.push(("an unknown enum value", unknown_enum, format!("records[{first_scene}].scene.status")));
    // An empty record.
    let mut empty = records.clone();
    empty[first_turn] = ProjectRecord { record: None };
    cases.push(("an empty record", empty, format!("records[{first_turn}].record")));

    // One message over max_message_bytes: the codec refuses it before it is a record.
    let mut oversized_message = records.clone();
    if let Some(Record::Turn(t)) = oversized_message[first_turn].record.as_mut() {
        t.prompt = "a long prompt ".repeat(6_000);
    }
    let status = import(&server, None, oversized_message.clone()).await.expect_err("an oversized message");
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.metadata.get("limit").map(String::as_str), Some("65536"), "{}", status.message());
    assert!(status.message().contains("larger than the server accepts"), "{}", status.message());
    cases.push(("a message over max_message_bytes", oversized_message, format!("records[{first_turn}].record")));

    for (case, bad, field) in cases {
        let status = import(&server, None, bad).await.expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert_eq!(error_field(&status).as_deref(), Some(field.as_str()), "{case}: {}", status.message());
        assert!(status.message().starts_with("record "), "{case}: {}", status.message());
    }

    // A client that hangs up halfway: the server never sees the end of the stream.
    let mut projects = server.projects(None).await;
    let half = records[..records.len() / 2].to_vec();
    let (tx, rx) = tokio::sync::mpsc::channel(records.len());
    for record in half {
        tx.send(ImportProjectRequest { record: Some(record) }).await.expect("queue");
    }
    let call =
        tokio::spawn(async move { projects.import_project(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    call.abort();
    drop(tx);

    wait_nothing_hidden(&db).await;
    assert_eq!(visible_projects(&server).await, visible_before, "no failed import is visible");
    assert_eq!(all_rows(&db).await, rows_before, "no failed import left a row");
    // And the good export still imports after all that.
    import(&server, None, records).await.expect("the unmodified export imports");
}

/// Another tenant's project, a missing one and a deleted one are NOT_FOUND; an import is the
/// caller's tenant's.
async fn exports_are_scoped_to_the_tenant(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Mine").await;
    let other_key = create_key(&db, "other-tenant");
    let mut other = server.projects(Some(&other_key)).await;
    let not_found = |result: Result<Vec<ProjectRecord>, Status>| {
        assert_error(result, Code::NotFound, "PROJECT_NOT_FOUND");
    };
    let status = other
        .export_project(ExportProjectRequest { project_id: project_id.clone() })
        .await
        .map(|_| ())
        .expect_err("another tenant's project");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    not_found(export(&server, "no-such-project").await);
    assert_error(export(&server, "not a valid id").await, Code::InvalidArgument, "INVALID_ID");

    let records = export(&server, &project_id).await.expect("export");
    let theirs: Project = import(&server, Some(&other_key), records).await.expect("import").project.expect("project");
    let mut mine = server.projects(None).await;
    let status = mine
        .export_project(ExportProjectRequest { project_id: theirs.project_id.clone() })
        .await
        .map(|_| ())
        .expect_err("the importer's project, not mine");
    assert_eq!(status.code(), Code::NotFound);
    other
        .delete_project(brain_proto::v1::DeleteProjectRequest { project_id: theirs.project_id.clone() })
        .await
        .expect("delete");
    let status = other
        .export_project(ExportProjectRequest { project_id: theirs.project_id })
        .await
        .map(|_| ())
        .expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound);
}

backend_tests!(
    a_round_trip_across_backends_keeps_the_context,
    a_second_import_gets_new_ids_in_the_same_order,
    a_long_history_round_trips,
    bad_imports_name_the_record_and_leave_nothing,
    exports_are_scoped_to_the_tenant,
);
