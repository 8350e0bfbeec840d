//! AdminService: retention runs.

use brain_proto::v1 as pb;

use crate::store::RetentionReport;

/// The counts of a run; the caller says whether it was a dry run.
impl From<RetentionReport> for pb::RunRetentionResponse {
    fn from(r: RetentionReport) -> Self {
        pb::RunRetentionResponse {
            dry_run: false,
            archived_turns: r.archived_turns,
            deleted_memories: r.deleted_memories,
            deleted_events: r.deleted_events,
            deleted_jobs: r.deleted_jobs,
            expired_request_ids: r.expired_request_ids,
            deleted_image_analyses: r.deleted_image_analyses,
            deleted_low_confidence_memories: r.deleted_low_confidence_memories,
        }
    }
}
