//! WatchPerformanceReport's protocol: a report at once, then one per interval,
//! until the server stops (the stream then simply ends).

use std::{sync::Arc, time::Duration};

use futures::Stream;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Report, ReportQuery, Reporter, StreamGuard, StreamKind};
use crate::error::{Error, Result};

/// Default time between reports.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest accepted interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest accepted interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The interval a watch uses: the requested one, from [`MIN_INTERVAL`] to
/// [`MAX_INTERVAL`], or [`DEFAULT_INTERVAL`].
pub fn watch_interval(requested: Option<Duration>) -> Result<Duration> {
    let Some(interval) = requested else { return Ok(DEFAULT_INTERVAL) };
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(Error::invalid("interval", "interval must be from 1 second to 1 hour").with_limit(format!(
            "{}s..{}s",
            MIN_INTERVAL.as_secs(),
            MAX_INTERVAL.as_secs()
        )));
    }
    Ok(interval)
}

/// State of one watch; dropping it (consumer gone) uncounts the stream.
struct Watch {
    reporter: Arc<Reporter>,
    query: ReportQuery,
    shutdown: CancellationToken,
    ticker: Option<Interval>,
    interval: Duration,
    _guard: StreamGuard,
}

impl Reporter {
    /// Reports for `query` every `interval` (the first at once), ending at `shutdown`.
    pub fn watch(
        self: Arc<Self>,
        query: ReportQuery,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> impl Stream<Item = Result<Report>> + Send + 'static {
        let guard = self.perf().stream_opened(StreamKind::WatchPerformanceReport);
        let state = Watch { reporter: self, query, shutdown, ticker: None, interval, _guard: guard };
        futures::stream::unfold(state, |mut state| async move {
            let ticker = state.ticker.get_or_insert_with(|| {
                // The first tick fires at once: the first report arrives without waiting an interval.
                let mut t = tokio::time::interval(state.interval);
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
            tokio::select! {
                () = state.shutdown.cancelled() => None,
                _ = ticker.tick() => {
                    // A report in the making when the server stops is abandoned:
                    // the stream ends at once, as it does between reports.
                    tokio::select! {
                        biased;
                        () = state.shutdown.cancelled() => None,
                        report = state.reporter.report(&state.query) => Some((Ok(report), state)),
                    }
                }
            }
        })
    }
}
