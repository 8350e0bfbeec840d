use brain_client::{BrainClient, code_name, proto};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("BRAIN_ADDR").unwrap_or_else(|_| "127.0.0.1:50051".into());
    let client = BrainClient::connect(addr, std::env::var("BRAIN_API_KEY").ok().as_deref()).await?;

    let project = client
        .create_project(proto::CreateProjectRequest { name: "Launch video".into(), ..Default::default() })
        .await?;
    let id = project.project_id;
    let intro = proto::UpsertSceneRequest {
        project_id: id.clone(),
        name: "Intro".into(),
        summary: "Logo on dark blue".into(),
        ..Default::default()
    };
    client.upsert_scene(intro).await?;
    let scenes = client.list_scenes(proto::ListScenesRequest { project_id: id.clone(), ..Default::default() }).await?;
    println!("project {id} has {} scene(s)", scenes.scenes.len());

    let deleted = client.delete_project(id.clone()).await?; // the project and everything in it
    println!("deleted {} scene(s), {} memory item(s)", deleted.scenes, deleted.memory_items);
    if let Err(err) = client.get_project(id).await {
        println!("{} {}", code_name(err.code()), err.reason().unwrap_or("")); // NOT_FOUND PROJECT_NOT_FOUND
    }
    Ok(())
}
