//! Logging and error tracking.
//!
//! Logs: pretty lines for a terminal or one JSON object per line (set
//! `log_format = "json"` in production), filtered by `log_level`. Logs go to
//! stderr, so stdout carries only command output (`keys create` prints the
//! key there), and colours are used only when stderr is a terminal. Every
//! line, from every crate and at every level, passes through
//! [`crate::redact::text`] on its way out, after the configured secrets
//! (database password, OpenAI key, Sentry DSN) were registered: a driver that
//! prints a connection URL or a password cannot put it in the log.
//!
//! Error tracking: when `sentry_dsn` (or `SENTRY_DSN`) is set, every ERROR
//! event becomes a Sentry event through `sentry-tracing`, and INFO/WARN
//! events before it become its breadcrumbs. Every event carries an
//! `error_class` tag (validation, not_found, permission, timeout,
//! unavailable, internal). A `before_send` hook scrubs anything that looks
//! like prompt text, image bytes or credentials, as a second line of defence:
//! the first is that brain never logs request content.
//!
//! Failures no client sees are reported through [`background_failure`].

use std::{
    collections::HashMap,
    fmt,
    io::IsTerminal,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use sentry::{
    integrations::tracing::EventFilter,
    protocol::{Breadcrumb, Context, Event, Map, Value},
};
use tracing::Level;
use tracing_subscriber::{EnvFilter, fmt as tfmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::{
    config::{Config, LogFormat},
    error::{Error, ErrorKind, Reason},
};

/// Keeps error tracking alive; dropping it flushes pending events (up to 2 s).
#[must_use = "error tracking stops when this is dropped"]
pub struct Telemetry {
    _sentry: Option<sentry::ClientInitGuard>,
}

impl Telemetry {
    /// Whether Sentry is on.
    pub fn sentry_enabled(&self) -> bool {
        self._sentry.as_ref().is_some_and(|g| g.is_enabled())
    }
}

/// Installs logging and, when a DSN is configured, error tracking.
/// Safe to call more than once (later subscribers are ignored).
pub fn init(config: &Config) -> Result<Telemetry, String> {
    // Before anything can log: from here on every line and event is redacted of these.
    config.register_secrets();
    let settings = &config.telemetry;
    let sentry = match settings.sentry_dsn.as_ref().map(|dsn| dsn.expose().trim()).filter(|d| !d.is_empty()) {
        Some(dsn) => {
            let dsn: sentry::types::Dsn = dsn.parse().map_err(|e| format!("sentry_dsn is not a valid DSN: {e}"))?;
            let mut options = sentry::ClientOptions::new();
            options.dsn = Some(dsn);
            options.release = sentry::release_name!();
            options.environment = Some(settings.environment.clone().into());
            options.send_default_pii = false;
            options.attach_stacktrace = false;
            options.max_breadcrumbs = 50;
            options.shutdown_timeout = Duration::from_secs(2);
            options.before_send = Some(Arc::new(|event| Some(prepare_event(event))));
            options.before_breadcrumb = Some(Arc::new(|crumb| Some(scrub_breadcrumb(crumb))));
            Some(sentry::init(options))
        }
        None => None,
    };

    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (json, pretty) = match settings.log_format {
        LogFormat::Json => {
            let json = tfmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(RedactedStderr);
            (Some(json), None)
        }
        LogFormat::Pretty => {
            let pretty = tfmt::layer().compact().with_ansi(std::io::stderr().is_terminal()).with_writer(RedactedStderr);
            (None, Some(pretty))
        }
    };
    // ERROR events become Sentry events, INFO and WARN their breadcrumbs; spans are not sent (no tracing product).
    let sentry_layer = sentry.is_some().then(|| {
        sentry::integrations::tracing::layer()
            .event_filter(|meta| match *meta.level() {
                Level::ERROR => EventFilter::Event,
                Level::WARN | Level::INFO => EventFilter::Breadcrumb,
                _ => EventFilter::Ignore,
            })
            .span_filter(|_| false)
    });
    let _ = tracing_subscriber::registry().with(filter).with(json).with(pretty).with(sentry_layer).try_init();
    Ok(Telemetry { _sentry: sentry })
}

/// Stderr for log lines, each one redacted of secrets before it is written.
#[derive(Debug, Clone, Copy)]
struct RedactedStderr;

impl<'a> tfmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine(Vec::with_capacity(256))
    }
}

/// One formatted event: collected whole (the formatter may write it in pieces, and a secret
/// could straddle two), redacted and written to stderr when the formatter is done with it.
struct RedactingLine(Vec<u8>);

impl std::io::Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = crate::redact::text(&String::from_utf8_lossy(&self.0));
        // Nowhere to report a failed log write.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

/// Failures that happen where no client is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// An image analysis job failed for good.
    ImageAnalysis,
    /// Persisting or publishing late image facts failed.
    LateFacts,
    /// A context packet was built without project memory.
    ContextDegraded,
    /// A stage's p95 crossed `perf_anomaly_p95_ms`.
    PerformanceAnomaly,
}

impl Failure {
    /// The `failure` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::ImageAnalysis => "image_analysis",
            Failure::LateFacts => "late_facts",
            Failure::ContextDegraded => "context_degraded",
            Failure::PerformanceAnomaly => "performance_anomaly",
        }
    }

    /// The event title; stable, so Sentry groups by it.
    fn title(self) -> &'static str {
        match self {
            Failure::ImageAnalysis => "image analysis failed",
            Failure::LateFacts => "late image facts could not be handled",
            Failure::ContextDegraded => "context packet built in degraded mode",
            Failure::PerformanceAnomaly => "performance anomaly",
        }
    }
}

/// Events of one kind sent to error tracking per minute; the rest are logged at WARN only.
pub const MAX_EVENTS_PER_MINUTE: u32 = 20;

/// Reports a failure no client sees: an ERROR log line that error tracking
/// captures, tagged `error_class`, `failure` and `project_id`.
///
/// `detail` must not contain request content (prompts, image bytes, keys);
/// it is scrubbed again before it leaves the process. Beyond
/// [`MAX_EVENTS_PER_MINUTE`] per kind, failures are logged at WARN instead,
/// so an outage does not flood error tracking.
pub fn background_failure(kind: Failure, class: ErrorKind, project_id: Option<&str>, detail: &str) {
    let detail = scrub_text(detail);
    if allow(kind) {
        tracing::error!(
            tags.error_class = class.class(),
            tags.failure = kind.as_str(),
            tags.project_id = project_id,
            detail = %detail,
            "{}",
            kind.title()
        );
    } else {
        tracing::warn!(
            error_class = class.class(),
            failure = kind.as_str(),
            project_id,
            detail = %detail,
            "{} (rate limited: not sent to error tracking)",
            kind.title()
        );
    }
}

/// [`background_failure`] for a domain error: the class comes from its kind,
/// the detail from its reason, message and logged detail.
pub fn background_error(kind: Failure, error: &Error, project_id: Option<&str>) {
    background_failure(kind, error.kind(), project_id, &error.to_string());
}

/// Reports a slow stage (see `perf::monitor`).
pub fn performance_anomaly(name: &str, p95_ms: f64, threshold_ms: f64, samples: u64) {
    if !allow(Failure::PerformanceAnomaly) {
        return;
    }
    tracing::error!(
        tags.error_class = ErrorKind::DeadlineExceeded.class(),
        tags.failure = Failure::PerformanceAnomaly.as_str(),
        tags.stage = name,
        p95_ms = format_args!("{p95_ms:.1}"),
        threshold_ms,
        samples,
        "performance anomaly: {name} p95 {p95_ms:.1} ms over the last minute exceeds {threshold_ms} ms"
    );
}

fn allow(kind: Failure) -> bool {
    static BUDGET: OnceLock<Mutex<HashMap<Failure, (Instant, u32)>>> = OnceLock::new();
    let mut budget = BUDGET.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let (since, sent) = budget.entry(kind).or_insert((now, 0));
    if now.duration_since(*since) >= Duration::from_secs(60) {
        *since = now;
        *sent = 0;
    }
    *sent += 1;
    *sent <= MAX_EVENTS_PER_MINUTE
}

/// Field name of the tracing fields context sentry-tracing fills.
const TRACING_FIELDS: &str = "Rust Tracing Fields";

/// Tags the event's error class and scrubs it; runs on every event before it is sent.
fn prepare_event(mut event: Event<'static>) -> Event<'static> {
    if !event.tags.contains_key("error_class") {
        let class = reason_of(&event).map_or("internal", |r| r.kind().class());
        event.tags.insert("error_class".into(), class.into());
    }
    event.tags.insert("service".into(), "brain".into());
    event.user = None;
    event.request = None;
    event.message = event.message.map(|m| scrub_text(&m));
    if let Some(entry) = &mut event.logentry {
        entry.message = scrub_text(&entry.message);
        entry.params.clear();
    }
    for exception in &mut event.exception.values {
        exception.value = exception.value.as_deref().map(scrub_text);
    }
    for context in event.contexts.values_mut() {
        if let Context::Other(map) = context {
            scrub_map(map);
        }
    }
    scrub_map(&mut event.extra);
    event.tags.retain(|k, _| !is_sensitive_key(k));
    for value in event.tags.values_mut() {
        *value = scrub_text(value);
    }
    let crumbs = std::mem::take(&mut event.breadcrumbs.values);
    event.breadcrumbs.values = crumbs.into_iter().map(scrub_breadcrumb).collect();
    event
}

/// The `reason` field of an event logged with a domain error (as grpc::status does).
fn reason_of(event: &Event<'_>) -> Option<Reason> {
    let Some(Context::Other(fields)) = event.contexts.get(TRACING_FIELDS) else { return None };
    let reason = fields.get("reason")?.as_str()?;
    Reason::ALL.iter().copied().find(|r| r.as_str() == reason)
}

fn scrub_breadcrumb(mut crumb: Breadcrumb) -> Breadcrumb {
    crumb.message = crumb.message.map(|m| scrub_text(&m));
    scrub_map(&mut crumb.data);
    crumb
}

fn scrub_map(map: &mut Map<String, Value>) {
    map.retain(|k, _| !is_sensitive_key(k));
    for value in map.values_mut() {
        scrub_value(value);
    }
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::String(s) => *s = scrub_text(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            map.retain(|k, _| !is_sensitive_key(k));
            map.values_mut().for_each(scrub_value);
        }
        _ => {}
    }
}

/// Field names whose values are request content or secrets, never sent anywhere.
fn is_sensitive_key(key: &str) -> bool {
    const SENSITIVE: [&str; 19] = [
        "prompt",
        "image_data",
        "bytes",
        "payload",
        "authorization",
        "api_key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "cookie",
        "dsn",
        "credential",
        "token",
        "content",
        "value",
        "summary",
        "description",
        "body",
    ];
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s))
}

/// Longest text kept in an event field.
const MAX_TEXT: usize = 1_024;

/// Redacts secrets (see [`crate::redact::text`]), credential- and blob-like words, and truncates long text.
pub fn scrub_text(text: &str) -> String {
    let text = crate::redact::text(text);
    let mut out = String::with_capacity(text.len().min(MAX_TEXT + 16));
    let mut redact_next = false;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if redact_next || looks_secret(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        redact_next = word.eq_ignore_ascii_case("bearer");
        if out.len() > MAX_TEXT {
            let mut cut = MAX_TEXT;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("…[truncated]");
            break;
        }
    }
    out
}

fn looks_secret(word: &str) -> bool {
    let word = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}'));
    word.starts_with("brk_")
        || word.starts_with("sk-")
        || word.starts_with("data:")
        || word.contains("://") && word.contains('@')
        // Long unbroken runs of base64-ish characters are blobs or keys, not prose.
        || (word.len() >= 64
            && word.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')))
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").field("sentry", &self.sentry_enabled()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_blobs_are_redacted() {
        let text = scrub_text(
            "key brk_abc123 and sk-xyz, Bearer hunter2 url postgres://u:p@db/x blob \
             iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg== ok",
        );
        for secret in ["brk_abc123", "sk-xyz", "hunter2", "u:p@db", "iVBORw0KGgo"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.ends_with(" ok"));
        let long = scrub_text(&"word ".repeat(1000));
        assert!(long.len() < MAX_TEXT + 32 && long.ends_with("[truncated]"));
    }

    #[test]
    fn events_get_a_class_and_lose_content_fields() {
        let mut fields = Map::new();
        fields.insert("reason".into(), Value::String("STORE_UNAVAILABLE".into()));
        fields.insert("prompt".into(), Value::String("make it pink".into()));
        fields.insert("memory_value".into(), Value::String("likes pink".into()));
        fields.insert("detail".into(), Value::String("connection refused".into()));
        let mut event = Event::default();
        event.contexts.insert(TRACING_FIELDS.into(), Context::Other(fields));
        let event = prepare_event(event);
        assert_eq!(event.tags.get("error_class").map(String::as_str), Some("unavailable"));
        let Some(Context::Other(fields)) = event.contexts.get(TRACING_FIELDS) else { panic!("fields kept") };
        assert!(fields.get("prompt").is_none());
        assert!(fields.get("memory_value").is_none());
        assert_eq!(fields.get("detail").and_then(Value::as_str), Some("connection refused"));

        let event = prepare_event(Event::default());
        assert_eq!(event.tags.get("error_class").map(String::as_str), Some("internal"));
    }

    #[test]
    fn background_failures_are_rate_limited() {
        let sent = (0..MAX_EVENTS_PER_MINUTE + 5).filter(|_| allow(Failure::LateFacts)).count();
        assert_eq!(sent as u32, MAX_EVENTS_PER_MINUTE);
    }
}
