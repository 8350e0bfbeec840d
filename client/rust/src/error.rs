//! [`BrainError`]: a failed call, with the gRPC code and brain's `ErrorInfo` reason.

use std::{collections::HashMap, fmt, time::Duration};

use brain_proto::{code_name, v1::ErrorReason};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A failed brain call.
///
/// Every error the server returns carries a `google.rpc.ErrorInfo` with domain
/// `brain.v1`; [`reason`](Self::reason) is its UPPER_SNAKE reason (for example
/// `PROJECT_NOT_FOUND`) and [`field`](Self::field) / [`limit`](Self::limit)
/// come from its metadata. Branch on the code and reason, never on the message.
///
/// Errors raised by the client itself (no connection, deadline reached, bad
/// endpoint) have a code but no reason.
#[derive(Debug, Clone)]
pub struct BrainError(Box<Inner>);

// Boxed: errors travel in every `Result` of the client, so they stay one pointer wide.
#[derive(Debug, Clone)]
struct Inner {
    code: Code,
    message: String,
    reason: Option<String>,
    domain: Option<String>,
    metadata: HashMap<String, String>,
    /// The server's `google.rpc.RetryInfo` delay.
    retry_delay: Option<Duration>,
    from_transport: bool,
}

impl BrainError {
    /// An error raised on the client side, without a server reason.
    pub fn local(code: Code, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            code,
            message: message.into(),
            reason: None,
            domain: None,
            metadata: HashMap::new(),
            retry_delay: None,
            from_transport: false,
        }))
    }

    /// The gRPC status code; DEADLINE_EXCEEDED also when the client's own deadline expired.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// The status message; for people, not for branching.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The `ErrorInfo` reason without the `ERROR_REASON_` prefix, for example `"MISSING_FIELD"`.
    pub fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// The reason as the contract's enum, when it is one this client knows.
    pub fn error_reason(&self) -> Option<ErrorReason> {
        self.0.reason.as_deref().and_then(|r| ErrorReason::from_str_name(&format!("ERROR_REASON_{r}")))
    }

    /// The `ErrorInfo` domain; `brain.v1` for every error brain returns.
    pub fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }

    /// The request field at fault, when the server named one.
    pub fn field(&self) -> Option<&str> {
        self.0.metadata.get("field").map(String::as_str)
    }

    /// The limit that was exceeded, when the server named one.
    pub fn limit(&self) -> Option<&str> {
        self.0.metadata.get("limit").map(String::as_str)
    }

    /// All `ErrorInfo` metadata; empty for errors raised on the client side.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.0.metadata
    }

    /// How long the server asked to wait before retrying (`google.rpc.RetryInfo`), sent with
    /// the per-tenant limits (`RATE_LIMITED`, `QUOTA_EXCEEDED`).
    pub fn retry_delay(&self) -> Option<Duration> {
        self.0.retry_delay
    }

    /// True for errors worth retrying with backoff on an idempotent call: the
    /// server is unavailable, the connection failed or broke (tonic reports a
    /// request caught by a dying connection as UNKNOWN, INTERNAL or CANCELLED
    /// with a transport error as its source), the server is at its
    /// concurrency limit (`RESOURCE_EXHAUSTED` / `OVERLOADED`), or the tenant is
    /// over a per-tenant limit (`RATE_LIMITED`, `QUOTA_EXCEEDED`: retried no
    /// sooner than [`retry_delay`](Self::retry_delay)).
    pub fn is_retryable(&self) -> bool {
        match self.0.code {
            Code::Unavailable => true,
            Code::ResourceExhausted => {
                matches!(self.0.reason.as_deref(), Some("OVERLOADED" | "RATE_LIMITED" | "QUOTA_EXCEEDED"))
            }
            Code::Unknown | Code::Internal | Code::Cancelled => self.0.from_transport,
            _ => false,
        }
    }

    /// True when the connection failed rather than the server answering.
    pub fn is_transport(&self) -> bool {
        self.0.from_transport
    }

    /// Turns a status into an error. tonic reports its own client-side
    /// `grpc-timeout` expiry as CANCELLED "Timeout expired"; that is the call's
    /// deadline, so it becomes DEADLINE_EXCEEDED.
    pub(crate) fn from_status(status: Status) -> Self {
        let info = status.get_details_error_info();
        let local_timeout = status.code() == Code::Cancelled && status.message() == "Timeout expired";
        let from_transport = std::error::Error::source(&status).is_some() && !local_timeout;
        let code = if local_timeout { Code::DeadlineExceeded } else { status.code() };
        let (reason, domain, metadata) = match info {
            Some(info) => (Some(info.reason), Some(info.domain), info.metadata),
            None => (None, None, HashMap::new()),
        };
        let retry_delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
        Self(Box::new(Inner {
            code,
            message: status.message().to_owned(),
            reason,
            domain,
            metadata,
            retry_delay,
            from_transport,
        }))
    }
}

impl From<Status> for BrainError {
    fn from(status: Status) -> Self {
        Self::from_status(status)
    }
}

impl fmt::Display for BrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", code_name(self.0.code))?;
        if let Some(reason) = &self.0.reason {
            write!(f, " ({reason})")?;
        }
        if !self.0.message.is_empty() {
            write!(f, ": {}", self.0.message)?;
        }
        if let Some(field) = self.field() {
            write!(f, " [field: {field}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for BrainError {}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn reads_error_info() {
        let mut metadata = HashMap::new();
        metadata.insert("field".to_owned(), "project_id".to_owned());
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "project_id is required",
            ErrorDetails::with_error_info("MISSING_FIELD", "brain.v1", metadata),
        );
        let err = BrainError::from(status);
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.reason(), Some("MISSING_FIELD"));
        assert_eq!(err.error_reason(), Some(ErrorReason::MissingField));
        assert_eq!(err.domain(), Some("brain.v1"));
        assert_eq!(err.field(), Some("project_id"));
        assert!(!err.is_retryable());
        assert_eq!(err.to_string(), "INVALID_ARGUMENT (MISSING_FIELD): project_id is required [field: project_id]");
    }

    #[test]
    fn rate_limits_are_retryable_after_the_servers_delay() {
        let mut details = ErrorDetails::with_error_info("RATE_LIMITED", "brain.v1", HashMap::new());
        details.set_retry_info(Some(Duration::from_millis(750)));
        let err = BrainError::from(Status::with_error_details(Code::ResourceExhausted, "slow down", details));
        assert!(err.is_retryable());
        assert_eq!(err.retry_delay(), Some(Duration::from_millis(750)));
        assert_eq!(err.error_reason(), Some(ErrorReason::RateLimited));
    }

    #[test]
    fn overloaded_is_retryable_but_other_exhaustion_is_not() {
        let overloaded = Status::with_error_details(
            Code::ResourceExhausted,
            "busy",
            ErrorDetails::with_error_info("OVERLOADED", "brain.v1", HashMap::new()),
        );
        assert!(BrainError::from(overloaded).is_retryable());
        let too_large = Status::with_error_details(
            Code::ResourceExhausted,
            "too large",
            ErrorDetails::with_error_info("PROMPT_TOO_LARGE", "brain.v1", HashMap::new()),
        );
        assert!(!BrainError::from(too_large).is_retryable());
        assert!(BrainError::from(Status::unavailable("down")).is_retryable());
    }

    #[test]
    fn local_timeout_becomes_deadline_exceeded() {
        let err = BrainError::from(Status::cancelled("Timeout expired"));
        assert_eq!(err.code(), Code::DeadlineExceeded);
        assert!(!err.is_retryable());
        let err = BrainError::from(Status::cancelled("by the server"));
        assert_eq!(err.code(), Code::Cancelled);
        assert!(!err.is_retryable(), "a CANCELLED the server sent is not a transport failure");
    }
}
