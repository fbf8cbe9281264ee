//! The catalogue's histograms, held here rather than in the exporter's registry: each series
//! keeps its classic buckets (the catalogue's bounds, rendered as text exactly as the exporter
//! renders them) and, beside them, a Prometheus native histogram (sparse exponential buckets)
//! that the protobuf exposition sends to a scraper that asks for it (see [`super::protobuf`]):
//! one series per histogram instead of one per bucket plus `_sum` and `_count`.
//!
//! Held here, a series costs one uncontended lock per observation and nothing between scrapes
//! (the exporter's histograms buffer samples that an upkeep task drains, every one of them, every
//! few seconds: at 1,000 targets the largest single cost of an idle daemon after the probes).
//! Schema 3 (bucket bounds grow by 2^(1/8), about 9 %: within 4.5 % of any quantile), the
//! resolution client_golang picks for its default bucket factor of 1.1.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use metrics::{HistogramFn, Key};
use metrics_exporter_prometheus::formatting::{
    sanitize_label_key, sanitize_label_value, write_help_line, write_type_line,
};

use super::catalogue::CATALOGUE;

/// Resolution: bucket `i` holds (2^((i-1)/8), 2^(i/8)].
pub const SCHEMA: i32 = 3;
/// Width of the zero bucket (client_golang's default, 2^-128).
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// Counts of one native histogram series.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NativeCounts {
    pub count: u64,
    pub sum: f64,
    pub zero_count: u64,
    /// Positive buckets by index (only those with observations).
    pub positive: BTreeMap<i32, u64>,
}

/// The bucket index of a positive value `v` at [`SCHEMA`]: the smallest `i` with `v <= 2^(i/8)`.
pub fn bucket_index(v: f64) -> i32 {
    let scale = f64::from(1 << SCHEMA);
    let mut i = (v.log2() * scale).ceil() as i32;
    // log2 rounds: keep the bound inclusive and exact.
    if v > (f64::from(i) / scale).exp2() {
        i += 1;
    } else if v <= (f64::from(i - 1) / scale).exp2() {
        i -= 1;
    }
    i
}

/// One series: observations since the start (cumulative, as Prometheus expects).
#[derive(Debug)]
pub struct NativeSeries {
    /// Upper bounds of the classic buckets.
    bounds: &'static [f64],
    /// `k="v",...` of the text exposition (sanitized as the exporter does).
    text_labels: String,
    counts: Mutex<(NativeCounts, Vec<u64>)>,
}

impl NativeSeries {
    fn new(bounds: &'static [f64], key: &Key) -> Self {
        let text_labels = key
            .labels()
            .map(|l| format!("{}=\"{}\"", sanitize_label_key(l.key()), sanitize_label_value(l.value())))
            .collect::<Vec<_>>()
            .join(",");
        Self { bounds, text_labels, counts: Mutex::new((NativeCounts::default(), vec![0; bounds.len()])) }
    }

    /// Record `v` (a NaN is dropped: no bucket can hold it).
    pub fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let mut guard = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let (c, classic) = &mut *guard;
        c.count += 1;
        c.sum += v;
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            classic[i] += 1;
        }
        if v.abs() <= ZERO_THRESHOLD || v < 0.0 {
            // Durations are never negative; a negative value is counted in the zero bucket.
            c.zero_count += 1;
        } else {
            *c.positive.entry(bucket_index(v)).or_insert(0) += 1;
        }
    }

    pub fn counts(&self) -> NativeCounts {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).0.clone()
    }

    /// The classic buckets, sum and count of this series as text lines of `name`.
    fn write_text(&self, out: &mut String, name: &str) {
        let (count, sum, classic) = {
            let guard = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            (guard.0.count, guard.0.sum, guard.1.clone())
        };
        let comma = if self.text_labels.is_empty() { "" } else { "," };
        let labels = &self.text_labels;
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(classic) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"+Inf\"}} {count}");
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        } else {
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}");
        }
    }
}

/// The catalogue histogram `name`'s buckets, when it is one.
pub fn catalogue_buckets(name: &str) -> Option<&'static [f64]> {
    CATALOGUE.iter().find(|d| d.name == name && !d.buckets.is_empty()).map(|d| d.buckets)
}

/// A series' labels, in call order.
pub type Labels = Vec<(String, String)>;

/// A series' labels (borrowed from its key) and the series.
pub type BorrowedSeries<'a> = (Vec<(&'a str, &'a str)>, &'a NativeSeries);

/// Every series, by metric key (name and labels).
#[derive(Debug, Default)]
pub struct NativeStore {
    series: RwLock<HashMap<Key, Arc<NativeSeries>>>,
}

impl NativeStore {
    /// The series of `key`, created on first use with the classic `bounds`.
    pub fn series(&self, key: &Key, bounds: &'static [f64]) -> Arc<NativeSeries> {
        if let Some(s) = self.series.read().unwrap_or_else(PoisonError::into_inner).get(key) {
            return Arc::clone(s);
        }
        let mut all = self.series.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(all.entry(key.clone()).or_insert_with(|| Arc::new(NativeSeries::new(bounds, key))))
    }

    /// Every series' handle, grouped by metric name (sorted), each name's sorted by labels.
    fn grouped(&self) -> BTreeMap<String, Vec<(Labels, Arc<NativeSeries>)>> {
        let all = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (key, series) in all.iter() {
            let labels: Labels = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
            out.entry(key.name().to_string()).or_default().push((labels, Arc::clone(series)));
        }
        for series in out.values_mut() {
            series.sort_by(|a, b| a.0.cmp(&b.0));
        }
        out
    }

    /// Call `f` with each metric name (sorted) and its series, sorted by labels (the order of
    /// [`Self::snapshot`]), without copying a label: the store stays read-locked meanwhile, so
    /// only a series' first observation waits.
    pub fn each_family(&self, mut f: impl FnMut(&str, &[BorrowedSeries<'_>])) {
        let all = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut grouped: BTreeMap<&str, Vec<BorrowedSeries<'_>>> = BTreeMap::new();
        for (key, series) in all.iter() {
            let labels = key.labels().map(|l| (l.key(), l.value())).collect();
            grouped.entry(key.name()).or_default().push((labels, series.as_ref()));
        }
        for (name, mut series) in grouped {
            series.sort_by(|a, b| a.0.cmp(&b.0));
            f(name, &series);
        }
    }

    /// Native counts, grouped by metric name (sorted), each name's series sorted by labels.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<(Labels, NativeCounts)>> {
        self.grouped()
            .into_iter()
            .map(|(name, series)| (name, series.into_iter().map(|(labels, s)| (labels, s.counts())).collect()))
            .collect()
    }

    /// The classic text exposition of every histogram family, as the exporter renders it
    /// (`# HELP`, `# TYPE`, `_bucket` lines with `le`, `_sum`, `_count`, a blank line per family).
    pub fn render_text(&self, out: &mut String) {
        self.render_text_chunks(usize::MAX, |chunk| {
            out.push_str(&chunk);
            true
        });
    }

    /// [`Self::render_text`] in pieces of whole lines, each handed to `emit` once it holds at
    /// least `chunk` bytes (the last one whatever it holds), so that a fleet's tens of megabytes
    /// are never in memory at once. Stops, returning false, when `emit` returns false (the
    /// scraper is gone).
    pub fn render_text_chunks(&self, chunk: usize, mut emit: impl FnMut(String) -> bool) -> bool {
        let grouped = self.grouped();
        let fresh = || String::with_capacity(chunk.saturating_add(CHUNK_SLACK).min(MAX_PREALLOC));
        let mut out = fresh();
        for (name, series) in grouped {
            if let Some(def) = CATALOGUE.iter().find(|d| d.name == name) {
                write_help_line(&mut out, &name, None, None, def.help);
            }
            write_type_line(&mut out, &name, None, None, "histogram");
            for (_, s) in series {
                s.write_text(&mut out, &name);
                if out.len() >= chunk && !emit(std::mem::replace(&mut out, fresh())) {
                    return false;
                }
            }
            out.push('\n');
        }
        out.is_empty() || emit(out)
    }
}

/// Room beyond a chunk's size for the series that crosses it (one series' lines: a few KB).
const CHUNK_SLACK: usize = 16 * 1024;
/// A chunk's buffer is allocated at most this large up front (one that takes everything grows).
const MAX_PREALLOC: usize = 1024 * 1024;

impl HistogramFn for NativeSeries {
    fn record(&self, value: f64) {
        self.observe(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bounds_are_inclusive_powers_of_two_to_the_eighth() {
        assert_eq!(bucket_index(1.0), 0);
        assert_eq!(bucket_index(1.000_001), 1);
        assert_eq!(bucket_index(2.0), 8);
        assert_eq!(bucket_index(0.5), -8);
        assert_eq!(bucket_index(0.5000001), -7);
        // Every value falls in (2^((i-1)/8), 2^(i/8)].
        for v in [1e-4, 0.0013, 0.05, 0.1, 0.2, 0.5, 0.75, 3.0, 29.9] {
            let i = bucket_index(v);
            assert!(v <= (f64::from(i) / 8.0).exp2() && v > (f64::from(i - 1) / 8.0).exp2(), "{v} in {i}");
        }
    }

    #[test]
    fn a_series_counts_sum_zero_and_buckets() {
        let s = NativeSeries::new(&[0.01, 0.1], &Key::from_name("h"));
        for v in [0.0, 0.01, 0.01, 0.2, f64::NAN] {
            s.observe(v);
        }
        let c = s.counts();
        assert_eq!((c.count, c.zero_count), (4, 1));
        assert!((c.sum - 0.22).abs() < 1e-12);
        assert_eq!(c.positive.get(&bucket_index(0.01)), Some(&2));
        assert_eq!(c.positive.values().sum::<u64>(), 3);
        let mut text = String::new();
        s.write_text(&mut text, "h");
        assert_eq!(
            text,
            "h_bucket{le=\"0.01\"} 3\nh_bucket{le=\"0.1\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 0.22\nh_count 4\n"
        );
    }
}
