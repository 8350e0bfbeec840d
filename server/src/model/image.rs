//! Images: an accepted image's analysis and the facts found in it.

use serde::{Deserialize, Serialize};

use super::{ImageStatus, Millis, TenantId};

/// One dominant colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaletteColor {
    /// "#rrggbb".
    pub hex: String,
    /// Share of pixels, 0..1; a palette sums to 1.
    pub proportion: f64,
    /// Approximate colour name, e.g. "dark blue".
    pub name: String,
}

/// Whether typography could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypographyStatus {
    /// Not readable by this analyser; nothing is claimed.
    Unknown,
    /// No visible text.
    None,
    /// Text detected and described.
    Detected,
}

/// Typography of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Typography {
    /// Whether anything is claimed.
    pub status: TypographyStatus,
    /// Font families or classes.
    pub font_families: Vec<String>,
    /// Overall style.
    pub style: String,
}

/// Where the visual weight sits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// 3x3 grid, row-major from top-left, summing to 1.
    pub weight_grid: Vec<f64>,
    /// Heaviest region: "top-left", "top", ..., "center", ..., "bottom-right".
    pub dominant_region: String,
    /// "centered", "symmetric", "left-heavy", "right-heavy", "top-heavy" or "bottom-heavy".
    pub balance: String,
    /// Free text from a vision model, if any.
    pub description: String,
}

/// Shape of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Orientation {
    /// Wider than tall.
    Landscape,
    /// Taller than wide.
    Portrait,
    /// Within 5%.
    Square,
}

/// What analysis found in one image. The same bytes always give the same
/// facts (except `processing_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// Five dominant colours, largest first.
    pub palette: Vec<PaletteColor>,
    /// One-word mood.
    pub mood: String,
    /// Typography.
    pub typography: Typography,
    /// Layout.
    pub layout: Layout,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Time the analysis took, ms.
    pub processing_ms: f64,
    /// 0..1.
    pub brightness: f64,
    /// 0..1.
    pub contrast: f64,
    /// 0..1.
    pub saturation: f64,
    /// -1 (cool) .. 1 (warm).
    pub warmth: f64,
    /// Shape.
    pub orientation: Orientation,
    /// Width / height.
    pub aspect_ratio: f64,
    /// "pixels" or "openai:<model>".
    pub analyzer: String,
    /// SHA-256 of the bytes, hex.
    pub content_sha256: String,
}

/// What the store writes for an accepted image.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    /// Id.
    pub image_id: String,
    /// URL, when sent by URL.
    pub source_url: Option<String>,
    /// Detected MIME type, when known.
    pub mime_type: Option<String>,
    /// Size, when known.
    pub byte_size: Option<u64>,
    /// SHA-256, when known.
    pub content_sha256: Option<String>,
}

/// One accepted image and where its analysis is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageAnalysis {
    /// Id within the project.
    pub image_id: String,
    pub project_id: String,
    pub tenant_id: TenantId,
    /// Orchestration that attached it.
    pub orchestration_id: Option<String>,
    /// Where the analysis is.
    pub status: ImageStatus,
    /// Facts, once READY.
    pub facts: Option<ImageFacts>,
    /// Reason, once FAILED.
    pub error: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
    /// URL, when sent by URL.
    pub source_url: Option<String>,
    /// Detected MIME type.
    pub mime_type: Option<String>,
    /// Size in bytes.
    pub byte_size: Option<u64>,
    /// SHA-256 of the bytes, once analysed.
    pub content_sha256: Option<String>,
    /// Acceptance time.
    pub created_at: Millis,
    /// When the analysis finished.
    pub completed_at: Option<Millis>,
}
