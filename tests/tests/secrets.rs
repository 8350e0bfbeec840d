//! No secret reaches a log line, an error-tracking event or an error sent to a client: not the
//! database password (in the URL's userinfo or its `sslpassword=` parameter), not the OpenAI key
//! or the credentials in its base URL, not the Sentry DSN's key, not a brain API key.
//!
//! Every secret is a marker. The server runs at `log_level=trace` (every crate, every level)
//! while errors are driven through the paths that handle those secrets: a database that refuses
//! connections, a wrong database password, a database that goes away under a running server, a
//! model endpoint that fails and echoes the credentials it was sent, an unknown API key. Then the whole log,
//! the CLI's output, every status a client received and every request error tracking received are
//! searched for the markers: zero hits.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::HeaderMap, routing::post};
use brain_e2e::{
    Backend, ProxyMode, Server, ServerOptions, TcpProxy, TestDb, backend_tests, create_key, run_server_command,
    sentry::FakeSentry,
};
use brain_proto::v1::{
    AnalyzeImagesRequest, CreateProjectRequest, EventType, ListProjectsRequest, OrchestrateRequest,
    WatchImageFactsRequest,
};
use common::*;
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;

const DB_PASSWORD: &str = "DbPw-MARK-3r9x";
const SSL_PASSWORD: &str = "SslPw-MARK-4q7z";
const OPENAI_KEY: &str = "AzKey-MARK-6t1y";
const PROXY_PASSWORD: &str = "ProxyPw-MARK-7u2i";
/// `proxy:{PROXY_PASSWORD}` in base64: the `Basic` credentials an HTTP client sends for userinfo.
const PROXY_BASIC: &str = "cHJveHk6UHJveHlQdy1NQVJLLTd1Mmk=";
const SENTRY_KEY: &str = "SentryKeyMARK8i3o";
/// A well-formed brain API key that no tenant has.
const UNKNOWN_API_KEY: &str = "brk_UnknownKeyMARK0123456789abcdefghijklmnopqrs";

const WAIT: Duration = Duration::from_secs(30);

/// Every place a marker may not appear in, with the markers it may not contain.
#[track_caller]
fn assert_clean(what: &str, text: &str, markers: &[&str]) {
    for marker in markers {
        let hits = text.matches(marker).count();
        assert_eq!(hits, 0, "{marker} appears {hits} times in {what}:\n{text}");
    }
}

/// The text of a status a client received: message and every ErrorInfo entry.
fn shown_to_client(status: &Status) -> String {
    let info = tonic_types::StatusExt::get_details_error_info(status);
    format!("{} {:?}", status.message(), info)
}

/// A free loopback port nobody listens on.
async fn refused_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// (user, password, host:port, database) of a PostgreSQL URL.
fn postgres_parts(url: &str) -> (String, String, String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (userinfo, rest) = rest.rsplit_once('@').expect("a URL with user info");
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (host, database) = rest.split_once('/').expect("a database name");
    let database = database.split('?').next().unwrap_or_default();
    (user.into(), password.into(), host.into(), database.into())
}

/// Waits until the log has `n` lines containing `needle`; panics with the log after WAIT.
async fn wait_for_log(server: &Server, needle: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while server.logs().matches(needle).count() < n {
        assert!(tokio::time::Instant::now() < deadline, "no {n}x '{needle}' in the log:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three ListProjects calls while the store is away: each is UNAVAILABLE; returns the statuses.
async fn statuses_without_a_store(server: &Server, api_key: Option<&str>) -> Vec<Status> {
    let mut projects = server.projects(api_key).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let status = projects
            .list_projects(ListProjectsRequest { page_size: 10, page_token: String::new() })
            .await
            .expect_err("no store, no projects");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        statuses.push(status);
    }
    statuses
}

/// A server whose store cannot be reached through `database_url` (at trace level): its log, the
/// statuses clients get while it waits, and its CLI's output never show the URL's secrets.
async fn check_store_failure(db: &Arc<TestDb>, database_url: &str, expect_in_log: &str) {
    let markers = [DB_PASSWORD, SSL_PASSWORD];
    let mut server = Server::start_with(
        db,
        ServerOptions { wait_serving: false, ..ServerOptions::new() }
            .set("database_url", database_url)
            .set("log_level", "trace")
            .set("db_acquire_timeout_ms", 1_000),
    )
    .await;
    // The store is retried with backoff; three failed attempts went through every error path.
    wait_for_log(&server, "store not ready", 3).await;
    assert!(server.logs().contains(expect_in_log), "the driver's own error was logged:\n{}", server.logs());
    assert_eq!(server.health("").await.expect("health"), ServingStatus::NotServing);
    for status in statuses_without_a_store(&server, None).await {
        assert_clean("a status sent to the client", &shown_to_client(&status), &markers);
    }
    server.sigterm();
    server.wait_exit(WAIT).await;
    let logs = server.logs();
    assert!(logs.contains("\"level\":\"TRACE\""), "the server logged at trace level:\n{logs}");
    assert_clean("the server log", &logs, &markers);

    // The CLI: a failed migration prints its error; `config` prints the settings.
    for args in [vec!["migrate"], vec!["config"]] {
        let mut args = args;
        args.extend([
            "--database-url",
            database_url,
            "--set",
            "log_level=trace",
            "--set",
            "db_acquire_timeout_ms=1000",
        ]);
        let output = run_server_command(None, &args, &[]);
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert_eq!(output.status.success(), args[0] == "config", "brain-server {args:?}:\n{printed}");
        assert_clean(&format!("the output of brain-server {}", args[0]), &printed, &markers);
    }
}

/// A PostgreSQL URL with a marker password (and a marker `sslpassword=`, which the driver logs as
/// an unrecognised parameter) pointing at a port nobody listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_never_shows_its_password() {
    let db = TestDb::sqlite().await;
    let port = refused_port().await;
    let url = format!("postgres://brain:{DB_PASSWORD}@127.0.0.1:{port}/brain?sslpassword={SSL_PASSWORD}");
    check_store_failure(&db, &url, "Connection pool timed out").await;
}

/// The real PostgreSQL, reached with a marker password it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
async fn a_wrong_database_password_is_never_shown() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped a_wrong_database_password_is_never_shown: {} is not set", brain_e2e::POSTGRES_ENV);
        return;
    };
    let (user, _, host, database) = postgres_parts(&db.url);
    let url = format!("postgres://{user}:{DB_PASSWORD}@{host}/{database}?sslpassword={SSL_PASSWORD}");
    check_store_failure(&db, &url, "password authentication failed").await;
}

/// A loopback stand-in of an OpenAI-compatible API (or the proxy in front of it) that fails every
/// call with 500 and quotes the credentials it was sent in its error message, as OpenAI's own
/// "Incorrect API key provided" does. Returns its address and a call counter.
async fn failing_model_api() -> (std::net::SocketAddr, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let body = serde_json::json!({"error": {
                    "message": format!("Incorrect API key provided: {sent}. You can find your API key at https://platform.openai.com/account/api-keys."),
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }});
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "application/json")], body.to_string())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the model stand-in");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, calls)
}

/// Creates a project, orchestrates a prompt (the decision model fails: the rules decide) and
/// analyses an image (the vision model fails: the pixel facts stand); returns the project id.
async fn drive_model_failures(server: &Server, api_key: &str, model_calls: &AtomicU32) -> String {
    let calls_before = model_calls.load(Ordering::SeqCst);
    let mut projects = server.projects(Some(api_key)).await;
    let project_id = projects
        .create_project(CreateProjectRequest { name: "Secrets".into(), description: String::new() })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
        .project_id;
    let mut orchestrator = server.orchestrator(Some(api_key)).await;
    orchestrator
        .orchestrate(OrchestrateRequest {
            project_id: project_id.clone(),
            prompt: "add a title scene".into(),
            ..Default::default()
        })
        .await
        .expect("the rules decide when the model fails");
    let mut images = server.image_facts(Some(api_key)).await;
    let mut stream = images
        .watch_image_facts(WatchImageFactsRequest {
            project_id: project_id.clone(),
            after_cursor: 0,
            orchestration_id: String::new(),
        })
        .await
        .expect("watch image facts")
        .into_inner();
    images
        .analyze_images(AnalyzeImagesRequest { project_id: project_id.clone(), images: vec![inline(png(), "shot")] })
        .await
        .expect("analyze images");
    while next_event(&mut stream, WAIT).await.r#type() != EventType::ImageFactsReady {}
    assert!(model_calls.load(Ordering::SeqCst) >= calls_before + 2, "both models were called");
    project_id
}

/// A running server at trace level with every secret configured: the decision and vision models
/// fail and echo the credentials they were sent (first behind a base URL with userinfo, which
/// the HTTP client sends as `Basic` credentials, then with the API key as `Bearer`), a client
/// sends an unknown API key, and (PostgreSQL) the database goes away and comes back under it.
/// Nothing secret in the log, in error tracking or in any status.
async fn a_running_server_never_logs_a_secret(db: Arc<TestDb>) {
    let (model, model_calls) = failing_model_api().await;
    let sentry = FakeSentry::start().await;
    let api_key = create_key(&db, "acme");
    let api_key_body = api_key.trim_start_matches("brk_").to_owned();
    let options = |base_url: String| {
        ServerOptions::new()
            .set("log_level", "trace")
            .set("decider", "openai")
            .set("vision", "openai")
            .set("openai_base_url", base_url)
            .set("openai_api_key", OPENAI_KEY)
            .set("openai_max_retries", 0)
            .set("job_workers", 1)
            .set("job_poll_interval_ms", 200)
            .env("SENTRY_DSN", format!("http://{SENTRY_KEY}@127.0.0.1:{}/1", sentry.port))
    };
    let mut with_userinfo = options(format!("http://proxy:{PROXY_PASSWORD}@{model}/v1"));
    // PostgreSQL: the URL carries marker secrets (the `password` parameter, which the driver
    // prefers, carries the real one) and goes through a proxy the test can cut.
    let proxy = match db.backend {
        Backend::Postgres => {
            let proxy = TcpProxy::start(&db.postgres_host_port()).await;
            let (user, real_password, _, database) = postgres_parts(&db.url);
            with_userinfo = with_userinfo.set(
                "database_url",
                format!(
                    "postgres://{user}:{DB_PASSWORD}@{}/{database}?password={real_password}&sslpassword={SSL_PASSWORD}",
                    proxy.addr
                ),
            );
            Some(proxy)
        }
        Backend::Sqlite => None,
    };
    let mut statuses = Vec::new();
    let mut logs = String::new();

    let server = Server::start_with(&db, with_userinfo).await;
    drive_model_failures(&server, &api_key, &model_calls).await;
    let mut stranger = server.projects(Some(UNKNOWN_API_KEY)).await;
    let refused = stranger
        .list_projects(ListProjectsRequest { page_size: 10, page_token: String::new() })
        .await
        .expect_err("unknown key");
    assert_eq!(refused.code(), Code::Unauthenticated);
    statuses.push(refused);
    if let Some(proxy) = &proxy {
        // The database goes away under the running server, then comes back.
        proxy.set_mode(ProxyMode::Refuse);
        server.wait_health("", ServingStatus::NotServing, WAIT).await;
        statuses.extend(statuses_without_a_store(&server, Some(&api_key)).await);
        wait_for_log(&server, "cannot listen for events", 1).await;
        proxy.set_mode(ProxyMode::Forward);
        server.wait_health("", ServingStatus::Serving, WAIT).await;
    }
    // Let the last lines out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    logs.push_str(&server.logs());
    drop(server);

    // The API key travels as `Bearer` when the base URL has no userinfo; the model echoes it.
    let server = Server::start_with(&db, options(format!("http://{model}/v1"))).await;
    drive_model_failures(&server, &api_key, &model_calls).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    logs.push_str(&server.logs());

    assert!(logs.contains("\"level\":\"TRACE\""), "the server logged at trace level");
    let echoed = logs.matches("Incorrect API key provided").count();
    assert!(echoed >= 2, "the decider logged both echoes ({echoed}):\n{logs}");
    let everywhere = [
        DB_PASSWORD,
        SSL_PASSWORD,
        OPENAI_KEY,
        PROXY_PASSWORD,
        PROXY_BASIC,
        SENTRY_KEY,
        &api_key_body,
        UNKNOWN_API_KEY,
    ];
    assert_clean("the server log", &logs, &everywhere);
    for status in &statuses {
        assert_clean("a status sent to a client", &shown_to_client(status), &everywhere);
    }
    // The DSN's key is how error tracking authenticates, so it travels to Sentry by design; nothing else does.
    let not_to_sentry: Vec<&str> = everywhere.iter().copied().filter(|m| *m != SENTRY_KEY).collect();
    for request in sentry.requests() {
        assert_clean("a request to error tracking", &String::from_utf8_lossy(&request.body), &not_to_sentry);
    }
}

backend_tests!(a_running_server_never_logs_a_secret);
