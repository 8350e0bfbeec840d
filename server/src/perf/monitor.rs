//! Background upkeep of the recorder: retires old slots, samples the job
//! queue for the dashboard's timeline, and reports performance anomalies:
//! a stage (or unary RPC) whose p95 over the last minute exceeds
//! `perf_anomaly_p95_ms`, at most once per name per 5 minutes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use super::{
    Perf, Reporter, is_streaming,
    window::{Filter, STAGES, Span},
};
use crate::telemetry;

/// Fewer samples than this in the last minute never count as an anomaly: one slow call is not a trend.
pub const MIN_SAMPLES: u64 = 20;
/// An anomaly of the same stage is reported again only after this long.
pub const REPEAT_AFTER: Duration = Duration::from_secs(300);
/// How often the job queue is sampled for the timeline.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// A stage or unary RPC running slow.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Stage name (`context_build`, ...) or `rpc.<Method>`.
    pub name: String,
    /// Its p95 over the last minute, ms.
    pub p95_ms: f64,
    /// Samples behind the p95.
    pub samples: u64,
    /// The threshold it crossed, ms.
    pub threshold_ms: f64,
}

pub(super) fn anomalies(perf: &Perf, last: &Mutex<HashMap<String, Instant>>) -> Vec<Anomaly> {
    let threshold = perf.config().settings.anomaly_p95_ms;
    if threshold <= 0.0 {
        return Vec::new();
    }
    let merged = perf.windows().merged(Span::Last(60_000), &Filter::default());
    let stages = STAGES.iter().zip(&merged.agg.stages).map(|(name, h)| ((*name).to_owned(), h));
    let rpcs = merged.agg.rpcs.iter().filter(|(m, _)| !is_streaming(m)).map(|(m, r)| (format!("rpc.{m}"), &r.hist));
    let now = Instant::now();
    let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut found = Vec::new();
    for (name, hist) in stages.chain(rpcs) {
        let p95 = hist.quantile_ms(0.95);
        if hist.count() < MIN_SAMPLES || p95 <= threshold {
            continue;
        }
        if last.get(&name).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER) {
            continue;
        }
        last.insert(name.clone(), now);
        found.push(Anomaly { name, p95_ms: p95, samples: hist.count(), threshold_ms: threshold });
    }
    found
}

/// Runs the upkeep until shutdown.
pub fn spawn(reporter: Arc<Reporter>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let perf = reporter.perf().clone();
        let check_every = perf.config().settings.anomaly_interval;
        let tick = check_every.min(SAMPLE_EVERY).max(Duration::from_millis(100));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut last_sample, mut last_check) = (None::<Instant>, Instant::now());
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            perf.windows().maintain();
            if perf.config().prometheus
                && let Some(handle) = super::prom::handle()
            {
                // Folds recorded histogram samples into their buckets, bounding memory between scrapes.
                handle.run_upkeep();
            }
            if last_sample.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                let queue = reporter.queue(None, None).await;
                perf.push_queue_sample(queue.depth, queue.running);
                last_sample = Some(Instant::now());
            }
            if last_check.elapsed() >= check_every {
                last_check = Instant::now();
                for anomaly in perf.take_anomalies() {
                    telemetry::performance_anomaly(
                        &anomaly.name,
                        anomaly.p95_ms,
                        anomaly.threshold_ms,
                        anomaly.samples,
                    );
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::PerfConfig;

    /// A recorder whose anomaly threshold is `p95_ms`.
    fn with_threshold(p95_ms: f64) -> Perf {
        let mut config = PerfConfig::default();
        config.settings.anomaly_p95_ms = p95_ms;
        Perf::with_config(config)
    }

    #[test]
    fn slow_stages_are_reported_once_per_period() {
        let perf = with_threshold(5.0);
        for _ in 0..MIN_SAMPLES {
            perf.record_rpc("GetProject", "OK", Some("t"), None, Duration::from_millis(20));
            perf.record_rpc("ListProjects", "OK", Some("t"), None, Duration::from_millis(1));
            perf.record_rpc("WatchImageFacts", "OK", Some("t"), None, Duration::from_secs(60));
        }
        let found = perf.take_anomalies();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "rpc.GetProject");
        assert_eq!(found[0].p95_ms, 20.0);
        assert!(perf.take_anomalies().is_empty(), "rate limited");
    }

    #[test]
    fn too_few_samples_or_disabled_is_quiet() {
        let perf = with_threshold(5.0);
        perf.record_rpc("GetProject", "OK", Some("t"), None, Duration::from_millis(20));
        assert!(perf.take_anomalies().is_empty());
        let off = with_threshold(0.0);
        for _ in 0..MIN_SAMPLES {
            off.record_rpc("GetProject", "OK", Some("t"), None, Duration::from_millis(20));
        }
        assert!(off.take_anomalies().is_empty());
    }
}
