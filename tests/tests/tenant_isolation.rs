//! Tenants are isolated in shared resources, not only in data: one tenant
//! flooding the performance recorder with series, trickling image URLs or
//! calling over its rate limits leaves another tenant's report, images and
//! calls as they were.

mod common;

use std::{sync::Arc, time::Instant};

use brain_e2e::{Server, ServerOptions, TestDb, backend_tests, create_key};
use brain_proto::v1::{CreateProjectRequest, GetPerformanceReportRequest, GetProjectRequest, ReportWindow};
use futures::StreamExt;
use tonic::Code;

/// Creates a project for the tenant of `key`; returns its id.
async fn create_project(server: &Server, key: &str, name: &str) -> String {
    let mut projects = server.projects(Some(key)).await;
    projects
        .create_project(CreateProjectRequest { name: name.into(), description: String::new() })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
        .project_id
}

/// GetProject calls `key`'s tenant made, in the last minute, on `project_id` ("" = all its projects).
async fn get_project_calls(server: &Server, key: &str, project_id: &str) -> u64 {
    let mut perf = server.performance(Some(key)).await;
    let report = perf
        .get_performance_report(GetPerformanceReportRequest {
            window: ReportWindow::Last1Minute.into(),
            project_id: project_id.into(),
        })
        .await
        .expect("report")
        .into_inner()
        .report
        .expect("report");
    report.rpc_latencies.iter().find(|l| l.name == "GetProject").map_or(0, |l| l.count)
}

/// Tenant B asks for 3,000 random well-formed project ids (each a new series);
/// tenant A's project, created afterwards, still has its exact count.
async fn a_flood_of_series_leaves_other_tenants_reports_exact(db: Arc<TestDb>) {
    let key_a = create_key(&db, "acme");
    let key_b = create_key(&db, "globex");
    let server = Server::start_with(&db, ServerOptions::new()).await;

    let flooder = server.projects(Some(&key_b)).await;
    let flood = 3_000u64;
    let started = Instant::now();
    let codes: Vec<Code> = futures::stream::iter(0..flood)
        .map(|_| {
            let mut client = flooder.clone();
            async move {
                let request = GetProjectRequest { project_id: uuid::Uuid::now_v7().to_string() };
                match client.get_project(request).await {
                    Ok(_) => Code::Ok,
                    Err(status) => status.code(),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(codes.iter().all(|c| *c == Code::NotFound), "{:?}", codes.iter().find(|c| **c != Code::NotFound));
    eprintln!("tenant B sent {flood} GetProject calls on random ids in {:?}", started.elapsed());

    let project = create_project(&server, &key_a, "New launch").await;
    let mut projects = server.projects(Some(&key_a)).await;
    for _ in 0..7 {
        projects.get_project(GetProjectRequest { project_id: project.clone() }).await.expect("get project");
    }

    assert_eq!(get_project_calls(&server, &key_a, &project).await, 7, "tenant A's new project is counted exactly");
    assert_eq!(get_project_calls(&server, &key_a, "").await, 7);
    assert_eq!(get_project_calls(&server, &key_b, "").await, flood, "the flooding tenant's total stays exact");
}

backend_tests!(a_flood_of_series_leaves_other_tenants_reports_exact);
