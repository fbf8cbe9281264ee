//! The protobuf exposition (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`), offered to scrapers that ask
//! for it: counters and gauges as in the text, every histogram as a native histogram (one series
//! instead of a series per bucket plus `_sum` and `_count`).
//!
//! The message types are io.prometheus.client's `metrics.proto` (client_model), written out for
//! prost's derive so the build needs no `protoc`; only the fields used here.

use std::collections::BTreeSet;

use prost::Message;

use super::catalogue::CATALOGUE;
use super::native::{NativeCounts, NativeStore, SCHEMA, ZERO_THRESHOLD};

/// The media type of the delimited protobuf exposition (the `Content-Type` of its answer).
pub const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

#[derive(Clone, PartialEq, Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Summary = 2,
    Untyped = 3,
    Histogram = 4,
}

#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Value>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Value>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Value>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    #[prost(enumeration = "MetricType", optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

/// True when an `Accept` header asks for the delimited MetricFamily protobuf (with a q above 0).
pub fn accepts_protobuf(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        media.eq_ignore_ascii_case("application/vnd.google.protobuf")
            && params.iter().any(|p| p.replace(' ', "") == "proto=io.prometheus.client.MetricFamily")
            && params.iter().any(|p| p.replace(' ', "") == "encoding=delimited")
            && !params.iter().any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f64>().ok()) == Some(0.0))
    })
}

/// Delimited protobuf of the counter and gauge families of `text` (a Prometheus text exposition
/// without histograms: its histogram and summary families, if any, are left out), then every
/// native histogram of `native` whose `target` label is not in `retired`.
pub fn encode(text: &str, native: &NativeStore, retired: &BTreeSet<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 3);
    let mut family: Option<FamilyWriter> = None;
    let mut skip = false;
    let flush = |family: &mut Option<FamilyWriter>, out: &mut Vec<u8>| {
        if let Some(f) = family.take() {
            f.finish(out);
        }
    };
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            if family.as_ref().and_then(|f| f.head.name.as_deref()) != Some(name) {
                flush(&mut family, &mut out);
                family = Some(FamilyWriter::new(MetricFamily { name: Some(name.to_string()), ..Default::default() }));
                skip = false;
            }
            let f = &mut family.as_mut().expect("set above").head;
            match kind {
                Some("HELP") => f.help = Some(rest.replace("\\n", "\n").replace("\\\\", "\\")),
                Some("TYPE") => {
                    let t = match rest {
                        "counter" => MetricType::Counter,
                        "gauge" => MetricType::Gauge,
                        "histogram" | "summary" => {
                            skip = true;
                            MetricType::Untyped
                        }
                        _ => MetricType::Untyped,
                    };
                    f.r#type = Some(t as i32);
                }
                _ => {}
            }
            continue;
        }
        if line.is_empty() || skip {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else { continue };
        if family.as_ref().and_then(|f| f.head.name.as_deref()) != Some(name) {
            flush(&mut family, &mut out);
            family = Some(FamilyWriter::new(MetricFamily {
                name: Some(name.to_string()),
                r#type: Some(MetricType::Untyped as i32),
                ..Default::default()
            }));
        }
        let f = family.as_mut().expect("set above");
        let v = Some(Value { value: Some(value) });
        let mut metric = Metric { label: labels, ..Default::default() };
        match f.head.r#type {
            Some(t) if t == MetricType::Counter as i32 => metric.counter = v,
            Some(t) if t == MetricType::Gauge as i32 => metric.gauge = v,
            _ => metric.untyped = v,
        }
        f.push(&metric);
    }
    flush(&mut family, &mut out);

    native.each_family(|name, series| {
        let help = CATALOGUE.iter().find(|d| d.name == name).map(|d| d.help.to_string());
        let mut family = FamilyWriter::new(MetricFamily {
            name: Some(name.to_string()),
            help,
            r#type: Some(MetricType::Histogram as i32),
            metric: Vec::new(),
        });
        for (labels, s) in series {
            if labels.iter().any(|(k, v)| *k == "target" && retired.contains(*v)) {
                continue;
            }
            family.push(&Metric {
                label: labels
                    .iter()
                    .map(|(k, v)| LabelPair { name: Some(k.to_string()), value: Some(v.to_string()) })
                    .collect(),
                histogram: Some(native_histogram(&s.counts())),
                ..Default::default()
            });
        }
        family.finish(&mut out);
    });
    out
}

/// A family written as its metrics come: each metric encoded at once (a few hundred bytes instead
/// of a message struct held until the family ends), then the family's header and length in
/// front. The bytes are those of the whole `MetricFamily` message, length-delimited: prost writes
/// fields in tag order and a repeated message field as one entry after another.
struct FamilyWriter {
    /// Name, help and type; `metric` stays empty.
    head: MetricFamily,
    /// The encoded `metric` entries (field 4).
    metrics: Vec<u8>,
}

impl FamilyWriter {
    fn new(head: MetricFamily) -> Self {
        Self { head, metrics: Vec::new() }
    }

    fn push(&mut self, metric: &Metric) {
        prost::encoding::message::encode(4, metric, &mut self.metrics);
    }

    /// Append the family to `out`, unless it has no metric.
    fn finish(self, out: &mut Vec<u8>) {
        if self.metrics.is_empty() {
            return;
        }
        let head = self.head.encode_to_vec();
        prost::encoding::encode_varint((head.len() + self.metrics.len()) as u64, out);
        out.extend_from_slice(&head);
        out.extend_from_slice(&self.metrics);
    }
}

/// A native histogram message: spans of consecutive buckets and count deltas.
pub fn native_histogram(c: &NativeCounts) -> Histogram {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::with_capacity(c.positive.len());
    let (mut last_index, mut last_count): (Option<i32>, i64) = (None, 0);
    for (&i, &n) in &c.positive {
        match last_index {
            Some(prev) if i == prev + 1 => {
                if let Some(span) = spans.last_mut() {
                    span.length = Some(span.length.unwrap_or(0) + 1);
                }
            }
            Some(prev) => spans.push(BucketSpan { offset: Some(i - prev - 1), length: Some(1) }),
            None => spans.push(BucketSpan { offset: Some(i), length: Some(1) }),
        }
        deltas.push(n as i64 - last_count);
        (last_index, last_count) = (Some(i), n as i64);
    }
    Histogram {
        sample_count: Some(c.count),
        sample_sum: Some(c.sum),
        schema: Some(SCHEMA),
        zero_threshold: Some(ZERO_THRESHOLD),
        zero_count: Some(c.zero_count),
        positive_span: spans,
        positive_delta: deltas,
        ..Default::default()
    }
}

/// `name{k="v",...} value` (labels unescaped) of one text sample line.
fn parse_sample(line: &str) -> Option<(&str, Vec<LabelPair>, f64)> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(at) => line.split_at(at),
        None => return None,
    };
    let mut labels = Vec::new();
    let mut rest = rest;
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches(',');
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (at, '"') => break at,
                    (_, c) => value.push(c),
                }
            };
            labels.push(LabelPair { name: Some(key.to_string()), value: Some(value) });
            inner = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use metrics::{Key, Label};

    use super::*;

    fn decode(mut body: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !body.is_empty() {
            out.push(MetricFamily::decode_length_delimited(&mut body).unwrap());
        }
        out
    }

    /// A family written metric by metric is the derived encoding of the whole message, byte
    /// for byte; one without metrics is not written.
    #[test]
    fn family_writer_bytes_are_the_whole_messages() {
        let metrics: Vec<Metric> = (0..3)
            .map(|i| Metric {
                label: vec![LabelPair { name: Some("target".into()), value: Some(format!("t{i}")) }],
                histogram: Some(native_histogram(&NativeCounts {
                    count: 3,
                    sum: 0.2,
                    zero_count: 1,
                    positive: [(-20, 1), (-19, 1), (-5, i)].into_iter().collect(),
                })),
                counter: (i == 1).then_some(Value { value: Some(2.0) }),
                ..Default::default()
            })
            .collect();
        let head = MetricFamily {
            name: Some("m_seconds".into()),
            help: Some("Help.".into()),
            r#type: Some(MetricType::Histogram as i32),
            metric: Vec::new(),
        };
        let mut writer = FamilyWriter::new(head.clone());
        for m in &metrics {
            writer.push(m);
        }
        let mut written = Vec::new();
        writer.finish(&mut written);
        let whole = MetricFamily { metric: metrics, ..head.clone() }.encode_length_delimited_to_vec();
        assert_eq!(written, whole);
        let mut none = Vec::new();
        FamilyWriter::new(head).finish(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn accept_negotiation() {
        assert!(accepts_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        ));
        assert!(!accepts_protobuf("text/plain;version=0.0.4"));
        assert!(!accepts_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
        ));
        assert!(!accepts_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"
        ));
        assert!(!accepts_protobuf("*/*"));
    }

    #[test]
    fn counters_gauges_and_native_histograms_are_encoded_retired_targets_left_out() {
        let text = "# HELP a_total Things.\n# TYPE a_total counter\na_total{target=\"x\",m=\"q\\\"\\\\\"} 3\n\n\
                    # TYPE g gauge\ng 1.5\ng{target=\"x\"} +Inf\n\n\
                    # TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_sum 0.1\nh_count 1\n";
        let store = NativeStore::default();
        let key =
            |t: &str| Key::from_parts("mcp_client_session_duration_seconds", vec![Label::new("target", t.to_string())]);
        for v in [0.01, 0.011, 0.5] {
            store.series(&key("x"), &[0.1]).observe(v);
        }
        store.series(&key("gone"), &[0.1]).observe(1.0);
        let families = decode(&encode(text, &store, &BTreeSet::from(["gone".to_string()])));
        let names: Vec<_> = families.iter().map(|f| f.name().to_string()).collect();
        assert_eq!(names, ["a_total", "g", "mcp_client_session_duration_seconds"]);
        assert_eq!(families[0].help(), "Things.");
        assert_eq!(families[0].metric[0].counter.as_ref().unwrap().value(), 3.0);
        assert_eq!(families[0].metric[0].label[1].value(), "q\"\\");
        assert_eq!(families[1].metric.len(), 2);
        assert_eq!(families[1].metric[1].gauge.as_ref().unwrap().value(), f64::INFINITY);
        let h = families[2].metric[0].histogram.as_ref().unwrap();
        assert_eq!(families[2].metric.len(), 1, "the retired target's series is left out");
        assert_eq!((h.sample_count(), h.schema(), h.bucket.len()), (3, 3, 0));
        // 0.01 and 0.011 are one bucket apart (factor 1.09): two consecutive buckets, then 0.5.
        let first = super::super::native::bucket_index(0.01);
        assert_eq!(h.positive_span[0].offset(), first);
        let counts: i64 = h
            .positive_delta
            .iter()
            .scan(0, |c, d| {
                *c += d;
                Some(*c)
            })
            .sum();
        assert_eq!(counts, 3);
    }
}
