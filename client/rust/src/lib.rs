//! Typed Rust client for brain.
//!
//! ```no_run
//! use brain_client::{BrainClient, proto};
//!
//! # async fn run() -> Result<(), brain_client::BrainError> {
//! let client = BrainClient::connect("127.0.0.1:50051", Some("brk_...")).await?;
//! let project = client.create_project(proto::CreateProjectRequest { name: "Launch video".into(), ..Default::default() }).await?;
//! println!("created {}", project.project_id);
//! # Ok(()) }
//! ```
//!
//! # Deadlines
//! Every unary call runs under a deadline (10 s by default; set it with
//! [`BrainClientBuilder::timeout`], or per call with [`BrainClient::with_timeout`]).
//! The deadline covers all attempts of a call; the server sees the remaining
//! time as `grpc-timeout`. Streams have no default deadline: not the watches, nor
//! [`BrainClient::export_project`] and [`BrainClient::import_project`], which last as long
//! as the project is large (bound them with `tokio::time::timeout`; dropping one cancels it).
//!
//! # Retries
//! Idempotent unary calls are retried with exponential backoff and jitter
//! ([`RetryPolicy`], 4 attempts by default) when the server or the connection is
//! UNAVAILABLE, or the server answers RESOURCE_EXHAUSTED with reason OVERLOADED, or with
//! RATE_LIMITED or QUOTA_EXCEEDED (a per-tenant limit; the retry waits at least the server's
//! `google.rpc.RetryInfo` delay, [`BrainError::retry_delay`]).
//! A call is idempotent when repeating it cannot change the outcome:
//!
//! | Retried | Calls |
//! | --- | --- |
//! | always | `get_project`, `list_projects`, `update_project` (the same values again), `list_scenes`, `list_memories`, `get_context_packet`, `get_image_facts`, `list_image_facts`, `get_performance_report`, `health`, `put_memory` (same type and key: last write wins; a replay may count one extra occurrence), `run_retention` (an admin key's call, for one tenant) |
//! | when the request says which | `upsert_scene` with a `scene_id`; `orchestrate` with a `request_id` (the server replays the stored response) |
//! | never | `create_project`, `delete_project`, `delete_scene`, `delete_memory`, `purge_tenant` (a replay would answer NOT_FOUND: after a lost response, NOT_FOUND means it is gone), `analyze_images`, `upsert_scene` without `scene_id`, `orchestrate` without `request_id`, `orchestrate_stream`, `watch_performance_report`, `export_project` (a stream: export again), `import_project` (a replay would create a second project) |
//!
//! # Admin
//! AdminService ([`BrainClient::run_retention`], [`BrainClient::purge_tenant`]) needs an admin
//! key (`brain-server keys create --admin`), which in turn can call nothing else: a tenant's
//! key gets PERMISSION_DENIED `ADMIN_KEY_REQUIRED` from AdminService, an admin key gets
//! PERMISSION_DENIED `TENANT_KEY_REQUIRED` from every other service. In local mode (a
//! loopback server without any keys) the one caller may call both.
//!
//! # Export and import
//! [`BrainClient::export_project`] streams a project as [`proto::ProjectRecord`]s (an
//! `ExportHeader` first, then scenes, memory items, conversation turns and image analyses);
//! [`BrainClient::import_project`] sends such records back, to this server or another, and
//! creates a new project from them. The `brain` CLI keeps them as JSON Lines
//! (`brain projects export` / `brain projects import`).
//!
//! # Watching image facts
//! [`BrainClient::watch_image_facts`] returns an [`ImageFactsWatch`] that
//! reconnects from its last cursor whenever the connection drops, so the caller
//! sees every event exactly once.
//!
//! # Errors
//! Every failure is a [`BrainError`] with the gRPC [`Code`], and for errors the
//! server returns, its `google.rpc.ErrorInfo` reason (`PROJECT_NOT_FOUND`,
//! `MISSING_FIELD`, ...) and `field` / `limit` metadata.

mod client;
mod error;
mod retry;
mod watch;

pub use brain_proto::code_name;
pub use client::{BrainClient, BrainClientBuilder};
pub use error::BrainError;
pub use retry::RetryPolicy;
pub use tonic::Code;
pub use tonic_health::pb::health_check_response::ServingStatus;
pub use watch::ImageFactsWatch;

/// The generated `brain.v1` messages and stubs (the `brain-proto` crate).
pub use brain_proto::v1 as proto;

/// The encoded descriptor set of `brain.v1`, for reflection-based tooling (JSON output).
pub use brain_proto::FILE_DESCRIPTOR_SET;
