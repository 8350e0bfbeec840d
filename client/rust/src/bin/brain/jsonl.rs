//! The file format of `brain projects export|import`: JSON Lines, one `brain.v1.ProjectRecord`
//! per line in proto3 JSON (as grpcurl prints it), the header first. Blank lines are skipped.

use anyhow::Context;
use brain_client::proto::{self, project_record::Record};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::output::{from_json, to_json};

/// The message every line holds.
pub const RECORD: &str = "brain.v1.ProjectRecord";

/// One record as one line of JSON (without the newline).
pub fn to_line(record: &proto::ProjectRecord) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&to_json(record, RECORD)?)?)
}

/// Parses one line; a record must hold one of header, scene, memory, turn or image.
pub fn parse_line(line: &str) -> anyhow::Result<proto::ProjectRecord> {
    let record: proto::ProjectRecord = from_json(line, RECORD).context("not a brain.v1.ProjectRecord")?;
    anyhow::ensure!(record.record.is_some(), "empty record: it holds none of header, scene, memory, turn or image");
    Ok(record)
}

/// What a record holds, for messages.
pub fn kind(record: &proto::ProjectRecord) -> &'static str {
    match record.record {
        Some(Record::Header(_)) => "header",
        Some(Record::Scene(_)) => "scene",
        Some(Record::Memory(_)) => "memory",
        Some(Record::Turn(_)) => "turn",
        Some(Record::Image(_)) => "image",
        None => "none (empty)",
    }
}

/// All records an export's header announces, itself included.
pub fn total(header: &proto::ExportHeader) -> u64 {
    let c = header.counts.unwrap_or_default();
    1 + c.scenes + c.memory_items + c.conversation_turns + c.image_analyses
}

/// Reads records from JSON Lines; every error names the source and the line.
pub struct Reader<R> {
    input: R,
    source: String,
    line: u64,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> Reader<R> {
    /// `source` names the input in messages ("stdin", a path).
    pub fn new(input: R, source: impl Into<String>) -> Self {
        Self { input, source: source.into(), line: 0, buf: Vec::new() }
    }

    /// The next record and its line number (from 1); `None` at the end of the input.
    pub async fn next_record(&mut self) -> anyhow::Result<Option<(u64, proto::ProjectRecord)>> {
        loop {
            self.buf.clear();
            let read = self.input.read_until(b'\n', &mut self.buf).await;
            self.line += 1;
            let at = || format!("{} line {}", self.source, self.line);
            if read.with_context(at)? == 0 {
                return Ok(None);
            }
            let text = std::str::from_utf8(&self.buf).map_err(|e| anyhow::anyhow!("{}: not UTF-8: {e}", at()))?;
            // A byte order mark some editors put at the start of a file.
            let text = if self.line == 1 { text.trim_start_matches('\u{feff}') } else { text };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let record = parse_line(text).with_context(at)?;
            return Ok(Some((self.line, record)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    /// One record of each kind, every field set (doubles that a best-effort float parser gets wrong).
    fn records() -> Vec<proto::ProjectRecord> {
        let project = proto::Project {
            project_id: "01a20659-1010-7563-a75a-4d568b21f574".into(),
            name: "Launch video".into(),
            description: "30 s teaser, \"quoted\"\nand two lines; ünïcödé 🎬".into(),
            create_time: ts(1_700_000_000, 123_456_789),
            update_time: ts(1_700_000_100, 0),
        };
        let header = proto::ExportHeader {
            format_version: 1,
            project: Some(project),
            counts: Some(proto::ProjectRecordCounts {
                scenes: 1,
                memory_items: 1,
                conversation_turns: 1,
                image_analyses: u64::MAX,
            }),
        };
        let scene = proto::Scene {
            scene_id: "intro".into(),
            project_id: "p".into(),
            name: "Intro".into(),
            position: 3,
            summary: "Logo on dark blue".into(),
            duration_seconds: Some(0.1 + 0.2),
            status: proto::SceneStatus::Broken as i32,
            summary_tokens: 5,
            create_time: ts(1, 1),
            update_time: ts(2, 2),
        };
        let memory = proto::MemoryItem {
            memory_id: "m-1".into(),
            project_id: "p".into(),
            r#type: proto::MemoryType::UserPreference as i32,
            key: "style".into(),
            value: "minimal, flat colours".into(),
            // serde_json without float_roundtrip parses this back one bit off (as ~10% of doubles).
            confidence: 0.985_690_694_632_869_5,
            source: proto::MemorySource::Api as i32,
            source_prompt: "make it minimal".into(),
            token_count: 4,
            occurrences: 7,
            create_time: ts(3, 0),
            update_time: ts(4, 0),
            expire_time: ts(253_402_300_799, 999_999_999),
        };
        let turn = proto::ConversationTurn {
            turn_id: "t-1".into(),
            orchestration_id: "o-1".into(),
            prompt: "make the intro shorter".into(),
            decision_summary: "change_duration intro".into(),
            token_count: 9,
            create_time: ts(5, 0),
            archived: true,
        };
        let image = proto::ImageAnalysis {
            image_id: "img-1".into(),
            project_id: "p".into(),
            orchestration_id: "o-1".into(),
            status: proto::ImageAnalysisStatus::Ready as i32,
            facts: Some(proto::ImageFacts {
                palette: vec![proto::PaletteColor { hex: "#112233".into(), ..Default::default() }],
                mood: "calm".into(),
                width: 640,
                height: 480,
                processing_ms: 12.345_678_901_234_567,
                brightness: 0.212_918_907_267_134_58,
                contrast: 5e-324,
                saturation: 1.797_693_134_862_315_7e308,
                warmth: -0.0,
                orientation: proto::Orientation::Landscape as i32,
                aspect_ratio: 4.0 / 3.0,
                analyzer: "builtin".into(),
                content_sha256: "ab".repeat(32),
                ..Default::default()
            }),
            error: String::new(),
            attempts: 1,
            source_url: "https://example.invalid/a.png".into(),
            mime_type: "image/png".into(),
            byte_size: u64::MAX,
            create_time: ts(6, 0),
            complete_time: ts(7, 0),
        };
        [Record::Header(header), Record::Scene(scene), Record::Memory(memory), Record::Turn(turn), Record::Image(image)]
            .into_iter()
            .map(|r| proto::ProjectRecord { record: Some(r) })
            .collect()
    }

    #[test]
    fn every_kind_survives_a_line() {
        for record in records() {
            let line = to_line(&record).expect("to line");
            assert!(!line.contains('\n'), "one line: {line}");
            let back = parse_line(&line).unwrap_or_else(|e| panic!("{} does not parse: {e:#}: {line}", kind(&record)));
            assert_eq!(back, record, "{line}");
        }
        // proto3 JSON as grpcurl prints it: lowerCamelCase, enums by name, 64-bit integers as strings.
        let image = to_line(&records()[4]).expect("to line");
        assert!(image.contains(r#""byteSize":"18446744073709551615""#), "{image}");
        assert!(image.contains(r#""status":"IMAGE_ANALYSIS_STATUS_READY""#), "{image}");
    }

    #[tokio::test]
    async fn reader_skips_blank_lines_and_numbers_lines() {
        let lines: Vec<String> = records().iter().map(|r| to_line(r).expect("to line")).collect();
        let text = format!("\u{feff}{}\n\n   \r\n{}\r\n{}\n\n{}\n{}", lines[0], lines[1], lines[2], lines[3], lines[4]);
        let mut reader = Reader::new(text.as_bytes(), "export.jsonl");
        let mut seen = Vec::new();
        while let Some((line, record)) = reader.next_record().await.expect("valid input") {
            seen.push((line, kind(&record)));
        }
        assert_eq!(seen, [(1, "header"), (4, "scene"), (5, "memory"), (7, "turn"), (8, "image")]);
    }

    #[tokio::test]
    async fn malformed_lines_are_named() {
        let good = to_line(&records()[0]).expect("to line");
        for (bad, says) in [
            (r#"{"scene": {"name": "x""#, "EOF"),
            (r#"{"scene": {"name": 7}}"#, "invalid type"),
            (r#"{"scene": {"nmae": "x"}}"#, "nmae"),
            (r#"{"scene": {}, "memory": {}}"#, "oneof"),
            ("{}", "empty record"),
            (r#"{"scene": {}} trailing"#, "trailing"),
            (r#"{"memory": {"type": "MEMORY_TYPE_NONSENSE"}}"#, "MEMORY_TYPE_NONSENSE"),
        ] {
            let text = format!("{good}\n\n{bad}\n{good}\n");
            let mut reader = Reader::new(text.as_bytes(), "export.jsonl");
            assert!(reader.next_record().await.expect("line 1").is_some());
            let err = reader.next_record().await.expect_err(bad);
            let message = format!("{err:#}");
            assert!(message.starts_with("export.jsonl line 3: "), "{bad}: {message}");
            assert!(message.to_lowercase().contains(&says.to_lowercase()), "{bad}: {message}");
        }
        let mut reader = Reader::new(&b"\n\xff\xfe\n"[..], "stdin");
        let message = format!("{:#}", reader.next_record().await.expect_err("not UTF-8"));
        assert!(message.starts_with("stdin line 2: not UTF-8"), "{message}");
    }
}
