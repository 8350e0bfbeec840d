//! One subscriber: replay stored events after a cursor, then follow the hub.
//!
//! Joining the hub happens before the replay query: the hub's cursor at that
//! moment (H) splits the work, events up to H come from the store and later
//! ones through the channel, and delivery skips any cursor not above the last
//! one sent, so the two never overlap or leave a gap.

use std::{collections::VecDeque, pin::Pin, sync::Arc, time::Duration};

use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::{Event, EventBus, hub::Registration};
use crate::{
    error::{Error, Result},
    model::{Millis, now_ms},
};

/// Events read from the store per replay query.
const REPLAY_BATCH: u64 = 256;

/// What a watch yields.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchItem {
    /// A stored event, in cursor order.
    Event(Arc<Event>),
    /// Nothing happened for a heartbeat interval.
    Heartbeat {
        /// Server time.
        time: Millis,
        /// The project's latest committed cursor known to be delivered (or
        /// filtered out) on this stream; resuming after it loses nothing.
        latest_cursor: u64,
    },
}

/// A live subscription to a project's events.
pub struct Watch {
    bus: EventBus,
    project_id: String,
    orchestration_id: Option<Arc<str>>,
    /// Last cursor delivered (or the starting cursor).
    last: u64,
    /// Replay from the store covers (`replay_pos`, `replay_until`].
    replay_pos: u64,
    replay_until: u64,
    buffer: VecDeque<Arc<Event>>,
    registration: Registration,
    heartbeat: Duration,
    idle: Pin<Box<Sleep>>,
    shutdown: CancellationToken,
    done: bool,
    rejoins: u32,
}

impl Watch {
    /// Subscribes to `project_id` (whose tenant the caller checked) after
    /// `after_cursor`, optionally to one orchestration's events only. Ends at
    /// `shutdown`; sends a heartbeat after `heartbeat` without events.
    pub async fn open(
        bus: &EventBus,
        project_id: &str,
        after_cursor: u64,
        orchestration_id: Option<&str>,
        heartbeat: Duration,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let orchestration_id: Option<Arc<str>> = orchestration_id.map(Arc::from);
        let registration = bus.register(project_id, orchestration_id.clone()).await?;
        if after_cursor > registration.start {
            // The hub may trail the log by a moment; only the store can say the cursor is impossible.
            let latest = bus.store().latest_event_cursor(project_id).await?;
            if after_cursor > latest {
                return Err(Error::invalid(
                    "after_cursor",
                    format!("after_cursor {after_cursor} is ahead of the project's latest event cursor {latest}"),
                ));
            }
        }
        if after_cursor > 0 && after_cursor < registration.start {
            // Retention deletes old events: resuming across the hole would skip them silently.
            let first = bus.store().first_event_cursor_after(project_id, after_cursor).await?;
            if first != Some(after_cursor + 1) {
                let oldest = first.map_or(registration.start, |c| c - 1);
                return Err(Error::invalid(
                    "after_cursor",
                    format!(
                        "the events after cursor {after_cursor} were deleted by retention; read the current \
                         analyses with ListImageFacts, then watch after cursor {oldest}"
                    ),
                ));
            }
        }
        Ok(Self {
            bus: bus.clone(),
            project_id: project_id.to_owned(),
            orchestration_id,
            last: after_cursor,
            replay_pos: after_cursor,
            replay_until: registration.start,
            buffer: VecDeque::new(),
            registration,
            heartbeat,
            idle: Box::pin(tokio::time::sleep(heartbeat)),
            shutdown,
            done: false,
            rejoins: 0,
        })
    }

    /// The last cursor delivered (or the starting cursor).
    pub fn last_cursor(&self) -> u64 {
        self.last
    }

    /// How many times this subscriber fell behind and caught up from the store.
    pub fn rejoins(&self) -> u32 {
        self.rejoins
    }

    /// The next event or heartbeat; `None` once the stream ended (shutdown).
    /// After an error the stream is over; PROJECT_NOT_FOUND when the project was deleted.
    pub async fn next(&mut self) -> Option<Result<WatchItem>> {
        loop {
            if self.done {
                return None;
            }
            while let Some(event) = self.buffer.pop_front() {
                if event.cursor > self.last {
                    self.last = event.cursor;
                    self.reset_idle();
                    return Some(Ok(WatchItem::Event(event)));
                }
            }
            if self.replay_pos < self.replay_until {
                // A page read in flight when the server stops is abandoned: the
                // stream ends at once, and its client resumes from the last cursor.
                let shutdown = self.shutdown.clone();
                let read = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => None,
                    read = self.replay_page() => Some(read),
                };
                match read {
                    None => {
                        self.done = true;
                        return None;
                    }
                    Some(Err(err)) => {
                        self.done = true;
                        return Some(Err(err));
                    }
                    Some(Ok(())) => continue,
                }
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.done = true;
                    return None;
                }
                received = self.registration.rx.recv() => match received {
                    Some(event) => self.buffer.push_back(event),
                    None if self.registration.lagged.load(std::sync::atomic::Ordering::Acquire) => {
                        // As a replay page: a rejoin in flight when the server stops is abandoned.
                        let shutdown = self.shutdown.clone();
                        tokio::select! {
                            biased;
                            () = shutdown.cancelled() => {
                                self.done = true;
                                return None;
                            }
                            rejoined = self.rejoin() => if let Err(err) = rejoined {
                                self.done = true;
                                return Some(Err(err));
                            }
                        }
                    }
                    None if self.registration.project_deleted() => {
                        self.done = true;
                        return Some(Err(Error::project_not_found(&self.project_id)));
                    }
                    None => {
                        self.done = true;
                        return None;
                    }
                },
                () = &mut self.idle => {
                    self.reset_idle();
                    return Some(Ok(WatchItem::Heartbeat { time: now_ms(), latest_cursor: self.latest_known() }));
                }
            }
        }
    }

    async fn replay_page(&mut self) -> Result<()> {
        let page = self
            .bus
            .store()
            .events_after(
                &self.project_id,
                self.replay_pos,
                Some(self.replay_until),
                self.orchestration_id.as_deref(),
                REPLAY_BATCH,
            )
            .await?;
        match page.last() {
            Some(last) if page.len() as u64 == REPLAY_BATCH => self.replay_pos = last.cursor,
            _ => self.replay_pos = self.replay_until,
        }
        self.buffer.extend(page.into_iter().map(Arc::new));
        Ok(())
    }

    /// Fell behind: join the hub again and replay what was missed from the store.
    async fn rejoin(&mut self) -> Result<()> {
        tracing::debug!(project_id = %self.project_id, cursor = self.last, "subscriber lagged; catching up from the store");
        let registration = self.bus.register(&self.project_id, self.orchestration_id.clone()).await?;
        self.replay_pos = self.last;
        self.replay_until = registration.start;
        self.registration = registration;
        self.rejoins += 1;
        Ok(())
    }

    /// The newest cursor this stream has nothing left to deliver up to.
    fn latest_known(&self) -> u64 {
        let hub = self.registration.hub_cursor();
        // Only when nothing is queued has every event up to the hub's cursor
        // been delivered or filtered out.
        if self.buffer.is_empty() && self.registration.rx.is_empty() { hub.max(self.last) } else { self.last }
    }

    fn reset_idle(&mut self) {
        let deadline = Instant::now() + self.heartbeat;
        self.idle.as_mut().reset(deadline);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{
        config::Config,
        model::{EventType, NewEvent, NewProject},
        store::Store,
    };

    async fn store_with_project(dir: &tempfile::TempDir) -> (Store, crate::model::TenantId, String) {
        let mut config = Config::default();
        config.store.database_url = crate::redact::Secret::url(format!("sqlite://{}/brain.db", dir.path().display()));
        let store = Store::open(&config).await.expect("open"); // ok: unit test only (#[cfg(test)]), not on a request path
        store.initialize().await.expect("migrate"); // ok: unit test only (#[cfg(test)]), not on a request path
        let tenant = store.ensure_tenant("t").await.expect("tenant").id; // ok: unit test only (#[cfg(test)]), not on a request path
        let project = store
            .create_project(&tenant, &NewProject { name: "p".into(), description: String::new() })
            .await
            .expect("project"); // ok: unit test only (#[cfg(test)]), not on a request path
        (store, tenant, project.id)
    }

    async fn append(store: &Store, tenant: &crate::model::TenantId, project_id: &str, n: usize) -> u64 {
        let txn = store.begin_write().await.expect("txn"); // ok: unit test only (#[cfg(test)]), not on a request path
        let new: Vec<NewEvent> = (0..n)
            .map(|i| NewEvent {
                event_type: EventType::ImageFactsFailed,
                image_id: format!("img-{i}"),
                orchestration_id: (i % 2 == 0).then(|| "even".to_owned()),
                facts: None,
                error: Some("x".into()),
                derived_preferences: Vec::new(),
            })
            .collect();
        let events = txn.append_events(tenant, project_id, &new).await.expect("append"); // ok: unit test only (#[cfg(test)]), not on a request path
        txn.commit().await.expect("commit");
        events.last().map_or(0, |e| e.cursor)
    }

    /// A slow subscriber with a tiny buffer lags again and again while
    /// producers commit, and still sees every cursor exactly once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lagging_subscribers_catch_up_without_gaps_or_duplicates() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, tenant, project_id) = store_with_project(&dir).await;
        let before = append(&store, &tenant, &project_id, 5).await;
        let shutdown = CancellationToken::new();
        let bus = EventBus::new(store.clone(), shutdown.clone(), 2);
        let heartbeat = Duration::from_secs(60);
        let mut slow = Watch::open(&bus, &project_id, 2, None, heartbeat, shutdown.clone()).await.expect("watch");
        let mut even =
            Watch::open(&bus, &project_id, 0, Some("even"), heartbeat, shutdown.clone()).await.expect("watch");

        let mut producer = Some({
            let (store, tenant, project_id, bus) = (store.clone(), tenant.clone(), project_id.clone(), bus.clone());
            tokio::spawn(async move {
                let mut last = 0;
                for round in 0..40 {
                    last = append(&store, &tenant, &project_id, 1 + round % 3).await;
                    bus.publish(&project_id, last);
                }
                last
            })
        });
        let mut seen = Vec::new();
        let mut seen_even = Vec::new();
        let mut total = u64::MAX;
        while seen.last().copied().unwrap_or(0) < total {
            if let Some(Ok(WatchItem::Event(e))) = slow.next().await {
                seen.push(e.cursor);
            }
            if seen.len() % 7 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if producer.as_ref().is_some_and(|p| p.is_finished())
                && let Some(p) = producer.take()
            {
                total = p.await.expect("producer");
            }
        }
        assert_eq!(seen, (3..=total).collect::<Vec<_>>(), "every cursor after 2 exactly once, in order");
        assert!(before == 5 && total > 40);
        assert!(slow.rejoins() > 0, "the slow subscriber lagged and caught up");

        while seen_even.len() < 10 {
            match even.next().await {
                Some(Ok(WatchItem::Event(e))) => {
                    assert_eq!(e.what.orchestration_id.as_deref(), Some("even"));
                    seen_even.push(e.cursor);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let unique: BTreeSet<u64> = seen_even.iter().copied().collect();
        assert_eq!(unique.len(), seen_even.len(), "no duplicates");
        assert!(seen_even.windows(2).all(|w| w[0] < w[1]));

        shutdown.cancel();
        assert!(slow.next().await.is_none(), "the watch ends at shutdown");
        drop((slow, even));
        assert_eq!(bus.stats(), (0, 0), "the hub is dropped with its last subscriber");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_watches_send_heartbeats_and_refuse_future_cursors() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, tenant, project_id) = store_with_project(&dir).await;
        let last = append(&store, &tenant, &project_id, 3).await;
        let shutdown = CancellationToken::new();
        let bus = EventBus::new(store.clone(), shutdown.clone(), 8);
        let beat = Duration::from_millis(50);
        let err = Watch::open(&bus, &project_id, last + 1, None, beat, shutdown.clone()).await.err().expect("refused");
        assert_eq!(err.field(), Some("after_cursor"));
        let mut watch = Watch::open(&bus, &project_id, last, None, beat, shutdown.clone()).await.expect("watch");
        match watch.next().await {
            Some(Ok(WatchItem::Heartbeat { latest_cursor, .. })) => assert_eq!(latest_cursor, last),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
}
