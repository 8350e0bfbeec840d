//! The harness itself works: a server starts on each backend, serves, and stops cleanly on SIGTERM.

use std::{sync::Arc, time::Duration};

use brain_e2e::{Server, TestDb, backend_tests};
use brain_proto::v1::CreateProjectRequest;

async fn starts_serves_and_stops(db: Arc<TestDb>) {
    let mut server = Server::start(&db).await;
    let mut projects = server.projects(None).await;
    let created = projects
        .create_project(CreateProjectRequest { name: "Smoke".into(), description: String::new() })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(created.name, "Smoke");
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
}

backend_tests!(starts_serves_and_stops);
