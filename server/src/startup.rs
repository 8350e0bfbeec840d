//! The server's lifecycle: bind, serve health and reflection at once, connect and migrate the
//! store in the background, settle the auth mode (local mode: no API keys, one implicit tenant,
//! loopback only), then open brain RPCs; probe the store and report health; on SIGTERM report
//! NOT_SERVING, end streams, drain in-flight RPCs and exit.
//!
//! Two runtimes: the gRPC server and `/metrics` run on a serving runtime of their own (accepting
//! connections, HTTP/2, health, reflection, refusing what cannot be admitted, and the first
//! admitted calls), while admitted calls beyond those, the store and background work run on the
//! runtime this is called on (see [`crate::grpc::layers::offload`] for why). The serving threads
//! also get the CPU first: every other thread of the process runs at a lower scheduling priority
//! ([`priority`]).

pub mod memory;
pub mod priority;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use tokio::{net::TcpListener, runtime::Handle, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    app::App,
    auth::Authenticator,
    config::Config,
    context::tokens,
    grpc::{
        layers::{Gate, RpcLayers, TenantLimits},
        server::{LIVENESS_SERVICE, set_health},
    },
    perf::Reporter,
    store::Store,
};

/// Name of the implicit tenant served when no API keys exist.
pub const IMPLICIT_TENANT: &str = "default";

/// Runs the server until SIGTERM or Ctrl-C; returns an error if it could not start or had to refuse to serve.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let serving = ServingRuntime::start()?;
    priority::lower_all_but(SERVING_THREAD_NAME);
    let listen_addr = config.server.listen_addr;
    let store = Store::open(&config).await.context("cannot open the store")?;
    refuse_without_keys_before_binding(&store, &config).await?;
    let listener = serving
        .spawn(TcpListener::bind(listen_addr))
        .await?
        .with_context(|| format!("cannot listen on {listen_addr}"))?;
    let grpc_addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    // Build the tokenizer off the async threads while the store initialises.
    tokio::task::spawn_blocking(tokens::warm_up);

    let app = App::new(config.clone(), store.clone(), shutdown.clone()).context("cannot build the services")?;
    let perf_reporter = Arc::new(Reporter::new(app.perf.clone(), store.clone()));
    let metrics_listener = match config.server.metrics_addr {
        Some(addr) => Some(serving.spawn(crate::http::bind(addr)).await??),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let health = HealthReporter::new();
    set_health(&health, ServingStatus::NotServing).await;
    health.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving).await;

    let gate = Gate::default();
    let tenant_limits = TenantLimits::new(config.limits);
    let layers = RpcLayers {
        gate: gate.clone(),
        permits: Arc::new(Semaphore::new(config.server.max_concurrent_requests)),
        work: Handle::current(),
        request_timeout: config.server.request_timeout,
        max_message_bytes: config.server.max_message_bytes,
        perf: app.perf.clone(),
        tenant_limits: tenant_limits.clone(),
    };
    let fatal: Arc<Mutex<Option<String>>> = Arc::default();
    tokio::spawn(initialize(app.clone(), gate.clone(), tenant_limits, grpc_addr, fatal.clone()));
    tokio::spawn(probe_health(store.clone(), health.clone(), gate, config.clone(), shutdown.clone()));
    tokio::spawn(watch_signals(shutdown.clone()));
    tokio::spawn(memory::trim_periodically(shutdown.clone()));
    crate::perf::monitor::spawn(perf_reporter.clone(), shutdown.clone());
    if let Some(listener) = metrics_listener {
        serving.spawn(crate::http::serve(listener, perf_reporter.clone(), shutdown.clone()));
    }
    let handlers = crate::grpc::server::Handlers {
        projects: app.projects.clone(),
        orchestrator: app.orchestrator.clone(),
        images: app.images.clone(),
        perf_reporter,
        retention: app.retention.clone(),
        max_message_bytes: config.server.max_message_bytes,
        shutdown: shutdown.clone(),
    };
    let router = crate::grpc::server::router(handlers, &health, layers)?;

    write_ready_file(&config, grpc_addr, metrics_addr)?;
    tracing::info!(%grpc_addr, database = %config.store.database_url.redacted(), "listening");
    if let Some(addr) = metrics_addr {
        tracing::info!(%addr, "serving /metrics and /dashboard");
    }

    let delay = config.shutdown.delay;
    let stop = shutdown.clone();
    let stopping = async move {
        stop.cancelled().await;
        set_health(&health, ServingStatus::NotServing).await;
        tracing::info!("shutting down: health is NOT_SERVING, streams are ending");
        tokio::time::sleep(delay).await;
    };
    let serving_task = serving.spawn(crate::grpc::server::serve(router, listener, stopping));
    let grace = config.shutdown.grace + delay;
    let hard_stop = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = serving_task => served.context("the server task failed")?.context("server error")?,
        () = hard_stop => tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; dropping remaining connections"),
    }
    // Ends whatever the grace period left (connections, their calls) before the store closes.
    drop(serving);
    app.stop().await;
    store.close().await;
    if let Some(reason) = fatal.lock().ok().and_then(|f| f.clone()) {
        anyhow::bail!(reason);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Name of the serving runtime's threads.
const SERVING_THREAD_NAME: &str = "brain-serve";

/// The serving runtime; shut down without waiting when dropped, which may happen in async
/// context (where dropping a runtime would panic).
struct ServingRuntime(Option<tokio::runtime::Runtime>);

impl ServingRuntime {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVING_THREAD_NAME)
            .enable_all()
            .build()
            .context("cannot start the serving runtime")?;
        Ok(Self(Some(runtime)))
    }

    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(runtime) => runtime.spawn(future),
            // Only `drop` takes the runtime out.
            None => tokio::spawn(future),
        }
    }
}

impl Drop for ServingRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// How brain RPCs are authenticated, decided once at startup from the number of active keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMode {
    /// Every call needs a key.
    Keys,
    /// Local mode: calls without a key act for the implicit tenant.
    Implicit,
}

/// The auth mode for `key_count` active keys on `addr`, or why the server must refuse to serve:
/// without keys only a loopback address is served, unless `insecure` says otherwise.
fn auth_mode(key_count: u64, addr: SocketAddr, insecure: bool) -> Result<AuthMode, String> {
    if key_count > 0 {
        return Ok(AuthMode::Keys);
    }
    if !addr.ip().is_loopback() && !insecure {
        return Err(format!(
            "refusing to serve on {addr} without API keys: create one with \
             `brain-server keys create --tenant NAME`, bind a loopback address, or pass --insecure"
        ));
    }
    Ok(AuthMode::Implicit)
}

/// A non-loopback address without `insecure` needs keys: when the store already answers within
/// `db_acquire_timeout_ms` and has none, refuse before binding anything. A store that does not
/// answer yet is decided after binding ([`initialize`]), so health can say NOT_SERVING meanwhile.
async fn refuse_without_keys_before_binding(store: &Store, config: &Config) -> anyhow::Result<()> {
    if config.server.listen_addr.ip().is_loopback() || config.auth.insecure {
        return Ok(());
    }
    let count = async {
        store.initialize().await?;
        store.active_key_count().await
    };
    match tokio::time::timeout(config.store.acquire_timeout, count).await {
        Ok(Ok(keys)) => {
            auth_mode(keys, config.server.listen_addr, config.auth.insecure).map(drop).map_err(anyhow::Error::msg)
        }
        _ => Ok(()),
    }
}

/// Connects and migrates the store (retrying until it answers), settles the
/// auth mode, and opens brain RPCs. Refuses to serve a non-loopback address
/// without keys unless `insecure` is set.
async fn initialize(
    app: Arc<App>,
    gate: Gate,
    tenant_limits: TenantLimits,
    addr: SocketAddr,
    fatal: Arc<Mutex<Option<String>>>,
) {
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
    let implicit = match auth_mode(key_count, addr, app.config.auth.insecure) {
        Ok(AuthMode::Keys) => {
            tracing::info!(keys = key_count, "API keys required");
            None
        }
        Ok(AuthMode::Implicit) => match store.ensure_tenant(IMPLICIT_TENANT).await {
            Ok(tenant) => {
                tenant_limits.exempt(tenant.id.clone());
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
        },
        Err(reason) => {
            // Logged once, by the command line, when `serve` returns it.
            if let Ok(mut slot) = fatal.lock() {
                *slot = Some(reason);
            }
            app.shutdown.cancel();
            return;
        }
    };
    gate.open(Authenticator::new(store.clone(), app.config.auth.cache_ttl, implicit));
    app.start().await;
    tracing::info!("ready");
}

/// Probes the store every `health_probe_interval_ms` and sets every service's
/// status, so health flips within interval + timeout of the store going away
/// or coming back.
async fn probe_health(
    store: Store,
    reporter: HealthReporter,
    gate: Gate,
    config: Arc<Config>,
    shutdown: CancellationToken,
) {
    let timeout = config.health.probe_timeout;
    let mut ticker = tokio::time::interval(config.health.probe_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = ServingStatus::NotServing;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let status = if !gate.is_open() {
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
    let Some(path) = &config.server.ready_file else { return Ok(()) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_mode_is_for_loopback_without_keys() {
        let loopback: SocketAddr = "127.0.0.1:50051".parse().expect("an address"); // ok: unit test only (#[cfg(test)]), not on a request path
        let v6_loopback: SocketAddr = "[::1]:50051".parse().expect("an address"); // ok: unit test only (#[cfg(test)]), not on a request path
        let public: SocketAddr = "0.0.0.0:50051".parse().expect("an address"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(auth_mode(0, loopback, false), Ok(AuthMode::Implicit));
        assert_eq!(auth_mode(0, v6_loopback, false), Ok(AuthMode::Implicit));
        assert_eq!(auth_mode(2, loopback, false), Ok(AuthMode::Keys));
        assert_eq!(auth_mode(1, public, false), Ok(AuthMode::Keys));
        assert_eq!(auth_mode(0, public, true), Ok(AuthMode::Implicit));
        let refused = auth_mode(0, public, false).expect_err("refused"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert!(refused.contains("refusing to serve on 0.0.0.0:50051 without API keys"), "{refused}");
    }
}
