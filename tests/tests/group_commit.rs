//! The group commit of orchestrations, against the real server on SQLite and
//! PostgreSQL: many concurrent prompts over several projects are committed
//! in shared transactions (the server's own batch-size histogram shows it),
//! and every one of them is stored exactly as if it had been committed
//! alone: preference counts, turns, idempotent retries inside one batch, an
//! unknown project, and one request whose images are refused while the rest
//! of its batch commits. A hot project (many prompts in flight on one
//! project) is served from the packet the writer refreshes after each
//! commit, never rebuilt from the store per call.

mod common;

use std::{collections::HashSet, sync::Arc};

use brain_e2e::{Server, ServerOptions, TestDb, backend_tests, http_get};
use brain_proto::v1::{
    self as pb, GetContextPacketRequest, ListMemoriesRequest, MemoryType, OrchestrateRequest, UpsertSceneRequest,
};
use common::*;
use tonic::Code;

const PROJECTS: usize = 3;
const PER_PROJECT: usize = 24;
const RETRIES: usize = 6;

fn request(project_id: &str, prompt: &str) -> OrchestrateRequest {
    OrchestrateRequest { project_id: project_id.into(), prompt: prompt.into(), ..Default::default() }
}

/// Count and sum of a Prometheus histogram in a /metrics scrape.
fn histogram(scrape: &prometheus_parse::Scrape, name: &str) -> (u64, f64) {
    let sample = scrape.samples.iter().find(|s| s.metric == name).unwrap_or_else(|| panic!("{name} in /metrics"));
    match &sample.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let count = buckets.iter().map(|b| b.count).fold(0.0, f64::max) as u64;
            let sum = scrape
                .samples
                .iter()
                .find(|s| s.metric == format!("{name}_sum"))
                .and_then(|s| match s.value {
                    prometheus_parse::Value::Untyped(v)
                    | prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Counter(v) => Some(v),
                    _ => None,
                })
                .unwrap_or(f64::NAN);
            (count, sum)
        }
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

async fn pace_occurrences(server: &Server, project_id: &str) -> (u32, usize) {
    let mut projects = server.projects(None).await;
    let items = projects
        .list_memories(ListMemoriesRequest {
            project_id: project_id.into(),
            r#type: MemoryType::UserPreference as i32,
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("list memories")
        .into_inner()
        .memories;
    let pace: Vec<_> = items.iter().filter(|m| m.key == "pace").collect();
    (pace.first().map_or(0, |m| m.occurrences), pace.len())
}

async fn concurrent_prompts_share_commits_and_each_is_stored(db: Arc<TestDb>) {
    let server = Server::start_with(&db, ServerOptions::new().set("metrics_addr", "127.0.0.1:0")).await;
    let mut ids = Vec::new();
    for n in 0..PROJECTS {
        let id = project(&server, &format!("Batch {n}")).await;
        let mut projects = server.projects(None).await;
        projects
            .upsert_scene(UpsertSceneRequest {
                project_id: id.clone(),
                scene_id: "intro".into(),
                name: "Intro".into(),
                summary: "Opening shot.".into(),
                ..Default::default()
            })
            .await
            .expect("scene");
        ids.push(id);
    }
    // A project that already has image "taken": a prompt re-using that id is refused on its own.
    analyze(&server, &ids[0], vec![inline(png(), "taken")]).await;

    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..PER_PROJECT {
        for id in &ids {
            let mut client = server.orchestrator(None).await;
            let req = request(id, &format!("prompt {round}: keep it fast-paced"));
            tasks.spawn(async move { ("fresh", client.orchestrate(req).await.map(|r| r.into_inner())) });
        }
        if round % 4 == 0 {
            let mut client = server.orchestrator(None).await;
            let req = request("01890000-0000-7000-8000-000000000000", "keep it fast-paced");
            tasks.spawn(async move { ("missing", client.orchestrate(req).await.map(|r| r.into_inner())) });
        }
        if round == PER_PROJECT / 2 {
            let mut client = server.orchestrator(None).await;
            let req = OrchestrateRequest {
                images: vec![inline(png(), "taken")],
                ..request(&ids[0], "build a scene from this mockup")
            };
            tasks.spawn(async move { ("taken", client.orchestrate(req).await.map(|r| r.into_inner())) });
        }
    }
    for _ in 0..RETRIES {
        let mut client = server.orchestrator(None).await;
        let req = OrchestrateRequest { request_id: "same-request".into(), ..request(&ids[1], "add an outro scene") };
        tasks.spawn(async move { ("retry", client.orchestrate(req).await.map(|r| r.into_inner())) });
    }

    let (mut fresh, mut missing, mut taken) = (HashSet::new(), 0, 0);
    let (mut retry_ids, mut retry_new) = (HashSet::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        let (kind, result) = joined.expect("task");
        match (kind, result) {
            ("fresh", Ok(r)) => {
                assert!(!r.replayed);
                fresh.insert(r.orchestration.expect("orchestration").orchestration_id);
            }
            ("missing", Err(status)) => {
                assert_eq!(status.code(), Code::NotFound, "{status:?}");
                missing += 1;
            }
            ("taken", Err(status)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert!(status.message().contains("taken"), "{status:?}");
                taken += 1;
            }
            ("retry", Ok(r)) => {
                retry_new += usize::from(!r.replayed);
                retry_ids.insert(r.orchestration.expect("orchestration").orchestration_id);
            }
            (kind, other) => panic!("{kind}: unexpected {other:?}"),
        }
    }
    assert_eq!(fresh.len(), PROJECTS * PER_PROJECT, "every prompt stored under its own id");
    assert_eq!((missing, taken), (PER_PROJECT / 4, 1));
    assert_eq!((retry_new, retry_ids.len()), (1, 1), "one request id, one orchestration, however many retries");

    // Stored exactly as if committed one by one: every merge saw the ones before it.
    for (n, id) in ids.iter().enumerate() {
        let extra = usize::from(n == 1);
        let rows = query_row(
            &db,
            &format!(
                "SELECT CAST((SELECT COUNT(*) FROM orchestrations WHERE project_id = '{id}') AS TEXT), \
             CAST((SELECT COUNT(*) FROM conversation_turns WHERE project_id = '{id}') AS TEXT)"
            ),
        )
        .await
        .expect("counts");
        let expected = (PER_PROJECT + extra).to_string();
        assert_eq!(rows, vec![Some(expected.clone()), Some(expected)], "project {n}");
        assert_eq!(pace_occurrences(&server, id).await, (PER_PROJECT as u32, 1), "project {n}");
    }
    let refused = query_row(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM image_analyses").await.expect("images");
    assert_eq!(refused, vec![Some("1".to_owned())], "the refused prompt left no image behind");

    // The writer committed them in shared transactions, and counted each stored orchestration once.
    let (status, text) = http_get(server.metrics_addr().expect("metrics_addr"), "/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse /metrics");
    let (batches, stored) = histogram(&scrape, "brain_orchestration_commit_batch_size");
    println!("measured: {stored} orchestrations stored by {batches} transactions");
    assert_eq!(stored as usize, PROJECTS * PER_PROJECT + 1, "sum = orchestrations stored");
    assert!(batches < stored as u64, "some transactions stored several orchestrations: {batches} for {stored}");
}

/// The context packet cache's lookups so far, (hits, misses), from /metrics.
async fn packet_lookups(server: &Server) -> (f64, f64) {
    let (status, text) = http_get(server.metrics_addr().expect("metrics_addr"), "/metrics").await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse /metrics");
    let count = |result: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == "brain_cache_lookups_total")
            .filter(|s| s.labels.get("cache") == Some("context_packet") && s.labels.get("result") == Some(result))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    (count("hit"), count("miss"))
}

const HOT_ROUNDS: usize = 6;
const HOT_IN_FLIGHT: usize = 16;
const HOT_PROMPTS: &[&str] = &[
    "make the intro title red",
    "keep the pace fast and the style minimal",
    "make the intro 8 seconds long",
    "I prefer a serif font",
    "add a scene about pricing after the intro",
    "make the whole video feel calmer",
];

async fn a_hot_project_is_served_from_its_cached_packet(db: Arc<TestDb>) {
    let options = || ServerOptions::new().set("metrics_addr", "127.0.0.1:0");
    let server = Server::start_with(&db, options()).await;
    let id = project(&server, "Hot").await;
    let mut projects = server.projects(None).await;
    projects
        .upsert_scene(UpsertSceneRequest {
            project_id: id.clone(),
            scene_id: "intro".into(),
            name: "Intro".into(),
            summary: "Logo reveal over a dark gradient.".into(),
            ..Default::default()
        })
        .await
        .expect("scene");
    let mut client = server.orchestrator(None).await;
    client.orchestrate(request(&id, "make the intro blue")).await.expect("first prompt builds the packet");

    let (hits_before, misses_before) = packet_lookups(&server).await;
    for round in 0..HOT_ROUNDS {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..HOT_IN_FLIGHT {
            let mut client = server.orchestrator(None).await;
            let req = request(&id, HOT_PROMPTS[(round + n) % HOT_PROMPTS.len()]);
            tasks.spawn(async move { client.orchestrate(req).await.map(|r| r.into_inner()) });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("task").expect("orchestrate");
        }
    }
    let (hits, misses) = packet_lookups(&server).await;
    let (hits, misses) = (hits - hits_before, misses - misses_before);
    println!(
        "measured: {hits} packet cache hits, {misses} misses over {} concurrent prompts",
        HOT_ROUNDS * HOT_IN_FLIGHT
    );
    assert_eq!(hits + misses, (HOT_ROUNDS * HOT_IN_FLIGHT) as f64, "one lookup per prompt");
    assert_eq!(misses, 0.0, "every prompt on the hot project found its packet without a store read");

    // The packet the refreshes left in the cache is the one a server reading the store builds.
    let get = || GetContextPacketRequest { project_id: id.clone(), prompt: "what next?".into(), token_budget: 0 };
    let cached = client.get_context_packet(get()).await.expect("context").into_inner();
    assert!(cached.cache_hit);
    let cold_server = Server::start_with(&db, options()).await;
    let fresh = cold_server.orchestrator(None).await.get_context_packet(get()).await.expect("context").into_inner();
    assert!(!fresh.cache_hit);
    let without_time = |p: Option<pb::ContextPacket>| pb::ContextPacket { build_time: None, ..p.expect("packet") };
    assert_eq!(without_time(cached.context), without_time(fresh.context));
    assert_eq!(cached.enhanced_prompt, fresh.enhanced_prompt);
}

backend_tests!(concurrent_prompts_share_commits_and_each_is_stored, a_hot_project_is_served_from_its_cached_packet);
