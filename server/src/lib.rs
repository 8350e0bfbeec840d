//! brain: the gRPC service AI products call on every user prompt.
//!
//! Dependencies point one way: `grpc` → domain modules (`projects`,
//! `context`, ...) → `store`. The domain never sees proto types; the grpc
//! layer never writes SQL.

pub mod app;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod context;
pub mod decide;
pub mod error;
pub mod events;
pub mod grpc;
pub mod http;
pub mod http_client;
pub mod images;
pub mod jobs;
pub mod model;
pub mod orchestrator;
pub mod pagination;
pub mod perf;
pub mod projects;
pub mod redact;
pub mod retention;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod validate;
pub mod vision;
