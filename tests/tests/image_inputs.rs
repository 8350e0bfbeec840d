//! Real images in, facts out: what the pixel analyser finds in generated
//! images sent inline and by URL (served on loopback), hostile files failing
//! their job with a reason, and internal addresses never fetched.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, assert_error, backend_tests, error_field};
use brain_proto::v1::{
    AnalyzeImagesRequest, EventType, GetImageFactsRequest, ImageAnalysisStatus, ImageFacts, ImageFactsEvent,
    Orientation, TypographyStatus,
};
use common::*;
use image::ImageFormat;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

fn options() -> ServerOptions {
    ServerOptions::new().set("job_workers", 2).set("job_poll_interval_ms", 200)
}

/// Whether "#rrggbb" is within `tolerance` of `rgb` on every channel.
fn near(hex: &str, rgb: [u8; 3], tolerance: i32) -> bool {
    let channel = |i: usize| i32::from_str_radix(hex.get(1 + 2 * i..3 + 2 * i).unwrap_or("zz"), 16).ok();
    (0..3).all(|i| channel(i).is_some_and(|c| (c - i32::from(rgb[i])).abs() <= tolerance))
}

/// The facts of each image's READY event.
fn ready_facts(events: &[ImageFactsEvent]) -> HashMap<String, ImageFacts> {
    events
        .iter()
        .filter(|e| e.r#type() == EventType::ImageFactsReady)
        .map(|e| (e.image_id.clone(), e.facts.clone().expect("READY carries facts")))
        .collect()
}

async fn get(server: &Server, project_id: &str, image_id: &str) -> brain_proto::v1::ImageAnalysis {
    let mut client = server.image_facts(None).await;
    client
        .get_image_facts(GetImageFactsRequest { project_id: project_id.into(), image_id: image_id.into() })
        .await
        .expect("get image facts")
        .into_inner()
        .analysis
        .expect("analysis")
}

async fn facts_describe_the_pixels_inline_and_by_url(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let server = Server::start_with(&db, options().set("allow_private_image_urls", true)).await;
    let project_id = project(&server, "Pixels").await;
    let mut stream = watch(&server, &project_id, 0).await;

    let red = [220, 40, 40];
    let blue = [30, 30, 170];
    let halves = encode(&picture(120, 80, red, blue), ImageFormat::Png);
    let corner = encode(&rect_on(300, 300, [15, 15, 20], [250, 250, 250], (0, 0, 100, 100)), ImageFormat::Jpeg);
    let url = host.add("halves.png", halves.clone(), Behavior::Stall);

    // AnalyzeImages answers at once: the URL's download is still being held by the host.
    let accepted = analyze(
        &server,
        &project_id,
        vec![inline(halves.clone(), "halves"), inline(corner, "corner"), by_url(&url, "halves-by-url")],
    )
    .await;
    assert!(accepted.iter().all(|a| a.status() == ImageAnalysisStatus::Pending), "{accepted:?}");
    assert_eq!(accepted[2].source_url, url);
    assert_eq!(accepted[2].mime_type, "", "a URL's type is known once fetched");
    host.wait_hits("halves.png", 1, WAIT).await;
    assert_eq!(get(&server, &project_id, "halves-by-url").await.status(), ImageAnalysisStatus::Running);

    let first = events(&mut stream, 4, WAIT).await;
    assert!(first.iter().all(|e| e.image_id != "halves-by-url"), "the held download has not finished");
    host.release();
    let rest = events(&mut stream, 2, WAIT).await;
    let facts = ready_facts(&[first, rest].concat());

    // Two known colours side by side: both in the palette, half each.
    let two = &facts["halves"];
    assert_eq!((two.width, two.height), (120, 80));
    assert_eq!(two.orientation(), Orientation::Landscape);
    assert!((two.aspect_ratio - 1.5).abs() < 1e-9, "{}", two.aspect_ratio);
    assert_eq!(two.typography.as_ref().expect("typography").status(), TypographyStatus::Unknown, "never invented");
    assert_eq!(two.analyzer, "pixels");
    let top: Vec<_> = two.palette.iter().take(2).collect();
    assert!(top.iter().all(|c| (c.proportion - 0.5).abs() < 0.05), "{:?}", two.palette);
    assert!(top.iter().any(|c| near(&c.hex, red, 24)), "red in {:?}", two.palette);
    assert!(top.iter().any(|c| near(&c.hex, blue, 24)), "blue in {:?}", two.palette);
    let total: f64 = two.palette.iter().map(|c| c.proportion).sum();
    assert!((total - 1.0).abs() < 1e-6, "{total}");

    // A bright square in the top-left corner of a dark frame carries the weight there.
    let square = &facts["corner"];
    let layout = square.layout.as_ref().expect("layout");
    assert_eq!(layout.dominant_region, "top-left", "{layout:?}");
    assert_eq!(layout.weight_grid.len(), 9);
    assert_eq!(square.orientation(), Orientation::Square);

    // The same bytes by URL give the same facts.
    let mut by_url = facts["halves-by-url"].clone();
    by_url.processing_ms = two.processing_ms;
    assert_eq!(&by_url, two);
    let fetched = get(&server, &project_id, "halves-by-url").await;
    assert_eq!(fetched.status(), ImageAnalysisStatus::Ready);
    assert_eq!(fetched.mime_type, "image/png");
    assert_eq!(fetched.byte_size, halves.len() as u64);
    assert_eq!(host.hits("halves.png"), 1);
}

async fn hostile_files_fail_their_job_with_a_reason(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    let server = Server::start_with(&db, options().set("allow_private_image_urls", true)).await;
    let project_id = project(&server, "Hostile").await;
    let mut stream = watch(&server, &project_id, 0).await;
    let html = host.add("page.png", b"<html><body>not an image</body></html>".to_vec(), Behavior::Serve);
    let bomb_url = host.add("bomb.png", png_bomb(50_000, 50_000), Behavior::Serve);
    analyze(
        &server,
        &project_id,
        vec![
            inline(png_bomb(100_000, 100_000), "bomb"),
            by_url(&bomb_url, "bomb-by-url"),
            by_url(&html, "html"),
            inline(truncated_png(), "truncated"),
        ],
    )
    .await;
    let failed = events(&mut stream, 4, WAIT).await;
    let reasons: HashMap<&str, &str> = failed
        .iter()
        .map(|e| {
            assert_eq!(e.r#type(), EventType::ImageFactsFailed, "{e:?}");
            (e.image_id.as_str(), e.error.as_str())
        })
        .collect();
    assert!(reasons["bomb"].contains("too large"), "{}", reasons["bomb"]);
    assert!(reasons["bomb-by-url"].contains("too large"), "{}", reasons["bomb-by-url"]);
    assert!(reasons["html"].contains("not a supported image"), "{}", reasons["html"]);
    assert!(reasons["truncated"].contains("corrupt"), "{}", reasons["truncated"]);
    for id in ["bomb", "bomb-by-url", "html", "truncated"] {
        let analysis = get(&server, &project_id, id).await;
        assert_eq!(analysis.status(), ImageAnalysisStatus::Failed, "{id}");
        assert_eq!(analysis.attempts, 1, "{id}: a permanent failure is not retried");
    }
    assert_eq!(host.hits("bomb.png"), 1);
    assert_eq!(host.hits("page.png"), 1);
    // Each is reported to error tracking as an ERROR tagged with its failure kind.
    let logs = server.logs();
    let reported: Vec<&str> =
        logs.lines().filter(|l| l.contains("ERROR") && l.contains("image analysis failed")).collect();
    assert_eq!(reported.len(), 4, "{logs}");
    assert!(reported.iter().all(|l| l.contains("image_analysis") && l.contains(&project_id)), "{reported:?}");
}

async fn internal_addresses_are_never_fetched(db: Arc<TestDb>) {
    let host = ImageHost::start().await;
    // The production default: private addresses refused.
    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "SSRF").await;
    let mut client = server.image_facts(None).await;

    // Literal addresses are refused before anything is stored.
    for url in [
        "http://127.0.0.1/a.png",
        "http://10.0.0.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://100.64.0.1/a.png",
        "http://0.0.0.0/a.png",
        "http://2130706433/a.png",
        &format!("http://{}/img/secret.png", host.addr),
    ] {
        let status = assert_error(
            client
                .analyze_images(AnalyzeImagesRequest {
                    project_id: project_id.clone(),
                    images: vec![inline(png(), "fine"), by_url(url, "internal")],
                })
                .await,
            Code::InvalidArgument,
            "IMAGE_URL_FORBIDDEN",
        );
        assert_eq!(error_field(&status).as_deref(), Some("images[1].url"), "{url}");
    }
    assert!(query_row(&db, "SELECT image_id FROM image_analyses").await.is_none(), "nothing was stored");

    // A host name is resolved at fetch time, and an internal answer is refused at connect.
    let mut stream = watch(&server, &project_id, 0).await;
    let url = host.add("secret.png", png(), Behavior::Serve);
    let by_name = url.replace("127.0.0.1", "localhost");
    analyze(&server, &project_id, vec![by_url(&by_name, "by-name")]).await;
    let failed = next_event(&mut stream, WAIT).await;
    assert_eq!(failed.r#type(), EventType::ImageFactsFailed);
    assert!(failed.error.contains("forbidden"), "{}", failed.error);
    assert_eq!(get(&server, &project_id, "by-name").await.attempts, 1, "a refused address is not retried");
    assert_eq!(host.hits("secret.png"), 0, "the internal host never saw a request");
}

/// IPv6 forms that embed the loopback address 127.0.0.1 (IPv4-translated, the form once accepted
/// and fetched, and mapped, compatible, NAT64, local-use NAT64, 6to4 and Teredo) are refused at
/// intake on both entry points, before any connection: a loopback listener on the port they name
/// counts none. With the development switch on, the same listener is reached, so the count works.
async fn embedded_loopback_addresses_are_refused_before_any_connection(db: Arc<TestDb>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the counting listener");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = connections.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let connected = || connections.load(std::sync::atomic::Ordering::SeqCst);

    let server = Server::start_with(&db, options()).await;
    let project_id = project(&server, "Embedded IPv4").await;
    let translated = format!("http://[::ffff:0:7f00:1]:{port}/a.png");
    let mut images = server.image_facts(None).await;
    for host in [
        "[::ffff:0:7f00:1]",   // IPv4-translated
        "[::ffff:7f00:1]",     // IPv4-mapped
        "[::7f00:1]",          // IPv4-compatible
        "[64:ff9b::7f00:1]",   // NAT64
        "[64:ff9b:1::7f00:1]", // local-use NAT64
        "[2002:7f00:1::1]",    // 6to4
        "[2001:0:7f00:1::1]",  // Teredo
        "127.0.0.1",
    ] {
        let url = format!("http://{host}:{port}/a.png");
        let status = assert_error(
            images
                .analyze_images(AnalyzeImagesRequest {
                    project_id: project_id.clone(),
                    images: vec![by_url(&url, "embedded")],
                })
                .await,
            Code::InvalidArgument,
            "IMAGE_URL_FORBIDDEN",
        );
        assert_eq!(error_field(&status).as_deref(), Some("images[0].url"), "{url}");
    }
    let mut orchestrator = server.orchestrator(None).await;
    let status = assert_error(
        orchestrator
            .orchestrate(brain_proto::v1::OrchestrateRequest {
                project_id: project_id.clone(),
                prompt: "make a scene from this".into(),
                images: vec![by_url(&translated, "embedded")],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "IMAGE_URL_FORBIDDEN",
    );
    assert!(status.message().contains("IPv4-translated"), "{status:?}");
    assert!(query_row(&db, "SELECT image_id FROM image_analyses").await.is_none(), "nothing was stored");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connected(), 0, "a refused address was connected to");
    drop(server);

    // The development switch lets private addresses through: the listener is reached.
    let open = Server::start_with(&db, options().set("allow_private_image_urls", true)).await;
    let accepted = analyze(
        &open,
        &project_id,
        vec![by_url(&format!("http://127.0.0.1:{port}/a.png"), "loopback"), by_url(&translated, "translated")],
    )
    .await;
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while connected() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the allowed fetch never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    accepting.abort();
}

backend_tests!(
    facts_describe_the_pixels_inline_and_by_url,
    hostile_files_fail_their_job_with_a_reason,
    internal_addresses_are_never_fetched,
    embedded_loopback_addresses_are_refused_before_any_connection,
);
