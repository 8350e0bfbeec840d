//! The live bus: one hub per project that has subscribers on this replica.
//!
//! A hub is created with its project's first subscriber and dropped with the
//! last. On every wake-up it reads the events committed since its cursor from
//! the store, once, and hands each subscriber an `Arc` of each event through a
//! bounded channel, so 10,000 subscribers cost one query per commit, not
//! 10,000. A subscriber whose channel is full is cut loose and marked as
//! lagging; it catches up from the store on its own and registers again.
//!
//! The hub's cursor only moves under its lock, together with the fan-out, so
//! a subscriber that registers while the cursor is H receives every event
//! after H through its channel and must replay only up to H from the store.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Event;
use crate::{error::Result, store::Store};

/// Events read from the store per query.
const READ_BATCH: u64 = 256;
/// Pause before a hub retries a failed read.
const RETRY_READ: Duration = Duration::from_millis(200);

/// Fans committed events out to this replica's subscribers. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    store: Store,
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
    shutdown: CancellationToken,
    buffer: usize,
}

pub(super) struct Hub {
    project_id: String,
    /// Highest cursor fanned out; written only under `state`'s lock.
    cursor: AtomicU64,
    state: Mutex<HubState>,
    wake: Notify,
    /// Set when the project was deleted: its subscribers' streams end with PROJECT_NOT_FOUND.
    deleted: AtomicBool,
}

#[derive(Default)]
struct HubState {
    subscribers: HashMap<u64, Subscriber>,
    next_id: u64,
    closed: bool,
}

struct Subscriber {
    orchestration_id: Option<Arc<str>>,
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

/// A subscriber's place in a hub; leaving it (drop) unregisters.
pub(super) struct Registration {
    bus: Arc<BusInner>,
    hub: Arc<Hub>,
    id: u64,
    /// Events after `start`, in cursor order.
    pub rx: mpsc::Receiver<Arc<Event>>,
    /// Set when the hub cut this subscriber loose because its channel was full.
    pub lagged: Arc<AtomicBool>,
    /// The hub's cursor when this subscriber joined: events up to it come from the store.
    pub start: u64,
}

impl Registration {
    /// The highest cursor the hub has fanned out.
    pub fn hub_cursor(&self) -> u64 {
        self.hub.cursor.load(Ordering::Acquire)
    }

    /// Whether the hub let this subscriber go because the project was deleted.
    pub fn project_deleted(&self) -> bool {
        self.hub.deleted.load(Ordering::Acquire)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.bus.unregister(&self.hub, self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves consistent data (plain inserts and removes).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl EventBus {
    /// A bus reading from `store`; each subscriber buffers up to `buffer` events.
    pub fn new(store: Store, shutdown: CancellationToken, buffer: usize) -> Self {
        Self { inner: Arc::new(BusInner { store, hubs: Mutex::default(), shutdown, buffer: buffer.max(1) }) }
    }

    /// Announces that events up to `cursor` of `project_id` are committed
    /// (0 when unknown). Wakes the project's hub, if this replica has one.
    pub fn publish(&self, project_id: &str, cursor: u64) {
        let hub = lock(&self.inner.hubs).get(project_id).cloned();
        if let Some(hub) = hub
            && (cursor == 0 || cursor > hub.cursor.load(Ordering::Acquire))
        {
            hub.wake.notify_one();
        }
    }

    /// The project was deleted: its hub lets every subscriber go (their watches
    /// end with PROJECT_NOT_FOUND) and stops; a later subscriber starts a new hub.
    pub fn project_deleted(&self, project_id: &str) {
        let hub = lock(&self.inner.hubs).remove(project_id);
        if let Some(hub) = hub {
            let mut state = lock(&hub.state);
            hub.deleted.store(true, Ordering::Release);
            state.closed = true;
            // Dropping the senders ends each subscriber's channel after what it already holds.
            state.subscribers.clear();
            drop(state);
            hub.wake.notify_one();
        }
    }

    /// Wakes every hub to catch up from the store (after notifications may have been lost).
    pub fn wake_all(&self) {
        for hub in lock(&self.inner.hubs).values() {
            hub.wake.notify_one();
        }
    }

    /// Projects with live subscribers on this replica, and the subscribers.
    pub fn stats(&self) -> (usize, usize) {
        let hubs = lock(&self.inner.hubs);
        let subscribers = hubs.values().map(|h| lock(&h.state).subscribers.len()).sum();
        (hubs.len(), subscribers)
    }

    /// The store events are read from.
    pub(super) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Joins the project's hub, creating it if needed.
    pub(super) async fn register(&self, project_id: &str, orchestration_id: Option<Arc<str>>) -> Result<Registration> {
        loop {
            if let Some(registration) = self.try_join(project_id, orchestration_id.clone(), None) {
                return Ok(registration);
            }
            // No hub yet: learn where the log stands, then create one (unless
            // another subscriber did meanwhile). The hub's first read covers
            // anything committed after this read.
            let latest = self.inner.store.latest_event_cursor(project_id).await?;
            if let Some(registration) = self.try_join(project_id, orchestration_id.clone(), Some(latest)) {
                return Ok(registration);
            }
        }
    }

    /// Joins an existing hub, or creates one at `create_at` when given.
    fn try_join(
        &self,
        project_id: &str,
        orchestration_id: Option<Arc<str>>,
        create_at: Option<u64>,
    ) -> Option<Registration> {
        let mut hubs = lock(&self.inner.hubs);
        let hub = match (hubs.get(project_id), create_at) {
            (Some(hub), _) => hub.clone(),
            (None, Some(cursor)) => {
                let hub = Arc::new(Hub {
                    project_id: project_id.to_owned(),
                    cursor: AtomicU64::new(cursor),
                    state: Mutex::default(),
                    wake: Notify::new(),
                    deleted: AtomicBool::new(false),
                });
                hubs.insert(project_id.to_owned(), hub.clone());
                // Read once at start: events committed since `cursor` was read.
                hub.wake.notify_one();
                tokio::spawn(run_hub(self.inner.clone(), hub.clone()));
                hub
            }
            (None, None) => return None,
        };
        let (tx, rx) = mpsc::channel(self.inner.buffer);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut state = lock(&hub.state);
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.insert(id, Subscriber { orchestration_id, tx, lagged: lagged.clone() });
        let start = hub.cursor.load(Ordering::Acquire);
        drop(state);
        drop(hubs);
        Some(Registration { bus: self.inner.clone(), hub, id, rx, lagged, start })
    }
}

impl BusInner {
    fn unregister(&self, hub: &Arc<Hub>, id: u64) {
        let mut hubs = lock(&self.hubs);
        let mut state = lock(&hub.state);
        state.subscribers.remove(&id);
        if state.subscribers.is_empty() && !state.closed {
            state.closed = true;
            if hubs.get(&hub.project_id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
                hubs.remove(&hub.project_id);
            }
            hub.wake.notify_one();
        }
    }
}

async fn run_hub(bus: Arc<BusInner>, hub: Arc<Hub>) {
    loop {
        tokio::select! {
            () = hub.wake.notified() => {}
            () = bus.shutdown.cancelled() => return,
        }
        if lock(&hub.state).closed {
            return;
        }
        loop {
            let after = hub.cursor.load(Ordering::Acquire);
            match bus.store.events_after(&hub.project_id, after, None, None, READ_BATCH).await {
                Ok(events) => {
                    let full = events.len() as u64 == READ_BATCH;
                    if !events.is_empty() {
                        hub.fan_out(events);
                    }
                    if !full {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(project_id = %hub.project_id, error = %err, "cannot read new events; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_READ) => {}
                        () = bus.shutdown.cancelled() => return,
                    }
                    hub.wake.notify_one();
                    break;
                }
            }
        }
    }
}

impl Hub {
    /// Hands each event to every matching subscriber and advances the cursor.
    fn fan_out(&self, events: Vec<Event>) {
        let mut state = lock(&self.state);
        let mut cut = Vec::new();
        let mut last = self.cursor.load(Ordering::Acquire);
        for event in events {
            if event.cursor <= last {
                continue;
            }
            last = event.cursor;
            let event = Arc::new(event);
            for (id, sub) in &state.subscribers {
                if let Some(wanted) = &sub.orchestration_id
                    && event.what.orchestration_id.as_deref() != Some(&**wanted)
                {
                    continue;
                }
                match sub.tx.try_send(event.clone()) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.lagged.store(true, Ordering::Release);
                        cut.push(*id);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => cut.push(*id),
                }
            }
            // Later events must not reach a subscriber that missed this one.
            for id in cut.drain(..) {
                state.subscribers.remove(&id);
            }
        }
        self.cursor.store(last, Ordering::Release);
    }
}
