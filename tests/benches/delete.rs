//! Delete benchmark: what deleting a project with a long history costs the
//! other projects' calls (issue 14; figures in docs/PERFORMANCE.md "Deleting a
//! project").
//!
//! Runs the release server binary on SQLite (and on PostgreSQL when
//! `BRAIN_TEST_POSTGRES_URL` is set), seeds one project with 100,000 turns,
//! 20,000 memory items, 5,000 image analyses and 50,000 events, starts
//! `WRITERS` clients sending Orchestrate (each with a new request id) to other
//! projects one call after another, measures their latency for `BASELINE_S`
//! seconds, then deletes the seeded project and measures the calls that start
//! while the delete runs. Prints the delete's duration and rows, and the other
//! projects' p50/p99 before and during (the target: p99 during at most 2x
//! before). Nothing is asserted: timings belong to benchmarks, not tests.
//!
//! `cargo bench -p brain-e2e --bench delete`   (env TURNS=100000 WRITERS=4 BASELINE_S=5)

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use brain_e2e::{
    Backend, Server, TestDb, create_project, env_usize,
    load::Writers,
    seed::{self, History},
};
use brain_proto::v1::DeleteProjectRequest;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let turns = env_usize("TURNS", 100_000);
    let writers = env_usize("WRITERS", 4);
    let baseline = Duration::from_secs(env_usize("BASELINE_S", 5) as u64);
    let history = History { turns, memories: turns / 5, analyses: turns / 20, events: turns / 2 };
    println!("delete benchmark: {history:?}; {writers} writers on other projects; {baseline:?} baseline");
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
    let doomed = create_project(&mut projects, "long history").await.project_id;
    let seeding = Instant::now();
    seed::history(&db, &doomed, history).await;
    println!("\n{backend}: seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let writers = Writers::start(&server, &mut projects, writers).await;
    // Warm-up, then the baseline window, then the delete.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline_from = Instant::now();
    tokio::time::sleep(baseline).await;
    let started = Instant::now();
    let deleted = projects
        .delete_project(DeleteProjectRequest { project_id: doomed })
        .await
        .expect("delete")
        .into_inner()
        .deleted
        .expect("counts");
    let took = started.elapsed();
    let ended = Instant::now();
    let samples = writers.finish().await;
    let rows = deleted.conversation_turns
        + deleted.memory_items
        + deleted.image_analyses
        + deleted.events
        + deleted.orchestrations
        + deleted.jobs
        + deleted.scenes;
    println!(
        "{backend}: deleted {rows} rows in {:.2} s ({:.0} rows/s)",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    samples.compare(backend, "delete", (baseline_from, started), (started, ended));
}
