//! API keys and tenants: keys are shown once and stored hashed, requests need a valid key once
//! keys exist, a tenant never sees another tenant's projects, and without keys the server serves
//! one implicit tenant on loopback.

use std::{sync::Arc, time::Duration};

use brain_e2e::{
    Projects, Server, ServerOptions, TestDb, assert_error, backend_tests, create_key, create_project, run_cli,
};
use brain_proto::v1::{
    DeleteMemoryRequest, DeleteSceneRequest, GetProjectRequest, ListMemoriesRequest, ListProjectsRequest,
    ListScenesRequest, MemoryType, OrchestrateRequest, PutMemoryRequest, UpsertSceneRequest,
    delete_memory_request::Target,
};
use sea_orm::{ConnectionTrait, Statement};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

async fn project_ids(client: &mut Projects) -> Vec<String> {
    client
        .list_projects(ListProjectsRequest { page_size: 500, page_token: String::new() })
        .await
        .expect("list projects")
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.project_id)
        .collect()
}

/// `keys create` prints the key once on stdout; the store keeps only its SHA-256 and a short
/// prefix, and `keys list` shows the prefix, never the key.
async fn keys_are_shown_once_and_stored_hashed(db: Arc<TestDb>) {
    let key = create_key(&db, "acme");
    assert_eq!(key.len(), "brk_".len() + 43, "256 random bits, base64url: {key}");
    let other = create_key(&db, "acme");
    assert_ne!(key, other);

    let conn = db.connect().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT k.key_hash, k.key_prefix, t.name FROM api_keys k JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created_at",
        ))
        .await
        .expect("read api_keys");
    assert_eq!(rows.len(), 2);
    let stored_hash: String = rows[0].try_get("", "key_hash").expect("key_hash");
    let stored_prefix: String = rows[0].try_get("", "key_prefix").expect("key_prefix");
    let tenant: String = rows[0].try_get("", "name").expect("tenant name");
    assert_eq!(stored_hash, hex::encode(Sha256::digest(key.as_bytes())));
    assert!(key.starts_with(&stored_prefix) && stored_prefix.len() < 16, "prefix {stored_prefix}");
    assert_eq!(tenant, "acme");
    let dump = format!("{rows:?}");
    assert!(!dump.contains(&key) && !dump.contains(&other), "a key itself was stored");
    conn.close().await.ok();

    let listing = run_cli(&db, &["keys", "list"]);
    assert!(listing.contains(&stored_prefix) && listing.contains("acme"), "{listing}");
    assert!(!listing.contains(&key), "keys list must not show keys:\n{listing}");
    assert_eq!(listing.matches("active").count(), 2, "{listing}");

    let revoked = run_cli(&db, &["keys", "revoke", &stored_prefix]);
    assert!(revoked.contains(&stored_prefix), "{revoked}");
    let listing = run_cli(&db, &["keys", "list"]);
    assert_eq!((listing.matches("active").count(), listing.matches("revoked").count()), (1, 1), "{listing}");
}

/// Once keys exist every brain RPC needs one: missing is API_KEY_MISSING, anything but an active
/// key is API_KEY_INVALID. Health needs none.
async fn keys_are_required_once_they_exist(db: Arc<TestDb>) {
    let key = create_key(&db, "acme");
    let server = Server::start(&db).await;

    assert_error(
        server.projects(None).await.list_projects(ListProjectsRequest::default()).await,
        Code::Unauthenticated,
        "API_KEY_MISSING",
    );
    assert_error(
        server.orchestrator(None).await.orchestrate(OrchestrateRequest::default()).await,
        Code::Unauthenticated,
        "API_KEY_MISSING",
    );
    let wrong = format!("brk_{}", "A".repeat(43));
    assert_error(
        server.projects(Some(&wrong)).await.list_projects(ListProjectsRequest::default()).await,
        Code::Unauthenticated,
        "API_KEY_INVALID",
    );
    assert_error(
        server.projects(Some("not-a-brain-key")).await.list_projects(ListProjectsRequest::default()).await,
        Code::Unauthenticated,
        "API_KEY_INVALID",
    );
    // Right key, wrong scheme.
    let mut basic = server.projects(None).await;
    let mut request = tonic::Request::new(ListProjectsRequest::default());
    request.metadata_mut().insert("authorization", format!("Basic {key}").parse().expect("ascii"));
    assert_error(basic.list_projects(request).await, Code::Unauthenticated, "API_KEY_INVALID");

    let mut good = server.projects(Some(&key)).await;
    let created = create_project(&mut good, "mine").await;
    assert_eq!(project_ids(&mut good).await, [created.project_id]);
    assert_eq!(server.health("").await.expect("health without a key"), ServingStatus::Serving);
}

/// Tenant B cannot read, list, write into or delete from tenant A's project: everything is
/// NOT_FOUND, exactly as for a project that does not exist, and A's data stays as it was.
async fn tenants_are_isolated(db: Arc<TestDb>) {
    let key_a = create_key(&db, "tenant-a");
    let key_b = create_key(&db, "tenant-b");
    let server = Server::start(&db).await;
    let mut a = server.projects(Some(&key_a)).await;
    let mut b = server.projects(Some(&key_b)).await;

    let project = create_project(&mut a, "A's video").await;
    let pid = project.project_id.clone();
    let scene = a
        .upsert_scene(UpsertSceneRequest {
            project_id: pid.clone(),
            scene_id: "intro".into(),
            name: "Intro".into(),
            summary: "Logo reveal".into(),
            ..Default::default()
        })
        .await
        .expect("A upserts a scene")
        .into_inner()
        .scene
        .expect("scene");
    let memory = a
        .put_memory(PutMemoryRequest {
            project_id: pid.clone(),
            r#type: MemoryType::UserPreference as i32,
            key: "style".into(),
            value: "minimal".into(),
            ..Default::default()
        })
        .await
        .expect("A puts memory")
        .into_inner()
        .memory
        .expect("memory");

    let not_found = "PROJECT_NOT_FOUND";
    let status =
        assert_error(b.get_project(GetProjectRequest { project_id: pid.clone() }).await, Code::NotFound, not_found);
    assert_eq!(brain_e2e::error_field(&status).as_deref(), Some("project_id"));
    // The same answer as for an id that exists nowhere: nothing tells B the project exists.
    let nowhere = assert_error(
        b.get_project(GetProjectRequest { project_id: "0000-does-not-exist".into() }).await,
        Code::NotFound,
        not_found,
    );
    assert_eq!(status.message().replace(&pid, "ID"), nowhere.message().replace("0000-does-not-exist", "ID"));

    assert_error(
        b.upsert_scene(UpsertSceneRequest {
            project_id: pid.clone(),
            scene_id: "intro".into(),
            name: "Hijacked".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        not_found,
    );
    assert_error(
        b.put_memory(PutMemoryRequest {
            project_id: pid.clone(),
            r#type: MemoryType::UserPreference as i32,
            key: "style".into(),
            value: "maximal".into(),
            ..Default::default()
        })
        .await,
        Code::NotFound,
        not_found,
    );
    assert_error(
        b.list_scenes(ListScenesRequest { project_id: pid.clone(), ..Default::default() }).await,
        Code::NotFound,
        not_found,
    );
    assert_error(
        b.list_memories(ListMemoriesRequest { project_id: pid.clone(), ..Default::default() }).await,
        Code::NotFound,
        not_found,
    );
    assert_error(
        b.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: "intro".into() }).await,
        Code::NotFound,
        not_found,
    );
    assert_error(
        b.delete_memory(DeleteMemoryRequest {
            project_id: pid.clone(),
            target: Some(Target::MemoryId(memory.memory_id.clone())),
        })
        .await,
        Code::NotFound,
        not_found,
    );

    assert!(project_ids(&mut b).await.is_empty(), "B lists none of A's projects");
    let b_project = create_project(&mut b, "B's video").await;
    assert_eq!(project_ids(&mut b).await, std::slice::from_ref(&b_project.project_id));
    assert_eq!(project_ids(&mut a).await, std::slice::from_ref(&pid), "A does not see B's project either");

    // A page token is bound to the tenant's list: B cannot page through A's projects with it.
    create_project(&mut a, "A's second").await;
    let page = a.list_projects(ListProjectsRequest { page_size: 1, page_token: String::new() }).await.expect("list");
    let token = page.into_inner().next_page_token;
    assert!(!token.is_empty());
    assert_error(
        b.list_projects(ListProjectsRequest { page_size: 1, page_token: token }).await,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );

    // A's data is exactly as A left it.
    let scenes = a
        .list_scenes(ListScenesRequest { project_id: pid.clone(), ..Default::default() })
        .await
        .expect("A lists scenes")
        .into_inner()
        .scenes;
    assert_eq!(scenes, [scene]);
    let memories = a
        .list_memories(ListMemoriesRequest { project_id: pid.clone(), ..Default::default() })
        .await
        .expect("A lists memories")
        .into_inner()
        .memories;
    assert_eq!(memories.len(), 1);
    assert_eq!((memories[0].value.as_str(), memories[0].occurrences), ("minimal", 1));
    let fetched = a.get_project(GetProjectRequest { project_id: pid }).await.expect("A gets").into_inner();
    assert_eq!(fetched.project.map(|p| p.name).as_deref(), Some("A's video"));
}

/// Without keys the server serves one implicit tenant on loopback: no key needed, data survives a
/// restart, and a key that is sent anyway must be valid (a client never silently lands in the
/// implicit tenant).
async fn implicit_tenant_without_keys(db: Arc<TestDb>) {
    let mut server = Server::start(&db).await;
    assert!(server.logs().contains("no API keys configured"), "the server says so:\n{}", server.logs());
    let mut open = server.projects(None).await;
    let project = create_project(&mut open, "local").await;
    let made_up = format!("brk_{}", "B".repeat(43));
    assert_error(
        server.projects(Some(&made_up)).await.list_projects(ListProjectsRequest::default()).await,
        Code::Unauthenticated,
        "API_KEY_INVALID",
    );
    server.sigterm();
    assert!(server.wait_exit(Duration::from_secs(20)).await.success());

    let server = Server::start(&db).await;
    let mut open = server.projects(None).await;
    assert_eq!(project_ids(&mut open).await, [project.project_id], "the implicit tenant is the same after a restart");
}

/// A revoked key stops working on a running server once the auth cache entry expires; other keys
/// keep working.
async fn revoked_key_stops_working(db: Arc<TestDb>) {
    let revoked = create_key(&db, "acme");
    let kept = create_key(&db, "acme");
    let server = Server::start_with(&db, ServerOptions::new().set("auth_cache_ttl_ms", 200)).await;
    let mut client = server.projects(Some(&revoked)).await;
    client.list_projects(ListProjectsRequest::default()).await.expect("valid before revocation");

    run_cli(&db, &["keys", "revoke", &revoked[..12]]);
    let started = std::time::Instant::now();
    loop {
        match client.list_projects(ListProjectsRequest::default()).await {
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(10), "the revoked key still works after 10 s"),
            Err(status) => {
                assert_error::<()>(Err(status), Code::Unauthenticated, "API_KEY_INVALID");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.projects(Some(&kept)).await.list_projects(ListProjectsRequest::default()).await.expect("other key");
}

backend_tests!(
    keys_are_shown_once_and_stored_hashed,
    keys_are_required_once_they_exist,
    tenants_are_isolated,
    implicit_tenant_without_keys,
    revoked_key_stops_working,
);
