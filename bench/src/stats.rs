//! Summaries of repeated samples: median and range (no means: single runs on a noisy 2-core
//! VM swing by ±15%, and the median of interleaved rounds is what the reports compare).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// None when there is no (finite) sample.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            samples: samples.to_vec(),
            median: median_of_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

impl Summary {
    /// For pooled rows: `median` holds the `p`-th percentile (0..=1) of all the samples
    /// instead (the row's `aggregate` says so); min and max are theirs.
    pub fn pooled(samples: &[f64], p: f64) -> Option<Self> {
        let mut s = Self::of(samples)?;
        s.median = percentile(samples, p)?;
        Some(s)
    }
}

/// The `p`-th percentile (0..=1) by the nearest-rank method: the smallest sample with at
/// least p of all samples at or below it. None without a finite sample.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (sorted.len() as f64 * p.clamp(0.0, 1.0)).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `a / b`, None when b is zero or either is missing.
pub fn ratio(a: Option<&Summary>, b: Option<&Summary>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b.median != 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(s.samples, vec![4.0, 1.0, 2.0, 3.0]);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&v[..20], 0.99), Some(20.0));
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        let s = Summary::pooled(&v, 0.99).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples.len()), (99.0, 1.0, 100.0, 100));
    }

    #[test]
    fn ratios() {
        let a = Summary::of(&[6.0]).unwrap();
        let b = Summary::of(&[3.0]).unwrap();
        assert_eq!(ratio(Some(&a), Some(&b)), Some(2.0));
        assert_eq!(ratio(Some(&a), None), None);
        assert_eq!(ratio(Some(&a), Summary::of(&[0.0]).as_ref()), None);
    }
}
