//! The one place that reads configuration.
//!
//! Layers, later ones win: built-in defaults < `brain.toml` (or `--config PATH`)
//! < `BRAIN_*` environment variables < command-line flags. Keys are flat and
//! spelled the same everywhere: `token_budget` in the file is
//! `BRAIN_TOKEN_BUDGET` in the environment and `--set token_budget=...` on the
//! command line. The merged result is validated once, with every problem
//! reported together.
//!
//! The rest of the server does not see the flat keys: they are read into a private
//! `FlatConfig` (field for field the keys of docs/CONFIGURATION.md, with their defaults and
//! checks, so every message names the key the user typed), and turned in one place into a
//! [`Config`] grouped by subsystem, every duration a [`Duration`] and every secret a [`Secret`].
//! `brain-server config` turns it back into the keys to print them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{Figment, providers::Serialized};
use serde::{Deserialize, Serialize};

use crate::redact::Secret;

/// GPT-4o's context window: no budget may exceed it.
pub const MODEL_WINDOW_TOKENS: u32 = 128_000;

/// Most retries of one decision call: retries are bounded, not a configuration of patience.
pub const MAX_OPENAI_RETRIES: u32 = 10;

/// Default config file, read when present and no `--config` names another.
pub const DEFAULT_CONFIG_FILE: &str = "brain.toml";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for production log pipelines.
    Json,
}

/// Which decider makes the brain decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeciderKind {
    /// The embedded rule-based decider.
    Rules,
    /// An OpenAI-compatible chat-completions model, falling back to rules.
    Openai,
}

/// Which analyser extracts image facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VisionKind {
    /// The embedded pixel analyser.
    Pixels,
    /// Pixel facts plus an OpenAI-compatible vision model for typography and layout.
    Openai,
}

/// SQLite `synchronous` pragma for the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// Durable against process crashes; a power loss may lose the last commits. Fast in WAL mode.
    Normal,
    /// Durable against power loss too; every commit waits for fsync.
    Full,
}

/// brain's configuration, by subsystem. Every setting has a default, so
/// `Config::default()` starts a working server on SQLite. Each field's doc names
/// the key users set it with (docs/CONFIGURATION.md).
///
/// `Debug` shows every secret redacted ([`Secret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listening, request limits and streams.
    pub server: ServerSettings,
    /// Who may call.
    pub auth: AuthSettings,
    /// The store probe behind gRPC health.
    pub health: HealthSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// Logs and error tracking.
    pub telemetry: TelemetrySettings,
    /// The database.
    pub store: StoreSettings,
    /// Context packets, token budgets and decisions.
    pub orchestration: OrchestrationSettings,
    /// The OpenAI-compatible API, for decisions and vision alike.
    pub openai: OpenAiSettings,
    /// Image intake, analysis and facts.
    pub images: ImageSettings,
    /// The durable job queue and its workers.
    pub jobs: JobSettings,
    /// The performance report and anomaly detection.
    pub perf: PerfSettings,
    /// Per-tenant rate limits.
    pub limits: LimitSettings,
    /// What is kept, and how often the rest is removed.
    pub retention: RetentionSettings,
}

/// Listening, request limits and streams.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// `listen_addr`: gRPC listen address. Without API keys only a loopback address is allowed
    /// (see [`AuthSettings::insecure`]).
    pub listen_addr: SocketAddr,
    /// `metrics_addr`: HTTP address for `/metrics` and `/dashboard`; None (`off`) disables them.
    pub metrics_addr: Option<SocketAddr>,
    /// `ready_file`: once listening, write the bound addresses as JSON to this file.
    pub ready_file: Option<PathBuf>,
    /// `max_message_bytes`: largest request message accepted; larger ones are RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// `max_concurrent_requests`: RPCs handled at once across all connections; more are refused.
    pub max_concurrent_requests: usize,
    /// `request_timeout_ms`: upper bound on a unary RPC's run time; a shorter client deadline wins.
    pub request_timeout: Duration,
    /// `stream_heartbeat_ms`: idle time after which a server stream sends a heartbeat.
    pub stream_heartbeat: Duration,
}

/// Who may call.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthSettings {
    /// `insecure`: serve on a non-loopback address without API keys.
    pub insecure: bool,
    /// `auth_cache_ttl_ms`: how long a verified API key is trusted before it is checked against
    /// the store again.
    pub cache_ttl: Duration,
}

/// The store probe behind gRPC health.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// `health_probe_interval_ms`: how often health probes the store.
    pub probe_interval: Duration,
    /// `health_probe_timeout_ms`: how long a store probe may take before the store counts as down.
    pub probe_timeout: Duration,
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownSettings {
    /// `shutdown_grace_ms`: after SIGTERM, how long in-flight RPCs (and running jobs) may take to finish.
    pub grace: Duration,
    /// `shutdown_delay_ms`: after SIGTERM, how long to keep serving while reporting NOT_SERVING,
    /// so load balancers stop sending first.
    pub delay: Duration,
}

/// Logs and error tracking.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    /// `log_format`: `pretty` or `json`.
    pub log_format: LogFormat,
    /// `log_level`: log filter, in `tracing-subscriber` EnvFilter syntax.
    pub log_level: String,
    /// `environment`: deployment environment name, reported to error tracking.
    pub environment: String,
    /// `sentry_dsn` (also `SENTRY_DSN`): None disables error tracking.
    pub sentry_dsn: Option<Secret>,
}

/// The database.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSettings {
    /// `database_url`: `sqlite://PATH` (the embedded default) or `postgres://...`.
    pub database_url: Secret,
    /// `db_max_connections`: connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    pub max_connections: u32,
    /// `db_acquire_timeout_ms`: how long to wait for a pooled connection before the store counts
    /// as unavailable.
    pub acquire_timeout: Duration,
    /// `sqlite_busy_timeout_ms`: SQLite, how long a statement waits for a lock.
    pub sqlite_busy_timeout: Duration,
    /// `sqlite_synchronous`: SQLite, `normal` or `full`.
    pub sqlite_synchronous: SqliteSync,
    /// `statement_log_file`: append the text of every distinct SQL statement to this file, for
    /// the query-plan check (tests/tests/query_plans.rs).
    pub statement_log_file: Option<PathBuf>,
}

impl StoreSettings {
    /// True when the database is the embedded SQLite store.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }
}

/// Context packets, token budgets and decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestrationSettings {
    /// `token_budget`: default token budget of an enhanced prompt; a request may lower it.
    pub token_budget: u32,
    /// `max_prompt_bytes`: largest accepted prompt; larger ones are RESOURCE_EXHAUSTED.
    pub max_prompt_bytes: usize,
    /// `recent_turns`: conversation turns in a context packet.
    pub recent_turns: u32,
    /// `context_max_preferences`: user preferences a context packet considers, the highest ranked.
    pub max_preferences: u32,
    /// `context_cache_capacity`: projects whose context packet is cached.
    pub context_cache_capacity: u64,
    /// `decider`: `rules` or `openai` (see [`OpenAiSettings`]).
    pub decider: DeciderKind,
    /// `image_wait_ms`: default time OrchestrateStream waits for its images' events.
    pub image_wait: Duration,
}

/// The OpenAI-compatible API: one client configuration for the decider (`decider = "openai"`)
/// and the vision analyser (`vision = "openai"`).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiSettings {
    /// `openai_base_url`: requests go to `{base_url}/chat/completions`.
    pub base_url: Secret,
    /// `openai_api_key`: bearer token, if the server needs one.
    pub api_key: Option<Secret>,
    /// `openai_model`: model used for decisions.
    pub model: String,
    /// `vision_model`: model used for vision analysis.
    pub vision_model: String,
    /// `openai_timeout_ms`: bound on one call (one attempt of a decision, the whole vision call).
    pub timeout: Duration,
    /// `openai_deadline_ms`: time one decision may spend on the model across all attempts and
    /// the delays between them; then the rules decide.
    pub deadline: Duration,
    /// `openai_max_retries`: retries of a failed decision call (retryable failures only).
    pub max_retries: u32,
    /// `openai_backoff_ms`: first retry delay; doubles each retry, with jitter.
    pub backoff: Duration,
    /// `openai_breaker_threshold`: consecutive failed decisions that open the circuit breaker.
    pub breaker_threshold: u32,
    /// `openai_breaker_cooldown_ms`: how long the breaker stays open before one trial call.
    pub breaker_cooldown: Duration,
}

/// Image intake, analysis and facts.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSettings {
    /// `vision`: `pixels` or `openai` (see [`OpenAiSettings`]).
    pub vision: VisionKind,
    /// `max_image_bytes`: largest accepted image, inline or fetched.
    pub max_bytes: usize,
    /// `max_images_per_request`: images accepted in one request.
    pub max_per_request: u32,
    /// `max_image_pixels`: largest decoded image; bigger ones are refused before allocating.
    pub max_pixels: u64,
    /// `allow_private_image_urls`: allow image URLs on loopback and private networks.
    pub allow_private_urls: bool,
    /// `image_facts_cache_ttl_ms`: how long analysed facts stay in the image facts cache.
    pub facts_cache_ttl: Duration,
    /// `image_facts_cache_capacity`: weight bound of the image facts cache, in entries.
    pub facts_cache_capacity: u64,
    /// Fetching images by URL.
    pub fetch: ImageFetchSettings,
}

/// Fetching images by URL (`image_fetch_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFetchSettings {
    /// `image_fetch_connect_timeout_ms`: TCP connect timeout.
    pub connect_timeout: Duration,
    /// `image_fetch_timeout_ms`: total timeout.
    pub timeout: Duration,
    /// `image_fetch_max_redirects`: redirects followed (each one re-validated).
    pub max_redirects: u32,
    /// `image_fetch_min_bytes_per_sec`: lowest average transfer rate once `rate_grace` is over;
    /// 0 disables the check.
    pub min_bytes_per_sec: u64,
    /// `image_fetch_rate_grace_ms`: time the transfer rate is not checked, from sending the request.
    pub rate_grace: Duration,
    /// `image_fetch_slow_max_attempts`: attempts of a job whose fetch timed out or was too slow.
    pub slow_max_attempts: u32,
}

/// The durable job queue and its workers.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// `job_workers`: background workers; 0 makes an API-only replica.
    pub workers: u32,
    /// `job_max_attempts`: attempts before a job fails for good.
    pub max_attempts: u32,
    /// `job_lease_ms`: lease on a claimed job; extended while the worker runs, reclaimed when it expires.
    pub lease: Duration,
    /// `job_backoff_ms`: first retry delay of a failed job; doubles each attempt.
    pub backoff: Duration,
    /// `job_poll_interval_ms`: how often idle workers look for due jobs (new jobs also wake them).
    pub poll_interval: Duration,
}

/// The performance report and anomaly detection. The old blocking flow's stage estimates and
/// the anomaly threshold stay fractional milliseconds: they are compared with measured latencies,
/// which the report keeps in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfSettings {
    /// `perf_old_context_ms`: old blocking flow, estimated context stage, in ms.
    pub old_context_ms: f64,
    /// `perf_old_decision_ms`: old blocking flow, estimated decision stage, in ms.
    pub old_decision_ms: f64,
    /// `perf_old_image_ms`: old blocking flow, estimated image analysis stage, in ms.
    pub old_image_ms: f64,
    /// `perf_improvement_target`: async-win target, from 0 to 1.
    pub improvement_target: f64,
    /// `perf_anomaly_p95_ms`: report an anomaly when a stage's (or unary RPC's) p95 over the last
    /// minute exceeds this, in ms; 0 disables.
    pub anomaly_p95_ms: f64,
    /// `perf_anomaly_interval_ms`: how often the last minute's p95s are checked.
    pub anomaly_interval: Duration,
    /// `perf_max_series`: (tenant, project) pairs tracked per 10-second slot; more merge into "~other".
    pub max_series: usize,
    /// `perf_max_series_per_tenant`: pairs one tenant keeps per slot; its others merge into its own "~other".
    pub max_series_per_tenant: usize,
}

/// Per-tenant rate limits (`rate_limit_*`), per replica; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitSettings {
    /// `rate_limit_orchestrate_per_sec`: Orchestrate and OrchestrateStream calls per second (sustained).
    pub orchestrate_per_sec: u32,
    /// `rate_limit_orchestrate_burst`: Orchestrate calls at once above the sustained rate.
    pub orchestrate_burst: u32,
    /// `rate_limit_unary_per_sec`: other calls per second (sustained).
    pub unary_per_sec: u32,
    /// `rate_limit_unary_burst`: other calls at once above the sustained rate.
    pub unary_burst: u32,
    /// `rate_limit_images_per_minute`: images a tenant may submit per minute.
    pub images_per_minute: u32,
    /// `rate_limit_open_streams`: server streams one tenant may hold open at once.
    pub open_streams: u32,
    /// `rate_limit_tenants`: tenants whose state is kept; the longest idle ones are forgotten beyond this.
    pub tenants: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Config::default().limits
    }
}

/// What is kept, and how often the rest is removed (`retention_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionSettings {
    /// `retention_keep_turns`: newest conversation turns per project kept unarchived.
    pub keep_turns: u32,
    /// `retention_event_hours`: events older than this are deleted.
    pub event_age: Duration,
    /// `retention_job_hours`: finished jobs older than this are deleted.
    pub job_age: Duration,
    /// `idempotency_window_hours`: idempotency keys older than this are forgotten.
    pub idempotency_window: Duration,
    /// `retention_image_days`: finished image analyses older than this are deleted, unless their
    /// project changed within `active_project_window`.
    pub image_age: Duration,
    /// `retention_active_project_days`: a project changed within this keeps its old image analyses.
    pub active_project_window: Duration,
    /// `retention_archive_turn_days`: conversation turns older than this are archived.
    pub archive_turn_age: Duration,
    /// `retention_inactive_project_days`: in a project unchanged for this long, memory items
    /// below `min_confidence` are deleted.
    pub inactive_project_age: Duration,
    /// `retention_min_confidence`: see `inactive_project_age`; 0 to 1.
    pub min_confidence: f64,
    /// `retention_interval_ms`: how often the server applies retention to every tenant by itself;
    /// zero turns it off.
    pub interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        FlatConfig::default().into_config()
    }
}

/// `BRAIN_*` variables that belong to other programs sharing the prefix: BRAIN_CONFIG names the
/// config file, BRAIN_ADDR / BRAIN_API_KEY configure the `brain` CLI, BRAIN_SERVER_BIN points
/// client test suites at a server binary (BRAIN_TEST_* and BRAIN_CI_* belong to tests and CI).
/// Every other unknown `BRAIN_*` variable is an error, so a typo cannot silently fall back to a default.
const CLIENT_ENV_KEYS: [&str; 4] = ["config", "addr", "api_key", "server_bin"];

/// Keys that hold secrets: never printed or logged.
const SECRET_KEYS: [&str; 2] = ["openai_api_key", "sentry_dsn"];

/// Where configuration comes from, besides the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config PATH`; when unset, `brain.toml` in the working directory is read if it exists.
    pub file: Option<PathBuf>,
    /// Flag overrides, as `key=value` (values parsed as TOML, falling back to strings).
    pub overrides: Vec<(String, String)>,
}

/// A configuration that failed to load or validate; lists every problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads defaults, the config file, `BRAIN_*` variables and flag overrides, then validates.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(sources, &env)
    }

    /// [`Config::load`] with an explicit environment, for tests.
    ///
    /// Every problem is reported at once, in the user's terms: where the setting came from (the
    /// file, the variable, the flag), the value, and what is allowed. A setting that is unknown or
    /// of the wrong type is left out, so the range checks still run on the rest.
    pub fn load_from(sources: &Sources, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let known = Self::keys();
        let mut problems = Vec::new();
        // Later layers win: the file, then the environment, then flags. Each value remembers
        // where it came from, for the message that names it.
        let mut layers: Vec<(String, String, toml::Value)> = Vec::new();

        let file = match &sources.file {
            Some(path) if !path.exists() => {
                problems.push(format!("config file {} does not exist", path.display()));
                None
            }
            Some(path) => Some(path.clone()),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => Some(PathBuf::from(DEFAULT_CONFIG_FILE)),
            None => None,
        };
        if let Some(path) = file {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| text.parse::<toml::Table>().map_err(|e| crate::redact::text(&e.to_string())))
            {
                Ok(table) => {
                    for (key, value) in table {
                        if known.contains(&key) {
                            layers.push((format!("{} {key}", path.display()), key, value));
                        } else {
                            problems
                                .push(format!("{} {key}: unknown setting (see docs/CONFIGURATION.md)", path.display()));
                        }
                    }
                }
                Err(e) => problems.push(format!("config file {}: {e}", path.display())),
            }
        }

        for (name, value) in env {
            let key = match name.strip_prefix("BRAIN_") {
                Some(rest) => rest.to_ascii_lowercase(),
                None if name == "SENTRY_DSN" => "sentry_dsn".to_owned(),
                None => continue,
            };
            if CLIENT_ENV_KEYS.contains(&key.as_str()) || key.starts_with("test_") || key.starts_with("ci_") {
                continue;
            }
            if !known.contains(&key) {
                problems.push(format!("{name}: unknown setting (see docs/CONFIGURATION.md)"));
                continue;
            }
            layers.push((name.clone(), key.clone(), typed_value(&key, value)));
        }
        // SENTRY_DSN is the SDK's conventional name; BRAIN_SENTRY_DSN wins when both are set.
        if let Some(i) = layers.iter().position(|(source, _, _)| source == "BRAIN_SENTRY_DSN") {
            let preferred = layers.remove(i);
            layers.push(preferred);
        }

        for (key, value) in &sources.overrides {
            let key = key.replace('-', "_");
            if !known.contains(&key) {
                problems.push(format!("--set {key}: unknown setting"));
                continue;
            }
            layers.push((format!("--set {key}"), key.clone(), typed_value(&key, value)));
        }

        let mut accepted = toml::Table::new();
        for (source, key, value) in layers {
            match type_problem(&key, &value) {
                Some(problem) if source.contains(&key) => problems.push(format!("{source}: {problem}")),
                Some(problem) => problems.push(format!("{source} ({key}): {problem}")),
                None => {
                    accepted.insert(key, value);
                }
            }
        }
        let flat: FlatConfig = Figment::from(Serialized::defaults(FlatConfig::default()))
            .merge(Serialized::defaults(accepted))
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| crate::redact::text(&describe(&e))).collect()))?;
        if let Err(ConfigError(range)) = flat.validate() {
            problems.extend(range);
        }
        if problems.is_empty() { Ok(flat.into_config()) } else { Err(ConfigError(problems)) }
    }

    /// Every setting's key, optional ones without a default included.
    pub fn keys() -> Vec<String> {
        match toml::Value::try_from(FlatConfig::default()) {
            Ok(toml::Value::Table(t)) => {
                let mut keys: Vec<String> = t.keys().cloned().collect();
                // Optional settings without a default are skipped by TOML serialisation.
                for optional in TEXT_KEYS {
                    if !keys.iter().any(|k| k == optional) {
                        keys.push(optional.to_owned());
                    }
                }
                keys
            }
            _ => Vec::new(),
        }
    }

    /// Checks ranges and combinations, in terms of the keys; returns every problem at once.
    /// [`Config::load`] has done it already; this is for a configuration built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        FlatConfig::from_config(self).validate()
    }

    /// Registers every secret of the configuration with [`crate::redact`]: the database
    /// URL's password and secret parameters, the OpenAI key and any userinfo in its base
    /// URL, and the Sentry DSN (whole and its keys).
    pub fn register_secrets(&self) {
        crate::redact::register_url(self.store.database_url.expose());
        crate::redact::register_url(self.openai.base_url.expose());
        if let Some(key) = &self.openai.api_key {
            crate::redact::register(key.expose());
        }
        if let Some(dsn) = &self.telemetry.sentry_dsn {
            crate::redact::register(dsn.expose());
            crate::redact::register_url(dsn.expose());
        }
    }

    /// The configuration as TOML, in the keys users type, with secrets replaced: for
    /// `brain-server config`.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(FlatConfig::from_config(self)) {
            Ok(toml::Value::Table(t)) => t,
            _ => return String::from("<unprintable configuration>"),
        };
        for (key, v) in value.iter_mut() {
            if SECRET_KEYS.contains(&key.as_str()) {
                *v = toml::Value::String(crate::redact::REDACTED.into());
            } else if let toml::Value::String(text) = v {
                // URLs (database_url, openai_base_url) keep everything but their credentials.
                *text = crate::redact::text(text);
            }
        }
        toml::to_string(&value).unwrap_or_default()
    }
}

/// The keys users type, as the file, `BRAIN_*` variables and `--set` spell them: field for field
/// docs/CONFIGURATION.md, with its defaults. Read, checked and printed only here.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FlatConfig {
    // --- server ---
    listen_addr: SocketAddr,
    insecure: bool,
    ready_file: Option<PathBuf>,
    statement_log_file: Option<PathBuf>,
    log_format: LogFormat,
    log_level: String,
    max_message_bytes: usize,
    max_concurrent_requests: usize,
    request_timeout_ms: u64,
    shutdown_grace_ms: u64,
    shutdown_delay_ms: u64,
    health_probe_interval_ms: u64,
    health_probe_timeout_ms: u64,
    stream_heartbeat_ms: u64,
    auth_cache_ttl_ms: u64,
    environment: String,

    // --- database ---
    database_url: String,
    db_max_connections: u32,
    db_acquire_timeout_ms: u64,
    sqlite_busy_timeout_ms: u64,
    sqlite_synchronous: SqliteSync,

    // --- orchestration ---
    token_budget: u32,
    max_prompt_bytes: usize,
    recent_turns: u32,
    context_max_preferences: u32,
    context_cache_capacity: u64,
    decider: DeciderKind,
    openai_base_url: String,
    openai_api_key: Option<String>,
    openai_model: String,
    openai_timeout_ms: u64,
    openai_deadline_ms: u64,
    openai_max_retries: u32,
    openai_backoff_ms: u64,
    openai_breaker_threshold: u32,
    openai_breaker_cooldown_ms: u64,

    // --- images ---
    vision: VisionKind,
    vision_model: String,
    max_image_bytes: usize,
    max_images_per_request: u32,
    max_image_pixels: u64,
    image_fetch_connect_timeout_ms: u64,
    image_fetch_timeout_ms: u64,
    image_fetch_max_redirects: u32,
    allow_private_image_urls: bool,
    job_workers: u32,
    job_max_attempts: u32,
    job_lease_ms: u64,
    job_backoff_ms: u64,
    job_poll_interval_ms: u64,
    image_facts_cache_ttl_ms: u64,
    image_facts_cache_capacity: u64,
    image_wait_ms: u64,

    // --- performance and observability ---
    #[serde(deserialize_with = "optional_addr")]
    metrics_addr: Option<SocketAddr>,
    perf_old_context_ms: f64,
    perf_old_decision_ms: f64,
    perf_old_image_ms: f64,
    perf_improvement_target: f64,
    perf_anomaly_p95_ms: f64,
    perf_anomaly_interval_ms: u64,
    perf_max_series: u32,
    sentry_dsn: Option<String>,

    // --- tenant isolation (every bound is per replica) ---
    perf_max_series_per_tenant: u32,
    image_fetch_min_bytes_per_sec: u64,
    image_fetch_rate_grace_ms: u64,
    image_fetch_slow_max_attempts: u32,
    rate_limit_orchestrate_per_sec: u32,
    rate_limit_orchestrate_burst: u32,
    rate_limit_unary_per_sec: u32,
    rate_limit_unary_burst: u32,
    rate_limit_images_per_minute: u32,
    rate_limit_open_streams: u32,
    rate_limit_tenants: u32,

    // --- retention ---
    retention_keep_turns: u32,
    retention_event_hours: u64,
    retention_job_hours: u64,
    idempotency_window_hours: u64,
    retention_image_days: u64,
    retention_active_project_days: u64,
    retention_archive_turn_days: u64,
    retention_inactive_project_days: u64,
    retention_min_confidence: f64,
    retention_interval_ms: u64,
}

impl Default for FlatConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            insecure: false,
            ready_file: None,
            statement_log_file: None,
            log_format: LogFormat::Pretty,
            log_level: "info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn,hyper=warn".into(),
            max_message_bytes: 64 << 20,
            max_concurrent_requests: 1024,
            request_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            shutdown_delay_ms: 0,
            health_probe_interval_ms: 500,
            health_probe_timeout_ms: 1_000,
            stream_heartbeat_ms: 15_000,
            auth_cache_ttl_ms: 30_000,
            environment: "development".into(),

            database_url: "sqlite://data/brain.db".into(),
            db_max_connections: 8,
            db_acquire_timeout_ms: 5_000,
            sqlite_busy_timeout_ms: 5_000,
            sqlite_synchronous: SqliteSync::Normal,

            token_budget: 120_000,
            max_prompt_bytes: 32 * 1024,
            recent_turns: 10,
            context_max_preferences: 100,
            context_cache_capacity: 10_000,
            decider: DeciderKind::Rules,
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: None,
            openai_model: "gpt-4o-mini".into(),
            openai_timeout_ms: 5_000,
            openai_deadline_ms: 10_000,
            openai_max_retries: 2,
            openai_backoff_ms: 200,
            openai_breaker_threshold: 5,
            openai_breaker_cooldown_ms: 30_000,

            vision: VisionKind::Pixels,
            vision_model: "gpt-4o-mini".into(),
            max_image_bytes: 20 << 20,
            max_images_per_request: 8,
            max_image_pixels: 64_000_000,
            image_fetch_connect_timeout_ms: 3_000,
            image_fetch_timeout_ms: 15_000,
            image_fetch_max_redirects: 3,
            allow_private_image_urls: false,
            job_workers: 2,
            job_max_attempts: 5,
            job_lease_ms: 30_000,
            job_backoff_ms: 500,
            job_poll_interval_ms: 1_000,
            image_facts_cache_ttl_ms: 600_000,
            image_facts_cache_capacity: 10_000,
            image_wait_ms: 60_000,

            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            perf_old_context_ms: 500.0,
            perf_old_decision_ms: 2_000.0,
            perf_old_image_ms: 3_000.0,
            perf_improvement_target: 0.30,
            perf_anomaly_p95_ms: 250.0,
            perf_anomaly_interval_ms: 10_000,
            perf_max_series: 2_000,
            sentry_dsn: None,

            perf_max_series_per_tenant: 500,
            image_fetch_min_bytes_per_sec: 4_096,
            image_fetch_rate_grace_ms: 1_000,
            image_fetch_slow_max_attempts: 2,
            rate_limit_orchestrate_per_sec: 200,
            rate_limit_orchestrate_burst: 1_000,
            rate_limit_unary_per_sec: 2_000,
            rate_limit_unary_burst: 10_000,
            rate_limit_images_per_minute: 6_000,
            rate_limit_open_streams: 1_000,
            rate_limit_tenants: 10_000,

            retention_keep_turns: 200,
            retention_event_hours: 24 * 7,
            retention_job_hours: 24,
            idempotency_window_hours: 24,
            retention_interval_ms: 3_600_000,
            retention_image_days: 30,
            retention_active_project_days: 7,
            retention_archive_turn_days: 90,
            retention_inactive_project_days: 180,
            retention_min_confidence: 0.3,
        }
    }
}

impl FlatConfig {
    /// Checks ranges and combinations; returns every problem at once.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        let mut positive = |name: &str, value: u64| {
            if value == 0 {
                p.push(format!("{name}: must be greater than 0"));
            }
        };
        positive("max_message_bytes", self.max_message_bytes as u64);
        positive("max_concurrent_requests", self.max_concurrent_requests as u64);
        positive("request_timeout_ms", self.request_timeout_ms);
        positive("health_probe_interval_ms", self.health_probe_interval_ms);
        positive("health_probe_timeout_ms", self.health_probe_timeout_ms);
        positive("stream_heartbeat_ms", self.stream_heartbeat_ms);
        positive("db_max_connections", u64::from(self.db_max_connections));
        positive("db_acquire_timeout_ms", self.db_acquire_timeout_ms);
        positive("max_prompt_bytes", self.max_prompt_bytes as u64);
        positive("context_cache_capacity", self.context_cache_capacity);
        positive("context_max_preferences", u64::from(self.context_max_preferences));
        positive("openai_timeout_ms", self.openai_timeout_ms);
        positive("openai_deadline_ms", self.openai_deadline_ms);
        positive("openai_breaker_threshold", u64::from(self.openai_breaker_threshold));
        positive("max_image_bytes", self.max_image_bytes as u64);
        positive("max_images_per_request", u64::from(self.max_images_per_request));
        positive("max_image_pixels", self.max_image_pixels);
        positive("image_fetch_connect_timeout_ms", self.image_fetch_connect_timeout_ms);
        positive("image_fetch_timeout_ms", self.image_fetch_timeout_ms);
        positive("job_max_attempts", u64::from(self.job_max_attempts));
        positive("job_lease_ms", self.job_lease_ms);
        positive("job_poll_interval_ms", self.job_poll_interval_ms);
        positive("image_facts_cache_ttl_ms", self.image_facts_cache_ttl_ms);
        positive("image_facts_cache_capacity", self.image_facts_cache_capacity);
        positive("perf_anomaly_interval_ms", self.perf_anomaly_interval_ms);
        positive("perf_max_series", u64::from(self.perf_max_series));
        positive("perf_max_series_per_tenant", u64::from(self.perf_max_series_per_tenant));
        positive("image_fetch_slow_max_attempts", u64::from(self.image_fetch_slow_max_attempts));
        positive("rate_limit_tenants", u64::from(self.rate_limit_tenants));
        for (name, rate, burst) in [
            ("rate_limit_orchestrate_burst", self.rate_limit_orchestrate_per_sec, self.rate_limit_orchestrate_burst),
            ("rate_limit_unary_burst", self.rate_limit_unary_per_sec, self.rate_limit_unary_burst),
        ] {
            if rate > 0 && burst == 0 {
                p.push(format!("{name}: must be greater than 0 while its rate limit is on"));
            }
        }
        if self.rate_limit_images_per_minute > 0 && self.rate_limit_images_per_minute < self.max_images_per_request {
            p.push(format!(
                "rate_limit_images_per_minute ({}) must be 0 (off) or at least max_images_per_request ({}), \
                 or a request with the most images could never be admitted",
                self.rate_limit_images_per_minute, self.max_images_per_request
            ));
        }

        if self.token_budget == 0 || self.token_budget > MODEL_WINDOW_TOKENS {
            p.push(format!(
                "token_budget: {} is outside 1..={MODEL_WINDOW_TOKENS} (GPT-4o's window)",
                self.token_budget
            ));
        }
        if self.health_probe_timeout_ms + self.health_probe_interval_ms > 2_000 {
            p.push(
                "health_probe_interval_ms + health_probe_timeout_ms: must be at most 2000 so health \
                 flips within 2 s of the store going away"
                    .into(),
            );
        }
        if self.max_image_bytes > self.max_message_bytes {
            p.push(format!(
                "max_image_bytes ({}) must not exceed max_message_bytes ({})",
                self.max_image_bytes, self.max_message_bytes
            ));
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            p.push(format!(
                "database_url: '{}' is neither sqlite:PATH nor postgres://...",
                crate::redact::url(&self.database_url)
            ));
        }
        if self.decider == DeciderKind::Openai && self.openai_base_url.trim().is_empty() {
            p.push("decider=openai needs openai_base_url".into());
        }
        // Local OpenAI-compatible servers may need no key; OpenAI itself always does.
        if self.decider == DeciderKind::Openai
            && self.openai_api_key.is_none()
            && self.openai_base_url.contains("api.openai.com")
        {
            p.push("decider=openai with api.openai.com needs openai_api_key".into());
        }
        if self.openai_max_retries > MAX_OPENAI_RETRIES {
            p.push(format!("openai_max_retries: {} is above {MAX_OPENAI_RETRIES}", self.openai_max_retries));
        }
        if !self.openai_base_url.starts_with("http://") && !self.openai_base_url.starts_with("https://") {
            p.push(format!("openai_base_url: '{}' is not an http(s) URL", crate::redact::url(&self.openai_base_url)));
        }
        for (name, value) in [
            ("perf_old_context_ms", self.perf_old_context_ms),
            ("perf_old_decision_ms", self.perf_old_decision_ms),
            ("perf_old_image_ms", self.perf_old_image_ms),
            ("perf_anomaly_p95_ms", self.perf_anomaly_p95_ms),
        ] {
            if !value.is_finite() || value < 0.0 {
                p.push(format!("{name}: must be a non-negative number"));
            }
        }
        if !(0.0..=1.0).contains(&self.perf_improvement_target) {
            p.push("perf_improvement_target: must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.retention_min_confidence) {
            p.push("retention_min_confidence: must be between 0 and 1".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            p.push(format!("log_level: '{}' is not a valid filter", self.log_level));
        }
        if p.is_empty() { Ok(()) } else { Err(ConfigError(p)) }
    }

    /// The sections the code uses. [`FlatConfig::from_config`] is its inverse, and the compiler
    /// checks that one is complete (every key set, every section field read); the round-trip test
    /// checks that no key is lost or swapped on the way.
    fn into_config(self) -> Config {
        Config {
            server: ServerSettings {
                listen_addr: self.listen_addr,
                metrics_addr: self.metrics_addr,
                ready_file: self.ready_file,
                max_message_bytes: self.max_message_bytes,
                max_concurrent_requests: self.max_concurrent_requests,
                request_timeout: millis(self.request_timeout_ms),
                stream_heartbeat: millis(self.stream_heartbeat_ms),
            },
            auth: AuthSettings { insecure: self.insecure, cache_ttl: millis(self.auth_cache_ttl_ms) },
            health: HealthSettings {
                probe_interval: millis(self.health_probe_interval_ms),
                probe_timeout: millis(self.health_probe_timeout_ms),
            },
            shutdown: ShutdownSettings { grace: millis(self.shutdown_grace_ms), delay: millis(self.shutdown_delay_ms) },
            telemetry: TelemetrySettings {
                log_format: self.log_format,
                log_level: self.log_level,
                environment: self.environment,
                sentry_dsn: self.sentry_dsn.map(Secret::new),
            },
            store: StoreSettings {
                database_url: Secret::url(self.database_url),
                max_connections: self.db_max_connections,
                acquire_timeout: millis(self.db_acquire_timeout_ms),
                sqlite_busy_timeout: millis(self.sqlite_busy_timeout_ms),
                sqlite_synchronous: self.sqlite_synchronous,
                statement_log_file: self.statement_log_file,
            },
            orchestration: OrchestrationSettings {
                token_budget: self.token_budget,
                max_prompt_bytes: self.max_prompt_bytes,
                recent_turns: self.recent_turns,
                max_preferences: self.context_max_preferences,
                context_cache_capacity: self.context_cache_capacity,
                decider: self.decider,
                image_wait: millis(self.image_wait_ms),
            },
            openai: OpenAiSettings {
                base_url: Secret::url(self.openai_base_url),
                api_key: self.openai_api_key.map(Secret::new),
                model: self.openai_model,
                vision_model: self.vision_model,
                timeout: millis(self.openai_timeout_ms),
                deadline: millis(self.openai_deadline_ms),
                max_retries: self.openai_max_retries,
                backoff: millis(self.openai_backoff_ms),
                breaker_threshold: self.openai_breaker_threshold,
                breaker_cooldown: millis(self.openai_breaker_cooldown_ms),
            },
            images: ImageSettings {
                vision: self.vision,
                max_bytes: self.max_image_bytes,
                max_per_request: self.max_images_per_request,
                max_pixels: self.max_image_pixels,
                allow_private_urls: self.allow_private_image_urls,
                facts_cache_ttl: millis(self.image_facts_cache_ttl_ms),
                facts_cache_capacity: self.image_facts_cache_capacity,
                fetch: ImageFetchSettings {
                    connect_timeout: millis(self.image_fetch_connect_timeout_ms),
                    timeout: millis(self.image_fetch_timeout_ms),
                    max_redirects: self.image_fetch_max_redirects,
                    min_bytes_per_sec: self.image_fetch_min_bytes_per_sec,
                    rate_grace: millis(self.image_fetch_rate_grace_ms),
                    slow_max_attempts: self.image_fetch_slow_max_attempts,
                },
            },
            jobs: JobSettings {
                workers: self.job_workers,
                max_attempts: self.job_max_attempts,
                lease: millis(self.job_lease_ms),
                backoff: millis(self.job_backoff_ms),
                poll_interval: millis(self.job_poll_interval_ms),
            },
            perf: PerfSettings {
                old_context_ms: self.perf_old_context_ms,
                old_decision_ms: self.perf_old_decision_ms,
                old_image_ms: self.perf_old_image_ms,
                improvement_target: self.perf_improvement_target,
                anomaly_p95_ms: self.perf_anomaly_p95_ms,
                anomaly_interval: millis(self.perf_anomaly_interval_ms),
                max_series: self.perf_max_series as usize,
                max_series_per_tenant: self.perf_max_series_per_tenant as usize,
            },
            limits: LimitSettings {
                orchestrate_per_sec: self.rate_limit_orchestrate_per_sec,
                orchestrate_burst: self.rate_limit_orchestrate_burst,
                unary_per_sec: self.rate_limit_unary_per_sec,
                unary_burst: self.rate_limit_unary_burst,
                images_per_minute: self.rate_limit_images_per_minute,
                open_streams: self.rate_limit_open_streams,
                tenants: self.rate_limit_tenants.max(1) as usize,
            },
            retention: RetentionSettings {
                keep_turns: self.retention_keep_turns,
                event_age: hours(self.retention_event_hours),
                job_age: hours(self.retention_job_hours),
                idempotency_window: hours(self.idempotency_window_hours),
                image_age: days(self.retention_image_days),
                active_project_window: days(self.retention_active_project_days),
                archive_turn_age: days(self.retention_archive_turn_days),
                inactive_project_age: days(self.retention_inactive_project_days),
                min_confidence: self.retention_min_confidence,
                interval: millis(self.retention_interval_ms),
            },
        }
    }

    /// The keys of a configuration, for printing and checking it. Every section is destructured,
    /// so a section field without a key does not compile (it is an unused variable), and the
    /// result is a struct literal, so neither does a key without a value.
    fn from_config(config: &Config) -> Self {
        let Config {
            server,
            auth,
            health,
            shutdown,
            telemetry,
            store,
            orchestration,
            openai,
            images,
            jobs,
            perf,
            limits,
            retention,
        } = config.clone();
        let ServerSettings {
            listen_addr,
            metrics_addr,
            ready_file,
            max_message_bytes,
            max_concurrent_requests,
            request_timeout,
            stream_heartbeat,
        } = server;
        let AuthSettings { insecure, cache_ttl } = auth;
        let HealthSettings { probe_interval, probe_timeout } = health;
        let ShutdownSettings { grace, delay } = shutdown;
        let TelemetrySettings { log_format, log_level, environment, sentry_dsn } = telemetry;
        let StoreSettings {
            database_url,
            max_connections,
            acquire_timeout,
            sqlite_busy_timeout,
            sqlite_synchronous,
            statement_log_file,
        } = store;
        let OrchestrationSettings {
            token_budget,
            max_prompt_bytes,
            recent_turns,
            max_preferences,
            context_cache_capacity,
            decider,
            image_wait,
        } = orchestration;
        let OpenAiSettings {
            base_url,
            api_key,
            model,
            vision_model,
            timeout: openai_timeout,
            deadline,
            max_retries,
            backoff: openai_backoff,
            breaker_threshold,
            breaker_cooldown,
        } = openai;
        let ImageSettings {
            vision,
            max_bytes,
            max_per_request,
            max_pixels,
            allow_private_urls,
            facts_cache_ttl,
            facts_cache_capacity,
            fetch,
        } = images;
        let ImageFetchSettings {
            connect_timeout,
            timeout: fetch_timeout,
            max_redirects,
            min_bytes_per_sec,
            rate_grace,
            slow_max_attempts,
        } = fetch;
        let JobSettings { workers, max_attempts, lease, backoff: job_backoff, poll_interval } = jobs;
        let PerfSettings {
            old_context_ms,
            old_decision_ms,
            old_image_ms,
            improvement_target,
            anomaly_p95_ms,
            anomaly_interval,
            max_series,
            max_series_per_tenant,
        } = perf;
        let LimitSettings {
            orchestrate_per_sec,
            orchestrate_burst,
            unary_per_sec,
            unary_burst,
            images_per_minute,
            open_streams,
            tenants,
        } = limits;
        let RetentionSettings {
            keep_turns,
            event_age,
            job_age,
            idempotency_window,
            image_age,
            active_project_window,
            archive_turn_age,
            inactive_project_age,
            min_confidence,
            interval,
        } = retention;
        FlatConfig {
            listen_addr,
            insecure,
            ready_file,
            statement_log_file,
            log_format,
            log_level,
            max_message_bytes,
            max_concurrent_requests,
            request_timeout_ms: in_millis(request_timeout),
            shutdown_grace_ms: in_millis(grace),
            shutdown_delay_ms: in_millis(delay),
            health_probe_interval_ms: in_millis(probe_interval),
            health_probe_timeout_ms: in_millis(probe_timeout),
            stream_heartbeat_ms: in_millis(stream_heartbeat),
            auth_cache_ttl_ms: in_millis(cache_ttl),
            environment,
            database_url: database_url.expose().to_owned(),
            db_max_connections: max_connections,
            db_acquire_timeout_ms: in_millis(acquire_timeout),
            sqlite_busy_timeout_ms: in_millis(sqlite_busy_timeout),
            sqlite_synchronous,
            token_budget,
            max_prompt_bytes,
            recent_turns,
            context_max_preferences: max_preferences,
            context_cache_capacity,
            decider,
            openai_base_url: base_url.expose().to_owned(),
            openai_api_key: api_key.map(|key| key.expose().to_owned()),
            openai_model: model,
            openai_timeout_ms: in_millis(openai_timeout),
            openai_deadline_ms: in_millis(deadline),
            openai_max_retries: max_retries,
            openai_backoff_ms: in_millis(openai_backoff),
            openai_breaker_threshold: breaker_threshold,
            openai_breaker_cooldown_ms: in_millis(breaker_cooldown),
            vision,
            vision_model,
            max_image_bytes: max_bytes,
            max_images_per_request: max_per_request,
            max_image_pixels: max_pixels,
            image_fetch_connect_timeout_ms: in_millis(connect_timeout),
            image_fetch_timeout_ms: in_millis(fetch_timeout),
            image_fetch_max_redirects: max_redirects,
            allow_private_image_urls: allow_private_urls,
            job_workers: workers,
            job_max_attempts: max_attempts,
            job_lease_ms: in_millis(lease),
            job_backoff_ms: in_millis(job_backoff),
            job_poll_interval_ms: in_millis(poll_interval),
            image_facts_cache_ttl_ms: in_millis(facts_cache_ttl),
            image_facts_cache_capacity: facts_cache_capacity,
            image_wait_ms: in_millis(image_wait),
            metrics_addr,
            perf_old_context_ms: old_context_ms,
            perf_old_decision_ms: old_decision_ms,
            perf_old_image_ms: old_image_ms,
            perf_improvement_target: improvement_target,
            perf_anomaly_p95_ms: anomaly_p95_ms,
            perf_anomaly_interval_ms: in_millis(anomaly_interval),
            perf_max_series: saturating_u32(max_series),
            sentry_dsn: sentry_dsn.map(|dsn| dsn.expose().to_owned()),
            perf_max_series_per_tenant: saturating_u32(max_series_per_tenant),
            image_fetch_min_bytes_per_sec: min_bytes_per_sec,
            image_fetch_rate_grace_ms: in_millis(rate_grace),
            image_fetch_slow_max_attempts: slow_max_attempts,
            rate_limit_orchestrate_per_sec: orchestrate_per_sec,
            rate_limit_orchestrate_burst: orchestrate_burst,
            rate_limit_unary_per_sec: unary_per_sec,
            rate_limit_unary_burst: unary_burst,
            rate_limit_images_per_minute: images_per_minute,
            rate_limit_open_streams: open_streams,
            rate_limit_tenants: saturating_u32(tenants),
            retention_keep_turns: keep_turns,
            retention_event_hours: in_hours(event_age),
            retention_job_hours: in_hours(job_age),
            idempotency_window_hours: in_hours(idempotency_window),
            retention_image_days: in_days(image_age),
            retention_active_project_days: in_days(active_project_window),
            retention_archive_turn_days: in_days(archive_turn_age),
            retention_inactive_project_days: in_days(inactive_project_age),
            retention_min_confidence: min_confidence,
            retention_interval_ms: in_millis(interval),
        }
    }
}

const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

/// A `*_ms` key's duration.
fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A `*_hours` key's duration; beyond about 5·10^15 hours (what a `Duration` holds) it saturates,
/// which is as good as forever.
fn hours(hours: u64) -> Duration {
    Duration::from_secs(hours.saturating_mul(HOUR.as_secs()))
}

/// A `*_days` key's duration, saturating as [`hours`] does.
fn days(days: u64) -> Duration {
    Duration::from_secs(days.saturating_mul(DAY.as_secs()))
}

fn in_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn in_hours(d: Duration) -> u64 {
    d.as_secs() / HOUR.as_secs()
}

fn in_days(d: Duration) -> u64 {
    d.as_secs() / DAY.as_secs()
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Settings whose values are text (strings, paths, addresses, URLs, secrets):
/// their raw value is used as is, so a numeric-looking secret stays a string.
const TEXT_KEYS: [&str; 5] = ["ready_file", "statement_log_file", "openai_api_key", "sentry_dsn", "metrics_addr"];

/// Converts a flag or environment value to the TOML type its setting expects.
fn typed_value(key: &str, raw: &str) -> toml::Value {
    let default_is_text = matches!(
        toml::Value::try_from(FlatConfig::default()).ok().as_ref().and_then(|t| t.get(key)),
        Some(toml::Value::String(_))
    );
    if default_is_text || TEXT_KEYS.contains(&key) { toml::Value::String(raw.to_owned()) } else { parse_value(raw) }
}

/// Parses a value as TOML (numbers, booleans, arrays), falling back to a plain string.
fn parse_value(raw: &str) -> toml::Value {
    let wrapped = format!("v = {raw}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// Why `value` cannot be setting `key` (its type), or None when it can.
fn type_problem(key: &str, value: &toml::Value) -> Option<String> {
    let mut one = toml::Table::new();
    one.insert(key.to_owned(), value.clone());
    let result: Result<FlatConfig, figment::Error> =
        Figment::from(Serialized::defaults(FlatConfig::default())).merge(Serialized::defaults(one)).extract();
    let errors = result.err()?;
    let described: Vec<String> = errors.into_iter().map(|e| describe(&e)).collect();
    Some(crate::redact::text(&described.join("; ")))
}

/// A figment error as the user would say it: the value and what is allowed, without figment's
/// profile and the source location of the layer that carried it.
fn describe(error: &figment::Error) -> String {
    use figment::error::Kind;
    match &error.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("{actual} is not allowed, expected {expected}")
        }
        Kind::Message(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Reads an optional socket address where "off" or "" means none.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") | Some("off") | Some("none") => Ok(None),
        Some(addr) => addr.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The configuration of this environment and no file or flags.
    fn loaded(pairs: &[(&str, &str)]) -> Config {
        Config::load_from(&Sources::default(), &env(pairs)).expect("load")
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::load_from(&Sources::default(), &[]).expect("defaults load");
        assert!(c.store.is_sqlite());
        assert_eq!(c.orchestration.token_budget, 120_000);
        assert_eq!(c.server.listen_addr.to_string(), "127.0.0.1:50051");
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("brain.toml");
        std::fs::write(&file, "token_budget = 1000\nrecent_turns = 3\njob_workers = 7\n").expect("write");
        let sources = Sources { file: Some(file), overrides: vec![("job_workers".into(), "9".into())] };
        let c = Config::load_from(
            &sources,
            &env(&[
                ("BRAIN_RECENT_TURNS", "4"),
                ("BRAIN_JOB_WORKERS", "8"),
                ("BRAIN_TEST_POSTGRES_URL", "x"),
                ("BRAIN_API_KEY", "brk_for_the_cli"),
                ("BRAIN_ADDR", "127.0.0.1:1"),
            ]),
        )
        .expect("load");
        assert_eq!(c.orchestration.token_budget, 1000, "file beats default");
        assert_eq!(c.orchestration.recent_turns, 4, "env beats file");
        assert_eq!(c.jobs.workers, 9, "flag beats env");
    }

    #[test]
    fn every_problem_is_reported() {
        let err = Config::load_from(
            &Sources::default(),
            &env(&[("BRAIN_TOKEN_BUDGET", "200000"), ("BRAIN_JOB_LEASE_MS", "0"), ("BRAIN_DATABASE_URL", "mysql://x")]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("token_budget"), "{text}");
        assert!(text.contains("job_lease_ms"), "{text}");
        assert!(text.contains("database_url"), "{text}");
    }

    #[test]
    fn unknown_settings_and_bad_types_are_named() {
        let err = Config::load_from(&Sources::default(), &env(&[("BRAIN_TOKEN_BUGDET", "1")])).expect_err("typo");
        assert!(err.to_string().contains("BRAIN_TOKEN_BUGDET"), "{err}");
        let err = Config::load_from(&Sources::default(), &env(&[("BRAIN_JOB_WORKERS", "many")])).expect_err("type");
        assert!(err.to_string().contains("job_workers"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once_in_the_users_terms() {
        let sources =
            Sources { file: None, overrides: vec![("bogus".into(), "1".into()), ("token_budget".into(), "-5".into())] };
        let env = env(&[("BRAIN_JOB_WORKERS", "many"), ("BRAIN_CONTEXT_CACHE_CAPACITY", "0")]);
        let text = Config::load_from(&sources, &env).expect_err("invalid").to_string();
        assert!(text.contains("--set bogus: unknown setting"), "{text}");
        assert!(text.contains("--set token_budget: ") && text.contains("-5"), "{text}");
        assert!(text.contains("BRAIN_JOB_WORKERS (job_workers): ") && text.contains("many"), "{text}");
        assert!(text.contains("context_cache_capacity: must be greater than 0"), "{text}");
        assert!(!text.contains(".rs") && !text.contains("default."), "no source paths or profiles: {text}");
    }

    #[test]
    fn tenant_limits_are_checked() {
        let err = Config::load_from(
            &Sources::default(),
            &env(&[("BRAIN_RATE_LIMIT_IMAGES_PER_MINUTE", "3"), ("BRAIN_RATE_LIMIT_UNARY_BURST", "0")]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("rate_limit_images_per_minute (3)"), "{text}");
        assert!(text.contains("rate_limit_unary_burst"), "{text}");
        let off = env(&[("BRAIN_RATE_LIMIT_IMAGES_PER_MINUTE", "0"), ("BRAIN_RATE_LIMIT_UNARY_PER_SEC", "0")]);
        assert!(Config::load_from(&Sources::default(), &off).is_ok(), "0 turns a limit off");
    }

    #[test]
    fn metrics_can_be_turned_off() {
        let c = Config::load_from(&Sources::default(), &env(&[("BRAIN_METRICS_ADDR", "off")])).expect("load");
        assert_eq!(c.server.metrics_addr, None);
        let c = Config::load_from(&Sources::default(), &env(&[("BRAIN_METRICS_ADDR", "127.0.0.1:0")])).expect("load");
        assert_eq!(c.server.metrics_addr.map(|a| a.port()), Some(0));
    }

    /// The one redacting `Debug`: no secret of a configuration shows in it, whichever section
    /// holds it, and URLs keep all but their credentials.
    #[test]
    fn debug_shows_no_secret() {
        let c = loaded(&[
            ("BRAIN_OPENAI_API_KEY", "sk-secret"),
            ("BRAIN_DATABASE_URL", "postgres://brain:hunter2@db/brain?sslpassword=ssl-hunter3"),
            ("BRAIN_OPENAI_BASE_URL", "https://proxy-user:proxy-hunter4@llm.example/v1?api-key=az-hunter5"),
            ("SENTRY_DSN", "https://dsn-hunter6@o1.ingest.sentry.io/42"),
        ]);
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{:?}", c.openai), format!("{:?}", c.store)] {
            for secret in ["sk-secret", "hunter2", "ssl-hunter3", "proxy-hunter4", "az-hunter5", "dsn-hunter6"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
        let shown = format!("{c:?}");
        assert!(shown.contains("postgres://brain:<redacted>@db/brain?sslpassword=<redacted>"), "{shown}");
        assert!(shown.contains("https://proxy-user:<redacted>@llm.example/v1?api-key=<redacted>"), "{shown}");
        assert!(shown.contains("api_key: Some(\"<redacted>\")"), "{shown}");
        // The secrets are still there for the clients that use them.
        assert_eq!(c.openai.api_key.as_ref().map(Secret::expose), Some("sk-secret"));
        assert_eq!(c.store.database_url.expose(), "postgres://brain:hunter2@db/brain?sslpassword=ssl-hunter3");
    }

    /// Values from the environment are typed by the keys' types, then become durations.
    #[test]
    fn environment_values_become_durations() {
        let c = loaded(&[
            ("BRAIN_JOB_LEASE_MS", "500"),
            ("BRAIN_RETENTION_EVENT_HOURS", "3"),
            ("BRAIN_RETENTION_IMAGE_DAYS", "2"),
            ("BRAIN_RETENTION_INTERVAL_MS", "0"),
            ("BRAIN_OPENAI_API_KEY", "sk-x"),
        ]);
        assert_eq!(c.jobs.lease, Duration::from_millis(500));
        assert_eq!(c.retention.event_age, Duration::from_secs(3 * 3_600));
        assert_eq!(c.retention.image_age, Duration::from_secs(2 * 86_400));
        assert!(c.retention.interval.is_zero());
        let printed = c.to_redacted_toml();
        for line in ["job_lease_ms = 500", "retention_event_hours = 3", "openai_api_key = \"<redacted>\""] {
            assert!(printed.lines().any(|l| l == line), "{line} in {printed}");
        }
    }

    /// Every key reaches a section field of its own and comes back unchanged, so `brain-server
    /// config` prints what was configured: each key gets a value of its own, not its default.
    #[test]
    fn every_key_round_trips_through_the_sections() {
        assert!(FlatConfig::from_config(&Config::default()) == FlatConfig::default());
        let defaults = match toml::Value::try_from(FlatConfig::default()) {
            Ok(toml::Value::Table(t)) => t,
            other => panic!("defaults are not a table: {other:?}"),
        };
        let mut keys = toml::Table::new();
        for (key, value) in [
            ("listen_addr", "10.0.0.1:1"),
            ("metrics_addr", "10.0.0.2:2"),
            ("ready_file", "/run/brain/ready"),
            ("statement_log_file", "/run/brain/statements"),
            ("log_format", "json"),
            ("log_level", "debug"),
            ("environment", "staging"),
            ("database_url", "postgres://brain:pw@db/brain"),
            ("sqlite_synchronous", "full"),
            ("decider", "openai"),
            ("openai_base_url", "http://llm.internal/v1"),
            ("openai_api_key", "sk-key"),
            ("openai_model", "decision-model"),
            ("vision", "openai"),
            ("vision_model", "vision-model"),
            ("sentry_dsn", "https://k@sentry.internal/1"),
        ] {
            keys.insert(key.into(), toml::Value::String(value.into()));
        }
        for (i, key) in Config::keys().into_iter().enumerate() {
            let n = 1_000 + i as i64;
            let value = match defaults.get(&key) {
                Some(toml::Value::Integer(_)) => toml::Value::Integer(n),
                Some(toml::Value::Float(_)) => toml::Value::Float(n as f64 + 0.5),
                Some(toml::Value::Boolean(b)) => toml::Value::Boolean(!b),
                _ => {
                    assert!(keys.contains_key(&key), "{key} has no value in this test");
                    continue;
                }
            };
            keys.insert(key, value);
        }
        let flat: FlatConfig = toml::Value::Table(keys.clone()).try_into().expect("every key");
        let back = toml::Value::try_from(FlatConfig::from_config(&flat.into_config())).expect("the keys");
        assert_eq!(back, toml::Value::Table(keys));
    }

    /// Configuration errors quote what they found; never a secret.
    #[test]
    fn configuration_errors_carry_no_secrets() {
        let err = Config::load_from(
            &Sources::default(),
            &env(&[
                ("BRAIN_DATABASE_URL", "mysql://brain:cfg-hunter7@db/brain"),
                ("BRAIN_OPENAI_BASE_URL", "ftp://u:cfg-hunter8@llm.example/v1"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("database_url") && text.contains("openai_base_url"), "{text}");
        assert!(!text.contains("cfg-hunter7") && !text.contains("cfg-hunter8"), "{text}");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("brain.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://u:cfg-hunter9@db/x\"\njob_workers = \"postgres://u:cfg-hunter10@db/x\"\n",
        )
        .expect("write");
        let err = Config::load_from(&Sources { file: Some(file), overrides: vec![] }, &[]).expect_err("type error");
        let text = err.to_string();
        assert!(text.contains("job_workers"), "{text}");
        assert!(!text.contains("cfg-hunter10"), "{text}");
    }

    /// docs/CONFIGURATION.md and the README have a row `| `key` | `default` | meaning |` for every
    /// setting, and no row for a setting that does not exist.
    #[test]
    fn every_setting_is_documented_with_its_default() {
        for doc in ["docs/CONFIGURATION.md", "README.md"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{doc}: {e}"));
            check_documented(doc, &text);
        }
    }

    fn check_documented(doc: &str, docs: &str) {
        let defaults = match toml::Value::try_from(FlatConfig::default()) {
            Ok(toml::Value::Table(t)) => t,
            other => panic!("defaults are not a table: {other:?}"),
        };
        let keys = Config::keys();
        for key in &keys {
            let default = match defaults.get(key) {
                Some(toml::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "unset".to_owned(),
            };
            let row = format!("| `{key}` | `{default}` |");
            assert!(docs.contains(&row), "{doc} has no row starting with {row}");
        }
        for line in docs.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() > 3 && cells[2].starts_with('`') {
                let key = cells[1].trim_matches('`');
                assert!(keys.iter().any(|k| k == key), "{doc} documents unknown setting {key}");
            }
        }
    }

    #[test]
    fn the_openai_decider_is_checked() {
        let err = Config::load_from(&Sources::default(), &env(&[("BRAIN_DECIDER", "openai")])).expect_err("no key");
        assert!(err.to_string().contains("needs openai_api_key"), "{err}");
        let with_key = env(&[("BRAIN_DECIDER", "openai"), ("BRAIN_OPENAI_API_KEY", "sk-x")]);
        assert_eq!(
            Config::load_from(&Sources::default(), &with_key).expect("key").orchestration.decider,
            DeciderKind::Openai
        );
        let local = env(&[("BRAIN_DECIDER", "openai"), ("BRAIN_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]);
        assert!(Config::load_from(&Sources::default(), &local).is_ok(), "a local server may need no key");
        let err = Config::load_from(&Sources::default(), &env(&[("BRAIN_OPENAI_MAX_RETRIES", "11")])).expect_err("11");
        assert!(err.to_string().contains("openai_max_retries"), "{err}");
        let err = Config::load_from(&Sources::default(), &env(&[("BRAIN_OPENAI_DEADLINE_MS", "0")])).expect_err("0");
        assert!(err.to_string().contains("openai_deadline_ms"), "{err}");
    }

    #[test]
    fn sentry_dsn_is_read_from_its_conventional_name() {
        let c =
            Config::load_from(&Sources::default(), &env(&[("SENTRY_DSN", "http://k@127.0.0.1:1/1")])).expect("load");
        assert_eq!(c.telemetry.sentry_dsn.as_ref().map(Secret::expose), Some("http://k@127.0.0.1:1/1"));
    }
}
