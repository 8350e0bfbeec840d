//! Test support: the real `brain-server` on a free port, and a TCP proxy that
//! can cut, refuse or stall connections to it.
//!
//! The server binary is `$BRAIN_SERVER_BIN` when set; otherwise
//! `cargo test --workspace --no-run` runs once per test process (a no-op when it
//! is up to date) and `<target>/debug/brain-server` is used.
#![allow(dead_code)] // each test file uses its own part of the support code

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use brain_client::{BrainClient, ServingStatus};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// The shared test image.
pub fn sunset_png() -> Vec<u8> {
    std::fs::read(repo_root().join("client/testdata/sunset.png")).expect("client/testdata/sunset.png")
}

/// A command for the server binary without the caller's `BRAIN_*` variables:
/// the server reads those as settings and refuses unknown ones (`BRAIN_ADDR`,
/// `BRAIN_API_KEY` and `BRAIN_SERVER_BIN` are the client's); the tests pass
/// everything the server needs as flags.
fn server_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BRAIN_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Variables cargo sets for a running test. Passing them on to the nested cargo
/// would make build scripts that watch them (ring watches CARGO_MANIFEST_DIR)
/// rebuild half the dependency tree.
fn set_by_cargo_for_this_test(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

fn server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("BRAIN_SERVER_BIN") {
                return PathBuf::from(path);
            }
            // <target>/debug/deps/<test binary>
            let exe = std::env::current_exe().expect("test binary path");
            let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                // The README's test build (`cargo test --workspace`) builds and uplifts
                // <target>/debug/brain-server, so under it this is a no-op; `cargo build`
                // resolves dependency features differently and would rebuild half of them.
                .args(["test", "--quiet", "--workspace", "--no-run", "--manifest-path"])
                .arg(repo_root().join("Cargo.toml"))
                .env_clear()
                .envs(std::env::vars_os().filter(|(name, _)| !set_by_cargo_for_this_test(name)))
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .expect("run cargo test --workspace --no-run");
            assert!(status.success(), "cargo test --workspace --no-run failed");
            target.join("debug/brain-server")
        })
        .clone()
}

/// The tenant of [`BrainServer::api_key`].
pub const TENANT: &str = "client-tests";
/// The tenant of [`BrainServer::purge_key`], there to be purged.
pub const PURGE_TENANT: &str = "client-tests-purge";

/// Runs `brain-server keys create <args>` and returns the key it prints.
fn create_key(binary: &Path, database_url: &str, args: &[&str]) -> String {
    let output = server_command(binary)
        .args(["keys", "create"])
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    assert!(output.status.success(), "brain-server keys create failed: {}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).expect("utf-8 key").trim().to_owned();
    assert!(key.starts_with("brk_"), "unexpected key {key:?}");
    key
}

/// A running `brain-server` with an API key of [`TENANT`], an admin key and an API key of
/// [`PURGE_TENANT`]; stopped with SIGTERM on drop.
pub struct BrainServer {
    child: Child,
    pub addr: String,
    pub api_key: String,
    /// An admin key (`keys create --admin`): AdminService only.
    pub admin_key: String,
    /// A key of [`PURGE_TENANT`], a tenant a test may purge.
    pub purge_key: String,
    pub dir: tempfile::TempDir,
}

impl BrainServer {
    /// Creates the keys, serves on a free loopback port and waits until health says SERVING.
    pub async fn start() -> Self {
        let binary = server_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}", dir.path().join("brain.db").display());
        let api_key = create_key(&binary, &database_url, &["--tenant", TENANT]);
        let admin_key = create_key(&binary, &database_url, &["--admin"]);
        let purge_key = create_key(&binary, &database_url, &["--tenant", PURGE_TENANT]);

        let ready_file = dir.path().join("ready.json");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = server_command(&binary)
            .args(["--listen-addr", "127.0.0.1:0", "--metrics-addr", "off", "--database-url", &database_url])
            .arg("--ready-file")
            .arg(&ready_file)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn brain-server");
        let mut server = Self { child, addr: String::new(), api_key, admin_key, purge_key, dir };
        server.addr = server.wait_ready(&ready_file).await;
        server
    }

    async fn wait_ready(&mut self, ready_file: &Path) -> String {
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(ready_file)
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(addr) = value["grpc_addr"].as_str()
            {
                break addr.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("brain-server exited with {status} before it was ready:\n{}", self.log());
            }
            assert!(started.elapsed() < Duration::from_secs(30), "brain-server not ready after 30 s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let client = BrainClient::builder(addr.clone()).connect_lazy().expect("client");
        loop {
            if let Ok(ServingStatus::Serving) = client.health().await {
                return addr;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "brain-server not SERVING after 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A client with the server's key.
    pub async fn client(&self) -> BrainClient {
        self.client_with(&self.api_key).await
    }

    /// A client with another of the server's keys.
    pub async fn client_with(&self, key: &str) -> BrainClient {
        BrainClient::connect(self.addr.clone(), Some(key)).await.expect("connect")
    }
}

impl Drop for BrainServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Stall,
}

/// A loopback TCP proxy in front of the server, to break connections on purpose.
pub struct Proxy {
    pub addr: String,
    upstream: String,
    mode: Arc<Mutex<Mode>>,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let proxy = Self {
            addr,
            upstream: upstream.to_owned(),
            mode: Arc::new(Mutex::new(Mode::Forward)),
            accept: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let mode = Arc::clone(&self.mode);
        let connections = Arc::clone(&self.connections);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let stall = *mode.lock().expect("mode") == Mode::Stall;
                let connection = tokio::spawn(async move {
                    if stall {
                        // Hold the connection open and never answer.
                        let _keep = inbound;
                        return std::future::pending::<()>().await;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().expect("connections").push(connection);
            }
        });
        *self.accept.lock().expect("accept") = Some(task);
    }

    /// Drops every open connection (the server sees the client vanish, the client a reset).
    pub fn cut(&self) {
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }

    /// Stops listening and cuts open connections: new connections are refused.
    pub fn refuse(&self) {
        if let Some(task) = self.accept.lock().expect("accept").take() {
            task.abort();
        }
        self.cut();
    }

    /// Listens again on the same address.
    pub async fn restore(&self) {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(&self.addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("rebind proxy {}: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// New connections are accepted but never answered.
    pub fn stall(&self) {
        *self.mode.lock().expect("mode") = Mode::Stall;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.refuse();
    }
}
