//! ImageFactsService end to end: accept images, analyse them in durable
//! background jobs, and deliver their facts as stored events, on SQLite and
//! PostgreSQL.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, error_field};
use brain_proto::v1::{
    AnalyzeImagesRequest, EventType, GetImageFactsRequest, ImageAnalysisStatus, ImageInput, ListImageFactsRequest,
    ListMemoriesRequest, MemorySource, WatchImageFactsRequest, watch_image_facts_response::Message,
};
use common::*;
use image::ImageFormat;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn options() -> ServerOptions {
    ServerOptions::new().set("job_workers", 2).set("job_poll_interval_ms", 200)
}

async fn every_format_is_analysed_and_delivered(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Formats").await;
    let mut stream = watch(&server, &project_id, 0).await;

    let img = picture(80, 40, [240, 200, 40], [250, 120, 20]);
    let inputs = vec![
        inline(encode(&img, ImageFormat::Png), "a-png"),
        inline(encode(&img, ImageFormat::Jpeg), "b-jpeg"),
        inline(encode(&img, ImageFormat::WebP), "c-webp"),
        inline(encode(&img, ImageFormat::Gif), "d-gif"),
    ];
    let accepted = analyze(&server, &project_id, inputs).await;
    let ids: Vec<&str> = accepted.iter().map(|a| a.image_id.as_str()).collect();
    assert_eq!(ids, ["a-png", "b-jpeg", "c-webp", "d-gif"], "request order");
    assert!(accepted.iter().all(|a| a.status() == ImageAnalysisStatus::Pending));
    let mimes: Vec<&str> = accepted.iter().map(|a| a.mime_type.as_str()).collect();
    assert_eq!(mimes, ["image/png", "image/jpeg", "image/webp", "image/gif"]);

    let events = events(&mut stream, 8, WAIT).await;
    let cursors: Vec<u64> = events.iter().map(|e| e.cursor).collect();
    assert_eq!(cursors, (1..=8).collect::<Vec<_>>(), "cursors are dense and ordered");
    for id in ["a-png", "b-jpeg", "c-webp", "d-gif"] {
        let mine: Vec<_> = events.iter().filter(|e| e.image_id == id).collect();
        let types: Vec<EventType> = mine.iter().map(|e| e.r#type()).collect();
        assert_eq!(types, [EventType::ImageFactsReady, EventType::ImageFactsProcessed], "{id}");
        let facts = mine[0].facts.as_ref().expect("facts on READY");
        assert_eq!((facts.width, facts.height), (80, 40), "{id}");
        assert!(!facts.mood.is_empty() && !facts.palette.is_empty(), "{id}: {facts:?}");
        assert_eq!(facts.content_sha256.len(), 64);
        assert!(mine[1].facts.is_some(), "PROCESSED carries the facts too");
        assert!(!mine[1].derived_preferences.is_empty(), "PROCESSED carries the derived preferences");
        assert!(mine.iter().all(|e| e.create_time.is_some() && e.project_id == project_id));
    }

    // GetImageFacts (twice: the second read is served by the facts cache).
    let mut client = server.image_facts(None).await;
    for _ in 0..2 {
        let got = client
            .get_image_facts(GetImageFactsRequest { project_id: project_id.clone(), image_id: "c-webp".into() })
            .await
            .expect("get")
            .into_inner()
            .analysis
            .expect("analysis");
        assert_eq!(got.status(), ImageAnalysisStatus::Ready);
        assert_eq!(got.attempts, 1);
        assert_eq!(got.mime_type, "image/webp");
        assert!(got.complete_time.is_some());
        assert_eq!(got.facts.expect("facts").width, 80);
    }

    // ListImageFacts pages through all four, oldest first.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_image_facts(ListImageFactsRequest { project_id: project_id.clone(), page_size: 3, page_token: token })
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.analyses.iter().map(|a| (a.image_id.clone(), a.status())));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|(_, s)| *s == ImageAnalysisStatus::Ready), "{seen:?}");
    let ids: HashSet<_> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["a-png", "b-jpeg", "c-webp", "d-gif"]));
}

async fn bad_input_is_refused_and_nothing_is_half_written(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options().set("max_image_bytes", 50_000)).await;
    let project_id = project(&server, "Bad input").await;
    let mut client = server.image_facts(None).await;
    let request = |images: Vec<ImageInput>| AnalyzeImagesRequest { project_id: project_id.clone(), images };

    let status = assert_error(
        client.analyze_images(request(vec![inline(png(), "ok"), inline(b"%PDF-1.7 not an image".to_vec(), "")])).await,
        Code::InvalidArgument,
        "IMAGE_UNSUPPORTED_TYPE",
    );
    assert_eq!(error_field(&status).as_deref(), Some("images[1].data"));
    let mut big_png = b"\x89PNG\r\n\x1a\n".to_vec();
    big_png.resize(50_001, 7);
    assert_error(
        client.analyze_images(request(vec![inline(big_png, "")])).await,
        Code::ResourceExhausted,
        "IMAGE_TOO_LARGE",
    );
    assert_error(
        client.analyze_images(request((0..9).map(|_| inline(png(), "")).collect())).await,
        Code::ResourceExhausted,
        "TOO_MANY_IMAGES",
    );
    assert_error(
        client.analyze_images(request(vec![by_url("ftp://example.com/a.png", "")])).await,
        Code::InvalidArgument,
        "IMAGE_URL_INVALID",
    );
    assert_error(
        client.analyze_images(request(vec![by_url("http://127.0.0.1:9/a.png", "")])).await,
        Code::InvalidArgument,
        "IMAGE_URL_FORBIDDEN",
    );
    assert_error(
        client.analyze_images(request(vec![by_url("http://169.254.169.254/latest/meta-data", "")])).await,
        Code::InvalidArgument,
        "IMAGE_URL_FORBIDDEN",
    );
    assert_error(
        client.analyze_images(request(vec![inline(png(), "twice"), inline(png(), "twice")])).await,
        Code::InvalidArgument,
        "IMAGE_ID_TAKEN",
    );
    assert_error(client.analyze_images(request(vec![])).await, Code::InvalidArgument, "MISSING_FIELD");
    assert_error(
        client
            .analyze_images(request(vec![ImageInput {
                source: None,
                mime_type: String::new(),
                image_id: String::new(),
            }]))
            .await,
        Code::InvalidArgument,
        "MISSING_FIELD",
    );
    assert_error(
        client.analyze_images(request(vec![inline(png(), "bad id!")])).await,
        Code::InvalidArgument,
        "INVALID_ID",
    );
    assert_error(
        client
            .analyze_images(AnalyzeImagesRequest {
                project_id: "no-such-project".into(),
                images: vec![inline(png(), "")],
            })
            .await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );

    // Nothing of the refused requests was written.
    let listed = client
        .list_image_facts(ListImageFactsRequest {
            project_id: project_id.clone(),
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.analyses.is_empty(), "{:?}", listed.analyses);

    // An id taken by an earlier request refuses the whole new request.
    analyze(&server, &project_id, vec![inline(png(), "taken")]).await;
    let status = assert_error(
        client.analyze_images(request(vec![inline(png(), "fresh"), inline(png(), "taken")])).await,
        Code::InvalidArgument,
        "IMAGE_ID_TAKEN",
    );
    assert_eq!(error_field(&status).as_deref(), Some("images[1].image_id"));
    assert_error(
        client.get_image_facts(GetImageFactsRequest { project_id: project_id.clone(), image_id: "fresh".into() }).await,
        Code::NotFound,
        "IMAGE_NOT_FOUND",
    );
    assert_error(
        client.get_image_facts(GetImageFactsRequest { project_id: "nope".into(), image_id: "taken".into() }).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );
    assert_error(
        client
            .list_image_facts(ListImageFactsRequest {
                project_id: project_id.clone(),
                page_size: -1,
                page_token: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_PAGE_SIZE",
    );
    let bogus = client
        .watch_image_facts(WatchImageFactsRequest {
            project_id: "nope".into(),
            after_cursor: 0,
            orchestration_id: String::new(),
        })
        .await;
    assert_error(bogus.map(|_| ()), Code::NotFound, "PROJECT_NOT_FOUND");
    let ahead = client
        .watch_image_facts(WatchImageFactsRequest {
            project_id: project_id.clone(),
            after_cursor: 1_000,
            orchestration_id: String::new(),
        })
        .await;
    assert_error(ahead.map(|_| ()), Code::InvalidArgument, "INVALID_FIELD");
}

async fn truncated_and_corrupt_files_fail_with_a_reason(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Broken files").await;
    let mut stream = watch(&server, &project_id, 0).await;
    analyze(&server, &project_id, vec![inline(truncated_png(), "truncated"), inline(corrupt_png(), "corrupt")]).await;
    let failed = events(&mut stream, 2, WAIT).await;
    for event in &failed {
        assert_eq!(event.r#type(), EventType::ImageFactsFailed, "{event:?}");
        assert!(!event.error.is_empty(), "a FAILED event says why: {event:?}");
        assert!(event.facts.is_none());
    }
    let ids: HashSet<_> = failed.iter().map(|e| e.image_id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["truncated", "corrupt"]));

    let mut client = server.image_facts(None).await;
    let got = client
        .get_image_facts(GetImageFactsRequest { project_id: project_id.clone(), image_id: "truncated".into() })
        .await
        .expect("get")
        .into_inner()
        .analysis
        .expect("analysis");
    assert_eq!(got.status(), ImageAnalysisStatus::Failed);
    assert!(!got.error.is_empty());
    assert_eq!(got.attempts, 1, "a corrupt file is not retried");

    // The server keeps working.
    analyze(&server, &project_id, vec![inline(png(), "fine")]).await;
    let ok = events(&mut stream, 2, WAIT).await;
    assert_eq!(ok[0].r#type(), EventType::ImageFactsReady);
    assert_eq!(ok[0].image_id, "fine");
    assert_eq!(ok[0].cursor, 3);
}

async fn image_preferences_gain_confidence_when_repeated(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Preferences").await;
    let mut stream = watch(&server, &project_id, 0).await;
    let bytes = png();

    analyze(&server, &project_id, vec![inline(bytes.clone(), "first")]).await;
    let processed = events(&mut stream, 2, WAIT).await.pop().expect("processed");
    assert_eq!(processed.r#type(), EventType::ImageFactsProcessed);
    let mood = processed.facts.as_ref().expect("facts").mood.clone();
    let derived = processed.derived_preferences.iter().find(|m| m.key == "preferred_mood").expect("mood preference");
    assert_eq!(derived.value, mood);
    assert!((derived.confidence - 0.7).abs() < 1e-9, "{derived:?}");
    assert_eq!(derived.source(), MemorySource::Image);
    assert!(derived.token_count > 0);
    assert!(processed.derived_preferences.iter().any(|m| m.key == "preferred_colors"));

    let memory = |confidence: f64| {
        let project_id = project_id.clone();
        let server = &server;
        async move {
            let mut projects = server.projects(None).await;
            let items = projects
                .list_memories(ListMemoriesRequest { project_id, page_size: 0, ..Default::default() })
                .await
                .expect("list memories")
                .into_inner()
                .memories;
            let item = items.iter().find(|m| m.key == "preferred_mood").expect("preferred_mood stored").clone();
            assert!((item.confidence - confidence).abs() < 1e-9, "{item:?}");
            item
        }
    };
    let first = memory(0.7).await;
    assert_eq!(first.occurrences, 1);

    // The same look again: the same preference, more confident.
    analyze(&server, &project_id, vec![inline(bytes, "second")]).await;
    let processed = events(&mut stream, 2, WAIT).await.pop().expect("processed");
    let derived = processed.derived_preferences.iter().find(|m| m.key == "preferred_mood").expect("mood preference");
    assert!((derived.confidence - 0.8).abs() < 1e-9, "{derived:?}");
    let second = memory(0.8).await;
    assert_eq!(second.occurrences, 2);
    assert_eq!(second.memory_id, first.memory_id);
}

async fn heartbeats_keep_idle_streams_alive(db: Arc<TestDb>) {
    let server = Server::start_with(&db, options().set("stream_heartbeat_ms", 200)).await;
    let project_id = project(&server, "Idle").await;
    let mut stream = watch(&server, &project_id, 0).await;
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a heartbeat within 5 s")
            .expect("stream")
            .expect("open");
        match message.message {
            Some(Message::Heartbeat(h)) => {
                assert_eq!(h.latest_cursor, 0);
                assert!(h.time.is_some());
            }
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
    analyze(&server, &project_id, vec![inline(png(), "x")]).await;
    let last = events(&mut stream, 2, WAIT).await.pop().expect("event");
    let heartbeat = loop {
        let message = stream.message().await.expect("stream").expect("open");
        if let Some(Message::Heartbeat(h)) = message.message {
            break h;
        }
    };
    assert_eq!(heartbeat.latest_cursor, last.cursor, "heartbeats carry the latest cursor");

    // A stream filtered to an orchestration sees none of AnalyzeImages' events, only heartbeats.
    let mut filtered = watch_filtered(&server, &project_id, 0, "some-orchestration").await;
    let message = tokio::time::timeout(Duration::from_secs(5), filtered.message())
        .await
        .expect("heartbeat")
        .expect("stream")
        .expect("open");
    assert!(matches!(message.message, Some(Message::Heartbeat(_))), "{message:?}");
}

async fn streams_end_cleanly_on_sigterm(db: Arc<TestDb>) {
    let mut server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Shutdown").await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(watch(&server, &project_id, 0).await);
    }
    server.sigterm();
    for stream in &mut streams {
        let end = tokio::time::timeout(Duration::from_secs(10), stream.message()).await.expect("stream ends promptly");
        assert!(matches!(end, Ok(None)), "the stream ends with OK, not an error: {end:?}");
    }
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
}

backend_tests!(
    every_format_is_analysed_and_delivered,
    bad_input_is_refused_and_nothing_is_half_written,
    truncated_and_corrupt_files_fail_with_a_reason,
    image_preferences_gain_confidence_when_repeated,
    heartbeats_keep_idle_streams_alive,
    streams_end_cleanly_on_sigterm,
);
