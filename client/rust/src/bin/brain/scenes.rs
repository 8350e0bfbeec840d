//! `brain scenes upsert|list|delete`.

use brain_client::{BrainClient, proto};
use clap::Subcommand;

use crate::{
    output::{Printer, clip, enum_name},
    projects::{PageArgs, next_page_hint},
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a scene, or replace the scene with --scene-id.
    Upsert {
        /// Project id.
        project_id: String,
        /// Display name, e.g. "Intro".
        #[arg(long)]
        name: String,
        /// Id of the scene to replace or create; the server assigns one when omitted.
        #[arg(long, default_value = "")]
        scene_id: String,
        /// 0-based position; omitted appends a new scene and keeps an existing one in place.
        #[arg(long)]
        position: Option<u32>,
        /// What the scene shows.
        #[arg(long, default_value = "")]
        summary: String,
        /// Length in seconds.
        #[arg(long)]
        duration: Option<f64>,
        /// Mark the scene as broken (it does not render).
        #[arg(long)]
        broken: bool,
    },
    /// List a project's scenes in position order.
    List {
        /// Project id.
        project_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Delete a scene.
    Delete {
        /// Project id.
        project_id: String,
        /// Scene id.
        scene_id: String,
    },
}

pub async fn run(client: &BrainClient, printer: &Printer, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Upsert { project_id, name, scene_id, position, summary, duration, broken } => {
            let status = if broken { proto::SceneStatus::Broken } else { proto::SceneStatus::Ok };
            let response = client
                .upsert_scene(proto::UpsertSceneRequest {
                    project_id,
                    scene_id,
                    name,
                    position,
                    summary,
                    duration_seconds: duration,
                    status: status as i32,
                })
                .await?;
            printer.emit(&response, "brain.v1.UpsertSceneResponse", || {
                let verb = if response.created { "Created" } else { "Replaced" };
                if let Some(scene) = &response.scene {
                    println!(
                        "{verb} scene {} at position {}  {} ({} summary tokens)",
                        scene.scene_id, scene.position, scene.name, scene.summary_tokens
                    );
                }
            })
        }
        Command::List { project_id, page } => {
            let mut request =
                proto::ListScenesRequest { project_id, page_size: page.page_size, page_token: page.page_token.clone() };
            let mut response = client.list_scenes(request.clone()).await?;
            while page.all && !response.next_page_token.is_empty() {
                request.page_token = std::mem::take(&mut response.next_page_token);
                let next = client.list_scenes(request.clone()).await?;
                response.scenes.extend(next.scenes);
                response.next_page_token = next.next_page_token;
            }
            printer.emit(&response, "brain.v1.ListScenesResponse", || {
                println!("{:>3}  {:<38} {:<20} {:>8} {:<7} SUMMARY", "POS", "SCENE", "NAME", "SECONDS", "STATUS");
                for s in &response.scenes {
                    let seconds = s.duration_seconds.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into());
                    let status = enum_name(s.status().as_str_name(), "SCENE_STATUS_");
                    println!(
                        "{:>3}  {:<38} {:<20} {:>8} {:<7} {}",
                        s.position,
                        s.scene_id,
                        clip(&s.name, 20),
                        seconds,
                        status,
                        clip(&s.summary, 60)
                    );
                }
                next_page_hint(&response.next_page_token);
            })
        }
        Command::Delete { project_id, scene_id } => {
            client.delete_scene(project_id, scene_id.clone()).await?;
            if printer.is_json() {
                println!("{{}}");
            } else {
                println!("Deleted scene {scene_id}");
            }
            Ok(())
        }
    }
}
