//! `brain memory put|list|delete`.

use brain_client::{BrainClient, proto};
use clap::{Subcommand, ValueEnum};

use crate::{
    output::{Printer, clip, enum_name, time},
    projects::{PageArgs, next_page_hint},
};

/// A memory item's type, as the command line spells it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MemoryKind {
    /// Something the user prefers (style, pace, ...).
    Preference,
    /// How a scene relates to the conversation.
    Scene,
    /// The latest interaction.
    Conversation,
}

impl From<MemoryKind> for proto::MemoryType {
    fn from(kind: MemoryKind) -> Self {
        match kind {
            MemoryKind::Preference => proto::MemoryType::UserPreference,
            MemoryKind::Scene => proto::MemoryType::SceneRelationship,
            MemoryKind::Conversation => proto::MemoryType::ConversationContext,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or replace the item with this type and key.
    Put {
        /// Project id.
        project_id: String,
        /// Key within the type, e.g. "style".
        key: String,
        /// Value, e.g. "minimal".
        value: String,
        /// Type of item.
        #[arg(long = "type", value_enum, default_value = "preference")]
        kind: MemoryKind,
        /// Confidence from 0 to 1 (default 1).
        #[arg(long)]
        confidence: Option<f64>,
        /// Lifetime, e.g. 10m or 24h; never expires when omitted.
        #[arg(long, value_parser = crate::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List a project's memory items, oldest first.
    List {
        /// Project id.
        project_id: String,
        /// Only items of this type.
        #[arg(long = "type", value_enum)]
        kind: Option<MemoryKind>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Delete an item by --memory-id, or by --type and --key.
    Delete {
        /// Project id.
        project_id: String,
        /// Id of the item.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        memory_id: Option<String>,
        /// Key of the item (with --type).
        #[arg(long)]
        key: Option<String>,
        /// Type of the item (with --key).
        #[arg(long = "type", value_enum, default_value = "preference")]
        kind: MemoryKind,
    },
}

pub async fn run(client: &BrainClient, printer: &Printer, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Put { project_id, key, value, kind, confidence, ttl } => {
            let ttl =
                ttl.map(|d| prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 });
            let response = client
                .put_memory(proto::PutMemoryRequest {
                    project_id,
                    r#type: proto::MemoryType::from(kind) as i32,
                    key,
                    value,
                    confidence,
                    ttl,
                })
                .await?;
            printer.emit(&response, "brain.v1.PutMemoryResponse", || {
                let verb = if response.created { "Created" } else { "Updated" };
                if let Some(m) = &response.memory {
                    println!("{verb} memory {}  {} = {} ({} tokens)", m.memory_id, m.key, m.value, m.token_count);
                }
            })
        }
        Command::List { project_id, kind, page } => {
            let mut request = proto::ListMemoriesRequest {
                project_id,
                r#type: kind.map(|k| proto::MemoryType::from(k) as i32).unwrap_or_default(),
                page_size: page.page_size,
                page_token: page.page_token.clone(),
            };
            let mut response = client.list_memories(request.clone()).await?;
            while page.all && !response.next_page_token.is_empty() {
                request.page_token = std::mem::take(&mut response.next_page_token);
                let next = client.list_memories(request.clone()).await?;
                response.memories.extend(next.memories);
                response.next_page_token = next.next_page_token;
            }
            printer.emit(&response, "brain.v1.ListMemoriesResponse", || {
                println!(
                    "{:<20} {:<20} {:<32} {:>5} {:>6} {:<9} EXPIRES",
                    "TYPE", "KEY", "VALUE", "CONF", "TOKENS", "SOURCE"
                );
                for m in &response.memories {
                    println!(
                        "{:<20} {:<20} {:<32} {:>5.2} {:>6} {:<9} {}",
                        enum_name(m.r#type().as_str_name(), "MEMORY_TYPE_"),
                        clip(&m.key, 20),
                        clip(&m.value, 32),
                        m.confidence,
                        m.token_count,
                        enum_name(m.source().as_str_name(), "MEMORY_SOURCE_"),
                        time(m.expire_time.as_ref()),
                    );
                }
                next_page_hint(&response.next_page_token);
            })
        }
        Command::Delete { project_id, memory_id, key, kind } => {
            let target = match (memory_id, key) {
                (Some(id), _) => proto::delete_memory_request::Target::MemoryId(id),
                (None, Some(key)) => proto::delete_memory_request::Target::MemoryKey(proto::MemoryKey {
                    r#type: proto::MemoryType::from(kind) as i32,
                    key,
                }),
                (None, None) => anyhow::bail!("give --memory-id, or --key (and --type)"),
            };
            client.delete_memory(proto::DeleteMemoryRequest { project_id, target: Some(target) }).await?;
            if printer.is_json() {
                println!("{{}}");
            } else {
                println!("Deleted");
            }
            Ok(())
        }
    }
}
