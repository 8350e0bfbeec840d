//! PurgeTenant and admin keys end to end on SQLite and PostgreSQL: a tenant's
//! key cannot call AdminService, an admin key cannot read a tenant's data, a
//! purge leaves no row of the tenant in any table (and nothing of the other
//! tenant goes), the purged tenant's key stops working at once, and
//! `brain-server tenants purge NAME` does the same from the command line.

mod common;

use std::sync::Arc;

use brain_e2e::{
    Server, TestDb, assert_error, backend_tests, create_admin_key, create_key, create_project, run_server_command,
};
use brain_proto::v1::{
    GetProjectRequest, ListProjectsRequest, MemoryType, OrchestrateRequest, PurgeTenantRequest, PutMemoryRequest,
    RunRetentionRequest, UpsertSceneRequest,
};
use common::{query_row, rows_naming};
use tonic::Code;

/// Every table with a `tenant_id` column, and `tenants` by its id.
const TENANT_TABLES: &[&str] = &[
    "api_keys",
    "projects",
    "scenes",
    "memories",
    "conversation_turns",
    "orchestrations",
    "image_analyses",
    "jobs",
    "events",
];

/// Rows naming `tenant_id`, per table.
async fn rows_of(db: &TestDb, tenant_id: &str) -> Vec<(&'static str, u64)> {
    rows_naming(db, TENANT_TABLES, "tenant_id", "tenants", tenant_id).await
}

async fn tenant_id(db: &TestDb, name: &str) -> String {
    let row = query_row(db, &format!("SELECT id FROM tenants WHERE name = '{name}'")).await;
    row.and_then(|r| r.into_iter().next().flatten()).expect("the tenant exists")
}

/// A project with a scene, a memory item and an orchestration, for the tenant of `key`.
async fn fill(server: &Server, key: &str, name: &str) -> String {
    let mut projects = server.projects(Some(key)).await;
    let project_id = create_project(&mut projects, name).await.project_id;
    let scene = UpsertSceneRequest {
        project_id: project_id.clone(),
        name: "intro".into(),
        summary: "the intro".into(),
        ..Default::default()
    };
    projects.upsert_scene(scene).await.expect("scene");
    let memory = PutMemoryRequest {
        project_id: project_id.clone(),
        r#type: MemoryType::UserPreference as i32,
        key: "font".into(),
        value: "serif".into(),
        confidence: Some(0.9),
        ..Default::default()
    };
    projects.put_memory(memory).await.expect("memory");
    let mut orchestrator = server.orchestrator(Some(key)).await;
    let request = OrchestrateRequest {
        project_id: project_id.clone(),
        prompt: "make the intro warmer".into(),
        request_id: format!("{name}-1"),
        ..Default::default()
    };
    orchestrator.orchestrate(request).await.expect("orchestrate");
    project_id
}

async fn purge_erases_one_tenant_and_needs_an_admin_key(db: Arc<TestDb>) {
    let key_a = create_key(&db, "tenant-a");
    let key_b = create_key(&db, "tenant-b");
    let admin_key = create_admin_key(&db);
    let server = Server::start(&db).await;
    let a1 = fill(&server, &key_a, "a-one").await;
    fill(&server, &key_a, "a-two").await;
    let b1 = fill(&server, &key_b, "b-one").await;
    let (tenant_a, tenant_b) = (tenant_id(&db, "tenant-a").await, tenant_id(&db, "tenant-b").await);
    let b_before = rows_of(&db, &tenant_b).await;

    // Each kind of key stays on its side.
    let mut as_tenant = server.admin(Some(&key_a)).await;
    let purge = |name: &str| PurgeTenantRequest { tenant: name.into() };
    assert_error(as_tenant.purge_tenant(purge("tenant-b")).await, Code::PermissionDenied, "ADMIN_KEY_REQUIRED");
    let retention = RunRetentionRequest { dry_run: true, project_id: String::new(), tenant: "tenant-a".into() };
    assert_error(as_tenant.run_retention(retention).await, Code::PermissionDenied, "ADMIN_KEY_REQUIRED");
    let mut admin_projects = server.projects(Some(&admin_key)).await;
    let read = admin_projects.get_project(GetProjectRequest { project_id: a1.clone() }).await;
    assert_error(read, Code::PermissionDenied, "TENANT_KEY_REQUIRED");
    let list = admin_projects.list_projects(ListProjectsRequest::default()).await;
    assert_error(list, Code::PermissionDenied, "TENANT_KEY_REQUIRED");

    let mut admin = server.admin(Some(&admin_key)).await;
    assert_error(admin.purge_tenant(purge("")).await, Code::InvalidArgument, "MISSING_FIELD");
    assert_error(admin.purge_tenant(purge("no-such-tenant")).await, Code::NotFound, "TENANT_NOT_FOUND");
    let purged = admin.purge_tenant(purge("tenant-a")).await.expect("purge").into_inner();
    println!("measured: PurgeTenant erased {purged:?}");
    assert_eq!((purged.projects, purged.api_keys), (2, 1));
    let deleted = purged.deleted.expect("counts");
    assert_eq!((deleted.scenes, deleted.orchestrations), (2, 2));
    assert!(deleted.memory_items >= 2 && deleted.conversation_turns >= 2, "{deleted:?}");

    let left = rows_of(&db, &tenant_a).await;
    assert!(left.iter().all(|(_, n)| *n == 0), "rows of the purged tenant left: {left:?}");
    assert_eq!(rows_of(&db, &tenant_b).await, b_before, "the other tenant lost nothing");
    // The purged tenant's key stops working on this replica at once (it was cached).
    let mut gone = server.projects(Some(&key_a)).await;
    assert_error(gone.list_projects(ListProjectsRequest::default()).await, Code::Unauthenticated, "API_KEY_INVALID");
    let mut still = server.projects(Some(&key_b)).await;
    still.get_project(GetProjectRequest { project_id: b1 }).await.expect("tenant B is untouched");
    assert_error(admin.purge_tenant(purge("tenant-a")).await, Code::NotFound, "TENANT_NOT_FOUND");
    // RunRetention with an admin key names its tenant.
    let by_admin = RunRetentionRequest { dry_run: true, project_id: String::new(), tenant: String::new() };
    assert_error(admin.run_retention(by_admin).await, Code::InvalidArgument, "MISSING_FIELD");
    let for_b = RunRetentionRequest { dry_run: true, project_id: String::new(), tenant: "tenant-b".into() };
    admin.run_retention(for_b).await.expect("retention for tenant B");

    // The command line purges the same way.
    let out = run_server_command(Some(&db), &["tenants", "purge", "tenant-b"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("purged tenant 'tenant-b': 1 projects, 1 API keys"), "{stdout}");
    let left = rows_of(&db, &tenant_b).await;
    assert!(left.iter().all(|(_, n)| *n == 0), "rows of the purged tenant left: {left:?}");
    let again = run_server_command(Some(&db), &["tenants", "purge", "tenant-b"], &[]);
    assert!(!again.status.success(), "purging a purged tenant fails");
}

backend_tests!(purge_erases_one_tenant_and_needs_an_admin_key);
