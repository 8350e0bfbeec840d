//! `brain projects create|get|update|delete|list`.

use brain_client::{BrainClient, proto};
use clap::Subcommand;

use crate::output::{Printer, clip, time};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project and print its id.
    Create {
        /// Project name, 1 to 200 characters.
        name: String,
        /// Optional description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show one project.
    Get {
        /// Project id.
        project_id: String,
    },
    /// Rename a project or change its description; only the options given change.
    Update {
        /// Project id.
        project_id: String,
        /// New name, 1 to 200 characters.
        #[arg(long)]
        name: Option<String>,
        /// New description (an empty string clears it).
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a project and everything in it; print how many rows of each kind were removed.
    Delete {
        /// Project id.
        project_id: String,
    },
    /// List projects, oldest first.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
}

/// Paging options shared by every list command.
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// Items per page (0: the server default of 50).
    #[arg(long, default_value_t = 0)]
    pub page_size: i32,
    /// Token of the page to fetch, from a previous `next_page_token`.
    #[arg(long, default_value = "")]
    pub page_token: String,
    /// Fetch every page.
    #[arg(long, conflicts_with = "page_token")]
    pub all: bool,
}

pub async fn run(client: &BrainClient, printer: &Printer, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Create { name, description } => {
            let project = client.create_project(proto::CreateProjectRequest { name, description }).await?;
            printer.emit(&project, "brain.v1.Project", || {
                println!("Created project {}  {}", project.project_id, project.name);
            })
        }
        Command::Get { project_id } => {
            let project = client.get_project(project_id).await?;
            printer.emit(&project, "brain.v1.Project", || {
                println!("Project     {}", project.project_id);
                println!("Name        {}", project.name);
                if !project.description.is_empty() {
                    println!("Description {}", project.description);
                }
                println!("Created     {}", time(project.create_time.as_ref()));
                println!("Updated     {}", time(project.update_time.as_ref()));
            })
        }
        Command::Update { project_id, name, description } => {
            let mut paths = Vec::new();
            if name.is_some() {
                paths.push("name".to_owned());
            }
            if description.is_some() {
                paths.push("description".to_owned());
            }
            anyhow::ensure!(!paths.is_empty(), "nothing to update: give --name or --description");
            let request = proto::UpdateProjectRequest {
                project: Some(proto::Project {
                    project_id,
                    name: name.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            };
            let project = client.update_project(request).await?;
            printer.emit(&project, "brain.v1.Project", || {
                println!("Updated project {}  {}", project.project_id, project.name);
            })
        }
        Command::Delete { project_id } => {
            let deleted = client.delete_project(project_id.clone()).await?;
            printer.emit(&deleted, "brain.v1.DeletedRows", || {
                println!("Deleted project {project_id}");
                for (kind, count) in [
                    ("Scenes", deleted.scenes),
                    ("Memory items", deleted.memory_items),
                    ("Conversation turns", deleted.conversation_turns),
                    ("Orchestrations", deleted.orchestrations),
                    ("Image analyses", deleted.image_analyses),
                    ("Jobs", deleted.jobs),
                    ("Events", deleted.events),
                ] {
                    println!("{kind:<19} {count}");
                }
            })
        }
        Command::List { page } => {
            let mut request =
                proto::ListProjectsRequest { page_size: page.page_size, page_token: page.page_token.clone() };
            let mut response = client.list_projects(request.clone()).await?;
            while page.all && !response.next_page_token.is_empty() {
                request.page_token = std::mem::take(&mut response.next_page_token);
                let next = client.list_projects(request.clone()).await?;
                response.projects.extend(next.projects);
                response.next_page_token = next.next_page_token;
            }
            printer.emit(&response, "brain.v1.ListProjectsResponse", || {
                println!("{:<38} {:<32} {:<24}", "PROJECT", "NAME", "UPDATED");
                for p in &response.projects {
                    println!("{:<38} {:<32} {:<24}", p.project_id, clip(&p.name, 32), time(p.update_time.as_ref()));
                }
                next_page_hint(&response.next_page_token);
            })
        }
    }
}

/// Tells the user how to fetch the next page, if there is one.
pub fn next_page_hint(token: &str) {
    if !token.is_empty() {
        println!("(more: --page-token {token}, or --all)");
    }
}
