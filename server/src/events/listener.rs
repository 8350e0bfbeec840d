//! PostgreSQL only: hear other replicas' commits. One dedicated `LISTEN`
//! connection per process; "project_id:cursor" on the events channel wakes
//! that project's hub, "project_id:deleted" ends its streams and drops its
//! caches, anything on the jobs channel wakes idle workers. After the
//! connection drops, it reconnects with backoff and then wakes every hub and
//! worker, which catch up from the store: a notification lost while
//! disconnected delays delivery, it never loses an event.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::EventBus;
use crate::{
    changes::ProjectChanges,
    store::{DELETED_NOTICE, EVENTS_CHANNEL, JOBS_CHANNEL, listen::Listener},
};

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Runs until `shutdown`. `wake_jobs` wakes this replica's idle workers.
pub async fn run(
    url: String,
    connect_timeout: Duration,
    bus: EventBus,
    changes: Arc<ProjectChanges>,
    wake_jobs: impl Fn() + Send + 'static,
    shutdown: CancellationToken,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let connected = tokio::select! {
            result = Listener::connect(&url, &[EVENTS_CHANNEL, JOBS_CHANNEL], connect_timeout) => result,
            () = shutdown.cancelled() => return,
        };
        match connected {
            Ok(mut listener) => {
                tracing::info!("listening for other replicas' events and jobs");
                retry = FIRST_RETRY;
                // Anything committed while we were not listening is in the store.
                bus.wake_all();
                wake_jobs();
                loop {
                    let received = tokio::select! {
                        received = listener.recv() => received,
                        () = shutdown.cancelled() => return,
                    };
                    match received {
                        Ok(Some(n)) if n.channel == EVENTS_CHANNEL => match parse(&n.payload) {
                            Some(Notice::Events(project_id, cursor)) => {
                                // Events come with writes (facts, preferences) that another
                                // replica made, or that this one made and has not announced
                                // yet: forget cached context before a subscriber can react.
                                changes.changed(project_id);
                                bus.publish(project_id, cursor)
                            }
                            // The deletion listeners end the project's streams on this replica.
                            Some(Notice::Deleted(project_id)) => changes.deleted(project_id),
                            None => tracing::warn!(payload = %n.payload, "ignoring a malformed event notification"),
                        },
                        Ok(Some(_)) => wake_jobs(),
                        Ok(None) => {
                            tracing::warn!("event listener reconnected; catching up from the store");
                            bus.wake_all();
                            wake_jobs();
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "event listener lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = retry.as_millis() as u64, "cannot listen for events")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = shutdown.cancelled() => return,
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// What a notification on the events channel says.
#[derive(Debug, PartialEq)]
enum Notice<'a> {
    /// "project_id:cursor": events up to the cursor are committed.
    Events(&'a str, u64),
    /// "project_id:deleted": the project was deleted.
    Deleted(&'a str),
}

fn parse(payload: &str) -> Option<Notice<'_>> {
    let (project_id, rest) = payload.rsplit_once(':').filter(|(p, _)| !p.is_empty())?;
    if rest == DELETED_NOTICE {
        return Some(Notice::Deleted(project_id));
    }
    Some(Notice::Events(project_id, rest.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(parse("0193-ab:42"), Some(Notice::Events("0193-ab", 42)));
        assert_eq!(parse("0193-ab:deleted"), Some(Notice::Deleted("0193-ab")));
        assert_eq!(parse(":deleted"), None);
        assert_eq!(parse(":42"), None);
        assert_eq!(parse("p:x"), None);
        assert_eq!(parse("p"), None);
    }
}
