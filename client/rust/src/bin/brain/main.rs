//! `brain`: the command-line client of brain. See `brain --help`.
//!
//! Each subcommand lives in its own module and prints through [`output::Printer`]:
//! human-readable text by default, proto3 JSON (as grpcurl prints it) with `--json`.
//! New subcommands (for example a load generator) add a variant to [`Command`]
//! and a module next to the others.

mod jsonl;
mod memory;
mod orchestrate;
mod output;
mod progress;
mod projects;
mod report;
mod scenes;
mod stress;
mod watch;

use std::{process::ExitCode, time::Duration};

use brain_client::{BrainClient, BrainError};
use clap::{Args, Parser, Subcommand};

use crate::output::Printer;

/// Command-line client for brain: projects, scenes, memory, orchestration, image facts and performance.
#[derive(Debug, Parser)]
#[command(name = "brain", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
struct Global {
    /// Server address, host:port or http://host:port.
    #[arg(long, global = true, env = "BRAIN_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// API key (brk_...), sent as `authorization: Bearer <key>`.
    #[arg(long, global = true, env = "BRAIN_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print proto3 JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Deadline of each call, e.g. 500ms, 10s, 2m.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, show, update, delete, list, export and import projects.
    #[command(subcommand)]
    Projects(projects::Command),
    /// Add, replace, list and delete a project's scenes.
    #[command(subcommand)]
    Scenes(scenes::Command),
    /// Write, list and delete a project's memory items.
    #[command(subcommand)]
    Memory(memory::Command),
    /// Send one prompt (with optional images) and show the decision.
    Orchestrate(orchestrate::Args),
    /// Follow a project's image events; resumes by cursor across disconnects.
    Watch(watch::Args),
    /// Show the performance report.
    Report(report::Args),
    /// Send a mix of calls for a while; compare client-side latencies with the server's report.
    Stress(stress::Args),
    /// Check the server's health.
    Health,
}

/// Parses `500ms`, `10s`, `2m`, `1h` or a bare number of seconds.
pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{raw}' is not a duration like 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit '{other}' in '{raw}' (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{raw}': {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.json);
    match run(cli, &printer).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<()> {
    let client = connect(&cli.global).await?;
    match cli.command {
        Command::Projects(command) => projects::run(&client, printer, command).await,
        Command::Scenes(command) => scenes::run(&client, printer, command).await,
        Command::Memory(command) => memory::run(&client, printer, command).await,
        Command::Orchestrate(args) => orchestrate::run(&client, printer, args).await,
        Command::Watch(args) => watch::run(&client, printer, args).await,
        Command::Report(args) => report::run(&client, printer, args).await,
        Command::Stress(args) => stress::run(&client, printer, args, &cli.global).await,
        Command::Health => {
            let status = client.health().await?;
            printer.health(status);
            Ok(())
        }
    }
}

async fn connect(global: &Global) -> Result<BrainClient, BrainError> {
    let mut builder = BrainClient::builder(global.addr.clone()).timeout(global.timeout);
    if let Some(key) = global.api_key.as_deref().filter(|k| !k.is_empty()) {
        builder = builder.api_key(key);
    }
    builder.connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 days").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
