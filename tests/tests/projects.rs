//! ProjectService on both backends: project CRUD, keyset pagination with scoped tokens, dense
//! scene positions through inserts, moves and deletes, and memory items (upsert by type and key,
//! occurrences, token counts taken at write time, expiry, deletion).

use std::{sync::Arc, time::Duration};

use brain_e2e::{Projects, Server, TestDb, assert_error, backend_tests, create_key, create_project, error_field};
use brain_proto::v1::{
    CreateProjectRequest, DeleteMemoryRequest, DeleteSceneRequest, GetProjectRequest, ListMemoriesRequest,
    ListProjectsRequest, ListScenesRequest, MemoryItem, MemoryKey, MemorySource, MemoryType, Project, PutMemoryRequest,
    Scene, SceneStatus, UpdateProjectRequest, UpsertSceneRequest, delete_memory_request::Target,
};
use brain_server::context::{render, tokens};
use futures::{StreamExt, TryStreamExt};
use tonic::Code;

async fn upsert(client: &mut Projects, request: UpsertSceneRequest) -> (Scene, bool) {
    let response = client.upsert_scene(request).await.expect("upsert scene").into_inner();
    (response.scene.expect("scene"), response.created)
}

fn scene(project_id: &str, scene_id: &str, position: Option<u32>) -> UpsertSceneRequest {
    UpsertSceneRequest {
        project_id: project_id.into(),
        scene_id: scene_id.into(),
        name: format!("Scene {scene_id}"),
        position,
        summary: format!("What {scene_id} shows"),
        ..Default::default()
    }
}

/// Scene ids in position order, checking positions are exactly 0..n-1.
async fn scene_order(client: &mut Projects, project_id: &str) -> Vec<String> {
    let scenes = client
        .list_scenes(ListScenesRequest { project_id: project_id.into(), ..Default::default() })
        .await
        .expect("list scenes")
        .into_inner()
        .scenes;
    let positions: Vec<u32> = scenes.iter().map(|s| s.position).collect();
    assert_eq!(positions, (0..scenes.len() as u32).collect::<Vec<_>>(), "positions must be dense");
    scenes.into_iter().map(|s| s.scene_id).collect()
}

async fn put(client: &mut Projects, project_id: &str, key: &str, value: &str) -> (MemoryItem, bool) {
    let response = client
        .put_memory(PutMemoryRequest {
            project_id: project_id.into(),
            r#type: MemoryType::UserPreference as i32,
            key: key.into(),
            value: value.into(),
            ..Default::default()
        })
        .await
        .expect("put memory")
        .into_inner();
    (response.memory.expect("memory"), response.created)
}

fn millis(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp set");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

async fn project_crud(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let before = brain_server::model::now_ms();
    let created = client
        .create_project(CreateProjectRequest { name: "  Launch video ".into(), description: "Q3 launch".into() })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(created.name, "Launch video", "names are trimmed");
    assert_eq!(created.description, "Q3 launch");
    assert!(uuid::Uuid::parse_str(&created.project_id).is_ok(), "server-assigned UUID: {}", created.project_id);
    let create_ms = millis(&created.create_time);
    assert!(create_ms >= before - 1000 && create_ms <= brain_server::model::now_ms() + 1000, "{created:?}");
    assert_eq!(created.create_time, created.update_time);

    let fetched = client
        .get_project(GetProjectRequest { project_id: created.project_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(fetched, created);

    // Writing into the project moves its update time.
    tokio::time::sleep(Duration::from_millis(5)).await;
    upsert(&mut client, scene(&created.project_id, "s1", None)).await;
    let touched = client
        .get_project(GetProjectRequest { project_id: created.project_id.clone() })
        .await
        .expect("get")
        .into_inner()
        .project
        .expect("project");
    assert!(millis(&touched.update_time) > millis(&created.update_time), "{touched:?} vs {created:?}");
    assert_eq!(touched.create_time, created.create_time);

    let status = assert_error(
        client.get_project(GetProjectRequest { project_id: "no-such-project".into() }).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );
    assert_eq!(error_field(&status).as_deref(), Some("project_id"));

    // Every response names its request: the caller's x-request-id, or a generated one.
    let mut request = tonic::Request::new(GetProjectRequest { project_id: created.project_id.clone() });
    request.metadata_mut().insert("x-request-id", "trace-me-42".parse().expect("ascii"));
    let response = client.get_project(request).await.expect("get");
    assert_eq!(response.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-me-42"));
    let mut request = tonic::Request::new(GetProjectRequest { project_id: "missing".into() });
    request.metadata_mut().insert("x-request-id", "trace-me-43".parse().expect("ascii"));
    let status = client.get_project(request).await.expect_err("not found");
    assert_eq!(status.metadata().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-me-43"));
    let generated = client.list_projects(ListProjectsRequest::default()).await.expect("list");
    let id = generated.metadata().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "generated request id: {id:?}");
    assert!(server.logs().contains("trace-me-43"), "the log carries the request id");
}

/// Pages are disjoint, ordered oldest first, cover everything, and end with an empty token;
/// page size 0 means 50 and sizes above 500 are clamped.
async fn projects_paginate(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(create_project(&mut client, &format!("p{i}")).await.project_id);
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut sizes = Vec::new();
    loop {
        let page = client
            .list_projects(ListProjectsRequest { page_size: 3, page_token: token.clone() })
            .await
            .expect("list page")
            .into_inner();
        sizes.push(page.projects.len());
        seen.extend(page.projects.into_iter().map(|p| p.project_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen, created, "every project once, oldest first");

    // Exactly one full page: no token, so clients never fetch an empty page.
    let six = client.list_projects(ListProjectsRequest { page_size: 7, page_token: String::new() }).await;
    assert!(six.expect("list").into_inner().next_page_token.is_empty());

    // Default and maximum page sizes.
    let more: Vec<String> = futures::stream::iter(7..501)
        .map(|i| {
            let mut client = client.clone();
            async move {
                client
                    .create_project(CreateProjectRequest { name: format!("p{i}"), description: String::new() })
                    .await
                    .map(|r| r.into_inner().project.expect("project").project_id)
            }
        })
        .buffered(8)
        .try_collect()
        .await
        .expect("create 494 more projects");
    assert_eq!(more.len(), 494);
    let default = client.list_projects(ListProjectsRequest::default()).await.expect("list").into_inner();
    assert_eq!(default.projects.len(), 50, "page_size 0 means 50");
    assert!(!default.next_page_token.is_empty());
    let clamped = client
        .list_projects(ListProjectsRequest { page_size: 100_000, page_token: String::new() })
        .await
        .expect("list");
    let clamped = clamped.into_inner();
    assert_eq!(clamped.projects.len(), 500, "page sizes above 500 are clamped");
    let rest = client
        .list_projects(ListProjectsRequest { page_size: 500, page_token: clamped.next_page_token })
        .await
        .expect("last page")
        .into_inner();
    assert_eq!(rest.projects.len(), 1);
    assert!(rest.next_page_token.is_empty());
}

/// Scene positions stay 0..n-1 through appends, inserts in the middle, moves in both directions,
/// replacements that keep their place, positions past the end, and deletes.
async fn scene_positions_stay_dense(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let pid = create_project(&mut client, "positions").await.project_id;

    for id in ["a", "b", "c"] {
        let (s, created) = upsert(&mut client, scene(&pid, id, None)).await;
        assert!(created);
        assert_eq!(s.project_id, pid);
    }
    assert_eq!(scene_order(&mut client, &pid).await, ["a", "b", "c"], "unset position appends");

    let (inserted, created) = upsert(&mut client, scene(&pid, "x", Some(1))).await;
    assert!(created);
    assert_eq!(inserted.position, 1);
    assert_eq!(scene_order(&mut client, &pid).await, ["a", "x", "b", "c"], "insert shifts later scenes");

    let (front, _) = upsert(&mut client, scene(&pid, "y", Some(0))).await;
    assert_eq!(front.position, 0);
    assert_eq!(scene_order(&mut client, &pid).await, ["y", "a", "x", "b", "c"]);

    let (past_end, _) = upsert(&mut client, scene(&pid, "z", Some(99))).await;
    assert_eq!(past_end.position, 5, "a position past the end appends");
    assert_eq!(scene_order(&mut client, &pid).await, ["y", "a", "x", "b", "c", "z"]);

    // Move an existing scene forward, then back.
    let (moved, created) = upsert(&mut client, scene(&pid, "a", Some(4))).await;
    assert!(!created, "same id replaces");
    assert_eq!(moved.position, 4);
    assert_eq!(scene_order(&mut client, &pid).await, ["y", "x", "b", "c", "a", "z"]);
    upsert(&mut client, scene(&pid, "z", Some(0))).await;
    assert_eq!(scene_order(&mut client, &pid).await, ["z", "y", "x", "b", "c", "a"]);

    // Replacing without a position keeps the scene where it is and keeps its create time.
    let before = client
        .list_scenes(ListScenesRequest { project_id: pid.clone(), ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .scenes
        .into_iter()
        .find(|s| s.scene_id == "b")
        .expect("b");
    let (replaced, created) = upsert(
        &mut client,
        UpsertSceneRequest {
            project_id: pid.clone(),
            scene_id: "b".into(),
            name: "Bridge".into(),
            summary: "A bridge at dusk, slow pan".into(),
            duration_seconds: Some(4.5),
            status: SceneStatus::Broken as i32,
            position: None,
        },
    )
    .await;
    assert!(!created);
    assert_eq!(replaced.position, before.position);
    assert_eq!(replaced.create_time, before.create_time);
    assert_eq!((replaced.name.as_str(), replaced.duration_seconds), ("Bridge", Some(4.5)));
    assert_eq!(replaced.status, SceneStatus::Broken as i32);
    assert_eq!(scene_order(&mut client, &pid).await, ["z", "y", "x", "b", "c", "a"]);

    // Deletes close the gap, from the middle, the front and the end.
    for (id, expected) in
        [("x", vec!["z", "y", "b", "c", "a"]), ("z", vec!["y", "b", "c", "a"]), ("a", vec!["y", "b", "c"])]
    {
        client.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: id.into() }).await.expect("delete");
        assert_eq!(scene_order(&mut client, &pid).await, expected, "after deleting {id}");
    }
    assert_error(
        client.delete_scene(DeleteSceneRequest { project_id: pid.clone(), scene_id: "x".into() }).await,
        Code::NotFound,
        "SCENE_NOT_FOUND",
    );

    // Server-assigned ids; summary token counts are taken at write time from the summary line.
    let (assigned, created) = upsert(
        &mut client,
        UpsertSceneRequest {
            project_id: pid.clone(),
            name: "Outro".into(),
            summary: "End card with the logo and a call to action".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(created);
    assert!(!assigned.scene_id.is_empty());
    assert_eq!(assigned.position, 3);
    assert_eq!(assigned.status, SceneStatus::Ok as i32, "unspecified status means OK");
    assert!(assigned.summary_tokens > 0);
    assert_eq!(
        assigned.summary_tokens as usize,
        tokens::count(&render::scene_summary_line("End card with the logo and a call to action")) as usize
    );
    let (empty, _) =
        upsert(&mut client, UpsertSceneRequest { project_id: pid.clone(), name: "Blank".into(), ..Default::default() })
            .await;
    assert_eq!(empty.summary_tokens, 0, "an empty summary costs nothing");
}

/// Scenes paginate in position order; a token only works for the list that issued it.
async fn scenes_paginate(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let pid = create_project(&mut client, "many scenes").await.project_id;
    let other = create_project(&mut client, "other").await.project_id;
    let ids: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
    for id in &ids {
        upsert(&mut client, scene(&pid, id, None)).await;
    }
    upsert(&mut client, scene(&other, "o1", None)).await;

    let first = client
        .list_scenes(ListScenesRequest { project_id: pid.clone(), page_size: 2, page_token: String::new() })
        .await
        .expect("page 1")
        .into_inner();
    let second = client
        .list_scenes(ListScenesRequest {
            project_id: pid.clone(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .expect("page 2")
        .into_inner();
    let third = client
        .list_scenes(ListScenesRequest {
            project_id: pid.clone(),
            page_size: 2,
            page_token: second.next_page_token.clone(),
        })
        .await
        .expect("page 3")
        .into_inner();
    let pages: Vec<Vec<u32>> =
        [&first, &second, &third].iter().map(|p| p.scenes.iter().map(|s| s.position).collect()).collect();
    assert_eq!(pages, [vec![0, 1], vec![2, 3], vec![4]]);
    assert!(third.next_page_token.is_empty());

    let status = assert_error(
        client
            .list_scenes(ListScenesRequest {
                project_id: other,
                page_size: 2,
                page_token: first.next_page_token.clone(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
    assert_eq!(error_field(&status).as_deref(), Some("page_token"));
    assert_error(
        client
            .list_memories(ListMemoriesRequest {
                project_id: pid.clone(),
                page_size: 2,
                page_token: first.next_page_token,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
}

/// PutMemory upserts by (type, key): the same value counts an occurrence, a new value starts
/// over; token counts come from the item's prompt line; confidence, source, TTL and expiry
/// behave as documented; deletes work by id and by key.
async fn memory_semantics(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let pid = create_project(&mut client, "memory").await.project_id;

    let (first, created) = put(&mut client, &pid, "style", "minimal").await;
    assert!(created);
    assert_eq!((first.occurrences, first.confidence), (1, 1.0), "unset confidence means 1.0");
    assert_eq!(first.source, MemorySource::Api as i32);
    assert_eq!(first.r#type, MemoryType::UserPreference as i32);
    assert!(first.expire_time.is_none());
    assert!(first.token_count > 0);
    assert_eq!(first.token_count, tokens::count(&render::memory_line("style", "minimal", 1.0)) as u32);

    let (again, created) = put(&mut client, &pid, "style", "minimal").await;
    assert!(!created);
    assert_eq!(again.memory_id, first.memory_id);
    assert_eq!(again.occurrences, 2, "the same value again is another occurrence");
    assert_eq!(again.create_time, first.create_time);

    let long_value = "flat shapes, muted pastel palette, generous whitespace, slow easing on every transition";
    let (changed, created) = put(&mut client, &pid, "style", long_value).await;
    assert!(!created);
    assert_eq!((changed.memory_id.as_str(), changed.occurrences), (first.memory_id.as_str(), 1));
    assert_eq!(changed.value, long_value);
    assert!(changed.token_count > first.token_count, "a longer value costs more tokens");
    assert_eq!(changed.token_count, tokens::count(&render::memory_line("style", long_value, 1.0)) as u32);

    // The same key under another type is another item.
    let relationship = client
        .put_memory(PutMemoryRequest {
            project_id: pid.clone(),
            r#type: MemoryType::SceneRelationship as i32,
            key: "style".into(),
            value: "intro was last edited".into(),
            confidence: Some(0.4),
            ..Default::default()
        })
        .await
        .expect("put relationship")
        .into_inner();
    assert!(relationship.created);
    let relationship = relationship.memory.expect("memory");
    assert_ne!(relationship.memory_id, first.memory_id);
    assert_eq!(relationship.confidence, 0.4);

    // An item with a TTL has an expiry and disappears from lists once it passes.
    let short = client
        .put_memory(PutMemoryRequest {
            project_id: pid.clone(),
            r#type: MemoryType::ConversationContext as i32,
            key: "last_prompt".into(),
            value: "make it faster".into(),
            ttl: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
            ..Default::default()
        })
        .await
        .expect("put with ttl")
        .into_inner()
        .memory
        .expect("memory");
    let expire = short.expire_time.expect("expire_time");
    let update = short.update_time.expect("update_time");
    let ttl_ms = (expire.seconds - update.seconds) * 1000 + i64::from(expire.nanos - update.nanos) / 1_000_000;
    assert_eq!(ttl_ms, 1000);

    let list = |client: &mut Projects, t: MemoryType| {
        let mut client = client.clone();
        let pid = pid.clone();
        async move {
            client
                .list_memories(ListMemoriesRequest { project_id: pid, r#type: t as i32, ..Default::default() })
                .await
                .expect("list memories")
                .into_inner()
                .memories
                .into_iter()
                .map(|m| m.memory_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(&mut client, MemoryType::Unspecified).await,
        [first.memory_id.clone(), relationship.memory_id.clone(), short.memory_id.clone()],
        "all types, oldest first"
    );
    assert_eq!(list(&mut client, MemoryType::SceneRelationship).await, std::slice::from_ref(&relationship.memory_id));
    let until_expired = millis(&Some(expire)) - brain_server::model::now_ms() + 50;
    tokio::time::sleep(Duration::from_millis(until_expired.max(0) as u64)).await;
    assert_eq!(
        list(&mut client, MemoryType::Unspecified).await,
        [first.memory_id.clone(), relationship.memory_id.clone()],
        "expired items are gone"
    );

    // Delete by key, then by id; deleting again is MEMORY_NOT_FOUND.
    client
        .delete_memory(DeleteMemoryRequest {
            project_id: pid.clone(),
            target: Some(Target::MemoryKey(MemoryKey {
                r#type: MemoryType::UserPreference as i32,
                key: "style".into(),
            })),
        })
        .await
        .expect("delete by key");
    client
        .delete_memory(DeleteMemoryRequest {
            project_id: pid.clone(),
            target: Some(Target::MemoryId(relationship.memory_id.clone())),
        })
        .await
        .expect("delete by id");
    assert!(list(&mut client, MemoryType::Unspecified).await.is_empty());
    assert_error(
        client
            .delete_memory(DeleteMemoryRequest {
                project_id: pid.clone(),
                target: Some(Target::MemoryId(relationship.memory_id)),
            })
            .await,
        Code::NotFound,
        "MEMORY_NOT_FOUND",
    );

    // Memories paginate too.
    for i in 0..5 {
        put(&mut client, &pid, &format!("k{i}"), "v").await;
    }
    let page = client
        .list_memories(ListMemoriesRequest { project_id: pid.clone(), page_size: 3, ..Default::default() })
        .await
        .expect("page 1")
        .into_inner();
    let rest = client
        .list_memories(ListMemoriesRequest {
            project_id: pid.clone(),
            page_size: 3,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("page 2")
        .into_inner();
    let keys: Vec<String> = page.memories.iter().chain(&rest.memories).map(|m| m.key.clone()).collect();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
    assert!(rest.next_page_token.is_empty());
    // A token from the all-types list does not page a filtered list.
    assert_error(
        client
            .list_memories(ListMemoriesRequest {
                project_id: pid,
                r#type: MemoryType::UserPreference as i32,
                page_size: 3,
                page_token: page.next_page_token,
            })
            .await,
        Code::InvalidArgument,
        "INVALID_PAGE_TOKEN",
    );
}

/// Concurrent writers to one project queue on its row (PostgreSQL `FOR UPDATE`, SQLite's single
/// writer): positions stay dense and no write is lost.
async fn concurrent_scene_writes_keep_positions_dense(db: Arc<TestDb>) {
    let server = Server::start(&db).await;
    let mut client = server.projects(None).await;
    let pid = create_project(&mut client, "busy").await.project_id;
    let writers = 24u32;
    let results: Vec<Result<(), tonic::Status>> = futures::stream::iter(0..writers)
        .map(|i| {
            let mut client = client.clone();
            let pid = pid.clone();
            async move {
                // Mixed appends and inserts at the front and in the middle.
                let position = match i % 3 {
                    0 => None,
                    1 => Some(0),
                    _ => Some(i / 2),
                };
                client.upsert_scene(scene(&pid, &format!("s{i:02}"), position)).await.map(|_| ())
            }
        })
        .buffer_unordered(writers as usize)
        .collect()
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut order = scene_order(&mut client, &pid).await;
    assert_eq!(order.len(), writers as usize, "every concurrent write landed once");
    order.sort();
    assert_eq!(order, (0..writers).map(|i| format!("s{i:02}")).collect::<Vec<_>>());
}

fn update(project_id: &str, name: &str, description: &str, paths: &[&str]) -> UpdateProjectRequest {
    UpdateProjectRequest {
        project: Some(Project {
            project_id: project_id.into(),
            name: name.into(),
            description: description.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    }
}

async fn get(client: &mut Projects, project_id: &str) -> Project {
    client
        .get_project(GetProjectRequest { project_id: project_id.into() })
        .await
        .expect("get")
        .into_inner()
        .project
        .expect("project")
}

/// UpdateProject (AIP-134): the mask picks the fields; an empty mask takes the non-empty ones;
/// GetProject shows each change with a later update_time; bad paths, bad values and another
/// tenant's project change nothing.
async fn update_project(db: Arc<TestDb>) {
    let key_a = create_key(&db, "acme");
    let key_b = create_key(&db, "globex");
    let server = Server::start(&db).await;
    let mut client = server.projects(Some(&key_a)).await;
    let created = create_project(&mut client, "Launch video").await;
    let id = created.project_id.clone();

    // Name only: the description in the request is ignored because the mask leaves it out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renamed = client
        .update_project(update(&id, "  Launch video v2 ", "ignored", &["name"]))
        .await
        .expect("update name")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(renamed.name, "Launch video v2", "names are trimmed as on create");
    assert_eq!(renamed.description, "about Launch video");
    assert_eq!(get(&mut client, &id).await, renamed);
    assert!(millis(&renamed.update_time) > millis(&created.update_time), "{renamed:?} vs {created:?}");
    assert_eq!(renamed.create_time, created.create_time);

    // Description only, to the empty string: only an explicit mask can clear it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cleared = client.update_project(update(&id, "", "", &["description"])).await.expect("update description");
    let cleared = cleared.into_inner().project.expect("project");
    assert_eq!((cleared.name.as_str(), cleared.description.as_str()), ("Launch video v2", ""));
    assert!(millis(&cleared.update_time) > millis(&renamed.update_time));
    assert_eq!(get(&mut client, &id).await, cleared);

    // Both, through "*" and through an empty mask (which takes the non-empty fields).
    let both = client.update_project(update(&id, "Both", "Both changed", &["*"])).await.expect("update both");
    let both = both.into_inner().project.expect("project");
    assert_eq!((both.name.as_str(), both.description.as_str()), ("Both", "Both changed"));
    let implied = client.update_project(update(&id, "Implied", "", &[])).await.expect("empty mask");
    let implied = implied.into_inner().project.expect("project");
    assert_eq!((implied.name.as_str(), implied.description.as_str()), ("Implied", "Both changed"));
    let mut no_mask = update(&id, "", "Via no mask", &[]);
    no_mask.update_mask = None;
    let no_mask = client.update_project(no_mask).await.expect("no mask").into_inner().project.expect("project");
    assert_eq!((no_mask.name.as_str(), no_mask.description.as_str()), ("Implied", "Via no mask"));
    let unchanged = get(&mut client, &id).await;
    assert_eq!(unchanged, no_mask);

    // Bad requests change nothing.
    let status = assert_error(
        client.update_project(update(&id, "X", "", &["name", "create_time"])).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(error_field(&status).as_deref(), Some("update_mask"));
    assert!(status.message().contains("create_time"), "{status:?}");
    let status =
        assert_error(client.update_project(update(&id, "", "", &[])).await, Code::InvalidArgument, "MISSING_FIELD");
    assert_eq!(error_field(&status).as_deref(), Some("update_mask"));
    let status = assert_error(
        client.update_project(update(&id, "  ", "", &["name"])).await,
        Code::InvalidArgument,
        "MISSING_FIELD",
    );
    assert_eq!(error_field(&status).as_deref(), Some("name"));
    let status = assert_error(
        client.update_project(update(&id, "bad\u{7}name", "", &["name"])).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
    );
    assert_eq!(error_field(&status).as_deref(), Some("name"));
    // Too long is VALUE_TOO_LARGE (RESOURCE_EXHAUSTED), exactly as CreateProject answers it.
    let status = assert_error(
        client.update_project(update(&id, &"n".repeat(201), "", &["name"])).await,
        Code::ResourceExhausted,
        "VALUE_TOO_LARGE",
    );
    assert_eq!(error_field(&status).as_deref(), Some("name"));
    let status = assert_error(
        client.update_project(update(&id, "", &"d".repeat(2_001), &["description"])).await,
        Code::ResourceExhausted,
        "VALUE_TOO_LARGE",
    );
    assert_eq!(error_field(&status).as_deref(), Some("description"));
    let mut no_project = update(&id, "", "", &["name"]);
    no_project.project = None;
    assert_error(client.update_project(no_project).await, Code::InvalidArgument, "MISSING_FIELD");
    assert_error(
        client.update_project(update("no-such-project", "X", "", &["name"])).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );

    // Another tenant sees no such project, and cannot rename it.
    let mut other = server.projects(Some(&key_b)).await;
    let status = assert_error(
        other.update_project(update(&id, "Stolen", "", &["name"])).await,
        Code::NotFound,
        "PROJECT_NOT_FOUND",
    );
    assert_eq!(error_field(&status).as_deref(), Some("project_id"));
    assert_eq!(get(&mut client, &id).await, unchanged, "failed updates leave the project as it was");
}

backend_tests!(
    update_project,
    project_crud,
    projects_paginate,
    scene_positions_stay_dense,
    scenes_paginate,
    memory_semantics,
    concurrent_scene_writes_keep_positions_dense,
);
