//! Printing: human-readable text by default, proto3 JSON with `--json`.

use std::sync::OnceLock;

use brain_client::{BrainError, ServingStatus, code_name};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// Prints results in the mode the user asked for.
pub struct Printer {
    json: bool,
}

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(brain_client::FILE_DESCRIPTOR_SET).ok()).as_ref()
}

/// A proto message as proto3 JSON (lowerCamelCase names, enums by name,
/// RFC 3339 timestamps), including fields at their default value.
pub fn to_json<M: prost::Message>(message: &M, full_name: &str) -> anyhow::Result<serde_json::Value> {
    let descriptor = pool()
        .and_then(|p| p.get_message_by_name(full_name))
        .ok_or_else(|| anyhow::anyhow!("no descriptor for {full_name}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    let options = SerializeOptions::new().skip_default_fields(false);
    Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &options)?)
}

/// Parses proto3 JSON (as [`to_json`] writes it) into a message; unknown fields are errors.
pub fn from_json<M: prost::Message + Default>(json: &str, full_name: &str) -> anyhow::Result<M> {
    let descriptor = pool()
        .and_then(|p| p.get_message_by_name(full_name))
        .ok_or_else(|| anyhow::anyhow!("no descriptor for {full_name}"))?;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let dynamic = DynamicMessage::deserialize(descriptor, &mut deserializer)
        .and_then(|dynamic| deserializer.end().map(|()| dynamic))
        .map_err(json_error)?;
    Ok(dynamic.transcode_to()?)
}

/// A JSON error that names the column only: the caller knows which line (or file) it read.
fn json_error(err: serde_json::Error) -> anyhow::Error {
    let text = err.to_string();
    let position = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&position) {
        Some(message) if err.line() == 1 => anyhow::anyhow!("{message} (column {})", err.column()),
        _ => anyhow::Error::new(err),
    }
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `message` as JSON in JSON mode, else runs `human`.
    pub fn emit<M: prost::Message>(&self, message: &M, full_name: &str, human: impl FnOnce()) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&to_json(message, full_name)?)?);
        } else {
            human();
        }
        Ok(())
    }

    /// Prints one message per line in JSON mode (for streams), else runs `human`.
    pub fn emit_line<M: prost::Message>(
        &self,
        message: &M,
        full_name: &str,
        human: impl FnOnce(),
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(&to_json(message, full_name)?)?);
        } else {
            human();
        }
        Ok(())
    }

    pub fn health(&self, status: ServingStatus) {
        if self.json {
            println!("{}", serde_json::json!({ "status": status.as_str_name() }));
        } else {
            println!("{}", status.as_str_name());
        }
    }

    /// Prints a failure on stderr: the gRPC code, brain's reason and the field at fault.
    pub fn error(&self, err: &anyhow::Error) {
        let brain = err.downcast_ref::<BrainError>();
        if self.json {
            let value = match brain {
                Some(e) => serde_json::json!({ "error": {
                    "code": code_name(e.code()),
                    "reason": e.reason(),
                    "field": e.field(),
                    "limit": e.limit(),
                    "message": e.message(),
                }}),
                None => serde_json::json!({ "error": { "message": format!("{err:#}") } }),
            };
            eprintln!("{value}");
        } else {
            eprintln!("error: {err:#}");
        }
    }
}

/// A timestamp as RFC 3339 in UTC, or "-" when unset.
pub fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// An enum value's name without its type prefix, lowercased: `TOOL_ADD_SCENE` -> `add_scene`.
pub fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_ascii_lowercase()
}

/// Shortens text to `max` characters for table cells.
pub fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
