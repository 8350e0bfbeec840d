//! Failures no client sees reach error tracking through the real Sentry SDK
//! (sentry-tracing), delivered to a loopback stand-in of Sentry's envelope
//! endpoint: each kind with its `failure` and `error_class` tags and its
//! project, with request content and secrets scrubbed.
//!
//! These run in process: the job runner and the orchestrator call the same
//! functions (`telemetry::background_failure` / `background_error`,
//! `Perf::record_orchestration` with `degraded`) where the failures happen.
//! The end-to-end path through the server binary is in `perf_telemetry.rs`.

use std::time::Duration;

use brain_e2e::sentry::FakeSentry;
use brain_server::{
    config::Config,
    error::{Error, ErrorKind},
    perf::{OrchestrationSample, Perf, StageTimings},
    redact::Secret,
    telemetry::{self, Failure},
};

const MARKER: &str = "PROMPT-MARKER-c41d";
const PROJECT: &str = "01a206ee-0000-7000-8000-00000000p001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_failures_reach_sentry_tagged_and_scrubbed() {
    let sentry = FakeSentry::start().await;
    let mut config = Config::default();
    config.telemetry.sentry_dsn = Some(Secret::new(sentry.dsn()));
    config.telemetry.environment = "e2e".into();
    let guard = telemetry::init(&config).expect("telemetry");
    assert!(guard.sentry_enabled());

    // The job runner, when an image fails for good (here: a corrupt upload, so a validation failure).
    telemetry::background_failure(
        Failure::ImageAnalysis,
        ErrorKind::InvalidArgument,
        Some(PROJECT),
        &format!(
            "image img-7 could not be decoded (data:image/png;base64,{MARKER}) fetched with key brk_{MARKER} \
             Bearer {MARKER}"
        ),
    );
    // The job runner, when late facts cannot be stored.
    telemetry::background_error(
        Failure::LateFacts,
        &Error::store_unavailable(format!("connection refused; postgres://brain:{MARKER}@db/brain")),
        Some(PROJECT),
    );
    // The orchestrator, when it answered without project memory.
    Perf::new().record_orchestration(&OrchestrationSample {
        tenant_id: "tenant-1".into(),
        project_id: PROJECT.into(),
        orchestration_id: "orch-1".into(),
        timings: StageTimings { total_ms: 12.0, ..StageTimings::default() },
        image_count: 0,
        prompt_tokens: 900,
        truncated: false,
        budget_warning: false,
        degraded: true,
    });
    // An RPC's internal error, as grpc::status logs it; its detail names a URL with a password.
    let status: tonic::Status =
        Error::internal(format!("cannot reach postgres://brain:{MARKER}@db:5432/brain: timed out")).into();
    assert_eq!(status.code(), tonic::Code::Internal);

    let failure = |kind: &'static str| {
        let sentry = &sentry;
        async move {
            sentry
                .wait_for_event(Duration::from_secs(20), |e| e["tags"]["failure"] == kind)
                .await
                .unwrap_or_else(|| panic!("no {kind} event; got {:#?}", sentry.requests()))
        }
    };
    let image = failure("image_analysis").await;
    assert_eq!(image["tags"]["error_class"], "validation", "{image:#}");
    assert_eq!(image["tags"]["project_id"], PROJECT);
    assert_eq!(image["tags"]["service"], "brain");
    assert_eq!(image["environment"], "e2e");
    let late = failure("late_facts").await;
    assert_eq!(late["tags"]["error_class"], "unavailable", "{late:#}");
    let degraded = failure("context_degraded").await;
    assert_eq!(degraded["tags"]["error_class"], "unavailable", "{degraded:#}");
    assert_eq!(degraded["tags"]["project_id"], PROJECT);
    let internal = sentry
        .wait_for_event(Duration::from_secs(20), |e| {
            e["logentry"]["message"] == "internal error" || e["message"] == "internal error"
        })
        .await
        .unwrap_or_else(|| panic!("no internal error event; got {:#?}", sentry.events()));
    assert_eq!(internal["tags"]["error_class"], "internal", "{internal:#}");

    // Flushes what is left, then nothing anywhere may carry the marker.
    drop(guard);
    for request in sentry.requests() {
        let body = String::from_utf8_lossy(&request.body);
        assert!(!body.contains(MARKER), "content or a secret reached error tracking:\n{body}");
        assert!(request.envelope.is_ok(), "{:?}", request.envelope);
    }
    let classes: Vec<String> =
        sentry.events().iter().map(|e| e["tags"]["error_class"].as_str().unwrap_or("").to_owned()).collect();
    assert!(classes.iter().all(|c| !c.is_empty()), "every event has an error class: {classes:?}");
}
