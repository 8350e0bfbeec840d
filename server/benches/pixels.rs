//! `pixels` analysis of a generated 1024×1024 photo-like JPEG (quality 85).
//! Target: ≤ 30 ms per image (docs/PERFORMANCE.md, "Image analysis (pixels)").
//!
//! Run: `cargo bench -p brain-server --bench pixels`

#[path = "../tests/support/images.rs"]
mod images;

use std::hint::black_box;

use brain_server::vision::pixels::{PixelAnalyzer, PixelLimits};
use criterion::{Criterion, criterion_group, criterion_main};

fn pixels(c: &mut Criterion) {
    let jpeg = images::jpeg(&images::photo_like(1024, 1024), 85);
    let png = images::encode_rgb(&images::photo_like(1024, 1024), image::ImageFormat::Png);
    let analyzer = PixelAnalyzer::new(PixelLimits { max_bytes: 20 << 20, max_pixels: 64_000_000 });
    // ok: a benchmark fixture that does not analyse is a broken benchmark.
    let facts = analyzer.analyze_sync(&jpeg).expect("the fixture analyses");
    eprintln!(
        "fixture: {} bytes JPEG, {}x{}, palette {:?}, mood {}",
        jpeg.len(),
        facts.width,
        facts.height,
        facts.palette.iter().map(|p| p.hex.as_str()).collect::<Vec<_>>(),
        facts.mood
    );

    let mut group = c.benchmark_group("pixels");
    group.sample_size(50);
    group.bench_function("analyze_jpeg_1024x1024_q85", |b| b.iter(|| analyzer.analyze_sync(black_box(&jpeg))));
    group.bench_function("analyze_png_1024x1024", |b| b.iter(|| analyzer.analyze_sync(black_box(&png))));
    // For the breakdown: the JPEG decode alone (full size, no limits), which the analysis includes.
    group.bench_function("decode_only_jpeg_1024x1024_q85", |b| {
        b.iter(|| image::load_from_memory_with_format(black_box(&jpeg), image::ImageFormat::Jpeg))
    });
    group.finish();
}

criterion_group!(benches, pixels);
criterion_main!(benches);
