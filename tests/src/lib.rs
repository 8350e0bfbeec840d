//! Harness for black-box tests: a fresh database per test (a SQLite file, or a
//! throwaway PostgreSQL database when `BRAIN_TEST_POSTGRES_URL` is set), the
//! real server binary started on `127.0.0.1:0`, and gRPC clients for it.
//!
//! Write a test as `async fn name(db: Arc<TestDb>)` and list it in
//! [`backend_tests!`]; it then runs once per backend.
//!
//! Real faults, no mocks: [`TestDb::lock_sqlite`] holds SQLite's write lock
//! from another connection, [`TestDb::block_postgres`] makes PostgreSQL refuse
//! and drop the server's connections, [`TcpProxy`] stalls or cuts the network
//! path to PostgreSQL, and [`TestDb::postgres_uncreated`] names a database that
//! does not exist yet. [`Server::raw_unary`] sends bytes no generated client
//! would, and [`Server::grpc_health_probe`] runs the real probe when installed.

pub mod load;
pub mod seed;
pub mod sentry;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use brain_proto::v1::{
    CreateProjectRequest, Project, admin_service_client::AdminServiceClient,
    image_facts_service_client::ImageFactsServiceClient, orchestrator_service_client::OrchestratorServiceClient,
    performance_service_client::PerformanceServiceClient, project_service_client::ProjectServiceClient,
};
use sea_orm::{ConnectionTrait, Database};
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

/// The ProjectService client [`Server::projects`] returns.
pub type Projects = ProjectServiceClient<InterceptedService<Channel, ApiKey>>;

/// Creates a project named `name`, described "about {name}", through `client`; returns it.
pub async fn create_project(client: &mut Projects, name: &str) -> Project {
    client
        .create_project(CreateProjectRequest { name: name.into(), description: format!("about {name}") })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
}

/// A benchmark's numeric setting from the environment, or `default` when unset or not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Environment variable naming a PostgreSQL database the tests may use to create throwaway databases.
pub const POSTGRES_ENV: &str = "BRAIN_TEST_POSTGRES_URL";
/// When set, PostgreSQL variants fail instead of skipping if `BRAIN_TEST_POSTGRES_URL` is missing.
pub const REQUIRE_POSTGRES_ENV: &str = "BRAIN_TEST_REQUIRE_POSTGRES";

/// The server binary under test: `BRAIN_SERVER_BIN`, or the `brain-server-under-test` binary cargo
/// builds next to this package's test executables (target/<profile>/) before running them.
pub fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("BRAIN_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> → target/<profile>/brain-server-under-test
    let profile_dir = exe.parent().and_then(Path::parent).expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("brain-server-under-test");
    assert!(bin.exists(), "{} is missing; run the tests with `cargo test -p brain-e2e`", bin.display());
    bin
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A throwaway PostgreSQL database.
    Postgres,
}

/// A fresh database for one test; dropped (file or database) when the last handle goes.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give the server.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    /// Temp dir for the SQLite file (and anything else the test writes).
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite file.
    pub async fn sqlite() -> Arc<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/brain.db", dir.path().display());
        Arc::new(TestDb { url, backend: Backend::Sqlite, dir, postgres: None })
    }

    /// A fresh SQLite file in the directory `subdir` of the temp dir, which the test may mount
    /// something on (a small filesystem) before the server creates the file.
    pub async fn sqlite_at(subdir: &str) -> Arc<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/{subdir}/brain.db", dir.path().display());
        Arc::new(TestDb { url, backend: Backend::Sqlite, dir, postgres: None })
    }

    /// A fresh PostgreSQL database, or None when `BRAIN_TEST_POSTGRES_URL` is unset.
    pub async fn postgres() -> Option<Arc<TestDb>> {
        let db = Self::postgres_uncreated().await?;
        db.create_postgres_database().await;
        Some(db)
    }

    /// A PostgreSQL database that is named but does not exist yet (dropped at the end if it was
    /// created), for "the store is not there yet" tests; None when `BRAIN_TEST_POSTGRES_URL` is unset.
    pub async fn postgres_uncreated() -> Option<Arc<TestDb>> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            assert!(
                std::env::var_os(REQUIRE_POSTGRES_ENV).is_none(),
                "{REQUIRE_POSTGRES_ENV} is set but {POSTGRES_ENV} is not"
            );
            return None;
        };
        let name = format!("brain_test_{}", uuid::Uuid::new_v4().simple());
        let url = replace_database(&admin_url, &name);
        let dir = tempfile::tempdir().expect("temp dir");
        Some(Arc::new(TestDb { url, backend: Backend::Postgres, dir, postgres: Some((admin_url, name)) }))
    }

    /// Creates the PostgreSQL database of [`TestDb::postgres_uncreated`].
    pub async fn create_postgres_database(&self) {
        let name = self.postgres_name();
        self.postgres_admin(&format!("CREATE DATABASE {name}")).await;
    }

    /// Makes the PostgreSQL database stop answering: new connections are refused and every
    /// existing connection to it is terminated (a real outage, as the server sees it).
    pub async fn block_postgres(&self) {
        let name = self.postgres_name();
        self.postgres_admin(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")).await;
        self.postgres_admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await;
    }

    /// Ends [`TestDb::block_postgres`]: the database accepts connections again.
    pub async fn unblock_postgres(&self) {
        let name = self.postgres_name();
        self.postgres_admin(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).await;
    }

    /// Takes the SQLite write lock (`BEGIN IMMEDIATE`) from another connection and holds it
    /// until the returned guard is released or dropped: the server can read but not write.
    pub async fn lock_sqlite(&self) -> SqliteWriteLock {
        assert_eq!(self.backend, Backend::Sqlite, "lock_sqlite needs a SQLite database");
        SqliteWriteLock::acquire(&self.sqlite_file()).await
    }

    /// The SQLite database file.
    pub fn sqlite_file(&self) -> PathBuf {
        PathBuf::from(self.url.trim_start_matches("sqlite://"))
    }

    /// A direct connection to the test database, to check what the server stored.
    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        Database::connect(&self.url).await.expect("connect to the test database")
    }

    /// The host and port the PostgreSQL test database is reached at.
    pub fn postgres_host_port(&self) -> String {
        let url = &self.url;
        let after_at = url.rsplit_once('@').map_or(url.as_str(), |(_, rest)| rest);
        let after_scheme = after_at.split_once("://").map_or(after_at, |(_, rest)| rest);
        after_scheme.split(['/', '?']).next().unwrap_or_default().to_owned()
    }

    fn postgres_name(&self) -> &str {
        &self.postgres.as_ref().expect("a PostgreSQL test database").1
    }

    async fn postgres_admin(&self, sql: &str) {
        let admin_url = &self.postgres.as_ref().expect("a PostgreSQL test database").0;
        let admin = Database::connect(admin_url.as_str()).await.expect("connect to BRAIN_TEST_POSTGRES_URL");
        admin.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        admin.close().await.ok();
    }
}

/// Holds up writes to one project for as long as it lives, the way a slow transaction would:
/// SQLite's write lock, or PostgreSQL's row lock on the project.
pub enum WriteBlocker {
    /// SQLite's write lock.
    Sqlite(SqliteWriteLock),
    /// A transaction holding the project's row lock, and its connection.
    Postgres(sea_orm::DatabaseTransaction, sea_orm::DatabaseConnection),
}

impl WriteBlocker {
    /// Takes the lock that holds up writes to `project_id` in `db`.
    pub async fn hold(db: &TestDb, project_id: &str) -> Self {
        use sea_orm::TransactionTrait;
        match db.backend {
            Backend::Sqlite => WriteBlocker::Sqlite(db.lock_sqlite().await),
            Backend::Postgres => {
                let conn = db.connect().await;
                let txn = conn.begin().await.expect("begin");
                txn.execute_unprepared(&format!("SELECT id FROM projects WHERE id = '{project_id}' FOR UPDATE"))
                    .await
                    .expect("lock the project row");
                WriteBlocker::Postgres(txn, conn)
            }
        }
    }

    /// Lets writes go on.
    pub async fn release(self) {
        match self {
            WriteBlocker::Sqlite(lock) => lock.release().await,
            WriteBlocker::Postgres(txn, conn) => {
                txn.rollback().await.expect("rollback");
                conn.close().await.ok();
            }
        }
    }
}

/// The SQLite write lock, held by a connection other than the server's.
pub struct SqliteWriteLock {
    conn: Option<sea_orm::sqlx::SqliteConnection>,
}

impl SqliteWriteLock {
    async fn acquire(path: &Path) -> Self {
        use sea_orm::sqlx::{ConnectOptions as _, Executor as _, sqlite::SqliteConnectOptions};
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(30))
            .connect()
            .await
            .expect("open the SQLite file");
        conn.execute("BEGIN IMMEDIATE").await.expect("take the SQLite write lock");
        Self { conn: Some(conn) }
    }

    /// Rolls back and closes the connection, releasing the lock.
    pub async fn release(mut self) {
        use sea_orm::sqlx::{Connection as _, Executor as _};
        if let Some(mut conn) = self.conn.take() {
            conn.execute("ROLLBACK").await.expect("release the SQLite write lock");
            conn.close().await.ok();
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else { return };
        // Drop runs outside any runtime we can borrow, so use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Replaces the database name (the URL path) of a PostgreSQL URL.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs each listed `async fn(Arc<TestDb>)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
                async fn $name() {
                    match $crate::TestDb::postgres().await {
                        Some(db) => super::$name(db).await,
                        None => eprintln!("skipped {}: {} is not set", stringify!($name), $crate::POSTGRES_ENV),
                    }
                }
            )*
        }
    };
}

/// Options for starting a server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra command-line arguments, e.g. `["--set", "job_workers=1"]`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Listen address; default 127.0.0.1:0.
    pub listen_addr: Option<String>,
    /// Wait for health SERVING before returning (default true via [`ServerOptions::new`]).
    pub wait_serving: bool,
}

impl ServerOptions {
    /// Defaults: loopback port 0, wait until SERVING.
    pub fn new() -> Self {
        Self { wait_serving: true, ..Self::default() }
    }

    /// Adds `--set key=value`.
    pub fn set(mut self, key: &str, value: impl ToString) -> Self {
        self.args.push("--set".into());
        self.args.push(format!("{key}={}", value.to_string()));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.into(), value.to_string()));
        self
    }
}

/// A running server process.
pub struct Server {
    child: Option<Child>,
    /// The gRPC address it listens on.
    pub addr: SocketAddr,
    /// The database it uses.
    pub db: Arc<TestDb>,
    run_dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on a fresh port against `db` and waits until it is SERVING.
    pub async fn start(db: &Arc<TestDb>) -> Server {
        Self::start_with(db, ServerOptions::new()).await
    }

    /// Starts the server with options.
    pub async fn start_with(db: &Arc<TestDb>, options: ServerOptions) -> Server {
        let run_dir = tempfile::tempdir().expect("temp dir");
        let ready = run_dir.path().join("ready.json");
        let log = std::fs::File::create(run_dir.path().join("server.log")).expect("log file");
        let mut cmd = Command::new(server_binary());
        cmd.arg("--listen-addr")
            .arg(options.listen_addr.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--database-url")
            .arg(&db.url)
            .arg("--metrics-addr")
            .arg("off")
            .arg("--log-format")
            .arg("json")
            .args(&options.args)
            .current_dir(run_dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        hermetic_env(&mut cmd);
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start brain-server");
        let mut server =
            Server { child: Some(child), addr: "127.0.0.1:0".parse().expect("addr"), db: db.clone(), run_dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
                && let Some(addr) = json["grpc_addr"].as_str()
            {
                server.addr = addr.parse().expect("grpc_addr");
                break;
            }
            if let Some(status) = server.try_exit() {
                panic!("brain-server exited early with {status}:\n{}", server.logs());
            }
            assert!(Instant::now() < deadline, "brain-server did not listen within 60 s:\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if options.wait_serving {
            server.wait_health("", ServingStatus::Serving, Duration::from_secs(60)).await;
        }
        server
    }

    /// The address of `/metrics` and `/dashboard`, when the server was started with one
    /// (e.g. `ServerOptions::new().set("metrics_addr", "127.0.0.1:0")`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(self.run_dir.path().join("ready.json")).ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        json["metrics_addr"].as_str()?.parse().ok()
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.run_dir.path().join("server.log")).unwrap_or_default()
    }

    /// The working directory of the process (for files it writes).
    pub fn run_dir(&self) -> &Path {
        self.run_dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A plaintext channel to the server.
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to brain-server")
    }

    /// Health status of `service` ("" for the whole server).
    pub async fn health(&self, service: &str) -> Result<ServingStatus, Status> {
        let mut client = HealthClient::new(self.channel().await);
        let response = client.check(HealthCheckRequest { service: service.into() }).await?;
        Ok(response.into_inner().status())
    }

    /// Waits until `service` reports `want`; panics with the log after `timeout`. Returns the time it took.
    pub async fn wait_health(&self, service: &str, want: ServingStatus, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if let Ok(status) = self.health(service).await
                && status == want
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "health of '{service}' did not become {want:?} within {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A health client.
    pub async fn health_client(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    /// Sends `body` as the raw protobuf request of the unary RPC `path` (for example
    /// `/brain.v1.ProjectService/CreateProject`) and returns the raw response bytes: for requests
    /// no generated client can produce (malformed messages).
    pub async fn raw_unary(&self, path: &'static str, body: Vec<u8>, key: Option<&str>) -> Result<Vec<u8>, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel().await);
        grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = Request::new(body);
        if let Some(key) = key {
            request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ascii key"));
        }
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
        let response = grpc.unary(request, path, RawCodec).await?;
        Ok(response.into_inner())
    }

    /// Runs the real `grpc_health_probe` against the server (for `service`, "" for the whole
    /// server); None when the tool is not installed.
    pub fn grpc_health_probe(&self, service: &str) -> Option<std::process::Output> {
        let tool = find_tool("grpc_health_probe")?;
        let mut cmd = Command::new(tool);
        cmd.arg(format!("-addr={}", self.addr)).arg("-connect-timeout=2s").arg("-rpc-timeout=2s");
        if !service.is_empty() {
            cmd.arg(format!("-service={service}"));
        }
        Some(cmd.output().expect("run grpc_health_probe"))
    }

    /// A ProjectService client sending `key` (or no key).
    pub async fn projects(&self, key: Option<&str>) -> Projects {
        ProjectServiceClient::with_interceptor(self.channel().await, ApiKey::new(key))
    }

    /// An OrchestratorService client.
    pub async fn orchestrator(
        &self,
        key: Option<&str>,
    ) -> OrchestratorServiceClient<InterceptedService<Channel, ApiKey>> {
        OrchestratorServiceClient::with_interceptor(self.channel().await, ApiKey::new(key))
    }

    /// An ImageFactsService client.
    pub async fn image_facts(&self, key: Option<&str>) -> ImageFactsServiceClient<InterceptedService<Channel, ApiKey>> {
        ImageFactsServiceClient::with_interceptor(self.channel().await, ApiKey::new(key))
    }

    /// A PerformanceService client.
    pub async fn performance(
        &self,
        key: Option<&str>,
    ) -> PerformanceServiceClient<InterceptedService<Channel, ApiKey>> {
        PerformanceServiceClient::with_interceptor(self.channel().await, ApiKey::new(key))
    }

    /// An AdminService client.
    pub async fn admin(&self, key: Option<&str>) -> AdminServiceClient<InterceptedService<Channel, ApiKey>> {
        AdminServiceClient::with_interceptor(self.channel().await, ApiKey::new(key))
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    /// Sends SIGKILL (kill -9): no cleanup at all.
    pub fn kill9(&self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.try_exit()
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(started.elapsed() < timeout, "brain-server did not exit within {timeout:?}:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a `brain-server` subcommand (e.g. `keys create`) against `db`; returns stdout, panics on failure.
pub fn run_cli(db: &TestDb, args: &[&str]) -> String {
    let output = run_server_command(Some(db), args, &[]);
    assert!(
        output.status.success(),
        "brain-server {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the server binary with `args` (plus `--database-url` of `db` when given) and extra
/// environment variables, in a temp dir, and returns whatever happened: for tests of exit codes
/// and messages.
pub fn run_server_command(db: Option<&TestDb>, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(server_binary());
    cmd.args(args);
    if let Some(db) = db {
        cmd.arg("--database-url").arg(&db.url);
    }
    cmd.arg("--log-format").arg("json").current_dir(db.map_or(dir.path(), |db| db.dir.path())).stdin(Stdio::null());
    hermetic_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run brain-server")
}

/// Removes the caller's `BRAIN_*` and `SENTRY_DSN` variables (the server reads them as settings),
/// so a developer's shell cannot change what the tests run.
fn hermetic_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("BRAIN_") || text == "SENTRY_DSN" {
            cmd.env_remove(&name);
        }
    }
}

/// Creates an API key for `tenant` with the real CLI and returns it.
pub fn create_key(db: &TestDb, tenant: &str) -> String {
    let out = run_cli(db, &["keys", "create", "--tenant", tenant]);
    let key = out.trim().to_owned();
    assert!(key.starts_with("brk_"), "unexpected key output: {out}");
    key
}

/// Creates an admin key (AdminService only) with `brain-server keys create --admin`.
pub fn create_admin_key(db: &TestDb) -> String {
    let out = run_cli(db, &["keys", "create", "--admin"]);
    let key = out.trim().to_owned();
    assert!(key.starts_with("brk_"), "unexpected key output: {out}");
    key
}

/// Adds `authorization: Bearer KEY` to every call (nothing when None).
#[derive(Clone)]
pub struct ApiKey(Option<MetadataValue<tonic::metadata::Ascii>>);

impl ApiKey {
    /// An interceptor for `key`.
    pub fn new(key: Option<&str>) -> Self {
        Self(key.map(|k| format!("Bearer {k}").parse().expect("ascii key")))
    }
}

impl Interceptor for ApiKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Asserts a call failed with `code` and ErrorInfo `reason` (domain brain.v1); returns the status.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, reason: &str) -> Status {
    let status = match result {
        Ok(v) => panic!("expected {code:?}/{reason}, got success: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(status.code(), code, "wrong code: {status:?}");
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, brain_proto::ERROR_DOMAIN);
    assert_eq!(info.reason, reason, "wrong reason: {status:?}");
    status
}

/// The ErrorInfo reason of a status, when it has one.
pub fn error_reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|i| i.reason)
}

/// The `field` metadata of a status's ErrorInfo.
pub fn error_field(status: &Status) -> Option<String> {
    status.get_details_error_info().and_then(|i| i.metadata.get("field").cloned())
}

/// A codec that sends and receives message bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let len = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, len).to_vec()))
    }
}

/// When set, tests that use an external tool (`grpcurl`, `grpc_health_probe`) fail instead of
/// skipping that part if it is not installed. CI sets it.
pub const REQUIRE_TOOLS_ENV: &str = "BRAIN_TEST_REQUIRE_TOOLS";

/// A tool from PATH or from Go's default install directory (~/go/bin); None when absent (a panic
/// instead when `BRAIN_TEST_REQUIRE_TOOLS` is set).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    let found = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file());
    assert!(
        found.is_some() || std::env::var_os(REQUIRE_TOOLS_ENV).is_none(),
        "{name} is not installed and {REQUIRE_TOOLS_ENV} is set"
    );
    found
}

/// What a [`TcpProxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass bytes both ways.
    Forward,
    /// Hold every byte (a network partition): connections stay open, nothing arrives.
    Stall,
    /// Close every connection and refuse new ones: nothing listens on the port (the database
    /// server stopped).
    Refuse,
}

/// A TCP proxy on loopback that the test can stall or cut, to put a real network fault between
/// the server and PostgreSQL.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: tokio::sync::watch::Sender<ProxyMode>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding 127.0.0.1:<free port> to `target` (host:port).
    pub async fn start(target: &str) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, _) = tokio::sync::watch::channel(ProxyMode::Forward);
        let target = target.to_owned();
        let modes = mode.clone();
        let task = tokio::spawn(async move {
            let mut changes = modes.subscribe();
            let mut listener = Some(listener);
            loop {
                let Some(open) = listener.as_ref() else {
                    // Refusing: no socket listens, so connection attempts are refused as by a
                    // stopped server. Listen again on the same port once the mode changes.
                    if changes.changed().await.is_err() {
                        return;
                    }
                    if *changes.borrow_and_update() != ProxyMode::Refuse {
                        listener = rebind(addr).await;
                    }
                    continue;
                };
                tokio::select! {
                    accepted = open.accept() => {
                        let Ok((client, _)) = accepted else { return };
                        let target = target.clone();
                        let modes = modes.clone();
                        tokio::spawn(async move {
                            let Ok(upstream) = tokio::net::TcpStream::connect(&target).await else { return };
                            let (client_read, client_write) = client.into_split();
                            let (upstream_read, upstream_write) = upstream.into_split();
                            let there = pump(client_read, upstream_write, modes.subscribe());
                            let back = pump(upstream_read, client_write, modes.subscribe());
                            // Either direction ending (EOF, error or Refuse) closes both.
                            tokio::select! {
                                () = there => {}
                                () = back => {}
                            }
                        });
                    }
                    changed = changes.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if *changes.borrow_and_update() == ProxyMode::Refuse {
                            listener = None;
                        }
                    }
                }
            }
        });
        TcpProxy { addr, mode, task }
    }

    /// Changes what the proxy does, for existing and new connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.set_mode(ProxyMode::Refuse);
        self.task.abort();
    }
}

/// Listens on `addr` again after a refusal (the port was ours a moment ago; retried briefly).
async fn rebind(addr: SocketAddr) -> Option<tokio::net::TcpListener> {
    for _ in 0..50 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: tokio::sync::watch::Receiver<ProxyMode>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Hold everything while stalled; give up when cut.
        loop {
            match *mode.borrow_and_update() {
                ProxyMode::Forward => break,
                ProxyMode::Refuse => return,
                ProxyMode::Stall => {}
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Bytes read just before a stall are held too.
        loop {
            match *mode.borrow_and_update() {
                ProxyMode::Forward => break,
                ProxyMode::Refuse => return,
                ProxyMode::Stall => {}
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A minimal HTTP/1.1 GET (the operator port speaks plain HTTP/1.1): status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the metrics port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}
