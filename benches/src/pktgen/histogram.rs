//! A fixed-size log-linear histogram of latencies in nanoseconds.
//!
//! HdrHistogram's layout without its generality: values below 32 get a
//! bucket each; above, every power of two is split into 32 equal buckets,
//! so a bucket is at most 1/32 (3.1 %) of its values wide. 1920 counters
//! cover all of `u64`, live in one boxed array allocated up front, and
//! recording is an index computation and an increment: nothing is
//! allocated per packet. Percentiles report the middle of the bucket the
//! rank falls in, clamped to the smallest and largest value seen.

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Latency histogram (ns).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

#[inline]
fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = top - SUB_BITS;
    let sub = (v >> shift) as usize & (SUB - 1);
    (shift as usize + 1) * SUB + sub
}

/// Smallest value in bucket `i`, and the bucket's width.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let shift = (i / SUB - 1) as u32;
    (((SUB + i % SUB) as u64) << shift, 1u64 << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Records one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value recorded in `o` (the histogram of both runs).
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Smallest value, if any.
    pub fn min(&self) -> Option<u64> {
        (self.total > 0).then_some(self.min)
    }

    /// Largest value, if any.
    pub fn max(&self) -> Option<u64> {
        (self.total > 0).then_some(self.max)
    }

    /// Mean value, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.total > 0).then(|| self.sum as f64 / self.total as f64)
    }

    /// The value at quantile `q` (0.0..=1.0): the middle of the bucket
    /// holding the `ceil(q * count)`-th smallest value. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bounds(i);
                let mid = lo + (width - 1) / 2;
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_and_within_3_percent() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(i >= last, "index is monotonic at {v}");
            last = i;
            let (lo, w) = bounds(i);
            assert!(lo <= v && v - lo < w, "{v} in bucket {i} [{lo}, +{w})");
            assert!(w == 1 || (w as f64) / (lo as f64) <= 1.0 / 32.0 + 1e-12);
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        // 1..=10000 ns, uniform.
        for v in 1..=10_000u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!((h.min(), h.max()), (Some(1), Some(10_000)));
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.999, 9_990.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact < 0.032,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(1.0), Some(10_000));
        assert!((h.mean().unwrap() - 5_000.5).abs() < 1e-6);
    }

    #[test]
    fn merging_is_recording_both() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 1..=5_000u64 {
            a.record(v);
            both.record(v);
        }
        for v in 5_001..=10_000u64 {
            b.record(v * 3);
            both.record(v * 3);
        }
        a.merge(&b);
        a.merge(&Histogram::new());
        assert_eq!(
            (a.count(), a.min(), a.max()),
            (both.count(), both.min(), both.max())
        );
        assert_eq!(a.mean(), both.mean());
        for q in [0.0, 0.5, 0.99, 0.999, 1.0] {
            assert_eq!(a.quantile(q), both.quantile(q));
        }
    }

    #[test]
    fn a_single_value_is_reported_exactly() {
        let mut h = Histogram::new();
        h.record(123_456);
        for q in [0.0, 0.5, 0.99, 0.999, 1.0] {
            assert_eq!(h.quantile(q), Some(123_456));
        }
    }
}
