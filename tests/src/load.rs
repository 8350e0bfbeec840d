//! Background load for the lifecycle benchmarks (delete, export/import): clients
//! sending Orchestrate to their own projects one call after another, and the
//! latency of the calls that started in a window.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use brain_proto::v1::OrchestrateRequest;

use crate::{Projects, Server, create_project};

/// Writers running until [`Writers::finish`].
pub struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(Instant, Duration)>>>,
}

/// When each call started and how long it took.
pub struct Samples(Vec<(Instant, Duration)>);

impl Writers {
    /// `count` writers, each on a project of its own created through `projects`.
    pub async fn start(server: &Arc<Server>, projects: &mut Projects, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..count {
            let project_id = create_project(projects, &format!("busy {w}")).await.project_id;
            let (server, stop) = (server.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut orchestrator = server.orchestrator(None).await;
                let mut samples = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Acquire) {
                    let started = Instant::now();
                    orchestrator
                        .orchestrate(OrchestrateRequest {
                            project_id: project_id.clone(),
                            prompt: format!("make scene {i} warmer"),
                            request_id: format!("bench-{w}-{i}"),
                            ..Default::default()
                        })
                        .await
                        .expect("orchestrate");
                    samples.push((started, started.elapsed()));
                    i += 1;
                }
                samples
            }));
        }
        Self { stop, tasks }
    }

    /// Stops the writers; every call's sample.
    pub async fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Release);
        let mut samples = Vec::new();
        for task in self.tasks {
            samples.extend(task.await.expect("writer"));
        }
        Samples(samples)
    }
}

impl Samples {
    /// Calls started in `from..to`: how many, p50 and p99 in ms.
    pub fn window(&self, from: Instant, to: Instant) -> (usize, f64, f64) {
        let mut of: Vec<Duration> =
            self.0.iter().filter(|(at, _)| *at >= from && *at < to).map(|(_, took)| *took).collect();
        of.sort();
        let at = |q: usize| of.get(of.len() * q / 100).copied().unwrap_or_default().as_secs_f64() * 1e3;
        (of.len(), at(50), at(99))
    }

    /// Prints the calls before and during an operation as a table, and the p99 ratio.
    pub fn compare(&self, label: &str, operation: &str, before: (Instant, Instant), during: (Instant, Instant)) {
        let (n0, p50_0, p99_0) = self.window(before.0, before.1);
        let (n1, p50_1, p99_1) = self.window(during.0, during.1);
        println!("| {label} | calls | p50 ms | p99 ms |\n| --- | --- | --- | --- |");
        println!("| before the {operation} | {n0} | {p50_0:.2} | {p99_0:.2} |");
        println!("| during the {operation} | {n1} | {p50_1:.2} | {p99_1:.2} |");
        println!("p99 during / before: {:.2}x (target at most 2x)", p99_1 / p99_0.max(f64::MIN_POSITIVE));
    }
}
