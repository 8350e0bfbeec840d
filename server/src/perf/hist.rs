//! A small, mergeable latency histogram.
//!
//! Values are microseconds. Buckets are log-linear (HDR-style): exact below
//! 32 µs, then 16 buckets per power of two, so a bucket is at most 6.25% wide
//! and a reported percentile (the bucket midpoint, clamped to the observed
//! min and max) is within about 3% of the true sample. Only non-empty
//! buckets are stored (a sorted vector), because most histograms here hold a
//! narrow band of latencies and there are many of them (per 10-second slot,
//! per tenant and project, per method or stage).

/// Below this many microseconds every value has its own bucket.
const LINEAR: u64 = 32;
/// Sub-buckets per power of two, as bits.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// log2(LINEAR).
const LINEAR_BITS: u32 = 5;

/// Bucket index of a value in microseconds.
fn index(us: u64) -> u16 {
    if us < LINEAR {
        return us as u16;
    }
    let exp = 63 - us.leading_zeros(); // >= LINEAR_BITS
    let mantissa = (us >> (exp - SUB_BITS)) & (SUB - 1);
    (LINEAR + u64::from(exp - LINEAR_BITS) * SUB + mantissa) as u16
}

/// Smallest value of a bucket.
fn lower(index: u16) -> u64 {
    let index = u64::from(index);
    if index < LINEAR {
        return index;
    }
    let k = index - LINEAR;
    let exp = (k / SUB) as u32 + LINEAR_BITS;
    let mantissa = k % SUB;
    (SUB + mantissa) << (exp - SUB_BITS)
}

/// One past the last bucket (the one holding u64::MAX).
const BUCKETS: u64 = LINEAR + (64 - LINEAR_BITS as u64) * SUB;

/// Largest value of a bucket.
fn upper(index: u16) -> u64 {
    if u64::from(index) < LINEAR {
        return u64::from(index);
    }
    if u64::from(index) + 1 >= BUCKETS {
        return u64::MAX;
    }
    lower(index + 1) - 1
}

/// Counts of durations, with exact count, sum, min and max.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hist {
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
    /// (bucket index, count), sorted by index, no zero counts.
    buckets: Vec<(u16, u64)>,
}

impl Hist {
    /// Records one value in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// Records one value in milliseconds (negative and non-finite values count as 0).
    pub fn record_ms(&mut self, ms: f64) {
        self.record_us(ms_to_us(ms));
    }

    fn record_n(&mut self, us: u64, n: u64) {
        if self.count == 0 || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.count += n;
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
        let i = index(us);
        match self.buckets.binary_search_by_key(&i, |(b, _)| *b) {
            Ok(pos) => self.buckets[pos].1 += n,
            Err(pos) => self.buckets.insert(pos, (i, n)),
        }
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Hist) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.clone_from(other);
            return;
        }
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        let mut merged = Vec::with_capacity(self.buckets.len().max(other.buckets.len()));
        let (mut a, mut b) = (self.buckets.iter().peekable(), other.buckets.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(ia, ca)), Some(&&(ib, cb))) => {
                    if ia == ib {
                        merged.push((ia, ca + cb));
                        a.next();
                        b.next();
                    } else if ia < ib {
                        merged.push((ia, ca));
                        a.next();
                    } else {
                        merged.push((ib, cb));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&x)) => {
                    merged.push(x);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = merged;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean in milliseconds (0 when empty).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum_us as f64 / self.count as f64 / 1e3 }
    }

    /// Largest sample in milliseconds (0 when empty).
    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1e3
    }

    /// Smallest sample in milliseconds (0 when empty).
    pub fn min_ms(&self) -> f64 {
        self.min_us as f64 / 1e3
    }

    /// The `q` quantile (0..=1) in milliseconds: the midpoint of the bucket
    /// holding the sample of rank ceil(q * count), clamped to [min, max].
    /// 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if q >= 1.0 {
            return self.max_ms();
        }
        let rank = ((q.max(0.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for &(i, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                let mid = lower(i) / 2 + upper(i) / 2 + (lower(i) % 2 + upper(i) % 2) / 2;
                return mid.clamp(self.min_us, self.max_us) as f64 / 1e3;
            }
        }
        self.max_ms()
    }

    /// Non-empty buckets, for memory accounting in tests.
    #[cfg(test)]
    fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

/// Milliseconds to whole microseconds; negative or non-finite values are 0.
pub fn ms_to_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 { (ms * 1e3).round().min(u64::MAX as f64) as u64 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut previous = 0;
        for us in [0u64, 1, 31, 32, 33, 63, 64, 65, 1000, 1_000_000, 3_600_000_000, u64::MAX / 2, u64::MAX] {
            let i = index(us);
            assert!(i >= previous, "{us}");
            previous = i;
            assert!(lower(i) <= us && us <= upper(i), "{us} not in [{}, {}]", lower(i), upper(i));
        }
        assert_eq!(u64::from(index(u64::MAX)) + 1, BUCKETS);
        for i in 0..(BUCKETS as u16 - 1) {
            assert_eq!(upper(i) + 1, lower(i + 1), "bucket {i} and the next are contiguous");
            assert_eq!(index(lower(i)), i);
            assert_eq!(index(upper(i)), i);
        }
    }

    #[test]
    fn quantiles_are_close_and_within_min_max() {
        let mut h = Hist::default();
        for ms in 1..=1000 {
            h.record_ms(f64::from(ms));
        }
        assert_eq!(h.count(), 1000);
        assert!((h.mean_ms() - 500.5).abs() < 1e-9);
        for (q, want) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile_ms(q);
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.quantile_ms(1.0), 1000.0);
        assert_eq!(h.max_ms(), 1000.0);
        assert_eq!(h.min_ms(), 1.0);
        assert!(h.quantile_ms(0.0) >= 1.0);
    }

    #[test]
    fn one_sample_reports_itself() {
        let mut h = Hist::default();
        h.record_ms(12.345);
        for q in [0.5, 0.95, 0.99, 1.0] {
            assert_eq!(h.quantile_ms(q), 12.345);
        }
    }

    #[test]
    fn merging_equals_recording_together() {
        let (mut a, mut b, mut all) = (Hist::default(), Hist::default(), Hist::default());
        for us in (0..5000u64).map(|i| i * 37 % 100_000) {
            if us % 3 == 0 {
                a.record_us(us)
            } else {
                b.record_us(us)
            }
            all.record_us(us);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        let mut empty = Hist::default();
        empty.merge(&all);
        assert_eq!(empty, all);
    }

    #[test]
    fn storage_stays_small_for_a_narrow_band() {
        let mut h = Hist::default();
        for i in 0..100_000u64 {
            h.record_us(2_000 + i % 1_000);
        }
        assert!(h.bucket_count() <= 12, "{}", h.bucket_count());
    }

    #[test]
    fn bad_inputs_are_zero() {
        assert_eq!(ms_to_us(-1.0), 0);
        assert_eq!(ms_to_us(f64::NAN), 0);
        assert_eq!(ms_to_us(f64::INFINITY), 0);
        assert_eq!(ms_to_us(1.5), 1500);
    }
}
