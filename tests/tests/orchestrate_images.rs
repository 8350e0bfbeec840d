//! Images attached to Orchestrate and OrchestrateStream, end to end on SQLite
//! and PostgreSQL: accepted in the orchestration's own transaction, answered
//! at once with the images pending, analysed in the background, their events
//! streamed before `completed`, and their facts turned into preferences that
//! later prompts see; a `kill -9` mid-analysis loses and repeats nothing.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, error_field};
use brain_proto::v1::{
    self as pb, EventType, GetContextPacketRequest, ImageAnalysisStatus, ImageFactsEvent, ImageInput,
    ListMemoriesRequest, MemorySource, MemoryType, OrchestrateRequest, OrchestrateStreamRequest, Tool,
    orchestrate_stream_response::Event,
};
use common::*;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn options() -> ServerOptions {
    ServerOptions::new().set("job_workers", 2).set("job_poll_interval_ms", 200).set("allow_private_image_urls", true)
}

fn request(project_id: &str, prompt: &str, images: Vec<ImageInput>) -> OrchestrateRequest {
    OrchestrateRequest { project_id: project_id.into(), prompt: prompt.into(), images, ..Default::default() }
}

fn stream_request(req: &OrchestrateRequest, image_wait: Option<Duration>) -> OrchestrateStreamRequest {
    OrchestrateStreamRequest {
        project_id: req.project_id.clone(),
        prompt: req.prompt.clone(),
        images: req.images.clone(),
        request_id: req.request_id.clone(),
        token_budget: req.token_budget,
        image_wait: image_wait.map(|d| prost_types::Duration { seconds: 0, nanos: d.as_nanos() as i32 }),
    }
}

fn tool_call(o: &pb::Orchestration) -> &pb::ToolCall {
    match o.decision.as_ref().and_then(|d| d.outcome.as_ref()) {
        Some(pb::decision::Outcome::ToolCall(call)) => call,
        other => panic!("expected a tool call, got {other:?}"),
    }
}

/// Every message of an OrchestrateStream, until it ends.
async fn stream_all(server: &Server, req: OrchestrateStreamRequest) -> Vec<Event> {
    let mut client = server.orchestrator(None).await;
    let mut messages = client.orchestrate_stream(req).await.expect("stream").into_inner();
    let mut events = Vec::new();
    while let Some(message) =
        tokio::time::timeout(WAIT, messages.message()).await.expect("stream stalled").expect("stream message")
    {
        events.push(message.event.expect("event"));
    }
    events
}

async fn count(db: &TestDb, sql: &str) -> String {
    query_row(db, sql).await.and_then(|r| r.into_iter().next().flatten()).unwrap_or_default()
}

async fn orchestrate_returns_at_once_and_late_facts_become_preferences(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Mood board").await;
    let bytes = png();
    let held = host.add("held.png", bytes.clone(), Behavior::Stall);
    let mut client = server.orchestrator(None).await;

    let req = request(
        &project_id,
        "build a new scene from these mockups",
        vec![inline(bytes.clone(), "inline-shot"), by_url(&held, "linked-shot")],
    );
    let response = client.orchestrate(req).await.expect("orchestrate").into_inner();
    let o = response.orchestration.expect("orchestration");

    // The answer does not wait for the analysis: the linked image is still being downloaded.
    let ids = ["inline-shot", "linked-shot"];
    assert_eq!(o.images.iter().map(|a| a.image_id.as_str()).collect::<Vec<_>>(), ids);
    for image in &o.images {
        assert_eq!(image.status(), ImageAnalysisStatus::Pending, "{image:?}");
        assert_eq!(image.orchestration_id, o.orchestration_id);
        assert_eq!(image.project_id, project_id);
    }
    let context = o.context.as_ref().expect("context");
    assert_eq!(context.pending_image_ids, ids, "the packet lists the images being analysed");
    for id in ids {
        assert!(o.enhanced_prompt.contains(id), "the enhanced prompt names {id}:\n{}", o.enhanced_prompt);
    }
    let call = tool_call(&o);
    assert_eq!(call.tool(), Tool::CreateSceneFromImage);
    assert_eq!(call.params.as_ref().expect("params").image_ids, ids, "the decision works from the attached images");
    assert!(o.timings.as_ref().expect("timings").image_enqueue_ms > 0.0);
    host.wait_hits("held.png", 1, WAIT).await;

    // The facts arrive later, as this orchestration's events.
    let mut mine = watch_filtered(&server, &project_id, 0, &o.orchestration_id).await;
    let first = events(&mut mine, 2, WAIT).await;
    assert!(first.iter().all(|e| e.image_id == "inline-shot" && e.orchestration_id == o.orchestration_id));
    let processed = &first[1];
    assert_eq!(processed.r#type(), EventType::ImageFactsProcessed);
    let mood = processed.facts.as_ref().expect("facts").mood.clone();
    let derived = processed.derived_preferences.iter().find(|m| m.key == "preferred_mood").expect("mood");
    assert_eq!((derived.value.as_str(), derived.confidence), (mood.as_str(), 0.7));

    // Meanwhile the context still shows the held image as pending, and the first one's facts.
    let mut orchestrator = server.orchestrator(None).await;
    let packet = orchestrator
        .get_context_packet(GetContextPacketRequest { project_id: project_id.clone(), ..Default::default() })
        .await
        .expect("context")
        .into_inner()
        .context
        .expect("packet");
    assert_eq!(packet.pending_image_ids, ["linked-shot"]);
    assert_eq!(packet.image_facts.iter().map(|f| f.image_id.as_str()).collect::<Vec<_>>(), ["inline-shot"]);

    host.release();
    let second = events(&mut mine, 2, WAIT).await;
    assert!(second.iter().all(|e| e.image_id == "linked-shot"));
    assert_eq!(second[1].r#type(), EventType::ImageFactsProcessed);

    // The same look twice: the preference rose, and the next prompt's context carries it.
    let mut projects = server.projects(None).await;
    let preferences = projects
        .list_memories(ListMemoriesRequest {
            project_id: project_id.clone(),
            r#type: MemoryType::UserPreference as i32,
            ..Default::default()
        })
        .await
        .expect("memories")
        .into_inner()
        .memories;
    let stored = preferences.iter().find(|m| m.key == "preferred_mood").expect("preferred_mood");
    assert_eq!(stored.source(), MemorySource::Image);
    assert!((stored.confidence - 0.8).abs() < 1e-9, "{stored:?}");
    assert_eq!(stored.occurrences, 2);

    let next = client
        .orchestrate(request(&project_id, "add a closing scene with the team photo", vec![]))
        .await
        .expect("orchestrate")
        .into_inner()
        .orchestration
        .expect("orchestration");
    let context = next.context.expect("context");
    assert!(context.pending_image_ids.is_empty(), "{:?}", context.pending_image_ids);
    let facts: HashSet<&str> = context.image_facts.iter().map(|f| f.image_id.as_str()).collect();
    assert_eq!(facts, HashSet::from(ids));
    assert!(context.preferences.iter().any(|m| m.key == "preferred_mood" && m.value == mood));
    assert!(next.enhanced_prompt.contains(&mood), "{}", next.enhanced_prompt);

    let row = query_row(
        &db,
        &format!(
            "SELECT CAST(image_count AS TEXT) FROM orchestrations WHERE id = '{}'",
            o.orchestration_id.replace('\'', "")
        ),
    )
    .await;
    assert_eq!(row, Some(vec![Some("2".into())]));
    let jobs = count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE status = 'succeeded'").await;
    assert_eq!(jobs, "2");
}

async fn stream_carries_its_own_image_events_before_completed(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Stream").await;
    // Another image of the project, accepted outside the orchestration: not on its stream.
    let mut all = watch(&server, &project_id, 0).await;
    analyze(&server, &project_id, vec![inline(png(), "unrelated")]).await;
    events(&mut all, 2, WAIT).await;

    let req = OrchestrateRequest {
        request_id: "stream-with-images".into(),
        ..request(
            &project_id,
            "what colors are used in these images?",
            vec![inline(png(), "good"), inline(truncated_png(), "broken")],
        )
    };
    let events = stream_all(&server, stream_request(&req, None)).await;
    let (head, rest) = events.split_at(2);
    let [Event::ContextBuilt(built), Event::DecisionMade(made)] = head else {
        panic!("expected context and decision first, got {events:?}");
    };
    let Some((Event::Completed(done), image_events)) = rest.split_last() else {
        panic!("expected completion last, got {events:?}");
    };
    let context = built.context.as_ref().expect("context");
    assert_eq!(context.pending_image_ids, ["good", "broken"]);
    let o = done.orchestration.as_ref().expect("orchestration");
    assert_eq!(made.orchestration_id, o.orchestration_id);
    assert!(done.pending_image_ids.is_empty(), "every image's final event arrived: {:?}", done.pending_image_ids);
    assert!(!done.replayed);

    let images: Vec<&ImageFactsEvent> = image_events
        .iter()
        .map(|e| match e {
            Event::ImageEvent(e) => e,
            other => panic!("expected image events between decision and completion, got {other:?}"),
        })
        .collect();
    assert!(images.iter().all(|e| e.orchestration_id == o.orchestration_id), "{images:?}");
    let of = |id: &str| images.iter().filter(|e| e.image_id == id).map(|e| e.r#type()).collect::<Vec<_>>();
    assert_eq!(of("good"), [EventType::ImageFactsReady, EventType::ImageFactsProcessed]);
    assert_eq!(of("broken"), [EventType::ImageFactsFailed]);
    assert_eq!(images.len(), 3, "nothing of the unrelated image: {images:?}");
    let failed = images.iter().find(|e| e.image_id == "broken").expect("failed event");
    assert!(failed.error.contains("corrupt"), "{}", failed.error);
    let cursors: Vec<u64> = images.iter().map(|e| e.cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "in cursor order: {cursors:?}");

    // A retry with the same request_id replays the record and the same image events.
    let replay = stream_all(&server, stream_request(&req, None)).await;
    let Some(Event::Completed(again)) = replay.last() else { panic!("{replay:?}") };
    assert!(again.replayed);
    assert_eq!(again.orchestration.as_ref().map(|o| &o.orchestration_id), Some(&o.orchestration_id));
    let replayed: Vec<&ImageFactsEvent> =
        replay.iter().filter_map(|e| if let Event::ImageEvent(e) = e { Some(e) } else { None }).collect();
    assert_eq!(replayed, images);
    let stored = count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM image_analyses").await;
    assert_eq!(stored, "3", "the replay accepted nothing new");
}

async fn stream_completes_when_the_wait_runs_out(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Slow images").await;
    let slow = host.add("slow.png", png(), Behavior::Stall);
    let req = request(&project_id, "make the intro match this image", vec![by_url(&slow, "slow")]);
    let events = stream_all(&server, stream_request(&req, Some(Duration::from_millis(300)))).await;
    let Some(Event::Completed(done)) = events.last() else { panic!("{events:?}") };
    assert_eq!(done.pending_image_ids, ["slow"], "still being analysed when the wait ran out");
    assert!(!events.iter().any(|e| matches!(e, Event::ImageEvent(_))), "{events:?}");

    // It completes in the background all the same.
    let o = done.orchestration.as_ref().expect("orchestration");
    let mut mine = watch_filtered(&server, &project_id, 0, &o.orchestration_id).await;
    host.release();
    let later = events_of(&mut mine).await;
    assert_eq!(later, [EventType::ImageFactsReady, EventType::ImageFactsProcessed]);
}

async fn events_of(stream: &mut tonic::Streaming<pb::WatchImageFactsResponse>) -> Vec<EventType> {
    events(stream, 2, WAIT).await.iter().map(ImageFactsEvent::r#type).collect()
}

async fn images_share_the_orchestrations_fate(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "All or nothing").await;
    let mut client = server.orchestrator(None).await;
    analyze(&server, &project_id, vec![inline(png(), "taken")]).await;
    let before = count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM image_analyses").await;

    // An image id the project already has: the whole orchestration is refused and nothing of it stays.
    let status = assert_error(
        client
            .orchestrate(request(
                &project_id,
                "build a new scene from these mockups",
                vec![inline(png(), "fresh"), inline(png(), "taken")],
            ))
            .await,
        Code::InvalidArgument,
        "IMAGE_ID_TAKEN",
    );
    assert_eq!(error_field(&status).as_deref(), Some("images[1].image_id"), "{status:?}");
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM orchestrations").await, "0");
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM conversation_turns").await, "0");
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM image_analyses").await, before);
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE subject_id = 'fresh'").await, "0");

    // Idempotency covers the images: the same request replays, other images under the same key are refused.
    let keyed = |images| OrchestrateRequest {
        request_id: "with-images".into(),
        ..request(&project_id, "build a new scene from these mockups", images)
    };
    let first = client.orchestrate(keyed(vec![inline(png(), "")])).await.expect("first").into_inner();
    let again = client.orchestrate(keyed(vec![inline(png(), "")])).await.expect("retry").into_inner();
    assert!(again.replayed);
    assert_eq!(again.orchestration, first.orchestration, "the same record, with the same server-assigned image id");
    let other = encode(&picture(20, 20, [1, 2, 3], [4, 5, 6]), image::ImageFormat::Png);
    assert_error(client.orchestrate(keyed(vec![inline(other, "")])).await, Code::InvalidArgument, "REQUEST_ID_REUSED");
    assert_eq!(count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM orchestrations").await, "1");
    let jobs = count(&db, "SELECT CAST(COUNT(*) AS TEXT) FROM jobs").await;
    assert_eq!(jobs, "2", "one for the AnalyzeImages image, one for the orchestration's");
}

/// `kill -9` while the images an Orchestrate call attached are mid-analysis:
/// after a restart every job completes, and the stored log (and so a watch from
/// cursor 0) holds exactly one READY and one PROCESSED per image; the image that
/// had finished before the crash is not analysed again.
async fn kill9_mid_analysis_of_orchestrated_images_then_restart_completes(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let held_png = encode(&picture(48, 32, [20, 120, 220], [240, 240, 240]), image::ImageFormat::Png);
    let first_url = host.add("held-1.png", png(), Behavior::Stall);
    let second_url = host.add("held-2.png", held_png, Behavior::Stall);
    // Three workers claim the three jobs at once; the two linked images stall in their download,
    // holding their leases, while the inline one finishes.
    let opts = || options().set("job_workers", 3).set("job_lease_ms", 1_500).set("stream_heartbeat_ms", 200);
    let first = Server::start_with(&db, opts()).await;
    let project_id = project(&first, "Crash mid-orchestration").await;
    let mut client = first.orchestrator(None).await;
    let ids = ["inline-shot", "linked-1", "linked-2"];
    let o = client
        .orchestrate(request(
            &project_id,
            "build a new scene from these mockups",
            vec![inline(png(), ids[0]), by_url(&first_url, ids[1]), by_url(&second_url, ids[2])],
        ))
        .await
        .expect("orchestrate")
        .into_inner()
        .orchestration
        .expect("orchestration");
    assert_eq!(o.images.iter().map(|a| a.image_id.as_str()).collect::<Vec<_>>(), ids);
    assert!(o.images.iter().all(|a| a.status() == ImageAnalysisStatus::Pending), "{:?}", o.images);

    host.wait_hits("held-1.png", 1, WAIT).await;
    host.wait_hits("held-2.png", 1, WAIT).await;
    let mut before = watch(&first, &project_id, 0).await;
    let finished_before = events(&mut before, 2, WAIT).await;
    assert!(finished_before.iter().all(|e| e.image_id == "inline-shot"), "{finished_before:?}");
    for id in ["linked-1", "linked-2"] {
        assert_eq!(image_status(&first, &project_id, id).await, ImageAnalysisStatus::Running, "{id}");
    }
    let leased = count(
        &db,
        &format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM jobs WHERE status = 'running' AND lease_owner LIKE '{}:%'",
            first.pid()
        ),
    )
    .await;
    assert_eq!(leased, "2", "both linked images are leased by the process about to die");
    first.kill9();
    drop(first);
    host.release();

    let second = Server::start_with(&db, opts()).await;
    let mut all = watch(&second, &project_id, 0).await;
    let log = events(&mut all, 6, WAIT).await;
    assert_eq!(log.iter().map(|e| e.cursor).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>(), "{log:?}");
    assert_eq!(log[..2], finished_before[..], "the events stored before the crash replay unchanged");
    assert!(log.iter().all(|e| e.orchestration_id == o.orchestration_id), "{log:?}");
    for id in ids {
        let types: Vec<EventType> = log.iter().filter(|e| e.image_id == id).map(ImageFactsEvent::r#type).collect();
        assert_eq!(types, [EventType::ImageFactsReady, EventType::ImageFactsProcessed], "{id}");
    }
    // Nothing follows: the next message is a heartbeat naming cursor 6 as the latest.
    let message = tokio::time::timeout(Duration::from_secs(10), all.message())
        .await
        .expect("a heartbeat after the last event")
        .expect("stream")
        .expect("open");
    match message.message {
        Some(pb::watch_image_facts_response::Message::Heartbeat(h)) => assert_eq!(h.latest_cursor, 6),
        other => panic!("nothing may follow the six events, got {other:?}"),
    }
    let stored = query_row(
        &db,
        &format!(
            "SELECT CAST(COUNT(*) AS TEXT), CAST(COUNT(DISTINCT image_id || ':' || event_type) AS TEXT) \
             FROM events WHERE project_id = '{project_id}'"
        ),
    )
    .await;
    assert_eq!(stored, Some(vec![Some("6".into()), Some("6".into())]), "no duplicate stored events");
    let mut mine = watch_filtered(&second, &project_id, 0, &o.orchestration_id).await;
    assert_eq!(events(&mut mine, 6, WAIT).await, log, "the orchestration's own stream sees the same log");

    // Each linked image was fetched once per attempt; the finished one was not redone.
    assert_eq!((host.hits("held-1.png"), host.hits("held-2.png")), (2, 2));
    for (id, attempts) in [("inline-shot", "1"), ("linked-1", "2"), ("linked-2", "2")] {
        let job =
            query_row(&db, &format!("SELECT status, CAST(attempts AS TEXT) FROM jobs WHERE subject_id = '{id}'")).await;
        assert_eq!(job, Some(vec![Some("succeeded".into()), Some(attempts.into())]), "{id}");
        assert_eq!(image_status(&second, &project_id, id).await, ImageAnalysisStatus::Ready, "{id}");
    }
    let packet = second
        .orchestrator(None)
        .await
        .get_context_packet(GetContextPacketRequest { project_id: project_id.clone(), ..Default::default() })
        .await
        .expect("context")
        .into_inner()
        .context
        .expect("packet");
    assert!(packet.pending_image_ids.is_empty(), "{:?}", packet.pending_image_ids);
    let facts: HashSet<&str> = packet.image_facts.iter().map(|f| f.image_id.as_str()).collect();
    assert_eq!(facts, HashSet::from(ids));
}

async fn image_status(server: &Server, project_id: &str, image_id: &str) -> ImageAnalysisStatus {
    let mut client = server.image_facts(None).await;
    client
        .get_image_facts(pb::GetImageFactsRequest { project_id: project_id.into(), image_id: image_id.into() })
        .await
        .expect("get image facts")
        .into_inner()
        .analysis
        .expect("analysis")
        .status()
}

backend_tests!(
    orchestrate_returns_at_once_and_late_facts_become_preferences,
    stream_carries_its_own_image_events_before_completed,
    stream_completes_when_the_wait_runs_out,
    images_share_the_orchestrations_fate,
    kill9_mid_analysis_of_orchestrated_images_then_restart_completes,
);
