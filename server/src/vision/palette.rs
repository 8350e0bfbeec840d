//! Dominant colours: a deterministic weighted k-means in CIELAB over a colour
//! histogram, and human colour names.
//!
//! Method:
//! 1. Pixels (alpha-weighted) go into a 15-bit RGB histogram (5 bits per
//!    channel); each occupied bin keeps the exact mean of its pixels, so a
//!    solid colour comes back exactly.
//! 2. Seeding is k-means++ made deterministic: the first centre is the
//!    heaviest bin; each next one is the bin maximising `weight × distance²` to
//!    the nearest centre, among bins at least [`MIN_SEPARATION`] ΔE away. When
//!    no bin is that far, the image has no further distinct colour and the
//!    palette is shorter than five.
//! 3. Lloyd iterations in CIELAB (ΔE76) until assignments settle; centres
//!    that end up closer than [`MIN_SEPARATION`] are merged, and colours
//!    covering less than [`MIN_SHARE`] of the image are folded into their
//!    nearest neighbour (speckles and JPEG ringing are not "dominant").
//! 4. Each colour is the weighted mean sRGB of its pixels, ordered by share
//!    (largest first, ties by hex), named after the nearest entry of a small
//!    named-colour table in CIELAB.
//!
//! Everything iterates in a fixed order with strict comparisons, so the same
//! pixels always give the same palette.

use std::sync::OnceLock;

use super::PaletteColor;

/// Colours in a full palette.
pub const PALETTE_SIZE: usize = 5;
/// Closest two palette colours may be, in ΔE76 (about four just-noticeable differences).
pub const MIN_SEPARATION: f64 = 10.0;
/// Smallest share of the image a palette colour may cover.
pub const MIN_SHARE: f64 = 0.005;
const MAX_ITERATIONS: usize = 24;

/// CIELAB (D65) coordinates.
pub type Lab = [f64; 3];

/// sRGB channel (0..255) to linear light (0..1).
pub fn srgb_to_linear(c: u8) -> f32 {
    linear_table()[usize::from(c)]
}

fn linear_table() -> &'static [f32; 256] {
    static TABLE: OnceLock<[f32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0f32; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let c = i as f64 / 255.0;
            *v = if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) } as f32;
        }
        t
    })
}

fn lab_f(t: f64) -> f64 {
    const D: f64 = 6.0 / 29.0;
    if t > D * D * D { t.cbrt() } else { t / (3.0 * D * D) + 4.0 / 29.0 }
}

/// CIE L* (0..100) of a relative luminance Y (0..1).
pub fn lightness(y: f64) -> f64 {
    116.0 * lab_f(y) - 16.0
}

/// sRGB (0..255 per channel, fractional allowed) to CIELAB under D65.
pub fn rgb_to_lab(rgb: [f64; 3]) -> Lab {
    let lin = rgb.map(|c| {
        let c = (c / 255.0).clamp(0.0, 1.0);
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    });
    let x = 0.412_456_4 * lin[0] + 0.357_576_1 * lin[1] + 0.180_437_5 * lin[2];
    let y = 0.212_672_9 * lin[0] + 0.715_152_2 * lin[1] + 0.072_175_0 * lin[2];
    let z = 0.019_333_9 * lin[0] + 0.119_192_0 * lin[1] + 0.950_304_1 * lin[2];
    let (fx, fy, fz) = (lab_f(x / 0.950_47), lab_f(y), lab_f(z / 1.088_83));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// Squared ΔE76.
pub fn delta_e2(a: &Lab, b: &Lab) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Named colours: (name, 0xRRGGBB).
const NAMED: &[(&str, u32)] = &[
    ("black", 0x000000),
    ("dark gray", 0x404040),
    ("gray", 0x808080),
    ("light gray", 0xc0c0c0),
    ("white", 0xffffff),
    ("cream", 0xfff5d6),
    ("beige", 0xe8dcc0),
    ("tan", 0xd2b48c),
    ("brown", 0x8b4513),
    ("dark brown", 0x4a2c17),
    ("dark red", 0x8b0000),
    ("red", 0xff0000),
    ("crimson", 0xdc143c),
    ("coral", 0xff7f50),
    ("salmon", 0xfa8072),
    ("orange", 0xffa500),
    ("gold", 0xffd700),
    ("yellow", 0xffff00),
    ("olive", 0x808000),
    ("yellow green", 0x9acd32),
    ("green", 0x00ff00),
    ("light green", 0x90ee90),
    ("dark green", 0x006400),
    ("forest green", 0x228b22),
    ("mint", 0x98ff98),
    ("teal", 0x008080),
    ("turquoise", 0x40e0d0),
    ("cyan", 0x00ffff),
    ("sky blue", 0x87ceeb),
    ("light blue", 0xadd8e6),
    ("steel blue", 0x4682b4),
    ("slate gray", 0x708090),
    ("blue", 0x0000ff),
    ("royal blue", 0x4169e1),
    ("dark blue", 0x00008b),
    ("navy", 0x1b2240),
    ("indigo", 0x4b0082),
    ("purple", 0x800080),
    ("violet", 0x8f00ff),
    ("lavender", 0xc8a2c8),
    ("magenta", 0xff00ff),
    ("pink", 0xffc0cb),
    ("hot pink", 0xff69b4),
    ("plum", 0x8e4585),
];

fn named_labs() -> &'static [(&'static str, Lab)] {
    static TABLE: OnceLock<Vec<(&'static str, Lab)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        NAMED
            .iter()
            .map(|&(name, hex)| {
                let rgb = [(hex >> 16) & 0xff, (hex >> 8) & 0xff, hex & 0xff].map(f64::from);
                (name, rgb_to_lab(rgb))
            })
            .collect()
    })
}

/// The nearest named colour, in CIELAB.
pub fn color_name(lab: &Lab) -> &'static str {
    let mut best = ("gray", f64::INFINITY);
    for (name, candidate) in named_labs() {
        let d = delta_e2(lab, candidate);
        if d < best.1 {
            best = (name, d);
        }
    }
    best.0
}

/// "#rrggbb" of a fractional sRGB colour.
pub fn hex(rgb: [f64; 3]) -> String {
    let [r, g, b] = rgb.map(|c| c.round().clamp(0.0, 255.0) as u8);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A colour histogram: 5 bits per channel, alpha-weighted, exact sums per bin.
pub struct Histogram {
    /// Per bin: weight, and weighted sums of r, g, b.
    bins: Vec<[u64; 4]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self { bins: vec![[0; 4]; 1 << 15] }
    }

    /// Adds one pixel with an integer weight (its alpha, 0..255).
    #[inline]
    pub fn add(&mut self, r: u8, g: u8, b: u8, weight: u64) {
        let key = (usize::from(r >> 3) << 10) | (usize::from(g >> 3) << 5) | usize::from(b >> 3);
        let bin = &mut self.bins[key];
        bin[0] += weight;
        bin[1] += weight * u64::from(r);
        bin[2] += weight * u64::from(g);
        bin[3] += weight * u64::from(b);
    }

    /// Total weight.
    pub fn total(&self) -> u64 {
        self.bins.iter().map(|b| b[0]).sum()
    }

    /// The dominant colours, at most [`PALETTE_SIZE`], proportions summing to 1.
    pub fn palette(&self) -> Vec<PaletteColor> {
        let bins: Vec<Bin> = self
            .bins
            .iter()
            .filter(|b| b[0] > 0)
            .map(|b| {
                let w = b[0] as f64;
                let rgb = [b[1] as f64 / w, b[2] as f64 / w, b[3] as f64 / w];
                Bin { weight: w, rgb, lab: rgb_to_lab(rgb) }
            })
            .collect();
        palette_of(&bins)
    }
}

struct Bin {
    weight: f64,
    rgb: [f64; 3],
    lab: Lab,
}

#[derive(Clone)]
struct Cluster {
    weight: f64,
    rgb_sum: [f64; 3],
    lab: Lab,
}

impl Cluster {
    fn rgb(&self) -> [f64; 3] {
        self.rgb_sum.map(|s| s / self.weight)
    }
}

fn nearest(centres: &[Lab], lab: &Lab) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centres.iter().enumerate() {
        let d = delta_e2(c, lab);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

fn palette_of(bins: &[Bin]) -> Vec<PaletteColor> {
    let total: f64 = bins.iter().map(|b| b.weight).sum();
    if bins.is_empty() || total <= 0.0 {
        return Vec::new();
    }
    let min_sep2 = MIN_SEPARATION * MIN_SEPARATION;

    // Deterministic k-means++ seeding.
    let mut first = 0;
    for (i, b) in bins.iter().enumerate() {
        if b.weight > bins[first].weight {
            first = i;
        }
    }
    let mut centres: Vec<Lab> = vec![bins[first].lab];
    let mut dist: Vec<f64> = bins.iter().map(|b| delta_e2(&b.lab, &centres[0])).collect();
    while centres.len() < PALETTE_SIZE {
        let mut pick: Option<(usize, f64)> = None;
        for (i, b) in bins.iter().enumerate() {
            if dist[i] < min_sep2 {
                continue;
            }
            let score = b.weight * dist[i];
            if pick.is_none_or(|(_, s)| score > s) {
                pick = Some((i, score));
            }
        }
        let Some((i, _)) = pick else { break };
        let centre = bins[i].lab;
        for (d, b) in dist.iter_mut().zip(bins) {
            *d = d.min(delta_e2(&b.lab, &centre));
        }
        centres.push(centre);
    }

    // Lloyd iterations.
    let mut assignment = vec![usize::MAX; bins.len()];
    let mut clusters = Vec::new();
    for _ in 0..MAX_ITERATIONS {
        let mut changed = false;
        for (a, b) in assignment.iter_mut().zip(bins) {
            let (i, _) = nearest(&centres, &b.lab);
            if *a != i {
                *a = i;
                changed = true;
            }
        }
        clusters = vec![Cluster { weight: 0.0, rgb_sum: [0.0; 3], lab: [0.0; 3] }; centres.len()];
        for (&a, b) in assignment.iter().zip(bins) {
            let c = &mut clusters[a];
            c.weight += b.weight;
            for k in 0..3 {
                c.rgb_sum[k] += b.weight * b.rgb[k];
                c.lab[k] += b.weight * b.lab[k];
            }
        }
        for (c, centre) in clusters.iter_mut().zip(centres.iter_mut()) {
            if c.weight > 0.0 {
                c.lab = c.lab.map(|v| v / c.weight);
                *centre = c.lab;
            }
        }
        if !changed {
            break;
        }
    }
    clusters.retain(|c| c.weight > 0.0);

    // Merge centres that converged onto one colour.
    loop {
        let mut closest: Option<(usize, usize, f64)> = None;
        for i in 0..clusters.len() {
            for j in i + 1..clusters.len() {
                let d = delta_e2(&clusters[i].lab, &clusters[j].lab);
                if d < min_sep2 && closest.is_none_or(|(_, _, best)| d < best) {
                    closest = Some((i, j, d));
                }
            }
        }
        let Some((i, j, _)) = closest else { break };
        let absorbed = clusters.remove(j);
        let keep = &mut clusters[i];
        let w = keep.weight + absorbed.weight;
        for k in 0..3 {
            keep.lab[k] = (keep.lab[k] * keep.weight + absorbed.lab[k] * absorbed.weight) / w;
            keep.rgb_sum[k] += absorbed.rgb_sum[k];
        }
        keep.weight = w;
    }

    // Fold specks into their nearest surviving colour (share only; the colour stays).
    loop {
        if clusters.len() <= 1 {
            break;
        }
        let mut smallest = 0;
        for (i, c) in clusters.iter().enumerate() {
            if c.weight < clusters[smallest].weight {
                smallest = i;
            }
        }
        if clusters[smallest].weight / total >= MIN_SHARE {
            break;
        }
        let speck = clusters.remove(smallest);
        let centres: Vec<Lab> = clusters.iter().map(|c| c.lab).collect();
        let (i, _) = nearest(&centres, &speck.lab);
        let receiver = &mut clusters[i];
        let mean = receiver.rgb();
        receiver.weight += speck.weight;
        receiver.rgb_sum = mean.map(|c| c * receiver.weight);
    }

    let mut colors: Vec<(f64, String, [f64; 3])> = clusters
        .iter()
        .map(|c| {
            let rgb = c.rgb();
            (c.weight / total, hex(rgb), rgb)
        })
        .collect();
    colors.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    colors
        .into_iter()
        .map(|(proportion, hex, rgb)| {
            let name = color_name(&rgb_to_lab(rgb.map(|c| c.round()))).to_owned();
            PaletteColor { hex, proportion, name }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(h: &mut Histogram, rgb: [u8; 3], n: usize) {
        for _ in 0..n {
            h.add(rgb[0], rgb[1], rgb[2], 255);
        }
    }

    #[test]
    fn names() {
        for (rgb, name) in [
            ([255.0, 0.0, 0.0], "red"),
            ([0.0, 0.0, 255.0], "blue"),
            ([255.0, 255.0, 255.0], "white"),
            ([0.0, 0.0, 0.0], "black"),
            ([0.0, 0.0, 139.0], "dark blue"),
            ([250.0, 160.0, 0.0], "orange"),
            ([0.0, 255.0, 0.0], "green"),
        ] {
            assert_eq!(color_name(&rgb_to_lab(rgb)), name, "{rgb:?}");
        }
    }

    #[test]
    fn solid_and_split() {
        let mut h = Histogram::new();
        fill(&mut h, [200, 30, 40], 1000);
        let p = h.palette();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hex, "#c81e28");
        assert_eq!(p[0].proportion, 1.0);

        let mut h = Histogram::new();
        fill(&mut h, [10, 20, 200], 700);
        fill(&mut h, [250, 250, 240], 300);
        let p = h.palette();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].hex.as_str(), p[1].hex.as_str()), ("#0a14c8", "#fafaf0"));
        assert!((p[0].proportion - 0.7).abs() < 1e-9);
    }

    #[test]
    fn five_of_many_and_specks_fold() {
        let mut h = Histogram::new();
        let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 0, 0], [255, 255, 255]];
        for (i, c) in colours.iter().enumerate() {
            fill(&mut h, *c, 100 * (i + 1));
        }
        let p = h.palette();
        assert_eq!(p.len(), PALETTE_SIZE);
        let sum: f64 = p.iter().map(|c| c.proportion).sum();
        assert!((sum - 1.0).abs() < 1e-9);

        let mut h = Histogram::new();
        fill(&mut h, [40, 40, 40], 10_000);
        fill(&mut h, [255, 0, 255], 3); // 0.03%: a speck, not a dominant colour
        let p = h.palette();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].hex, "#282828");
    }
}
