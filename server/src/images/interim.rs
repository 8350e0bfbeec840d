//! TEMPORARY: minimal stand-ins for the vision helper's `vision::intake`
//! (sniff, validate_url), `vision::fetch::Fetcher` and
//! `vision::analyzer_from_config`, behind the same names, so the job queue
//! and event delivery can be built and tested before that work lands on main.
//! Delete this file and use `crate::vision` once it does.

use std::{
    io::Cursor,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Once},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::StreamExt;
use image::{GenericImageView, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::{
    config::Config,
    vision::{AnalysisError, Analyzer, ImageFacts, Layout, Orientation, PaletteColor, Typography, TypographyStatus},
};

/// The MIME type of PNG, JPEG, WebP or GIF bytes, by their signature.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not an absolute http(s) URL.
    Invalid(String),
    /// Points at a private, loopback or otherwise internal address.
    Forbidden(String),
}

/// Checks an image URL before it is accepted (and each redirect before it is followed).
pub fn validate_url(raw: &str, allow_private: bool) -> Result<url::Url, UrlError> {
    if raw.len() > 2048 {
        return Err(UrlError::Invalid("the URL is longer than 2048 characters".into()));
    }
    let url = url::Url::parse(raw).map_err(|e| UrlError::Invalid(format!("not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Invalid(format!("scheme {} is not http or https", url.scheme())));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Invalid("URLs with credentials are not accepted".into()));
    }
    let host = url.host().ok_or_else(|| UrlError::Invalid("the URL has no host".into()))?;
    if allow_private {
        return Ok(url);
    }
    let ip = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") || d.ends_with(".local") {
                return Err(UrlError::Forbidden(format!("{d} is an internal host")));
            }
            None
        }
    };
    match ip {
        Some(ip) if !is_public(ip) => Err(UrlError::Forbidden(format!("{ip} is not a public address"))),
        _ => Ok(url),
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// What happened.
    pub message: String,
    /// Retrying cannot help (404, refused address, too large).
    pub permanent: bool,
}

/// Downloads images, refusing internal addresses (also after DNS and on every redirect).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

static CRYPTO: Once = Once::new();

impl Fetcher {
    /// A fetcher configured by `image_fetch_*`, `max_image_bytes` and `allow_private_image_urls`.
    pub fn new(config: &Config) -> Result<Self, String> {
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let allow_private = config.allow_private_image_urls;
        let max_redirects = config.image_fetch_max_redirects as usize;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.image_fetch_connect_timeout_ms))
            .timeout(Duration::from_millis(config.image_fetch_timeout_ms))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max_redirects {
                    return attempt.error(format!("more than {max_redirects} redirects"));
                }
                match validate_url(attempt.url().as_str(), allow_private) {
                    Ok(_) => attempt.follow(),
                    Err(UrlError::Invalid(m) | UrlError::Forbidden(m)) => {
                        attempt.error(format!("redirect refused: {m}"))
                    }
                }
            }))
            .user_agent("brain-image-fetcher/1")
            .build()
            .map_err(|e| format!("cannot build the image fetcher: {e}"))?;
        Ok(Self { client, max_bytes: config.max_image_bytes })
    }

    /// The image at `url`, at most `max_image_bytes`.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let transient = |message: String| FetchError { message, permanent: false };
        let permanent = |message: String| FetchError { message, permanent: true };
        let response = self.client.get(url).send().await.map_err(|e| {
            let text = format!("cannot fetch {url}: {}", error_chain(&e));
            if e.is_redirect() || text.contains("no public address") { permanent(text) } else { transient(text) }
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = format!("fetching {url} returned HTTP {}", status.as_u16());
            return Err(if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                transient(text)
            } else {
                permanent(text)
            });
        }
        if let Some(len) = response.content_length()
            && len > self.max_bytes as u64
        {
            return Err(permanent(format!("the image at {url} is {len} bytes; the limit is {}", self.max_bytes)));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transient(format!("reading {url} failed: {}", error_chain(&e))))?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(permanent(format!("the image at {url} is larger than {} bytes", self.max_bytes)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The analyser the configuration asks for (the stand-in always uses pixels).
pub fn analyzer_from_config(config: &Config) -> Arc<dyn Analyzer> {
    Arc::new(PixelFacts { max_pixels: config.max_image_pixels })
}

/// Facts from decoded pixels: size, brightness, contrast, saturation, warmth,
/// a palette, a mood and a 3x3 layout grid.
struct PixelFacts {
    max_pixels: u64,
}

#[async_trait::async_trait]
impl Analyzer for PixelFacts {
    async fn analyze(&self, bytes: &[u8]) -> Result<ImageFacts, AnalysisError> {
        let bytes = bytes.to_vec();
        let max_pixels = self.max_pixels;
        tokio::task::spawn_blocking(move || analyze(&bytes, max_pixels))
            .await
            .map_err(|e| AnalysisError::Corrupt(format!("the decoder crashed: {e}")))?
    }
}

fn analyze(bytes: &[u8], max_pixels: u64) -> Result<ImageFacts, AnalysisError> {
    let started = Instant::now();
    let reader = || {
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| AnalysisError::Corrupt(e.to_string()))
    };
    let format = reader()?.format().ok_or_else(|| AnalysisError::Unsupported("unknown format".into()))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif) {
        return Err(AnalysisError::Unsupported(format!("{format:?}")));
    }
    let (w, h) = reader()?.into_dimensions().map_err(|e| AnalysisError::Corrupt(e.to_string()))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(AnalysisError::TooLarge(format!("{w}x{h} is more than {max_pixels} pixels")));
    }
    let mut decoder = reader()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    decoder.limits(limits);
    let image = decoder.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => AnalysisError::TooLarge(l.to_string()),
        image::ImageError::Unsupported(u) => AnalysisError::Unsupported(u.to_string()),
        other => AnalysisError::Corrupt(other.to_string()),
    })?;
    let (width, height) = image.dimensions();
    let small = image.thumbnail(64, 64).to_rgb8();
    let (sw, sh) = small.dimensions();
    let n = f64::from((sw * sh).max(1));

    let mut lum_sum = 0.0;
    let mut lum_sq = 0.0;
    let mut sat_sum = 0.0;
    let mut warm_sum = 0.0;
    let mut bins = vec![(0u32, [0u64; 3]); 512];
    let mut grid = [0.0f64; 9];
    for (x, y, p) in small.enumerate_pixels() {
        let [r, g, b] = p.0.map(f64::from);
        let lum = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0;
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
        lum_sum += lum;
        lum_sq += lum * lum;
        sat_sum += sat;
        warm_sum += (r - b) / 255.0;
        let bin = ((p.0[0] >> 5) as usize) << 6 | ((p.0[1] >> 5) as usize) << 3 | (p.0[2] >> 5) as usize;
        bins[bin].0 += 1;
        for c in 0..3 {
            bins[bin].1[c] += u64::from(p.0[c]);
        }
        let cell = ((y * 3 / sh.max(1)).min(2) * 3 + (x * 3 / sw.max(1)).min(2)) as usize;
        grid[cell] += 0.1 + sat + (1.0 - lum);
    }
    let brightness = lum_sum / n;
    let contrast = ((lum_sq / n - brightness * brightness).max(0.0).sqrt() * 2.0).min(1.0);
    let saturation = sat_sum / n;
    let warmth = (warm_sum / n).clamp(-1.0, 1.0);

    let mut used: Vec<_> = bins.into_iter().filter(|(count, _)| *count > 0).collect();
    used.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
    used.truncate(5);
    let top: f64 = used.iter().map(|(c, _)| f64::from(*c)).sum();
    let palette = used
        .iter()
        .map(|(count, sum)| {
            let rgb = sum.map(|s| (s / u64::from(*count)) as u8);
            PaletteColor {
                hex: format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]),
                proportion: f64::from(*count) / top,
                name: color_name(rgb),
            }
        })
        .collect();

    let total: f64 = grid.iter().sum::<f64>().max(f64::EPSILON);
    let weight_grid: Vec<f64> = grid.iter().map(|w| w / total).collect();
    let heaviest = (0..9).max_by(|&a, &b| weight_grid[a].total_cmp(&weight_grid[b])).unwrap_or(4);
    let regions = ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right"];
    let column = |c: usize| weight_grid[c] + weight_grid[c + 3] + weight_grid[c + 6];
    let row = |r: usize| weight_grid[r * 3] + weight_grid[r * 3 + 1] + weight_grid[r * 3 + 2];
    let balance = if weight_grid[4] > 0.2 {
        "centered"
    } else if column(0) > column(2) + 0.1 {
        "left-heavy"
    } else if column(2) > column(0) + 0.1 {
        "right-heavy"
    } else if row(0) > row(2) + 0.1 {
        "top-heavy"
    } else if row(2) > row(0) + 0.1 {
        "bottom-heavy"
    } else {
        "symmetric"
    };
    let aspect_ratio = f64::from(width) / f64::from(height.max(1));
    let orientation = if (aspect_ratio - 1.0).abs() <= 0.05 {
        Orientation::Square
    } else if aspect_ratio > 1.0 {
        Orientation::Landscape
    } else {
        Orientation::Portrait
    };
    Ok(ImageFacts {
        palette,
        mood: mood(brightness, contrast, saturation, warmth).into(),
        typography: Typography { status: TypographyStatus::Unknown, font_families: Vec::new(), style: String::new() },
        layout: Layout {
            weight_grid,
            dominant_region: regions[heaviest].into(),
            balance: balance.into(),
            description: String::new(),
        },
        width,
        height,
        processing_ms: started.elapsed().as_secs_f64() * 1e3,
        brightness,
        contrast,
        saturation,
        warmth,
        orientation,
        aspect_ratio,
        analyzer: "pixels".into(),
        content_sha256: hex::encode(Sha256::digest(bytes)),
    })
}

fn mood(brightness: f64, contrast: f64, saturation: f64, warmth: f64) -> &'static str {
    if brightness < 0.25 {
        "moody"
    } else if saturation > 0.5 && contrast > 0.3 {
        "energetic"
    } else if saturation < 0.12 {
        if brightness > 0.7 { "minimal" } else { "muted" }
    } else if warmth > 0.15 {
        "warm"
    } else if warmth < -0.15 {
        "cool"
    } else {
        "calm"
    }
}

fn color_name([r, g, b]: [u8; 3]) -> String {
    let (r, g, b) = (f64::from(r) / 255.0, f64::from(g) / 255.0, f64::from(b) / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let light = (max + min) / 2.0;
    let delta = max - min;
    if delta < 0.1 {
        return match light {
            l if l < 0.15 => "black",
            l if l > 0.85 => "white",
            _ => "gray",
        }
        .into();
    }
    let hue = if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let base = match hue {
        h if !(15.0..345.0).contains(&h) => "red",
        h if h < 45.0 => "orange",
        h if h < 70.0 => "yellow",
        h if h < 160.0 => "green",
        h if h < 200.0 => "cyan",
        h if h < 255.0 => "blue",
        h if h < 290.0 => "purple",
        _ => "pink",
    };
    match light {
        l if l < 0.3 => format!("dark {base}"),
        l if l > 0.75 => format!("light {base}"),
        _ => base.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decide_the_type() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn urls_are_checked() {
        assert!(validate_url("https://example.com/a.png", false).is_ok());
        assert!(matches!(validate_url("ftp://example.com/a.png", false), Err(UrlError::Invalid(_))));
        assert!(matches!(validate_url("not a url", false), Err(UrlError::Invalid(_))));
        assert!(matches!(validate_url("http://127.0.0.1/a.png", false), Err(UrlError::Forbidden(_))));
        assert!(matches!(validate_url("http://10.1.2.3/a.png", false), Err(UrlError::Forbidden(_))));
        assert!(matches!(validate_url("http://[::1]/a.png", false), Err(UrlError::Forbidden(_))));
        assert!(matches!(validate_url("http://169.254.169.254/", false), Err(UrlError::Forbidden(_))));
        assert!(matches!(validate_url("http://localhost:8080/", false), Err(UrlError::Forbidden(_))));
        assert!(validate_url("http://127.0.0.1/a.png", true).is_ok());
    }

    #[test]
    fn decodes_and_describes_a_png() {
        let mut img = image::RgbImage::new(40, 20);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 20 { image::Rgb([200, 30, 30]) } else { image::Rgb([20, 20, 160]) };
        }
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut png), ImageFormat::Png).expect("encode png");
        let facts = analyze(&png, 1_000_000).expect("facts");
        assert_eq!((facts.width, facts.height, facts.orientation), (40, 20, Orientation::Landscape));
        let shares: f64 = facts.palette.iter().map(|c| c.proportion).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert!(facts.palette.iter().any(|c| c.name.contains("red")), "{:?}", facts.palette);
        assert!(!facts.mood.is_empty());
        assert!(matches!(analyze(&png[..png.len() / 2], 1_000_000), Err(AnalysisError::Corrupt(_))));
        assert!(matches!(analyze(&png, 100), Err(AnalysisError::TooLarge(_))));
    }
}
