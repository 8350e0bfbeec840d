//! `brain stress`: drives a weighted mix of calls at a server for a while,
//! measures them from the client side, then asks the server for its own
//! performance report of the same project and shows the two side by side.
//!
//! By default it creates a throwaway project, seeds it with scenes and
//! memory, and runs Orchestrate (with generated images when `--images` is
//! set), GetProject, ListScenes and PutMemory. Operations the server does not
//! implement yet (UNIMPLEMENTED on a probe call) are dropped from the mix with
//! a note. After the load, when orchestrations carried images, it waits for
//! their analyses so the report's measured async win covers them.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use brain_client::{BrainClient, BrainError, Code, code_name, proto};
use rand::Rng;

use crate::output::{Printer, to_json};

/// Operations the mix can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Op {
    /// Orchestrate: context, budget, decision, one write (and image jobs).
    Orchestrate,
    /// GetContextPacket: context and budget, no decision, no write.
    GetContextPacket,
    /// GetProject: the cheapest authenticated read.
    GetProject,
    /// ListScenes: a paged read.
    ListScenes,
    /// PutMemory: a small write.
    PutMemory,
}

impl Op {
    /// The RPC's method name, as the performance report names it.
    fn method(self) -> &'static str {
        match self {
            Op::Orchestrate => "Orchestrate",
            Op::GetContextPacket => "GetContextPacket",
            Op::GetProject => "GetProject",
            Op::ListScenes => "ListScenes",
            Op::PutMemory => "PutMemory",
        }
    }
}

/// Weighted operations, parsed from `orchestrate=6,get-project=2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(Vec<(Op, u32)>);

/// Parses `orchestrate=6,get-project=2` (a bare name weighs 1).
fn parse_mix(raw: &str) -> Result<Mix, String> {
    use clap::ValueEnum;
    let mut mix = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let op = Op::from_str(name.trim(), true).map_err(|_| {
            let names: Vec<String> = Op::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|v| v.get_name().to_owned())
                .collect();
            format!("unknown operation '{name}' (one of {})", names.join(", "))
        })?;
        let weight: u32 = weight.trim().parse().map_err(|_| format!("weight of '{name}' must be a whole number"))?;
        if weight > 0 {
            mix.push((op, weight));
        }
    }
    if mix.is_empty() {
        return Err("the mix needs at least one operation with a weight above 0".into());
    }
    Ok(Mix(mix))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to send load, e.g. 10s or 2m.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// HTTP/2 connections the calls are spread over.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=256))]
    connections: u32,
    /// Calls per second across all workers; 0 sends as fast as the concurrency allows.
    #[arg(long, default_value_t = 0.0)]
    rps: f64,
    /// Weighted operations: orchestrate, get-context-packet, get-project, list-scenes, put-memory.
    #[arg(long, default_value = "orchestrate=6,get-project=2,list-scenes=1,put-memory=1", value_parser = parse_mix)]
    mix: Mix,
    /// Images attached to each Orchestrate call (generated PNGs, a new one per call unless --same-image).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    images: u32,
    /// Image file attached instead of generated ones (with --images N, N copies per call).
    #[arg(long, value_name = "PATH")]
    image: Option<std::path::PathBuf>,
    /// Reuse one generated image for every call (exercises the image facts cache).
    #[arg(long)]
    same_image: bool,
    /// Side of the generated square images, in pixels.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(8..=2048))]
    image_size: u32,
    /// Use this project instead of creating and seeding one.
    #[arg(long)]
    project_id: Option<String>,
    /// After the load, wait up to this long for image analyses to finish.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    wait_images: Duration,
    /// Exit with status 1 when more than this share of calls failed (0 to 1).
    #[arg(long, default_value_t = 1.0)]
    max_error_rate: f64,
}

/// What one operation saw from the client side.
#[derive(Debug, Default)]
struct OpStats {
    latencies_ms: Vec<f64>,
    codes: BTreeMap<&'static str, u64>,
    images: u64,
}

#[derive(Debug, Default)]
struct Recorder {
    ops: Mutex<BTreeMap<Op, OpStats>>,
}

impl Recorder {
    fn add(&self, op: Op, code: Code, elapsed: Duration, images: u64) {
        let mut ops = self.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = ops.entry(op).or_default();
        stats.latencies_ms.push(elapsed.as_secs_f64() * 1e3);
        *stats.codes.entry(code_name(code)).or_default() += 1;
        if code == Code::Ok {
            stats.images += images;
        }
    }
}

/// The client-side summary of one operation.
#[derive(Debug, Clone)]
struct Summary {
    method: &'static str,
    calls: u64,
    ok: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
    codes: BTreeMap<&'static str, u64>,
}

impl Summary {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "calls": self.calls,
            "ok": self.ok,
            "errors": self.errors,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
            "codes": self.codes,
        })
    }
}

fn summarize(method: &'static str, stats: &mut OpStats, seconds: f64) -> Summary {
    stats.latencies_ms.sort_by(f64::total_cmp);
    let l = &stats.latencies_ms;
    let q = |q: f64| if l.is_empty() { 0.0 } else { l[((q * l.len() as f64).ceil() as usize).clamp(1, l.len()) - 1] };
    let calls = l.len() as u64;
    let ok = stats.codes.get("OK").copied().unwrap_or(0);
    Summary {
        method,
        calls,
        ok,
        errors: calls - ok,
        rps: calls as f64 / seconds.max(1e-9),
        p50_ms: q(0.50),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        max_ms: l.last().copied().unwrap_or(0.0),
        mean_ms: if l.is_empty() { 0.0 } else { l.iter().sum::<f64>() / l.len() as f64 },
        codes: stats.codes.clone(),
    }
}

/// Prompts like an editor's users write, so the decider does real work.
const PROMPTS: [&str; 8] = [
    "add an intro scene with the logo on a dark background",
    "make the second scene two seconds shorter",
    "change the title colour to match the brand palette",
    "delete the outro scene",
    "the transition in scene 3 is broken, fix it",
    "create a scene from this image with a slow zoom",
    "make everything feel more energetic",
    "use this photo as the background of the intro",
];

struct Shared {
    clients: Vec<BrainClient>,
    project_id: String,
    mix: Vec<(Op, u32)>,
    weight_total: u32,
    images: u32,
    image: Option<Vec<u8>>,
    image_size: u32,
    counter: AtomicU64,
    recorder: Recorder,
}

impl Shared {
    fn pick(&self, roll: u32) -> Op {
        let mut left = roll % self.weight_total;
        for (op, weight) in &self.mix {
            if left < *weight {
                return *op;
            }
            left -= weight;
        }
        self.mix[0].0
    }

    fn image_inputs(&self, n: u64) -> Vec<proto::ImageInput> {
        (0..self.images)
            .map(|i| {
                let data = match &self.image {
                    Some(bytes) => bytes.clone(),
                    None => png::photo(self.image_size, n * 16 + u64::from(i)),
                };
                proto::ImageInput {
                    source: Some(proto::image_input::Source::Data(data.into())),
                    mime_type: String::new(),
                    image_id: String::new(),
                }
            })
            .collect()
    }

    /// One call of `op`; its code and what it attached.
    async fn call(&self, op: Op, client: &BrainClient) -> (Code, u64) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let project_id = self.project_id.clone();
        let prompt = PROMPTS[(n % PROMPTS.len() as u64) as usize].to_owned();
        let result: Result<u64, BrainError> = match op {
            Op::Orchestrate => {
                let images = self.image_inputs(n);
                let count = images.len() as u64;
                let request = proto::OrchestrateRequest {
                    project_id,
                    prompt,
                    images,
                    request_id: String::new(),
                    token_budget: 0,
                };
                client.orchestrate(request).await.map(|_| count)
            }
            Op::GetContextPacket => client
                .get_context_packet(proto::GetContextPacketRequest { project_id, prompt, token_budget: 0 })
                .await
                .map(|_| 0),
            Op::GetProject => client.get_project(project_id).await.map(|_| 0),
            Op::ListScenes => client
                .list_scenes(proto::ListScenesRequest { project_id, page_size: 20, page_token: String::new() })
                .await
                .map(|_| 0),
            Op::PutMemory => client
                .put_memory(proto::PutMemoryRequest {
                    project_id,
                    r#type: proto::MemoryType::UserPreference.into(),
                    key: format!("stress-{}", n % 50),
                    value: format!("prefers pacing variant {}", n % 7),
                    confidence: Some(0.8),
                    ttl: None,
                })
                .await
                .map(|_| 0),
        };
        match result {
            Ok(images) => (Code::Ok, images),
            Err(err) => (err.code(), 0),
        }
    }
}

pub async fn run(base: &BrainClient, printer: &Printer, args: Args, global: &crate::Global) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.max_error_rate) {
        anyhow::bail!("--max-error-rate must be from 0 to 1");
    }
    if !args.rps.is_finite() || args.rps < 0.0 {
        anyhow::bail!("--rps must be 0 or more");
    }
    // Client-side times must be single attempts.
    let base = base.without_retries();
    let mut clients = vec![base.clone()];
    for _ in 1..args.connections {
        clients.push(crate::connect(global).await?.without_retries());
    }
    let image = match &args.image {
        Some(path) => Some(std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?),
        None if args.same_image => Some(png::photo(args.image_size, 0)),
        None => None,
    };
    // Calls made before the load (project check or seeding, probes): the server counts them too.
    let mut setup: BTreeMap<&'static str, u64> = BTreeMap::new();
    let project_id = match &args.project_id {
        Some(id) => {
            *setup.entry("GetProject").or_default() += 1;
            base.get_project(id.clone()).await?.project_id
        }
        None => seed_project(&base, &mut setup).await?,
    };
    let mut mix = args.mix.0.clone();
    let mut notes = Vec::new();
    for op in [Op::Orchestrate, Op::GetContextPacket] {
        if !mix.iter().any(|(o, _)| *o == op) {
            continue;
        }
        *setup.entry(op.method()).or_default() += 1;
        if !implemented(&base, op, &project_id).await {
            mix.retain(|(o, _)| *o != op);
            notes.push(format!("{} is not implemented by this server: left out of the mix", op.method()));
        }
    }
    if mix.is_empty() {
        anyhow::bail!("nothing left to run: {}", notes.join("; "));
    }
    if !printer.is_json() {
        for note in &notes {
            eprintln!("note: {note}");
        }
        eprintln!(
            "stress: {:?} against project {project_id}, {} in flight over {} connection(s){}",
            args.duration,
            args.concurrency,
            args.connections,
            if args.rps > 0.0 { format!(", {} calls/s", args.rps) } else { String::new() }
        );
    }

    let weight_total = mix.iter().map(|(_, w)| w).sum();
    let shared = Arc::new(Shared {
        clients,
        project_id: project_id.clone(),
        mix,
        weight_total,
        images: args.images,
        image,
        image_size: args.image_size,
        counter: AtomicU64::new(0),
        recorder: Recorder::default(),
    });
    let started = Instant::now();
    let deadline = started + args.duration;
    let pacer = (args.rps > 0.0).then(|| Arc::new(Pacer::new(args.rps, started)));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let shared = shared.clone();
            let pacer = pacer.clone();
            tokio::spawn(async move {
                let client = shared.clients[w as usize % shared.clients.len()].clone();
                loop {
                    if let Some(pacer) = &pacer {
                        pacer.wait().await;
                    }
                    if Instant::now() >= deadline {
                        return;
                    }
                    let op = shared.pick(rand::rng().random());
                    let at = Instant::now();
                    let (code, images) = shared.call(op, &client).await;
                    shared.recorder.add(op, code, at.elapsed(), images);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut ops = std::mem::take(&mut *shared.recorder.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let images_sent: u64 = ops.values().map(|s| s.images).sum();
    let summaries: Vec<Summary> = ops.iter_mut().map(|(op, stats)| summarize(op.method(), stats, elapsed)).collect();
    let mut all = OpStats::default();
    for stats in ops.values() {
        all.latencies_ms.extend_from_slice(&stats.latencies_ms);
        for (code, n) in &stats.codes {
            *all.codes.entry(code).or_default() += n;
        }
    }
    let total = summarize("total", &mut all, elapsed);

    // The server's view of the same project, after the images it was sent are analysed.
    let (report, waited) = server_report(&base, &project_id, images_sent, args.wait_images, started).await;

    let error_rate = if total.calls == 0 { 0.0 } else { total.errors as f64 / total.calls as f64 };
    if printer.is_json() {
        let server = match &report {
            Ok(r) => to_json(r, "brain.v1.PerformanceReport")?,
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let out = serde_json::json!({
            "project_id": project_id,
            "duration_s": elapsed,
            "concurrency": args.concurrency,
            "connections": args.connections,
            "images_per_orchestrate": args.images,
            "images_sent": images_sent,
            "notes": notes,
            "calls_before_load": setup,
            "client": {
                "operations": summaries.iter().map(Summary::to_json).collect::<Vec<_>>(),
                "total": total.to_json(),
            },
            "waited_for_images_s": waited.as_secs_f64(),
            "server": server,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_client(&summaries, &total, elapsed);
        match &report {
            Ok(r) => print_server(r, &summaries, &setup, images_sent, waited),
            Err(e) => println!("\nServer report unavailable: {e}"),
        }
    }
    if error_rate > args.max_error_rate {
        anyhow::bail!("{:.1}% of calls failed (allowed: {:.1}%)", error_rate * 100.0, args.max_error_rate * 100.0);
    }
    Ok(())
}

/// Spreads calls evenly over time: the n-th call may start at `start + n / rps`.
struct Pacer {
    start: Instant,
    every: Duration,
    next: AtomicU64,
}

impl Pacer {
    fn new(rps: f64, start: Instant) -> Self {
        Self { start, every: Duration::from_secs_f64(1.0 / rps), next: AtomicU64::new(0) }
    }

    async fn wait(&self) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let at = self.start + self.every.mul_f64(n as f64);
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Whether the server implements `op` (a probe call that is not UNIMPLEMENTED).
async fn implemented(client: &BrainClient, op: Op, project_id: &str) -> bool {
    let probe = match op {
        Op::Orchestrate => client
            .orchestrate(proto::OrchestrateRequest {
                project_id: project_id.to_owned(),
                prompt: "add an intro scene".into(),
                ..Default::default()
            })
            .await
            .err(),
        Op::GetContextPacket => client
            .get_context_packet(proto::GetContextPacketRequest {
                project_id: project_id.to_owned(),
                ..Default::default()
            })
            .await
            .err(),
        _ => None,
    };
    probe.is_none_or(|e| e.code() != Code::Unimplemented)
}

/// Creates a project with a few scenes and preferences, so context builds have something to assemble.
async fn seed_project(client: &BrainClient, setup: &mut BTreeMap<&'static str, u64>) -> anyhow::Result<String> {
    let name = format!("brain stress {}", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S"));
    let project = client
        .create_project(proto::CreateProjectRequest { name, description: "load generated by `brain stress`".into() })
        .await?;
    *setup.entry("CreateProject").or_default() += 1;
    let scenes = ["Intro", "Product close-up", "Feature tour", "Customer quote", "Outro"];
    for (i, scene) in scenes.iter().enumerate() {
        client
            .upsert_scene(proto::UpsertSceneRequest {
                project_id: project.project_id.clone(),
                name: (*scene).into(),
                summary: format!("{scene}: {} seconds, brand colours, upbeat music", 3 + i),
                ..Default::default()
            })
            .await?;
        *setup.entry("UpsertScene").or_default() += 1;
    }
    let preferences = [
        ("palette", "navy and coral"),
        ("pace", "fast cuts"),
        ("font", "geometric sans"),
        ("music", "upbeat electronic"),
        ("logo", "bottom right, small"),
    ];
    for (key, value) in preferences {
        client
            .put_memory(proto::PutMemoryRequest {
                project_id: project.project_id.clone(),
                r#type: proto::MemoryType::UserPreference.into(),
                key: key.into(),
                value: value.into(),
                confidence: Some(0.9),
                ttl: None,
            })
            .await?;
        *setup.entry("PutMemory").or_default() += 1;
    }
    Ok(project.project_id)
}

/// The report window that covers a run that started at `started`.
fn window_since(started: Instant) -> proto::ReportWindow {
    match started.elapsed().as_secs() {
        0..=49 => proto::ReportWindow::Last1Minute,
        50..=289 => proto::ReportWindow::Last5Minutes,
        290..=889 => proto::ReportWindow::Last15Minutes,
        _ => proto::ReportWindow::SinceStart,
    }
}

/// Asks for the project's report; when images were sent, polls until the
/// queue is empty and every image finished (or `wait` runs out).
async fn server_report(
    client: &BrainClient,
    project_id: &str,
    images_sent: u64,
    wait: Duration,
    started: Instant,
) -> (Result<proto::PerformanceReport, BrainError>, Duration) {
    let waiting_since = Instant::now();
    loop {
        let request = proto::GetPerformanceReportRequest {
            window: window_since(started).into(),
            project_id: project_id.to_owned(),
        };
        let report = client.get_performance_report(request).await;
        let settled = match &report {
            Ok(r) => {
                let jobs = r.jobs.unwrap_or_default();
                images_sent == 0
                    || (jobs.depth == 0 && jobs.running == 0 && jobs.completed + jobs.failures >= images_sent)
            }
            Err(_) => true,
        };
        if settled || waiting_since.elapsed() >= wait {
            return (report, waiting_since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_client(summaries: &[Summary], total: &Summary, elapsed: f64) {
    println!("Client side ({elapsed:.1} s):");
    println!(
        "  {:<18} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "METHOD", "CALLS", "ERRORS", "CALLS/S", "P50 MS", "P95 MS", "P99 MS", "MAX MS"
    );
    for s in summaries.iter().chain(std::iter::once(total)) {
        println!(
            "  {:<18} {:>8} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.method, s.calls, s.errors, s.rps, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        );
    }
    let failures: Vec<String> =
        total.codes.iter().filter(|(c, _)| **c != "OK").map(|(c, n)| format!("{c} {n}")).collect();
    if !failures.is_empty() {
        println!("  failures: {}", failures.join(", "));
    }
}

fn print_server(
    r: &proto::PerformanceReport,
    summaries: &[Summary],
    setup: &BTreeMap<&'static str, u64>,
    images_sent: u64,
    waited: Duration,
) {
    let window = match proto::ReportWindow::try_from(r.window) {
        Ok(proto::ReportWindow::Last1Minute) => "last minute",
        Ok(proto::ReportWindow::Last5Minutes) => "last 5 minutes",
        Ok(proto::ReportWindow::Last15Minutes) => "last 15 minutes",
        _ => "since start",
    };
    println!("\nServer side (GetPerformanceReport, {window}, this project):");
    println!(
        "  {:<18} {:>8} {:>8} {:>8} {:>8} {:>8}   CLIENT CALLS",
        "METHOD", "COUNT", "P50 MS", "P95 MS", "P99 MS", "MAX MS"
    );
    for s in summaries {
        let before = setup.get(s.method).copied().unwrap_or(0);
        let sent = if before > 0 { format!("{} + {before} before the load", s.calls) } else { s.calls.to_string() };
        match r.rpc_latencies.iter().find(|l| l.name == s.method) {
            Some(l) => {
                let agree = if l.count == s.calls + before { "=" } else { "≠" };
                println!(
                    "  {:<18} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}   {agree} {sent}",
                    l.name, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
                );
            }
            None => println!("  {:<18} {:>8}   ≠ {sent}", s.method, "-"),
        }
    }
    if r.stage_latencies.iter().any(|l| l.count > 0) {
        println!("  {:<18} {:>8} {:>8} {:>8} {:>8} {:>8}", "STAGE", "COUNT", "P50 MS", "P95 MS", "P99 MS", "MAX MS");
        for l in &r.stage_latencies {
            println!(
                "  {:<18} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.name, l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
            );
        }
    }
    if let Some(w) = &r.async_win {
        let met = if w.target_met { "met" } else { "not met" };
        if let Some(m) = w.measured.as_ref().filter(|m| m.samples > 0) {
            println!(
                "  async win, measured: {:.1}% over {} orchestrations with images (mean {:.1} ms answered vs {:.1} ms blocking); target {:.0}% {met}",
                m.improvement * 100.0,
                m.samples,
                m.mean_actual_ms,
                m.mean_blocking_ms,
                w.target * 100.0
            );
        }
        if let Some(e) = w.estimated.as_ref().filter(|e| e.mean_old_ms > 0.0) {
            println!(
                "  async win, estimated: {:.1}% (mean {:.1} ms vs {:.0} ms for the old flow)",
                e.improvement * 100.0,
                e.mean_actual_ms,
                e.mean_old_ms
            );
        }
    }
    if let Some(j) = &r.jobs {
        println!(
            "  image jobs: {} sent, {} done, {} failed, {} retried; queue {} waiting, {} running; wait p95 {:.1} ms, run p95 {:.1} ms (waited {:.1} s)",
            images_sent,
            j.completed,
            j.failures,
            j.retries,
            j.depth,
            j.running,
            j.wait_p95_ms,
            j.run_p95_ms,
            waited.as_secs_f64()
        );
    }
    for (name, cache) in [("context cache", &r.context_cache), ("image facts cache", &r.image_facts_cache)] {
        if let Some(c) = cache.as_ref().filter(|c| c.hits + c.misses > 0) {
            println!("  {name}: {:.1}% hits ({} of {})", c.hit_rate * 100.0, c.hits, c.hits + c.misses);
        }
    }
    if let Some(t) = r.tokens.as_ref().filter(|t| t.prompts > 0) {
        println!(
            "  prompts: {} built, mean {:.0} tokens, max {}, {} truncated, {} near budget",
            t.prompts, t.mean_prompt_tokens, t.max_prompt_tokens, t.truncations, t.budget_warnings
        );
    }
    println!("  server memory: {:.1} MiB resident", r.resident_memory_bytes as f64 / (1024.0 * 1024.0));
}

/// Photo-like PNGs without an image library: a sky gradient, a sun and
/// textured ground, varied by a seed, stored uncompressed.
mod png {
    /// A `size`×`size` RGB PNG; different seeds give different bytes.
    pub fn photo(size: u32, seed: u64) -> Vec<u8> {
        let side = size as usize;
        let mut raw = Vec::with_capacity(side * (side * 3 + 1));
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let (sun_x, sun_y) = (side / 4 + (seed as usize % (side / 2).max(1)), side / 5);
        for y in 0..side {
            raw.push(0); // filter: none
            for x in 0..side {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 24) as i32 - 12;
                let t = (y * 255 / side.max(1)) as i32;
                let (dx, dy) = (x as i64 - sun_x as i64, y as i64 - sun_y as i64);
                let rgb = if dx * dx + dy * dy < (side as i64 / 10).pow(2) {
                    [255, 220, 120]
                } else if y > side * 2 / 3 {
                    [40 + noise, 110 + t / 4 + noise, 50 + noise]
                } else {
                    [250 - t / 2 + noise / 2, 140 - t / 3, 90 + t / 2]
                };
                raw.extend(rgb.iter().map(|c| (*c).clamp(0, 255) as u8));
            }
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend(size.to_be_bytes());
        ihdr.extend(size.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &zlib_stored(&raw));
        chunk(&mut png, b"IEND", &[]);
        png
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }

    /// A zlib stream of stored (uncompressed) deflate blocks.
    fn zlib_stored(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            out.push(u8::from(i + 1 == blocks.len()));
            let len = block.len() as u16;
            out.extend(len.to_le_bytes());
            out.extend((!len).to_le_bytes());
            out.extend(*block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for byte in data {
            a = (a + u32::from(*byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        out.extend(((b << 16) | a).to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for byte in data {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn crc_and_layout_are_standard() {
            // The CRC of "IEND" with no data is the well-known AE426082.
            assert_eq!(super::crc32(b"IEND"), 0xAE42_6082);
            let png = super::photo(16, 1);
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
            assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]));
            assert_ne!(super::photo(16, 1), super::photo(16, 2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse() {
        assert_eq!(parse_mix("orchestrate=6,get-project=2"), Ok(Mix(vec![(Op::Orchestrate, 6), (Op::GetProject, 2)])));
        assert_eq!(parse_mix("put-memory"), Ok(Mix(vec![(Op::PutMemory, 1)])));
        assert!(parse_mix("nope=1").is_err());
        assert!(parse_mix("orchestrate=0").is_err());
        assert!(parse_mix("orchestrate=x").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut stats = OpStats { latencies_ms: (1..=100).map(f64::from).rev().collect(), ..OpStats::default() };
        stats.codes.insert("OK", 100);
        let s = summarize("GetProject", &mut stats, 10.0);
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert_eq!((s.calls, s.errors, s.rps), (100, 0, 10.0));
    }
}
