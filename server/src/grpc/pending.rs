//! Services whose RPCs have not landed yet: every call answers UNIMPLEMENTED
//! (the generated default), but the services are registered so health,
//! reflection and clients see the whole contract from day one.

use brain_proto::v1::performance_service_server::PerformanceService;

/// Placeholder implementation of the services still to come.
pub struct Pending;

impl PerformanceService for Pending {}
