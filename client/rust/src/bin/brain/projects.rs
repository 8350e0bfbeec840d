//! `brain projects create|get|update|delete|list|export|import`.

use std::{
    fs::File,
    io::{BufWriter, IsTerminal, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context;
use brain_client::{BrainClient, BrainError, proto, proto::project_record::Record};
use clap::Subcommand;
use futures::StreamExt;
use tokio::io::{AsyncBufRead, BufReader};

use crate::{
    jsonl,
    output::{Printer, clip, time},
    progress::{Counter, Progress},
};

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
    /// Export a project as JSON Lines: one brain.v1.ProjectRecord per line (proto3 JSON), the
    /// header first, then scenes, memory items, conversation turns and image analyses.
    /// Not cut off by --timeout. A progress bar goes to stderr when it is a terminal.
    Export {
        /// Project id.
        project_id: String,
        /// Write to this file (replaced only once the export is complete) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create a new project from an export (JSON Lines, blank lines skipped) and show it.
    /// Not cut off by --timeout; nothing of a failed import stays on the server.
    Import {
        /// The export file; "-" or none: stdin.
        file: Option<PathBuf>,
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
        Command::Export { project_id, output } => export(client, printer, project_id, output).await,
        Command::Import { file } => import(client, printer, file).await,
    }
}

/// `-` as a path means stdin or stdout.
fn named_file(path: Option<PathBuf>) -> Option<PathBuf> {
    path.filter(|p| p.as_os_str() != "-")
}

async fn export(
    client: &BrainClient,
    printer: &Printer,
    project_id: String,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let path = named_file(output);
    // Opened first, so a project that is not there leaves no file behind.
    let mut records = client.export_project(project_id.clone()).await?;
    let mut sink = Sink::open(path.as_deref())?;
    // Not over records going to this same terminal.
    let progress = Progress::start("Exporting", path.is_some() || !std::io::stdout().is_terminal());
    let counter = progress.counter();
    let mut header = None;
    let mut seen = proto::ProjectRecordCounts::default();
    while let Some(record) = records.next().await {
        let record = record?;
        match (&record.record, &header) {
            (Some(Record::Header(h)), None) => {
                counter.set_total(jsonl::total(h));
                header = Some(h.clone());
            }
            (_, None) => {
                anyhow::bail!(
                    "the export of {project_id} starts with a record of kind {}, not with its header",
                    jsonl::kind(&record)
                )
            }
            (Some(Record::Header(_)) | None, Some(_)) => {
                anyhow::bail!(
                    "the export of {project_id} has another record of kind {} after its header",
                    jsonl::kind(&record)
                )
            }
            (Some(Record::Scene(_)), _) => seen.scenes += 1,
            (Some(Record::Memory(_)), _) => seen.memory_items += 1,
            (Some(Record::Turn(_)), _) => seen.conversation_turns += 1,
            (Some(Record::Image(_)), _) => seen.image_analyses += 1,
        }
        writeln!(sink.writer(), "{}", jsonl::to_line(&record)?).context(sink.describe())?;
        counter.inc();
    }
    let header = header.with_context(|| format!("the export of {project_id} ended before its header"))?;
    let expected = header.counts.unwrap_or_default();
    anyhow::ensure!(
        seen == expected,
        "the export of {project_id} ended early: {} of {} scenes, {} of {} memory items, {} of {} turns, {} of {} images",
        seen.scenes,
        expected.scenes,
        seen.memory_items,
        expected.memory_items,
        seen.conversation_turns,
        expected.conversation_turns,
        seen.image_analyses,
        expected.image_analyses,
    );
    sink.commit()?;
    progress.finish();
    // On stdout the records are the output; with --output, say what was written.
    if let Some(path) = path {
        printer.emit(&header, "brain.v1.ExportHeader", || {
            let name = header.project.as_ref().map_or("", |p| p.name.as_str());
            println!("Exported project {project_id}  {name}  to {}", path.display());
            print_counts(&expected);
        })?;
    }
    Ok(())
}

async fn import(client: &BrainClient, printer: &Printer, file: Option<PathBuf>) -> anyhow::Result<()> {
    let (input, source): (Box<dyn AsyncBufRead + Send + Unpin>, String) = match named_file(file) {
        Some(path) => {
            let file = tokio::fs::File::open(&path).await.with_context(|| format!("cannot open {}", path.display()))?;
            (Box::new(BufReader::with_capacity(256 * 1024, file)), path.display().to_string())
        }
        None => (Box::new(BufReader::with_capacity(256 * 1024, tokio::io::stdin())), "stdin".to_owned()),
    };
    let mut reader = jsonl::Reader::new(input, source.clone());
    // The header is read before the call: it gives the bar its total, and an empty input
    // fails here instead of as the server's truncated import.
    let first = reader
        .next_record()
        .await?
        .with_context(|| format!("{source} holds no records (an export starts with its header line)"))?;
    let progress = Progress::start("Importing", true);
    let counter = progress.counter();
    if let Some(Record::Header(header)) = &first.1.record {
        counter.set_total(jsonl::total(header));
    }

    // The line of each record sent, to point at the line the server's `records[N]` names.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    let state = Sending { first: Some(first), reader, failed: Some(failed_tx), counter, lines: Arc::clone(&lines) };
    let records = futures::stream::unfold(state, |mut state| async move {
        let next = match state.first.take() {
            Some(first) => Ok(Some(first)),
            None => state.reader.next_record().await,
        };
        match next {
            Ok(Some((line, record))) => {
                state.lines.lock().expect("lines").push(line);
                state.counter.inc();
                Some((record, state))
            }
            Ok(None) => None,
            Err(err) => {
                // Ending the stream would look like a complete import to the server; the
                // call is dropped instead (below), which resets it, and the server removes
                // what it stored.
                if let Some(failed) = state.failed.take() {
                    let _ = failed.send(err);
                }
                std::future::pending().await
            }
        }
    });
    let response = tokio::select! {
        biased;
        Ok(err) = failed_rx => return Err(err),
        response = client.import_project(records) => response,
    };
    let response = response.map_err(|err| at_line(err, &lines.lock().expect("lines"), &source))?;
    progress.finish();
    let project = response.project.context("the server's response has no project")?;
    printer.emit(&project, "brain.v1.Project", || {
        println!("Imported project {}  {}", project.project_id, project.name);
        print_counts(&response.imported.unwrap_or_default());
    })
}

/// What the record stream of an import carries between records.
struct Sending {
    first: Option<(u64, proto::ProjectRecord)>,
    reader: jsonl::Reader<Box<dyn AsyncBufRead + Send + Unpin>>,
    failed: Option<tokio::sync::oneshot::Sender<anyhow::Error>>,
    counter: Counter,
    lines: Arc<Mutex<Vec<u64>>>,
}

/// The server's error, prefixed with the input line of the record it names (`records[N]...`).
fn at_line(err: BrainError, lines: &[u64], source: &str) -> anyhow::Error {
    let line = err
        .field()
        .and_then(|f| f.strip_prefix("records["))
        .and_then(|f| f.split_once(']'))
        .and_then(|(index, _)| index.parse::<usize>().ok())
        .and_then(|index| lines.get(index).copied());
    match line {
        Some(line) => anyhow::Error::new(err).context(format!("{source} line {line}")),
        None => err.into(),
    }
}

fn print_counts(counts: &proto::ProjectRecordCounts) {
    for (kind, count) in [
        ("Scenes", counts.scenes),
        ("Memory items", counts.memory_items),
        ("Conversation turns", counts.conversation_turns),
        ("Image analyses", counts.image_analyses),
    ] {
        println!("{kind:<19} {count}");
    }
}

/// Where an export goes: stdout, or a file written beside its final name and renamed into
/// place once complete, so a failed export never leaves a partial file (or replaces a good one).
enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File { writer: BufWriter<File>, partial: PathBuf, path: PathBuf, done: bool },
}

impl Sink {
    fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::Stdout(BufWriter::new(std::io::stdout()))) };
        let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
        let partial = path.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        let file = File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
        Ok(Self::File { writer: BufWriter::new(file), partial, path: path.to_owned(), done: false })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Self::Stdout(writer) => writer,
            Self::File { writer, .. } => writer,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Stdout(_) => "cannot write to stdout".to_owned(),
            Self::File { partial, .. } => format!("cannot write to {}", partial.display()),
        }
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        let context = self.describe();
        self.writer().flush().context(context.clone())?;
        if let Self::File { writer, partial, path, done } = self {
            writer.get_ref().sync_all().context(context)?;
            std::fs::rename(&*partial, &*path)
                .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
            *done = true;
        }
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Self::File { partial, done: false, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// Tells the user how to fetch the next page, if there is one.
pub fn next_page_hint(token: &str) {
    if !token.is_empty() {
        println!("(more: --page-token {token}, or --all)");
    }
}
