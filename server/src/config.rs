//! The one place that reads configuration.
//!
//! Layers, later ones win: built-in defaults < `brain.toml` (or `--config PATH`)
//! < `BRAIN_*` environment variables < command-line flags. Keys are flat and
//! spelled the same everywhere: `token_budget` in the file is
//! `BRAIN_TOKEN_BUDGET` in the environment and `--set token_budget=...` on the
//! command line. The merged result is validated once, with every problem
//! reported together.

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{Figment, providers::Serialized};
use serde::{Deserialize, Serialize};

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

/// brain's configuration. Every field has a default, so an empty environment
/// starts a working server on SQLite.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    // --- server ---
    /// gRPC listen address. Without API keys only a loopback address is allowed (see `insecure`).
    pub listen_addr: SocketAddr,
    /// Serve on a non-loopback address without API keys.
    pub insecure: bool,
    /// Once listening, write the bound addresses as JSON to this file (for scripts and tests on port 0); health says when it serves.
    pub ready_file: Option<PathBuf>,
    /// Append the text of every distinct SQL statement the server runs to this file, one per
    /// line (no parameter values): for the query-plan check (tests/tests/query_plans.rs).
    pub statement_log_file: Option<PathBuf>,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
    /// Log filter, in `tracing-subscriber` EnvFilter syntax.
    pub log_level: String,
    /// Largest request message accepted, in bytes; larger ones are RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// RPCs handled at once across all connections; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Upper bound on a unary RPC's run time, in ms; a shorter client deadline wins.
    pub request_timeout_ms: u64,
    /// After SIGTERM, how long in-flight RPCs may take to finish, in ms.
    pub shutdown_grace_ms: u64,
    /// After SIGTERM, how long to keep serving while reporting NOT_SERVING, in ms, so load balancers stop sending first.
    pub shutdown_delay_ms: u64,
    /// How often health probes the store, in ms.
    pub health_probe_interval_ms: u64,
    /// How long a store probe may take before the store counts as down, in ms.
    pub health_probe_timeout_ms: u64,
    /// Idle time after which a server stream sends a heartbeat, in ms.
    pub stream_heartbeat_ms: u64,
    /// How long a verified API key is trusted before it is checked against the store again, in ms.
    pub auth_cache_ttl_ms: u64,
    /// Deployment environment name, reported to error tracking.
    pub environment: String,

    // --- database ---
    /// `sqlite://PATH` (the embedded default; the file and its directory are created) or `postgres://...`.
    pub database_url: String,
    /// Connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    pub db_max_connections: u32,
    /// How long to wait for a pooled connection, in ms, before the store counts as unavailable.
    pub db_acquire_timeout_ms: u64,
    /// SQLite: how long a statement waits for a lock, in ms.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite: `normal` or `full`.
    pub sqlite_synchronous: SqliteSync,

    // --- orchestration ---
    /// Default token budget of an enhanced prompt (o200k_base); a request may lower it.
    pub token_budget: u32,
    /// Largest accepted prompt, in bytes; larger ones are RESOURCE_EXHAUSTED.
    pub max_prompt_bytes: usize,
    /// Conversation turns in a context packet.
    pub recent_turns: u32,
    /// User preferences a context packet considers: the highest ranked (confidence, then most
    /// recently updated). Bounds a context build's cost however many items a project collects.
    pub context_max_preferences: u32,
    /// Projects whose context packet is cached.
    pub context_cache_capacity: u64,
    /// `rules` or `openai`.
    pub decider: DeciderKind,
    /// Base URL of the OpenAI-compatible API (chat completions live at `{base}/chat/completions`).
    pub openai_base_url: String,
    /// API key for the OpenAI-compatible API.
    pub openai_api_key: Option<String>,
    /// Model used for decisions.
    pub openai_model: String,
    /// Timeout of one decision call (one attempt), in ms.
    pub openai_timeout_ms: u64,
    /// Time one decision may spend on the model across all attempts and retry delays, in ms; then the rules decide.
    pub openai_deadline_ms: u64,
    /// Retries of a failed decision call before falling back to rules.
    pub openai_max_retries: u32,
    /// First retry delay, in ms; doubles each retry.
    pub openai_backoff_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    pub openai_breaker_threshold: u32,
    /// How long the breaker stays open before one trial call, in ms.
    pub openai_breaker_cooldown_ms: u64,

    // --- images ---
    /// `pixels` or `openai`.
    pub vision: VisionKind,
    /// Model used for vision analysis.
    pub vision_model: String,
    /// Largest accepted image, inline or fetched, in bytes.
    pub max_image_bytes: usize,
    /// Images accepted in one request.
    pub max_images_per_request: u32,
    /// Largest decoded image, in pixels; bigger ones (decompression bombs) are refused before allocating.
    pub max_image_pixels: u64,
    /// Image URL fetch: TCP connect timeout, in ms.
    pub image_fetch_connect_timeout_ms: u64,
    /// Image URL fetch: total timeout, in ms.
    pub image_fetch_timeout_ms: u64,
    /// Image URL fetch: redirects followed (each one re-validated).
    pub image_fetch_max_redirects: u32,
    /// Allow image URLs on loopback and private networks. For development and tests only.
    pub allow_private_image_urls: bool,
    /// Background workers analysing images; 0 makes an API-only replica that accepts images and
    /// serves streams while other replicas (on the same PostgreSQL) analyse them.
    pub job_workers: u32,
    /// Attempts before a job fails for good.
    pub job_max_attempts: u32,
    /// Lease on a claimed job, in ms; extended while the worker runs, reclaimed when it expires.
    pub job_lease_ms: u64,
    /// First retry delay of a failed job, in ms; doubles each attempt.
    pub job_backoff_ms: u64,
    /// How often idle workers look for due jobs, in ms (new jobs also wake them at once).
    pub job_poll_interval_ms: u64,
    /// How long analysed facts stay in the image facts cache, in ms.
    pub image_facts_cache_ttl_ms: u64,
    /// Weight bound of the image facts cache, in entries.
    pub image_facts_cache_capacity: u64,
    /// Default time OrchestrateStream waits for its images' events, in ms.
    pub image_wait_ms: u64,

    // --- performance and observability ---
    /// HTTP address for `/metrics` and `/dashboard`; `off` (or empty) disables them.
    #[serde(deserialize_with = "optional_addr")]
    pub metrics_addr: Option<SocketAddr>,
    /// Old blocking flow, estimated context stage, in ms.
    pub perf_old_context_ms: f64,
    /// Old blocking flow, estimated decision stage, in ms.
    pub perf_old_decision_ms: f64,
    /// Old blocking flow, estimated image analysis stage when images are present, in ms.
    pub perf_old_image_ms: f64,
    /// Async-win target, from 0 to 1.
    pub perf_improvement_target: f64,
    /// Report a performance anomaly to error tracking when a stage's p95 exceeds this, in ms; 0 disables.
    pub perf_anomaly_p95_ms: f64,
    /// How often the last minute's p95s are checked against `perf_anomaly_p95_ms`, in ms.
    pub perf_anomaly_interval_ms: u64,
    /// (tenant, project) pairs tracked per 10-second slot of the performance report; more merge into "~other".
    pub perf_max_series: u32,
    /// Sentry DSN; also read from `SENTRY_DSN`. Unset disables error tracking.
    pub sentry_dsn: Option<String>,

    // --- tenant isolation (every bound is per replica) ---
    /// (tenant, project) pairs one tenant keeps per 10-second slot of the performance report; its
    /// others merge into its own "~other", so no tenant can take another's series.
    pub perf_max_series_per_tenant: u32,
    /// Image URL fetch: lowest average transfer rate, in bytes per second, once the grace period
    /// is over; 0 disables the check (the total timeout still applies).
    pub image_fetch_min_bytes_per_sec: u64,
    /// Image URL fetch: time the transfer rate is not checked, from sending the request, in ms.
    pub image_fetch_rate_grace_ms: u64,
    /// Attempts of an image job whose fetch timed out or was too slow (at most `job_max_attempts`).
    pub image_fetch_slow_max_attempts: u32,
    /// Orchestrate and OrchestrateStream calls per second per tenant (sustained); 0 disables.
    pub rate_limit_orchestrate_per_sec: u32,
    /// Orchestrate calls a tenant may make at once above the sustained rate.
    pub rate_limit_orchestrate_burst: u32,
    /// Other calls per second per tenant (sustained); 0 disables.
    pub rate_limit_unary_per_sec: u32,
    /// Other calls a tenant may make at once above the sustained rate.
    pub rate_limit_unary_burst: u32,
    /// Images (inline or by URL) a tenant may submit per minute; 0 disables.
    pub rate_limit_images_per_minute: u32,
    /// Server streams one tenant may hold open at once; 0 disables.
    pub rate_limit_open_streams: u32,
    /// Tenants whose rate-limit state is kept; the longest idle ones are forgotten beyond this.
    pub rate_limit_tenants: u32,

    // --- retention ---
    /// Newest conversation turns per project kept unarchived.
    pub retention_keep_turns: u32,
    /// Events older than this many hours are deleted.
    pub retention_event_hours: u64,
    /// Finished jobs older than this many hours are deleted.
    pub retention_job_hours: u64,
    /// Idempotency keys older than this many hours are forgotten.
    pub idempotency_window_hours: u64,
    /// Finished image analyses older than this many days are deleted, unless their project was
    /// active within `retention_active_project_days`.
    pub retention_image_days: u64,
    /// A project changed within this many days keeps its old image analyses.
    pub retention_active_project_days: u64,
    /// Conversation turns older than this many days are archived, however few the project has.
    pub retention_archive_turn_days: u64,
    /// In a project unchanged for this many days, memory items below `retention_min_confidence`
    /// are deleted.
    pub retention_inactive_project_days: u64,
    /// See `retention_inactive_project_days`; 0 to 1.
    pub retention_min_confidence: f64,
    /// How often the server applies retention to every tenant by itself, in ms; 0 turns it off
    /// (RunRetention still works). One replica at a time runs it.
    pub retention_interval_ms: u64,
}

impl Default for Config {
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

/// `BRAIN_*` variables that belong to other programs sharing the prefix: BRAIN_CONFIG names the
/// config file, BRAIN_ADDR / BRAIN_API_KEY configure the `brain` CLI, BRAIN_SERVER_BIN points
/// client test suites at a server binary (BRAIN_TEST_* and BRAIN_CI_* belong to tests and CI).
/// Every other unknown `BRAIN_*` variable is an error, so a typo cannot silently fall back to a default.
const CLIENT_ENV_KEYS: [&str; 4] = ["config", "addr", "api_key", "server_bin"];

/// Keys that hold secrets: never printed or logged.
const SECRET_KEYS: [&str; 2] = ["openai_api_key", "sentry_dsn"];

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_redacted_toml())
    }
}

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
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::defaults(accepted))
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| crate::redact::text(&describe(&e))).collect()))?;
        if let Err(ConfigError(range)) = config.validate() {
            problems.extend(range);
        }
        if problems.is_empty() { Ok(config) } else { Err(ConfigError(problems)) }
    }

    /// Every setting's key, optional ones without a default included.
    pub fn keys() -> Vec<String> {
        match toml::Value::try_from(Config::default()) {
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

    /// Checks ranges and combinations; returns every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
                redact_url(&self.database_url)
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
            p.push(format!("openai_base_url: '{}' is not an http(s) URL", redact_url(&self.openai_base_url)));
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

    /// True when the database is the embedded SQLite store.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Registers every secret of the configuration with [`crate::redact`]: the database
    /// URL's password and secret parameters, the OpenAI key and any userinfo in its base
    /// URL, and the Sentry DSN (whole and its keys).
    pub fn register_secrets(&self) {
        crate::redact::register_url(&self.database_url);
        crate::redact::register_url(&self.openai_base_url);
        if let Some(key) = &self.openai_api_key {
            crate::redact::register(key);
        }
        if let Some(dsn) = &self.sentry_dsn {
            crate::redact::register(dsn);
            crate::redact::register_url(dsn);
        }
    }

    /// The configuration as TOML with secrets replaced, for `brain-server config` and startup logs.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = match toml::Value::try_from(self) {
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

    /// `request_timeout_ms` as a Duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Settings whose values are text (strings, paths, addresses, URLs, secrets):
/// their raw value is used as is, so a numeric-looking secret stays a string.
const TEXT_KEYS: [&str; 5] = ["ready_file", "statement_log_file", "openai_api_key", "sentry_dsn", "metrics_addr"];

/// Converts a flag or environment value to the TOML type its setting expects.
fn typed_value(key: &str, raw: &str) -> toml::Value {
    let default_is_text = matches!(
        toml::Value::try_from(Config::default()).ok().as_ref().and_then(|t| t.get(key)),
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
    let result: Result<Config, figment::Error> =
        Figment::from(Serialized::defaults(Config::default())).merge(Serialized::defaults(one)).extract();
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

/// Hides the userinfo and secret query parameters of a URL (see [`crate::redact::url`]).
pub fn redact_url(url: &str) -> String {
    crate::redact::url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::load_from(&Sources::default(), &[]).expect("defaults load");
        assert!(c.is_sqlite());
        assert_eq!(c.token_budget, 120_000);
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:50051");
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
        assert_eq!(c.token_budget, 1000, "file beats default");
        assert_eq!(c.recent_turns, 4, "env beats file");
        assert_eq!(c.job_workers, 9, "flag beats env");
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
        assert_eq!(c.metrics_addr, None);
        let c = Config::load_from(&Sources::default(), &env(&[("BRAIN_METRICS_ADDR", "127.0.0.1:0")])).expect("load");
        assert_eq!(c.metrics_addr.map(|a| a.port()), Some(0));
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config {
            openai_api_key: Some("sk-secret".into()),
            database_url: "postgres://brain:hunter2@db/brain?sslpassword=ssl-hunter3".into(),
            openai_base_url: "https://proxy-user:proxy-hunter4@llm.example/v1?api-key=az-hunter5".into(),
            sentry_dsn: Some("https://dsn-hunter6@o1.ingest.sentry.io/42".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        for secret in ["sk-secret", "hunter2", "ssl-hunter3", "proxy-hunter4", "az-hunter5", "dsn-hunter6"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("postgres://brain:<redacted>@db/brain?sslpassword=<redacted>"), "{shown}");
        assert!(shown.contains("https://proxy-user:<redacted>@llm.example/v1?api-key=<redacted>"), "{shown}");
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
        let defaults = match toml::Value::try_from(Config::default()) {
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
        assert_eq!(Config::load_from(&Sources::default(), &with_key).expect("key").decider, DeciderKind::Openai);
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
        assert_eq!(c.sentry_dsn.as_deref(), Some("http://k@127.0.0.1:1/1"));
    }
}
