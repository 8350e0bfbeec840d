//! `brain report`: the performance report.

use brain_client::{BrainClient, proto};
use clap::ValueEnum;

use crate::output::{Printer, time};

/// The span a report covers.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Window {
    #[value(name = "1m")]
    OneMinute,
    #[value(name = "5m")]
    FiveMinutes,
    #[value(name = "15m")]
    FifteenMinutes,
    /// Since the server started.
    Start,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Span of time to cover.
    #[arg(long, value_enum, default_value = "5m")]
    window: Window,
    /// Only this project's calls.
    #[arg(long, default_value = "")]
    project_id: String,
}

pub async fn run(client: &BrainClient, printer: &Printer, args: Args) -> anyhow::Result<()> {
    let window = match args.window {
        Window::OneMinute => proto::ReportWindow::Last1Minute,
        Window::FiveMinutes => proto::ReportWindow::Last5Minutes,
        Window::FifteenMinutes => proto::ReportWindow::Last15Minutes,
        Window::Start => proto::ReportWindow::SinceStart,
    };
    let report = client
        .get_performance_report(proto::GetPerformanceReportRequest {
            window: window as i32,
            project_id: args.project_id,
        })
        .await?;
    printer.emit(&report, "brain.v1.PerformanceReport", || print_report(&report))
}

fn print_report(r: &proto::PerformanceReport) {
    println!("Performance report at {}", time(r.generate_time.as_ref()));
    if let Some(q) = &r.requests {
        println!("Requests   {} total, {} errors, {:.1} rps", q.total, q.errors, q.throughput_rps);
        for c in &q.errors_by_code {
            println!("           {} {}", c.code, c.count);
        }
    }
    if let Some(win) = &r.async_win {
        println!("Async win  {}", async_win_line(win));
    }
    print_latencies("RPCs", &r.rpc_latencies);
    print_latencies("Stages", &r.stage_latencies);
    for (name, cache) in [("Context cache", &r.context_cache), ("Facts cache", &r.image_facts_cache)] {
        if let Some(c) = cache {
            println!("{name:<14} {:.0}% hits ({} hits, {} misses)", c.hit_rate * 100.0, c.hits, c.misses);
        }
    }
    if let Some(t) = &r.tokens {
        println!(
            "Tokens     {} prompts, mean {:.0}, max {}, {} truncated",
            t.prompts, t.mean_prompt_tokens, t.max_prompt_tokens, t.truncations
        );
    }
    if let Some(j) = &r.jobs {
        println!(
            "Jobs       depth {}, running {}, wait p95 {:.1} ms, run p95 {:.1} ms, {} done, {} retried, {} failed",
            j.depth, j.running, j.wait_p95_ms, j.run_p95_ms, j.completed, j.retries, j.failures
        );
    }
    if let Some(s) = &r.streams {
        println!(
            "Streams    {} watch, {} orchestrate, {} report",
            s.watch_image_facts, s.orchestrate_stream, s.watch_performance_report
        );
    }
    println!("Memory     {:.1} MiB resident", r.resident_memory_bytes as f64 / (1024.0 * 1024.0));
}

fn print_latencies(title: &str, rows: &[proto::LatencySummary]) {
    if rows.is_empty() {
        return;
    }
    println!(
        "{title:<10} {:<24} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "NAME", "COUNT", "P50 MS", "P95 MS", "P99 MS", "MAX MS"
    );
    for l in rows {
        println!(
            "{:<10} {:<24} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            "", l.name, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        );
    }
}

/// The async win in one line; with no samples the target is neither met nor missed.
fn async_win_line(win: &proto::AsyncWin) -> String {
    let target = win.target * 100.0;
    let verdict = if win.target_met { "met" } else { "not met" };
    let measured = win.measured.as_ref().filter(|m| m.samples > 0);
    let estimated = win.estimated.as_ref().filter(|e| e.mean_old_ms > 0.0);
    match (measured, estimated) {
        (Some(m), _) => format!(
            "measured {:.0}% over {} orchestrations with images, target {target:.0}% {verdict}",
            m.improvement * 100.0,
            m.samples
        ),
        (None, Some(e)) => format!(
            "no measurement yet (no orchestration with images finished); estimated {:.0}%, target {target:.0}% {verdict} by the estimate",
            e.improvement * 100.0
        ),
        (None, None) => format!("no data (no orchestrations in this window), target {target:.0}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_samples_is_no_data_not_a_verdict() {
        let empty = proto::AsyncWin {
            measured: Some(proto::MeasuredAsyncWin::default()),
            estimated: Some(proto::EstimatedAsyncWin::default()),
            target: 0.3,
            target_met: false,
        };
        let line = async_win_line(&empty);
        assert!(line.starts_with("no data") && !line.contains("met"), "{line}");
        let measured = proto::AsyncWin {
            measured: Some(proto::MeasuredAsyncWin { samples: 4, improvement: 0.9, ..Default::default() }),
            target_met: true,
            ..empty
        };
        assert_eq!(async_win_line(&measured), "measured 90% over 4 orchestrations with images, target 30% met");
    }
}
