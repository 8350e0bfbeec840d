//! Orchestrate, OrchestrateStream and GetContextPacket against the real
//! server on SQLite and PostgreSQL: decisions, the context packet and its
//! cache, exact token accounting, budget cuts of a 200k-token history, the
//! memory bank, idempotency, bad input, degraded reads and failed writes,
//! and concurrency.

use std::{collections::HashMap, sync::Arc, time::Duration};

use brain_e2e::{
    Backend, Projects, Server, ServerOptions, TestDb, assert_error, backend_tests, create_key, create_project,
    error_field,
};
use brain_proto::v1::{
    self as pb, ContextSection, DropAction, GetContextPacketRequest, ImageInput, ListMemoriesRequest, MemoryType,
    OrchestrateRequest, OrchestrateStreamRequest, PutMemoryRequest, UpsertSceneRequest,
    orchestrate_stream_response::Event,
};
use brain_server::context::tokens;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::Code;

type Orchestrator = pb::orchestrator_service_client::OrchestratorServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, brain_e2e::ApiKey>,
>;
async fn new_project(projects: &mut Projects, name: &str) -> String {
    create_project(projects, name).await.project_id
}

async fn scene(projects: &mut Projects, project_id: &str, scene_id: &str, name: &str, summary: &str) -> pb::Scene {
    projects
        .upsert_scene(UpsertSceneRequest {
            project_id: project_id.into(),
            scene_id: scene_id.into(),
            name: name.into(),
            summary: summary.into(),
            duration_seconds: Some(5.0),
            ..Default::default()
        })
        .await
        .expect("upsert scene")
        .into_inner()
        .scene
        .expect("scene")
}

async fn preference(
    projects: &mut Projects,
    project_id: &str,
    key: &str,
    value: &str,
    confidence: f64,
) -> pb::MemoryItem {
    projects
        .put_memory(PutMemoryRequest {
            project_id: project_id.into(),
            r#type: MemoryType::UserPreference as i32,
            key: key.into(),
            value: value.into(),
            confidence: Some(confidence),
            ttl: None,
        })
        .await
        .expect("put memory")
        .into_inner()
        .memory
        .expect("memory")
}

fn request(project_id: &str, prompt: &str) -> OrchestrateRequest {
    OrchestrateRequest { project_id: project_id.into(), prompt: prompt.into(), ..Default::default() }
}

async fn orchestrate(
    client: &mut Orchestrator,
    req: OrchestrateRequest,
) -> Result<pb::OrchestrateResponse, tonic::Status> {
    client.orchestrate(req).await.map(tonic::Response::into_inner)
}

async fn orchestrated(client: &mut Orchestrator, req: OrchestrateRequest) -> pb::Orchestration {
    let response = orchestrate(client, req).await.expect("orchestrate");
    assert!(!response.replayed);
    response.orchestration.expect("orchestration")
}

async fn memories(projects: &mut Projects, project_id: &str, memory_type: MemoryType) -> Vec<pb::MemoryItem> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = projects
            .list_memories(ListMemoriesRequest {
                project_id: project_id.into(),
                r#type: memory_type as i32,
                page_size: 500,
                page_token: token,
            })
            .await
            .expect("list memories")
            .into_inner();
        out.extend(page.memories);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// Asserts the report is exact: its total is o200k_base's count of the prompt and its sections add up.
#[track_caller]
fn assert_exact(enhanced_prompt: &str, report: &pb::TokenReport) {
    assert_eq!(report.encoding, "o200k_base");
    assert_eq!(report.total_after, tokens::count(enhanced_prompt), "total_after is o200k_base's count");
    assert_eq!(report.sections.iter().map(|s| s.tokens_after).sum::<u32>(), report.total_after);
    assert_eq!(report.sections.iter().map(|s| s.tokens_before).sum::<u32>(), report.total_before);
    assert_eq!(report.sections.len(), 7, "every section is reported");
    assert!(report.total_after <= report.budget, "{} > budget {}", report.total_after, report.budget);
    assert_eq!(report.truncated, !report.dropped.is_empty());
}

/// A direct connection to the test database, to count rows behind the server's back.
async fn direct(db: &TestDb) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(db.url.clone());
    opts.max_connections(1).sqlx_logging(false);
    Database::connect(opts).await.expect("direct database connection")
}

async fn scalar(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("integer")
}

/// Rows a project has in every table Orchestrate writes, plus a fingerprint of its memory items.
async fn footprint(conn: &DatabaseConnection, project_id: &str) -> (i64, i64, i64, Vec<String>, i64) {
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE project_id = '{project_id}'");
    let orchestrations = scalar(conn, &count("orchestrations")).await;
    let turns = scalar(conn, &count("conversation_turns")).await;
    let memories = scalar(conn, &count("memories")).await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT id, value, occurrences, updated_at FROM memories WHERE project_id = '{project_id}' ORDER BY id"
            ),
        ))
        .await
        .expect("memories");
    let fingerprint = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}",
                r.try_get_by_index::<String>(0).unwrap_or_default(),
                r.try_get_by_index::<String>(1).unwrap_or_default(),
                r.try_get_by_index::<i32>(2).unwrap_or_default(),
                r.try_get_by_index::<i64>(3).unwrap_or_default()
            )
        })
        .collect();
    let updated = scalar(conn, &format!("SELECT updated_at FROM projects WHERE id = '{project_id}'")).await;
    (orchestrations, turns, memories, fingerprint, updated)
}

fn tool_call(o: &pb::Orchestration) -> &pb::ToolCall {
    match o.decision.as_ref().and_then(|d| d.outcome.as_ref()) {
        Some(pb::decision::Outcome::ToolCall(call)) => call,
        other => panic!("expected a tool call, got {other:?}"),
    }
}

async fn decides_on_a_seeded_project(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Launch video").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Logo reveal over a dark gradient.").await;
    scene(&mut projects, &project_id, "demo", "Product demo", "Screen recording of the dashboard.").await;
    scene(&mut projects, &project_id, "outro", "Outro", "Call to action with the website address.").await;

    let o = orchestrated(&mut client, request(&project_id, "make the intro title red")).await;
    let call = tool_call(&o);
    assert_eq!(call.tool, pb::Tool::EditScene as i32);
    assert_eq!(call.target_scene_id, "intro");
    assert!(!o.orchestration_id.is_empty());
    assert!(!o.degraded);
    assert_eq!(o.project_id, project_id);

    let context = o.context.as_ref().expect("context");
    let ids: Vec<&str> = context.scenes.iter().map(|s| s.scene.as_ref().expect("scene").scene_id.as_str()).collect();
    assert_eq!(ids, ["intro", "demo", "outro"], "scenes in position order");
    assert!(
        o.enhanced_prompt.contains("## Scenes (in order)\n- Scene 1 \"Intro\" [id intro, 5s]\nSummary: Logo reveal")
    );
    assert!(o.enhanced_prompt.ends_with("# User prompt\nmake the intro title red"));
    let report = o.token_report.as_ref().expect("report");
    assert_exact(&o.enhanced_prompt, report);
    assert_eq!(report.budget, 120_000);
    assert!(!report.truncated);
    let timings = o.timings.as_ref().expect("timings");
    assert!(timings.total_ms > 0.0 && timings.total_ms >= timings.decision_ms);

    // The memory bank: what was asked of the target scene, and the latest interaction.
    let relationships = memories(&mut projects, &project_id, MemoryType::SceneRelationship).await;
    assert_eq!(relationships.len(), 1);
    assert_eq!(relationships[0].key, "intro");
    assert!(relationships[0].value.contains("editScene"), "{}", relationships[0].value);
    assert!(relationships[0].value.contains("make the intro title red"));
    assert_eq!(relationships[0].source, pb::MemorySource::Decision as i32);
    let latest = memories(&mut projects, &project_id, MemoryType::ConversationContext).await;
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].key, "latest");
    assert!(latest[0].value.contains("make the intro title red"));

    // The next prompt sees the turn and the relationship, and an exotic prompt is still counted exactly.
    let prompt = "Réécris l'intro 👍🏽 — 日本語 too:\n\n  - keep <|endoftext|> literal\r\n\tthanks!!!";
    let o = orchestrated(&mut client, request(&project_id, prompt)).await;
    assert_exact(&o.enhanced_prompt, o.token_report.as_ref().expect("report"));
    let context = o.context.as_ref().expect("context");
    assert_eq!(context.recent_turns.len(), 1);
    assert_eq!(context.recent_turns[0].prompt, "make the intro title red");
    assert_eq!(context.scenes[0].relationships.len(), 1);
    assert!(o.enhanced_prompt.contains("## Recent conversation (oldest first)\n- User: make the intro title red\n"));
    assert!(o.enhanced_prompt.ends_with(prompt), "the prompt is passed through verbatim");
}

async fn context_packet_order_and_cache(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Cache").await;
    scene(&mut projects, &project_id, "b", "Second", "Second scene.").await;
    projects
        .upsert_scene(UpsertSceneRequest {
            project_id: project_id.clone(),
            scene_id: "a".into(),
            name: "First".into(),
            position: Some(0),
            ..Default::default()
        })
        .await
        .expect("insert first");
    preference(&mut projects, &project_id, "style", "minimal", 0.4).await;
    preference(&mut projects, &project_id, "color", "dark blue", 0.9).await;
    preference(&mut projects, &project_id, "font", "geometric sans", 0.7).await;
    orchestrated(&mut client, request(&project_id, "first prompt about Second")).await;
    orchestrated(&mut client, request(&project_id, "second prompt about First")).await;

    let get = |prompt: &str| GetContextPacketRequest {
        project_id: project_id.clone(),
        prompt: prompt.into(),
        token_budget: 0,
    };
    let first = client.get_context_packet(get("what next?")).await.expect("context").into_inner();
    assert!(first.cache_hit, "an orchestration refreshes the packet it read with what it wrote");
    let packet = first.context.as_ref().expect("packet");
    let prefs: Vec<(&str, f64)> = packet.preferences.iter().map(|m| (m.key.as_str(), m.confidence)).collect();
    assert_eq!(prefs, [("color", 0.9), ("font", 0.7), ("style", 0.4)], "highest confidence first");
    let scenes: Vec<&str> = packet.scenes.iter().map(|s| s.scene.as_ref().expect("scene").scene_id.as_str()).collect();
    assert_eq!(scenes, ["a", "b"]);
    let turns: Vec<&str> = packet.recent_turns.iter().map(|t| t.prompt.as_str()).collect();
    assert_eq!(turns, ["first prompt about Second", "second prompt about First"], "oldest first");
    assert!(packet.recent_turns.iter().all(|t| t.token_count > 0 && !t.orchestration_id.is_empty()));
    assert!(packet.pending_image_ids.is_empty());
    assert_exact(&first.enhanced_prompt, first.token_report.as_ref().expect("report"));
    let p = &first.enhanced_prompt;
    let order = [
        "# Project context\n",
        "## User preferences",
        "## Scenes",
        "## Recent conversation",
        "# User prompt\nwhat next?",
    ];
    let positions: Vec<usize> =
        order.iter().map(|h| p.find(h).unwrap_or_else(|| panic!("{h} missing in {p}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "sections in order: {p}");

    // A second server on the same database builds the packet from the store:
    // the same state renders the same context and enhanced prompt.
    let cold_server = Server::start(&db).await;
    let mut cold = cold_server.orchestrator(None).await;
    let second = cold.get_context_packet(get("what next?")).await.expect("context").into_inner();
    assert!(!second.cache_hit, "a fresh process reads the store");
    assert_eq!(second.enhanced_prompt, first.enhanced_prompt, "deterministic for the same state");
    assert_eq!(second.token_report, first.token_report);
    let without_time = |p: Option<pb::ContextPacket>| pb::ContextPacket { build_time: None, ..p.expect("packet") };
    assert_eq!(without_time(second.context.clone()), without_time(first.context.clone()));
    let again = cold.get_context_packet(get("what next?")).await.expect("context").into_inner();
    assert!(again.cache_hit);
    assert_eq!(again.context, second.context, "a cached packet keeps its build time");

    // Without a prompt the context renders alone.
    let bare = client.get_context_packet(get("")).await.expect("context").into_inner();
    assert!(bare.cache_hit);
    assert!(!bare.enhanced_prompt.contains("# User prompt"));
    assert_exact(&bare.enhanced_prompt, bare.token_report.as_ref().expect("report"));

    // Any write to the project invalidates; GetContextPacket itself writes nothing.
    let conn = direct(&db).await;
    let before = footprint(&conn, &project_id).await;
    preference(&mut projects, &project_id, "pace", "fast", 0.8).await;
    let third = client.get_context_packet(get("what next?")).await.expect("context").into_inner();
    assert!(!third.cache_hit);
    assert_eq!(third.context.as_ref().expect("packet").preferences.len(), 4);
    let fourth = client.get_context_packet(get("what next?")).await.expect("context").into_inner();
    assert!(fourth.cache_hit);
    let after = footprint(&conn, &project_id).await;
    assert_eq!((before.0, before.1), (after.0, after.1), "no orchestration or turn written by GetContextPacket");
    // After an orchestration the cached packet carries its turn and what it learned.
    orchestrated(&mut client, request(&project_id, "third prompt: keep the pace fast")).await;
    let fifth = client.get_context_packet(get("what next?")).await.expect("context").into_inner();
    let packet = fifth.context.as_ref().expect("packet");
    assert_eq!(packet.recent_turns.len(), 3);
    assert_eq!(packet.recent_turns[2].prompt, "third prompt: keep the pace fast");
    assert_exact(&fifth.enhanced_prompt, fifth.token_report.as_ref().expect("report"));
}

/// A packet considers only the `context_max_preferences` highest ranked preferences, however many
/// the project holds; the packet an orchestration leaves in the cache equals a fresh store read.
async fn the_packet_holds_the_top_ranked_preferences(db: Arc<TestDb>) {
    let options = || ServerOptions::new().set("context_max_preferences", 2);
    let server = Server::start_with(&db, options()).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Many preferences").await;
    preference(&mut projects, &project_id, "style", "minimal", 0.4).await;
    preference(&mut projects, &project_id, "color", "dark blue", 0.9).await;
    preference(&mut projects, &project_id, "font", "geometric sans", 0.7).await;
    let get =
        || GetContextPacketRequest { project_id: project_id.clone(), prompt: "what next?".into(), token_budget: 0 };
    let keys = |response: &pb::GetContextPacketResponse| -> Vec<String> {
        response.context.as_ref().expect("packet").preferences.iter().map(|m| m.key.clone()).collect()
    };
    let first = client.get_context_packet(get()).await.expect("context").into_inner();
    assert_eq!(keys(&first), ["color", "font"], "the two highest ranked of three");

    // Orchestrations write preferences and turns; the packet each leaves in the cache is what a
    // server reading the store builds.
    for prompt in ["use a fast pace", "make the background white", "I prefer a serif font"] {
        orchestrated(&mut client, request(&project_id, prompt)).await;
        let cached = client.get_context_packet(get()).await.expect("context").into_inner();
        let cold_server = Server::start_with(&db, options()).await;
        let mut cold = cold_server.orchestrator(None).await;
        let fresh = cold.get_context_packet(get()).await.expect("context").into_inner();
        assert!(!fresh.cache_hit);
        assert_eq!(keys(&cached).len(), 2, "{prompt}: {:?}", keys(&cached));
        let without_time = |p: Option<pb::ContextPacket>| pb::ContextPacket { build_time: None, ..p.expect("packet") };
        assert_eq!(without_time(cached.context), without_time(fresh.context), "after {prompt:?}");
        assert_eq!(cached.enhanced_prompt, fresh.enhanced_prompt);
    }
}

const WORDS: &[&str] = &[
    "scene",
    "motion",
    "gradient",
    "logo",
    "camera",
    "slowly",
    "reveal",
    "bright",
    "bold",
    "typography",
    "launch",
    "product",
    "feature",
    "dashboard",
    "smooth",
    "transition",
    "color",
    "palette",
    "energy",
    "calm",
    "story",
    "brand",
    "clean",
    "modern",
    "fade",
    "zoom",
    "title",
    "subtitle",
    "music",
    "beat",
    "timing",
    "frame",
    "layer",
    "shadow",
];

/// About `words` tokens of English-like text, at most 32,000 bytes (under the prompt limit).
fn text(words: usize, seed: usize) -> String {
    let mut out = (0..words).map(|i| WORDS[(i * 7 + seed * 13 + i / 5) % WORDS.len()]).collect::<Vec<_>>().join(" ");
    out.truncate(32_000);
    out.trim_end().to_owned()
}

fn section_rank(section: i32) -> u8 {
    match ContextSection::try_from(section) {
        Ok(ContextSection::Conversation) => 0,
        Ok(ContextSection::ImageFacts) => 1,
        Ok(ContextSection::Preferences) => 2,
        Ok(ContextSection::Scenes) => 3,
        Ok(ContextSection::Prompt) => 4,
        other => panic!("nothing is dropped from {other:?}"),
    }
}

async fn long_history_is_cut_to_the_budget(db: Arc<TestDb>) {
    // All 300 preferences in the packet (the default considers the top 100), so the budget cuts.
    let server = Server::start_with(&db, ServerOptions::new().set("context_max_preferences", 1_000)).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Long history").await;
    for (id, name) in [("s1", "Intro"), ("s2", "Middle"), ("s3", "End")] {
        scene(&mut projects, &project_id, id, name, &text(120, id.len())).await;
    }
    // Ten long turns (~4.5k tokens each) and 300 long preferences (~600 tokens each): over 200k tokens.
    for i in 0..10 {
        orchestrated(&mut client, request(&project_id, &text(5_000, i))).await;
    }
    let mut confidence = HashMap::new();
    for i in 0..300 {
        let value: String = text(700, i).chars().take(3_990).collect();
        let c = f64::from(i as u32 % 97) / 100.0 + 0.01;
        let item = preference(&mut projects, &project_id, &format!("pref-{i:03}"), &value, c).await;
        confidence.insert(item.memory_id, c);
    }

    let prompt = "what should the next scene be?";
    let fitted = client
        .get_context_packet(GetContextPacketRequest {
            project_id: project_id.clone(),
            prompt: prompt.into(),
            token_budget: 120_000,
        })
        .await
        .expect("context")
        .into_inner();
    let report = fitted.token_report.as_ref().expect("report");
    assert_exact(&fitted.enhanced_prompt, report);
    assert!(report.total_before >= 200_000, "history is {} tokens", report.total_before);
    assert!(report.total_after > 100_000, "cut to the budget, not far below it: {}", report.total_after);
    assert!(report.truncated && !report.prompt_truncated);
    let ranks: Vec<u8> = report.dropped.iter().map(|d| section_rank(d.section)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "drop order: {ranks:?}");
    let turns_dropped = report.dropped.iter().filter(|d| d.section == ContextSection::Conversation as i32).count();
    assert_eq!(turns_dropped, 10, "all old turns go before any preference");
    let dropped_confidence: Vec<f64> = report
        .dropped
        .iter()
        .filter(|d| d.section == ContextSection::Preferences as i32)
        .map(|d| confidence[&d.item_id])
        .collect();
    assert!(!dropped_confidence.is_empty());
    assert!(dropped_confidence.windows(2).all(|w| w[0] <= w[1]), "lowest confidence first: {dropped_confidence:?}");
    let kept = &fitted.context.as_ref().expect("packet").preferences;
    let lowest_kept = kept.iter().map(|m| m.confidence).fold(f64::MAX, f64::min);
    assert!(dropped_confidence.iter().all(|c| *c <= lowest_kept));
    assert_eq!(kept.len() + dropped_confidence.len(), 300);
    let saved: u32 = report.dropped.iter().map(|d| d.tokens).sum();
    assert!(report.total_before - report.total_after >= saved, "every dropped token is accounted for");
    let conversation =
        report.sections.iter().find(|s| s.section == ContextSection::Conversation as i32).expect("section");
    assert_eq!((conversation.items_before, conversation.items_after, conversation.tokens_after), (10, 0, 0));

    // Orchestrate applies the same budget and stores the cut context.
    let o =
        orchestrated(&mut client, OrchestrateRequest { token_budget: 120_000, ..request(&project_id, prompt) }).await;
    let o_report = o.token_report.as_ref().expect("report");
    assert_exact(&o.enhanced_prompt, o_report);
    assert!(o_report.total_before >= 200_000);

    // A small budget drops everything droppable, then cuts the middle of a long prompt.
    let long_prompt = format!("BEGIN {} FINISH", text(4_000, 3));
    let small = client
        .get_context_packet(GetContextPacketRequest {
            project_id: project_id.clone(),
            prompt: long_prompt.clone(),
            token_budget: 2_000,
        })
        .await
        .expect("context")
        .into_inner();
    let report = small.token_report.as_ref().expect("report");
    assert_exact(&small.enhanced_prompt, report);
    assert!(report.prompt_truncated);
    let last = report.dropped.last().expect("dropped");
    assert_eq!(
        (last.section, last.item_id.as_str(), last.action),
        (ContextSection::Prompt as i32, "prompt", DropAction::MiddleCut as i32)
    );
    let summaries: Vec<&str> = report
        .dropped
        .iter()
        .filter(|d| d.action == DropAction::SummaryRemoved as i32)
        .map(|d| d.item_id.as_str())
        .collect();
    assert_eq!(summaries.len(), 3, "every scene summary went: {summaries:?}");
    let ranks: Vec<u8> = report.dropped.iter().map(|d| section_rank(d.section)).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "drop order: {ranks:?}");
    for name in ["\"Intro\"", "\"Middle\"", "\"End\""] {
        assert!(small.enhanced_prompt.contains(name), "scene names stay");
    }
    assert!(small.enhanced_prompt.contains("# User prompt\nBEGIN "), "the head stays");
    assert!(small.enhanced_prompt.ends_with(" FINISH"), "the tail stays");
    assert!(small.enhanced_prompt.contains("tokens cut from the middle of the prompt"));
    assert!(report.budget_warning);
}

async fn preferences_rise_and_are_replaced(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Prefs").await;
    let pace = |items: Vec<pb::MemoryItem>| items.into_iter().find(|m| m.key == "pace").expect("pace preference");

    // A project-wide instruction (0.7), then an explicit statement (0.8) of the same value.
    orchestrated(&mut client, request(&project_id, "Keep it fast-paced")).await;
    let first = pace(memories(&mut projects, &project_id, MemoryType::UserPreference).await);
    assert_eq!((first.value.as_str(), first.occurrences), ("fast", 1));
    assert_eq!(first.confidence, 0.7);
    assert_eq!(first.source, pb::MemorySource::Prompt as i32);
    assert_eq!(first.source_prompt, "Keep it fast-paced");
    assert!(first.token_count > 0);

    orchestrated(&mut client, request(&project_id, "I like a fast pace, keep it that way")).await;
    let second = pace(memories(&mut projects, &project_id, MemoryType::UserPreference).await);
    assert_eq!((second.value.as_str(), second.occurrences), ("fast", 2));
    assert!((second.confidence - 0.86).abs() < 1e-9, "0.8 + 0.2 * 0.3, got {}", second.confidence);
    assert_eq!(second.memory_id, first.memory_id);
    assert_eq!(second.source_prompt, "I like a fast pace, keep it that way");

    orchestrated(&mut client, request(&project_id, "From now on, keep the pace slow")).await;
    let third = pace(memories(&mut projects, &project_id, MemoryType::UserPreference).await);
    assert_eq!((third.value.as_str(), third.occurrences), ("slow", 1), "a contradiction replaces the value");
    assert_eq!(third.confidence, 0.8);
    assert_eq!(third.memory_id, first.memory_id);

    // A one-off edit hints at a colour (0.3); it erodes a stated taste instead of replacing it.
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    let background =
        |items: Vec<pb::MemoryItem>| items.into_iter().find(|m| m.key == "background").expect("background preference");
    orchestrated(&mut client, request(&project_id, "I prefer dark backgrounds")).await;
    let stated = background(memories(&mut projects, &project_id, MemoryType::UserPreference).await);
    assert_eq!((stated.value.as_str(), stated.occurrences, stated.confidence), ("dark", 1, 0.8));
    let edit = orchestrated(&mut client, request(&project_id, "make the intro background light blue")).await;
    assert_eq!(tool_call(&edit).tool, pb::Tool::EditScene as i32);
    let eroded = background(memories(&mut projects, &project_id, MemoryType::UserPreference).await);
    assert_eq!((eroded.value.as_str(), eroded.occurrences), ("dark", 1), "the stated value stays");
    assert!((eroded.confidence - (0.8 - 0.3 * 0.3)).abs() < 1e-9, "eroded, got {}", eroded.confidence);
    assert_eq!(eroded.source_prompt, "I prefer dark backgrounds", "the value keeps the prompt it came from");

    // The stored count is exactly the line the context renders.
    let context = client
        .get_context_packet(GetContextPacketRequest { project_id: project_id.clone(), ..Default::default() })
        .await
        .expect("context")
        .into_inner();
    assert!(context.enhanced_prompt.contains("- pace: slow (confidence"));
    assert_exact(&context.enhanced_prompt, context.token_report.as_ref().expect("report"));
}

async fn idempotent_replay_writes_nothing(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Idempotent").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    let req = OrchestrateRequest { request_id: "req-1.a_B".into(), ..request(&project_id, "make the intro pace fast") };
    let first = orchestrate(&mut client, req.clone()).await.expect("first");
    assert!(!first.replayed);
    let conn = direct(&db).await;
    let before = footprint(&conn, &project_id).await;
    assert_eq!((before.0, before.1), (1, 1));

    let again = orchestrate(&mut client, req.clone()).await.expect("retry");
    assert!(again.replayed);
    assert_eq!(again.orchestration, first.orchestration, "the stored response, verbatim");
    let stream_replay = stream(&mut client, &req).await;
    assert_eq!(stream_replay.len(), 3);
    let after = footprint(&conn, &project_id).await;
    assert_eq!(after, before, "a replay writes nothing");

    // The same key for anything else is refused, and still writes nothing.
    for other in [
        OrchestrateRequest { prompt: "something else".into(), ..req.clone() },
        OrchestrateRequest { token_budget: 5_000, ..req.clone() },
    ] {
        let status = assert_error(orchestrate(&mut client, other).await, Code::InvalidArgument, "REQUEST_ID_REUSED");
        assert_eq!(error_field(&status).as_deref(), Some("request_id"));
    }
    let other_project = new_project(&mut projects, "Other").await;
    let moved = OrchestrateRequest { project_id: other_project, ..req.clone() };
    assert_error(orchestrate(&mut client, moved).await, Code::InvalidArgument, "REQUEST_ID_REUSED");
    assert_eq!(footprint(&conn, &project_id).await, before);
    assert_eq!(scalar(&conn, "SELECT COUNT(*) FROM orchestrations").await, 1);
}

async fn bad_input_is_refused_and_writes_nothing(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Bad input").await;
    let base = request(&project_id, "make it pop");

    let cases: Vec<(OrchestrateRequest, Code, &str, &str)> = vec![
        (OrchestrateRequest { prompt: String::new(), ..base.clone() }, Code::InvalidArgument, "PROMPT_EMPTY", "prompt"),
        (
            OrchestrateRequest { prompt: " \n\t ".into(), ..base.clone() },
            Code::InvalidArgument,
            "PROMPT_EMPTY",
            "prompt",
        ),
        (
            OrchestrateRequest { prompt: "x".repeat(32 * 1024 + 1), ..base.clone() },
            Code::ResourceExhausted,
            "PROMPT_TOO_LARGE",
            "prompt",
        ),
        (
            OrchestrateRequest { prompt: "nul \0 byte".into(), ..base.clone() },
            Code::InvalidArgument,
            "INVALID_FIELD",
            "prompt",
        ),
        (
            OrchestrateRequest { token_budget: 200_000, ..base.clone() },
            Code::InvalidArgument,
            "TOKEN_BUDGET_OUT_OF_RANGE",
            "token_budget",
        ),
        (
            OrchestrateRequest { token_budget: 10, ..base.clone() },
            Code::InvalidArgument,
            "TOKEN_BUDGET_OUT_OF_RANGE",
            "token_budget",
        ),
        (
            OrchestrateRequest { project_id: "no-such-project".into(), ..base.clone() },
            Code::NotFound,
            "PROJECT_NOT_FOUND",
            "project_id",
        ),
        (
            OrchestrateRequest { project_id: String::new(), ..base.clone() },
            Code::InvalidArgument,
            "MISSING_FIELD",
            "project_id",
        ),
        (
            OrchestrateRequest { request_id: "has space".into(), ..base.clone() },
            Code::InvalidArgument,
            "INVALID_ID",
            "request_id",
        ),
        (
            OrchestrateRequest {
                images: vec![ImageInput {
                    source: Some(pb::image_input::Source::Url("http://169.254.169.254/latest/meta-data/".into())),
                    ..Default::default()
                }],
                ..base.clone()
            },
            Code::InvalidArgument,
            "IMAGE_URL_FORBIDDEN",
            "images[0].url",
        ),
        (
            OrchestrateRequest {
                images: vec![ImageInput {
                    source: Some(pb::image_input::Source::Data(b"%PDF-1.7 not an image".to_vec().into())),
                    ..Default::default()
                }],
                ..base.clone()
            },
            Code::InvalidArgument,
            "IMAGE_UNSUPPORTED_TYPE",
            "images[0].data",
        ),
    ];
    for (req, code, reason, field) in cases {
        let status = assert_error(orchestrate(&mut client, req.clone()).await, code, reason);
        assert_eq!(error_field(&status).as_deref(), Some(field), "{reason}");
        let stream_req = OrchestrateStreamRequest {
            project_id: req.project_id,
            prompt: req.prompt,
            images: req.images,
            request_id: req.request_id,
            token_budget: req.token_budget,
            image_wait: None,
        };
        let status = match client.orchestrate_stream(stream_req).await {
            Err(status) => status,
            Ok(response) => {
                let mut messages = response.into_inner();
                messages.message().await.expect_err("the stream fails first")
            }
        };
        assert_eq!(status.code(), code, "stream: {reason}");
    }
    let status = assert_error(
        client
            .get_context_packet(GetContextPacketRequest {
                project_id: project_id.clone(),
                prompt: String::new(),
                token_budget: 128_001,
            })
            .await,
        Code::InvalidArgument,
        "TOKEN_BUDGET_OUT_OF_RANGE",
    );
    assert_eq!(error_field(&status).as_deref(), Some("token_budget"));
    let conn = direct(&db).await;
    let (orchestrations, turns, memories, _, _) = footprint(&conn, &project_id).await;
    assert_eq!((orchestrations, turns, memories), (0, 0, 0), "bad input loses nothing and writes nothing");
    let images = scalar(&conn, &format!("SELECT COUNT(*) FROM image_analyses WHERE project_id = '{project_id}'")).await;
    let jobs = scalar(&conn, &format!("SELECT COUNT(*) FROM jobs WHERE project_id = '{project_id}'")).await;
    assert_eq!((images, jobs), (0, 0), "no image of a refused request is stored or queued");
}

async fn other_tenants_projects_are_not_found(db: Arc<TestDb>) {
    let alpha = create_key(&db, "alpha");
    let beta = create_key(&db, "beta");
    let server = Server::start(&db).await;
    let mut alpha_projects = server.projects(Some(&alpha)).await;
    let mut alpha_client = server.orchestrator(Some(&alpha)).await;
    let mut beta_client = server.orchestrator(Some(&beta)).await;
    let project_id = new_project(&mut alpha_projects, "Alpha's").await;
    // Alpha's packet is cached; Beta must not be served from it.
    let get = GetContextPacketRequest { project_id: project_id.clone(), ..Default::default() };
    alpha_client.get_context_packet(get.clone()).await.expect("alpha reads");
    assert!(alpha_client.get_context_packet(get.clone()).await.expect("alpha reads").into_inner().cache_hit);
    assert_error(beta_client.get_context_packet(get).await, Code::NotFound, "PROJECT_NOT_FOUND");
    assert_error(
        orchestrate(&mut beta_client, request(&project_id, "delete everything")).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );
    // Request ids are per tenant: Beta's key does not collide with Alpha's.
    let own = new_project(&mut server.projects(Some(&beta)).await, "Beta's").await;
    let keyed = |p: &str| OrchestrateRequest { request_id: "shared-key".into(), ..request(p, "hello") };
    assert!(!orchestrate(&mut alpha_client, keyed(&project_id)).await.expect("alpha").replayed);
    assert!(!orchestrate(&mut beta_client, keyed(&own)).await.expect("beta").replayed);
}

async fn degraded_when_memory_cannot_be_read(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Degraded").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    // A memory row this server cannot map: reading the project's preferences fails for real.
    let conn = direct(&db).await;
    let tenant_id: String = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT tenant_id FROM projects WHERE id = '{project_id}'"),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("tenant id");
    conn.execute_unprepared(&format!(
        "INSERT INTO memories (id, tenant_id, project_id, memory_type, key, value, confidence, source, source_prompt, \
         token_count, occurrences, expires_at, created_at, updated_at) VALUES ('corrupt-1', '{tenant_id}', \
         '{project_id}', 'user_preference', 'style', 'minimal', 0.5, 'from-the-future', NULL, 5, 1, NULL, 1, 1)"
    ))
    .await
    .expect("insert corrupt row");

    let o = orchestrated(&mut client, request(&project_id, "make the intro title red")).await;
    assert!(o.degraded);
    assert!(o.degraded_reason.contains("could not be read"), "{}", o.degraded_reason);
    let context = o.context.as_ref().expect("context");
    assert!(context.scenes.is_empty() && context.preferences.is_empty(), "decided from the prompt alone");
    assert_exact(&o.enhanced_prompt, o.token_report.as_ref().expect("report"));
    assert_eq!(o.enhanced_prompt, "# User prompt\nmake the intro title red");
    // Without scenes the target cannot be resolved; the interaction is still stored.
    let (orchestrations, turns, ..) = footprint(&conn, &project_id).await;
    assert_eq!((orchestrations, turns), (1, 1));
    assert!(server.logs().contains("deciding from the prompt alone"), "the degradation is logged");
    // GetContextPacket reports the read failure instead of hiding it.
    let status = client
        .get_context_packet(GetContextPacketRequest { project_id: project_id.clone(), ..Default::default() })
        .await
        .expect_err("the packet cannot be read");
    assert_eq!(status.code(), Code::Internal);
}

async fn failed_write_is_unavailable_and_stores_nothing(db: Arc<TestDb>) {
    let options = ServerOptions::new().set("sqlite_busy_timeout_ms", 300);
    let server = Server::start_with(&db, options).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Write failure").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    let conn = direct(&db).await;
    let before = footprint(&conn, &project_id).await;

    // Make writes fail for real: hold SQLite's write lock past the busy timeout,
    // or switch the PostgreSQL database to read-only for new transactions.
    let admin = match db.backend {
        Backend::Sqlite => {
            conn.execute_unprepared("BEGIN IMMEDIATE").await.expect("take the write lock");
            None
        }
        Backend::Postgres => {
            let admin_url = std::env::var(brain_e2e::POSTGRES_ENV).expect("postgres url");
            let admin = Database::connect(&admin_url).await.expect("admin connection");
            let name = db.url.rsplit('/').next().expect("database name").split('?').next().expect("name").to_owned();
            set_read_only(&admin, &name, true).await;
            Some((admin, name))
        }
    };
    let req = OrchestrateRequest { request_id: "will-fail".into(), ..request(&project_id, "make the intro red") };
    let status = assert_error(orchestrate(&mut client, req.clone()).await, Code::Unavailable, "STORE_UNAVAILABLE");
    assert!(!status.message().contains("SQLITE"), "details stay in the log: {}", status.message());
    // Concurrent prompts share a failing commit: each of them is told, none is stored.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut client = server.orchestrator(None).await;
        let req = request(&project_id, &format!("prompt {i}: keep it fast-paced"));
        tasks.push(tokio::spawn(async move { orchestrate(&mut client, req).await }));
    }
    for task in tasks {
        assert_error(task.await.expect("task"), Code::Unavailable, "STORE_UNAVAILABLE");
    }
    match &admin {
        None => {
            conn.execute_unprepared("ROLLBACK").await.expect("release the write lock");
        }
        Some((admin, name)) => set_read_only(admin, name, false).await,
    }
    let conn = direct(&db).await;
    assert_eq!(footprint(&conn, &project_id).await, before, "nothing of the failed orchestration was stored");

    // Once the store recovers, the same request goes through, exactly once.
    let ok = orchestrate(&mut client, req.clone()).await.expect("after recovery");
    assert!(!ok.replayed);
    assert!(orchestrate(&mut client, req).await.expect("retry").replayed);
    assert_eq!(footprint(&conn, &project_id).await.0, 1);
}

async fn set_read_only(admin: &DatabaseConnection, name: &str, on: bool) {
    let setting = if on { "SET default_transaction_read_only = on" } else { "RESET default_transaction_read_only" };
    admin.execute_unprepared(&format!("ALTER DATABASE {name} {setting}")).await.expect("alter database");
    // Existing sessions keep their setting; end them so the server reconnects with the new one.
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("terminate sessions");
}

async fn stream(client: &mut Orchestrator, req: &OrchestrateRequest) -> Vec<Event> {
    let stream_req = OrchestrateStreamRequest {
        project_id: req.project_id.clone(),
        prompt: req.prompt.clone(),
        images: Vec::new(),
        request_id: req.request_id.clone(),
        token_budget: req.token_budget,
        image_wait: None,
    };
    let mut messages = client.orchestrate_stream(stream_req).await.expect("stream").into_inner();
    let mut events = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), messages.message())
        .await
        .expect("stream stalled")
        .expect("stream message")
    {
        events.push(message.event.expect("event"));
    }
    events
}

async fn stream_reports_each_step_in_order(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let mut client = server.orchestrator(None).await;
    let project_id = new_project(&mut projects, "Stream").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    let req = OrchestrateRequest { request_id: "stream-1".into(), ..request(&project_id, "make the intro blue") };
    let events = stream(&mut client, &req).await;
    let [Event::ContextBuilt(built), Event::DecisionMade(made), Event::Completed(done)] = events.as_slice() else {
        panic!("expected context, decision, completion; got {events:?}");
    };
    let o = done.orchestration.as_ref().expect("orchestration");
    assert!(!done.replayed);
    assert!(done.pending_image_ids.is_empty());
    assert_eq!(made.orchestration_id, o.orchestration_id);
    assert_eq!(made.decision, o.decision);
    assert_eq!(built.enhanced_prompt, o.enhanced_prompt);
    assert_eq!(built.token_report, o.token_report);
    assert_exact(&built.enhanced_prompt, built.token_report.as_ref().expect("report"));
    assert_eq!(tool_call(o).target_scene_id, "intro");

    // A replay streams the stored orchestration the same way; Orchestrate sees the same record.
    let replay = stream(&mut client, &req).await;
    let [Event::ContextBuilt(_), Event::DecisionMade(made), Event::Completed(done)] = replay.as_slice() else {
        panic!("expected context, decision, completion; got {replay:?}");
    };
    assert!(done.replayed);
    assert_eq!(made.orchestration_id, o.orchestration_id);
    let unary = orchestrate(&mut client, req).await.expect("unary replay");
    assert!(unary.replayed);
    assert_eq!(unary.orchestration.as_ref(), Some(o));
}

async fn concurrent_orchestrations_are_all_stored(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let project_id = new_project(&mut projects, "Concurrent").await;
    scene(&mut projects, &project_id, "intro", "Intro", "Opening shot.").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut client = server.orchestrator(None).await;
        let req = request(&project_id, &format!("prompt number {i}: keep it fast-paced"));
        tasks.push(tokio::spawn(async move { orchestrated(&mut client, req).await }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let o = task.await.expect("task");
        assert_exact(&o.enhanced_prompt, o.token_report.as_ref().expect("report"));
        ids.insert(o.orchestration_id);
    }
    assert_eq!(ids.len(), 20);
    let conn = direct(&db).await;
    let (orchestrations, turns, ..) = footprint(&conn, &project_id).await;
    assert_eq!((orchestrations, turns), (20, 20));
    let kept = format!("SELECT COUNT(*) FROM orchestrations WHERE project_id = '{project_id}' AND response <> ''");
    assert_eq!(scalar(&conn, &kept).await, 0, "without a request id nothing can replay, so no response is kept");
    let prefs = memories(&mut projects, &project_id, MemoryType::UserPreference).await;
    let pace = prefs.iter().find(|m| m.key == "pace").expect("pace");
    assert_eq!(pace.occurrences, 20, "every merge saw the one before it");

    // Concurrent retries of one request: exactly one is stored, the others get it back.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let mut client = server.orchestrator(None).await;
        let req = OrchestrateRequest { request_id: "dup".into(), ..request(&project_id, "add an outro") };
        tasks.push(tokio::spawn(async move { orchestrate(&mut client, req).await.expect("orchestrate") }));
    }
    let mut fresh = 0;
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let response = task.await.expect("task");
        fresh += usize::from(!response.replayed);
        ids.insert(response.orchestration.expect("orchestration").orchestration_id);
    }
    assert_eq!((fresh, ids.len()), (1, 1));
    assert_eq!(footprint(&conn, &project_id).await.0, 21);
    assert_eq!(scalar(&conn, &kept).await, 1, "the response under the request id is kept for replays");
}

backend_tests!(
    decides_on_a_seeded_project,
    context_packet_order_and_cache,
    the_packet_holds_the_top_ranked_preferences,
    long_history_is_cut_to_the_budget,
    preferences_rise_and_are_replaced,
    idempotent_replay_writes_nothing,
    bad_input_is_refused_and_writes_nothing,
    other_tenants_projects_are_not_found,
    degraded_when_memory_cannot_be_read,
    failed_write_is_unavailable_and_stores_nothing,
    stream_reports_each_step_in_order,
    concurrent_orchestrations_are_all_stored,
);
