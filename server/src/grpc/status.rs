//! The one place a domain [`Error`] becomes a gRPC [`Status`].
//!
//! Every status carries a `google.rpc.ErrorInfo` with domain `brain.v1`, the
//! UPPER_SNAKE reason, and `field` / `limit` metadata when known. Internal and
//! unavailable errors are logged here with their detail, which never reaches
//! the client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, ErrorKind, Reason};

/// The gRPC code of an error class.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err.kind() {
            ErrorKind::Internal => {
                tracing::error!(reason = err.reason().as_str(), detail = err.detail(), "internal error");
            }
            ErrorKind::Unavailable => {
                tracing::warn!(reason = err.reason().as_str(), detail = err.detail(), "unavailable");
            }
            _ => {}
        }
        let mut metadata = HashMap::new();
        if let Some(field) = err.field() {
            metadata.insert("field".to_owned(), field.to_owned());
        }
        if let Some(limit) = err.limit() {
            metadata.insert("limit".to_owned(), limit.to_owned());
        }
        let mut details = ErrorDetails::with_error_info(err.reason().as_str(), brain_proto::ERROR_DOMAIN, metadata);
        if let Some(delay) = err.retry_after() {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(code(err.kind()), err.message(), details)
    }
}

/// Rewrites tonic's own oversized-message error (OUT_OF_RANGE, from its
/// decoder) into RESOURCE_EXHAUSTED with a reason, as the gRPC spec asks.
pub fn oversized_message(code: Code, message: &str, limit: usize) -> Option<Status> {
    is_oversized(code, message).then(|| too_large("the request", limit).into())
}

/// `MESSAGE_TOO_LARGE` for `what`, naming the `limit`.
fn too_large(what: &str, limit: usize) -> Error {
    Error::new(Reason::MessageTooLarge, format!("{what} is larger than the server accepts ({limit} bytes)"))
        .with_limit(limit)
}

/// Whether tonic's codec refused a message over `max_decoding_message_size`.
fn is_oversized(code: Code, message: &str) -> bool {
    code == Code::OutOfRange && message.contains("message length too large")
}

/// A message of a client stream that could not be read (`field` names it), as the error the
/// handler reports: `MESSAGE_TOO_LARGE` with its `limit` for one over `limit` bytes, as a unary
/// request gets; `INVALID_FIELD` for bytes that are not the message or a stream that broke.
pub fn unreadable_stream_message(status: &Status, field: &str, limit: usize) -> Error {
    if is_oversized(status.code(), status.message()) {
        return too_large("the message", limit).with_field(field);
    }
    Error::invalid(field, format!("could not be read: {}", status.message()))
}

/// Prefix of tonic's error for a request body that is not a valid protobuf message.
const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message: ";

/// Rewrites tonic's own decode error (INTERNAL, from its prost codec, e.g. invalid UTF-8 in a
/// string or a truncated field) into INVALID_ARGUMENT with a reason: the client sent bad input,
/// the server has no bug to report. The detail names the message and field and is safe to return.
pub fn malformed_message(code: Code, message: &str) -> Option<Status> {
    let detail = message.strip_prefix(DECODE_ERROR_PREFIX).filter(|_| code == Code::Internal)?;
    Some(Error::new(Reason::InvalidField, format!("the request is not a valid protobuf message: {detail}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use brain_proto::code_name;

    #[test]
    fn statuses_carry_error_info() {
        let status: Status = Error::missing("project_id").into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(info.reason, "MISSING_FIELD");
        assert_eq!(info.domain, "brain.v1");
        assert_eq!(info.metadata.get("field").map(String::as_str), Some("project_id"));
    }

    #[test]
    fn limits_that_refill_say_when_to_retry() {
        let delay = std::time::Duration::from_millis(1_500);
        let status: Status = Error::new(Reason::RateLimited, "slow down").with_retry_after(delay).into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.get_details_error_info().map(|i| i.reason), Some("RATE_LIMITED".to_owned()));
        assert_eq!(status.get_details_retry_info().and_then(|r| r.retry_delay), Some(delay));
        let plain: Status = Error::missing("project_id").into();
        assert!(plain.get_details_retry_info().is_none());
    }

    #[test]
    fn internal_details_stay_on_the_server() {
        let status: Status = Error::internal("secret table name").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }

    #[test]
    fn decode_errors_become_invalid_arguments() {
        let status =
            malformed_message(Code::Internal, "failed to decode Protobuf message: X.name: invalid string value")
                .expect("rewritten"); // ok: unit test only (#[cfg(test)]), not on a request path
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_error_info().map(|i| i.reason), Some("INVALID_FIELD".to_owned()));
        assert!(status.message().contains("X.name"));
        assert!(malformed_message(Code::Internal, "internal error; the server logged the details").is_none());
        assert!(malformed_message(Code::Unknown, "failed to decode Protobuf message: x").is_none());
    }

    /// docs/ERRORS.md has a row `| `REASON` | CODE | ...` for every reason, with its real code.
    #[test]
    fn every_reason_is_documented_with_its_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ERRORS.md");
        let docs = std::fs::read_to_string(&path).expect("docs/ERRORS.md"); // ok: unit test only (#[cfg(test)]), not on a request path
        for reason in Reason::ALL {
            let row = format!("| `{}` | {} |", reason.as_str(), code_name(code(reason.kind())));
            assert!(docs.contains(&row), "docs/ERRORS.md has no row starting with {row}");
        }
    }

    #[test]
    fn every_reason_is_in_the_contract() {
        for reason in Reason::ALL {
            let name = format!("ERROR_REASON_{}", reason.as_str());
            assert!(
                brain_proto::v1::ErrorReason::from_str_name(&name).is_some(),
                "{name} is missing from proto/brain/v1/errors.proto"
            );
        }
    }
}
