//! Cost of recording: it runs on every RPC, so it must stay well under a microsecond.
//!
//! `cargo bench -p brain-server --bench perf_record`

use std::{hint::black_box, time::Duration};

use brain_server::perf::{CacheKind, OrchestrationSample, Perf, PerfConfig, StageTimings};
use criterion::{Criterion, criterion_group, criterion_main};

fn recording(c: &mut Criterion) {
    // Without Prometheus: the recorder's own cost.
    let perf = Perf::with_config(PerfConfig::default());
    let projects: Vec<String> = (0..200).map(|i| format!("01a2-project-{i}")).collect();
    let mut i = 0usize;
    c.bench_function("record_rpc (200 projects)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            perf.record_rpc(
                black_box("GetProject"),
                black_box(if i.is_multiple_of(10) { "NOT_FOUND" } else { "OK" }),
                Some("tenant-1"),
                Some(&projects[i % projects.len()]),
                Duration::from_micros(300 + (i % 2000) as u64),
            );
        });
    });
    c.bench_function("record_cache", |b| b.iter(|| perf.record_cache(CacheKind::ContextPacket, black_box(true))));
    let sample = OrchestrationSample {
        tenant_id: "tenant-1".into(),
        project_id: "01a2-project-1".into(),
        orchestration_id: String::new(),
        timings: StageTimings {
            context_build_ms: 1.2,
            token_budget_ms: 0.8,
            decision_ms: 2.5,
            persistence_ms: 3.1,
            image_enqueue_ms: 0.1,
            total_ms: 7.9,
        },
        image_count: 0,
        prompt_tokens: 1_500,
        truncated: false,
        budget_warning: false,
        degraded: false,
    };
    c.bench_function("record_orchestration", |b| b.iter(|| perf.record_orchestration(black_box(&sample))));

    // With the Prometheus recorder installed, as in production.
    let with_metrics = Perf::with_config(PerfConfig { prometheus: true, ..PerfConfig::default() });
    c.bench_function("record_rpc + prometheus", |b| {
        b.iter(|| {
            with_metrics.record_rpc("GetProject", "OK", Some("tenant-1"), Some("p"), Duration::from_micros(512));
        });
    });
}

criterion_group!(benches, recording);
criterion_main!(benches);
