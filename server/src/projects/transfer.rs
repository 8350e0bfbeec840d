//! ExportProject and ImportProject: a project as a stream of records
//! (brain/v1/project_service.proto says what each carries and in which order).
//!
//! An export reads one snapshot page by page, in a task that feeds a bounded
//! channel, so a slow client holds a snapshot, not memory. An import checks each
//! record as the write RPCs check their input, recounts token counts, and writes
//! batches into a project that stays hidden until the last record is stored;
//! whatever ends it early (bad input, the store, the client hanging up) removes
//! what it wrote.

use std::{collections::HashSet, time::Instant};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Projects, check_confidence, check_scene_duration};
use crate::{
    context::{render, tokens},
    error::{Error, Result},
    model::{
        EXPORT_FORMAT_VERSION, ExportHeader, ExportedTurn, ImageAnalysis, ImageStatus, MemoryItem, MemoryType, Project,
        ProjectRecord, RecordCounts, Scene, TenantId, new_id, now_ms,
    },
    store::{ExportSnapshot, GlobalId, ImportRows},
    validate,
};

/// Rows an export reads per query.
const EXPORT_PAGE_ROWS: u64 = 500;
/// Records an export buffers ahead of a slow client.
const EXPORT_BUFFER: usize = 64;
/// Rows an import writes per transaction: like DeleteProject's chunks, a few ms of writer time.
const IMPORT_BATCH_ROWS: usize = 500;
/// Most records one import takes (the contract states it).
pub const MAX_IMPORT_RECORDS: u64 = 1_000_000;
/// Longest prompt or decision summary of an imported turn, and source prompt of a memory item,
/// in bytes: well above `max_prompt_bytes`' default (32 KiB), so exports of servers that raised it
/// still import.
const MAX_TURN_TEXT_BYTES: usize = 1024 * 1024;
/// Longest image URL, MIME type or analysis error kept from an export, in characters.
const MAX_IMAGE_TEXT_CHARS: usize = 8_192;
/// What an analysis unfinished at export time says once imported.
const UNFINISHED_ANALYSIS: &str = "the image was still being analysed when its project was exported; its bytes are not in the export, so send it again";

impl Projects {
    /// The tenant's project as records, from one snapshot: the header, scenes in
    /// position order, memory items, turns (archived ones first) and image
    /// analyses. PROJECT_NOT_FOUND before anything streams.
    pub async fn export(
        &self,
        tenant: &TenantId,
        project_id: &str,
    ) -> Result<impl Stream<Item = Result<ProjectRecord>> + Send + 'static + use<>> {
        let project_id = validate::id("project_id", project_id)?;
        let (snapshot, header) = self.store.export_snapshot(tenant, &project_id).await?;
        let (tx, rx) = mpsc::channel(EXPORT_BUFFER);
        tokio::spawn(async move {
            if let Err(err) = send_export(&snapshot, header, &tx).await {
                tracing::warn!(project_id = %project_id, error = %err, "an export stopped early");
                let _ = tx.send(Err(err)).await;
            }
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Creates a project for the tenant from an export's records; the project
    /// and what was stored. Bad input is INVALID_ARGUMENT naming the record
    /// (`records[N]...`); nothing of a failed import stays.
    pub async fn import<S>(&self, tenant: &TenantId, mut records: S) -> Result<(Project, RecordCounts)>
    where
        S: Stream<Item = Result<ProjectRecord>> + Unpin + Send,
    {
        let header = match records.next().await {
            Some(Ok(ProjectRecord::Header(header))) => header,
            Some(Ok(other)) => {
                let message = format!("the first record must be the header, not a {}", other.kind());
                return Err(Error::invalid("header", message).in_record(0));
            }
            Some(Err(err)) => return Err(err),
            None => return Err(Error::missing("header").in_record(0)),
        };
        let header = checked_header(header).map_err(|e| e.in_record(0))?;
        let project_id = self.store.begin_import(tenant, &header).await?;
        let mut unfinished = Unfinished { projects: self.clone(), project_id: Some(project_id.clone()) };
        let mut import = Import::new(header.counts);
        let mut index = 0;
        let mut batch_started = Instant::now();
        while let Some(record) = records.next().await {
            index += 1;
            import.add(record?).map_err(|e| e.in_record(index))?;
            if import.batch.len() >= IMPORT_BATCH_ROWS {
                self.write_batch(tenant, &project_id, &mut import).await?;
                // A pause as long as the batch took (checking, counting tokens, writing), as
                // DeleteProject pauses after each chunk: an import gets at most half of the
                // writer and of a core, and other projects' writes go between its batches.
                tokio::time::sleep(batch_started.elapsed()).await;
                batch_started = Instant::now();
            }
        }
        import.check_complete().map_err(|e| e.in_record(index + 1))?;
        self.write_batch(tenant, &project_id, &mut import).await?;
        let project = self.store.finish_import(tenant, &project_id).await?;
        unfinished.project_id = None;
        tracing::info!(project_id = %project.id, records = import.seen.total(), "imported a project");
        Ok((project, import.seen))
    }

    /// Writes the records gathered so far. Memory item and turn ids are kept
    /// unless this store already holds them (ImportProject's contract).
    async fn write_batch(&self, tenant: &TenantId, project_id: &str, import: &mut Import) -> Result<()> {
        let mut rows = std::mem::take(&mut import.batch);
        if rows.is_empty() {
            return Ok(());
        }
        let memory_ids: Vec<String> = rows.memories.iter().map(|m| m.id.clone()).collect();
        let taken = self.store.taken_ids(GlobalId::Memory, &memory_ids).await?;
        for memory in rows.memories.iter_mut().filter(|m| taken.contains(&m.id)) {
            memory.id = new_id();
        }
        if !rows.turns.is_empty() {
            if import.turn_ids_in_store.is_none() {
                // One decision for all turns: context packets order turns by id, so new ids
                // must keep the order of the old ones, which only numbering them all does.
                let ids: Vec<String> = rows.turns.iter().map(|t| t.turn.id.clone()).collect();
                let taken = self.store.taken_ids(GlobalId::Turn, &ids).await?;
                import.turn_ids_in_store =
                    Some(if taken.is_empty() { TurnIds::Kept } else { TurnIds::Renumbered(OrderedIds::new()) });
            }
            if let Some(TurnIds::Renumbered(ids)) = &mut import.turn_ids_in_store {
                for turn in &mut rows.turns {
                    turn.turn.id = ids.next_id();
                }
            }
        }
        self.store.import_rows(tenant, project_id, &rows).await
    }
}

/// Sends the snapshot's records to `tx`; stops quietly when the client has gone.
async fn send_export(
    snapshot: &ExportSnapshot,
    header: ExportHeader,
    tx: &mpsc::Sender<Result<ProjectRecord>>,
) -> Result<()> {
    if tx.send(Ok(ProjectRecord::Header(header))).await.is_err() {
        return Ok(());
    }
    let sent = send_pages(tx, |after| snapshot.scenes(after, EXPORT_PAGE_ROWS), |s| s.position, ProjectRecord::Scene)
        .await?
        && send_pages(
            tx,
            |after| snapshot.memories(after, EXPORT_PAGE_ROWS),
            |m| (m.memory_type.as_str().to_owned(), m.id.clone()),
            ProjectRecord::Memory,
        )
        .await?;
    if !sent {
        return Ok(());
    }
    for archived in [true, false] {
        let turns = |after| snapshot.turns(archived, after, EXPORT_PAGE_ROWS);
        if !send_pages(tx, turns, |t| t.turn.id.clone(), ProjectRecord::Turn).await? {
            return Ok(());
        }
    }
    let image = |a: ImageAnalysis| ProjectRecord::Image(Box::new(a));
    send_pages(tx, |after| snapshot.images(after, EXPORT_PAGE_ROWS), |a| a.image_id.clone(), image).await?;
    Ok(())
}

/// Reads pages with `page(after)` (keyed by `key` of the last item) until one is
/// empty, sending each item as a record; false when the client has gone.
async fn send_pages<T, K, P, F>(
    tx: &mpsc::Sender<Result<ProjectRecord>>,
    mut page: P,
    key: impl Fn(&T) -> K,
    record: impl Fn(T) -> ProjectRecord,
) -> Result<bool>
where
    P: FnMut(Option<K>) -> F,
    F: Future<Output = Result<Vec<T>>>,
{
    let mut after = None;
    loop {
        let items = page(after.take()).await?;
        let Some(last) = items.last() else { return Ok(true) };
        after = Some(key(last));
        for item in items {
            if tx.send(Ok(record(item))).await.is_err() {
                return Ok(false);
            }
        }
    }
}

/// Removes an import's project unless the import completed (dropped on every
/// early end, a client that hangs up included).
struct Unfinished {
    projects: Projects,
    project_id: Option<String>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(project_id) = self.project_id.take() else { return };
        if tokio::runtime::Handle::try_current().is_err() {
            // Dropped outside the runtime (it is shutting down): the next start removes it.
            tracing::warn!(project_id = %project_id, "an unfinished import is left for the next start to remove");
            return;
        }
        tracing::info!(project_id = %project_id, "removing an import that did not complete");
        // Outcome not awaited: the removal retries by itself, and a restart finishes it.
        drop(self.projects.spawn_removal(project_id));
    }
}

/// How an import's turns are numbered.
enum TurnIds {
    /// The export's ids: this store holds none of them.
    Kept,
    /// New ids in the export's order.
    Renumbered(OrderedIds),
}

/// UUIDv7 ids that sort in the order they are made: one timestamp, a random
/// prefix and a counter in the bits UUIDv7 leaves to randomness.
struct OrderedIds {
    millis: u64,
    prefix: [u8; 3],
    next: u64,
}

impl OrderedIds {
    fn new() -> Self {
        Self { millis: now_ms().max(0) as u64, prefix: rand::random(), next: 0 }
    }

    fn next_id(&mut self) -> String {
        let mut bytes = [0; 10];
        bytes[..3].copy_from_slice(&self.prefix);
        // 56 bits of counter in the last 7 bytes, which the version and variant bits leave alone.
        bytes[3..].copy_from_slice(&self.next.to_be_bytes()[1..]);
        self.next += 1;
        uuid::Builder::from_unix_timestamp_millis(self.millis, &bytes).into_uuid().to_string()
    }
}

/// The header, checked as CreateProject checks a project.
fn checked_header(mut header: ExportHeader) -> Result<ExportHeader> {
    if header.format_version != EXPORT_FORMAT_VERSION {
        return Err(Error::invalid(
            "header.format_version",
            format!("this server reads export format {EXPORT_FORMAT_VERSION}, not {}", header.format_version),
        ));
    }
    header.name = validate::name("header.project.name", &header.name, validate::MAX_NAME_CHARS)?;
    header.description =
        validate::text("header.project.description", &header.description, validate::MAX_DESCRIPTION_CHARS)?;
    let total = header.counts.total();
    if total > MAX_IMPORT_RECORDS {
        return Err(Error::invalid(
            "header.counts",
            format!("the export holds {total} records; an import takes at most {MAX_IMPORT_RECORDS}"),
        )
        .with_limit(MAX_IMPORT_RECORDS));
    }
    Ok(header)
}

/// An import's progress: what the header announced, what came, what is unique, the next batch.
struct Import {
    expected: RecordCounts,
    seen: RecordCounts,
    /// Rank of the last record's kind ([`ProjectRecord::rank`]).
    rank: u8,
    scene_ids: HashSet<String>,
    memory_ids: HashSet<String>,
    memory_keys: HashSet<(MemoryType, String)>,
    turn_ids: HashSet<String>,
    image_ids: HashSet<String>,
    batch: ImportRows,
    /// Decided with the first batch of turns.
    turn_ids_in_store: Option<TurnIds>,
}

impl Import {
    fn new(expected: RecordCounts) -> Self {
        Self {
            expected,
            seen: RecordCounts::default(),
            rank: 0,
            scene_ids: HashSet::new(),
            memory_ids: HashSet::new(),
            memory_keys: HashSet::new(),
            turn_ids: HashSet::new(),
            image_ids: HashSet::new(),
            batch: ImportRows::default(),
            turn_ids_in_store: None,
        }
    }

    /// Checks one record after the header and adds it to the batch.
    fn add(&mut self, record: ProjectRecord) -> Result<()> {
        let kind = record.kind();
        if record.rank() == 0 {
            return Err(Error::invalid(kind, "only the first record is a header"));
        }
        if record.rank() < self.rank {
            return Err(Error::invalid(
                kind,
                format!(
                    "a {kind} after the turns or images: records come as header, scenes, memory items, turns, images"
                ),
            ));
        }
        self.rank = record.rank();
        match record {
            ProjectRecord::Header(_) => unreachable!("refused above"),
            ProjectRecord::Scene(scene) => {
                let scene = self.checked_scene(scene)?;
                self.batch.scenes.push(scene);
            }
            ProjectRecord::Memory(memory) => {
                let memory = self.checked_memory(memory)?;
                self.batch.memories.push(memory);
            }
            ProjectRecord::Turn(turn) => {
                let turn = self.checked_turn(turn)?;
                self.batch.turns.push(turn);
            }
            ProjectRecord::Image(image) => {
                let image = self.checked_image(*image)?;
                self.batch.images.push(image);
            }
        }
        Ok(())
    }

    fn checked_scene(&mut self, mut scene: Scene) -> Result<Scene> {
        count(&mut self.seen.scenes, self.expected.scenes, "scene", "scenes")?;
        scene.scene_id = validate::id("scene.scene_id", &scene.scene_id)?;
        unique(&mut self.scene_ids, &scene.scene_id, "scene.scene_id")?;
        scene.name = validate::name("scene.name", &scene.name, validate::MAX_NAME_CHARS)?;
        scene.summary = validate::text("scene.summary", &scene.summary, validate::MAX_TEXT_CHARS)?;
        check_scene_duration("scene.duration_seconds", scene.duration_seconds)?;
        let expected = self.seen.scenes - 1;
        if u64::from(scene.position) != expected {
            return Err(Error::invalid(
                "scene.position",
                format!(
                    "scenes come in position order from 0 without gaps: expected {expected}, got {}",
                    scene.position
                ),
            ));
        }
        scene.summary_tokens = tokens::count(&render::scene_summary_line(&scene.summary));
        Ok(scene)
    }

    fn checked_memory(&mut self, mut memory: MemoryItem) -> Result<MemoryItem> {
        count(&mut self.seen.memory_items, self.expected.memory_items, "memory", "memory items")?;
        memory.id = validate::id("memory.memory_id", &memory.id)?;
        unique(&mut self.memory_ids, &memory.id, "memory.memory_id")?;
        memory.key = validate::name("memory.key", &memory.key, validate::MAX_NAME_CHARS)?;
        if !self.memory_keys.insert((memory.memory_type, memory.key.clone())) {
            return Err(Error::invalid(
                "memory.key",
                format!("a second {} item with key {:?}", memory.memory_type.as_str(), memory.key),
            ));
        }
        memory.value = validate::text("memory.value", &memory.value, validate::MAX_TEXT_CHARS)?;
        if memory.value.trim().is_empty() {
            return Err(Error::missing("memory.value"));
        }
        check_confidence("memory.confidence", memory.confidence)?;
        if let Some(prompt) = &memory.source_prompt {
            check_bytes("memory.source_prompt", prompt)?;
        }
        memory.occurrences = memory.occurrences.max(1);
        memory.token_count = tokens::count(&render::memory_line(&memory.key, &memory.value, memory.confidence));
        Ok(memory)
    }

    fn checked_turn(&mut self, mut exported: ExportedTurn) -> Result<ExportedTurn> {
        count(&mut self.seen.conversation_turns, self.expected.conversation_turns, "turn", "turns")?;
        let turn = &mut exported.turn;
        turn.id = validate::id("turn.turn_id", &turn.id)?;
        unique(&mut self.turn_ids, &turn.id, "turn.turn_id")?;
        if let Some(id) = &turn.orchestration_id {
            turn.orchestration_id = validate::optional_id("turn.orchestration_id", id)?;
        }
        check_bytes("turn.prompt", &turn.prompt)?;
        check_bytes("turn.decision_summary", &turn.decision_summary)?;
        turn.token_count = tokens::count(&render::turn_lines(&turn.prompt, &turn.decision_summary));
        Ok(exported)
    }

    fn checked_image(&mut self, mut image: ImageAnalysis) -> Result<ImageAnalysis> {
        count(&mut self.seen.image_analyses, self.expected.image_analyses, "image", "image analyses")?;
        image.image_id = validate::id("image.image_id", &image.image_id)?;
        unique(&mut self.image_ids, &image.image_id, "image.image_id")?;
        if let Some(id) = &image.orchestration_id {
            image.orchestration_id = validate::optional_id("image.orchestration_id", id)?;
        }
        for (field, text) in [
            ("image.source_url", &image.source_url),
            ("image.mime_type", &image.mime_type),
            ("image.error", &image.error),
            ("image.facts.content_sha256", &image.content_sha256),
        ] {
            if let Some(text) = text {
                validate::text(field, text, MAX_IMAGE_TEXT_CHARS)?;
            }
        }
        match image.status {
            ImageStatus::Ready if image.facts.is_none() => return Err(Error::missing("image.facts")),
            ImageStatus::Ready | ImageStatus::Failed => {}
            ImageStatus::Pending | ImageStatus::Running => {
                image.status = ImageStatus::Failed;
                image.error = Some(UNFINISHED_ANALYSIS.to_owned());
                image.completed_at = Some(now_ms());
            }
        }
        Ok(image)
    }

    /// Every record the header announced came.
    fn check_complete(&self) -> Result<()> {
        let kinds = [
            ("scenes", self.seen.scenes, self.expected.scenes),
            ("memory items", self.seen.memory_items, self.expected.memory_items),
            ("turns", self.seen.conversation_turns, self.expected.conversation_turns),
            ("image analyses", self.seen.image_analyses, self.expected.image_analyses),
        ];
        for (kind, seen, expected) in kinds {
            if seen < expected {
                return Err(Error::new(
                    crate::error::Reason::InvalidField,
                    format!("the import is truncated: the header announces {expected} {kind}, {seen} came"),
                ));
            }
        }
        Ok(())
    }
}

/// Counts one more record of a kind (`field`, its field in the record); more than the header
/// announced is an error.
fn count(seen: &mut u64, expected: u64, field: &str, kind: &str) -> Result<()> {
    *seen += 1;
    if *seen > expected {
        return Err(Error::invalid(field, format!("the header announces {expected} {kind}; this is one more")));
    }
    Ok(())
}

/// Checks `id` has not come before in this import.
fn unique(seen: &mut HashSet<String>, id: &str, field: &str) -> Result<()> {
    if seen.insert(id.to_owned()) { Ok(()) } else { Err(Error::invalid(field, format!("{field} {id} comes twice"))) }
}

/// Text of an imported turn, bounded in bytes.
fn check_bytes(field: &str, text: &str) -> Result<()> {
    if text.len() > MAX_TURN_TEXT_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} has {} bytes; the limit is {MAX_TURN_TEXT_BYTES}", text.len()),
        )
        .with_limit(MAX_TURN_TEXT_BYTES));
    }
    Ok(())
}
