//! Jobs: durable background work, claimed with a lease.

use super::{Millis, TenantId};

/// Where a job is (stored in `jobs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting until `run_after`.
    Queued,
    /// Claimed by a worker whose lease runs until `lease_until`.
    Running,
    /// Done; its result is stored.
    Succeeded,
    /// Failed for good; `last_error` says why.
    Failed,
}

impl JobStatus {
    /// The text its database column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }
}

/// A job to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub tenant_id: TenantId,
    /// Project the work belongs to.
    pub project_id: String,
    /// What to do, e.g. [`KIND_ANALYZE_IMAGE`].
    pub kind: &'static str,
    /// What to do it to, e.g. an image id.
    pub subject_id: String,
    /// Input the job needs (inline image bytes); cleared when it finishes.
    pub payload: Option<Vec<u8>>,
    /// Attempts before it fails for good.
    pub max_attempts: u32,
}

/// A claimed job: the worker holds its lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub tenant_id: TenantId,
    pub project_id: String,
    pub kind: String,
    /// Subject (image id).
    pub subject_id: String,
    /// Input, if any.
    pub payload: Option<Vec<u8>>,
    /// Attempts including this one.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When the job became due (enqueue time, or the retry time).
    pub due_at: Millis,
    pub created_at: Millis,
    /// Error of the previous attempt, if any.
    pub last_error: Option<String>,
    /// Lease owner of this attempt; the guard on every write that finishes the attempt.
    pub lease_owner: String,
    /// When this attempt was claimed.
    pub claimed_at: Millis,
}

impl Job {
    /// Whether earlier attempts used up the allowance (the previous holders
    /// died without finishing), so this one must not run the work again.
    pub fn exhausted(&self) -> bool {
        self.attempts > self.max_attempts
    }
}

/// Whose job a claim takes next: workers serve tenants round-robin (by id),
/// and inside a tenant its projects round-robin, so one tenant's long queue
/// delays another tenant's first job by at most one job per worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimTurn {
    /// The tenant served last; the next claim prefers the next tenant after it.
    pub after_tenant: Option<String>,
    /// Per tenant, the project served last.
    pub after_project: std::collections::HashMap<String, String>,
}

impl ClaimTurn {
    /// Records that `job` was served.
    pub fn served(&mut self, job: &Job) {
        self.after_tenant = Some(job.tenant_id.0.clone());
        self.after_project.insert(job.tenant_id.0.clone(), job.project_id.clone());
    }
}
