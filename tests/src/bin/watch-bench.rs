//! watch-bench: commit-to-subscriber latency of WatchImageFacts under many
//! concurrent streams, and the server's memory per stream.
//!
//! Opens `--streams` WatchImageFacts streams over `--connections` HTTP/2
//! connections, spread evenly over `--projects` projects (each project's streams
//! over all connections); reads the server's
//! resident memory (VmRSS of `--pid`) before and after; then sends
//! AnalyzeImages with one small PNG at `--rate` images per second for
//! `--seconds`, round-robin over the projects. Every image goes through the
//! real path (job row, worker, analysis, completion transaction) and yields a
//! READY and a PROCESSED event, each delivered to every stream of its project.
//! Latency of one delivery = arrival time - the event's `create_time` (stamped
//! in the committing transaction, millisecond precision, so figures carry up
//! to +1 ms of rounding).
//!
//! Usage: watch-bench --addr 127.0.0.1:50051 --pid PID [--streams 1000]
//!        [--connections 50] [--projects 50] [--rate 20] [--seconds 20] [--slow-ms 0]

use std::{
    collections::HashMap,
    io::Cursor,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use brain_proto::v1::{
    AnalyzeImagesRequest, CreateProjectRequest, ImageInput, WatchImageFactsRequest,
    image_facts_service_client::ImageFactsServiceClient, image_input::Source,
    project_service_client::ProjectServiceClient, watch_image_facts_response::Message,
};
use futures::{StreamExt, stream};
use tonic::transport::{Channel, Endpoint};

struct Args {
    addr: String,
    pid: u32,
    streams: usize,
    connections: usize,
    projects: usize,
    rate: f64,
    seconds: u64,
    /// Print each event some subscriber received later than this (0: off).
    slow_ms: f64,
}

fn args() -> Args {
    let mut map = HashMap::new();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        if let [k, v] = pair {
            map.insert(k.trim_start_matches("--").to_owned(), v.clone());
        }
    }
    let get = |k: &str, d: &str| map.get(k).cloned().unwrap_or_else(|| d.to_owned());
    Args {
        addr: get("addr", "127.0.0.1:50051"),
        pid: get("pid", "0").parse().expect("--pid"),
        streams: get("streams", "1000").parse().expect("--streams"),
        connections: get("connections", "50").parse().expect("--connections"),
        projects: get("projects", "50").parse().expect("--projects"),
        rate: get("rate", "20").parse().expect("--rate"),
        seconds: get("seconds", "20").parse().expect("--seconds"),
        slow_ms: get("slow-ms", "0").parse().expect("--slow-ms"),
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// utime + stime of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields after the command name start at state (3rd field overall): utime is the 14th, stime the 15th.
    field(11) + field(12)
}

fn now_ms_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
}

fn tiny_png(seed: u64) -> Vec<u8> {
    let mut img = image::RgbImage::new(8, 8);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([
            (seed * 7 + u64::from(x) * 30) as u8,
            (seed * 13 + u64::from(y) * 30) as u8,
            (seed % 256) as u8,
        ]);
    }
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).expect("png");
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = args();
    assert!(args.pid > 0, "--pid of the server is required (for its memory and CPU)");
    let endpoint = |addr: &str| {
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .initial_connection_window_size(Some(4 << 20))
    };
    let control = endpoint(&args.addr).connect().await.expect("connect");
    let mut projects_client = ProjectServiceClient::new(control.clone());
    let mut projects = Vec::new();
    for i in 0..args.projects {
        let p = projects_client
            .create_project(CreateProjectRequest { name: format!("bench-{i}"), description: String::new() })
            .await
            .expect("create project")
            .into_inner()
            .project
            .expect("project");
        projects.push(p.project_id);
    }

    let rss_before = rss_bytes(args.pid);
    let mut channels: Vec<Channel> = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(endpoint(&args.addr).connect().await.expect("connect"));
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let opened = Instant::now();
    let projects_len = projects.len();
    // Opened concurrently, so they finish in any order: each carries its project's index.
    let streams: Vec<_> = stream::iter(0..args.streams)
        .map(|i| {
            // A project's streams are spread over the connections (as subscribers on
            // different clients would be), not stacked on the same one or two.
            let channel = channels[(i / projects_len) % channels.len()].clone();
            let project_id = projects[i % projects_len].clone();
            async move {
                let mut client = ImageFactsServiceClient::new(channel);
                let response = client
                    .watch_image_facts(WatchImageFactsRequest {
                        project_id,
                        after_cursor: 0,
                        orchestration_id: String::new(),
                    })
                    .await
                    .expect("open watch");
                (i % projects_len, response.into_inner())
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let open_secs = opened.elapsed().as_secs_f64();
    let mut tasks = Vec::with_capacity(streams.len());
    for (project, mut s) in streams {
        let project = project as u32;
        let delivered = delivered.clone();
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                tokio::select! {
                    message = s.message() => match message {
                        Ok(Some(m)) => {
                            if let Some(Message::Event(e)) = m.message {
                                let t = e.create_time.unwrap_or_default();
                                let created = t.seconds as f64 * 1e3 + f64::from(t.nanos) / 1e6;
                                latencies.push((project, e.cursor, created, now_ms_f64() - created));
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_bytes(args.pid);

    let ticks_before = cpu_ticks(args.pid);
    let images = ImageFactsServiceClient::new(control.clone());
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let total_images = (args.rate * args.seconds as f64).round() as u64;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total_images {
        ticker.tick().await;
        let project_id = projects[(sent as usize) % projects.len()].clone();
        let image = ImageInput {
            source: Some(Source::Data(tiny_png(sent).into())),
            mime_type: String::new(),
            image_id: String::new(),
        };
        let mut client = images.clone();
        tokio::spawn(async move {
            let _ = client.analyze_images(AnalyzeImagesRequest { project_id, images: vec![image] }).await;
        });
        sent += 1;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let per_project = args.streams as f64 / args.projects as f64;
    let expected = (total_images as f64 * 2.0 * per_project).round() as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let busy_secs = started.elapsed().as_secs_f64();
    let ticks = cpu_ticks(args.pid).saturating_sub(ticks_before);
    let _ = stop_tx.send(true);
    let mut all = Vec::new();
    let mut per_event: HashMap<(u32, u64), (f64, f64)> = HashMap::new();
    // (created, project, cursor) -> deliveries later than --slow-ms
    let mut slow: std::collections::BTreeMap<(u64, u32, u64), Vec<f64>> = Default::default();
    for t in tasks {
        for (project, cursor, created, latency) in t.await.unwrap_or_default() {
            all.push(latency);
            let e = per_event.entry((project, cursor)).or_insert((f64::MAX, f64::MIN));
            e.0 = e.0.min(latency);
            e.1 = e.1.max(latency);
            if args.slow_ms > 0.0 && latency > args.slow_ms {
                slow.entry((created as u64, project, cursor)).or_default().push(latency);
            }
        }
    }
    let first_created = slow.keys().next().map_or(0, |k| k.0);
    for ((created, project, cursor), mut late) in slow {
        late.sort_by(f64::total_cmp);
        let (fastest, _) = per_event[&(project, cursor)];
        println!(
            "slow event  t+{} ms  project {project} cursor {cursor}: {} of {per_project:.0} subscribers over {} ms, first {fastest:.1} ms, slowest {:.1} ms",
            created - first_created,
            late.len(),
            args.slow_ms,
            late.last().copied().unwrap_or_default()
        );
    }
    all.sort_by(f64::total_cmp);
    // First subscriber of each event: commit, wake-up and store read; last: plus the fan-out.
    let mut first: Vec<f64> = per_event.values().map(|v| v.0).collect();
    let mut spread: Vec<f64> = per_event.values().map(|v| v.1 - v.0).collect();
    first.sort_by(f64::total_cmp);
    spread.sort_by(f64::total_cmp);
    let clk_tck = 100.0; // USER_HZ on Linux
    let cpu_pct = ticks as f64 / clk_tck / busy_secs * 100.0;
    let per_stream = rss_after.saturating_sub(rss_before) as f64 / args.streams as f64;
    println!("streams            {}", args.streams);
    println!("connections        {}", args.connections);
    println!("projects           {} ({per_project:.0} streams each)", args.projects);
    println!("opened in          {open_secs:.2} s");
    println!("images             {total_images} at {:.1}/s over {send_secs:.1} s", args.rate);
    println!("deliveries         {} of {expected} expected", all.len());
    println!("latency p50        {:.2} ms", percentile(&all, 50.0));
    println!("latency p90        {:.2} ms", percentile(&all, 90.0));
    println!("latency p99        {:.2} ms", percentile(&all, 99.0));
    println!("latency max        {:.2} ms", all.last().copied().unwrap_or(f64::NAN));
    println!(
        "first subscriber   p50 {:.2} ms, p99 {:.2} ms (per event)",
        percentile(&first, 50.0),
        percentile(&first, 99.0)
    );
    println!(
        "fan-out spread     p50 {:.2} ms, p99 {:.2} ms (last - first subscriber, per event)",
        percentile(&spread, 50.0),
        percentile(&spread, 99.0)
    );
    println!("server RSS before  {:.1} MiB", rss_before as f64 / 1048576.0);
    println!("server RSS after   {:.1} MiB (streams open)", rss_after as f64 / 1048576.0);
    println!("RSS per stream     {:.1} KiB", per_stream / 1024.0);
    println!("server CPU         {cpu_pct:.0}% of one core while sending");
    println!(
        "{}",
        serde_json::json!({
            "streams": args.streams, "connections": args.connections, "projects": args.projects,
            "images": total_images, "rate": args.rate, "deliveries": all.len(), "expected": expected,
            "p50_ms": percentile(&all, 50.0), "p90_ms": percentile(&all, 90.0), "p99_ms": percentile(&all, 99.0),
            "max_ms": all.last().copied(), "first_p99_ms": percentile(&first, 99.0), "spread_p99_ms": percentile(&spread, 99.0), "rss_before": rss_before, "rss_after": rss_after,
            "rss_per_stream_bytes": per_stream, "server_cpu_pct": cpu_pct,
        })
    );
}
