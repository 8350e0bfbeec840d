//! Windowed aggregation: a ring of 10-second slots covering the last 15
//! minutes, plus a since-start accumulator, in per-thread shards.
//!
//! Recording locks one shard (the recording thread's own, so it is almost
//! never contended), finds the current slot and the (tenant, project) scope,
//! and updates counters and histograms in place: no allocation once a scope
//! exists. A slot that falls out of the ring is folded into the since-start
//! accumulator. Reports lock each shard in turn and merge the slots in their
//! window.
//!
//! Memory is bounded per tenant and overall. A tenant keeps at most
//! `max_series_per_tenant` scopes per slot and shard; its scopes beyond that
//! are recorded under its own [`OVERFLOW_PROJECT`], so totals stay exact while
//! per-project detail for the excess is merged. Overall, at most about
//! `max_series` scopes per slot and since start (split across shards), except
//! that a tenant holding less than its fair share (the shard's bound divided
//! by the tenants in it) still gets its new scopes: one tenant sending many
//! project ids fills its own bound, never another tenant's, and the total
//! stays below twice `max_series` plus one overflow scope per tenant.

use std::{
    cell::Cell,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use super::hist::Hist;

/// Length of one slot.
pub const SLOT_MS: u64 = 10_000;
/// Slots kept: 15 minutes plus the current, partial one.
pub const RING: usize = 91;
/// The scope that collects projects beyond the series limit.
pub const OVERFLOW_PROJECT: &str = "~other";

/// Orchestration stages, in report order.
pub const STAGES: [&str; 5] = ["context_build", "token_budget", "decision", "persistence", "image_enqueue"];

/// gRPC status code names, indexed by code number.
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Index of a status code name (unknown names count as UNKNOWN).
pub fn code_index(name: &str) -> usize {
    CODE_NAMES.iter().position(|c| *c == name).unwrap_or(2)
}

/// One RPC method's outcomes.
#[derive(Debug, Clone, Default)]
pub struct RpcAgg {
    /// Durations; a stream's is its whole lifetime.
    pub hist: Hist,
    /// Count per status code, indexed like [`CODE_NAMES`].
    pub codes: [u64; 17],
}

/// Everything recorded for one scope (tenant, project) in one slot.
#[derive(Debug, Clone, Default)]
pub struct Agg {
    /// Per RPC method (few, so a vector beats a map).
    pub rpcs: Vec<(Box<str>, RpcAgg)>,
    /// Per orchestration stage, indexed like [`STAGES`].
    pub stages: [Hist; 5],
    /// Orchestrations finished.
    pub orchestrations: u64,
    /// Sum of their measured response times.
    pub actual_ms_sum: f64,
    /// Sum of their estimated old-flow response times.
    pub old_ms_sum: f64,
    /// Sum of enhanced prompt tokens.
    pub prompt_tokens_sum: u64,
    /// Largest enhanced prompt.
    pub prompt_tokens_max: u64,
    /// Prompts that dropped or cut context.
    pub truncations: u64,
    /// Prompts above 90% of their budget.
    pub budget_warnings: u64,
    /// Orchestrations built on degraded context.
    pub degraded: u64,
    /// Orchestrations with images whose analyses all finished.
    pub measured_samples: u64,
    /// Their response times.
    pub measured_actual_ms_sum: f64,
    /// Their blocking-equivalent response times.
    pub measured_blocking_ms_sum: f64,
    /// Image analysis durations of successful jobs.
    pub image_analysis: Hist,
    /// Job wait (enqueue or retry due time to claim).
    pub job_wait: Hist,
    /// Job attempt run time.
    pub job_run: Hist,
    /// Attempts that failed and were scheduled again.
    pub job_retries: u64,
    /// Jobs that failed for good.
    pub job_failures: u64,
    /// Jobs that succeeded.
    pub job_completed: u64,
}

impl Agg {
    /// The aggregate of `method`, created on first use.
    pub fn rpc(&mut self, method: &str) -> &mut RpcAgg {
        let pos = match self.rpcs.iter().position(|(m, _)| &**m == method) {
            Some(pos) => pos,
            None => {
                self.rpcs.push((method.into(), RpcAgg::default()));
                self.rpcs.len() - 1
            }
        };
        &mut self.rpcs[pos].1
    }

    /// Adds another aggregate.
    pub fn merge(&mut self, o: &Agg) {
        for (method, rpc) in &o.rpcs {
            let mine = self.rpc(method);
            mine.hist.merge(&rpc.hist);
            for (a, b) in mine.codes.iter_mut().zip(rpc.codes) {
                *a += b;
            }
        }
        for (a, b) in self.stages.iter_mut().zip(&o.stages) {
            a.merge(b);
        }
        self.orchestrations += o.orchestrations;
        self.actual_ms_sum += o.actual_ms_sum;
        self.old_ms_sum += o.old_ms_sum;
        self.prompt_tokens_sum += o.prompt_tokens_sum;
        self.prompt_tokens_max = self.prompt_tokens_max.max(o.prompt_tokens_max);
        self.truncations += o.truncations;
        self.budget_warnings += o.budget_warnings;
        self.degraded += o.degraded;
        self.measured_samples += o.measured_samples;
        self.measured_actual_ms_sum += o.measured_actual_ms_sum;
        self.measured_blocking_ms_sum += o.measured_blocking_ms_sum;
        self.image_analysis.merge(&o.image_analysis);
        self.job_wait.merge(&o.job_wait);
        self.job_run.merge(&o.job_run);
        self.job_retries += o.job_retries;
        self.job_failures += o.job_failures;
        self.job_completed += o.job_completed;
    }
}

/// Cache lookups: [hits, misses] per cache kind (context packet, image facts).
pub type CacheCounts = [[u64; 2]; 2];

/// Aggregates by tenant, then project ("" when the RPC named none).
#[derive(Debug, Default)]
struct Scopes {
    tenants: hashbrown::HashMap<String, hashbrown::HashMap<String, Agg>>,
    series: usize,
}

/// How many scopes a set of aggregates keeps before merging into [`OVERFLOW_PROJECT`].
#[derive(Debug, Clone, Copy)]
struct Caps {
    /// All tenants together (one shard's share of `max_series`).
    total: usize,
    /// One tenant, in each shard (not split across shards, see `Windows::with_shards`).
    per_tenant: usize,
}

impl Scopes {
    fn agg(&mut self, tenant: &str, project: &str, caps: Caps) -> &mut Agg {
        let tenant_count = self.tenants.len() + usize::from(!self.tenants.contains_key(tenant));
        let projects = self.tenants.entry_ref(tenant).or_default();
        let project = if projects.contains_key(project) || admits(projects.len(), self.series, tenant_count, caps) {
            project
        } else {
            OVERFLOW_PROJECT
        };
        if !projects.contains_key(project) {
            self.series += 1;
        }
        projects.entry_ref(project).or_default()
    }

    fn merge_into(&self, filter: &Filter<'_>, out: &mut Agg) {
        for (tenant, projects) in &self.tenants {
            if filter.tenant.is_some_and(|t| t != tenant) {
                continue;
            }
            for (project, agg) in projects {
                if filter.project.is_some_and(|p| p != project) {
                    continue;
                }
                out.merge(agg);
            }
        }
    }

    fn absorb(&mut self, other: Scopes, caps: Caps) {
        for (tenant, projects) in other.tenants {
            for (project, agg) in projects {
                self.agg(&tenant, &project, caps).merge(&agg);
            }
        }
    }
}

/// Whether a tenant holding `held` scopes gets a new one, when `series` scopes
/// exist over `tenants` tenants. Below its own bound, a tenant is refused only
/// when the total bound is reached and it already holds its fair share of it,
/// so a tenant filling the total cannot starve the others.
fn admits(held: usize, series: usize, tenants: usize, caps: Caps) -> bool {
    held < caps.per_tenant && (series < caps.total || held < caps.total / tenants.max(1))
}

#[derive(Debug, Default)]
struct Slot {
    /// Slot number since start, plus one; 0 = never used.
    number: u64,
    scopes: Scopes,
    caches: CacheCounts,
    /// Every scope merged, kept once the slot is closed: operator views
    /// (all tenants) then merge one aggregate per slot instead of every scope.
    total: Option<Agg>,
}

impl Slot {
    /// Merges the scopes matching `filter` into `out`.
    fn merge_into(&mut self, filter: &Filter<'_>, now: u64, out: &mut Agg) {
        let everything = filter.tenant.is_none() && filter.project.is_none();
        // Two slots back, nothing records here any more (recording uses the current slot).
        let closed = self.number + 2 <= now;
        if !(everything && closed) {
            self.scopes.merge_into(filter, out);
            return;
        }
        if self.total.is_none() {
            let mut total = Agg::default();
            self.scopes.merge_into(filter, &mut total);
            self.total = Some(total);
        }
        if let Some(total) = &self.total {
            out.merge(total);
        }
    }
}

#[derive(Debug)]
struct Shard {
    slots: Vec<Slot>,
    since_start: Scopes,
    since_start_caches: CacheCounts,
}

impl Shard {
    /// Retires slots older than the ring into the since-start accumulator.
    fn retire(&mut self, now: u64, caps: Caps) {
        for slot in &mut self.slots {
            if slot.number != 0 && slot.number + (RING as u64) <= now {
                let old = std::mem::take(slot);
                self.since_start.absorb(old.scopes, caps);
                add_caches(&mut self.since_start_caches, &old.caches);
            }
        }
    }

    fn current(&mut self, now: u64, caps: Caps) -> &mut Slot {
        let i = (now % RING as u64) as usize;
        if self.slots[i].number != now {
            self.retire(now, caps);
            self.slots[i].number = now;
        }
        &mut self.slots[i]
    }
}

fn add_caches(into: &mut CacheCounts, from: &CacheCounts) {
    for (a, b) in into.iter_mut().zip(from) {
        a[0] += b[0];
        a[1] += b[1];
    }
}

/// Which scopes a report covers: a tenant (None = all, for operators) and a project.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub tenant: Option<&'a str>,
    pub project: Option<&'a str>,
}

/// The slots a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The slots that overlap the last `ms` milliseconds.
    Last(u64),
    /// Everything since the process started.
    SinceStart,
}

/// A merged view of a span.
#[derive(Debug, Default)]
pub struct Merged {
    /// The figures of the scopes the filter matched.
    pub agg: Agg,
    /// Cache lookups (process-wide).
    pub caches: CacheCounts,
    /// Milliseconds the merged slots actually cover (up to now).
    pub covered_ms: u64,
}

/// One slot of a timeline.
#[derive(Debug, Default)]
pub struct SlotView {
    /// Slot start, ms since process start.
    pub start_ms: u64,
    pub agg: Agg,
    /// Cache lookups in the slot (process-wide: the filter does not apply).
    pub caches: CacheCounts,
}

/// The ring of slots, sharded by thread.
pub struct Windows {
    shards: Box<[Mutex<Shard>]>,
    started: Instant,
    caps: Caps,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static SHARD: Cell<usize> = Cell::new(NEXT_SHARD.fetch_add(1, Ordering::Relaxed));
}

impl Windows {
    /// A ring with at most about `max_series` (tenant, project) scopes per
    /// slot, and `max_series_per_tenant` per tenant and shard.
    pub fn new(max_series: usize, max_series_per_tenant: usize) -> Self {
        let shards = std::thread::available_parallelism().map_or(4, usize::from).clamp(2, 16);
        Self::with_shards(max_series, max_series_per_tenant, shards)
    }

    fn with_shards(max_series: usize, max_series_per_tenant: usize, shards: usize) -> Self {
        let shards: Vec<Mutex<Shard>> = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    slots: (0..RING).map(|_| Slot::default()).collect(),
                    since_start: Scopes::default(),
                    since_start_caches: CacheCounts::default(),
                })
            })
            .collect();
        // The per-tenant bound is not split across shards: a tenant's projects recur on every
        // shard its calls land on, so splitting would merge a modest tenant's projects early.
        let caps = Caps { total: max_series.div_ceil(shards.len()).max(1), per_tenant: max_series_per_tenant.max(1) };
        Self { shards: shards.into_boxed_slice(), started: Instant::now(), caps }
    }

    /// Moves the recorder's clock forward (tests of slot ageing).
    #[cfg(test)]
    fn advance(&mut self, ms: u64) {
        if let Some(earlier) = self.started.checked_sub(std::time::Duration::from_millis(ms)) {
            self.started = earlier;
        }
    }

    /// Milliseconds since the recorder started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn slot_number(&self, uptime_ms: u64) -> u64 {
        uptime_ms / SLOT_MS + 1
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding the lock leaves counters, not invariants, behind: keep going.
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn my_shard(&self) -> usize {
        SHARD.with(Cell::get) % self.shards.len()
    }

    /// Updates the current slot's aggregate of (tenant, project).
    pub fn record(&self, tenant: &str, project: &str, update: impl FnOnce(&mut Agg)) {
        let now = self.slot_number(self.uptime_ms());
        let caps = self.caps;
        let mut shard = self.lock(self.my_shard());
        update(shard.current(now, caps).scopes.agg(tenant, project, caps));
    }

    /// Counts a cache lookup in the current slot.
    pub fn record_cache(&self, kind: usize, hit: bool) {
        let now = self.slot_number(self.uptime_ms());
        let caps = self.caps;
        let mut shard = self.lock(self.my_shard());
        shard.current(now, caps).caches[kind.min(1)][usize::from(!hit)] += 1;
    }

    /// Retires expired slots of every shard, so recording rarely has to.
    pub fn maintain(&self) {
        let now = self.slot_number(self.uptime_ms());
        for i in 0..self.shards.len() {
            self.lock(i).retire(now, self.caps);
        }
    }

    /// Merges the scopes matching `filter` over `span`.
    pub fn merged(&self, span: Span, filter: &Filter<'_>) -> Merged {
        let uptime = self.uptime_ms();
        let now = self.slot_number(uptime);
        let oldest = match span {
            Span::SinceStart => 1,
            Span::Last(ms) => self.slot_number(uptime.saturating_sub(ms)),
        };
        let mut out = Merged::default();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            let shard = &mut *shard;
            if span == Span::SinceStart {
                shard.since_start.merge_into(filter, &mut out.agg);
                add_caches(&mut out.caches, &shard.since_start_caches);
            }
            for slot in &mut shard.slots {
                let live = slot.number != 0 && slot.number <= now;
                let in_span = span == Span::SinceStart || (slot.number >= oldest && slot.number + (RING as u64) > now);
                if live && in_span {
                    slot.merge_into(filter, now, &mut out.agg);
                    add_caches(&mut out.caches, &slot.caches);
                }
            }
        }
        out.covered_ms = uptime - (oldest - 1) * SLOT_MS;
        out
    }

    /// The last `slots` slots (oldest first, the current one last), each merged over `filter`.
    pub fn timeline(&self, slots: usize, filter: &Filter<'_>) -> Vec<SlotView> {
        let now = self.slot_number(self.uptime_ms());
        let slots = slots.min(RING) as u64;
        let first = now.saturating_sub(slots - 1).max(1);
        let mut views: Vec<SlotView> =
            (first..=now).map(|n| SlotView { start_ms: (n - 1) * SLOT_MS, ..SlotView::default() }).collect();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            for slot in &mut shard.slots {
                if slot.number >= first && slot.number <= now {
                    let view = &mut views[(slot.number - first) as usize];
                    slot.merge_into(filter, now, &mut view.agg);
                    add_caches(&mut view.caches, &slot.caches);
                }
            }
        }
        views
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(w: &Windows, tenant: &str, project: &str, ms: f64, code: &str) {
        w.record(tenant, project, |a| {
            let r = a.rpc("GetProject");
            r.hist.record_ms(ms);
            r.codes[code_index(code)] += 1;
        });
    }

    #[test]
    fn filters_by_tenant_and_project() {
        let w = Windows::with_shards(100, 100, 2);
        rpc(&w, "t1", "p1", 1.0, "OK");
        rpc(&w, "t1", "p2", 2.0, "NOT_FOUND");
        rpc(&w, "t2", "p3", 3.0, "OK");
        let count = |f: Filter<'_>| w.merged(Span::Last(60_000), &f).agg.rpcs.first().map_or(0, |r| r.1.hist.count());
        assert_eq!(count(Filter::default()), 3);
        assert_eq!(count(Filter { tenant: Some("t1"), project: None }), 2);
        assert_eq!(count(Filter { tenant: Some("t1"), project: Some("p2") }), 1);
        assert_eq!(count(Filter { tenant: Some("t2"), project: Some("p2") }), 0);
        assert_eq!(count(Filter { tenant: None, project: Some("p3") }), 1);
        let since = w.merged(Span::SinceStart, &Filter::default());
        assert_eq!(since.agg.rpcs[0].1.codes[code_index("NOT_FOUND")], 1);
    }

    #[test]
    fn series_beyond_the_cap_merge_into_overflow() {
        let w = Windows::with_shards(4, 100, 1);
        for p in 0..10 {
            rpc(&w, "t", &format!("p{p}"), 1.0, "OK");
        }
        let total = w.merged(Span::Last(60_000), &Filter { tenant: Some("t"), project: None });
        assert_eq!(total.agg.rpcs[0].1.hist.count(), 10, "totals stay exact");
        let other = w.merged(Span::Last(60_000), &Filter { tenant: Some("t"), project: Some(OVERFLOW_PROJECT) });
        assert_eq!(other.agg.rpcs[0].1.hist.count(), 6);
        let known = w.merged(Span::Last(60_000), &Filter { tenant: Some("t"), project: Some("p1") });
        assert_eq!(known.agg.rpcs[0].1.hist.count(), 1);
    }

    #[test]
    fn one_tenant_flooding_series_fills_only_its_own_bound() {
        let w = Windows::with_shards(20, 8, 1);
        rpc(&w, "a", "before", 1.0, "OK");
        for p in 0..3_000 {
            rpc(&w, "b", &format!("random-{p}"), 1.0, "OK");
        }
        rpc(&w, "a", "after", 1.0, "OK");
        let count = |tenant: &str, project: Option<&str>| {
            let filter = Filter { tenant: Some(tenant), project };
            w.merged(Span::Last(60_000), &filter).agg.rpcs.first().map_or(0, |r| r.1.hist.count())
        };
        assert_eq!(count("a", Some("after")), 1, "the flood did not take the other tenant's series");
        assert_eq!(count("a", Some("before")), 1);
        assert_eq!(count("b", None), 3_000, "the flooding tenant's totals stay exact");
        assert_eq!(count("b", Some(OVERFLOW_PROJECT)), 3_000 - 8);
    }

    #[test]
    fn the_total_bound_still_holds_for_tenants_past_their_fair_share() {
        let w = Windows::with_shards(10, 100, 1);
        for tenant in ["a", "b"] {
            for p in 0..50 {
                rpc(&w, tenant, &format!("p{p}"), 1.0, "OK");
            }
        }
        let shard = w.lock(0);
        let series = shard.slots.iter().map(|s| s.scopes.series).sum::<usize>();
        // 10 for "a" up to the total bound, then "b" its fair share of 5, plus one overflow scope each.
        assert_eq!(series, 10 + 5 + 2, "{series}");
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let w = std::sync::Arc::new(Windows::with_shards(100, 100, 4));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let w = w.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        rpc(&w, "t", if i % 2 == 0 { "a" } else { "b" }, f64::from(t + 1), "OK");
                        w.record_cache(0, i % 4 != 0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("recording thread");
        }
        let m = w.merged(Span::SinceStart, &Filter::default());
        assert_eq!(m.agg.rpcs[0].1.hist.count(), 80_000);
        assert_eq!(m.agg.rpcs[0].1.hist.max_ms(), 8.0);
        assert_eq!(m.caches[0], [60_000, 20_000]);
    }

    #[test]
    fn closed_slots_answer_operator_views_from_their_cached_total() {
        let mut w = Windows::with_shards(100, 100, 2);
        rpc(&w, "t1", "p1", 1.0, "OK");
        rpc(&w, "t2", "p2", 2.0, "NOT_FOUND");
        w.advance(3 * SLOT_MS);
        let count = |w: &Windows, f: Filter<'_>| {
            w.merged(Span::Last(120_000), &f).agg.rpcs.first().map_or(0, |r| r.1.hist.count())
        };
        // The first slot is closed now: this caches its total.
        assert_eq!(count(&w, Filter::default()), 2);
        rpc(&w, "t1", "p1", 3.0, "OK");
        assert_eq!(count(&w, Filter::default()), 3, "cached closed slot plus the live one");
        assert_eq!(count(&w, Filter { tenant: Some("t1"), project: None }), 2, "filtered views skip the cache");
        assert_eq!(count(&w, Filter { tenant: Some("t2"), project: Some("p2") }), 1);
        let timeline = w.timeline(10, &Filter::default());
        let per_slot: Vec<u64> = timeline.iter().map(|v| v.agg.rpcs.first().map_or(0, |r| r.1.hist.count())).collect();
        assert_eq!(per_slot, vec![2, 0, 0, 1]);
        // Once the ring wraps, the slot moves to since-start, its cache with it dropped.
        w.advance(RING as u64 * SLOT_MS);
        rpc(&w, "t2", "p2", 4.0, "OK");
        w.maintain();
        assert_eq!(count(&w, Filter::default()), 1);
        let since = w.merged(Span::SinceStart, &Filter::default());
        assert_eq!(since.agg.rpcs[0].1.hist.count(), 4);
        assert_eq!(since.agg.rpcs[0].1.codes[code_index("NOT_FOUND")], 1);
    }

    #[test]
    fn timeline_ends_with_the_current_slot() {
        let w = Windows::with_shards(100, 100, 2);
        rpc(&w, "t", "p", 5.0, "OK");
        let t = w.timeline(90, &Filter::default());
        assert!(!t.is_empty() && t.len() <= 90);
        assert_eq!(t.last().map(|v| v.agg.rpcs.len()), Some(1));
    }
}
