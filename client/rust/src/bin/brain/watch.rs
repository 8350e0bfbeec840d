//! `brain watch`: follow a project's image events, resuming by cursor.

use brain_client::{BrainClient, proto};
use futures::StreamExt;

use crate::output::{Printer, enum_name};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Project id.
    project_id: String,
    /// Deliver events after this cursor (0: the whole stored log).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Only events of this orchestration's images.
    #[arg(long, default_value = "")]
    orchestration_id: String,
    /// Exit after this many events.
    #[arg(long)]
    limit: Option<u64>,
}

pub async fn run(client: &BrainClient, printer: &Printer, args: Args) -> anyhow::Result<()> {
    let mut watch = client.watch_image_facts_with(proto::WatchImageFactsRequest {
        project_id: args.project_id,
        after_cursor: args.after,
        orchestration_id: args.orchestration_id,
    });
    let mut seen = 0u64;
    while args.limit.is_none_or(|limit| seen < limit) {
        let Some(event) = watch.next().await else { break };
        let event = event?;
        seen += 1;
        printer.emit_line(&event, "brain.v1.ImageFactsEvent", || println!("{}", event_line(&event)))?;
    }
    Ok(())
}

/// One event on one line: cursor, type, image, and what arrived.
pub fn event_line(e: &proto::ImageFactsEvent) -> String {
    let mut line = format!("#{} {} image {}", e.cursor, enum_name(e.r#type().as_str_name(), "EVENT_TYPE_"), e.image_id);
    if let Some(f) = &e.facts {
        let palette: Vec<&str> = f.palette.iter().map(|c| c.hex.as_str()).collect();
        line.push_str(&format!(" {}x{} mood={} palette={}", f.width, f.height, f.mood, palette.join(",")));
    }
    if !e.error.is_empty() {
        line.push_str(&format!(" error={:?}", e.error));
    }
    for p in &e.derived_preferences {
        line.push_str(&format!(" {}={:?}", p.key, p.value));
    }
    line
}
