//! History benchmark: does a project with a long history cost more per call than
//! a fresh one? (issue 13; figures in docs/PERFORMANCE.md)
//!
//! Runs the release server binary on SQLite (and on PostgreSQL when
//! `BRAIN_TEST_POSTGRES_URL` is set), seeds one project with 100,000 turns,
//! 20,000 memory items, 5,000 image analyses and 50,000 events and another
//! with a small history (20 turns, 200 memory items: answers of the same
//! size), then times, alternating between the two projects:
//!
//! - GetContextPacket with the packet cache bounded to one entry, so every
//!   call builds from the store (each response's `cache_hit` is checked);
//! - Orchestrate with a new request id (a write, so never cached);
//! - ListMemories, first page of 50;
//! - WatchImageFacts resumed 10 events before the end, until those 10 arrive.
//!
//! Prints median and p90 per call and the history/fresh ratio of medians.
//! The target is a ratio of at most 1.5 for every call. Nothing is asserted:
//! timings belong to benchmarks, not tests.
//!
//! `cargo bench -p brain-e2e --bench history`   (env ROUNDS=200, TURNS=100000)

use std::time::{Duration, Instant};

use brain_e2e::{
    ApiKey, Backend, Server, ServerOptions, TestDb, env_usize,
    seed::{self, History},
};
use brain_proto::v1::project_service_client::ProjectServiceClient;
use brain_proto::v1::{
    CreateProjectRequest, GetContextPacketRequest, ListMemoriesRequest, MemoryType, OrchestrateRequest,
    WatchImageFactsRequest, watch_image_facts_response::Message,
};
use tokio_stream::StreamExt;
use tonic::{codegen::InterceptedService, transport::Channel};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; a filter argument is not supported.
    let rounds = env_usize("ROUNDS", 200);
    let turns = env_usize("TURNS", 100_000);
    let long = History { turns, memories: turns / 5, analyses: turns / 20, events: turns / 2 };
    // The fresh project holds a full page of memory items and a full packet (more than the
    // page of 50 and `context_max_preferences`, 100; more turns than `recent_turns`), so both
    // projects' responses are the same size and the ratio measures the history, not the answer.
    let short = History { turns: 20, memories: 200, analyses: 5, events: 20 };
    println!("history benchmark: {rounds} rounds; long history {long:?}; fresh {short:?}");
    run(TestDb::sqlite().await, rounds, long, short).await;
    match TestDb::postgres().await {
        Some(db) => run(db, rounds, long, short).await,
        None => println!("PostgreSQL skipped: {} is not set", brain_e2e::POSTGRES_ENV),
    }
}

async fn run(db: std::sync::Arc<TestDb>, rounds: usize, long: History, short: History) {
    let backend = match db.backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let server = Server::start_with(&db, ServerOptions::new().set("context_cache_capacity", 1)).await;
    let mut projects = server.projects(None).await;
    let fresh = create(&mut projects, "fresh").await;
    let old = create(&mut projects, "long history").await;
    let seeding = Instant::now();
    seed::history(&db, &fresh, short).await;
    seed::history(&db, &old, long).await;
    println!("\n{backend}: seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let mut orchestrator = server.orchestrator(None).await;
    let mut images = server.image_facts(None).await;
    let mut table = Vec::new();
    for call in ["GetContextPacket", "Orchestrate", "ListMemories", "WatchImageFacts resume"] {
        let mut samples = [Vec::new(), Vec::new()];
        let mut cache_hits = 0;
        // A few unmeasured rounds first: connections, statement caches, page cache.
        for round in 0..rounds + 10 {
            for (which, (project, history)) in [(&fresh, short), (&old, long)].into_iter().enumerate() {
                let started = Instant::now();
                match call {
                    "GetContextPacket" => {
                        let response = orchestrator
                            .get_context_packet(GetContextPacketRequest {
                                project_id: project.clone(),
                                prompt: "make the intro warmer and use the brand fonts".into(),
                                ..Default::default()
                            })
                            .await
                            .expect("context packet")
                            .into_inner();
                        cache_hits += usize::from(response.cache_hit);
                    }
                    "Orchestrate" => {
                        orchestrator
                            .orchestrate(OrchestrateRequest {
                                project_id: project.clone(),
                                prompt: format!("make scene {round} warmer"),
                                request_id: format!("bench-{which}-{round}"),
                                ..Default::default()
                            })
                            .await
                            .expect("orchestrate");
                    }
                    "ListMemories" => {
                        projects
                            .list_memories(ListMemoriesRequest {
                                project_id: project.clone(),
                                page_size: 50,
                                r#type: MemoryType::UserPreference as i32,
                                ..Default::default()
                            })
                            .await
                            .expect("list memories");
                    }
                    _ => {
                        let mut stream = images
                            .watch_image_facts(WatchImageFactsRequest {
                                project_id: project.clone(),
                                after_cursor: (history.events - 10) as u64,
                                orchestration_id: String::new(),
                            })
                            .await
                            .expect("watch")
                            .into_inner();
                        let mut got = 0;
                        while got < 10 {
                            match stream.next().await {
                                Some(Ok(response)) => {
                                    got += usize::from(matches!(response.message, Some(Message::Event(_))))
                                }
                                other => panic!("watch ended early: {other:?}"),
                            }
                        }
                    }
                }
                if round >= 10 {
                    samples[which].push(started.elapsed());
                }
            }
        }
        let [fresh_stats, old_stats] = samples.map(|mut s| {
            s.sort();
            (s[s.len() / 2], s[s.len() * 9 / 10])
        });
        let ratio = old_stats.0.as_secs_f64() / fresh_stats.0.as_secs_f64();
        let note = if call == "GetContextPacket" { format!(" (cache hits: {cache_hits})") } else { String::new() };
        table.push(format!(
            "| {backend} | {call}{note} | {} / {} | {} / {} | {ratio:.2} |",
            ms(fresh_stats.0),
            ms(fresh_stats.1),
            ms(old_stats.0),
            ms(old_stats.1)
        ));
    }
    println!("| Backend | Call | fresh p50 / p90 ms | {} turns p50 / p90 ms | ratio |", long.turns);
    println!("| --- | --- | ---: | ---: | ---: |");
    for row in table {
        println!("{row}");
    }
    drop(server);
}

async fn create(projects: &mut ProjectServiceClient<InterceptedService<Channel, ApiKey>>, name: &str) -> String {
    let request = CreateProjectRequest { name: name.into(), ..Default::default() };
    let response = projects.create_project(request).await.expect("create project").into_inner();
    response.project.expect("created project").project_id
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
