//! The operator HTTP port (`metrics_addr`): Prometheus `/metrics`, the live
//! `/dashboard`, and the JSON the dashboard polls (`/api/report`,
//! `/api/timeline`, `/api/retention`).
//!
//! These endpoints show every tenant and need no key: bind them to loopback
//! or a private network (the default is 127.0.0.1:9464) and never expose
//! them publicly.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use metrics::gauge;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::perf::{
    CacheKind, ReportQuery, Reporter, Window, prom,
    report::{self, Report},
};

/// The dashboard page: one self-contained file (inline CSS, JS and SVG charts; no CDN).
const DASHBOARD: &str = include_str!("dashboard.html");
/// Slots the timeline returns: 15 minutes.
const TIMELINE_SLOTS: usize = 90;

/// Binds the operator port; warns when it is not loopback.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener =
        TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on metrics_addr {addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "/metrics and /dashboard show every tenant and need no key: keep this port private");
    }
    Ok(listener)
}

/// Serves the operator endpoints until `shutdown`.
pub async fn serve(listener: TcpListener, reporter: Arc<Reporter>, shutdown: CancellationToken) {
    let router = Router::new()
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/metrics", get(metrics))
        // Browsers ask for it; answering keeps the page's console clean.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/dashboard", get(|| async { no_store(Html(DASHBOARD).into_response()) }))
        .route("/api/report", get(api_report))
        .route("/api/timeline", get(api_timeline))
        .route("/api/retention", get(api_retention))
        .with_state(reporter);
    if let Err(err) = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::error!(error = %err, "the metrics and dashboard server failed");
    }
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

#[derive(Debug, Deserialize)]
struct ReportParams {
    /// 1m, 5m (default), 15m or start.
    #[serde(default)]
    window: String,
    /// Only this project.
    #[serde(default)]
    project_id: String,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The project filter, or the message of a 400 for a malformed id.
fn project_filter(project_id: &str) -> Result<Option<String>, String> {
    if project_id.is_empty() {
        return Ok(None);
    }
    crate::validate::id("project_id", project_id).map(Some).map_err(|e| e.message().to_owned())
}

async fn api_report(State(reporter): State<Arc<Reporter>>, Query(params): Query<ReportParams>) -> Response {
    let Some(window) = Window::parse(&params.window) else {
        return bad_request(format!("window must be 1m, 5m, 15m or start, not '{}'", params.window));
    };
    let project_id = match project_filter(&params.project_id) {
        Ok(p) => p,
        Err(message) => return bad_request(message),
    };
    let report: Report = reporter.report(&ReportQuery { window, tenant: None, project_id }).await;
    no_store(Json(report).into_response())
}

async fn api_timeline(State(reporter): State<Arc<Reporter>>, Query(params): Query<ReportParams>) -> Response {
    let project_id = match project_filter(&params.project_id) {
        Ok(p) => p,
        Err(message) => return bad_request(message),
    };
    let points = report::timeline(reporter.perf(), project_id.as_deref(), TIMELINE_SLOTS);
    no_store(Json(serde_json::json!({ "slot_ms": crate::perf::window::SLOT_MS, "points": points })).into_response())
}

/// Scheduled retention on this replica: how often it runs (0: off) and its last run (null before
/// the first).
async fn api_retention(State(reporter): State<Arc<Reporter>>) -> Response {
    let perf = reporter.perf();
    let body = serde_json::json!({
        "interval_ms": perf.config().retention_interval.as_millis() as u64,
        "last_run": perf.last_retention_run(),
    });
    no_store(Json(body).into_response())
}

/// Prometheus text exposition; process gauges are refreshed on each scrape.
async fn metrics(State(reporter): State<Arc<Reporter>>) -> Response {
    let Some(handle) = prom::handle() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the Prometheus recorder is not installed\n").into_response();
    };
    let perf = reporter.perf();
    let extras = reporter.extras_global().await;
    gauge!(prom::JOB_QUEUE_DEPTH).set(extras.queue.depth as f64);
    gauge!(prom::JOBS_RUNNING).set(extras.queue.running as f64);
    gauge!(prom::RESIDENT_MEMORY).set(extras.resident_memory_bytes as f64);
    gauge!(prom::DB_CONNECTIONS, "state" => "in_use").set(f64::from(extras.pool.in_use));
    gauge!(prom::DB_CONNECTIONS, "state" => "idle").set(f64::from(extras.pool.idle));
    gauge!(prom::DB_CONNECTIONS, "state" => "max").set(f64::from(extras.pool.max));
    for cache in [CacheKind::ContextPacket, CacheKind::ImageFacts] {
        gauge!(prom::CACHE_ENTRIES, "cache" => cache.as_str()).set(perf.cache_entries(cache) as f64);
    }
    let recent =
        report::build(perf, &ReportQuery { window: Window::Last5Minutes, tenant: None, project_id: None }, &extras);
    gauge!(prom::ASYNC_IMPROVEMENT, "mode" => "measured").set(recent.async_win.measured.improvement);
    gauge!(prom::ASYNC_IMPROVEMENT, "mode" => "estimated").set(recent.async_win.estimated.improvement);
    gauge!(prom::ASYNC_TARGET).set(recent.async_win.target);
    gauge!(prom::UPTIME).set(recent.uptime_ms as f64 / 1e3);

    let mut body = Vec::with_capacity(16 * 1024);
    if let Err(err) = handle.render_to_write(&mut body) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot render metrics: {err}\n")).into_response();
    }
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
