//! Every query the server issues uses an index for its filter and its order,
//! at any history size.
//!
//! The real binary runs with `statement_log_file`, which records the text of
//! every distinct SQL statement it executes. The test drives every RPC (and
//! the background work they cause: image jobs, retention, events) against a
//! project with a history, then asks the database for each statement's plan:
//!
//! - SQLite: `EXPLAIN QUERY PLAN`; a `SCAN` of a table (without an index) or a
//!   `USE TEMP B-TREE` sort fails the test;
//! - PostgreSQL: `PREPARE` + `EXPLAIN EXECUTE` with a generic plan and
//!   `enable_seqscan`/`enable_sort` off, so a `Seq Scan` or `Sort` left in the
//!   plan means no index can serve the query, whatever the table sizes.

mod common;

use std::{sync::Arc, time::Duration};

use brain_e2e::{Backend, Server, ServerOptions, TestDb, backend_tests, seed::History};
use brain_proto::v1::{
    DeleteMemoryRequest, DeleteProjectRequest, DeleteSceneRequest, ExportProjectRequest, GetContextPacketRequest,
    GetImageFactsRequest, GetPerformanceReportRequest, GetProjectRequest, ImportProjectRequest, ListImageFactsRequest,
    ListMemoriesRequest, ListProjectsRequest, ListScenesRequest, MemoryKey, MemoryType, OrchestrateRequest,
    OrchestrateStreamRequest, Project, PutMemoryRequest, ReportWindow, RunRetentionRequest, UpdateProjectRequest,
    UpsertSceneRequest, WatchPerformanceReportRequest, delete_memory_request::Target,
};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

/// Tables whose rows belong to a project or tenant and grow with use: a query on
/// them must never read the whole table.
const GROWING_TABLES: &[&str] =
    &["projects", "scenes", "memories", "conversation_turns", "orchestrations", "image_analyses", "jobs", "events"];

/// Statements that read a whole table on purpose, with the reason.
const ALLOWED: &[(&str, &str)] = &[];

/// Calls every RPC at least once, on a project with a history.
async fn drive_every_rpc(server: &Server, db: &TestDb) {
    let project_id = common::project(server, "history").await;
    let history = History { turns: 2_000, memories: 500, analyses: 200, events: 500 };
    brain_e2e::seed::history(db, &project_id, history).await;
    let mut projects = server.projects(None).await;
    let mut orchestrator = server.orchestrator(None).await;
    for (i, name) in ["Intro", "Demo", "Outro"].iter().enumerate() {
        projects
            .upsert_scene(UpsertSceneRequest {
                project_id: project_id.clone(),
                scene_id: format!("s{i}"),
                name: (*name).into(),
                summary: format!("{name} scene"),
                ..Default::default()
            })
            .await
            .expect("upsert scene");
    }
    projects.get_project(GetProjectRequest { project_id: project_id.clone() }).await.expect("get project");
    projects
        .update_project(UpdateProjectRequest {
            project: Some(Project { project_id: project_id.clone(), name: "renamed".into(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
        })
        .await
        .expect("update project");
    let page = projects.list_projects(ListProjectsRequest { page_size: 1, ..Default::default() }).await.expect("list");
    projects
        .list_projects(ListProjectsRequest { page_size: 1, page_token: page.into_inner().next_page_token })
        .await
        .expect("list page 2");
    let scenes = projects
        .list_scenes(ListScenesRequest { project_id: project_id.clone(), page_size: 2, ..Default::default() })
        .await
        .expect("list scenes")
        .into_inner();
    projects
        .list_scenes(ListScenesRequest {
            project_id: project_id.clone(),
            page_size: 2,
            page_token: scenes.next_page_token,
        })
        .await
        .expect("list scenes page 2");
    let put = |key: &str| PutMemoryRequest {
        project_id: project_id.clone(),
        r#type: MemoryType::UserPreference as i32,
        key: key.into(),
        value: "fast".into(),
        ..Default::default()
    };
    projects.put_memory(put("pace")).await.expect("put");
    projects.put_memory(put("pace")).await.expect("put again");
    projects.put_memory(put("gone")).await.expect("put");
    projects
        .delete_memory(DeleteMemoryRequest {
            project_id: project_id.clone(),
            target: Some(Target::MemoryKey(MemoryKey {
                r#type: MemoryType::UserPreference as i32,
                key: "gone".into(),
            })),
        })
        .await
        .expect("delete memory");
    let memories = projects
        .list_memories(ListMemoriesRequest {
            project_id: project_id.clone(),
            page_size: 50,
            r#type: MemoryType::UserPreference as i32,
            ..Default::default()
        })
        .await
        .expect("list memories")
        .into_inner();
    projects
        .list_memories(ListMemoriesRequest {
            project_id: project_id.clone(),
            page_size: 50,
            page_token: memories.next_page_token,
            r#type: MemoryType::UserPreference as i32,
        })
        .await
        .expect("list memories page 2");

    let keyed = OrchestrateRequest {
        project_id: project_id.clone(),
        prompt: "make the intro title red".into(),
        request_id: "plan-1".into(),
        ..Default::default()
    };
    orchestrator.orchestrate(keyed.clone()).await.expect("orchestrate");
    orchestrator.orchestrate(keyed).await.expect("replay");
    orchestrator
        .orchestrate(OrchestrateRequest {
            project_id: project_id.clone(),
            prompt: "add a pricing scene after the demo".into(),
            images: vec![common::inline(common::png(), "attached")],
            ..Default::default()
        })
        .await
        .expect("orchestrate with an image");
    let mut stream = orchestrator
        .orchestrate_stream(OrchestrateStreamRequest {
            project_id: project_id.clone(),
            prompt: "make the outro longer".into(),
            images: vec![common::inline(common::png(), "streamed")],
            image_wait: Some(prost_types::Duration { seconds: 10, nanos: 0 }),
            ..Default::default()
        })
        .await
        .expect("orchestrate stream")
        .into_inner();
    while stream.message().await.expect("stream message").is_some() {}
    orchestrator
        .get_context_packet(GetContextPacketRequest {
            project_id: project_id.clone(),
            prompt: "fonts".into(),
            ..Default::default()
        })
        .await
        .expect("context packet");

    common::analyze(server, &project_id, vec![common::inline(common::png(), "analyzed")]).await;
    let mut images = server.image_facts(None).await;
    let mut watch = common::watch(server, &project_id, 0).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut finals = 0;
        while finals < 3 {
            let Some(message) = watch.message().await.expect("watch") else { break };
            if let Some(brain_proto::v1::watch_image_facts_response::Message::Event(e)) = message.message
                && e.r#type() == brain_proto::v1::EventType::ImageFactsProcessed
            {
                finals += 1;
            }
        }
    })
    .await
    .expect("the three images are processed");
    images
        .get_image_facts(GetImageFactsRequest { project_id: project_id.clone(), image_id: "analyzed".into() })
        .await
        .expect("get image facts");
    let listed = images
        .list_image_facts(ListImageFactsRequest { project_id: project_id.clone(), page_size: 2, ..Default::default() })
        .await
        .expect("list image facts")
        .into_inner();
    images
        .list_image_facts(ListImageFactsRequest {
            project_id: project_id.clone(),
            page_size: 2,
            page_token: listed.next_page_token,
        })
        .await
        .expect("list image facts page 2");
    drop(common::watch(server, &project_id, 2).await);

    projects
        .delete_scene(DeleteSceneRequest { project_id: project_id.clone(), scene_id: "s1".into() })
        .await
        .expect("delete scene");
    let mut performance = server.performance(None).await;
    performance
        .get_performance_report(GetPerformanceReportRequest {
            window: ReportWindow::Last15Minutes as i32,
            project_id: project_id.clone(),
        })
        .await
        .expect("report");
    let mut watch_report = performance
        .watch_performance_report(WatchPerformanceReportRequest {
            window: ReportWindow::Last15Minutes as i32,
            ..Default::default()
        })
        .await
        .expect("watch report")
        .into_inner();
    watch_report.message().await.expect("a report").expect("one message");
    let mut admin = server.admin(None).await;
    admin
        .run_retention(RunRetentionRequest { dry_run: true, project_id: project_id.clone(), tenant: String::new() })
        .await
        .expect("dry run");
    admin
        .run_retention(RunRetentionRequest { dry_run: false, project_id: String::new(), tenant: String::new() })
        .await
        .expect("retention");
    // ExportProject's pages and ImportProject's batches, on the project with a history (more
    // than one page of each kind), imported twice so the second import renumbers.
    let mut records = Vec::new();
    let mut export = projects
        .export_project(ExportProjectRequest { project_id: project_id.clone() })
        .await
        .expect("export")
        .into_inner();
    while let Some(message) = export.message().await.expect("an export record") {
        records.push(ImportProjectRequest { record: message.record });
    }
    for _ in 0..2 {
        projects.import_project(futures::stream::iter(records.clone())).await.expect("import");
    }
    // Last: DeleteProject's tombstone, chunks and final row on a project with a history.
    let doomed = common::project(server, "doomed").await;
    brain_e2e::seed::history(db, &doomed, History { turns: 600, memories: 600, analyses: 600, events: 600 }).await;
    projects.delete_project(DeleteProjectRequest { project_id: doomed }).await.expect("delete project");
}

/// Statements worth a plan: reads and writes of the application's tables.
fn planned(sql: &str) -> bool {
    let head = sql.trim_start().to_ascii_uppercase();
    let dml = ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].iter().any(|k| head.starts_with(k));
    dml && GROWING_TABLES.iter().any(|t| mentions(sql, t))
}

fn mentions(sql: &str, table: &str) -> bool {
    sql.contains(&format!("\"{table}\"")) || sql.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == table)
}

async fn single_connection(db: &TestDb) -> DatabaseConnection {
    let mut options = ConnectOptions::new(db.url.clone());
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options).await.expect("connect for EXPLAIN")
}

/// The plan lines of one statement.
async fn plan(conn: &DatabaseConnection, backend: Backend, sql: &str) -> Result<Vec<String>, String> {
    let db = conn.get_database_backend();
    let rows = match backend {
        Backend::Sqlite => conn
            .query_all_raw(Statement::from_string(db, format!("EXPLAIN QUERY PLAN {sql}")))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|row| row.try_get_by_index::<String>(3).unwrap_or_default())
            .collect(),
        Backend::Postgres => {
            // The highest $N: batched inserts and IN lists carry thousands.
            let params = sql
                .split('$')
                .skip(1)
                .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok())
                .max()
                .unwrap_or(0);
            conn.execute_unprepared(&format!("PREPARE brain_plan AS {sql}")).await.map_err(|e| e.to_string())?;
            let nulls = vec!["NULL"; params].join(", ");
            let execute =
                if params == 0 { "EXECUTE brain_plan".to_owned() } else { format!("EXECUTE brain_plan({nulls})") };
            let explained = conn.query_all_raw(Statement::from_string(db, format!("EXPLAIN {execute}"))).await;
            conn.execute_unprepared("DEALLOCATE brain_plan").await.map_err(|e| e.to_string())?;
            explained
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|row| row.try_get_by_index::<String>(0).unwrap_or_default())
                .collect()
        }
    };
    Ok(rows)
}

/// What is wrong with a plan, if anything.
fn problems(backend: Backend, lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| match backend {
            Backend::Sqlite => {
                line.contains("USE TEMP B-TREE")
                    || (line.starts_with("SCAN ")
                        && !line.contains("USING INDEX")
                        && !line.contains("USING COVERING INDEX")
                        && GROWING_TABLES.iter().any(|t| line.split_whitespace().nth(1) == Some(t)))
            }
            Backend::Postgres => {
                line.contains("Seq Scan on") || line.trim_start().starts_with("Sort") || line.contains("->  Sort")
            }
        })
        .cloned()
        .collect()
}

async fn every_query_uses_an_index(db: Arc<TestDb>) {
    let log = db.dir.path().join("statements.sql");
    let server = Server::start_with(&db, ServerOptions::new().set("statement_log_file", log.display())).await;
    drive_every_rpc(&server, &db).await;
    server.sigterm();
    drop(server);

    let text = std::fs::read_to_string(&log).expect("statement log");
    let statements: Vec<&str> = text.lines().filter(|s| planned(s)).collect();
    assert!(statements.len() > 30, "only {} statements were logged:\n{text}", statements.len());
    let conn = single_connection(&db).await;
    if db.backend == Backend::Postgres {
        for setting in ["plan_cache_mode = force_generic_plan", "enable_seqscan = off", "enable_sort = off"] {
            conn.execute_unprepared(&format!("SET {setting}")).await.expect(setting);
        }
    }
    let mut failures = Vec::new();
    for sql in &statements {
        if ALLOWED.iter().any(|(allowed, _)| sql == allowed) {
            continue;
        }
        match plan(&conn, db.backend, sql).await {
            Ok(lines) => {
                let bad = problems(db.backend, &lines);
                if !bad.is_empty() {
                    failures.push(format!("{sql}\n      {}", lines.join("\n      ")));
                }
            }
            Err(err) => failures.push(format!("{sql}\n      cannot EXPLAIN: {err}")),
        }
    }
    println!(
        "measured: query plans ({:?}): {} statements checked, {} without an index",
        db.backend,
        statements.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} statements need an index:\n  {}",
        failures.len(),
        statements.len(),
        failures.join("\n  ")
    );
}

backend_tests!(every_query_uses_an_index);
