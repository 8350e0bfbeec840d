//! Gives a project a long history straight in its database (set-based SQL, seconds
//! for 100,000 rows), for tests and benchmarks that need one: the query-plan test
//! and the history benchmark.

use brain_server::context::{render, tokens};
use sea_orm::{ConnectionTrait, Statement};

use crate::{Backend, TestDb};

/// A seeded turn's prompt and decision.
const TURN_PROMPT: &str = "make the intro red";
const TURN_SUMMARY: &str = "editScene intro";
/// Digits of a seeded memory key's number, zero-padded so every key counts the same tokens.
const KEY_DIGITS: usize = 6;

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
    assert!(turns.max(memories).max(analyses).max(events) < 10usize.pow(KEY_DIGITS as u32), "too many rows to seed");
    // Rows look as the server writes them: dated in the last minutes (i milliseconds apart, the
    // newest now), so retention and recency treat them as recent history, with the token counts
    // the server would have stored.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let base = now - turns.max(memories).max(analyses).max(events) as i64 - 1;
    let turn_tokens = tokens::count(&render::turn_lines(TURN_PROMPT, TURN_SUMMARY));
    let key_of = |i: usize| format!("seed-key-{i:0width$}", width = KEY_DIGITS);
    let memory_tokens = tokens::count(&render::memory_line(&key_of(1), "value", 0.5));
    for i in [memories / 2, memories] {
        assert_eq!(tokens::count(&render::memory_line(&key_of(i), "value", 0.5)), memory_tokens, "key {i}");
    }
    let padded_key = match db.backend {
        Backend::Sqlite => format!("printf('seed-key-%0{KEY_DIGITS}d', i)"),
        Backend::Postgres => format!("'seed-key-' || lpad(i::text, {KEY_DIGITS}, '0')"),
    };
    let mut statements = vec![
        series(
            turns,
            "INSERT INTO conversation_turns (id, tenant_id, project_id, orchestration_id, prompt, decision_summary, token_count, archived, created_at)",
            &format!(
                "SELECT 'seed-turn-{project_id}-' || i, '{tenant}', '{project_id}', NULL, '{TURN_PROMPT}', '{TURN_SUMMARY}', {turn_tokens}, i < {}, {base} + i",
                turns / 2
            ),
        ),
        series(
            memories,
            "INSERT INTO memories (id, tenant_id, project_id, memory_type, key, value, confidence, source, source_prompt, token_count, occurrences, expires_at, created_at, updated_at)",
            &format!(
                "SELECT 'seed-mem-{project_id}-' || i, '{tenant}', '{project_id}', 'user_preference', {padded_key}, 'value', 0.5, 'api', NULL, {memory_tokens}, 1, NULL, {base} + i, {base} + i"
            ),
        ),
        series(
            analyses,
            "INSERT INTO image_analyses (project_id, image_id, tenant_id, orchestration_id, status, source_url, mime_type, byte_size, facts, analyzer, processing_ms, error, attempts, created_at, completed_at)",
            &format!(
                "SELECT '{project_id}', 'seed-img-' || i, '{tenant}', NULL, 'failed', NULL, 'image/png', 10, NULL, NULL, NULL, 'seeded', 1, {base} + i, {base} + i"
            ),
        ),
    ];
    if events > 0 {
        statements.push(series(
            events,
            "INSERT INTO events (tenant_id, project_id, cursor, event_type, image_id, orchestration_id, payload, created_at)",
            &format!(
                "SELECT '{tenant}', '{project_id}', i, 'image_facts_failed', 'seed-img-' || i, NULL, '{{\"error\":\"seeded\"}}', {base} + i"
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
