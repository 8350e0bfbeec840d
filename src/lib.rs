//! The `brain.v1` gRPC contract, generated from `proto/brain/v1` at build time.
//!
//! Servers implement the `*_server` traits, clients use the `*_client` types,
//! and [`FILE_DESCRIPTOR_SET`] feeds gRPC reflection.

/// Package `brain.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("brain.v1");
}

/// Encoded `FileDescriptorSet` of every file in `proto/brain/v1`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("brain_v1_descriptor");

/// The `google.rpc.ErrorInfo` domain of every error brain returns.
pub const ERROR_DOMAIN: &str = "brain.v1";

/// Fully qualified names of the brain.v1 services, as health and reflection list them.
pub const SERVICE_NAMES: [&str; 5] = [
    "brain.v1.OrchestratorService",
    "brain.v1.ProjectService",
    "brain.v1.ImageFactsService",
    "brain.v1.PerformanceService",
    "brain.v1.AdminService",
];

/// The canonical UPPER_SNAKE name of a status code (`google.rpc.Code`), as
/// server logs, metrics labels and client reports all spell it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
