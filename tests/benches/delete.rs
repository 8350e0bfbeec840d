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
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use brain_e2e::{
    Backend, Server, TestDb, create_project, env_usize,
    seed::{self, History},
};
use brain_proto::v1::{DeleteProjectRequest, OrchestrateRequest};

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

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let project_id = create_project(&mut projects, &format!("busy {w}")).await.project_id;
        let (server, stop) = (server.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut orchestrator = server.orchestrator(None).await;
            let mut samples = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                let started = Instant::now();
                orchestrator
                    .orchestrate(OrchestrateRequest {
                        project_id: project_id.clone(),
                        prompt: format!("make scene {i} warmer"),
                        request_id: format!("bench-{w}-{i}"),
                        ..Default::default()
                    })
                    .await
                    .expect("orchestrate");
                samples.push((started, started.elapsed()));
                i += 1;
            }
            samples
        }));
    }
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
    stop.store(true, Ordering::Release);
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("writer"));
    }
    let window = |from: Instant, to: Instant| {
        let mut of: Vec<Duration> =
            samples.iter().filter(|(at, _)| *at >= from && *at < to).map(|(_, took)| *took).collect();
        of.sort();
        let at = |q: usize| of.get(of.len() * q / 100).copied().unwrap_or_default().as_secs_f64() * 1e3;
        (of.len(), at(50), at(99))
    };
    let (n0, p50_0, p99_0) = window(baseline_from, started);
    let (n1, p50_1, p99_1) = window(started, ended);
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
    println!("| {backend} | calls | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
    println!("| before the delete | {n0} | {p50_0:.2} | {p99_0:.2} |");
    println!("| during the delete | {n1} | {p50_1:.2} | {p99_1:.2} |");
    println!("p99 during / before: {:.2}x (target at most 2x)", p99_1 / p99_0.max(f64::MIN_POSITIVE));
}
