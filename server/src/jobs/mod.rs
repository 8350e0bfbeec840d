//! Durable background jobs: a `jobs` table claimed with a lease, and a pool
//! of workers that run them.
//!
//! A job row is written in the same transaction as the request that asked for
//! the work ([`WriteTx::enqueue_job`](crate::store::WriteTx::enqueue_job)), so accepted work survives any crash. Workers
//! claim due jobs with a lease (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite's
//! single writer makes every claim exclusive), extend the lease while they
//! run, and finish the job in the same transaction as its result, guarded by
//! the lease: only the current holder's commit takes effect, so a job whose
//! worker died (its lease expired and someone else reclaimed it) is completed
//! exactly once. Failed attempts are retried with exponential backoff and
//! jitter up to `job_max_attempts`; the last error is kept on the row.

mod pool;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rand::Rng;
use tokio::sync::Notify;

pub use self::pool::{Handlers, JobDone, JobFailure, JobHandler, Workers};
use crate::{
    config::Config,
    model::{ClaimTurn, Job},
    store::Store,
};

/// Kind of the job that analyses one accepted image (subject = image id).
pub const KIND_ANALYZE_IMAGE: &str = "analyze_image";

/// Longest retry delay, whatever the attempt count.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The queue's handle: enqueue wake-ups and tuning shared by the workers.
#[derive(Clone)]
pub struct JobQueue {
    store: Store,
    config: Arc<Config>,
    wake: Arc<Notify>,
    /// Whose job this process's workers take next (round-robin over tenants, then projects).
    turn: Arc<Mutex<ClaimTurn>>,
}

impl JobQueue {
    /// A queue over `store`.
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        Self { store, config, wake: Arc::new(Notify::new()), turn: Arc::default() }
    }

    /// Wakes idle workers of this process: new jobs were committed.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn notify(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// Where the round-robin stands now.
    pub(crate) fn turn(&self) -> ClaimTurn {
        self.turn.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Moves the round-robin past `job`.
    pub(crate) fn served(&self, job: &Job) {
        if let Ok(mut turn) = self.turn.lock() {
            turn.served(job);
        }
    }
}

/// Delay before retry number `attempt` (1-based: the delay after the first
/// failed attempt): `base * 2^(attempt-1)`, capped at five minutes, with
/// "equal jitter" (a random point in the upper half) so retries of jobs that
/// failed together spread out instead of hammering a recovering dependency.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let full = base.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let half = full / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..=6 {
            let full = 100u64 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff(Duration::from_millis(100), attempt).as_millis() as u64;
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} not in [{}, {full}]", full / 2);
            }
        }
        assert!(backoff(Duration::from_secs(1), 40) <= MAX_BACKOFF);
        assert!(backoff(Duration::from_secs(1), 40) >= MAX_BACKOFF / 2);
    }
}
