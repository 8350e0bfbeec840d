//! The domain error: what went wrong, in terms a caller can act on.
//!
//! Every failure carries a [`Reason`] (a stable UPPER_SNAKE name, listed in
//! `proto/brain/v1/errors.proto`), and each reason belongs to exactly one
//! [`ErrorKind`]. The grpc layer maps kinds to status codes in one place
//! (`grpc::status`); nothing else builds a `tonic::Status` from an error.

use std::{fmt, time::Duration};

/// The class of a failure; decides the gRPC code and the error-tracking tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or asks for something impossible.
    InvalidArgument,
    /// The named resource does not exist for the caller's tenant.
    NotFound,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials of the wrong kind for this call (a tenant key on AdminService, an
    /// admin key on a tenant's data).
    PermissionDenied,
    /// A size or rate limit was exceeded.
    ResourceExhausted,
    /// A dependency (the store) is down, or the server is draining; retrying may help.
    Unavailable,
    /// The work did not finish in time.
    DeadlineExceeded,
    /// A bug or an unexpected state.
    Internal,
}

impl ErrorKind {
    /// Tag used by error tracking and logs: validation, not_found, permission, timeout, unavailable or internal.
    pub fn class(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument | ErrorKind::ResourceExhausted => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => "permission",
            ErrorKind::DeadlineExceeded => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

macro_rules! reasons {
    ($($variant:ident => $name:literal, $kind:ident;)*) => {
        /// Why a request failed; sent as `google.rpc.ErrorInfo.reason`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $($variant,)* }

        impl Reason {
            /// Every reason, for contract tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The UPPER_SNAKE name clients branch on.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// The class this reason belongs to.
            pub fn kind(self) -> ErrorKind {
                match self { $(Reason::$variant => ErrorKind::$kind,)* }
            }
        }
    };
}

reasons! {
    MissingField => "MISSING_FIELD", InvalidArgument;
    InvalidField => "INVALID_FIELD", InvalidArgument;
    InvalidId => "INVALID_ID", InvalidArgument;
    UnknownEnumValue => "UNKNOWN_ENUM_VALUE", InvalidArgument;
    InvalidPageSize => "INVALID_PAGE_SIZE", InvalidArgument;
    InvalidPageToken => "INVALID_PAGE_TOKEN", InvalidArgument;
    PromptEmpty => "PROMPT_EMPTY", InvalidArgument;
    TokenBudgetOutOfRange => "TOKEN_BUDGET_OUT_OF_RANGE", InvalidArgument;
    RequestIdReused => "REQUEST_ID_REUSED", InvalidArgument;
    ImageUnsupportedType => "IMAGE_UNSUPPORTED_TYPE", InvalidArgument;
    ImageUrlInvalid => "IMAGE_URL_INVALID", InvalidArgument;
    ImageUrlForbidden => "IMAGE_URL_FORBIDDEN", InvalidArgument;
    ImageIdTaken => "IMAGE_ID_TAKEN", InvalidArgument;
    ProjectNotFound => "PROJECT_NOT_FOUND", NotFound;
    SceneNotFound => "SCENE_NOT_FOUND", NotFound;
    MemoryNotFound => "MEMORY_NOT_FOUND", NotFound;
    ImageNotFound => "IMAGE_NOT_FOUND", NotFound;
    TenantNotFound => "TENANT_NOT_FOUND", NotFound;
    ApiKeyMissing => "API_KEY_MISSING", Unauthenticated;
    ApiKeyInvalid => "API_KEY_INVALID", Unauthenticated;
    AdminKeyRequired => "ADMIN_KEY_REQUIRED", PermissionDenied;
    TenantKeyRequired => "TENANT_KEY_REQUIRED", PermissionDenied;
    MessageTooLarge => "MESSAGE_TOO_LARGE", ResourceExhausted;
    PromptTooLarge => "PROMPT_TOO_LARGE", ResourceExhausted;
    ImageTooLarge => "IMAGE_TOO_LARGE", ResourceExhausted;
    TooManyImages => "TOO_MANY_IMAGES", ResourceExhausted;
    Overloaded => "OVERLOADED", ResourceExhausted;
    ValueTooLarge => "VALUE_TOO_LARGE", ResourceExhausted;
    RateLimited => "RATE_LIMITED", ResourceExhausted;
    QuotaExceeded => "QUOTA_EXCEEDED", ResourceExhausted;
    StoreUnavailable => "STORE_UNAVAILABLE", Unavailable;
    ShuttingDown => "SHUTTING_DOWN", Unavailable;
    DeadlineExceeded => "DEADLINE_EXCEEDED", DeadlineExceeded;
    Internal => "INTERNAL", Internal;
}

/// A failed operation: a reason, a message for the caller and, for bad input,
/// the offending field.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    reason: Reason,
    message: String,
    field: Option<String>,
    limit: Option<String>,
    /// When a retry may succeed, for limits that refill (sent as `google.rpc.RetryInfo`).
    retry_after: Option<Duration>,
    /// Details for logs only (never sent to the client): the underlying cause of internal and store
    /// errors, secrets already redacted.
    detail: Option<String>,
}

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a reason and a caller-facing message (secrets redacted, see [`crate::redact`]).
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: crate::redact::text(&message.into()),
            field: None,
            limit: None,
            retry_after: None,
            detail: None,
        }
    }

    /// No such project for the caller's tenant (or one being deleted): PROJECT_NOT_FOUND on
    /// `project_id`, the same answer whether it never existed, is another tenant's, or is gone.
    pub fn project_not_found(project_id: &str) -> Self {
        Self::new(Reason::ProjectNotFound, format!("project {project_id} not found")).with_field("project_id")
    }

    /// A required field is empty.
    pub fn missing(field: &str) -> Self {
        Self::new(Reason::MissingField, format!("{field} is required")).with_field(field)
    }

    /// A field's value is not acceptable.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(Reason::InvalidField, message).with_field(field)
    }

    /// A bug or unexpected state; `detail` is logged (secrets redacted), the caller sees a generic message.
    pub fn internal(detail: impl fmt::Display) -> Self {
        Self {
            detail: Some(crate::redact::text(&detail.to_string())),
            ..Self::new(Reason::Internal, "internal error; the server logged the details")
        }
    }

    /// The store did not answer; `detail` is logged (secrets redacted): a driver's error may
    /// carry the connection URL.
    pub fn store_unavailable(detail: impl fmt::Display) -> Self {
        Self {
            detail: Some(crate::redact::text(&detail.to_string())),
            ..Self::new(Reason::StoreUnavailable, "the database is unavailable; retry with backoff")
        }
    }

    /// Names the offending request field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Places bad input in the `index`th record of a stream (ImportProject): the field becomes
    /// `records[N].<field>` (or `records[N]`) and the message starts with "record N: ". A value
    /// over its limit is an invalid record here (INVALID_FIELD, the limit kept): the export is
    /// what is wrong, not a quota. Other errors (the store failing) stay as they are.
    pub fn in_record(mut self, index: u64) -> Self {
        match self.reason {
            Reason::ValueTooLarge | Reason::MessageTooLarge | Reason::PromptTooLarge => {
                self.reason = Reason::InvalidField;
            }
            _ if self.kind() == ErrorKind::InvalidArgument => {}
            _ => return self,
        }
        self.field = Some(match self.field.take() {
            Some(field) => format!("records[{index}].{field}"),
            None => format!("records[{index}]"),
        });
        self.message = format!("record {index}: {}", self.message);
        self
    }

    /// Names the limit that was exceeded.
    pub fn with_limit(mut self, limit: impl fmt::Display) -> Self {
        self.limit = Some(limit.to_string());
        self
    }

    /// Says when a retry may succeed.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// When a retry may succeed, if the limit refills.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Why it failed.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.reason.kind()
    }

    /// The caller-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending field, for bad input.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The limit that was exceeded, for size errors.
    pub fn limit(&self) -> Option<&str> {
        self.limit.as_deref()
    }

    /// The underlying cause, for logs.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error built from a driver's message that names the connection URL (as sqlx and SeaORM
    /// errors can) carries no password into logs, Display or the client's message.
    #[test]
    fn details_are_redacted_when_the_error_is_built() {
        let cause = "cannot reach postgres://brain:Hunter2-marker@db:5432/brain?sslpassword=Ssl2-marker: timed out";
        for err in [Error::internal(cause), Error::store_unavailable(cause)] {
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("Hunter2-marker") && !shown.contains("Ssl2-marker"), "{shown}");
            assert!(shown.contains("postgres://brain:<redacted>@db:5432/brain"), "{shown}");
        }
        let err = Error::new(Reason::ImageUrlInvalid, "bad https://user:Pw3-marker@host/x");
        assert!(!err.message().contains("Pw3-marker"), "{}", err.message());
    }
}
