//! Services whose RPCs have not landed yet: every call answers UNIMPLEMENTED
//! (the generated default), but the services are registered so health,
//! reflection and clients see the whole contract from day one.

use brain_proto::v1::{
    image_facts_service_server::ImageFactsService, orchestrator_service_server::OrchestratorService,
};

/// Placeholder implementation of the services still to come.
pub struct Pending;

impl OrchestratorService for Pending {}
impl ImageFactsService for Pending {}
