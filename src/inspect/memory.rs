//! Memory sampling for the longevity profile: a target's resident memory read from its
//! Prometheus endpoint (one named metric) or from `/proc/PID/status` (same host), this process's
//! own RSS, and the leak maths over a sliding window of samples (least-squares slope in bytes per
//! hour, growth since the first sample).
//!
//! Every failure is a classified [`MemoryError`]; nothing here panics on what a server sends.

use std::collections::VecDeque;
use std::time::Duration;

/// Where a target's memory is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySource {
    /// A Prometheus text endpoint and the metric to read (e.g. `process_resident_memory_bytes`).
    Prometheus { url: url::Url, metric: String },
    /// `VmRSS` of a process on this host.
    Proc { pid: u32 },
}

impl MemorySource {
    /// Short description for logs and the report (no query string: it may carry a token).
    pub fn describe(&self) -> String {
        match self {
            MemorySource::Prometheus { url, metric } => {
                let mut u = url.clone();
                u.set_query(None);
                let _ = u.set_password(None);
                format!("{metric} from {u}")
            }
            MemorySource::Proc { pid } => format!("VmRSS of pid {pid}"),
        }
    }
}

/// Why a memory sample failed (closed set: the `error_type` label).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Http(u16),
    #[error("metric {0:?} not in the exposition")]
    MissingMetric(String),
    #[error("unparsable: {0}")]
    Parse(String),
    #[error("process not readable: {0}")]
    Proc(String),
    /// A redirect not followed (to another origin, a loop, too many hops): the endpoint moved.
    #[error("redirect not followed: {0}")]
    Redirect(String),
}

impl MemoryError {
    /// Every `error_type` value, to pre-register series.
    pub const CLASSES: [&'static str; 8] =
        ["connect", "timeout", "http_4xx", "http_5xx", "missing_metric", "invalid_response", "proc", "redirect"];

    /// The `error_type` label value.
    pub fn error_type(&self) -> &'static str {
        match self {
            MemoryError::Connect(_) => "connect",
            MemoryError::Timeout(_) => "timeout",
            MemoryError::Http(s) if *s >= 500 => "http_5xx",
            MemoryError::Http(_) => "http_4xx",
            MemoryError::MissingMetric(_) => "missing_metric",
            MemoryError::Parse(_) => "invalid_response",
            MemoryError::Proc(_) => "proc",
            MemoryError::Redirect(_) => "redirect",
        }
    }
}

/// Largest exposition read (a process exporter's page is a few KB; this bounds a runaway one).
const MAX_EXPOSITION_BYTES: usize = 4 * 1024 * 1024;

/// Read one sample of `source`.
pub async fn sample(http: &reqwest::Client, source: &MemorySource, timeout: Duration) -> Result<u64, MemoryError> {
    match source {
        MemorySource::Prometheus { url, metric } => sample_prometheus(http, url, metric, timeout).await,
        MemorySource::Proc { pid } => proc_rss(&pid.to_string()),
    }
}

async fn sample_prometheus(
    http: &reqwest::Client,
    url: &url::Url,
    metric: &str,
    timeout: Duration,
) -> Result<u64, MemoryError> {
    let fetch = async {
        let resp =
            http.get(url.clone()).header(reqwest::header::ACCEPT, "text/plain;version=0.0.4").send().await.map_err(
                |e| {
                    if e.is_redirect() {
                        MemoryError::Redirect(without_url(&e))
                    } else {
                        MemoryError::Connect(without_url(&e))
                    }
                },
            )?;
        if !resp.status().is_success() {
            return Err(MemoryError::Http(resp.status().as_u16()));
        }
        // Read in pieces and stop at the cap: a runaway endpoint is never held whole.
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| MemoryError::Connect(without_url(&e)))? {
            if body.len() + chunk.len() > MAX_EXPOSITION_BYTES {
                return Err(MemoryError::Parse(format!("exposition over {MAX_EXPOSITION_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| MemoryError::Parse("not UTF-8".into()))
    };
    let text = tokio::time::timeout(timeout, fetch).await.map_err(|_| MemoryError::Timeout(timeout))??;
    let value = exposition_value(&text, metric)?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(MemoryError::Parse(format!("{metric} is {value}")));
    }
    Ok(value as u64)
}

/// A reqwest error without its URL (it may carry a token in the query): its cause chain only.
fn without_url(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() { "timeout" } else { "request failed" }.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// The value of `metric` in a Prometheus text exposition, the one way every memory reader takes
/// it: the sum over its series when it has labels (one process usually exports one series;
/// several mean several processes behind one endpoint, whose memory together is what can leak).
/// Comments and other metrics are skipped.
pub fn exposition_value(text: &str, metric: &str) -> Result<f64, MemoryError> {
    let mut found: Option<f64> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(metric) else { continue };
        // The name must end here: `foo` must not match `foo_total`.
        let after_labels = match rest.chars().next() {
            Some('{') => skip_labels(rest).ok_or_else(|| MemoryError::Parse(format!("bad labels in {line:?}")))?,
            Some(c) if c.is_whitespace() => rest,
            None => return Err(MemoryError::Parse(format!("no value in {line:?}"))),
            _ => continue,
        };
        let mut fields = after_labels.split_whitespace();
        let value = fields.next().ok_or_else(|| MemoryError::Parse(format!("no value in {line:?}")))?;
        let value = parse_value(value).ok_or_else(|| MemoryError::Parse(format!("bad value in {line:?}")))?;
        found = Some(found.unwrap_or(0.0) + value);
    }
    found.ok_or_else(|| MemoryError::MissingMetric(metric.to_string()))
}

/// Skip `{...}` honouring quoted label values with escapes; returns the text after `}`.
fn skip_labels(s: &str) -> Option<&str> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (in_quotes, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => in_quotes = !in_quotes,
            (false, _, '}') => return Some(&s[i + 1..]),
            _ => {}
        }
    }
    None
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        v => v.parse().ok(),
    }
}

/// `VmRSS` of `/proc/<pid>/status` in bytes (`pid` may be `self`).
pub fn proc_rss(pid: &str) -> Result<u64, MemoryError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| MemoryError::Proc(format!("{path}: {e}")))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| MemoryError::Proc(format!("{path} has no VmRSS (a kernel thread or a zombie)")))?;
    let kb: u64 = line
        .trim()
        .strip_suffix("kB")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| MemoryError::Parse(format!("VmRSS {line:?}")))?;
    Ok(kb * 1024)
}

/// This process's resident memory.
pub fn self_rss() -> Result<u64, MemoryError> {
    proc_rss("self")
}

/// Samples of one process over a sliding window, and the first sample of the run.
#[derive(Debug, Clone)]
pub struct MemorySeries {
    window: Duration,
    first: Option<u64>,
    /// (seconds since the run start, bytes), oldest first, within `window` of the newest.
    samples: VecDeque<(f64, f64)>,
    last: Option<u64>,
    min: Option<u64>,
    max: Option<u64>,
    /// Samples taken over the whole run.
    pub count: u64,
}

impl MemorySeries {
    pub fn new(window: Duration) -> Self {
        Self { window, first: None, samples: VecDeque::new(), last: None, min: None, max: None, count: 0 }
    }

    /// Add a sample taken `at` seconds after the run start.
    pub fn push(&mut self, at: f64, bytes: u64) {
        self.first.get_or_insert(bytes);
        self.last = Some(bytes);
        self.min = Some(self.min.map_or(bytes, |m| m.min(bytes)));
        self.max = Some(self.max.map_or(bytes, |m| m.max(bytes)));
        self.count += 1;
        self.samples.push_back((at, bytes as f64));
        let oldest = at - self.window.as_secs_f64();
        while self.samples.front().is_some_and(|(t, _)| *t < oldest) {
            self.samples.pop_front();
        }
    }

    pub fn first(&self) -> Option<u64> {
        self.first
    }

    pub fn last(&self) -> Option<u64> {
        self.last
    }

    pub fn min(&self) -> Option<u64> {
        self.min
    }

    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// Samples in the window.
    pub fn window_len(&self) -> usize {
        self.samples.len()
    }

    /// Least-squares slope over the window, in bytes per hour; `None` below two samples.
    pub fn slope_bytes_per_hour(&self) -> Option<f64> {
        least_squares_slope(self.samples.iter().copied()).map(|per_s| per_s * 3600.0)
    }

    /// (last - first) / first since the run started; `None` before a sample or from 0 bytes.
    pub fn growth_ratio(&self) -> Option<f64> {
        growth_ratio(self.first?, self.last?)
    }
}

/// Slope (units of y per unit of x) of the least-squares line through `points`; `None` with
/// fewer than two distinct x. Centred sums keep it exact for large x (Unix times) and y (bytes).
pub fn least_squares_slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let (n, sx, sy) = points.clone().fold((0.0, 0.0, 0.0), |(n, sx, sy), (x, y)| (n + 1.0, sx + x, sy + y));
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.fold((0.0, 0.0), |(sxy, sxx), (x, y)| (sxy + (x - mx) * (y - my), sxx + (x - mx).powi(2)));
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Relative growth from `first` to `last` (0.5 = 50 %).
pub fn growth_ratio(first: u64, last: u64) -> Option<f64> {
    (first > 0).then(|| (last as f64 - first as f64) / first as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1_000_000.0;

    #[test]
    fn slope_of_an_exact_line() {
        // 64 MB/h = 17777.78 B/s, sampled every 10 s from 100 MB.
        let per_s = 64.0 * MB / 3600.0;
        let pts: Vec<(f64, f64)> =
            (0..30).map(|i| (f64::from(i) * 10.0, 100.0 * MB + per_s * f64::from(i) * 10.0)).collect();
        let s = least_squares_slope(pts.iter().copied()).unwrap() * 3600.0;
        assert!((s - 64.0 * MB).abs() < 1e-3, "{s}");
        // Flat and falling lines.
        assert_eq!(least_squares_slope([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)].into_iter()), Some(0.0));
        assert_eq!(least_squares_slope([(0.0, 3.0), (1.0, 1.0)].into_iter()), Some(-2.0));
        // Known small case: points (1,2), (2,3), (3,5) -> slope 1.5.
        assert_eq!(least_squares_slope([(1.0, 2.0), (2.0, 3.0), (3.0, 5.0)].into_iter()), Some(1.5));
    }

    #[test]
    fn slope_needs_two_distinct_times() {
        assert_eq!(least_squares_slope(std::iter::empty()), None);
        assert_eq!(least_squares_slope([(1.0, 2.0)].into_iter()), None);
        assert_eq!(least_squares_slope([(1.0, 2.0), (1.0, 9.0)].into_iter()), None);
    }

    #[test]
    fn large_offsets_keep_precision() {
        // Unix-time x and GB-scale y: naive sums of squares would lose the slope.
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (1.7e9 + f64::from(i), 8e9 + 3.0 * f64::from(i))).collect();
        let s = least_squares_slope(pts.iter().copied()).unwrap();
        assert!((s - 3.0).abs() < 1e-6, "{s}");
    }

    /// A deterministic zero-mean jitter in [-amp, amp] (no RNG: the test must not flake).
    fn jitter(i: u32, amp: f64) -> f64 {
        let x = (f64::from(i) * 12.9898).sin() * 43758.5453;
        (x - x.floor() - 0.5) * 2.0 * amp
    }

    #[test]
    fn noise_does_not_hide_a_leak_nor_fake_one() {
        // 120 samples a minute apart (2 h); ±20 MB of noise around 500 MB.
        let flat: Vec<(f64, f64)> =
            (0..120).map(|i| (f64::from(i) * 60.0, 500.0 * MB + jitter(i, 20.0 * MB))).collect();
        let leak: Vec<(f64, f64)> = flat.iter().map(|(t, y)| (*t, y + 64.0 * MB / 3600.0 * t)).collect();
        let flat_slope = least_squares_slope(flat.iter().copied()).unwrap() * 3600.0;
        let leak_slope = least_squares_slope(leak.iter().copied()).unwrap() * 3600.0;
        // Noise of ±20 MB over a 2 h window moves the fitted slope by a few MB/h at most
        // (its standard error is about sigma * sqrt(12 / n) / span = 11.5 * 0.32 / 2 ≈ 1.9 MB/h).
        assert!(flat_slope.abs() < 6.0 * MB, "flat series slope {flat_slope}");
        assert!((leak_slope - 64.0 * MB).abs() < 6.0 * MB, "leak slope {leak_slope}");
        // One snapshot spike of +200 MB at the end barely moves the fit; last-minus-first would.
        let mut spike = flat.clone();
        spike.last_mut().unwrap().1 += 200.0 * MB;
        let spiked = least_squares_slope(spike.iter().copied()).unwrap() * 3600.0;
        assert!(spiked < 15.0 * MB, "one spike {spiked}");
    }

    #[test]
    fn series_slides_and_keeps_the_first_sample() {
        let mut s = MemorySeries::new(Duration::from_secs(10));
        for i in 0..30u32 {
            // Grows 1000 B/s for 20 s, then stays flat.
            let bytes = 1_000_000 + u64::from(i.min(20)) * 1000;
            s.push(f64::from(i), bytes);
        }
        assert_eq!(s.window_len(), 11, "samples at 19..=29");
        assert_eq!(s.count, 30);
        assert_eq!(s.first(), Some(1_000_000));
        assert_eq!(s.last(), Some(1_020_000));
        assert_eq!((s.min(), s.max()), (Some(1_000_000), Some(1_020_000)));
        assert!((s.growth_ratio().unwrap() - 0.02).abs() < 1e-12);
        // The window holds 19 (19000) and then 20000 ten times: a small positive slope only.
        let slope = s.slope_bytes_per_hour().unwrap();
        assert!(slope > 0.0 && slope < 1000.0 * 3600.0 * 0.2, "{slope}");
        let mut g = MemorySeries::new(Duration::from_secs(60));
        assert_eq!(g.growth_ratio(), None);
        assert_eq!(g.slope_bytes_per_hour(), None);
        g.push(0.0, 0);
        g.push(1.0, 10);
        assert_eq!(g.growth_ratio(), None, "growth from 0 bytes is undefined");
    }

    #[test]
    fn exposition_parsing() {
        let text = "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                    # TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes_total 1\n\
                    process_resident_memory_bytes 4.5e+07\n\
                    other 3\n";
        assert_eq!(exposition_value(text, "process_resident_memory_bytes"), Ok(45_000_000.0));
        let labelled = "mem{pod=\"a\",note=\"x}\\\"y\"} 100 1700000000000\nmem{pod=\"b\"} 50\n";
        assert_eq!(exposition_value(labelled, "mem"), Ok(150.0));
        assert_eq!(exposition_value("other 1\n", "mem"), Err(MemoryError::MissingMetric("mem".into())));
        assert_eq!(exposition_value("mem_bytes 1\n", "mem").unwrap_err().error_type(), "missing_metric");
        assert_eq!(exposition_value("mem{a=\"1\" 5\n", "mem").unwrap_err().error_type(), "invalid_response");
        assert_eq!(exposition_value("mem abc\n", "mem").unwrap_err().error_type(), "invalid_response");
        assert_eq!(exposition_value("mem\n", "mem").unwrap_err().error_type(), "invalid_response");
        assert_eq!(exposition_value("mem \n", "mem").unwrap_err().error_type(), "invalid_response");
        assert_eq!(exposition_value("\u{0}\u{1}garbage{{{\n", "mem").unwrap_err().error_type(), "missing_metric");
    }

    #[test]
    fn classes_are_complete() {
        let all = [
            MemoryError::Connect(String::new()),
            MemoryError::Timeout(Duration::ZERO),
            MemoryError::Http(404),
            MemoryError::Http(503),
            MemoryError::MissingMetric(String::new()),
            MemoryError::Parse(String::new()),
            MemoryError::Proc(String::new()),
            MemoryError::Redirect(String::new()),
        ];
        let got: Vec<&str> = all.iter().map(MemoryError::error_type).collect();
        assert_eq!(got, MemoryError::CLASSES);
    }

    #[tokio::test]
    async fn endpoint_answers_are_read_or_classified() {
        use axum::{Router, http::StatusCode, routing::get};
        let app = Router::new()
            .route(
                "/ok",
                get(|| async { "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 123456\n" }),
            )
            .route("/500", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
            .route("/garbage", get(|| async { vec![0xffu8, 0xfe, 0x00, 0x7b] }))
            .route("/negative", get(|| async { "process_resident_memory_bytes -5\n" }))
            .route("/other", get(|| async { "up 1\n" }))
            .route(
                "/moved",
                get(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "http://127.0.0.1:1/metrics")]) }),
            )
            .route(
                "/endless",
                get(|| async {
                    let filler = bytes::Bytes::from("filler_total 1\n".repeat(1024));
                    axum::body::Body::from_stream(futures::stream::repeat_with(move || {
                        Ok::<_, std::io::Error>(filler.clone())
                    }))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "process_resident_memory_bytes 1\n"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        // The daemon's client: its redirect policy is part of what is tested.
        let http = crate::mcp::transport::http_client().unwrap();
        let read = |path: &str| {
            let source = MemorySource::Prometheus {
                url: url::Url::parse(&format!("http://{addr}{path}")).unwrap(),
                metric: "process_resident_memory_bytes".into(),
            };
            let http = http.clone();
            async move { sample(&http, &source, Duration::from_millis(500)).await }
        };
        assert_eq!(read("/ok").await, Ok(123_456));
        assert_eq!(read("/500").await, Err(MemoryError::Http(500)));
        assert_eq!(read("/404").await.unwrap_err().error_type(), "http_4xx");
        assert_eq!(read("/garbage").await.unwrap_err().error_type(), "invalid_response");
        assert_eq!(read("/negative").await.unwrap_err().error_type(), "invalid_response");
        assert_eq!(read("/other").await.unwrap_err().error_type(), "missing_metric");
        assert_eq!(read("/moved").await.unwrap_err().error_type(), "redirect");
        // Cut at the cap, not read until the timeout (nor held whole).
        assert_eq!(
            read("/endless").await,
            Err(MemoryError::Parse(format!("exposition over {MAX_EXPOSITION_BYTES} bytes")))
        );
        assert_eq!(read("/slow").await.unwrap_err().error_type(), "timeout");
        server.abort();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let source = MemorySource::Prometheus {
            url: url::Url::parse(&format!("http://{closed}/metrics")).unwrap(),
            metric: "m".into(),
        };
        assert_eq!(sample(&http, &source, Duration::from_secs(2)).await.unwrap_err().error_type(), "connect");
    }

    #[test]
    fn proc_rss_of_this_process_and_of_a_missing_one() {
        let rss = self_rss().unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert_eq!(proc_rss("4294967295").unwrap_err().error_type(), "proc");
    }

    #[test]
    fn description_hides_credentials_and_query() {
        let src = MemorySource::Prometheus {
            url: url::Url::parse("http://u:secret@127.0.0.1:9/metrics?token=abc").unwrap(),
            metric: "process_resident_memory_bytes".into(),
        };
        let d = src.describe();
        assert!(!d.contains("secret") && !d.contains("abc"), "{d}");
    }
}
