//! The `openai` vision backend against a loopback stand-in that speaks the
//! chat-completions wire format: a good answer is merged into the pixel facts;
//! malformed JSON, an off-schema answer, HTTP 500 and a slow model all leave
//! the pixel facts standing.

#[path = "support/images.rs"]
mod images;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use brain_server::config::{Config, OpenAiSettings};
use brain_server::model::{ImageFacts, TypographyStatus};
use brain_server::redact::Secret;
use brain_server::vision::Analyzer;
use brain_server::vision::openai::OpenAiVision;
use brain_server::vision::pixels::{PixelAnalyzer, PixelLimits};
use serde_json::{Value, json};

const GOOD: &str = r#"{"typography":{"status":"detected","font_families":["Futura","geometric sans-serif"],"style":"bold uppercase, white"},"layout":{"description":"Headline in the top third over a wide sky; the sun anchors the right."}}"#;

#[derive(Default)]
struct Seen {
    requests: Vec<(Option<String>, Value)>,
}

fn chat(content: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "vision-test",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

async fn completions(
    State(seen): State<Arc<Mutex<Seen>>>,
    Path(mode): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.lock().unwrap().requests.push((auth, body));
    match mode.as_str() {
        "good" => chat(GOOD),
        "fenced" => chat(&format!("```json\n{GOOD}\n```")),
        "malformed" => chat("{\"typography\": {\"status\": \"detected\", "),
        "schema" => {
            chat(r#"{"typography":{"status":"probably","font_families":[],"style":""},"layout":{"description":"x"}}"#)
        }
        "not-chat" => (StatusCode::OK, "<html>gateway</html>").into_response(),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            chat(GOOD)
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn stand_in() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new().route("/{mode}/v1/chat/completions", post(completions)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

fn limits() -> PixelLimits {
    PixelLimits { max_bytes: 20 << 20, max_pixels: 64_000_000 }
}

fn vision(addr: SocketAddr, mode: &str, timeout_ms: u64) -> OpenAiVision {
    OpenAiVision::new(
        PixelAnalyzer::new(limits()),
        OpenAiSettings {
            base_url: Secret::url(format!("http://{addr}/{mode}/v1/")),
            api_key: Some(Secret::new("test-key")),
            vision_model: "vision-test".into(),
            timeout: Duration::from_millis(timeout_ms),
            ..Config::default().openai
        },
    )
    .unwrap()
}

fn without_time(mut f: ImageFacts) -> ImageFacts {
    f.processing_ms = 0.0;
    f
}

#[tokio::test]
async fn a_good_answer_is_merged_into_the_pixel_facts() {
    let (addr, seen) = stand_in().await;
    let bytes = images::encode_rgb(&images::photo_like(160, 120), image::ImageFormat::Png);
    let pixels = PixelAnalyzer::new(limits()).analyze_sync(&bytes).unwrap();

    for mode in ["good", "fenced"] {
        let facts = vision(addr, mode, 5_000).analyze(&bytes).await.unwrap();
        assert_eq!(facts.analyzer, "openai:vision-test");
        assert_eq!(facts.typography.status, TypographyStatus::Detected);
        assert_eq!(facts.typography.font_families, vec!["Futura", "geometric sans-serif"]);
        assert_eq!(facts.typography.style, "bold uppercase, white");
        assert!(facts.layout.description.starts_with("Headline in the top third"));
        // Everything measured from pixels is unchanged.
        assert_eq!(facts.palette, pixels.palette);
        assert_eq!(facts.layout.weight_grid, pixels.layout.weight_grid);
        assert_eq!(facts.layout.dominant_region, pixels.layout.dominant_region);
        assert_eq!(facts.mood, pixels.mood);
        assert_eq!(facts.content_sha256, pixels.content_sha256);
    }

    // The request on the wire: model, JSON mode, bearer key, the image as a data URL.
    let seen = seen.lock().unwrap();
    let (auth, body) = &seen.requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer test-key"));
    assert_eq!(body["model"], "vision-test");
    assert_eq!(body["response_format"]["type"], "json_object");
    let url = body["messages"][1]["content"][1]["image_url"]["url"].as_str().unwrap();
    let expected =
        format!("data:image/png;base64,{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes));
    assert_eq!(url, expected);
}

#[tokio::test]
async fn gif_is_sent_as_a_jpeg_preview() {
    let (addr, seen) = stand_in().await;
    let bytes = images::encode_rgb(&images::photo_like(160, 120), image::ImageFormat::Gif);
    let facts = vision(addr, "good", 5_000).analyze(&bytes).await.unwrap();
    assert_eq!(facts.analyzer, "openai:vision-test");
    let seen = seen.lock().unwrap();
    let url = seen.requests[0].1["messages"][1]["content"][1]["image_url"]["url"].as_str().unwrap().to_owned();
    let payload = url.strip_prefix("data:image/jpeg;base64,").expect("a JPEG preview");
    let jpeg = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).unwrap();
    let preview = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((preview.width(), preview.height()), (160, 120));
}

#[tokio::test]
async fn failures_leave_the_pixel_facts_standing() {
    let (addr, seen) = stand_in().await;
    let bytes = images::jpeg(&images::photo_like(200, 150), 85);
    let pixels = without_time(PixelAnalyzer::new(limits()).analyze_sync(&bytes).unwrap());
    for (mode, timeout_ms) in
        [("malformed", 5_000), ("schema", 5_000), ("not-chat", 5_000), ("fail", 5_000), ("slow", 300)]
    {
        let facts = vision(addr, mode, timeout_ms).analyze(&bytes).await.unwrap();
        assert_eq!(without_time(facts), pixels, "{mode}");
    }
    assert_eq!(seen.lock().unwrap().requests.len(), 5, "one attempt each");

    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let facts = vision(closed, "good", 1_000).analyze(&bytes).await.unwrap();
    assert_eq!(without_time(facts), pixels);
}

#[tokio::test]
async fn bad_images_fail_before_the_model_is_called() {
    let (addr, seen) = stand_in().await;
    let err = vision(addr, "good", 5_000).analyze(b"GIF89a trunc").await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(seen.lock().unwrap().requests.is_empty());
}
