//! The gRPC server: brain services behind the layer stack ([`super::layers`]), health and
//! reflection beside it, served on a listener until told to stop. Startup, health probing and
//! shutdown are wired in [`crate::startup`].

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use brain_proto::{
    SERVICE_NAMES,
    v1::{
        admin_service_server::AdminServiceServer, image_facts_service_server::ImageFactsServiceServer,
        orchestrator_service_server::OrchestratorServiceServer, performance_service_server::PerformanceServiceServer,
        project_service_server::ProjectServiceServer,
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{
    Server,
    server::{Router, TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::layer::util::{Identity, Stack};

use super::{
    admin::AdminApi, image_facts::ImageFactsApi, layers::RpcLayers, orchestrator::OrchestratorApi,
    performance::PerformanceApi, project::ProjectApi,
};
use crate::{images::Images, orchestrator::Orchestrator, perf::Reporter, projects::Projects, retention::Retention};

/// What the brain services call into; startup assembles it from the app.
pub struct Handlers {
    pub projects: Projects,
    pub orchestrator: Orchestrator,
    pub images: Images,
    pub perf_reporter: Arc<Reporter>,
    pub retention: Retention,
    /// Largest request a service decodes.
    pub max_message_bytes: usize,
    /// Ends streams and health watches when the server stops.
    pub shutdown: CancellationToken,
}

/// Health service name that reports whether the process serves at all, regardless of the
/// store: for Kubernetes liveness probes, so a database outage makes pods unready, not restarted.
pub const LIVENESS_SERVICE: &str = "liveness";

/// The router: every brain service behind `layers`, health (statuses from `health`) and
/// reflection v1 and v1alpha.
pub fn router(
    handlers: Handlers,
    health: &HealthReporter,
    layers: RpcLayers,
) -> anyhow::Result<Router<Stack<RpcLayers, Identity>>> {
    let reflection_v1 = reflection().build_v1().context("reflection v1")?;
    let reflection_v1alpha = reflection().build_v1alpha().context("reflection v1alpha")?;
    let Handlers { projects, orchestrator, images, perf_reporter, retention, max_message_bytes: max, shutdown } =
        handlers;
    let orchestrator_api = OrchestratorApi::new(orchestrator, shutdown.clone());
    let image_facts_api = ImageFactsApi::new(images, shutdown.clone());
    Ok(Server::builder()
        .layer(layers)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(super::health::service(health, shutdown.clone()))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            ProjectServiceServer::new(ProjectApi::new(projects.clone(), shutdown.clone(), max))
                .max_decoding_message_size(max),
        )
        .add_service(OrchestratorServiceServer::new(orchestrator_api).max_decoding_message_size(max))
        .add_service(ImageFactsServiceServer::new(image_facts_api).max_decoding_message_size(max))
        .add_service(
            PerformanceServiceServer::new(PerformanceApi::new(perf_reporter, projects.clone(), shutdown))
                .max_decoding_message_size(max),
        )
        .add_service(
            AdminServiceServer::new(AdminApi::new(retention, projects.clone())).max_decoding_message_size(max),
        ))
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting and waits for open
/// connections to finish their calls.
pub async fn serve(
    router: Router<Stack<RpcLayers, Identity>>,
    listener: TcpListener,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // `tcp_nodelay` on the builder only reaches sockets tonic accepts itself; with our own
    // listener, Nagle would hold every small response back ~40 ms waiting for a delayed ACK.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    router.serve_with_incoming_shutdown(incoming, stop).await.context("server error")
}

/// Sets the status of the whole server (`""`) and of every brain service.
pub async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    crate::perf::prom::health_serving(status == ServingStatus::Serving);
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Reflection lists exactly the brain.v1 services, health and reflection
/// itself, and describes `google.rpc` error details so `grpcurl` can decode
/// the `ErrorInfo` of a failed call.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(brain_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false);
    SERVICE_NAMES
        .iter()
        .chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .fold(builder, |b, name| b.with_service_name(*name))
}
