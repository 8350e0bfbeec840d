//! Export/import benchmark: how long exporting and importing a project with a
//! long history takes, and what the import costs other projects' calls
//! (issue 14; figures in docs/PERFORMANCE.md "Exporting and importing a project").
//!
//! Runs the release server binary on SQLite (and on PostgreSQL when
//! `BRAIN_TEST_POSTGRES_URL` is set), seeds one project with 100,000 turns,
//! 20,000 memory items and 5,000 image analyses, starts `WRITERS` clients sending
//! Orchestrate to other projects, measures them for `BASELINE_S` seconds, then
//! exports the project and imports the export into the same server (a second
//! copy: the import renumbers memory and turn ids), measuring the calls that
//! start during the import. Nothing is asserted: timings belong to benchmarks.
//!
//! `cargo bench -p brain-e2e --bench transfer`   (env TURNS=100000 WRITERS=4 BASELINE_S=5)

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use brain_e2e::{
    Backend, Server, TestDb, create_project, env_usize,
    load::Writers,
    seed::{self, History},
};
use brain_proto::v1::{ExportProjectRequest, ImportProjectRequest};
use prost::Message;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let turns = env_usize("TURNS", 100_000);
    let writers = env_usize("WRITERS", 4);
    let baseline = Duration::from_secs(env_usize("BASELINE_S", 5) as u64);
    let history = History { turns, memories: turns / 5, analyses: turns / 20, events: 0 };
    println!("export/import benchmark: {history:?}; {writers} writers on other projects; {baseline:?} baseline");
    run(TestDb::sqlite().await, history, writers, baseline).await;
    match TestDb::postgres().await {
        Some(db) => run(db, history, writers, baseline).await,
        None => println!("PostgreSQL skipped: {} is not set", brain_e2e::POSTGRES_ENV),
    }
}

async fn run(db: Arc<TestDb>, history: History, writers: usize, baseline: Duration) {
    let backend = match db.backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let server = Arc::new(Server::start(&db).await);
    let mut projects = server.projects(None).await;
    let source = create_project(&mut projects, "long history").await.project_id;
    seed::history(&db, &source, history).await;

    let writers = Writers::start(&server, &mut projects, writers).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_from = Instant::now();
    tokio::time::sleep(baseline).await;

    let export_started = Instant::now();
    let mut stream =
        projects.export_project(ExportProjectRequest { project_id: source }).await.expect("export").into_inner();
    let mut records = Vec::new();
    while let Some(message) = stream.message().await.expect("an export record") {
        records.push(ImportProjectRequest { record: message.record });
    }
    let exported = export_started.elapsed();
    let bytes: usize = records.iter().map(Message::encoded_len).sum();

    let import_started = Instant::now();
    let count = records.len();
    let imported = projects.import_project(futures::stream::iter(records)).await.expect("import").into_inner();
    let import_took = import_started.elapsed();
    let import_ended = Instant::now();
    let samples = writers.finish().await;
    let stored = imported.imported.expect("counts");
    assert_eq!(
        stored.scenes + stored.memory_items + stored.conversation_turns + stored.image_analyses + 1,
        count as u64
    );
    println!(
        "\n{backend}: exported {count} records ({:.1} MB) in {:.2} s ({:.0} records/s); imported in {:.2} s ({:.0} records/s)",
        bytes as f64 / 1e6,
        exported.as_secs_f64(),
        count as f64 / exported.as_secs_f64(),
        import_took.as_secs_f64(),
        count as f64 / import_took.as_secs_f64(),
    );
    samples.compare(backend, "import", (baseline_from, export_started), (import_started, import_ended));
}
