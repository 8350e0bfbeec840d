//! Group commit of orchestrations.
//!
//! Every orchestration's writes (memory bank, conversation turn, the
//! orchestration row with its response, attached images and their jobs) go
//! through one writer task per process. When it is free it takes everything
//! queued and commits it in one transaction with one statement per table, so
//! under load the per-statement cost (on SQLite a hand-off to the writer
//! connection's thread, on PostgreSQL a round trip) and the commit are shared
//! by the batch. Nothing waits to fill a batch: a lone orchestration commits
//! at once. If a batch fails, each of its orchestrations is retried alone, so
//! one bad request never fails another.
//!
//! The writer also keeps a caller that goes away mid-commit from leaving a
//! stale cache: the commit is announced whether or not anyone waits for it.
//!
//! After a commit the project's cached packet is refreshed in place (the
//! packet the writer found before the transaction plus the batch's writes)
//! instead of being rebuilt from the store by the next call. The base is
//! whatever packet is current when the batch starts, so calls on a hot
//! project, which read the packet before earlier batches committed, keep the
//! cache warm too; when the previous batch's refresh has not been cached yet,
//! the writer takes it as the base directly.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use tokio::sync::{mpsc, oneshot};

use super::{Orchestration, line_tokens, memory_put, ms, tool_name};
use crate::{
    changes::ProjectChanges,
    context::{build::PacketLimits, cache::ContextCache, packet::PreparedPacket},
    decide::preferences::{self, ExtractedPreference},
    error::{Error, ErrorKind, Result},
    images::{Images, PreparedImage},
    model::{
        ConversationTurn, ImageAnalysis, MemoryItem, MemoryPut, MemorySource, MemoryType, TenantId, new_id, now_ms,
    },
    store::{Backend, Inserted, MemoryState, NewOrchestration, NewTurn, OrchestrationTx, Store, StoredRequest},
};

/// Most orchestrations committed together (bounded so one statement stays
/// well inside SQLite's and PostgreSQL's bound-parameter limits).
const MAX_BATCH: usize = 64;
/// Orchestrations waiting for the writer before callers wait to queue.
const QUEUE_CAPACITY: usize = 1024;

/// One orchestration's writes, prepared by its request before queueing, so
/// the writer does only what needs the stored state.
pub(super) struct Pending {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Fingerprint of the request (idempotency).
    pub request_hash: String,
    /// The user's prompt.
    pub prompt: String,
    /// Preferences found in the prompt, by key; merged with the stored ones by the writer.
    pub extracted: BTreeMap<String, ExtractedPreference>,
    /// Scene relationships and the latest interaction, with their line's
    /// tokens; the writer counts their occurrences.
    pub counted: Vec<(MemoryPut, u32)>,
    /// The decision in one line (the conversation turn's summary).
    pub summary: String,
    /// Tokens of the conversation turn's lines.
    pub turn_tokens: u32,
    /// The orchestration as decided; what the write adds (time, images, write
    /// timings) comes back as a [`Stamp`], so the writer never copies it
    /// unless it must store the full response.
    pub orchestration: Arc<Orchestration>,
    /// Images accepted with the prompt.
    pub attached: Vec<PreparedImage>,
    /// When the request started.
    pub started: Instant,
    /// When it was queued.
    pub queued: Instant,
}

/// What became of a queued orchestration.
pub(super) enum Written {
    /// Committed.
    Stored {
        /// What the write added to the orchestration.
        stamp: Stamp,
        /// From queueing to the announced commit.
        persistence_ms: f64,
        /// The project's event cursor before the attached images.
        events_after: u64,
        /// The project's context packet after this batch, for the caller to cache.
        refresh: Option<Refresh>,
    },
    /// The request id was taken meanwhile: answer with what is stored under it.
    Existing(StoredRequest),
}

/// What the write adds to an orchestration.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    created_at: i64,
    images: Vec<ImageAnalysis>,
    image_enqueue_ms: Option<f64>,
    persistence_ms: f64,
    total_ms: f64,
}

impl Stamp {
    /// The orchestration as stored.
    pub(super) fn apply(&self, orchestration: &mut Orchestration) {
        orchestration.created_at = self.created_at;
        if let Some(ms) = self.image_enqueue_ms {
            orchestration.images = self.images.clone();
            orchestration.timings.image_enqueue_ms = ms;
        }
        orchestration.timings.persistence_ms = self.persistence_ms;
        orchestration.timings.total_ms = self.total_ms;
    }
}

type Queued = (Pending, oneshot::Sender<Result<Written>>);

/// The queue in front of the writer task.
pub(super) struct Committer {
    queue: mpsc::Sender<Queued>,
    /// The writer's refreshes of its last batch.
    recent: Arc<Mutex<Recent>>,
    /// The writer and its end of the queue until the first commit starts it
    /// (the service is built outside the runtime).
    idle: Mutex<Option<(Writer, mpsc::Receiver<Queued>)>>,
    started: AtomicBool,
}

impl Committer {
    /// A queue for `writer`, started on first use.
    pub(super) fn new(writer: Writer) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        Self {
            queue,
            recent: writer.recent.clone(),
            idle: Mutex::new(Some((writer, receiver))),
            started: AtomicBool::new(false),
        }
    }

    /// Queues the orchestration and waits for its commit.
    pub(super) async fn commit(&self, pending: Pending) -> Result<Written> {
        self.start();
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((pending, reply))
            .await
            .map_err(|_| Error::store_unavailable("the orchestration writer has stopped"))?;
        answer.await.map_err(|_| Error::internal("the orchestration writer dropped a queued orchestration"))?
    }

    /// The previous batch's refresh of the project, cached now, if nothing
    /// was announced since: for a call that comes between the commit's
    /// announcement and its caller caching the refresh.
    pub(super) fn refreshed(&self, tenant: &TenantId, project_id: &str) -> Option<Arc<PreparedPacket>> {
        recent_refresh(&self.recent, tenant, project_id)?.cache()
    }

    fn start(&self) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let mut idle = lock(&self.idle);
        if let Some((writer, receiver)) = idle.take() {
            match writer.store.backend() {
                // SQLite's connection is served by its own thread, so the writer can run on a
                // dedicated thread and runtime: its wake-ups after each statement then do not
                // queue behind the request tasks of a busy runtime (the writer is the one
                // serial part of every orchestration; measured in docs/PERFORMANCE.md).
                Backend::Sqlite => {
                    let spawned = std::thread::Builder::new().name("brain-writer".into()).spawn(move || {
                        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                            Ok(runtime) => runtime.block_on(writer.run(receiver)),
                            Err(err) => tracing::error!(error = %err, "cannot start the orchestration writer"),
                        }
                    });
                    if let Err(err) = spawned {
                        tracing::error!(error = %err, "cannot start the orchestration writer thread");
                    }
                }
                // PostgreSQL connections are registered with the runtime that opened them.
                Backend::Postgres => {
                    tokio::spawn(writer.run(receiver));
                }
            }
            self.started.store(true, Ordering::Release);
        }
    }
}

/// The writer task's state.
pub(super) struct Writer {
    pub store: Store,
    pub changes: Arc<ProjectChanges>,
    pub cache: Arc<ContextCache>,
    pub images: Images,
    pub limits: PacketLimits,
    /// The previous batch's refreshes, by project: the next batch's base
    /// when their callers have not cached them yet.
    pub recent: Arc<Mutex<Recent>>,
}

/// The last batch's refreshes, by project.
pub(super) type Recent = HashMap<String, Refresh>;

/// (project, type, key) of a memory item.
type MemoryKey = (String, MemoryType, String);

/// One orchestration of a batch, written and waiting for the commit.
struct Done {
    index: usize,
    project_id: String,
    stamp: Stamp,
    written: Vec<MemoryItem>,
    turn: ConversationTurn,
    events_after: u64,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
        while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let (pending, replies): (Vec<Pending>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
            let outcomes = self.commit(&pending).await;
            // Dropped first, so each caller holds the only reference to its orchestration.
            drop(pending);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The caller may have gone; the write stands either way.
                let _ = reply.send(outcome);
            }
        }
    }

    /// Commits the batch, or each orchestration alone if the batch fails.
    async fn commit(&self, batch: &[Pending]) -> Vec<Result<Written>> {
        match self.write(batch).await {
            Ok(outcomes) => outcomes,
            // The store is down: every orchestration would wait for it again, one after the other.
            Err(err) if err.kind() == ErrorKind::Unavailable => batch.iter().map(|_| Err(err.clone())).collect(),
            Err(err) if batch.len() > 1 => {
                tracing::warn!(error = %err, batch = batch.len(), "group commit failed; committing one by one");
                let mut outcomes = Vec::with_capacity(batch.len());
                for pending in batch {
                    let alone = self.write(std::slice::from_ref(pending)).await;
                    outcomes.push(alone.and_then(|mut one| {
                        one.pop().unwrap_or_else(|| Err(Error::internal("a lone orchestration had no outcome")))
                    }));
                }
                outcomes
            }
            Err(err) => vec![Err(err)],
        }
    }

    /// One transaction for the whole batch; an Err means nothing was stored.
    async fn write(&self, batch: &[Pending]) -> Result<Vec<Result<Written>>> {
        let began = Instant::now();
        let now = now_ms();
        let projects = projects_of(batch);
        // Read before the transaction, so no base can hold this batch's writes.
        let bases = self.bases(&projects);
        let tx = self.store.begin_orchestrations(&projects, now).await?;
        let mut outcomes = missing_projects(&tx, batch);
        let duplicate_of = self.claim_request_ids(&tx, batch, &mut outcomes).await?;
        let live: Vec<usize> =
            (0..batch.len()).filter(|&i| outcomes[i].is_none() && duplicate_of[i].is_none()).collect();

        let mut memories = MemoryMerge { state: stored_memories(&tx, batch, &live).await?, touched: Vec::new() };
        let mut rows = Rows::default();
        for &i in &live {
            self.stage(&tx, i, &batch[i], now, &mut memories, &mut rows).await?;
        }
        tx.put_memories(&memories.finals()).await?;
        tx.insert_turns(&rows.turns).await?;
        match tx.insert_orchestrations(&rows.orchestrations).await? {
            Inserted::Yes => {}
            // Another replica stored one of the request ids meanwhile (PostgreSQL).
            Inserted::RequestIdTaken => {
                drop(tx);
                return self.request_id_taken(batch, &rows.orchestrations).await;
            }
        }
        tx.commit().await?;
        if !rows.done.is_empty() {
            crate::perf::prom::commit_batch(rows.done.len(), began.elapsed());
        }
        let refreshes = self.announce(batch, &rows.done, rows.any_images, bases);
        Ok(committed_outcomes(batch, outcomes, &duplicate_of, rows, refreshes))
    }

    /// Each project's current packet and its generation, where there is one:
    /// the cached packet, else the previous batch's refresh of it if nothing
    /// was announced since (cached on the way, as its caller would).
    fn bases(&self, projects: &[(TenantId, String)]) -> HashMap<String, (Arc<PreparedPacket>, u64)> {
        projects
            .iter()
            .filter_map(|(tenant, project_id)| {
                let base = self.cache.current(tenant, project_id).or_else(|| {
                    let refresh = recent_refresh(&self.recent, tenant, project_id)?;
                    refresh.cache().map(|packet| (packet, refresh.0.generation))
                })?;
                Some((project_id.clone(), base))
            })
            .collect()
    }

    /// Adds one live orchestration's writes to the batch: its attached
    /// images, its memory merges, its conversation turn and its row.
    async fn stage(
        &self,
        tx: &OrchestrationTx,
        index: usize,
        p: &Pending,
        now: i64,
        memories: &mut MemoryMerge,
        rows: &mut Rows,
    ) -> Result<()> {
        let orchestration = &p.orchestration;
        let project_id = orchestration.project_id.clone();
        let mut stamp =
            Stamp { created_at: now, images: Vec::new(), image_enqueue_ms: None, persistence_ms: 0.0, total_ms: 0.0 };
        let events_after = self.accept_images(tx, p, &mut stamp).await?;
        rows.any_images |= !p.attached.is_empty();
        let written = memories.merge(p, now);
        // Ids are UUIDv7, so turns of one batch (same time) keep the batch's order.
        let turn = ConversationTurn {
            id: new_id(),
            orchestration_id: Some(orchestration.id.clone()),
            prompt: p.prompt.clone(),
            decision_summary: p.summary.clone(),
            token_count: p.turn_tokens,
            created_at: now,
        };
        stamp.persistence_ms = ms(p.queued);
        stamp.total_ms = ms(p.started);
        rows.orchestrations.push(orchestration_row(p, &stamp, now)?);
        rows.turns.push(NewTurn { tenant_id: p.tenant.clone(), project_id: project_id.clone(), turn: turn.clone() });
        rows.done.push(Done { index, project_id, stamp, written, turn, events_after });
        Ok(())
    }

    /// Accepts the attached images in the transaction, so their analyses and
    /// jobs commit with the orchestration or not at all. Returns the
    /// project's event cursor before them (0 when none are attached).
    async fn accept_images(&self, tx: &OrchestrationTx, p: &Pending, stamp: &mut Stamp) -> Result<u64> {
        if p.attached.is_empty() {
            return Ok(0);
        }
        let enqueue = Instant::now();
        let orchestration = &p.orchestration;
        let accepted = self
            .images
            .accept_in(tx.txn(), &p.tenant, &orchestration.project_id, Some(&orchestration.id), p.attached.clone())
            .await?;
        stamp.images = accepted.analyses;
        stamp.image_enqueue_ms = Some(ms(enqueue));
        Ok(accepted.events_after)
    }

    /// The outcome when another writer stored a request id of the batch
    /// first: for a lone orchestration, what is stored under its request id;
    /// a batch fails (and is retried one by one).
    async fn request_id_taken(&self, batch: &[Pending], rows: &[NewOrchestration]) -> Result<Vec<Result<Written>>> {
        match (batch, rows.first()) {
            ([p], Some(row)) => {
                let request_id = row.request_id.as_deref().unwrap_or_default();
                let stored =
                    self.store.find_request(&p.tenant, request_id).await?.ok_or_else(|| {
                        Error::internal("request id collided with an orchestration that cannot be found")
                    })?;
                Ok(vec![Ok(Written::Existing(stored))])
            }
            _ => Err(Error::internal("a request id of the batch was taken by another writer")),
        }
    }

    /// Marks the batch's orchestrations whose request id is already stored
    /// (their outcome is the stored one) and returns, for each, the earlier
    /// orchestration of this batch with the same tenant and request id.
    async fn claim_request_ids(
        &self,
        tx: &OrchestrationTx,
        batch: &[Pending],
        outcomes: &mut [Option<Result<Written>>],
    ) -> Result<Vec<Option<usize>>> {
        let keyed: Vec<(usize, (TenantId, String))> = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| outcomes[*i].is_none())
            .filter_map(|(i, p)| p.orchestration.request_id.clone().map(|r| (i, (p.tenant.clone(), r))))
            .collect();
        let wanted: Vec<(TenantId, String)> = keyed.iter().map(|(_, k)| k.clone()).collect();
        let stored = tx.find_requests(&wanted).await?;
        let mut first: HashMap<(TenantId, String), usize> = HashMap::new();
        let mut duplicate_of = vec![None; batch.len()];
        for (i, key) in keyed {
            if let Some(found) = stored.get(&key) {
                outcomes[i] = Some(Ok(Written::Existing(found.clone())));
            } else if let Some(&j) = first.get(&key) {
                duplicate_of[i] = Some(j);
            } else {
                first.insert(key, i);
            }
        }
        Ok(duplicate_of)
    }

    /// After the commit: every written project is announced once (which
    /// invalidates its cached packet) and workers wake for new images. A
    /// project's next packet is its base plus this batch's writes (not when
    /// images were attached: the store lists them as pending now); that work
    /// is handed to the project's last orchestration of the batch, whose
    /// caller does it before answering (in parallel with other callers, not
    /// in the writer), or to a call that misses the cache before that. The
    /// generation check drops it if another write got in since the base was read.
    fn announce(
        &self,
        batch: &[Pending],
        done: &[Done],
        any_images: bool,
        mut bases: HashMap<String, (Arc<PreparedPacket>, u64)>,
    ) -> HashMap<usize, Refresh> {
        let mut by_project: Vec<(&str, Vec<&Done>)> = Vec::new();
        for d in done {
            let project_id = d.project_id.as_str();
            match by_project.iter_mut().find(|(p, _)| *p == project_id) {
                Some((_, list)) => list.push(d),
                None => by_project.push((project_id, vec![d])),
            }
        }
        let mut refreshes = HashMap::new();
        let mut recent = lock(&self.recent);
        recent.clear();
        for (project_id, list) in &by_project {
            if list.iter().any(|d| !batch[d.index].attached.is_empty()) {
                continue;
            }
            let (Some((base, generation)), Some(last)) = (bases.remove(*project_id), list.last()) else { continue };
            let refresh = Refresh(Arc::new(RefreshState {
                cache: self.cache.clone(),
                tenant: batch[last.index].tenant.clone(),
                project_id: (*project_id).to_owned(),
                base,
                generation: generation.wrapping_add(1),
                writes: list.iter().map(|d| (d.written.clone(), d.turn.clone())).collect(),
                limits: self.limits,
                next: OnceLock::new(),
            }));
            recent.insert((*project_id).to_owned(), refresh.clone());
            refreshes.insert(last.index, refresh);
        }
        drop(recent);
        // After the refreshes are known, so a call that misses the cache from here on finds them.
        for (project_id, _) in &by_project {
            self.changes.changed(project_id);
        }
        if any_images {
            self.images.wake_workers();
        }
        refreshes
    }
}

/// The packet that follows a committed batch of one project's writes,
/// computed once by whoever needs it first: the caller of the project's last
/// orchestration in the batch, or the writer, as the next batch's base.
#[derive(Clone)]
pub(super) struct Refresh(Arc<RefreshState>);

struct RefreshState {
    cache: Arc<ContextCache>,
    tenant: TenantId,
    project_id: String,
    base: Arc<PreparedPacket>,
    /// The generation the packet belongs to: the base's plus this batch's announcement.
    generation: u64,
    writes: Vec<(Vec<MemoryItem>, ConversationTurn)>,
    limits: PacketLimits,
    next: OnceLock<Option<Arc<PreparedPacket>>>,
}

impl Refresh {
    /// Caches the packet and returns it, unless the project changed again since the commit.
    pub(super) fn cache(&self) -> Option<Arc<PreparedPacket>> {
        let state = &self.0;
        if state.cache.generation(&state.project_id) != state.generation {
            return None;
        }
        let packet = self.packet()?;
        state.cache.insert(&state.tenant, &state.project_id, state.generation, packet.clone());
        Some(packet)
    }

    /// The packet; None when only a store read can tell it (a write lowered
    /// a preference of a full packet).
    fn packet(&self) -> Option<Arc<PreparedPacket>> {
        let state = &self.0;
        state
            .next
            .get_or_init(|| {
                let mut packet = state.base.packet.clone();
                for (written, turn) in &state.writes {
                    packet = packet.after_write(written, turn, state.limits, now_ms())?;
                }
                Some(Arc::new(PreparedPacket::prepare_from(packet, &state.base)))
            })
            .clone()
    }
}

/// The last batch's refresh of the tenant's project, if it wrote to it.
fn recent_refresh(recent: &Mutex<Recent>, tenant: &TenantId, project_id: &str) -> Option<Refresh> {
    lock(recent).get(project_id).filter(|r| &r.0.tenant == tenant).cloned()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the map whole (clear, insert, get).
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What a batch writes besides memory items, in batch order.
#[derive(Default)]
struct Rows {
    turns: Vec<NewTurn>,
    orchestrations: Vec<NewOrchestration>,
    done: Vec<Done>,
    any_images: bool,
}

/// The batch's memory items: the stored ones, with each orchestration's
/// writes merged in batch order (so a later prompt of the batch sees an
/// earlier one's preferences).
struct MemoryMerge {
    state: HashMap<MemoryKey, MemoryItem>,
    /// Keys written, in first-write order, with the writer's tenant.
    touched: Vec<(MemoryKey, TenantId)>,
}

impl MemoryMerge {
    /// Merges one orchestration's memory writes; returns the items as written.
    fn merge(&mut self, p: &Pending, now: i64) -> Vec<MemoryItem> {
        let project_id = &p.orchestration.project_id;
        let mut written = Vec::new();
        for (put, token_count, occurrences) in memory_writes(p, &self.state, now) {
            let key = (project_id.clone(), put.memory_type, put.key.clone());
            let old = self.state.get(&key);
            let item = MemoryItem {
                id: old.map_or_else(new_id, |m| m.id.clone()),
                created_at: old.map_or(now, |m| m.created_at),
                updated_at: now,
                expires_at: put.ttl_ms.map(|ttl| now.saturating_add(ttl)),
                project_id: project_id.clone(),
                memory_type: put.memory_type,
                key: put.key,
                value: put.value,
                confidence: put.confidence,
                source: put.source,
                source_prompt: put.source_prompt,
                token_count,
                occurrences,
            };
            if !self.touched.iter().any(|(k, _)| k == &key) {
                self.touched.push((key.clone(), p.tenant.clone()));
            }
            self.state.insert(key, item.clone());
            written.push(item);
        }
        written
    }

    /// The final state of every written item, one per key.
    fn finals(mut self) -> Vec<MemoryState> {
        self.touched
            .into_iter()
            .filter_map(|(key, tenant_id)| self.state.remove(&key).map(|item| MemoryState { tenant_id, item }))
            .collect()
    }
}

/// The batch's projects, each once, for the transaction to lock.
fn projects_of(batch: &[Pending]) -> Vec<(TenantId, String)> {
    let mut projects: Vec<(TenantId, String)> = Vec::new();
    for p in batch {
        let pair = (p.tenant.clone(), p.orchestration.project_id.clone());
        if !projects.contains(&pair) {
            projects.push(pair);
        }
    }
    projects
}

/// One slot per orchestration of the batch: an error for those whose project
/// the transaction does not hold (it does not exist), None for the rest.
fn missing_projects(tx: &OrchestrationTx, batch: &[Pending]) -> Vec<Option<Result<Written>>> {
    batch
        .iter()
        .map(|p| {
            let project_id = &p.orchestration.project_id;
            (!tx.holds(&p.tenant, project_id)).then(|| Err(Error::project_not_found(project_id)))
        })
        .collect()
}

/// The orchestration's row. The full response is kept while it can be
/// replayed, i.e. under a request id: it repeats the whole context (up to the
/// model's window), so storing it for every prompt would multiply the
/// database's size and write volume.
fn orchestration_row(p: &Pending, stamp: &Stamp, now: i64) -> Result<NewOrchestration> {
    let orchestration = &p.orchestration;
    let response = match orchestration.request_id {
        Some(_) => {
            let mut stored = Orchestration::clone(orchestration);
            stamp.apply(&mut stored);
            serde_json::to_string(&stored)
                .map_err(|e| Error::internal(format!("cannot serialise the orchestration: {e}")))?
        }
        None => String::new(),
    };
    Ok(NewOrchestration {
        tenant_id: p.tenant.clone(),
        project_id: orchestration.project_id.clone(),
        id: orchestration.id.clone(),
        request_id: orchestration.request_id.clone(),
        request_hash: p.request_hash.clone(),
        response,
        tool: tool_name(&orchestration.decision).to_owned(),
        backend: orchestration.decision.backend.as_str().to_owned(),
        degraded: orchestration.degraded,
        image_count: p.attached.len() as u32,
        response_ms: stamp.total_ms,
        prompt_tokens: orchestration.token_report.total_after,
        created_at: now,
    })
}

/// Every orchestration's outcome after the commit: the stored ones, the
/// repeats of a request id stored earlier in the batch (answered with that
/// orchestration), and the outcomes decided before (missing project, request
/// id already stored).
fn committed_outcomes(
    batch: &[Pending],
    mut outcomes: Vec<Option<Result<Written>>>,
    duplicate_of: &[Option<usize>],
    rows: Rows,
    mut refreshes: HashMap<usize, Refresh>,
) -> Vec<Result<Written>> {
    for (i, first) in duplicate_of.iter().enumerate() {
        if let Some(row) =
            first.and_then(|j| rows.done.iter().position(|d| d.index == j)).map(|k| &rows.orchestrations[k])
        {
            outcomes[i] = Some(Ok(Written::Existing(StoredRequest {
                orchestration_id: row.id.clone(),
                project_id: row.project_id.clone(),
                request_hash: row.request_hash.clone(),
                response: row.response.clone(),
            })));
        }
    }
    for d in rows.done {
        let persistence_ms = ms(batch[d.index].queued);
        outcomes[d.index] = Some(Ok(Written::Stored {
            stamp: d.stamp,
            persistence_ms,
            events_after: d.events_after,
            refresh: refreshes.remove(&d.index),
        }));
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(Error::internal("an orchestration of the batch had no outcome"))))
        .collect()
}

/// The stored memory items the live orchestrations may touch, by key.
async fn stored_memories(
    tx: &OrchestrationTx,
    batch: &[Pending],
    live: &[usize],
) -> Result<HashMap<MemoryKey, MemoryItem>> {
    let mut project_ids: Vec<&str> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for &i in live {
        let p = &batch[i];
        if !project_ids.contains(&p.orchestration.project_id.as_str()) {
            project_ids.push(&p.orchestration.project_id);
        }
        for key in p.extracted.keys().map(String::as_str).chain(p.counted.iter().map(|(put, _)| put.key.as_str())) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let rows = tx.memories(&project_ids, &keys).await?;
    Ok(rows.into_iter().map(|m| ((m.project_id.clone(), m.memory_type, m.key.clone()), m)).collect())
}

/// The memory bank writes of one orchestration against the current state:
/// preferences from the prompt merged with what is stored (so concurrent
/// prompts merge in commit order), what was asked of each target scene and
/// the latest interaction, each with its token count and occurrence count
/// (the same value again is one more, a different one starts over).
/// Keys are distinct; a later write of a key wins.
fn memory_writes(p: &Pending, state: &HashMap<MemoryKey, MemoryItem>, now: i64) -> Vec<(MemoryPut, u32, u32)> {
    let project_id = &p.orchestration.project_id;
    let mut writes: Vec<(MemoryPut, u32, u32)> = Vec::new();
    for (key, new) in &p.extracted {
        // An expired preference is forgotten: the new sighting starts afresh.
        let old = state
            .get(&(project_id.clone(), MemoryType::UserPreference, key.clone()))
            .filter(|m| m.expires_at.is_none_or(|at| at > now));
        let (value, confidence) = preferences::merge(old.map(|m| (m.value.as_str(), m.confidence, m.occurrences)), new);
        let occurrences =
            preferences::next_occurrences(old.map(|m| (m.value.as_str(), m.occurrences)), &new.value, &value);
        let mut put = memory_put(project_id, MemoryType::UserPreference, key, value, confidence, MemorySource::Prompt);
        // A weak contradiction only erodes the stored value, which keeps the prompt it came from.
        put.source_prompt = match old {
            Some(old)
                if preferences::same_value(&old.value, &put.value)
                    && !preferences::same_value(&old.value, &new.value) =>
            {
                old.source_prompt.clone()
            }
            _ => Some(p.prompt.clone()),
        };
        let token_count = line_tokens(&put);
        writes.push((put, token_count, occurrences));
    }
    for (put, token_count) in &p.counted {
        let occurrences = state
            .get(&(project_id.clone(), put.memory_type, put.key.clone()))
            .map_or(1, |m| if m.value == put.value { m.occurrences.saturating_add(1) } else { 1 });
        writes.push((put.clone(), *token_count, occurrences));
    }
    // One statement cannot write a key twice; keys that clip to the same text keep the last write.
    let mut unique: Vec<(MemoryPut, u32, u32)> = Vec::with_capacity(writes.len());
    for write in writes {
        unique.retain(|w| !(w.0.memory_type == write.0.memory_type && w.0.key == write.0.key));
        unique.push(write);
    }
    unique
}
