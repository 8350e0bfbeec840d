//! The pixel analyser on real encoded images generated here: palette,
//! measurements, layout, orientation, hostile input and determinism.

#[path = "support/images.rs"]
mod images;

use brain_server::model::{ImageFacts, Orientation, TypographyStatus};
use brain_server::vision::pixels::{PixelAnalyzer, PixelLimits};
use brain_server::vision::{AnalysisError, Analyzer};
use image::ImageFormat;
use images::*;
use sha2::{Digest, Sha256};

fn analyzer() -> PixelAnalyzer {
    PixelAnalyzer::new(PixelLimits { max_bytes: 20 << 20, max_pixels: 64_000_000 })
}

fn analyze(bytes: &[u8]) -> ImageFacts {
    analyzer().analyze_sync(bytes).unwrap_or_else(|e| panic!("analysis failed: {e}"))
}

fn rgb_of(hex: &str) -> [i32; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as i32 & 0xff, (v >> 8) as i32 & 0xff, v as i32 & 0xff]
}

fn assert_close_hex(actual: &str, expected: [u8; 3], tolerance: i32, context: &str) {
    let a = rgb_of(actual);
    for k in 0..3 {
        assert!(
            (a[k] - i32::from(expected[k])).abs() <= tolerance,
            "{context}: {actual} is not within {tolerance} of {expected:?}"
        );
    }
}

fn assert_sums_to_one(facts: &ImageFacts) {
    let palette: f64 = facts.palette.iter().map(|c| c.proportion).sum();
    assert!((palette - 1.0).abs() < 1e-6, "palette sums to {palette}");
    let grid: f64 = facts.layout.weight_grid.iter().sum();
    assert!((grid - 1.0).abs() < 1e-3, "grid sums to {grid}");
    assert_eq!(facts.layout.weight_grid.len(), 9);
}

#[test]
fn solid_colours_in_every_format() {
    let colour = [200, 40, 60];
    let img = solid(64, 48, colour);
    for (format, tolerance) in
        [(ImageFormat::Png, 0), (ImageFormat::WebP, 0), (ImageFormat::Gif, 6), (ImageFormat::Jpeg, 4)]
    {
        let bytes = encode_rgb(&img, format);
        let facts = analyze(&bytes);
        let ctx = format!("{format:?}");
        assert_eq!(facts.palette.len(), 1, "{ctx}: {:?}", facts.palette);
        assert_close_hex(&facts.palette[0].hex, colour, tolerance, &ctx);
        assert_eq!(facts.palette[0].proportion, 1.0, "{ctx}");
        assert_eq!(facts.palette[0].name, "crimson", "{ctx}");
        assert_eq!((facts.width, facts.height), (64, 48), "{ctx}");
        assert_eq!(facts.orientation, Orientation::Landscape);
        assert_eq!(facts.aspect_ratio, 1.3333);
        assert_eq!(facts.analyzer, "pixels");
        assert_eq!(facts.typography.status, TypographyStatus::Unknown);
        assert!(facts.typography.font_families.is_empty() && facts.typography.style.is_empty());
        assert_eq!(facts.layout.description, "");
        assert_eq!(facts.content_sha256, hex::encode(Sha256::digest(&bytes)));
        // A solid image has no visual weight anywhere: uniform grid, centred by convention.
        assert!(facts.layout.weight_grid.iter().all(|w| (w - 1.0 / 9.0).abs() < 1e-3), "{ctx}");
        assert_eq!(facts.layout.dominant_region, "center");
        assert_eq!(facts.layout.balance, "symmetric");
        assert_eq!(facts.contrast, 0.0, "{ctx}");
        assert_sums_to_one(&facts);
    }
}

#[test]
fn named_primaries() {
    for (rgb, name) in
        [([0, 0, 255], "blue"), ([255, 255, 255], "white"), ([0, 0, 0], "black"), ([255, 165, 0], "orange")]
    {
        let facts = analyze(&encode_rgb(&solid(20, 20, rgb), ImageFormat::Png));
        assert_eq!(facts.palette[0].hex, format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]));
        assert_eq!(facts.palette[0].name, name);
    }
}

#[test]
fn two_colour_split_proportions() {
    let navy = [20, 30, 120];
    let yellow = [250, 220, 60];
    let bytes = encode_rgb(&vertical_split(200, 100, 140, navy, yellow), ImageFormat::Png);
    let facts = analyze(&bytes);
    assert_eq!(facts.palette.len(), 2, "{:?}", facts.palette);
    assert_eq!(facts.palette[0].hex, "#141e78");
    assert!((facts.palette[0].proportion - 0.7).abs() < 0.01, "{:?}", facts.palette);
    assert_eq!(facts.palette[1].hex, "#fadc3c");
    assert!((facts.palette[1].proportion - 0.3).abs() < 0.01, "{:?}", facts.palette);
    assert_sums_to_one(&facts);

    // Lossy JPEG adds ringing at the edge but the two colours still dominate.
    let facts = analyze(&jpeg(&vertical_split(200, 100, 140, navy, yellow), 90));
    assert_close_hex(&facts.palette[0].hex, navy, 8, "jpeg navy");
    assert_close_hex(&facts.palette[1].hex, yellow, 8, "jpeg yellow");
    assert!((facts.palette[0].proportion - 0.7).abs() < 0.03, "{:?}", facts.palette);
    assert!((facts.palette[1].proportion - 0.3).abs() < 0.03, "{:?}", facts.palette);
}

#[test]
fn five_colours_at_most() {
    let stripes: [[u8; 3]; 7] =
        [[230, 30, 30], [30, 200, 40], [30, 40, 220], [250, 230, 40], [20, 20, 20], [240, 240, 240], [160, 40, 200]];
    let img = image::RgbImage::from_fn(700, 100, |x, _| image::Rgb(stripes[(x / 100) as usize]));
    let facts = analyze(&encode_rgb(&img, ImageFormat::Png));
    assert_eq!(facts.palette.len(), 5, "{:?}", facts.palette);
    assert_sums_to_one(&facts);
    // Largest first.
    assert!(facts.palette.windows(2).all(|w| w[0].proportion >= w[1].proportion));
}

#[test]
fn transparent_pixels_do_not_count() {
    let facts = analyze(&encode_rgba(&disc_on_transparent(120), ImageFormat::Png));
    assert_eq!(facts.palette.len(), 1, "{:?}", facts.palette);
    assert_eq!(facts.palette[0].hex, "#e6141e");
    assert_eq!(facts.palette[0].name, "red");
    let webp = analyze(&encode_rgba(&disc_on_transparent(120), ImageFormat::WebP));
    assert_eq!(webp.palette, facts.palette);
}

#[test]
fn bright_square_top_left_is_dominant() {
    let img = rect_on(300, 300, [15, 15, 20], [250, 250, 250], (0, 0, 100, 100));
    for bytes in [encode_rgb(&img, ImageFormat::Png), jpeg(&img, 90)] {
        let facts = analyze(&bytes);
        let grid = &facts.layout.weight_grid;
        assert_eq!(facts.layout.dominant_region, "top-left", "{grid:?}");
        assert!(grid[0] > 0.45, "{grid:?}");
        assert!(grid[1..].iter().all(|&w| w < grid[0] / 4.0), "{grid:?}");
        assert!(matches!(facts.layout.balance.as_str(), "left-heavy" | "top-heavy"), "{}", facts.layout.balance);
        assert_sums_to_one(&facts);
    }
}

#[test]
fn layouts_follow_the_subject() {
    let bg = [240, 236, 228];
    let fg = [200, 30, 40];
    let cases = [
        ((200, 120, 100, 150), "right", "right-heavy"),
        ((100, 100, 100, 100), "center", "centered"),
        ((100, 0, 100, 80), "top", "top-heavy"),
        ((0, 100, 60, 100), "left", "left-heavy"),
    ];
    for ((x, y, w, h), region, balance) in cases {
        let facts = analyze(&encode_rgb(&rect_on(300, 300, bg, fg, (x, y, w, h)), ImageFormat::Png));
        assert_eq!(facts.layout.dominant_region, region, "{:?}", facts.layout);
        assert_eq!(facts.layout.balance, balance, "{:?}", facts.layout);
    }
    // A corner subject: the heaviest cell is the corner; balance names one of its two sides.
    let facts = analyze(&encode_rgb(&rect_on(300, 300, bg, fg, (220, 220, 60, 60)), ImageFormat::Png));
    assert_eq!(facts.layout.dominant_region, "bottom-right");
    assert!(matches!(facts.layout.balance.as_str(), "right-heavy" | "bottom-heavy"), "{:?}", facts.layout);
}

#[test]
fn orientation_and_aspect_ratio() {
    for ((w, h), orientation, ratio) in [
        ((400, 200), Orientation::Landscape, 2.0),
        ((200, 400), Orientation::Portrait, 0.5),
        ((300, 290), Orientation::Square, 1.0345),
        ((290, 300), Orientation::Square, 0.9667),
        ((300, 280), Orientation::Landscape, 1.0714),
    ] {
        let facts = analyze(&encode_rgb(&solid(w, h, [90, 90, 90]), ImageFormat::Png));
        assert_eq!((facts.width, facts.height), (w, h));
        assert_eq!(facts.orientation, orientation, "{w}x{h}");
        assert_eq!(facts.aspect_ratio, ratio, "{w}x{h}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 400×200 with a bright patch top-left; EXIF 6 = rotate 90° clockwise for display,
    // which puts the patch top-right of a 200×400 portrait.
    let stored = rect_on(400, 200, [15, 15, 20], [250, 250, 250], (0, 0, 130, 60));
    let plain = analyze(&jpeg(&stored, 90));
    assert_eq!((plain.width, plain.height, plain.orientation), (400, 200, Orientation::Landscape));
    assert_eq!(plain.layout.dominant_region, "top-left");
    let facts = analyze(&with_exif_orientation(&jpeg(&stored, 90), 6));
    assert_eq!((facts.width, facts.height), (200, 400));
    assert_eq!(facts.orientation, Orientation::Portrait);
    assert_eq!(facts.aspect_ratio, 0.5);
    assert_eq!(facts.layout.dominant_region, "top-right", "{:?}", facts.layout);
}

#[test]
fn brightness_contrast_saturation_warmth() {
    let black = analyze(&encode_rgb(&solid(32, 32, [0, 0, 0]), ImageFormat::Png));
    assert_eq!((black.brightness, black.contrast, black.saturation), (0.0, 0.0, 0.0));
    assert_eq!(black.mood, "moody");
    let white = analyze(&encode_rgb(&solid(32, 32, [255, 255, 255]), ImageFormat::Png));
    assert_eq!((white.brightness, white.contrast, white.saturation), (1.0, 0.0, 0.0));
    assert_eq!(white.mood, "calm");
    let half = analyze(&encode_rgb(&vertical_split(64, 64, 32, [0, 0, 0], [255, 255, 255]), ImageFormat::Png));
    assert!((half.brightness - 0.5).abs() < 0.01, "{}", half.brightness);
    assert!(half.contrast > 0.99, "{}", half.contrast);

    let orange = analyze(&encode_rgb(&solid(32, 32, [255, 140, 0]), ImageFormat::Png));
    assert_eq!(orange.saturation, 1.0);
    assert!(orange.warmth > 0.9, "{}", orange.warmth);
    assert_eq!(orange.mood, "energetic");
    let blue = analyze(&encode_rgb(&solid(32, 32, [30, 90, 230]), ImageFormat::Png));
    assert!(blue.warmth < -0.7, "{}", blue.warmth);
    let grey = analyze(&encode_rgb(&solid(32, 32, [128, 128, 128]), ImageFormat::Png));
    assert_eq!((grey.saturation, grey.warmth), (0.0, 0.0));
    assert_eq!(grey.mood, "muted");
    // Near-black pixels carry no saturation even if their channels differ.
    let near_black = analyze(&encode_rgb(&solid(32, 32, [20, 0, 0]), ImageFormat::Png));
    assert_eq!(near_black.saturation, 0.0);
}

#[test]
fn grey_and_sixteen_bit_images() {
    let grey = image::GrayImage::from_fn(50, 50, |x, _| image::Luma([if x < 25 { 30 } else { 220 }]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(grey).write_to(&mut out, ImageFormat::Png).unwrap();
    let facts = analyze(out.get_ref());
    assert_eq!(facts.palette.len(), 2);
    assert_eq!(facts.saturation, 0.0);

    let deep = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(40, 30, image::Rgb([65535u16, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb16(deep).write_to(&mut out, ImageFormat::Png).unwrap();
    let facts = analyze(out.get_ref());
    assert_eq!(facts.palette[0].hex, "#ff0000");
    assert_eq!((facts.width, facts.height), (40, 30));
}

#[test]
fn large_images_are_downscaled_consistently() {
    let small =
        analyze(&encode_rgb(&rect_on(256, 256, [20, 20, 20], [240, 240, 240], (0, 0, 128, 128)), ImageFormat::Png));
    let large =
        analyze(&encode_rgb(&rect_on(2048, 2048, [20, 20, 20], [240, 240, 240], (0, 0, 1024, 1024)), ImageFormat::Png));
    assert_eq!((large.width, large.height), (2048, 2048));
    assert_eq!(small.palette, large.palette);
    assert_eq!(small.layout, large.layout);
    assert_eq!(small.brightness, large.brightness);
}

#[test]
fn truncated_and_corrupt_files_fail_with_a_reason() {
    let img = photo_like(120, 80);
    for (format, bytes) in [
        ("png", encode_rgb(&img, ImageFormat::Png)),
        ("jpeg", jpeg(&img, 85)),
        ("webp", encode_rgb(&img, ImageFormat::WebP)),
        ("gif", encode_rgb(&img, ImageFormat::Gif)),
    ] {
        for cut in [bytes.len() / 2, bytes.len() * 9 / 10, 40, 20] {
            match analyzer().analyze_sync(&bytes[..cut]) {
                Err(AnalysisError::Corrupt(reason)) => assert!(!reason.is_empty()),
                other => panic!("{format} cut at {cut}/{}: expected Corrupt, got {other:?}", bytes.len()),
            }
        }
    }

    // A PNG whose compressed data is overwritten.
    let mut png = encode_rgb(&img, ImageFormat::Png);
    let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut png[idat + 10..idat + 60] {
        *b ^= 0x5A;
    }
    let err = analyzer().analyze_sync(&png).unwrap_err();
    assert!(matches!(err, AnalysisError::Corrupt(_)), "{err:?}");
    assert!(err.is_permanent());
}

#[test]
fn unsupported_bytes() {
    for (bytes, mention) in [
        (b"".to_vec(), "empty"),
        (b"BM\x36\x00\x00\x00".to_vec(), "BMP"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(), "SVG"),
        ((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect(), "unrecognised"),
    ] {
        match analyzer().analyze_sync(&bytes) {
            Err(AnalysisError::Unsupported(reason)) => assert!(reason.contains(mention), "{reason}"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    for (name, bytes) in [
        ("png 100000x100000", png_bomb(100_000, 100_000)),
        ("png 20000x20000", png_bomb(20_000, 20_000)),
        ("gif 65535x65535", gif_bomb(65_535, 65_535)),
        ("jpeg 65535x65535", jpeg_bomb(65_535, 65_535)),
        ("webp 16384x16384", webp_bomb(16_384, 16_384)),
    ] {
        assert!(bytes.len() < 2_000, "{name} is {} bytes", bytes.len());
        match analyzer().analyze_sync(&bytes) {
            Err(AnalysisError::TooLarge(reason)) => assert!(reason.contains("pixels"), "{name}: {reason}"),
            other => panic!("{name}: expected TooLarge, got {other:?}"),
        }
    }
    // The pixel budget is the configured one: a 2000×2000 declared size passes the header
    // check at 4M pixels and is refused at 3M.
    let tight = PixelAnalyzer::new(PixelLimits { max_bytes: 20 << 20, max_pixels: 3_000_000 });
    assert!(matches!(tight.analyze_sync(&png_bomb(2_000, 2_000)), Err(AnalysisError::TooLarge(_))));
    let roomy = PixelAnalyzer::new(PixelLimits { max_bytes: 20 << 20, max_pixels: 4_000_000 });
    assert!(matches!(roomy.analyze_sync(&png_bomb(2_000, 2_000)), Err(AnalysisError::Corrupt(_))));
    // Byte cap.
    let tiny = PixelAnalyzer::new(PixelLimits { max_bytes: 100, max_pixels: 64_000_000 });
    assert!(matches!(
        tiny.analyze_sync(&encode_rgb(&photo_like(64, 64), ImageFormat::Png)),
        Err(AnalysisError::TooLarge(_))
    ));
}

#[test]
fn same_bytes_same_facts() {
    let bytes = jpeg(&photo_like(640, 480), 85);
    let mut first = analyze(&bytes);
    let mut second = PixelAnalyzer::new(analyzer().limits()).analyze_sync(&bytes).unwrap();
    first.processing_ms = 0.0;
    second.processing_ms = 0.0;
    assert_eq!(first, second);
    assert_eq!(serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap());
    assert_eq!(first.palette.len(), 5, "{:?}", first.palette);
    assert_sums_to_one(&first);
}

#[tokio::test]
async fn the_trait_runs_on_the_blocking_pool() {
    let bytes = encode_rgb(&photo_like(320, 240), ImageFormat::WebP);
    let analyzer: std::sync::Arc<dyn Analyzer> = std::sync::Arc::new(analyzer());
    let mut facts = analyzer.analyze(&bytes).await.unwrap();
    assert!(facts.processing_ms > 0.0);
    let mut direct =
        PixelAnalyzer::new(PixelLimits { max_bytes: 20 << 20, max_pixels: 64_000_000 }).analyze_sync(&bytes).unwrap();
    facts.processing_ms = 0.0;
    direct.processing_ms = 0.0;
    assert_eq!(facts, direct);
    let err = analyzer.analyze(b"not an image").await.unwrap_err();
    assert!(matches!(err, AnalysisError::Unsupported(_)) && err.is_permanent());
}

#[test]
fn config_picks_the_backend() {
    let config = brain_server::config::Config::default();
    let analyzer = brain_server::vision::analyzer_from_config(&config).unwrap();
    let facts = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(analyzer.analyze(&encode_rgb(&solid(10, 10, [1, 2, 3]), ImageFormat::Png)))
        .unwrap();
    assert_eq!(facts.analyzer, "pixels");
}
