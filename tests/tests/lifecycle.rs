//! The process's life: SIGTERM reports NOT_SERVING, ends streams, drains in-flight calls and exits
//! 0; a non-loopback bind without keys is refused unless `--insecure`; configuration errors exit 2
//! with a message that names the problem; `migrate` and `config` do what they say.

use std::{sync::Arc, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, WriteBlocker, backend_tests, create_key, run_cli, run_server_command};
use brain_proto::v1::{CreateProjectRequest, ListProjectsRequest, UpsertSceneRequest};
use futures::StreamExt;
use sea_orm::ConnectionTrait;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// A call that is in flight when SIGTERM arrives finishes (and is committed) before the process
/// exits 0; new connections are refused once draining starts.
async fn sigterm_drains_in_flight_calls(db: Arc<TestDb>) {
    let mut server = Server::start_with(
        &db,
        ServerOptions::new().set("sqlite_busy_timeout_ms", 20_000).set("shutdown_grace_ms", 20_000),
    )
    .await;
    let mut client = server.projects(None).await;
    let project = client
        .create_project(CreateProjectRequest { name: "drain".into(), description: String::new() })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");

    let blocker = WriteBlocker::hold(&db, &project.project_id).await;
    let mut in_flight_client = client.clone();
    let pid = project.project_id.clone();
    let in_flight = tokio::spawn(async move {
        in_flight_client
            .upsert_scene(UpsertSceneRequest {
                project_id: pid,
                scene_id: "late".into(),
                name: "Written while draining".into(),
                ..Default::default()
            })
            .await
    });
    // Let the call reach the store and wait on the lock.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!in_flight.is_finished(), "the call should be waiting on the held lock");

    server.sigterm();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(server.try_wait(), None, "the server must wait for the in-flight call:\n{}", server.logs());
    blocker.release().await;

    let response = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .expect("the in-flight call finishes")
        .expect("task")
        .expect("the in-flight call succeeds");
    assert_eq!(response.into_inner().scene.map(|s| s.name).as_deref(), Some("Written while draining"));
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
    assert!(server.logs().contains("SIGTERM received"), "{}", server.logs());

    // It was committed.
    let server = Server::start(&db).await;
    let scenes = server
        .projects(None)
        .await
        .list_scenes(brain_proto::v1::ListScenesRequest { project_id: project.project_id, ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .scenes;
    assert_eq!(scenes.iter().map(|s| s.scene_id.as_str()).collect::<Vec<_>>(), ["late"]);
}

/// With `shutdown_delay_ms`, SIGTERM flips health to NOT_SERVING at once while RPCs are still
/// served (so load balancers stop sending first); health watchers get NOT_SERVING and their
/// stream ends; then the process exits 0.
async fn sigterm_reports_not_serving_then_exits(db: Arc<TestDb>) {
    let delay = Duration::from_millis(3000);
    let mut server = Server::start_with(&db, ServerOptions::new().set("shutdown_delay_ms", delay.as_millis())).await;
    let mut client = server.projects(None).await;
    let mut watch = server
        .health_client()
        .await
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("first status").expect("status");
    assert_eq!(first.status(), ServingStatus::Serving);

    let signalled = std::time::Instant::now();
    server.sigterm();
    let flipped = server.wait_health("", ServingStatus::NotServing, Duration::from_secs(5)).await;
    eprintln!("measured: SIGTERM -> NOT_SERVING in {} ms", flipped.as_millis());
    for service in brain_proto::SERVICE_NAMES {
        assert_eq!(server.health(service).await.expect("health"), ServingStatus::NotServing, "{service}");
    }
    // Still serving during the delay.
    client.list_projects(ListProjectsRequest::default()).await.expect("served during the shutdown delay");
    assert!(signalled.elapsed() < delay, "the checks above should fit in the delay");

    let update = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.expect("an update");
    assert_eq!(update.expect("open").expect("status").status(), ServingStatus::NotServing);
    let end = tokio::time::timeout(delay + Duration::from_secs(5), watch.next())
        .await
        .expect("the watch stream ends when the server shuts down");
    assert!(end.as_ref().is_none_or(|item| item.is_err()), "no more statuses after NOT_SERVING: {end:?}");

    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
    assert!(signalled.elapsed() >= delay, "exited before shutdown_delay_ms passed");
    assert!(signalled.elapsed() < delay + Duration::from_secs(8), "took {:?} to exit", signalled.elapsed());
}

/// kill -9 loses nothing that was acknowledged: a restarted server has it.
async fn kill9_keeps_acknowledged_writes(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = client
            .create_project(CreateProjectRequest { name: format!("p{i}"), description: String::new() })
            .await
            .expect("create")
            .into_inner()
            .project
            .expect("project");
        ids.push(p.project_id);
    }
    server.kill9();
    drop(server);
    let server = Server::start(&db).await;
    let listed: Vec<String> = server
        .projects(None)
        .await
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.project_id)
        .collect();
    assert_eq!(listed, ids);
}

backend_tests!(
    sigterm_drains_in_flight_calls,
    sigterm_reports_not_serving_then_exits,
    kill9_keeps_acknowledged_writes,
    migrate_command_is_idempotent,
);

/// Without API keys, binding anything but loopback is refused (exit 1, with the fix in the
/// message) unless `--insecure`; with a key it is allowed and keys are required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_needs_keys_or_insecure() {
    let db = TestDb::sqlite().await;
    let public = ServerOptions { listen_addr: Some("0.0.0.0:0".into()), wait_serving: false, ..ServerOptions::new() };

    // Nothing is bound: the server never gets as far as a ready file, so run it as a command.
    let refused = run_server_command(Some(&db), &["serve", "--listen-addr", "0.0.0.0:0"], &[]);
    let logs = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "exit status {}:\n{logs}", refused.status);
    assert!(logs.contains("refusing to serve on 0.0.0.0"), "{logs}");
    assert_eq!(logs.matches("refusing to serve").count(), 1, "said once:\n{logs}");
    assert!(!logs.contains("listening"), "refused before binding anything:\n{logs}");
    assert!(logs.contains("keys create") && logs.contains("--insecure"), "the message says how to fix it:\n{logs}");

    let mut insecure = public.clone();
    insecure.args.push("--insecure".into());
    insecure.wait_serving = true;
    let server = Server::start_with(&db, insecure).await;
    assert!(server.logs().contains("--insecure"), "it warns:\n{}", server.logs());
    server.projects(None).await.list_projects(ListProjectsRequest::default()).await.expect("open access");
    drop(server);

    let key = create_key(&db, "acme");
    let server = Server::start_with(&db, ServerOptions { wait_serving: true, ..public }).await;
    server.projects(Some(&key)).await.list_projects(ListProjectsRequest::default()).await.expect("with a key");
    brain_e2e::assert_error(
        server.projects(None).await.list_projects(ListProjectsRequest::default()).await,
        tonic::Code::Unauthenticated,
        "API_KEY_MISSING",
    );
}

/// Configuration problems stop the binary before it does anything, with exit code 2 and a
/// message naming every problem.
#[test]
fn config_errors_exit_2_with_clear_message() {
    /// Flags, environment, and what stderr must mention.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 7] = [
        (&["--set", "token_budget=0"], &[], &["token_budget", "128000"]),
        (&["--set", "token_budget=200000", "--set", "job_lease_ms=0"], &[], &["token_budget", "job_lease_ms"]),
        (&["--set", "no_such_setting=1"], &[], &["no_such_setting", "unknown setting"]),
        (&[], &[("BRAIN_TOKEN_BUGDET", "1000")], &["BRAIN_TOKEN_BUGDET", "unknown setting"]),
        (&[], &[("BRAIN_JOB_WORKERS", "many")], &["job_workers"]),
        (&["--listen-addr", "not-an-address"], &[], &["listen_addr"]),
        (&["--config", "/nonexistent/brain.toml"], &[], &["/nonexistent/brain.toml", "does not exist"]),
    ];
    for (args, env, expected) in cases {
        let output = run_server_command(None, args, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {}\n{stderr}", output.status);
        assert!(stderr.contains("invalid configuration"), "{args:?} {env:?}: {stderr}");
        for needle in expected {
            assert!(stderr.contains(needle), "{args:?} {env:?}: expected '{needle}' in:\n{stderr}");
        }
    }

    // A config file with a bad value is named too.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("brain.toml");
    std::fs::write(&file, "token_budget = \"lots\"\n").expect("write");
    let output = run_server_command(None, &["--config", file.to_str().expect("utf-8 path")], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("token_budget"), "{stderr}");
}

/// `brain-server config` prints the effective configuration with secrets redacted, after all
/// layers (file < env < flags) are applied.
#[test]
fn config_command_shows_layers_and_redacts_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("brain.toml");
    std::fs::write(&file, "token_budget = 1000\nrecent_turns = 3\njob_workers = 7\n").expect("write");
    let output = run_server_command(
        None,
        &[
            "config",
            "--config",
            file.to_str().expect("utf-8 path"),
            "--set",
            "job_workers=9",
            "--set",
            "openai_api_key=sk-very-secret",
            "--database-url",
            "postgres://brain:hunter2@db.internal:5432/brain",
        ],
        &[("BRAIN_RECENT_TURNS", "4"), ("BRAIN_JOB_WORKERS", "8")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for line in ["token_budget = 1000", "recent_turns = 4", "job_workers = 9", "openai_api_key = \"<redacted>\""] {
        assert!(stdout.lines().any(|l| l == line), "expected `{line}` in:\n{stdout}");
    }
    assert!(stdout.contains("postgres://brain:<redacted>@db.internal:5432/brain"), "{stdout}");
    assert!(!stdout.contains("sk-very-secret") && !stdout.contains("hunter2"), "a secret leaked:\n{stdout}");
}

/// `brain-server migrate` creates the schema and is idempotent.
async fn migrate_command_is_idempotent(db: Arc<TestDb>) {
    for _ in 0..2 {
        let out = run_cli(&db, &["migrate"]);
        assert!(out.contains("migrations applied"), "{out}");
    }
    let conn = db.connect().await;
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(backend, "SELECT version FROM seaql_migrations"))
        .await
        .expect("migrations table");
    assert!(!rows.is_empty());
    for table in ["tenants", "api_keys", "projects", "scenes", "memories", "jobs", "events"] {
        conn.query_all_raw(sea_orm::Statement::from_string(backend, format!("SELECT COUNT(*) FROM {table}")))
            .await
            .unwrap_or_else(|e| panic!("table {table} after migrate: {e}"));
    }
    conn.close().await.ok();
    // The server starts on the migrated database without migrating again.
    let server = Server::start(&db).await;
    assert_eq!(server.health("").await.expect("health"), ServingStatus::Serving);
}

/// A port that is taken is a clear startup error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let db = TestDb::sqlite().await;
    let output = run_server_command(Some(&db), &["--listen-addr", &addr], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
}
