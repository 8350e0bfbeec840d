//! The server's lifecycle: bind, serve health and reflection at once,
//! connect and migrate the store in the background, then serve brain RPCs;
//! probe the store and report health; on SIGTERM report NOT_SERVING, end
//! streams, drain in-flight RPCs and exit.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use brain_proto::{
    SERVICE_NAMES,
    v1::{
        admin_service_server::AdminServiceServer, image_facts_service_server::ImageFactsServiceServer,
        orchestrator_service_server::OrchestratorServiceServer, performance_service_server::PerformanceServiceServer,
        project_service_server::ProjectServiceServer,
    },
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use super::{
    admin::AdminApi,
    image_facts::ImageFactsApi,
    middleware::{RpcLayer, RpcState},
    orchestrator::OrchestratorApi,
    performance::PerformanceApi,
    project::ProjectApi,
};
use crate::{app::App, auth::Authenticator, config::Config, context::tokens, perf::Reporter, store::Store};

/// Name of the implicit tenant served when no API keys exist.
pub const IMPLICIT_TENANT: &str = "default";

/// Health service name that reports whether the process serves at all, regardless of the
/// store: for Kubernetes liveness probes, so a database outage makes pods unready, not restarted.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Runs the server until SIGTERM or Ctrl-C; returns an error if it could not start or had to refuse to serve.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    let grpc_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let store = Store::open(&config).await.context("cannot open the store")?;
    // Build the tokenizer off the async threads while the store initialises.
    tokio::task::spawn_blocking(tokens::warm_up);

    let app = App::new(config.clone(), store.clone(), shutdown.clone()).context("cannot build the services")?;
    let perf_reporter = Arc::new(Reporter::new(app.perf.clone(), store.clone()));
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(crate::http::bind(addr).await?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let reporter = HealthReporter::new();
    let health_service = super::health::service(&reporter, shutdown.clone());
    set_health(&reporter, ServingStatus::NotServing).await;
    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving).await;

    let state = Arc::new(RpcState {
        auth: OnceLock::new(),
        permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
        request_timeout: config.request_timeout(),
        max_message_bytes: config.max_message_bytes,
        perf: app.perf.clone(),
    });
    let fatal: Arc<Mutex<Option<String>>> = Arc::default();
    tokio::spawn(initialize(app.clone(), state.clone(), grpc_addr, fatal.clone()));
    tokio::spawn(probe_health(store.clone(), reporter.clone(), state.clone(), config.clone(), shutdown.clone()));
    tokio::spawn(watch_signals(shutdown.clone()));
    crate::perf::monitor::spawn(perf_reporter.clone(), shutdown.clone());
    if let Some(listener) = metrics_listener {
        tokio::spawn(crate::http::serve(listener, perf_reporter.clone(), shutdown.clone()));
    }

    let reflection_v1 = reflection().build_v1().context("reflection v1")?;
    let reflection_v1alpha = reflection().build_v1alpha().context("reflection v1alpha")?;

    let max = config.max_message_bytes;
    let router = Server::builder()
        .layer(RpcLayer::new(state))
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ProjectServiceServer::new(ProjectApi::new(app.projects.clone())).max_decoding_message_size(max))
        .add_service(OrchestratorServiceServer::new(OrchestratorApi::new(app.clone())).max_decoding_message_size(max))
        .add_service(ImageFactsServiceServer::new(ImageFactsApi::new(app.clone())).max_decoding_message_size(max))
        .add_service(
            PerformanceServiceServer::new(PerformanceApi::new(perf_reporter, app.projects.clone(), shutdown.clone()))
                .max_decoding_message_size(max),
        )
        .add_service(AdminServiceServer::new(AdminApi::new(app.retention.clone())).max_decoding_message_size(max));

    write_ready_file(&config, grpc_addr, metrics_addr)?;
    tracing::info!(%grpc_addr, database = %crate::config::redact_url(&config.database_url), "listening");
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "serving /metrics and /dashboard");
    }

    let drain_reporter = reporter.clone();
    let delay = Duration::from_millis(config.shutdown_delay_ms);
    let stop = shutdown.clone();
    let stopping = async move {
        stop.cancelled().await;
        set_health(&drain_reporter, ServingStatus::NotServing).await;
        tracing::info!("shutting down: health is NOT_SERVING, streams are ending");
        tokio::time::sleep(delay).await;
    };
    // `tcp_nodelay` on the builder only reaches sockets tonic accepts itself; with our own
    // listener, Nagle would hold every small response back ~40 ms waiting for a delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = router.serve_with_incoming_shutdown(incoming, stopping);
    let grace = Duration::from_millis(config.shutdown_grace_ms) + delay;
    let hard_stop = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = serving => result.context("server error")?,
        () = hard_stop => tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; dropping remaining connections"),
    }
    app.stop().await;
    store.close().await;
    if let Some(reason) = fatal.lock().ok().and_then(|f| f.clone()) {
        anyhow::bail!(reason);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connects and migrates the store (retrying until it answers), settles the
/// auth mode, and opens brain RPCs. Refuses to serve a non-loopback address
/// without keys unless `insecure` is set.
async fn initialize(app: Arc<App>, state: Arc<RpcState>, addr: SocketAddr, fatal: Arc<Mutex<Option<String>>>) {
    let store = &app.store;
    let mut backoff = Duration::from_millis(250);
    let key_count = loop {
        let attempt = async {
            store.initialize().await?;
            store.active_key_count().await
        };
        match attempt.await {
            Ok(count) => break count,
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "store not ready");
                tokio::select! {
                    () = app.shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    let implicit = if key_count == 0 {
        if !addr.ip().is_loopback() && !app.config.insecure {
            let reason = format!(
                "refusing to serve on {addr} without API keys: create one with \
                 `brain-server keys create --tenant NAME`, bind a loopback address, or pass --insecure"
            );
            tracing::error!("{reason}");
            if let Ok(mut slot) = fatal.lock() {
                *slot = Some(reason);
            }
            app.shutdown.cancel();
            return;
        }
        match store.ensure_tenant(IMPLICIT_TENANT).await {
            Ok(tenant) => {
                if addr.ip().is_loopback() {
                    tracing::warn!("no API keys configured: serving one implicit tenant, on loopback only");
                } else {
                    tracing::warn!(%addr, "no API keys configured and --insecure: anyone who can reach this address has full access");
                }
                Some(tenant.id)
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot create the implicit tenant");
                app.shutdown.cancel();
                return;
            }
        }
    } else {
        tracing::info!(keys = key_count, "API keys required");
        None
    };
    let ttl = Duration::from_millis(app.config.auth_cache_ttl_ms);
    let _ = state.auth.set(Arc::new(Authenticator::new(store.clone(), ttl, implicit)));
    app.start().await;
    tracing::info!("ready");
}

/// Probes the store every `health_probe_interval_ms` and sets every service's
/// status, so health flips within interval + timeout of the store going away
/// or coming back.
async fn probe_health(
    store: Store,
    reporter: HealthReporter,
    state: Arc<RpcState>,
    config: Arc<Config>,
    shutdown: CancellationToken,
) {
    let timeout = Duration::from_millis(config.health_probe_timeout_ms);
    let mut ticker = tokio::time::interval(Duration::from_millis(config.health_probe_interval_ms));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = ServingStatus::NotServing;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let status = if state.auth.get().is_none() {
            ServingStatus::NotServing
        } else {
            match tokio::time::timeout(timeout, store.ping()).await {
                Ok(Ok(())) => ServingStatus::Serving,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "store probe failed");
                    ServingStatus::NotServing
                }
                Err(_) => ServingStatus::NotServing,
            }
        };
        // Shutdown may have begun while the probe ran; never flip back to SERVING then.
        if status != last && !shutdown.is_cancelled() {
            match status {
                ServingStatus::Serving => tracing::info!("store answers: SERVING"),
                _ => tracing::warn!("store does not answer: NOT_SERVING"),
            }
            set_health(&reporter, status).await;
            last = status;
        }
    }
}

/// Reflection lists exactly the brain.v1 services, health and reflection
/// itself, and describes `google.rpc` error details so `grpcurl` can decode
/// the `ErrorInfo` of a failed call.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(brain_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false);
    SERVICE_NAMES
        .iter()
        .chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .fold(builder, |b, name| b.with_service_name(*name))
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

async fn watch_signals(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}

/// Writes the bound addresses as JSON, atomically, for scripts and tests that start the server on port 0.
fn write_ready_file(config: &Config, grpc_addr: SocketAddr, metrics_addr: Option<SocketAddr>) -> anyhow::Result<()> {
    let Some(path) = &config.ready_file else { return Ok(()) };
    let mut body = serde_json::json!({
        "grpc_addr": grpc_addr.to_string(),
        "pid": std::process::id(),
    });
    if let Some(addr) = metrics_addr {
        body["metrics_addr"] = serde_json::Value::String(addr.to_string());
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string()).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
