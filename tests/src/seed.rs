//! Gives a project a long history straight in its database (set-based SQL, seconds
//! for 100,000 rows), for tests and benchmarks that need one: the query-plan test
//! and the history benchmark.

use sea_orm::{ConnectionTrait, Statement};

use crate::{Backend, TestDb};

/// How many rows of each kind a seeded project gets.
#[derive(Debug, Clone, Copy)]
pub struct History {
    /// Conversation turns, the older half archived.
    pub turns: usize,
    /// User preferences with distinct keys.
    pub memories: usize,
    /// Failed image analyses.
    pub analyses: usize,
    /// `image_facts_failed` events, cursors 1..=events; the project's cursor is set after them.
    pub events: usize,
}

/// Adds `history` to `project_id` (which must exist and have no events yet).
pub async fn history(db: &TestDb, project_id: &str, history: History) {
    let conn = db.connect().await;
    let backend = conn.get_database_backend();
    let tenant: String = conn
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT tenant_id FROM projects WHERE id = '{project_id}'"),
        ))
        .await
        .expect("query")
        .expect("project row")
        .try_get_by_index(0)
        .expect("tenant");
    // INSERT ... SELECT over 1..=n, in each backend's spelling; nothing for n = 0.
    let series = |n: usize, insert: &str, select: &str| match db.backend {
        _ if n == 0 => String::new(),
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) {insert} {select} FROM n"
        ),
        Backend::Postgres => format!("{insert} {select} FROM generate_series(1, {n}) AS n(i)"),
    };
    let History { turns, memories, analyses, events } = history;
    let mut statements = vec![
        series(
            turns,
            "INSERT INTO conversation_turns (id, tenant_id, project_id, orchestration_id, prompt, decision_summary, token_count, archived, created_at)",
            &format!(
                "SELECT 'seed-turn-{project_id}-' || i, '{tenant}', '{project_id}', NULL, 'make the intro red', 'editScene intro', 12, i < {}, 1000 + i",
                turns / 2
            ),
        ),
        series(
            memories,
            "INSERT INTO memories (id, tenant_id, project_id, memory_type, key, value, confidence, source, source_prompt, token_count, occurrences, expires_at, created_at, updated_at)",
            &format!(
                "SELECT 'seed-mem-{project_id}-' || i, '{tenant}', '{project_id}', 'user_preference', 'seed-key-' || i, 'value', 0.5, 'api', NULL, 4, 1, NULL, 1000 + i, 1000 + i"
            ),
        ),
        series(
            analyses,
            "INSERT INTO image_analyses (project_id, image_id, tenant_id, orchestration_id, status, source_url, mime_type, byte_size, facts, analyzer, processing_ms, error, attempts, created_at, completed_at)",
            &format!(
                "SELECT '{project_id}', 'seed-img-' || i, '{tenant}', NULL, 'failed', NULL, 'image/png', 10, NULL, NULL, NULL, 'seeded', 1, 1000 + i, 1000 + i"
            ),
        ),
    ];
    if events > 0 {
        statements.push(series(
            events,
            "INSERT INTO events (tenant_id, project_id, cursor, event_type, image_id, orchestration_id, payload, created_at)",
            &format!(
                "SELECT '{tenant}', '{project_id}', i, 'image_facts_failed', 'seed-img-' || i, NULL, '{{\"error\":\"seeded\"}}', 1000 + i"
            ),
        ));
        statements.push(format!("UPDATE projects SET event_cursor = {events} WHERE id = '{project_id}'"));
    }
    if db.backend == Backend::Postgres {
        // A database that grew over months has planner statistics (autovacuum analyses it);
        // one filled in a second has none until autovacuum gets to it, and plans as if empty.
        statements.push("ANALYZE".into());
    }
    for sql in statements.iter().filter(|sql| !sql.is_empty()) {
        conn.execute_unprepared(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.close().await.ok();
}
