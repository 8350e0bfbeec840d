//! SQLite's WAL is checkpointed beside the writer: the writer connection never
//! checkpoints inside a commit, and the server copies committed frames into the
//! database file every second. If that stopped, the WAL would grow without end
//! and the database file would never change; this test sees the file grow.

use std::time::{Duration, Instant};

use brain_e2e::{Server, TestDb};
use brain_proto::v1::{CreateProjectRequest, MemoryType, PutMemoryRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_reach_the_database_file_without_a_restart() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    let file = db.dir.path().join("brain.db");
    let mut projects = server.projects(None).await;
    let project_id = projects
        .create_project(CreateProjectRequest { name: "WAL".into(), ..Default::default() })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
        .project_id;
    // Let the migrations' frames land first, so what follows is the writes' own growth.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let before = std::fs::metadata(&file).expect("database file").len();

    let value = "a long remembered preference about pacing and colour ".repeat(30);
    for i in 0..200 {
        projects
            .put_memory(PutMemoryRequest {
                project_id: project_id.clone(),
                r#type: MemoryType::UserPreference as i32,
                key: format!("preference-{i}"),
                value: value.clone(),
                ..Default::default()
            })
            .await
            .expect("put memory");
    }
    // 200 values of ~1.6 KB: at least 300 KB of new pages once they are checkpointed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let grown = loop {
        let len = std::fs::metadata(&file).expect("database file").len();
        if len >= before + 300_000 || Instant::now() > deadline {
            break len;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("measured: database file {before} -> {grown} bytes");
    assert!(grown >= before + 300_000, "the database file grew from {before} to only {grown} bytes");
}
