//! The embedded, deterministic image analyser (`vision = "pixels"`).
//!
//! Pipeline: sniff the format from magic bytes → read the declared size from
//! the header and refuse bombs before any pixel buffer exists → decode with
//! the `image` crate under `Limits` (second line of defence) → box-downscale
//! to at most [`WORK_SIDE`] px on the longest side (alpha-weighted, integer
//! sums) → apply the EXIF orientation → measure.
//!
//! Facts, all computed on the downscaled image with each pixel weighted by
//! its alpha (fully transparent pixels do not count; a fully transparent
//! image counts every pixel equally):
//! - **palette**: up to 5 dominant colours (see [`super::palette`]); fewer
//!   when the image has fewer distinct colours.
//! - **brightness**: mean CIE L* / 100 (perceived lightness, 0..1).
//! - **contrast**: RMS contrast of that lightness: 2 × its standard deviation,
//!   capped at 1 (a half-black, half-white image scores 1).
//! - **saturation**: mean HSV saturation, faded to 0 for near-black pixels
//!   (value below 0.1, ramping up to full at 0.2), whose hue is noise.
//! - **warmth**: `Σ sat·cos(hue − 30°) / max(Σ sat, 0.2·N)`: +1 for
//!   saturated orange, about +0.87 for red and yellow, 0 for green and
//!   magenta, −1 for saturated azure/blue; images with little colour are pulled
//!   towards 0 rather than judged on a few tinted pixels.
//! - **mood**: the first matching rule of [`mood`].
//! - **orientation / aspect ratio**: after the EXIF orientation (what a viewer
//!   shows); square when width/height is within 5% of 1.
//! - **layout**: visual weight per pixel = |lightness − mean lightness| +
//!   saturation (what stands out from the background); averaged per cell of a
//!   3×3 grid and normalised to sum 1 (uniform when nothing stands out). The dominant region
//!   is the heaviest cell (the centre wins ties); balance comes from the grid's
//!   centre of mass (see [`balance`]).
//! - **typography**: `Unknown`, with no families and no style: pixels cannot
//!   read text, and nothing is invented.
//!
//! The same bytes always give the same facts (except `processing_ms`): every
//! step is a fixed sequence of integer and floating-point operations, with no
//! randomness, threads or hash-map iteration order involved.

use std::io::Cursor;
use std::time::Instant;

use image::metadata::Orientation as ExifOrientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbaImage, error::LimitErrorKind};
use sha2::{Digest, Sha256};

use super::header::{self, Dimensions, MAX_SIDE};
use super::intake::{self, ImageFormat};
use super::palette::{self, Histogram};
use super::{AnalysisError, Analyzer, ImageFacts, Layout, Orientation, Typography, TypographyStatus};
use crate::config::Config;

/// Longest side of the image the measurements run on.
pub const WORK_SIDE: u32 = 256;
/// Decoder working memory allowed on top of the output buffer.
const DECODER_SLACK_BYTES: u64 = 64 << 20;
/// Grid cell names, row-major from the top-left.
pub const REGIONS: [&str; 9] =
    ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right"];

/// What the pixel analyser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLimits {
    /// Largest encoded image, in bytes.
    pub max_bytes: usize,
    /// Largest declared image, in pixels (width × height).
    pub max_pixels: u64,
}

impl PixelLimits {
    /// `max_image_bytes` and `max_image_pixels` from the configuration.
    pub fn from_config(config: &Config) -> Self {
        Self { max_bytes: config.images.max_bytes, max_pixels: config.images.max_pixels }
    }
}

/// The embedded analyser: deterministic facts from pixels alone.
#[derive(Debug, Clone)]
pub struct PixelAnalyzer {
    limits: PixelLimits,
}

impl PixelAnalyzer {
    /// An analyser with these limits.
    pub fn new(limits: PixelLimits) -> Self {
        Self { limits }
    }

    /// An analyser with the configured limits.
    pub fn from_config(config: &Config) -> Self {
        Self::new(PixelLimits::from_config(config))
    }

    /// Its limits.
    pub fn limits(&self) -> PixelLimits {
        self.limits
    }

    /// Analyses on the current thread (CPU-bound: a few ms to tens of ms).
    /// [`Analyzer::analyze`] runs this on the blocking pool.
    pub fn analyze_sync(&self, bytes: &[u8]) -> Result<ImageFacts, AnalysisError> {
        let started = Instant::now();
        let (format, declared) = self.check(bytes)?;
        let content_sha256 = hex::encode(Sha256::digest(bytes));
        let work = decode_small(bytes, format, declared, WORK_SIDE)?;
        let (width, height) = (work.width, work.height);
        let measures = measure(&work.image);

        let aspect_ratio = f64::from(width) / f64::from(height);
        let orientation = if (aspect_ratio - 1.0).abs() <= 0.05 {
            Orientation::Square
        } else if aspect_ratio > 1.0 {
            Orientation::Landscape
        } else {
            Orientation::Portrait
        };
        Ok(ImageFacts {
            palette: measures.palette,
            mood: mood(measures.brightness, measures.contrast, measures.saturation, measures.warmth).to_owned(),
            typography: Typography {
                status: TypographyStatus::Unknown,
                font_families: Vec::new(),
                style: String::new(),
            },
            layout: Layout {
                weight_grid: measures.grid.to_vec(),
                dominant_region: REGIONS[dominant_cell(&measures.grid)].to_owned(),
                balance: balance(&measures.grid).to_owned(),
                description: String::new(),
            },
            width,
            height,
            processing_ms: round_to(started.elapsed().as_secs_f64() * 1000.0, 3),
            brightness: round4(measures.brightness),
            contrast: round4(measures.contrast),
            saturation: round4(measures.saturation),
            warmth: round4(measures.warmth),
            orientation,
            aspect_ratio: round4(aspect_ratio),
            analyzer: "pixels".to_owned(),
            content_sha256,
        })
    }

    /// Size cap, format and declared dimensions: everything decided before decoding.
    pub fn check(&self, bytes: &[u8]) -> Result<(ImageFormat, Dimensions), AnalysisError> {
        if bytes.len() > self.limits.max_bytes {
            return Err(AnalysisError::TooLarge(format!(
                "{} bytes; the limit is {}",
                bytes.len(),
                self.limits.max_bytes
            )));
        }
        let format = intake::sniff(bytes).ok_or_else(|| {
            AnalysisError::Unsupported(format!(
                "{}; only PNG, JPEG, WebP and GIF are analysed",
                intake::describe_unsupported(bytes)
            ))
        })?;
        let dims = header::probe(bytes, format, self.limits.max_pixels)?;
        Ok((format, dims))
    }
}

#[async_trait::async_trait]
impl Analyzer for PixelAnalyzer {
    async fn analyze(&self, bytes: &[u8]) -> Result<ImageFacts, AnalysisError> {
        // Cheap refusals first, on the caller's task, before copying the bytes.
        self.check(bytes)?;
        let analyzer = self.clone();
        let owned = bytes.to_vec();
        tokio::task::spawn_blocking(move || analyzer.analyze_sync(&owned)).await.map_err(join_error)?
    }
}

/// A panicking decoder is a bug triggered by these bytes: retrying cannot help.
pub(crate) fn join_error(e: tokio::task::JoinError) -> AnalysisError {
    if e.is_panic() {
        tracing::error!("image analysis panicked; the image is reported as corrupt");
        AnalysisError::Corrupt("the decoder failed on this image".into())
    } else {
        AnalysisError::Transient("image analysis was cancelled".into())
    }
}

/// A decoded, downscaled and oriented image.
pub(crate) struct Small {
    /// At most `max_side` px on the longest side, RGBA with straight alpha.
    pub image: RgbaImage,
    /// Full-size width after orientation.
    pub width: u32,
    /// Full-size height after orientation.
    pub height: u32,
}

/// Decodes `bytes` under limits derived from the declared size, downscales to
/// at most `max_side` and applies the EXIF orientation.
pub(crate) fn decode_small(
    bytes: &[u8],
    format: ImageFormat,
    declared: Dimensions,
    max_side: u32,
) -> Result<Small, AnalysisError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_crate());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // Room for the largest output (16-bit RGBA) of the declared size, plus decoder state.
    let pixels = u64::from(declared.width) * u64::from(declared.height);
    limits.max_alloc = Some(pixels * 8 + DECODER_SLACK_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (w, h) = decoder.dimensions();
    // The decoder's view must agree with the header we checked (e.g. a GIF's logical screen).
    header::check_dimensions(Dimensions { width: w, height: h }, pixels.max(1))?;
    let exif = decoder.orientation().unwrap_or(ExifOrientation::NoTransforms);
    let full = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let mut small = DynamicImage::ImageRgba8(downscale(&full, max_side));
    drop(full);
    small.apply_orientation(exif);
    let (width, height) = match exif {
        ExifOrientation::Rotate90
        | ExifOrientation::Rotate270
        | ExifOrientation::Rotate90FlipH
        | ExifOrientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    };
    Ok(Small { image: small.into_rgba8(), width, height })
}

fn image_error(e: ImageError) -> AnalysisError {
    match e {
        ImageError::Limits(l) => match l.kind() {
            LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory => {
                AnalysisError::TooLarge(format!("decoder limit: {l}"))
            }
            _ => AnalysisError::Unsupported(format!("decoder limit: {l}")),
        },
        ImageError::Unsupported(u) => AnalysisError::Unsupported(u.to_string()),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AnalysisError::Corrupt("truncated image data".into())
        }
        other => AnalysisError::Corrupt(other.to_string()),
    }
}

/// Target size for a longest side of at most `max_side`, never upscaling.
fn target_size(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let longest = w.max(h);
    if longest <= max_side {
        return (w, h);
    }
    let scale =
        |side: u32| ((u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest)).max(1);
    (scale(w) as u32, scale(h) as u32)
}

/// Box (area-average) downscale to RGBA8, colour averaged with alpha weights.
fn downscale(img: &DynamicImage, max_side: u32) -> RgbaImage {
    let (w, h) = (img.width(), img.height());
    let (tw, th) = target_size(w, h, max_side);
    match img {
        DynamicImage::ImageRgb8(b) => box_downscale::<3>(b.as_raw(), w, h, tw, th),
        DynamicImage::ImageRgba8(b) => box_downscale::<4>(b.as_raw(), w, h, tw, th),
        DynamicImage::ImageLuma8(b) => box_downscale::<1>(b.as_raw(), w, h, tw, th),
        DynamicImage::ImageLumaA8(b) => box_downscale::<2>(b.as_raw(), w, h, tw, th),
        other => box_downscale::<4>(other.to_rgba8().as_raw(), w, h, tw, th),
    }
}

fn box_downscale<const C: usize>(src: &[u8], w: u32, h: u32, tw: u32, th: u32) -> RgbaImage {
    let (w, h, tw, th) = (w as usize, h as usize, tw as usize, th as usize);
    let column: Vec<u32> = (0..w).map(|x| (x * tw / w) as u32).collect();
    let mut column_width = vec![0u64; tw];
    for &c in &column {
        column_width[c as usize] += 1;
    }
    let mut out = vec![0u8; tw * th * 4];
    // Per target column: Σ r·a, Σ g·a, Σ b·a, Σ a.
    let mut acc = vec![[0u64; 4]; tw];
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, (ty + 1) * h / th);
        acc.iter_mut().for_each(|a| *a = [0; 4]);
        for y in y0..y1 {
            let row = &src[y * w * C..(y + 1) * w * C];
            for (p, &c) in row.chunks_exact(C).zip(&column) {
                let (r, g, b, a) = match C {
                    1 => (p[0], p[0], p[0], 255),
                    2 => (p[0], p[0], p[0], p[1]),
                    3 => (p[0], p[1], p[2], 255),
                    _ => (p[0], p[1], p[2], p[3]),
                };
                let a = u64::from(a);
                let t = &mut acc[c as usize];
                t[0] += u64::from(r) * a;
                t[1] += u64::from(g) * a;
                t[2] += u64::from(b) * a;
                t[3] += a;
            }
        }
        let rows = (y1 - y0) as u64;
        for (tx, t) in acc.iter().enumerate() {
            let n = column_width[tx] * rows;
            let o = &mut out[(ty * tw + tx) * 4..(ty * tw + tx) * 4 + 4];
            if t[3] > 0 {
                let half = t[3] / 2;
                o[0] = ((t[0] + half) / t[3]) as u8;
                o[1] = ((t[1] + half) / t[3]) as u8;
                o[2] = ((t[2] + half) / t[3]) as u8;
            }
            o[3] = ((t[3] + n / 2) / n.max(1)) as u8;
        }
    }
    // ok: the buffer was allocated with exactly tw × th × 4 bytes.
    RgbaImage::from_raw(tw as u32, th as u32, out).unwrap_or_default()
}

struct Measures {
    palette: Vec<super::PaletteColor>,
    brightness: f64,
    contrast: f64,
    saturation: f64,
    warmth: f64,
    grid: [f64; 9],
}

/// HSV saturation faded out for near-black pixels.
#[inline]
fn effective_saturation(max: u8, min: u8) -> f32 {
    if max == 0 {
        return 0.0;
    }
    let s = f32::from(max - min) / f32::from(max);
    let v = f32::from(max) / 255.0;
    s * ((v - 0.1) / 0.1).clamp(0.0, 1.0)
}

fn measure(img: &RgbaImage) -> Measures {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let alpha_total: u64 = raw.chunks_exact(4).map(|p| u64::from(p[3])).sum();
    let weight_of = |a: u8| if alpha_total > 0 { a } else { 255 };

    let mut hist = Histogram::new();
    let mut lightness = Vec::with_capacity(w * h);
    let mut saturation = Vec::with_capacity(w * h);
    let (mut sum_w, mut sum_l, mut sum_l2, mut sum_s, mut sum_warm) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let (cos30, sin30) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
    for p in raw.chunks_exact(4) {
        let (r, g, b) = (p[0], p[1], p[2]);
        let a8 = weight_of(p[3]);
        if a8 > 0 {
            hist.add(r, g, b, u64::from(a8));
        }
        let a = f64::from(a8) / 255.0;
        let y = 0.2126 * palette::srgb_to_linear(r)
            + 0.7152 * palette::srgb_to_linear(g)
            + 0.0722 * palette::srgb_to_linear(b);
        let l = (palette::lightness(f64::from(y)) / 100.0).clamp(0.0, 1.0);
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let s = f64::from(effective_saturation(max, min));
        lightness.push(l as f32);
        saturation.push(s as f32);
        sum_w += a;
        sum_l += a * l;
        sum_l2 += a * l * l;
        sum_s += a * s;
        if max != min {
            // Hue as an angle in the opponent-colour plane; cos(hue − 30°) without trig.
            let (rf, gf, bf) = (f64::from(r), f64::from(g), f64::from(b));
            let x = rf - 0.5 * (gf + bf);
            let yv = 0.866_025_403_784_438_6 * (gf - bf);
            let len = (x * x + yv * yv).sqrt();
            if len > 0.0 {
                sum_warm += a * s * (x / len * cos30 + yv / len * sin30);
            }
        }
    }
    let sum_w = sum_w.max(f64::MIN_POSITIVE);
    let brightness = sum_l / sum_w;
    let variance = (sum_l2 / sum_w - brightness * brightness).max(0.0);
    let contrast = (2.0 * variance.sqrt()).min(1.0);
    let saturation_mean = sum_s / sum_w;
    let warmth = (sum_warm / sum_s.max(0.2 * sum_w)).clamp(-1.0, 1.0);

    // Visual weight on a 3×3 grid: mean weight per cell (cells differ by a pixel when a side is
    // not a multiple of 3; means keep that from tilting the grid), normalised to sum 1.
    let mut grid = [0f64; 9];
    let mut cell_pixels = [0u32; 9];
    let column: Vec<usize> = (0..w).map(|x| x * 3 / w).collect();
    for y in 0..h {
        let row = y * 3 / h * 3;
        for x in 0..w {
            let i = y * w + x;
            let a = f64::from(weight_of(raw[i * 4 + 3])) / 255.0;
            let salience = (f64::from(lightness[i]) - brightness).abs() + f64::from(saturation[i]);
            grid[row + column[x]] += a * salience;
            cell_pixels[row + column[x]] += 1;
        }
    }
    for (g, &n) in grid.iter_mut().zip(&cell_pixels) {
        *g /= f64::from(n.max(1));
    }
    let total: f64 = grid.iter().sum();
    if total > 1e-9 {
        grid.iter_mut().for_each(|g| *g = round4(*g / total));
    } else {
        grid = [round4(1.0 / 9.0); 9];
    }

    let mut palette = hist.palette();
    for c in &mut palette {
        c.proportion = round4(c.proportion);
    }
    // Rounding must not break "sums to 1": the largest colour absorbs the difference.
    if let Some((first, rest)) = palette.split_first_mut() {
        first.proportion = round4(1.0 - rest.iter().map(|c| c.proportion).sum::<f64>());
    }

    Measures { palette, brightness, contrast, saturation: saturation_mean, warmth, grid }
}

/// The mood, by the first matching rule:
///
/// | rule | mood |
/// |---|---|
/// | brightness ≥ 0.6, saturation ≥ 0.45, warmth ≥ 0.15 | energetic |
/// | brightness ≥ 0.5, saturation ≥ 0.45 | vibrant |
/// | brightness < 0.35, contrast ≥ 0.5 | dramatic |
/// | brightness < 0.35 | moody |
/// | brightness ≥ 0.6, contrast < 0.3 | calm |
/// | saturation < 0.15 | muted |
/// | warmth ≥ 0.25 | cozy |
/// | warmth ≤ −0.25 | serene |
/// | otherwise | balanced |
pub fn mood(brightness: f64, contrast: f64, saturation: f64, warmth: f64) -> &'static str {
    if brightness >= 0.6 && saturation >= 0.45 && warmth >= 0.15 {
        "energetic"
    } else if brightness >= 0.5 && saturation >= 0.45 {
        "vibrant"
    } else if brightness < 0.35 && contrast >= 0.5 {
        "dramatic"
    } else if brightness < 0.35 {
        "moody"
    } else if brightness >= 0.6 && contrast < 0.3 {
        "calm"
    } else if saturation < 0.15 {
        "muted"
    } else if warmth >= 0.25 {
        "cozy"
    } else if warmth <= -0.25 {
        "serene"
    } else {
        "balanced"
    }
}

/// The heaviest cell; the centre wins ties (a uniform image is "center").
fn dominant_cell(grid: &[f64; 9]) -> usize {
    let mut best = 4;
    for (i, &g) in grid.iter().enumerate() {
        if g > grid[best] + 1e-9 {
            best = i;
        }
    }
    best
}

/// Balance from the grid's centre of mass `(cx, cy)`, each in −1..1 (column
/// and row offsets from the middle, weighted): within 0.1 of the middle on
/// both axes it is "centered" when the middle cell holds at least a quarter of
/// the weight and "symmetric" otherwise; else the larger offset names the
/// heavy side ("left-heavy", "right-heavy", "top-heavy", "bottom-heavy").
pub fn balance(grid: &[f64; 9]) -> &'static str {
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, &g) in grid.iter().enumerate() {
        cx += g * ((i % 3) as f64 - 1.0);
        cy += g * ((i / 3) as f64 - 1.0);
    }
    if cx.abs() < 0.1 && cy.abs() < 0.1 {
        if grid[4] >= 0.25 { "centered" } else { "symmetric" }
    } else if cx.abs() >= cy.abs() {
        if cx < 0.0 { "left-heavy" } else { "right-heavy" }
    } else if cy < 0.0 {
        "top-heavy"
    } else {
        "bottom-heavy"
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

fn round4(x: f64) -> f64 {
    round_to(x, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_sizes() {
        assert_eq!(target_size(1024, 1024, 256), (256, 256));
        assert_eq!(target_size(4000, 3000, 256), (256, 192));
        assert_eq!(target_size(100, 50, 256), (100, 50));
        assert_eq!(target_size(30_000, 10, 256), (256, 1));
    }

    #[test]
    fn box_average_weights_alpha() {
        // 2×1 RGBA: opaque red next to transparent green → one opaque-ish red pixel.
        let src = [255, 0, 0, 255, 0, 255, 0, 0];
        let out = box_downscale::<4>(&src, 2, 1, 1, 1);
        assert_eq!(out.as_raw().as_slice(), &[255, 0, 0, 128]);
        let grey = box_downscale::<1>(&[0, 255, 0, 255], 4, 1, 2, 1);
        assert_eq!(grey.as_raw().as_slice(), &[128, 128, 128, 255, 128, 128, 128, 255]);
    }

    #[test]
    fn balance_and_dominance() {
        let mut g = [1.0 / 9.0; 9];
        assert_eq!(balance(&g), "symmetric");
        assert_eq!(dominant_cell(&g), 4);
        g = [0.0; 9];
        g[4] = 1.0;
        assert_eq!(balance(&g), "centered");
        g = [0.0; 9];
        g[0] = 0.6;
        g[3] = 0.4;
        assert_eq!(balance(&g), "left-heavy");
        assert_eq!(REGIONS[dominant_cell(&g)], "top-left");
        g = [0.0; 9];
        g[7] = 1.0;
        assert_eq!(balance(&g), "bottom-heavy");
    }

    /// The smallest valid Huffman JPEG of its size (one bit per block) decodes and is analysed:
    /// the scan-data bound refuses lies, not compact images.
    #[test]
    fn a_minimal_but_complete_jpeg_is_analysed() {
        let jpeg = super::super::header::fixtures::one_bit_per_block_jpeg(512, 256, &[0u8; 256]);
        let analyzer = PixelAnalyzer::new(PixelLimits { max_bytes: 1 << 20, max_pixels: 64_000_000 });
        let facts = analyzer.analyze_sync(&jpeg).expect("a complete JPEG");
        assert_eq!((facts.width, facts.height, jpeg.len()), (512, 256, 374));
        let short = super::super::header::fixtures::one_bit_per_block_jpeg(512, 256, &[0u8; 255]);
        assert!(matches!(analyzer.analyze_sync(&short), Err(AnalysisError::Corrupt(_))));
    }

    #[test]
    fn moods() {
        assert_eq!(mood(0.8, 0.4, 0.8, 0.6), "energetic");
        assert_eq!(mood(0.6, 0.4, 0.8, -0.6), "vibrant");
        assert_eq!(mood(0.2, 0.7, 0.1, 0.0), "dramatic");
        assert_eq!(mood(0.2, 0.1, 0.1, 0.0), "moody");
        assert_eq!(mood(0.8, 0.1, 0.2, 0.0), "calm");
        assert_eq!(mood(0.5, 0.4, 0.05, 0.0), "muted");
        assert_eq!(mood(0.5, 0.4, 0.3, 0.4), "cozy");
        assert_eq!(mood(0.5, 0.4, 0.3, -0.4), "serene");
        assert_eq!(mood(0.5, 0.4, 0.3, 0.0), "balanced");
    }
}
