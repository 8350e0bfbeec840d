//! Server reflection (v1 and v1alpha) lists exactly the brain.v1 services, health and
//! reflection, describes them fully, resolves the error-detail types, and needs no API key and
//! no store.

use std::{collections::BTreeSet, time::Duration};

use brain_e2e::{Server, ServerOptions, TestDb, create_key, find_tool};
use brain_proto::SERVICE_NAMES;
use futures::StreamExt;
use prost::Message;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_reflection::pb::{v1, v1alpha};

fn expected_services() -> BTreeSet<String> {
    SERVICE_NAMES
        .iter()
        .chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .map(|s| s.to_string())
        .collect()
}

async fn reflect_v1(
    server: &Server,
    request: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let outbound =
        futures::stream::iter([v1::ServerReflectionRequest { host: String::new(), message_request: Some(request) }]);
    let mut responses = client.server_reflection_info(outbound).await.expect("reflection call").into_inner();
    let response = tokio::time::timeout(Duration::from_secs(10), responses.next())
        .await
        .expect("a reflection answer within 10 s")
        .expect("one response")
        .expect("reflection response");
    response.message_response.expect("message response")
}

async fn list_v1(server: &Server) -> BTreeSet<String> {
    match reflect_v1(server, v1::server_reflection_request::MessageRequest::ListServices(String::new())).await {
        v1::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

async fn list_v1alpha(server: &Server) -> BTreeSet<String> {
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let outbound = futures::stream::iter([v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    }]);
    let mut responses = client.server_reflection_info(outbound).await.expect("reflection call").into_inner();
    let response = responses.next().await.expect("one response").expect("reflection response");
    match response.message_response.expect("message response") {
        v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

/// The descriptors reflection returns for the file that defines `symbol`.
async fn files_for_symbol(server: &Server, symbol: &str) -> Vec<prost_types::FileDescriptorProto> {
    let request = v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.into());
    match reflect_v1(server, request).await {
        v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) => files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor"))
            .collect(),
        other => panic!("reflection cannot resolve {symbol}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_exactly_the_brain_services_health_and_reflection() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;
    assert_eq!(list_v1(&server).await, expected_services());
    assert_eq!(list_v1alpha(&server).await, expected_services());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_services_and_error_details() {
    let db = TestDb::sqlite().await;
    let server = Server::start(&db).await;

    let files = files_for_symbol(&server, "brain.v1.ProjectService").await;
    let service_file =
        files.iter().find(|f| f.name() == "brain/v1/project_service.proto").expect("project_service.proto");
    // The messages' file, as a tool asks for it next (reflection answers with the symbol's file).
    let project_files = files_for_symbol(&server, "brain.v1.Project").await;
    let project = project_files.iter().find(|f| f.name() == "brain/v1/project.proto").expect("project.proto");
    let service = service_file.service.iter().find(|s| s.name() == "ProjectService").expect("ProjectService");
    let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "CreateProject",
            "GetProject",
            "ListProjects",
            "UpdateProject",
            "DeleteProject",
            "ExportProject",
            "ImportProject",
            "UpsertScene",
            "DeleteScene",
            "ListScenes",
            "PutMemory",
            "DeleteMemory",
            "ListMemories"
        ]
    );
    // Its imports (timestamps, durations) resolve by file name, as tools ask for them.
    assert!(project.dependency.iter().any(|d| d == "google/protobuf/timestamp.proto"), "{:?}", project.dependency);
    for dependency in project.dependency.iter().chain(&service_file.dependency) {
        let request = v1::server_reflection_request::MessageRequest::FileByFilename(dependency.clone());
        match reflect_v1(&server, request).await {
            v1::server_reflection_response::MessageResponse::FileDescriptorResponse(found) => {
                let file = prost_types::FileDescriptorProto::decode(found.file_descriptor_proto[0].as_slice())
                    .expect("a file descriptor");
                assert_eq!(file.name(), dependency);
            }
            other => panic!("reflection cannot find {dependency}: {other:?}"),
        }
    }

    for service in SERVICE_NAMES {
        let files = files_for_symbol(&server, service).await;
        assert!(!files.is_empty(), "{service} has no descriptor");
    }
    // grpcurl decodes the ErrorInfo of failed calls through reflection.
    let files = files_for_symbol(&server, "google.rpc.ErrorInfo").await;
    assert!(files.iter().any(|f| f.message_type.iter().any(|m| m.name() == "ErrorInfo")));
    let files = files_for_symbol(&server, "brain.v1.ErrorReason").await;
    assert!(files.iter().any(|f| f.enum_type.iter().any(|e| e.name() == "ErrorReason")));
}

/// Health and reflection are for probes and tools: they work without a key when keys exist, and
/// while the store is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_no_key_and_no_store() {
    let db = TestDb::sqlite().await;
    create_key(&db, "acme");
    let server = Server::start(&db).await;
    assert_eq!(list_v1(&server).await, expected_services());
    assert_eq!(server.health("").await.expect("health without a key"), ServingStatus::Serving);

    let lock = db.lock_sqlite().await;
    server.wait_health("", ServingStatus::NotServing, Duration::from_secs(10)).await;
    assert_eq!(list_v1(&server).await, expected_services(), "reflection while the store is down");
    lock.release().await;
}

/// The real `grpcurl` (when installed) sees every service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_every_service() {
    let Some(grpcurl) = find_tool("grpcurl") else {
        eprintln!("skipped: grpcurl is not installed");
        return;
    };
    let db = TestDb::sqlite().await;
    let server = Server::start_with(&db, ServerOptions::new()).await;
    let output = std::process::Command::new(grpcurl)
        .args(["-plaintext", &server.addr.to_string(), "list"])
        .output()
        .expect("run grpcurl");
    assert!(output.status.success(), "grpcurl list failed: {}", String::from_utf8_lossy(&output.stderr));
    let listed: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(listed, expected_services());
}
