//! Fixture images generated in code (shared by the vision tests and the pixels benchmark).
#![allow(dead_code)]

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// Encodes an RGB image (JPEG at quality 90; WebP lossless; GIF quantised).
pub fn encode_rgb(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(img).unwrap();
        }
        _ => DynamicImage::ImageRgb8(img.clone()).write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

/// Encodes an RGBA image (PNG, WebP or GIF).
pub fn encode_rgba(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(img.clone()).write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG at the given quality.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(img).unwrap();
    out.into_inner()
}

/// A solid colour.
pub fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(rgb))
}

/// `left` fills the first `split` columns, `right` the rest.
pub fn vertical_split(w: u32, h: u32, split: u32, left: [u8; 3], right: [u8; 3]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| Rgb(if x < split { left } else { right }))
}

/// A `background` image with a `fg` rectangle `(x0, y0, width, height)`.
pub fn rect_on(w: u32, h: u32, background: [u8; 3], fg: [u8; 3], rect: (u32, u32, u32, u32)) -> RgbImage {
    let (x0, y0, rw, rh) = rect;
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(if (x0..x0 + rw).contains(&x) && (y0..y0 + rh).contains(&y) { fg } else { background })
    })
}

/// A red disc on a fully transparent background.
pub fn disc_on_transparent(size: u32) -> RgbaImage {
    let c = size as f32 / 2.0;
    RgbaImage::from_fn(size, size, |x, y| {
        let d = ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - c).powi(2)).sqrt();
        if d < c * 0.6 { Rgba([230, 20, 30, 255]) } else { Rgba([0, 255, 0, 0]) }
    })
}

/// Photo-like: a sky-to-ground gradient with a sun, a hill and some texture.
pub fn photo_like(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut px = if fy < 0.6 {
            // Sky: deep blue at the top to pale at the horizon.
            let t = fy / 0.6;
            [40.0 + 170.0 * t, 90.0 + 130.0 * t, 200.0 + 40.0 * t]
        } else {
            // Ground: green to dark olive.
            let t = (fy - 0.6) / 0.4;
            [60.0 - 20.0 * t, 140.0 - 60.0 * t, 50.0 - 20.0 * t]
        };
        // Sun.
        let (sx, sy) = (0.75, 0.25);
        if ((fx - sx).powi(2) + (fy - sy).powi(2)).sqrt() < 0.08 {
            px = [255.0, 200.0, 60.0];
        }
        // Hill.
        let hill = 0.6 - 0.15 * (-(fx - 0.3).powi(2) / 0.02).exp();
        if fy > hill && fy < 0.6 {
            px = [90.0, 110.0, 60.0];
        }
        // Deterministic texture.
        let n = ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7) % 17;
        let noise = n as f32 - 8.0;
        Rgb(px.map(|c| (c + noise).clamp(0.0, 255.0) as u8))
    })
}

/// One PNG chunk with its CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG whose IHDR declares `w`×`h` RGB pixels but whose IDAT holds a few
/// hundred bytes of a valid zlib stream: a decompression bomb's shape.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend(png_chunk(b"IHDR", &ihdr));
    // zlib: header, one stored block of 256 zero bytes, adler32.
    let zeros = [0u8; 256];
    let mut z = vec![0x78, 0x01, 0x01, 0x00, 0x01, 0xFF, 0xFE];
    z.extend_from_slice(&zeros);
    z.extend_from_slice(&adler32(&zeros).to_be_bytes());
    out.extend(png_chunk(b"IDAT", &z));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A GIF whose logical screen and first frame declare `w`×`h`.
pub fn gif_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]); // minimal LZW data
    out.push(0x3B);
    out
}

/// A real JPEG with its frame header rewritten to declare `w`×`h`.
pub fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = jpeg(&solid(16, 16, [128, 128, 128]), 80);
    let sof = bytes.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

/// A WebP (extended format) whose canvas declares `w`×`h`.
pub fn webp_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut chunk = vec![0u8; 10];
    chunk[4..7].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
    chunk[7..10].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&chunk);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Inserts an EXIF APP1 segment with the given orientation right after SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}
