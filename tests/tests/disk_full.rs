//! The SQLite database on a filesystem that fills up while six clients write
//! (PutMemory with 4 KB values, Orchestrate with 2 KB prompts and request
//! ids, ListMemories), then gets its space back.
//!
//! Every call answered OK must be readable afterwards, over the API and from
//! the file after a restart; every other write must fail with UNAVAILABLE
//! STORE_UNAVAILABLE or RESOURCE_EXHAUSTED; health is NOT_SERVING while writes
//! fail and SERVING again within 2 s of space returning; writes succeed and
//! persist again without a restart.
//!
//! Needs root (a 5 MB tmpfs mount); says "skipped" otherwise. PostgreSQL's
//! disk is not ours to fill here: its write-failure path is covered by the
//! outage tests in store_outage.rs.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use brain_e2e::{Server, ServerOptions, TestDb, error_reason};
use brain_proto::v1::{ListMemoriesRequest, MemoryType, OrchestrateRequest, PutMemoryRequest};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// The value of `brain_health_serving` in the server's /metrics, or what came back instead.
async fn health_gauge(metrics: std::net::SocketAddr) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(metrics).await.map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {metrics}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    text.lines()
        .find_map(|line| line.strip_prefix("brain_health_serving "))
        .map(str::to_owned)
        .ok_or_else(|| format!("no brain_health_serving in {} bytes: {:.300}", raw.len(), text))
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(under: &Path, size: &str) -> Option<Self> {
        let dir = under.join("disk");
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }

    fn free_bytes(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.dir).expect("statvfs");
        stat.blocks_available() as u64 * stat.fragment_size() as u64
    }

    /// Every file on the disk with its size.
    fn files(&self) -> Vec<(String, u64)> {
        std::fs::read_dir(&self.dir)
            .map(|dir| {
                dir.flatten()
                    .map(|entry| {
                        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                        (entry.file_name().to_string_lossy().into_owned(), size)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fills the disk until `leave` bytes are free; returns the filler file.
    fn fill(&self, leave: u64) -> PathBuf {
        let filler = self.dir.join("filler");
        let size = self.free_bytes().saturating_sub(leave);
        // tmpfs allocates on write, so write the bytes instead of truncating to a size.
        std::fs::write(&filler, vec![0xA5u8; size as usize]).ok();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// What the writers saw.
#[derive(Default)]
struct Outcomes {
    /// PutMemory calls answered OK: key -> value.
    memories: BTreeMap<String, String>,
    /// Orchestrate calls answered OK: request id -> orchestration id.
    orchestrations: BTreeMap<String, String>,
    /// Failed calls by (code, reason).
    failures: BTreeMap<(i32, String), u32>,
}

fn value_for(key: &str) -> String {
    format!("{key}:{}", "v".repeat(3900))
}

fn prompt_for(request_id: &str) -> String {
    format!("Add a scene about {request_id}. {}", "Keep the pace calm and the colours warm. ".repeat(50))
}

/// The projects written to: memories go to one, prompts to the other, so an
/// orchestration's stored response (which holds its context packet) stays
/// small and the disk fills with the writes the test counts.
#[derive(Clone)]
struct Projects {
    memories: String,
    prompts: String,
}

async fn writer(server: Arc<Server>, to: Projects, who: usize, stop: Arc<AtomicBool>, out: Arc<Mutex<Outcomes>>) {
    let mut projects = server.projects(None).await;
    let mut orchestrator = server.orchestrator(None).await;
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let failure = match (who + n as usize) % 3 {
            0 => {
                let key = format!("w{who}-k{n}");
                let value = value_for(&key);
                let request = PutMemoryRequest {
                    project_id: to.memories.clone(),
                    r#type: MemoryType::UserPreference as i32,
                    key: key.clone(),
                    value: value.clone(),
                    ..Default::default()
                };
                match projects.put_memory(request).await {
                    Ok(_) => {
                        out.lock().unwrap().memories.insert(key, value);
                        None
                    }
                    Err(status) => Some(status),
                }
            }
            1 => {
                let request_id = format!("w{who}-r{n}");
                let request = OrchestrateRequest {
                    project_id: to.prompts.clone(),
                    prompt: prompt_for(&request_id),
                    request_id: request_id.clone(),
                    ..Default::default()
                };
                match orchestrator.orchestrate(request).await {
                    Ok(response) => {
                        let id = response.into_inner().orchestration.expect("orchestration").orchestration_id;
                        out.lock().unwrap().orchestrations.insert(request_id, id);
                        None
                    }
                    Err(status) => Some(status),
                }
            }
            _ => {
                let request =
                    ListMemoriesRequest { project_id: to.memories.clone(), page_size: 20, ..Default::default() };
                projects.list_memories(request).await.err()
            }
        };
        if let Some(status) = failure {
            let reason = error_reason(&status).unwrap_or_default();
            *out.lock().unwrap().failures.entry((status.code() as i32, reason)).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn run_writers(server: &Arc<Server>, to: &Projects, for_how_long: Duration, out: &Arc<Mutex<Outcomes>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> =
        (0..6).map(|who| tokio::spawn(writer(server.clone(), to.clone(), who, stop.clone(), out.clone()))).collect();
    tokio::time::sleep(for_how_long).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Checks that every acknowledged write is there, over the API.
async fn assert_all_stored(server: &Server, to: &Projects, out: &Outcomes) {
    let mut projects = server.projects(None).await;
    let mut stored = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = projects
            .list_memories(ListMemoriesRequest {
                project_id: to.memories.clone(),
                r#type: MemoryType::UserPreference as i32,
                page_size: 100,
                page_token,
            })
            .await
            .expect("list memories")
            .into_inner();
        stored.extend(page.memories.into_iter().map(|m| (m.key, m.value)));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let lost: Vec<_> = out.memories.keys().filter(|k| stored.get(*k) != out.memories.get(*k)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged memories lost: {lost:?}", lost.len(), out.memories.len());
    let mut orchestrator = server.orchestrator(None).await;
    for (request_id, id) in &out.orchestrations {
        let replay = orchestrator
            .orchestrate(OrchestrateRequest {
                project_id: to.prompts.clone(),
                prompt: prompt_for(request_id),
                request_id: request_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("replaying acknowledged request {request_id}: {s:?}"))
            .into_inner();
        assert!(replay.replayed, "acknowledged orchestration {request_id} was not stored (ran again)");
        assert_eq!(&replay.orchestration.expect("orchestration").orchestration_id, id, "{request_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disk_full_loses_no_acknowledged_write() {
    let db = TestDb::sqlite_at("disk").await;
    let Some(disk) = SmallDisk::mount(db.dir.path(), "32m") else {
        assert!(
            std::env::var_os(brain_e2e::REQUIRE_TOOLS_ENV).is_none(),
            "cannot mount a tmpfs (needs root) and {} is set",
            brain_e2e::REQUIRE_TOOLS_ENV
        );
        eprintln!("skipped sqlite_disk_full_loses_no_acknowledged_write: mounting a tmpfs needs root");
        return;
    };
    let server = Arc::new(
        Server::start_with(
            &db,
            ServerOptions::new().set("health_probe_interval_ms", 200).set("metrics_addr", "127.0.0.1:0"),
        )
        .await,
    );
    let metrics = server.metrics_addr().expect("metrics address");
    let to = Projects {
        memories: common::project(&server, "disk full: memories").await,
        prompts: common::project(&server, "disk full: prompts").await,
    };
    let out = Arc::new(Mutex::new(Outcomes::default()));

    // Writes on a disk with room, then on a disk that fills up under them.
    run_writers(&server, &to, Duration::from_millis(300), &out).await;
    let filler = disk.fill(600 * 1024);
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..6)
        .map(|who| tokio::spawn(writer(server.clone(), to.clone(), 10 + who, stop.clone(), out.clone())))
        .collect();
    // Health must say NOT_SERVING while writes fail.
    let not_serving = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if server.health("").await.ok() == Some(ServingStatus::NotServing) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed_while_full: u32 = out.lock().unwrap().failures.values().sum();
    assert!(not_serving.is_ok(), "health stayed SERVING on a full disk:\n{}", server.logs());
    let gauge = health_gauge(metrics).await;
    assert_eq!(gauge.as_deref(), Ok("0"), "/metrics while NOT_SERVING\n{}", server.logs());
    assert!(failed_while_full > 0, "no write failed on a full disk (free: {} bytes)", disk.free_bytes());

    // Space comes back: SERVING within 2 s, and writes work without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let back = server.wait_health("", ServingStatus::Serving, Duration::from_secs(2)).await;
    println!("measured: disk full -> SERVING {} ms after space returned", back.as_millis());
    let gauge = health_gauge(metrics).await;
    assert_eq!(gauge.as_deref(), Ok("1"), "/metrics once SERVING again\n{}", server.logs());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("writer");
    }
    let before_recovery = out.lock().unwrap().memories.len();
    run_writers(&server, &to, Duration::from_millis(1000), &out).await;
    let out = Arc::try_unwrap(out).ok().expect("writers done").into_inner().unwrap();
    assert!(
        out.memories.len() > before_recovery,
        "no write succeeded after space returned: {:?}\nfree: {} bytes, files: {:?}\n{}",
        out.failures,
        disk.free_bytes(),
        disk.files(),
        server.logs()
    );

    let unexpected: Vec<_> = out
        .failures
        .iter()
        .filter(|((code, reason), _)| {
            !matches!(
                (Code::from_i32(*code), reason.as_str()),
                (Code::Unavailable, "STORE_UNAVAILABLE") | (Code::ResourceExhausted, _)
            )
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected failures: {unexpected:?}\n{}", server.logs());
    println!(
        "measured: disk full: {} memories and {} orchestrations acknowledged, failures {:?}",
        out.memories.len(),
        out.orchestrations.len(),
        out.failures
    );

    assert_all_stored(&server, &to, &out).await;
    // And in the file, not only in a connection's open transaction: after a restart.
    let server = Arc::try_unwrap(server).ok().expect("server");
    server.sigterm();
    drop(server);
    let server = Server::start(&db).await;
    assert_all_stored(&server, &to, &out).await;
    drop(server);
    drop(disk);
}
