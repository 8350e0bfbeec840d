//! Image analysis: facts extracted from an image's pixels (and, optionally,
//! a vision model). Backends implement [`Analyzer`]: `pixels` (embedded,
//! deterministic, the default) and `openai` (adds typography and layout
//! semantics; on failure the pixel facts stand).

use std::sync::Arc;

use crate::{
    config::{Config, VisionKind},
    model::ImageFacts,
};

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
// The facts are a model type; the analysers below build them.
use crate::model::{Layout, Orientation, PaletteColor, Typography, TypographyStatus};

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
    Ok(match config.images.vision {
        VisionKind::Pixels => Arc::new(PixelAnalyzer::from_config(config)),
        VisionKind::Openai => Arc::new(OpenAiVision::from_config(config)?),
    })
}
