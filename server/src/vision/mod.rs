//! Image analysis: facts extracted from an image's pixels (and, optionally,
//! a vision model). Backends implement [`Analyzer`]: `pixels` (embedded,
//! deterministic, the default) and `openai` (adds typography and layout
//! semantics; on failure the pixel facts stand).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, VisionKind};

pub mod fetch;
pub mod header;
pub mod intake;
pub mod openai;
pub mod palette;
pub mod pixels;

pub use fetch::{FetchError, Fetched, Fetcher};
pub use intake::ImageFormat;
pub use openai::OpenAiVision;
pub use pixels::PixelAnalyzer;

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

/// Why an image could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Not PNG, JPEG, WebP or GIF. Permanent.
    #[error("unsupported image type: {0}")]
    Unsupported(String),
    /// Truncated or corrupt data. Permanent.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// Over the pixel or memory limits (e.g. a decompression bomb). Permanent.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// A transient failure (a model call, a fetch); worth retrying.
    #[error("analysis failed: {0}")]
    Transient(String),
}

impl AnalysisError {
    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, AnalysisError::Transient(_))
    }
}

/// An image analysis backend.
#[async_trait::async_trait]
pub trait Analyzer: Send + Sync {
    /// Analyses encoded image bytes.
    async fn analyze(&self, bytes: &[u8]) -> Result<ImageFacts, AnalysisError>;
}

/// The analyser the configuration asks for (`vision = "pixels" | "openai"`).
/// Fails only if the HTTP client of the `openai` backend cannot be built.
pub fn analyzer_from_config(config: &Config) -> Result<Arc<dyn Analyzer>, crate::error::Error> {
    Ok(match config.vision {
        VisionKind::Pixels => Arc::new(PixelAnalyzer::from_config(config)),
        VisionKind::Openai => Arc::new(OpenAiVision::from_config(config)?),
    })
}

/// Makes rustls use the `ring` provider (already linked for the database
/// drivers) for every HTTP client in the process. reqwest is built without a
/// bundled provider, so call this before building any `reqwest::Client`;
/// repeated calls are harmless.
pub fn install_tls_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
