//! Cost of recording: it runs on every RPC, so it must stay well under a microsecond.
//!
//! `cargo bench -p brain-server --bench perf_record`

use std::{hint::black_box, time::Duration};

use brain_server::{
    model::TenantId,
    perf::{
        CacheKind, OrchestrationSample, Perf, PerfConfig, ReportQuery, StageTimings, Window,
        report::{self, Extras},
    },
};
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

/// Building a report merges every (tenant, project) scope of every slot in the
/// window: this is its cost with 2,000 active projects in one slot (a window's
/// cost grows with the slots that hold data).
fn reporting(c: &mut Criterion) {
    let perf = Perf::with_config(PerfConfig::default());
    for p in 0..2_000u64 {
        let project = format!("01a2-project-{p}");
        let tenant = format!("tenant-{}", p % 20);
        for method in ["Orchestrate", "GetProject", "ListScenes", "PutMemory"] {
            for i in 0..5 {
                perf.record_rpc(
                    method,
                    "OK",
                    Some(&tenant),
                    Some(&project),
                    Duration::from_micros(400 + p * 3 + i * 50),
                );
            }
        }
        perf.record_orchestration(&OrchestrationSample {
            tenant_id: tenant,
            project_id: project,
            orchestration_id: String::new(),
            timings: StageTimings { context_build_ms: 1.0, decision_ms: 2.0, total_ms: 6.0, ..StageTimings::default() },
            image_count: 0,
            prompt_tokens: 1_200,
            truncated: false,
            budget_warning: false,
            degraded: false,
        });
    }
    let all = ReportQuery { window: Window::Last5Minutes, tenant: None, project_id: None };
    c.bench_function("report: all tenants, 2,000 projects", |b| {
        b.iter(|| report::build(&perf, black_box(&all), &Extras::default()))
    });
    let one = ReportQuery {
        window: Window::Last5Minutes,
        tenant: Some(TenantId("tenant-3".into())),
        project_id: Some("01a2-project-3".into()),
    };
    c.bench_function("report: one project of 2,000", |b| {
        b.iter(|| report::build(&perf, black_box(&one), &Extras::default()))
    });
    c.bench_function("timeline: 90 slots, 2,000 projects", |b| b.iter(|| report::timeline(&perf, black_box(None), 90)));
}

criterion_group!(benches, recording, reporting);
criterion_main!(benches);
