//! The measured async win: orchestrations with images wait here until every
//! image's analysis job has finished; then their blocking equivalent is known.
//!
//! A blocking design answers only after analysing the request's images, one
//! after another, so its response time is brain's response time plus the sum
//! of the images' analysis times. Summing (not taking the max) models the
//! sequential flow brain replaced; it is what a client of that flow waited.
//!
//! A job may finish before its orchestration is recorded (the response is
//! sent, and recorded, after the jobs are committed and a worker may be
//! faster), so early job results are parked too. Both maps are bounded in
//! size and age: the oldest entries are dropped first, and an orchestration
//! whose images never all finish simply never becomes a sample.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

/// Orchestrations (and early job results) remembered at most.
pub const MAX_PENDING: usize = 10_000;
/// How long an orchestration may wait for its images.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// A finished orchestration whose blocking equivalent is now known.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub tenant_id: String,
    pub project_id: String,
    /// brain's response time.
    pub actual_ms: f64,
    /// Response time plus the analysis time of every image.
    pub blocking_ms: f64,
}

#[derive(Debug)]
struct Pending {
    tenant_id: String,
    project_id: String,
    actual_ms: f64,
    images: u32,
    finished: u32,
    analysis_ms: f64,
    since: Instant,
}

#[derive(Debug, Default)]
struct Early {
    finished: u32,
    analysis_ms: f64,
    since: Option<Instant>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Tracker {
    pending: HashMap<String, Pending>,
    pending_order: VecDeque<(Instant, String)>,
    early: HashMap<String, Early>,
    early_order: VecDeque<(Instant, String)>,
    /// Orchestrations dropped before all their images finished.
    pub abandoned: u64,
}

impl Tracker {
    /// An orchestration with `images` analysis jobs finished answering.
    pub fn orchestration(
        &mut self,
        orchestration_id: &str,
        tenant_id: &str,
        project_id: &str,
        actual_ms: f64,
        images: u32,
        now: Instant,
    ) -> Option<Completed> {
        if images == 0 || orchestration_id.is_empty() {
            return None;
        }
        self.expire(now);
        let early = self.early.remove(orchestration_id).unwrap_or_default();
        let pending = Pending {
            tenant_id: tenant_id.to_owned(),
            project_id: project_id.to_owned(),
            actual_ms,
            images,
            finished: early.finished,
            analysis_ms: early.analysis_ms,
            since: now,
        };
        if pending.finished >= pending.images {
            return Some(complete(pending));
        }
        while self.pending.len() >= MAX_PENDING {
            if !self.drop_oldest_pending() {
                break;
            }
        }
        self.pending.insert(orchestration_id.to_owned(), pending);
        self.pending_order.push_back((now, orchestration_id.to_owned()));
        None
    }

    /// One image job of `orchestration_id` finished (succeeded or failed for good) after `analysis_ms`.
    pub fn job_finished(&mut self, orchestration_id: &str, analysis_ms: f64, now: Instant) -> Option<Completed> {
        self.expire(now);
        if let Some(pending) = self.pending.get_mut(orchestration_id) {
            pending.finished += 1;
            pending.analysis_ms += analysis_ms;
            if pending.finished >= pending.images {
                return self.pending.remove(orchestration_id).map(complete);
            }
            return None;
        }
        if !self.early.contains_key(orchestration_id) {
            while self.early.len() >= MAX_PENDING {
                match self.early_order.pop_front() {
                    Some((_, id)) => {
                        self.early.remove(&id);
                    }
                    None => break,
                }
            }
            self.early_order.push_back((now, orchestration_id.to_owned()));
        }
        let early = self.early.entry(orchestration_id.to_owned()).or_default();
        early.finished += 1;
        early.analysis_ms += analysis_ms;
        early.since.get_or_insert(now);
        None
    }

    /// Orchestrations waiting for images now.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((since, _)) = self.pending_order.front() {
            if now.duration_since(*since) < PENDING_TTL {
                break;
            }
            self.drop_oldest_pending();
        }
        // Early results wait only for their orchestration's own response, which is moments away.
        while let Some((since, id)) = self.early_order.front() {
            if now.duration_since(*since) < Duration::from_secs(300) {
                break;
            }
            let id = id.clone();
            self.early_order.pop_front();
            self.early.remove(&id);
        }
    }

    /// Drops the oldest waiting orchestration; false when none is left.
    fn drop_oldest_pending(&mut self) -> bool {
        while let Some((since, id)) = self.pending_order.pop_front() {
            // The order queue may name orchestrations that already completed.
            if self.pending.get(&id).is_some_and(|p| p.since == since) {
                self.pending.remove(&id);
                self.abandoned += 1;
                return true;
            }
        }
        false
    }
}

fn complete(p: Pending) -> Completed {
    Completed {
        tenant_id: p.tenant_id,
        project_id: p.project_id,
        actual_ms: p.actual_ms,
        blocking_ms: p.actual_ms + p.analysis_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_when_every_image_finished() {
        let mut t = Tracker::default();
        let now = Instant::now();
        assert_eq!(t.orchestration("o1", "t", "p", 40.0, 2, now), None);
        assert_eq!(t.job_finished("o1", 100.0, now), None);
        let done = t.job_finished("o1", 60.0, now).expect("complete");
        assert_eq!(done.actual_ms, 40.0);
        assert_eq!(done.blocking_ms, 200.0);
        assert_eq!(t.waiting(), 0);
        assert_eq!(t.job_finished("o1", 60.0, now), None, "a late duplicate starts nothing");
    }

    #[test]
    fn jobs_may_finish_before_the_orchestration_is_recorded() {
        let mut t = Tracker::default();
        let now = Instant::now();
        assert_eq!(t.job_finished("o1", 30.0, now), None);
        let done = t.orchestration("o1", "t", "p", 10.0, 1, now).expect("complete at once");
        assert_eq!(done.blocking_ms, 40.0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Tracker::default();
        let now = Instant::now();
        for i in 0..(MAX_PENDING + 500) {
            t.orchestration(&format!("o{i}"), "t", "p", 1.0, 1, now);
            t.job_finished(&format!("x{i}"), 1.0, now);
        }
        assert_eq!(t.waiting(), MAX_PENDING);
        assert_eq!(t.abandoned, 500);
        assert!(t.early.len() <= MAX_PENDING);
        let later = now + PENDING_TTL + Duration::from_secs(1);
        t.orchestration("new", "t", "p", 1.0, 1, later);
        assert_eq!(t.waiting(), 1, "expired entries are dropped");
        assert!(t.early.is_empty());
    }
}
