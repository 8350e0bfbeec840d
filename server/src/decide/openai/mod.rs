//! The `openai` decider: asks any OpenAI-compatible chat-completions endpoint
//! (`POST {openai_base_url}/chat/completions`) for the decision, with strict
//! structured output, and falls back to the rules whenever the model cannot
//! give a valid answer in time.
//!
//! One decision is at most `1 + openai_max_retries` attempts, each bounded by
//! `openai_timeout_ms`, all of them (and the delays between them) bounded by
//! `openai_deadline_ms`. Only failures that may pass are retried: timeouts,
//! connection errors, HTTP 408, 429 and 5xx; the delay doubles from
//! `openai_backoff_ms` with jitter, and a longer `Retry-After` wins. A bad
//! answer is not retried: the same prompt tends to get the same answer.
//!
//! A [`CircuitBreaker`] counts decisions whose call failed (after its
//! retries) or whose answer was malformed or off-schema; after
//! `openai_breaker_threshold` in a row the model is not called for
//! `openai_breaker_cooldown_ms`, then one probe (a single attempt) decides
//! whether it closes again. A well-formed answer that contradicts the context
//! (an unknown scene, say) falls back but counts as the endpoint working.
//!
//! Every fallback decision comes from the rules, with `backend = rules` and
//! a `fallback_reason` starting with a stable code (see [`FallbackReason`]).
//! Logs carry the model, attempts and the reason; never the API key, the
//! prompt or the model's text.

mod breaker;
pub mod prompt;
pub mod schema;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng as _;
use serde_json::json;

use breaker::Transition;
pub use breaker::{CircuitBreaker, CircuitState};
use schema::{ModelDecision, Reject};

use super::{Decider, Decision, DecisionBackend, DecisionInput};
use crate::{
    config::{Config, OpenAiSettings},
    redact::Secret,
};

/// Largest response body read, in bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Largest error body read for its message, in bytes.
const MAX_ERROR_BODY_BYTES: usize = 16 << 10;
/// Output token cap: a 12-step workflow fits with room to spare.
pub const MAX_OUTPUT_TOKENS: u32 = 2_048;
/// Longest single retry delay, whatever the doubling says.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured; longer ones end the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// What went wrong with one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No complete answer within this many ms.
    Timeout {
        /// The attempt's bound.
        after_ms: u64,
    },
    /// Connecting, sending or reading failed.
    Connection,
    /// A non-2xx status.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
        /// The server's error message, scrubbed of secrets; absent for 401/403.
        message: Option<String>,
    },
    /// A 2xx body larger than we read.
    Oversized,
}

impl AttemptFailure {
    /// Timeouts, connection errors, 408, 429 and 5xx may pass; the rest will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            AttemptFailure::Timeout { .. } | AttemptFailure::Connection => true,
            AttemptFailure::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            AttemptFailure::Oversized => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptFailure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn from_reqwest(e: &reqwest::Error, after_ms: u64) -> Self {
        if e.is_timeout() { AttemptFailure::Timeout { after_ms } } else { AttemptFailure::Connection }
    }
}

/// Why the rules decided instead of the model. `Display` starts with a stable
/// code (`circuit_open`, `timeout`, `connection_failed`, `rate_limited`,
/// `http_error`, `malformed_output`, `invalid_output`, `invalid_decision`,
/// `internal`), then a colon and a human explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackReason {
    /// The breaker is open (or its probe is in flight); the model was not called.
    CircuitOpen {
        /// Until the next probe.
        retry_in: Duration,
    },
    /// The call failed, after `attempts` attempts.
    Call {
        /// The last attempt's failure.
        failure: AttemptFailure,
        /// Attempts made.
        attempts: u32,
        /// Retries were cut short by `openai_deadline_ms`.
        deadline_reached: bool,
    },
    /// Not a usable chat completion, or the content is not JSON.
    MalformedOutput(String),
    /// JSON, but not the decision schema.
    InvalidOutput(String),
    /// The schema, but against the contract or the project (an unknown scene, ...).
    InvalidDecision(String),
    /// The request could not be prepared.
    Internal(String),
}

impl FallbackReason {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FallbackReason::CircuitOpen { .. } => "circuit_open",
            FallbackReason::Call { failure, .. } => match failure {
                AttemptFailure::Timeout { .. } => "timeout",
                AttemptFailure::Connection => "connection_failed",
                AttemptFailure::Status { status: 429, .. } => "rate_limited",
                AttemptFailure::Status { .. } => "http_error",
                AttemptFailure::Oversized => "malformed_output",
            },
            FallbackReason::MalformedOutput(_) => "malformed_output",
            FallbackReason::InvalidOutput(_) => "invalid_output",
            FallbackReason::InvalidDecision(_) => "invalid_decision",
            FallbackReason::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            FallbackReason::CircuitOpen { retry_in } if retry_in.is_zero() => {
                f.write_str("the model failed repeatedly and a trial call is in flight")
            }
            FallbackReason::CircuitOpen { retry_in } => {
                write!(f, "the model failed repeatedly; next trial in {} ms", retry_in.as_millis())
            }
            FallbackReason::Call { failure, attempts, deadline_reached } => {
                match failure {
                    AttemptFailure::Timeout { after_ms } => write!(f, "no answer within {after_ms} ms")?,
                    AttemptFailure::Connection => f.write_str("could not reach the model endpoint")?,
                    AttemptFailure::Status { status, message, .. } => {
                        write!(f, "HTTP {status}")?;
                        if let Some(m) = message {
                            write!(f, " ({m})")?;
                        }
                    }
                    AttemptFailure::Oversized => write!(f, "the response is larger than {MAX_RESPONSE_BYTES} bytes")?,
                }
                write!(f, " after {attempts} attempt{}", if *attempts == 1 { "" } else { "s" })?;
                if *deadline_reached {
                    f.write_str("; the decision deadline left no time for another")?;
                }
                Ok(())
            }
            FallbackReason::MalformedOutput(why)
            | FallbackReason::InvalidOutput(why)
            | FallbackReason::InvalidDecision(why)
            | FallbackReason::Internal(why) => f.write_str(why),
        }
    }
}

/// Decides with a model, falling back to another decider (the rules).
pub struct OpenAiDecider {
    client: reqwest::Client,
    endpoint: Secret,
    settings: OpenAiSettings,
    breaker: CircuitBreaker,
    fallback: Arc<dyn Decider>,
    /// Built once: the same for every request.
    response_format: serde_json::Value,
}

impl fmt::Debug for OpenAiDecider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiDecider")
            .field("endpoint", &self.endpoint)
            .field("model", &self.settings.model)
            .field("circuit", &self.breaker.state())
            .finish()
    }
}

impl OpenAiDecider {
    /// From the configuration, falling back to `fallback`.
    pub fn from_config(config: &Config, fallback: Arc<dyn Decider>) -> Result<Self, crate::error::Error> {
        Self::new(config.openai.clone(), fallback)
    }

    /// With explicit settings (the decision model is `settings.model`). Fails only if the HTTP
    /// client cannot be built.
    pub fn new(settings: OpenAiSettings, fallback: Arc<dyn Decider>) -> Result<Self, crate::error::Error> {
        // A backstop: each attempt is also bounded by what is left of the deadline.
        let client = crate::http_client::model_client(settings.timeout, "decision model client")?;
        let endpoint = Secret::url(format!("{}/chat/completions", settings.base_url.expose().trim_end_matches('/')));
        let breaker = CircuitBreaker::new(settings.breaker_threshold, settings.breaker_cooldown);
        Ok(Self { client, endpoint, settings, breaker, fallback, response_format: schema::response_format() })
    }

    /// The breaker's state.
    pub fn circuit_state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// The model's decision, or why there is none.
    pub async fn ask_model(&self, input: &DecisionInput<'_>) -> Result<ModelDecision, FallbackReason> {
        let permit = self
            .breaker
            .try_acquire(Instant::now())
            .map_err(|refused| FallbackReason::CircuitOpen { retry_in: refused.retry_in })?;
        if permit.is_probe() {
            tracing::info!(model = %self.settings.model, "decision model circuit half-open: sending a trial call");
        }
        let body = serde_json::to_vec(&json!({
            "model": self.settings.model,
            "temperature": 0,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "response_format": self.response_format,
            "messages": [
                {"role": "system", "content": prompt::SYSTEM_PROMPT},
                {"role": "user", "content": prompt::user_message(input)}
            ]
        }))
        .map(Bytes::from)
        .map_err(|e| FallbackReason::Internal(format!("encoding the request: {e}")))?;

        let started = Instant::now();
        let deadline = started + self.settings.deadline;
        let max_attempts = if permit.is_probe() { 1 } else { 1 + self.settings.max_retries };
        let mut attempts = 0;
        let raw = loop {
            attempts += 1;
            let timeout = self.settings.timeout.min(deadline.saturating_duration_since(Instant::now()));
            let failure = match self.attempt(body.clone(), timeout).await {
                Ok(raw) => break raw,
                Err(failure) => failure,
            };
            let mut deadline_reached = false;
            if failure.is_retryable() && attempts < max_attempts {
                let delay = retry_delay(self.settings.backoff, attempts, failure.retry_after());
                // Only retry when the next attempt gets some time of its own.
                if Instant::now() + delay < deadline {
                    tracing::debug!(model = %self.settings.model, attempt = attempts, failure = ?failure, delay_ms = delay.as_millis() as u64, "decision model call failed; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                deadline_reached = true;
            }
            self.log_transition(permit.failure(Instant::now()));
            return Err(FallbackReason::Call { failure, attempts, deadline_reached });
        };

        let parsed = schema::message_content(&raw).and_then(|(content, usage)| {
            if let Some(usage) = usage {
                tracing::debug!(
                    model = %self.settings.model,
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens,
                    attempts,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "decision model answered"
                );
            }
            schema::parse_decision(&content, input)
        });
        match parsed {
            Ok(decision) => {
                self.log_transition(permit.success());
                Ok(decision)
            }
            // The endpoint works; the answer does not fit this project.
            Err(Reject::Contract(why)) => {
                self.log_transition(permit.success());
                Err(FallbackReason::InvalidDecision(why))
            }
            Err(Reject::Malformed(why)) => {
                self.log_transition(permit.failure(Instant::now()));
                Err(FallbackReason::MalformedOutput(why))
            }
            Err(Reject::Schema(why)) => {
                self.log_transition(permit.failure(Instant::now()));
                Err(FallbackReason::InvalidOutput(why))
            }
        }
    }

    /// One HTTP exchange, bounded by `timeout`.
    async fn attempt(&self, body: Bytes, timeout: Duration) -> Result<Vec<u8>, AttemptFailure> {
        let after_ms = timeout.as_micros().div_ceil(1000) as u64;
        let mut request = self
            .client
            .post(self.endpoint.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let call = async {
            let mut response = request.send().await.map_err(|e| AttemptFailure::from_reqwest(&e, after_ms))?;
            let status = response.status();
            if status.is_success() {
                let mut raw = Vec::new();
                while let Some(chunk) =
                    response.chunk().await.map_err(|e| AttemptFailure::from_reqwest(&e, after_ms))?
                {
                    if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(AttemptFailure::Oversized);
                    }
                    raw.extend_from_slice(&chunk);
                }
                return Ok(raw);
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .filter(|d| *d <= MAX_RETRY_AFTER);
            // The error body only explains; a failure to read it changes nothing.
            let mut raw = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                raw.extend_from_slice(&chunk);
                if raw.len() >= MAX_ERROR_BODY_BYTES {
                    break;
                }
            }
            let message = match status.as_u16() {
                // Some servers echo part of the key in these; say nothing.
                401 | 403 => None,
                _ => error_message(&raw, self.settings.api_key.as_ref().map(Secret::expose)),
            };
            Err(AttemptFailure::Status { status: status.as_u16(), retry_after, message })
        };
        tokio::time::timeout(timeout, call).await.map_err(|_| AttemptFailure::Timeout { after_ms })?
    }

    fn log_transition(&self, transition: Option<Transition>) {
        match transition {
            Some(Transition::Opened) => tracing::warn!(
                model = %self.settings.model,
                cooldown_ms = self.settings.breaker_cooldown.as_millis() as u64,
                "decision model circuit opened: the rules decide until a trial call succeeds"
            ),
            Some(Transition::Closed) => {
                tracing::info!(model = %self.settings.model, "decision model circuit closed: the model decides again")
            }
            None => {}
        }
    }
}

#[async_trait::async_trait]
impl Decider for OpenAiDecider {
    async fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        match self.ask_model(input).await {
            Ok(d) => Decision {
                outcome: d.outcome,
                reasoning: if d.reasoning.is_empty() {
                    format!("Decided by {}.", self.settings.model)
                } else {
                    d.reasoning
                },
                backend: DecisionBackend::Openai,
                fallback_reason: None,
                confidence: d.confidence,
            },
            Err(reason) => {
                if matches!(reason, FallbackReason::CircuitOpen { .. }) {
                    // Opening was logged once, as a warning; not again for every request while open.
                    tracing::debug!(model = %self.settings.model, reason = %reason, "decision model circuit open; the rules decide");
                } else {
                    tracing::warn!(model = %self.settings.model, code = reason.code(), reason = %reason, "decision model gave no usable answer; the rules decide");
                }
                let mut decision = self.fallback.decide(input).await;
                decision.fallback_reason = Some(reason.to_string());
                decision
            }
        }
    }
}

/// The delay before retry number `retry` (1-based): the doubled backoff with
/// "equal jitter" (half fixed, half random, so concurrent callers spread out
/// but never retry at once), or the server's `Retry-After` when longer.
fn retry_delay(base: Duration, retry: u32, retry_after: Option<Duration>) -> Duration {
    let doubled = base.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let half = doubled / 2;
    let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
    let delay = half + Duration::from_millis(jitter_ms);
    retry_after.map_or(delay, |server| server.max(delay))
}

/// The `error.message` of an OpenAI-style error body, one line, at most 200
/// characters, with the API key and anything shaped like one removed.
fn error_message(body: &[u8], api_key: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("error")?.get("message")?.as_str()?;
    let mut text: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        text = text.replace(key, "<redacted>");
    }
    let words: Vec<&str> = text
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| if w.starts_with("sk-") || w.starts_with("brk_") { "<redacted>" } else { w })
        .collect();
    let text = words.join(" ");
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_bounded_jitter() {
        let base = Duration::from_millis(200);
        for _ in 0..200 {
            let first = retry_delay(base, 1, None);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&first), "{first:?}");
            let third = retry_delay(base, 3, None);
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&third), "{third:?}");
            let capped = retry_delay(base, 30, None);
            assert!((MAX_BACKOFF / 2..=MAX_BACKOFF).contains(&capped), "{capped:?}");
        }
        assert_eq!(retry_delay(base, 1, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(retry_delay(Duration::ZERO, 5, None), Duration::ZERO);
    }

    #[test]
    fn only_passing_failures_are_retried() {
        let status = |status| AttemptFailure::Status { status, retry_after: None, message: None };
        for retryable in [status(408), status(429), status(500), status(502), status(503), status(504)] {
            assert!(retryable.is_retryable(), "{retryable:?}");
        }
        for not in [status(400), status(401), status(403), status(404), status(422), AttemptFailure::Oversized] {
            assert!(!not.is_retryable(), "{not:?}");
        }
        assert!(AttemptFailure::Connection.is_retryable());
        assert!(AttemptFailure::Timeout { after_ms: 5 }.is_retryable());
    }

    #[test]
    fn reasons_start_with_their_code() {
        let call = |failure, attempts, deadline_reached| FallbackReason::Call { failure, attempts, deadline_reached };
        let cases = [
            (
                FallbackReason::CircuitOpen { retry_in: Duration::from_millis(1500) },
                "circuit_open: the model failed repeatedly; next trial in 1500 ms",
            ),
            (
                call(AttemptFailure::Timeout { after_ms: 5000 }, 3, false),
                "timeout: no answer within 5000 ms after 3 attempts",
            ),
            (
                call(AttemptFailure::Connection, 1, true),
                "connection_failed: could not reach the model endpoint after 1 attempt; the decision deadline left no time for another",
            ),
            (
                call(
                    AttemptFailure::Status { status: 429, retry_after: None, message: Some("slow down".into()) },
                    2,
                    false,
                ),
                "rate_limited: HTTP 429 (slow down) after 2 attempts",
            ),
            (
                call(AttemptFailure::Status { status: 401, retry_after: None, message: None }, 1, false),
                "http_error: HTTP 401 after 1 attempt",
            ),
            (
                FallbackReason::InvalidDecision("scene \"s9\" is not in the project".into()),
                "invalid_decision: scene \"s9\" is not in the project",
            ),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }

    #[test]
    fn error_messages_never_carry_keys() {
        let body = br#"{"error": {"message": "Quota exceeded for key sk-live-123 (project brk_abc), key sk-live-123", "type": "x"}}"#;
        assert_eq!(
            error_message(body, Some("sk-live-123")).as_deref(),
            Some("Quota exceeded for key <redacted> (project <redacted> key <redacted>")
        );
        assert_eq!(error_message(b"<html>bad gateway</html>", None), None);
        let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "x".repeat(500));
        assert_eq!(error_message(long.as_bytes(), None).map(|m| m.chars().count()), Some(201));
    }

    #[test]
    fn settings_debug_hides_the_key() {
        let mut config = Config::default();
        config.openai.api_key = Some(Secret::new("sk-secret-value"));
        let shown = format!("{:?}", config.openai);
        assert!(!shown.contains("sk-secret-value"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
