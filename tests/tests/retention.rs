//! AdminService.RunRetention: archives old turns, deletes expired memories,
//! old events and finished jobs, forgets old idempotency keys; dry runs change
//! nothing; other tenants' data is untouched. With `retention_interval_ms` the server runs the
//! same policy for every tenant by itself and counts the runs in /metrics.

use std::{sync::Arc, time::Duration};

use brain_e2e::{
    Server, ServerOptions, TestDb, assert_error, backend_tests, create_admin_key, create_key, create_project, http_get,
};
use brain_proto::v1::{CreateProjectRequest, MemoryType, PutMemoryRequest, RunRetentionRequest};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tonic::Code;

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.expect("query");
    row.expect("row").try_get_by_index::<i64>(0).expect("count")
}

async fn tenant_of(db: &DatabaseConnection, project_id: &str) -> String {
    let sql = format!("SELECT tenant_id FROM projects WHERE id = '{project_id}'");
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.expect("query");
    row.expect("row").try_get_by_index::<String>(0).expect("tenant")
}

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Seeds turns, events, jobs and orchestrations for a project, old and new.
async fn seed(db: &DatabaseConnection, tenant_id: &str, project_id: &str, tag: &str) {
    let now = now_ms();
    for i in 0..5 {
        // UUIDv7-like ordering: ids sort by creation.
        exec(db, &format!(
            "INSERT INTO conversation_turns (id, tenant_id, project_id, prompt, decision_summary, token_count, archived, created_at) \
             VALUES ('{tag}-turn-{i:03}', '{tenant_id}', '{project_id}', 'p', 'd', 3, false, {now})"
        )).await;
    }
    for (i, age) in [(1, 3 * HOUR), (2, 0)] {
        exec(
            db,
            &format!(
                "INSERT INTO events (tenant_id, project_id, cursor, event_type, payload, created_at) \
             VALUES ('{tenant_id}', '{project_id}', {i}, 'image_facts_ready', '{{}}', {})",
                now - age
            ),
        )
        .await;
    }
    for (i, status, finished) in [(1, "succeeded", Some(now - 3 * HOUR)), (2, "failed", Some(now)), (3, "queued", None)]
    {
        let finished = finished.map_or("NULL".to_string(), |f| f.to_string());
        exec(db, &format!(
            "INSERT INTO jobs (id, tenant_id, project_id, kind, subject_id, status, attempts, max_attempts, run_after, created_at, updated_at, finished_at) \
             VALUES ('{tag}-job-{i}', '{tenant_id}', '{project_id}', 'analyze_image', 'img', '{status}', 1, 5, {now}, {now}, {now}, {finished})"
        )).await;
    }
    for (i, age) in [(1, 30 * HOUR), (2, 0)] {
        exec(db, &format!(
            "INSERT INTO orchestrations (id, tenant_id, project_id, request_id, request_hash, response, tool, backend, degraded, image_count, response_ms, prompt_tokens, created_at) \
             VALUES ('{tag}-orch-{i}', '{tenant_id}', '{project_id}', '{tag}-req-{i}', 'h', '{{}}', 'addScene', 'rules', false, 0, 1.0, 10, {})", now - age
        )).await;
    }
}

async fn retention_applies_policy_per_tenant(db: Arc<TestDb>) {
    let key_a = create_key(&db, "tenant-a");
    let key_b = create_key(&db, "tenant-b");
    let admin_key = create_admin_key(&db);
    let server = Server::start_with(
        &db,
        ServerOptions::new()
            .set("retention_keep_turns", 2)
            .set("retention_event_hours", 1)
            .set("retention_job_hours", 1)
            .set("idempotency_window_hours", 24),
    )
    .await;
    let mut projects_a = server.projects(Some(&key_a)).await;
    let mut projects_b = server.projects(Some(&key_b)).await;
    let pa = projects_a
        .create_project(CreateProjectRequest { name: "A".into(), description: String::new() })
        .await
        .expect("create A")
        .into_inner()
        .project
        .expect("project");
    let pb = projects_b
        .create_project(CreateProjectRequest { name: "B".into(), description: String::new() })
        .await
        .expect("create B")
        .into_inner()
        .project
        .expect("project");
    for (key, ttl_nanos) in [("short", Some(1_000_000)), ("forever", None)] {
        projects_a
            .put_memory(PutMemoryRequest {
                project_id: pa.project_id.clone(),
                r#type: MemoryType::UserPreference as i32,
                key: key.into(),
                value: "v".into(),
                confidence: None,
                ttl: ttl_nanos.map(|n| prost_types::Duration { seconds: 0, nanos: n }),
            })
            .await
            .expect("put memory");
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    let sql = Database::connect(&db.url).await.expect("connect");
    let tenant_a = tenant_of(&sql, &pa.project_id).await;
    let tenant_b = tenant_of(&sql, &pb.project_id).await;
    seed(&sql, &tenant_a, &pa.project_id, "a").await;
    seed(&sql, &tenant_b, &pb.project_id, "b").await;

    // A tenant's key cannot call AdminService, not even for its own tenant.
    let mut tenant_a = server.admin(Some(&key_a)).await;
    let own = RunRetentionRequest { dry_run: true, project_id: String::new(), tenant: "tenant-a".into() };
    assert_error(tenant_a.run_retention(own).await, Code::PermissionDenied, "ADMIN_KEY_REQUIRED");
    let mut admin_a = server.admin(Some(&admin_key)).await;
    let dry = admin_a
        .run_retention(RunRetentionRequest { dry_run: true, project_id: String::new(), tenant: "tenant-a".into() })
        .await
        .expect("dry run")
        .into_inner();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.archived_turns, dry.deleted_memories, dry.deleted_events, dry.deleted_jobs, dry.expired_request_ids),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(count(&sql, "SELECT COUNT(*) FROM conversation_turns WHERE archived = true").await, 0, "dry run wrote");

    let run = admin_a
        .run_retention(RunRetentionRequest {
            dry_run: false,
            project_id: pa.project_id.clone(),
            tenant: "tenant-a".into(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(
        (run.archived_turns, run.deleted_memories, run.deleted_events, run.deleted_jobs, run.expired_request_ids),
        (3, 1, 1, 1, 1)
    );
    let a = &pa.project_id;
    let b = &pb.project_id;
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM conversation_turns WHERE project_id = '{a}' AND archived = false"))
            .await,
        2,
        "newest two turns stay live"
    );
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM conversation_turns WHERE project_id = '{a}' AND archived = false AND id IN ('a-turn-003', 'a-turn-004')")).await,
        2,
        "the kept turns are the newest"
    );
    assert_eq!(count(&sql, &format!("SELECT COUNT(*) FROM memories WHERE project_id = '{a}'")).await, 1);
    assert_eq!(count(&sql, &format!("SELECT COUNT(*) FROM events WHERE project_id = '{a}'")).await, 1);
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM jobs WHERE project_id = '{a}'")).await,
        2,
        "recent and queued jobs stay"
    );
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM orchestrations WHERE project_id = '{a}' AND request_id IS NULL"))
            .await,
        1
    );
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM orchestrations WHERE project_id = '{a}' AND response = ''")).await,
        1,
        "an expired key's stored response goes with it"
    );
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM orchestrations WHERE project_id = '{a}'")).await,
        2,
        "records stay"
    );

    // Tenant B's rows are untouched by tenant A's run.
    assert_eq!(
        count(&sql, &format!("SELECT COUNT(*) FROM conversation_turns WHERE project_id = '{b}' AND archived = false"))
            .await,
        5
    );
    assert_eq!(count(&sql, &format!("SELECT COUNT(*) FROM events WHERE project_id = '{b}'")).await, 2);

    // A second run has nothing left to do.
    let again = admin_a
        .run_retention(RunRetentionRequest { dry_run: false, project_id: String::new(), tenant: "tenant-a".into() })
        .await
        .expect("run again")
        .into_inner();
    assert_eq!((again.archived_turns, again.deleted_events, again.deleted_jobs), (0, 0, 0));

    // Another tenant's project is not found; a malformed id is invalid.
    assert_error(
        admin_a
            .run_retention(RunRetentionRequest {
                dry_run: true,
                project_id: pb.project_id.clone(),
                tenant: "tenant-a".into(),
            })
            .await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );
    assert_error(
        admin_a
            .run_retention(RunRetentionRequest {
                dry_run: true,
                project_id: "bad id".into(),
                tenant: "tenant-a".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ID",
    );
}

/// The value of the metric line that starts with `series` (name and labels), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `/metrics` once `series` reaches `at_least` (or after 2.5 s, for the caller's assertions to
/// say what is missing).
async fn metrics_once(addr: std::net::SocketAddr, series: &str, at_least: f64) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(addr, "/metrics").await.1;
        if metric(&text, series).unwrap_or(0.0) >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}

/// Backdated rows of two tenants disappear with no RunRetention call, and /metrics counts the runs
/// and what they removed.
async fn retention_runs_by_itself(db: Arc<TestDb>) {
    let key_a = create_key(&db, "tenant-a");
    let key_b = create_key(&db, "tenant-b");
    let server = Server::start_with(
        &db,
        ServerOptions::new()
            .set("retention_interval_ms", 200)
            .set("retention_keep_turns", 2)
            .set("retention_event_hours", 1)
            .set("retention_job_hours", 1)
            .set("idempotency_window_hours", 24)
            .set("metrics_addr", "127.0.0.1:0"),
    )
    .await;
    let mut project_ids = Vec::new();
    for (key, name) in [(&key_a, "A"), (&key_b, "B")] {
        let mut projects = server.projects(Some(key)).await;
        project_ids.push(create_project(&mut projects, name).await.project_id);
    }
    let sql = Database::connect(&db.url).await.expect("connect");
    for (tag, project_id) in ["a", "b"].into_iter().zip(&project_ids) {
        let tenant = tenant_of(&sql, project_id).await;
        seed(&sql, &tenant, project_id, tag).await;
    }

    // Each tenant has 1 old event, 1 old finished job, 3 turns beyond the kept 2 and 1 old key.
    let remaining = || async {
        (
            count(&sql, "SELECT COUNT(*) FROM events").await,
            count(&sql, "SELECT COUNT(*) FROM jobs").await,
            count(&sql, "SELECT COUNT(*) FROM conversation_turns WHERE archived = false").await,
            count(&sql, "SELECT COUNT(*) FROM orchestrations WHERE request_id IS NOT NULL").await,
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut now = remaining().await;
    while now != (2, 4, 4, 2) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = remaining().await;
    }
    assert_eq!(now, (2, 4, 4, 2), "(events, jobs, live turns, idempotency keys) after scheduled runs");
    assert!(server.logs().contains("scheduled retention run"), "each run logs one line");

    // The counters include the run that removed the rows (later runs add zeros).
    let metrics_addr = server.metrics_addr().expect("metrics address");
    let text = metrics_once(metrics_addr, "brain_retention_deleted_total{kind=\"events\"}", 2.0).await;
    assert!(metric(&text, "brain_retention_runs_total").unwrap_or(0.0) >= 1.0, "{text}");
    for (kind, rows) in [("events", 2.0), ("jobs", 2.0), ("turns", 6.0), ("request_ids", 2.0)] {
        let series = format!("brain_retention_deleted_total{{kind=\"{kind}\"}}");
        assert_eq!(metric(&text, &series), Some(rows), "{series} in {text}");
    }
    // The dashboard's retention line reads the last run from /api/retention.
    let (status, body) = http_get(metrics_addr, "/api/retention").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["interval_ms"], 200);
    let run = &json["last_run"];
    assert_eq!(run["tenants"], 2, "{body}");
    assert!(run["finished_at_ms"].as_i64().unwrap_or(0) > 0, "{body}");
    assert!(run["removed"].as_array().is_some_and(|kinds| kinds.len() == 7), "{body}");
}

backend_tests!(retention_applies_policy_per_tenant, retention_runs_by_itself, retention_by_age_and_activity);

/// Two PostgreSQL replicas share the advisory lock: while something else holds it, neither runs
/// retention (old rows stay through many intervals); once it is free, one of them does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(brain_postgres), ignore = "BRAIN_TEST_POSTGRES_URL was not set when the tests were built")]
async fn postgres_replicas_run_retention_under_one_lock() {
    use sea_orm::TransactionTrait;

    /// The server's retention lock key (store/retention.rs): the migration lock's key plus one.
    const RETENTION_LOCK_KEY: i64 = 0x6272_6169_6e01;
    let Some(db) = TestDb::postgres().await else {
        eprintln!("skipped: {} is not set", brain_e2e::POSTGRES_ENV);
        return;
    };
    let key = create_key(&db, "tenant-a");
    let options = || {
        ServerOptions::new()
            .set("retention_interval_ms", 100)
            .set("retention_keep_turns", 2)
            .set("retention_event_hours", 1)
            .set("retention_job_hours", 1)
    };
    let first = Server::start_with(&db, options()).await;
    let _second = Server::start_with(&db, options()).await;
    let mut projects = first.projects(Some(&key)).await;
    let project = projects
        .create_project(CreateProjectRequest { name: "A".into(), description: String::new() })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");

    let sql = Database::connect(&db.url).await.expect("connect");
    let holder = sql.begin().await.expect("begin");
    holder
        .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({RETENTION_LOCK_KEY})"))
        .await
        .expect("take the retention lock");
    let tenant = tenant_of(&sql, &project.project_id).await;
    seed(&sql, &tenant, &project.project_id, "a").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(count(&sql, "SELECT COUNT(*) FROM events").await, 2, "no replica ran while the lock was held");

    holder.rollback().await.expect("release the lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while count(&sql, "SELECT COUNT(*) FROM events").await != 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&sql, "SELECT COUNT(*) FROM events").await, 1, "a replica ran once the lock was free");
    assert_eq!(count(&sql, "SELECT COUNT(*) FROM conversation_turns WHERE archived = false").await, 2);
}

/// The age and activity policies: finished image analyses older than `retention_image_days` go
/// unless the project was active within `retention_active_project_days`; turns older than
/// `retention_archive_turn_days` are archived in every project; in a project inactive for
/// `retention_inactive_project_days`, memory below `retention_min_confidence` goes.
async fn retention_by_age_and_activity(db: Arc<TestDb>) {
    let server = Server::start_with(
        &db,
        ServerOptions::new().set("retention_interval_ms", 200).set("metrics_addr", "127.0.0.1:0"),
    )
    .await;
    let mut projects = server.projects(None).await;
    let idle = &create_project(&mut projects, "idle").await.project_id;
    let busy = &create_project(&mut projects, "busy").await.project_id;
    let sql = Database::connect(&db.url).await.expect("connect");
    let now = now_ms();
    let day = 24 * HOUR;
    for project_id in [idle, busy] {
        let tenant = tenant_of(&sql, project_id).await;
        for (image, status, age) in [
            ("old-ready", "ready", 40),
            ("old-failed", "failed", 40),
            ("old-pending", "pending", 40),
            ("new-ready", "ready", 1),
        ] {
            let at = now - age * day;
            exec(&sql, &format!(
                "INSERT INTO image_analyses (project_id, image_id, tenant_id, status, attempts, created_at, completed_at) \
                 VALUES ('{project_id}', '{image}', '{tenant}', '{status}', 1, {at}, {at})"
            )).await;
        }
        for (turn, age) in [("ancient", 100), ("recent", 1)] {
            exec(&sql, &format!(
                "INSERT INTO conversation_turns (id, tenant_id, project_id, prompt, decision_summary, token_count, archived, created_at) \
                 VALUES ('{project_id}-{turn}', '{tenant}', '{project_id}', 'p', 'd', 3, false, {})", now - age * day
            )).await;
        }
        for (key, confidence) in [("unsure", 0.1), ("sure", 0.9)] {
            exec(&sql, &format!(
                "INSERT INTO memories (id, tenant_id, project_id, memory_type, key, value, confidence, source, token_count, occurrences, created_at, updated_at) \
                 VALUES ('{project_id}-{key}', '{tenant}', '{project_id}', 'user_preference', '{key}', 'v', {confidence}, 'api', 4, 1, {now}, {now})"
            )).await;
        }
    }
    // The idle project last changed 200 days ago; the busy one just now.
    exec(&sql, &format!("UPDATE projects SET updated_at = {} WHERE id = '{idle}'", now - 200 * day)).await;

    let state = |project_id: String| {
        let sql = &sql;
        async move {
            let of = |table: &str, extra: &str| {
                format!("SELECT COUNT(*) FROM {table} WHERE project_id = '{project_id}'{extra}")
            };
            (
                count(sql, &of("image_analyses", "")).await,
                count(sql, &of("conversation_turns", " AND archived = false")).await,
                count(sql, &of("memories", "")).await,
            )
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while state(idle.clone()).await != (2, 1, 1) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state(idle.clone()).await, (2, 1, 1), "idle: (analyses: pending and new, live turns, memories)");
    assert_eq!(state(busy.clone()).await, (4, 1, 2), "busy: analyses and memory kept, the old turn archived");
    let kept = count(&sql, &format!("SELECT COUNT(*) FROM image_analyses WHERE project_id = '{idle}' AND image_id IN ('old-pending', 'new-ready')")).await;
    assert_eq!(kept, 2, "a pending analysis is never removed, however old");

    // The run that removed the rows counts them just after its commit.
    let metrics_addr = server.metrics_addr().expect("metrics address");
    let series = "brain_retention_deleted_total{kind=\"low_confidence_memories\"}";
    let text = metrics_once(metrics_addr, series, 1.0).await;
    for (kind, rows) in [("image_analyses", 2.0), ("low_confidence_memories", 1.0)] {
        let series = format!("brain_retention_deleted_total{{kind=\"{kind}\"}}");
        assert_eq!(metric(&text, &series), Some(rows), "{series} in {text}");
    }
}
