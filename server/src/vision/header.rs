//! Image dimensions read from the encoded header, before any decoder runs or
//! any pixel buffer is allocated: the first defence against decompression
//! bombs (a tiny file that declares a gigapixel canvas).
//!
//! Each parser reads only what it needs and bounds every index, so hostile
//! input ends in an error, never a panic. The JPEG walker also follows the
//! marker structure to the end-of-image marker, because the JPEG decoder
//! tolerates truncation (it would paint the missing part grey); a file cut
//! short is reported as corrupt instead of analysed.

use super::AnalysisError;
use super::intake::ImageFormat;

/// Longest side accepted, in pixels, whatever the pixel budget.
pub const MAX_SIDE: u32 = 32_768;

/// Declared dimensions of an image (for GIF, the logical screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Reads the declared dimensions of `bytes` (already sniffed as `format`) and
/// refuses images over `max_pixels` or [`MAX_SIDE`] (`TooLarge`) and headers
/// that are missing, truncated or inconsistent (`Corrupt`).
pub fn probe(bytes: &[u8], format: ImageFormat, max_pixels: u64) -> Result<Dimensions, AnalysisError> {
    let check = |d: Dimensions| check_dimensions(d, max_pixels);
    match format {
        ImageFormat::Png => check(png(bytes)?),
        ImageFormat::Gif => gif(bytes, check),
        ImageFormat::Webp => check(webp(bytes)?),
        ImageFormat::Jpeg => jpeg(bytes, check),
    }
}

/// Refuses zero, absurd or over-budget dimensions.
pub fn check_dimensions(d: Dimensions, max_pixels: u64) -> Result<Dimensions, AnalysisError> {
    if d.width == 0 || d.height == 0 {
        return Err(AnalysisError::Corrupt(format!("the header declares a {}x{} image", d.width, d.height)));
    }
    if d.width > MAX_SIDE || d.height > MAX_SIDE {
        return Err(AnalysisError::TooLarge(format!("{}x{} pixels: a side exceeds {MAX_SIDE}", d.width, d.height)));
    }
    let pixels = u64::from(d.width) * u64::from(d.height);
    if pixels > max_pixels {
        return Err(AnalysisError::TooLarge(format!(
            "{}x{} = {pixels} pixels; the limit is {max_pixels}",
            d.width, d.height
        )));
    }
    Ok(d)
}

fn truncated(what: &str) -> AnalysisError {
    AnalysisError::Corrupt(format!("truncated {what}"))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | (u32::from(s[1]) << 8) | (u32::from(s[2]) << 16))
}

/// PNG: the IHDR chunk must come first (signature, length 13, "IHDR", width, height).
fn png(b: &[u8]) -> Result<Dimensions, AnalysisError> {
    if b.len() < 24 {
        return Err(truncated("PNG header"));
    }
    if &b[12..16] != b"IHDR" || be32(b, 8) != Some(13) {
        return Err(AnalysisError::Corrupt("PNG does not start with an IHDR chunk".into()));
    }
    let (Some(width), Some(height)) = (be32(b, 16), be32(b, 20)) else { return Err(truncated("PNG header")) };
    Ok(Dimensions { width, height })
}

/// GIF: the logical screen, and the first frame's descriptor (which may
/// declare a frame bigger than the screen; the decoder would allocate it).
fn gif(b: &[u8], check: impl Fn(Dimensions) -> Result<Dimensions, AnalysisError>) -> Result<Dimensions, AnalysisError> {
    let (Some(width), Some(height), Some(&flags)) = (le16(b, 6), le16(b, 8), b.get(10)) else {
        return Err(truncated("GIF header"));
    };
    let screen = check(Dimensions { width, height })?;
    let mut pos = 13usize;
    if flags & 0x80 != 0 {
        pos += 3 << ((flags & 7) + 1);
    }
    loop {
        match b.get(pos) {
            None => return Err(truncated("GIF before its first frame")),
            Some(0x21) => {
                // Extension: label, then data sub-blocks until a zero length.
                pos += 2;
                loop {
                    let Some(&len) = b.get(pos) else { return Err(truncated("GIF extension")) };
                    pos += 1 + usize::from(len);
                    if len == 0 {
                        break;
                    }
                }
            }
            Some(0x2C) => {
                let (Some(fw), Some(fh)) = (le16(b, pos + 5), le16(b, pos + 7)) else {
                    return Err(truncated("GIF frame descriptor"));
                };
                check(Dimensions { width: fw, height: fh })?;
                return Ok(screen);
            }
            Some(0x3B) => return Err(AnalysisError::Corrupt("GIF has no frames".into())),
            Some(other) => {
                return Err(AnalysisError::Corrupt(format!("GIF has an unknown block 0x{other:02x}")));
            }
        }
    }
}

/// WebP: the RIFF container must hold as many bytes as it declares, then a
/// VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk gives the size.
fn webp(b: &[u8]) -> Result<Dimensions, AnalysisError> {
    let Some(riff_len) = le32(b, 4) else { return Err(truncated("WebP header")) };
    if (b.len() as u64) < u64::from(riff_len) + 8 {
        return Err(AnalysisError::Corrupt(format!(
            "truncated WebP: the container declares {} bytes, {} present",
            u64::from(riff_len) + 8,
            b.len()
        )));
    }
    let fourcc = b.get(12..16).ok_or_else(|| truncated("WebP header"))?;
    let data = 20usize;
    let dims = match fourcc {
        b"VP8 " => {
            if b.get(data + 3..data + 6) != Some(&[0x9d, 0x01, 0x2a][..]) {
                return Err(AnalysisError::Corrupt("WebP VP8 frame has a bad start code".into()));
            }
            let (Some(w), Some(h)) = (le16(b, data + 6), le16(b, data + 8)) else {
                return Err(truncated("WebP VP8 header"));
            };
            Dimensions { width: w & 0x3fff, height: h & 0x3fff }
        }
        b"VP8L" => {
            if b.get(data) != Some(&0x2f) {
                return Err(AnalysisError::Corrupt("WebP VP8L chunk has a bad signature".into()));
            }
            let Some(bits) = le32(b, data + 1) else { return Err(truncated("WebP VP8L header")) };
            Dimensions { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 }
        }
        b"VP8X" => {
            let (Some(w), Some(h)) = (le24(b, data + 4), le24(b, data + 7)) else {
                return Err(truncated("WebP VP8X header"));
            };
            Dimensions { width: w + 1, height: h + 1 }
        }
        other => {
            return Err(AnalysisError::Corrupt(format!(
                "WebP has an unknown first chunk '{}'",
                String::from_utf8_lossy(other)
            )));
        }
    };
    Ok(dims)
}

/// JPEG: walks the marker segments from SOI to EOI. The first frame header
/// (SOFn) gives the size and is checked at once; entropy-coded data after each
/// SOS is skipped to the next real marker (0xFF not followed by a stuffed
/// 0x00 or a restart marker). Running out of bytes before EOI means truncated.
/// Bytes after EOI (e.g. an appended motion-photo video) are ignored.
///
/// At EOI the scans must be able to hold the frame: see [`min_scan_bytes`]. The
/// decoder paints whatever the scans do not cover grey and reports success, so
/// a 631-byte file declaring 8000x8000 would otherwise be decoded in full and
/// described as a grey picture.
fn jpeg(
    b: &[u8],
    check: impl Fn(Dimensions) -> Result<Dimensions, AnalysisError>,
) -> Result<Dimensions, AnalysisError> {
    let mut pos = 2usize;
    let mut frame: Option<(Dimensions, Option<u64>)> = None;
    let mut scan_bytes = 0u64;
    loop {
        // Skip to a marker; tolerate stray bytes and fill bytes as decoders do.
        while pos < b.len() && b[pos] != 0xFF {
            pos += 1;
        }
        while pos < b.len() && b[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = b.get(pos) else {
            return Err(AnalysisError::Corrupt("truncated JPEG: no end-of-image marker".into()));
        };
        pos += 1;
        match marker {
            0xD9 => {
                let Some((d, needed)) = frame else {
                    return Err(AnalysisError::Corrupt("JPEG has no frame header".into()));
                };
                if let Some(needed) = needed.filter(|&needed| scan_bytes < needed) {
                    return Err(AnalysisError::Corrupt(format!(
                        "truncated JPEG: a {}x{} image needs at least {needed} bytes of scan data, \
                         the file has {scan_bytes}",
                        d.width, d.height
                    )));
                }
                return Ok(d);
            }
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = be16(b, pos) else { return Err(truncated("JPEG segment")) };
        let len = len as usize;
        if len < 2 {
            return Err(AnalysisError::Corrupt(format!("JPEG segment 0x{marker:02x} has length {len}")));
        }
        let end = pos + len;
        if end > b.len() {
            return Err(AnalysisError::Corrupt("truncated JPEG: a segment runs past the end".into()));
        }
        match marker {
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_none() {
                    let (Some(height), Some(width)) = (be16(b, pos + 3), be16(b, pos + 5)) else {
                        return Err(truncated("JPEG frame header"));
                    };
                    if height == 0 {
                        return Err(AnalysisError::Unsupported(
                            "JPEG whose height is defined later by a DNL marker".into(),
                        ));
                    }
                    let d = check(Dimensions { width, height })?;
                    // Arithmetic coding (SOF9..SOF15) can code a block in a fraction of a bit: no bound.
                    let huffman = marker < 0xC8;
                    let needed = if huffman { Some(min_scan_bytes(d, &b[pos + 2..end])?) } else { None };
                    frame = Some((d, needed));
                }
                pos = end;
            }
            0xDA => {
                if frame.is_none() {
                    return Err(AnalysisError::Corrupt("JPEG scan before any frame header".into()));
                }
                pos = end;
                let scan_start = pos;
                // Entropy-coded data: find the next marker that is not stuffing or a restart.
                loop {
                    match b[pos.min(b.len())..].iter().position(|&x| x == 0xFF) {
                        None => {
                            return Err(AnalysisError::Corrupt("truncated JPEG: no end-of-image marker".into()));
                        }
                        Some(i) => pos += i,
                    }
                    match b.get(pos + 1) {
                        None => {
                            return Err(AnalysisError::Corrupt("truncated JPEG: no end-of-image marker".into()));
                        }
                        Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                        Some(_) => break,
                    }
                }
                scan_bytes += (pos - scan_start) as u64;
            }
            _ => pos = end,
        }
    }
}

/// The fewest bytes of Huffman-coded scan data that can hold a frame
/// (`frame` is the SOFn payload: precision, height, width, components).
///
/// Every 8x8 block of every component has its DC coefficient coded by a
/// Huffman code of at least one bit: sequential scans code each block, and a
/// progressive image's first DC scan does (its AC scans may then cover
/// thousands of blocks with one end-of-band run). So the scans hold at least
/// one bit per block of the component with the most blocks, a bound no valid
/// Huffman JPEG can go below: a real 8000x8000 single-colour JPEG made with
/// every size optimisation `cjpeg` has (progressive, optimised tables, grey)
/// has 250,678 bytes, against the bound's 125,000 (see docs/IMAGE_ANALYSIS.md).
fn min_scan_bytes(d: Dimensions, frame: &[u8]) -> Result<u64, AnalysisError> {
    let components = usize::from(*frame.get(5).ok_or_else(|| truncated("JPEG frame header"))?);
    let sampling: Vec<(u64, u64)> = (0..components)
        .map(|i| frame.get(7 + 3 * i).map(|&hv| (u64::from(hv >> 4), u64::from(hv & 0x0F))))
        .collect::<Option<_>>()
        .ok_or_else(|| truncated("JPEG frame header"))?;
    if sampling.is_empty() || sampling.iter().any(|&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v)) {
        return Err(AnalysisError::Corrupt("JPEG frame header has invalid components".into()));
    }
    let h_max = sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let v_max = sampling.iter().map(|s| s.1).max().unwrap_or(1);
    let (width, height) = (u64::from(d.width), u64::from(d.height));
    let blocks = sampling
        .iter()
        .map(|&(h, v)| (width * h).div_ceil(h_max).div_ceil(8) * (height * v).div_ceil(v_max).div_ceil(8))
        .max()
        .unwrap_or(0);
    Ok(blocks.div_ceil(8))
}

/// Hand-built images for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    /// A valid grey progressive JPEG of `width`x`height` whose only scan is a DC scan coded with a
    /// one-symbol Huffman table: exactly one bit per 8x8 block, the least any Huffman JPEG can
    /// spend. `scan` is its entropy-coded data: `ceil(blocks / 8)` zero bytes make every block
    /// mid-grey.
    pub(crate) fn one_bit_per_block_jpeg(width: u16, height: u16, scan: &[u8]) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        // DQT: table 0, all ones.
        b.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
        b.extend([1u8; 64]);
        // SOF2 (progressive, Huffman): 8-bit, one component, 1x1 sampling, table 0.
        b.extend([0xFF, 0xC2, 0x00, 0x0B, 0x08]);
        b.extend(height.to_be_bytes());
        b.extend(width.to_be_bytes());
        b.extend([0x01, 0x01, 0x11, 0x00]);
        // DHT: DC table 0 with one code of length 1 for category 0 (a DC difference of 0).
        b.extend([0xFF, 0xC4, 0x00, 0x14, 0x00, 0x01]);
        b.extend([0u8; 15]);
        b.push(0x00);
        // SOS: component 1, DC table 0, spectral 0..0, no successive approximation.
        b.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00]);
        b.extend(scan);
        b.extend([0xFF, 0xD9]);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 64_000_000;

    fn encoded_jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30])));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).expect("encode");
        out
    }

    /// Rewrites the dimensions of the first baseline frame header.
    fn claim_size(jpeg: &mut [u8], width: u16, height: u16) {
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline frame header");
        jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    }

    #[test]
    fn a_jpeg_too_small_for_its_frame_is_truncated() {
        // The report: a few hundred bytes declaring 8000x8000, complete with EOI.
        let mut liar = encoded_jpeg(16, 16);
        claim_size(&mut liar, 8000, 8000);
        assert!(liar.len() < 1_000, "{} bytes", liar.len());
        match probe(&liar, ImageFormat::Jpeg, MAX) {
            Err(AnalysisError::Corrupt(reason)) => {
                assert!(reason.contains("8000x8000 image needs at least 125000 bytes of scan data"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Real encodings pass, from one pixel up.
        for (w, h) in [(1, 1), (7, 9), (640, 480), (1024, 1024)] {
            let real = encoded_jpeg(w, h);
            assert_eq!(probe(&real, ImageFormat::Jpeg, MAX).unwrap(), Dimensions { width: w, height: h });
        }
    }

    #[test]
    fn the_bound_is_one_bit_per_block_exactly() {
        // 512x512 grey: 4096 blocks, 512 bytes at one bit each.
        let exact = fixtures::one_bit_per_block_jpeg(512, 512, &[0u8; 512]);
        assert_eq!(probe(&exact, ImageFormat::Jpeg, MAX).unwrap(), Dimensions { width: 512, height: 512 });
        let short = fixtures::one_bit_per_block_jpeg(512, 512, &[0u8; 511]);
        assert!(matches!(probe(&short, ImageFormat::Jpeg, MAX), Err(AnalysisError::Corrupt(_))));
        // Partial blocks round up: 9x9 px is 4 blocks, one byte.
        let tiny = fixtures::one_bit_per_block_jpeg(9, 9, &[0u8; 1]);
        assert!(probe(&tiny, ImageFormat::Jpeg, MAX).is_ok());
        // Subsampled chroma has fewer blocks than luma; the component with the most blocks counts.
        let d = Dimensions { width: 8000, height: 8000 };
        let frame_420 = [8, 0x1F, 0x40, 0x1F, 0x40, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
        assert_eq!(min_scan_bytes(d, &frame_420).unwrap(), 125_000);
        let bad_sampling = [8, 0x1F, 0x40, 0x1F, 0x40, 1, 1, 0x50, 0];
        assert!(matches!(min_scan_bytes(d, &bad_sampling), Err(AnalysisError::Corrupt(_))));
    }

    #[test]
    fn png_header() {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&100_000u32.to_be_bytes());
        b.extend_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(probe(&b, ImageFormat::Png, MAX), Err(AnalysisError::TooLarge(_))));
        b[16..20].copy_from_slice(&640u32.to_be_bytes());
        b[20..24].copy_from_slice(&480u32.to_be_bytes());
        assert_eq!(probe(&b, ImageFormat::Png, MAX).unwrap(), Dimensions { width: 640, height: 480 });
        assert!(matches!(probe(&b[..20], ImageFormat::Png, MAX), Err(AnalysisError::Corrupt(_))));
        b[20..24].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(probe(&b, ImageFormat::Png, MAX), Err(AnalysisError::Corrupt(_))));
    }

    #[test]
    fn side_and_pixel_limits() {
        let d = |width, height| Dimensions { width, height };
        assert!(check_dimensions(d(8000, 8000), MAX).is_ok());
        assert!(matches!(check_dimensions(d(8001, 8000), MAX), Err(AnalysisError::TooLarge(_))));
        assert!(matches!(check_dimensions(d(MAX_SIDE + 1, 1), MAX), Err(AnalysisError::TooLarge(_))));
        assert!(matches!(check_dimensions(d(0, 10), MAX), Err(AnalysisError::Corrupt(_))));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // Every prefix of a few crafted headers, in every format: errors, no panics.
        let mut samples: Vec<Vec<u8>> = vec![
            b"\xFF\xD8\xFF\xC0\x00\x11\x08\xFF\xFF\xFF\xFF\x03".to_vec(),
            b"\xFF\xD8\xFF\xDA\x00\x02\xFF".to_vec(),
            b"\xFF\xD8\xFF\xE0\x00\x00".to_vec(),
            b"GIF89a\x10\x00\x10\x00\xF7\x00\x00".to_vec(),
            b"GIF89a\x10\x00\x10\x00\x00\x00\x00\x21\xF9\x04".to_vec(),
            b"RIFF\xFF\xFF\xFF\xFFWEBPVP8X".to_vec(),
            b"RIFF\x04\x00\x00\x00WEBP".to_vec(),
        ];
        samples.push(vec![0xFF; 64]);
        for s in &samples {
            for end in 0..=s.len() {
                for f in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif, ImageFormat::Webp] {
                    assert!(probe(&s[..end], f, MAX).is_err());
                }
            }
        }
    }

    #[test]
    fn gif_frame_bigger_than_screen_is_refused() {
        let mut b = b"GIF89a\x10\x00\x10\x00\x00\x00\x00".to_vec();
        b.extend_from_slice(&[0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]);
        assert!(matches!(probe(&b, ImageFormat::Gif, MAX), Err(AnalysisError::TooLarge(_))));
    }
}
