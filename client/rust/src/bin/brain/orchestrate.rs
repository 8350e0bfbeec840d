//! `brain orchestrate`: one prompt, optionally with images, and the decision.

use std::path::PathBuf;

use brain_client::{BrainClient, proto};
use futures::StreamExt;

use crate::output::{Printer, enum_name};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Project id.
    project_id: String,
    /// The user's prompt.
    prompt: String,
    /// Attach an image file (PNG, JPEG, WebP or GIF); repeatable.
    #[arg(long = "image", value_name = "PATH")]
    images: Vec<PathBuf>,
    /// Attach an image by http(s) URL, fetched by the server; repeatable.
    #[arg(long = "image-url", value_name = "URL")]
    image_urls: Vec<String>,
    /// Idempotency key: a retry with the same key returns the stored result.
    #[arg(long, default_value = "")]
    request_id: String,
    /// Token budget of the enhanced prompt (0: the server default).
    #[arg(long, default_value_t = 0)]
    budget: u32,
    /// Stream progress (context, decision, image events) instead of waiting for the result.
    #[arg(long)]
    stream: bool,
    /// With --stream: how long the server waits for the images' events, e.g. 30s.
    #[arg(long, value_parser = crate::parse_duration, requires = "stream")]
    image_wait: Option<std::time::Duration>,
    /// Also print the enhanced prompt.
    #[arg(long)]
    show_prompt: bool,
}

pub async fn run(client: &BrainClient, printer: &Printer, args: Args) -> anyhow::Result<()> {
    let mut images = Vec::new();
    for path in &args.images {
        let data = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        images.push(proto::ImageInput {
            source: Some(proto::image_input::Source::Data(data.into())),
            ..Default::default()
        });
    }
    for url in &args.image_urls {
        images.push(proto::ImageInput {
            source: Some(proto::image_input::Source::Url(url.clone())),
            ..Default::default()
        });
    }
    if args.stream {
        return stream(client, printer, args, images).await;
    }
    let response = client
        .orchestrate(proto::OrchestrateRequest {
            project_id: args.project_id,
            prompt: args.prompt,
            images,
            request_id: args.request_id,
            token_budget: args.budget,
        })
        .await?;
    printer.emit(&response, "brain.v1.OrchestrateResponse", || {
        if let Some(o) = &response.orchestration {
            print_orchestration(o, response.replayed, args.show_prompt);
        }
    })
}

async fn stream(
    client: &BrainClient,
    printer: &Printer,
    args: Args,
    images: Vec<proto::ImageInput>,
) -> anyhow::Result<()> {
    let image_wait =
        args.image_wait.map(|d| prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 });
    let mut events = client
        .orchestrate_stream(proto::OrchestrateStreamRequest {
            project_id: args.project_id,
            prompt: args.prompt,
            images,
            request_id: args.request_id,
            token_budget: args.budget,
            image_wait,
        })
        .await?;
    // The stored orchestration lists its images as accepted (pending); the summary shows what
    // the stream said of each since.
    let mut seen: Vec<(String, proto::ImageAnalysisStatus)> = Vec::new();
    while let Some(message) = events.next().await {
        let message = message?;
        if let Some(proto::orchestrate_stream_response::Event::ImageEvent(e)) = &message.event {
            let status = match e.r#type() {
                proto::EventType::ImageFactsReady | proto::EventType::ImageFactsProcessed => {
                    Some(proto::ImageAnalysisStatus::Ready)
                }
                proto::EventType::ImageFactsFailed => Some(proto::ImageAnalysisStatus::Failed),
                proto::EventType::Unspecified => None,
            };
            if let Some(status) = status {
                seen.retain(|(id, _)| id != &e.image_id);
                seen.push((e.image_id.clone(), status));
            }
        }
        printer.emit_line(&message, "brain.v1.OrchestrateStreamResponse", || {
            use proto::orchestrate_stream_response::Event;
            match &message.event {
                Some(Event::ContextBuilt(c)) => {
                    let tokens = c.token_report.as_ref().map(|t| t.total_after).unwrap_or_default();
                    println!("context built: {tokens} tokens");
                }
                Some(Event::DecisionMade(d)) => {
                    println!("decision made: orchestration {}", d.orchestration_id);
                    if let Some(decision) = &d.decision {
                        print_decision(decision);
                    }
                }
                Some(Event::ImageEvent(e)) => println!("{}", crate::watch::event_line(e)),
                Some(Event::Completed(c)) => {
                    println!("completed");
                    if let Some(o) = &c.orchestration {
                        let mut o = o.clone();
                        for image in &mut o.images {
                            if let Some((_, status)) = seen.iter().find(|(id, _)| id == &image.image_id) {
                                image.set_status(*status);
                            }
                        }
                        print_orchestration(&o, c.replayed, args.show_prompt);
                    }
                    if !c.pending_image_ids.is_empty() {
                        println!("Still analysing {}", c.pending_image_ids.join(", "));
                    }
                }
                None => {}
            }
        })?;
    }
    Ok(())
}

fn print_orchestration(o: &proto::Orchestration, replayed: bool, show_prompt: bool) {
    let replay = if replayed { " (replayed)" } else { "" };
    println!("Orchestration {}{replay}", o.orchestration_id);
    if let Some(decision) = &o.decision {
        print_decision(decision);
    }
    if let Some(t) = &o.token_report {
        let cut =
            if t.truncated { format!(", truncated ({} items dropped or cut)", t.dropped.len()) } else { String::new() };
        println!("Tokens      {} of {} ({}){cut}", t.total_after, t.budget, t.encoding);
    }
    for image in &o.images {
        println!(
            "Image       {} {}",
            image.image_id,
            enum_name(image.status().as_str_name(), "IMAGE_ANALYSIS_STATUS_")
        );
    }
    if o.degraded {
        println!("Degraded    {}", o.degraded_reason);
    }
    if let Some(t) = &o.timings {
        println!(
            "Timings     {:.1} ms (context {:.1}, budget {:.1}, decision {:.1}, persistence {:.1}, images {:.1})",
            t.total_ms, t.context_build_ms, t.token_budget_ms, t.decision_ms, t.persistence_ms, t.image_enqueue_ms
        );
    }
    if show_prompt {
        println!("--- enhanced prompt ---\n{}", o.enhanced_prompt);
    }
}

fn print_decision(decision: &proto::Decision) {
    use proto::decision::Outcome;
    let backend = enum_name(decision.backend().as_str_name(), "DECISION_BACKEND_");
    match &decision.outcome {
        Some(Outcome::ToolCall(call)) => {
            println!("Decision    {} ({backend}, confidence {:.2})", tool_line(call), decision.confidence)
        }
        Some(Outcome::Workflow(workflow)) => {
            println!(
                "Decision    workflow of {} steps ({backend}, confidence {:.2})",
                workflow.steps.len(),
                decision.confidence
            );
            for (i, step) in workflow.steps.iter().enumerate() {
                println!("  {}. {}", i + 1, tool_line(step));
            }
        }
        Some(Outcome::Clarification(c)) => {
            println!("Decision    ask: {} ({backend})", c.question);
            if !c.candidate_scene_ids.is_empty() {
                println!("            candidates: {}", c.candidate_scene_ids.join(", "));
            }
        }
        None => println!("Decision    none"),
    }
    if !decision.reasoning.is_empty() {
        println!("Reasoning   {}", decision.reasoning);
    }
    if !decision.fallback_reason.is_empty() {
        println!("Fallback    {}", decision.fallback_reason);
    }
}

fn tool_line(call: &proto::ToolCall) -> String {
    let mut line = enum_name(call.tool().as_str_name(), "TOOL_");
    if !call.target_scene_id.is_empty() {
        line.push_str(&format!(" scene {}", call.target_scene_id));
    }
    if call.complexity() != proto::EditComplexity::Unspecified {
        line.push_str(&format!(" [{}]", enum_name(call.complexity().as_str_name(), "EDIT_COMPLEXITY_")));
    }
    if let Some(p) = &call.params {
        if let Some(d) = p.duration_seconds {
            line.push_str(&format!(" duration={d}s"));
        }
        if let Some(pos) = p.insert_position {
            line.push_str(&format!(" at={pos}"));
        }
        if !p.image_ids.is_empty() {
            line.push_str(&format!(" images={}", p.image_ids.join(",")));
        }
        let mut attributes: Vec<_> = p.attributes.iter().collect();
        attributes.sort();
        for (k, v) in attributes {
            line.push_str(&format!(" {k}={v:?}"));
        }
    }
    line
}
