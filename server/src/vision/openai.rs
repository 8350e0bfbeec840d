//! The `openai` analyser: the pixel facts, plus typography and a layout
//! description from an OpenAI-compatible vision model
//! (`POST {openai_base_url}/chat/completions`, JSON mode).
//!
//! The pixel analysis runs first and decides whether the image is usable at
//! all (its errors are returned as is). The model then gets the image as a
//! base64 data URL: the original bytes when they are at most
//! [`MAX_INLINE_BYTES`] and not GIF (animated GIFs are refused by some
//! models), otherwise a JPEG preview of at most [`PREVIEW_SIDE`] px. Its answer
//! must be exactly `{"typography": {"status": "none"|"detected",
//! "font_families": [..], "style": ".."}, "layout": {"description": ".."}}`
//! with bounded, non-empty text where required; anything else is rejected.
//!
//! One attempt, bounded by `openai_timeout_ms`. On any failure (timeout,
//! connection, non-2xx, malformed or off-schema JSON) the pixel facts stand,
//! unchanged, with analyzer "pixels", and a warning is logged with the failure
//! class only: never image bytes, prompt or model text.

use std::io::Cursor;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::header::Dimensions;
use super::intake::ImageFormat;
use super::pixels::{self, PixelAnalyzer};
use super::{AnalysisError, Analyzer, ImageFacts, Typography, TypographyStatus};
use crate::config::{Config, OpenAiSettings};
use crate::redact::Secret;
use crate::text::strip_fence;

/// Largest image sent as is; bigger ones are sent as a preview.
pub const MAX_INLINE_BYTES: usize = 4 << 20;
/// Longest side of the preview sent for big images.
pub const PREVIEW_SIDE: u32 = 1536;
/// Largest model response read, in bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
const MAX_FAMILIES: usize = 6;
const MAX_FAMILY_CHARS: usize = 60;
const MAX_STYLE_CHARS: usize = 160;
const MAX_DESCRIPTION_CHARS: usize = 800;

const SYSTEM_PROMPT: &str = r#"You analyse images for a motion-graphics video editor. Reply with one JSON object and nothing else, exactly of this shape:
{"typography":{"status":"none" or "detected","font_families":[string],"style":string},"layout":{"description":string}}
typography.status is "detected" only when the image contains legible text. Then font_families lists 1 to 4 likely font families, or generic classes when unsure (for example "Helvetica", "geometric sans-serif", "slab serif", "script"), and style describes weight, case, colour and treatment in a few words. When there is no text, use "none", an empty list and an empty style.
layout.description is one or two sentences on composition: where the subject sits, negative space, where text sits, visual hierarchy.
Describe only what you can see; never guess."#;

const USER_PROMPT: &str = "Describe this image's typography and layout.";

/// Pixel facts enriched by a vision model.
pub struct OpenAiVision {
    pixels: PixelAnalyzer,
    client: reqwest::Client,
    endpoint: Secret,
    settings: OpenAiSettings,
}

impl std::fmt::Debug for OpenAiVision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiVision")
            .field("endpoint", &self.endpoint)
            .field("model", &self.settings.vision_model)
            .finish()
    }
}

impl OpenAiVision {
    /// From the configuration.
    pub fn from_config(config: &Config) -> Result<Self, crate::error::Error> {
        Self::new(PixelAnalyzer::from_config(config), config.openai.clone())
    }

    /// With an explicit pixel analyser and model settings (the model is `settings.vision_model`,
    /// one call is bounded by `settings.timeout`).
    pub fn new(pixels: PixelAnalyzer, settings: OpenAiSettings) -> Result<Self, crate::error::Error> {
        let client = crate::http_client::model_client(settings.timeout, "vision model client")?;
        let endpoint = Secret::url(format!("{}/chat/completions", settings.base_url.expose().trim_end_matches('/')));
        Ok(Self { pixels, client, endpoint, settings })
    }

    async fn ask_model(&self, bytes: &[u8]) -> Result<ModelAnswer, ModelFailure> {
        let data_url = self.image_data_url(bytes).await?;
        let body = json!({
            "model": self.settings.vision_model,
            "temperature": 0,
            "max_tokens": 400,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": [
                    {"type": "text", "text": USER_PROMPT},
                    {"type": "image_url", "image_url": {"url": data_url}}
                ]}
            ]
        });
        let body = serde_json::to_vec(&body).map_err(|_| ModelFailure::Internal)?;
        let mut request = self
            .client
            .post(self.endpoint.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let call = async {
            let mut response = request.send().await.map_err(ModelFailure::from_reqwest)?;
            let status = response.status();
            if !status.is_success() {
                return Err(ModelFailure::Status(status.as_u16()));
            }
            let mut raw = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(ModelFailure::from_reqwest)? {
                if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(ModelFailure::Malformed("response too large"));
                }
                raw.extend_from_slice(&chunk);
            }
            Ok(raw)
        };
        let raw = tokio::time::timeout(self.settings.timeout, call).await.map_err(|_| ModelFailure::Timeout)??;
        parse_answer(&raw)
    }

    /// The image as a data URL: the original bytes when small and not GIF, else a JPEG preview.
    async fn image_data_url(&self, bytes: &[u8]) -> Result<String, ModelFailure> {
        let (format, dims) = self.pixels.check(bytes).map_err(|_| ModelFailure::Internal)?;
        let (mime, payload) = if bytes.len() <= MAX_INLINE_BYTES && format != ImageFormat::Gif {
            (format.mime(), base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            let owned = bytes.to_vec();
            let jpeg = tokio::task::spawn_blocking(move || preview_jpeg(&owned, format, dims))
                .await
                .map_err(|_| ModelFailure::Internal)?
                .map_err(|_| ModelFailure::Internal)?;
            ("image/jpeg", base64::engine::general_purpose::STANDARD.encode(jpeg))
        };
        Ok(format!("data:{mime};base64,{payload}"))
    }
}

/// A JPEG preview (longest side at most [`PREVIEW_SIDE`], transparency over white).
fn preview_jpeg(bytes: &[u8], format: ImageFormat, dims: Dimensions) -> Result<Vec<u8>, AnalysisError> {
    let small = pixels::decode_small(bytes, format, dims, PREVIEW_SIDE)?;
    let rgba = small.image;
    let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(src[3]);
        for k in 0..3 {
            dst[k] = ((u32::from(src[k]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&rgb)
        .map_err(|e| AnalysisError::Corrupt(format!("preview: {e}")))?;
    Ok(out.into_inner())
}

#[async_trait::async_trait]
impl Analyzer for OpenAiVision {
    async fn analyze(&self, bytes: &[u8]) -> Result<ImageFacts, AnalysisError> {
        let mut facts = self.pixels.analyze(bytes).await?;
        match self.ask_model(bytes).await {
            Ok(answer) => {
                facts.typography = answer.typography;
                facts.layout.description = answer.layout_description;
                facts.analyzer = format!("openai:{}", self.settings.vision_model);
            }
            Err(failure) => {
                tracing::warn!(
                    model = %self.settings.vision_model,
                    failure = %failure,
                    "vision model failed; keeping the pixel facts"
                );
            }
        }
        Ok(facts)
    }
}

/// Why the model's contribution was dropped (logged; the pixel facts stand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelFailure {
    /// The call took longer than the timeout.
    #[error("timeout")]
    Timeout,
    /// Connection or transport failure.
    #[error("connection failed")]
    Connect,
    /// Non-2xx status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The answer is not valid JSON of the expected shape.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// Preparing the request failed.
    #[error("internal error preparing the request")]
    Internal,
}

impl ModelFailure {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() { ModelFailure::Timeout } else { ModelFailure::Connect }
    }
}

/// What the model contributes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelAnswer {
    /// Typography as read by the model.
    pub typography: Typography,
    /// Composition in words.
    pub layout_description: String,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChatMessage,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    typography: RawTypography,
    layout: RawLayout,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTypography {
    status: String,
    font_families: Vec<String>,
    style: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    description: String,
}

/// Parses a chat-completions response body and validates the model's JSON.
pub fn parse_answer(body: &[u8]) -> Result<ModelAnswer, ModelFailure> {
    let response: ChatResponse =
        serde_json::from_slice(body).map_err(|_| ModelFailure::Malformed("not a chat-completions response"))?;
    let content = response
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or(ModelFailure::Malformed("no message content"))?;
    let raw: RawAnswer = serde_json::from_str(strip_fence(&content))
        .map_err(|_| ModelFailure::Malformed("content is not the JSON asked for"))?;

    let clean = |s: &str, max: usize| -> Result<String, ModelFailure> {
        let t = s.trim();
        if t.chars().count() > max || t.chars().any(char::is_control) {
            return Err(ModelFailure::Malformed("a text field is too long or has control characters"));
        }
        Ok(t.to_owned())
    };
    let typography = match raw.typography.status.as_str() {
        "none" => {
            if !raw.typography.font_families.is_empty() {
                return Err(ModelFailure::Malformed("status none with font families"));
            }
            Typography { status: TypographyStatus::None, font_families: Vec::new(), style: String::new() }
        }
        "detected" => {
            let families = raw.typography.font_families;
            if families.is_empty() || families.len() > MAX_FAMILIES {
                return Err(ModelFailure::Malformed("detected text needs 1 to 6 font families"));
            }
            let mut font_families = Vec::with_capacity(families.len());
            for f in &families {
                let f = clean(f, MAX_FAMILY_CHARS)?;
                if f.is_empty() {
                    return Err(ModelFailure::Malformed("an empty font family"));
                }
                font_families.push(f);
            }
            Typography {
                status: TypographyStatus::Detected,
                font_families,
                style: clean(&raw.typography.style, MAX_STYLE_CHARS)?,
            }
        }
        _ => return Err(ModelFailure::Malformed("unknown typography status")),
    };
    let layout_description = clean(&raw.layout.description, MAX_DESCRIPTION_CHARS)?;
    if layout_description.is_empty() {
        return Err(ModelFailure::Malformed("empty layout description"));
    }
    Ok(ModelAnswer { typography, layout_description })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn wrap(content: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}))
            .unwrap()
    }

    #[test]
    fn debug_output_never_shows_the_api_key() {
        let settings = OpenAiSettings {
            base_url: Secret::url("http://proxy:proxy-secret-value@127.0.0.1:9/v1"),
            api_key: Some(Secret::new("sk-secret-value")),
            vision_model: "gpt-4o".into(),
            timeout: Duration::from_secs(1),
            ..Config::default().openai
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains("sk-secret-value"), "{printed}");
        assert!(!printed.contains("proxy-secret-value"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn accepts_the_schema() {
        let a = parse_answer(&wrap(
            r#"{"typography":{"status":"detected","font_families":["Futura"," geometric sans-serif "],"style":"bold uppercase"},"layout":{"description":"Title top-left over a wide sky."}}"#,
        ))
        .unwrap();
        assert_eq!(a.typography.status, TypographyStatus::Detected);
        assert_eq!(a.typography.font_families, vec!["Futura", "geometric sans-serif"]);
        assert_eq!(a.layout_description, "Title top-left over a wide sky.");

        let fenced = "```json\n{\"typography\":{\"status\":\"none\",\"font_families\":[],\"style\":\"\"},\"layout\":{\"description\":\"A centred portrait.\"}}\n```";
        let a = parse_answer(&wrap(fenced)).unwrap();
        assert_eq!(a.typography.status, TypographyStatus::None);
    }

    #[test]
    fn rejects_everything_else() {
        for content in [
            "not json",
            "{}",
            r#"{"typography":{"status":"maybe","font_families":[],"style":""},"layout":{"description":"x"}}"#,
            r#"{"typography":{"status":"none","font_families":["Arial"],"style":""},"layout":{"description":"x"}}"#,
            r#"{"typography":{"status":"detected","font_families":[],"style":"bold"},"layout":{"description":"x"}}"#,
            r#"{"typography":{"status":"none","font_families":[],"style":""},"layout":{"description":""}}"#,
            r#"{"typography":{"status":"none","font_families":[],"style":""},"layout":{"description":"x"},"extra":1}"#,
            r#"{"typography":{"status":"none","font_families":[],"style":""},"layout":{"description":7}}"#,
        ] {
            assert!(parse_answer(&wrap(content)).is_err(), "{content}");
        }
        assert!(parse_answer(b"{\"choices\":[]}").is_err());
        assert!(parse_answer(b"<html>").is_err());
    }
}
