//! k6-style thresholds: `p95 < 50ms`, `p(99) <= 1s`, `error_rate < 0.1%`, `avg < 20ms`,
//! optionally scoped to an operation or an MCP method: `tools/call:p95 < 100ms`. Chaos runs add
//! `recovery_time < 30s`, `detect_time < 5s`, `notifications_lost == 0`, `sessions_lost <= 10`,
//! scoped to a scenario or applied to each; the longevity profile adds the memory thresholds
//! `memory_growth < 50%` and `memory_slope < 10MB/h`.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::report::ThresholdResult;

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Avg,
    Min,
    Max,
    /// A percentile in (0, 100].
    Percentile(f64),
    /// Failed / all requests (shed slots count as failures).
    ErrorRate,
    /// Successful / all requests.
    SuccessRate,
    /// Notifications received / expected (notification stress only).
    Delivery,
    /// Chaos: from a fault's end to sustained success, in seconds.
    RecoveryTime,
    /// Chaos: from a fault's start to the first failed or slow operation, in seconds.
    DetectTime,
    /// Chaos: notifications lost in a scenario's windows (a count).
    NotificationsLost,
    /// Chaos: sessions the server lost in a scenario's windows (a count).
    SessionsLost,
    /// Target memory growth since the first snapshot, as a fraction (longevity only).
    MemoryGrowth,
    /// Least-squares slope of target memory over the sliding window, bytes per hour (longevity only).
    MemorySlope,
}

impl Stat {
    /// Whether the statistic is one of the longevity profile's memory statistics.
    pub fn is_memory(self) -> bool {
        matches!(self, Stat::MemoryGrowth | Stat::MemorySlope)
    }

    /// Statistics only a chaos run measures.
    pub fn is_chaos(self) -> bool {
        matches!(self, Stat::RecoveryTime | Stat::DetectTime | Stat::NotificationsLost | Stat::SessionsLost)
    }

    /// Statistics that are counts (no unit).
    pub fn is_count(self) -> bool {
        matches!(self, Stat::NotificationsLost | Stat::SessionsLost)
    }
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
        }
    }

    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Cmp::Lt => observed < limit,
            Cmp::Le => observed <= limit,
            Cmp::Gt => observed > limit,
            Cmp::Ge => observed >= limit,
            Cmp::Eq => observed == limit,
        }
    }
}

/// A parsed threshold. Latency limits are held in seconds, rates as fractions.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Operation name or MCP method; `None` for the whole run.
    pub scope: Option<String>,
    pub stat: Stat,
    pub cmp: Cmp,
    pub limit: f64,
}

/// Why a threshold expression was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("threshold {expr:?}: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
}

impl Threshold {
    /// Parse `[scope:]stat op value[unit]`.
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        let err = |reason: String| ThresholdError { expr: expr.to_string(), reason };
        let ops = [("==", Cmp::Eq), ("<=", Cmp::Le), (">=", Cmp::Ge), ("<", Cmp::Lt), (">", Cmp::Gt)];
        let (at, op_str, cmp) = ops
            .iter()
            .filter_map(|(s, c)| expr.find(s).map(|i| (i, *s, *c)))
            .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
            .ok_or_else(|| err("expected a comparison: one of <, <=, >, >=, ==".into()))?;
        let lhs = expr[..at].trim();
        let rhs = expr[at + op_str.len()..].trim();
        if rhs.starts_with(['<', '>', '=']) {
            return Err(err("malformed operator".into()));
        }
        let (scope, stat_str) = match lhs.rsplit_once(':') {
            Some((s, m)) if !s.trim().is_empty() => (Some(s.trim().to_string()), m.trim()),
            Some(_) => return Err(err("empty operation before ':'".into())),
            None => (None, lhs),
        };
        let stat = parse_stat(stat_str).map_err(err)?;
        let limit = match stat {
            Stat::ErrorRate | Stat::SuccessRate | Stat::Delivery => parse_rate(rhs),
            Stat::NotificationsLost | Stat::SessionsLost => parse_count(rhs),
            Stat::MemoryGrowth => parse_growth(rhs),
            Stat::MemorySlope => parse_slope(rhs),
            _ => parse_latency(rhs),
        }
        .map_err(err)?;
        Ok(Threshold { scope, stat, cmp, limit })
    }

    /// Whether `observed` (seconds or a fraction) satisfies the threshold.
    pub fn holds(&self, observed: f64) -> bool {
        self.cmp.holds(observed, self.limit)
    }

    /// The stat name alone (`p95`, `avg`, `error_rate`).
    pub fn stat_name(&self) -> String {
        match self.stat {
            Stat::Avg => "avg".into(),
            Stat::Min => "min".into(),
            Stat::Max => "max".into(),
            Stat::Percentile(p) => format!("p{p}"),
            Stat::ErrorRate => "error_rate".into(),
            Stat::SuccessRate => "success_rate".into(),
            Stat::Delivery => "delivery".into(),
            Stat::RecoveryTime => "recovery_time".into(),
            Stat::DetectTime => "detect_time".into(),
            Stat::NotificationsLost => "notifications_lost".into(),
            Stat::SessionsLost => "sessions_lost".into(),
            Stat::MemoryGrowth => "memory_growth".into(),
            Stat::MemorySlope => "memory_slope".into(),
        }
    }

    /// A fraction rendered in percent (rates and memory growth).
    pub fn is_rate(&self) -> bool {
        matches!(self.stat, Stat::ErrorRate | Stat::SuccessRate | Stat::Delivery | Stat::MemoryGrowth)
    }

    /// Render an observed value in the threshold's unit.
    pub fn format_value(&self, v: f64) -> String {
        if self.stat == Stat::MemorySlope {
            format_bytes_per_hour(v)
        } else if self.is_rate() {
            format!("{}%", trim(v * 100.0))
        } else if self.stat.is_count() {
            trim(v)
        } else {
            format_seconds(v)
        }
    }
}

/// Normalized form, e.g. `tools/call:p95<100ms` (the `threshold` label value).
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scope) = &self.scope {
            write!(f, "{scope}:")?;
        }
        write!(f, "{}{}{}", self.stat_name(), self.cmp.as_str(), self.format_value(self.limit))
    }
}

/// A threshold's statistic as one source measured it: the value, the samples behind it, and
/// whether it may pass at all (a chaos scenario that never recovered fails whatever its value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub value: f64,
    pub samples: u64,
    pub may_pass: bool,
}

impl Measured {
    /// A value over `samples` samples that passes if it holds.
    pub fn of(value: f64, samples: u64) -> Self {
        Self { value, samples, may_pass: true }
    }

    /// Nothing measured: judged `no_data`.
    pub const NONE: Measured = Measured { value: 0.0, samples: 0, may_pass: true };
}

/// Where a profile's numbers come from: each profile supplies the numbers, `Threshold::evaluate`
/// does the comparing, and zero samples are `no_data`, never a pass.
pub trait Measurements {
    /// The value of `stat` and its samples; `None` when this source does not measure `stat`
    /// (judged `no_data`; planning refuses such thresholds before a run).
    fn measure(&self, stat: Stat) -> Option<Measured>;
}

impl Threshold {
    /// Judge this threshold over `source`, named by its normalized expression.
    pub fn evaluate(&self, source: &(impl Measurements + ?Sized)) -> ThresholdResult {
        self.evaluate_as(self.to_string(), source)
    }

    /// Judge this threshold over `source` under another name (chaos: `scenario:stat<limit`).
    pub fn evaluate_as(&self, name: String, source: &(impl Measurements + ?Sized)) -> ThresholdResult {
        self.judge_as(name, source.measure(self.stat))
    }

    /// Judge this threshold over a value measured elsewhere; `None` is `no_data`.
    pub fn judge_as(&self, name: String, measured: Option<Measured>) -> ThresholdResult {
        let m = measured.unwrap_or(Measured::NONE);
        ThresholdResult::judge(name, m.value, m.samples, |v| m.may_pass && self.holds(v))
    }
}

/// A latency statistic of a histogram of microseconds, in seconds; `None` for other statistics.
pub fn latency_stat(stat: Stat, h: &Histogram<u64>) -> Option<f64> {
    let secs = |us: u64| us as f64 / 1e6;
    match stat {
        Stat::Avg => Some(h.mean() / 1e6),
        Stat::Min => Some(secs(h.min())),
        Stat::Max => Some(secs(h.max())),
        Stat::Percentile(p) => Some(secs(h.value_at_quantile(p / 100.0))),
        _ => None,
    }
}

/// `part / whole`, or `if_empty` when `whole` is 0.
pub fn ratio(part: u64, whole: u64, if_empty: f64) -> f64 {
    if whole == 0 { if_empty } else { part as f64 / whole as f64 }
}

/// Requests: latency statistics from their histogram, error and success rates from the counts;
/// every statistic covers `requests` samples (which may include shed slots the histogram lacks).
#[derive(Clone, Copy)]
pub struct Requests<'a> {
    pub latency: &'a Histogram<u64>,
    pub requests: u64,
    pub failed: u64,
}

impl Measurements for Requests<'_> {
    fn measure(&self, stat: Stat) -> Option<Measured> {
        let error_rate = ratio(self.failed, self.requests, 0.0);
        let value = match stat {
            Stat::ErrorRate => error_rate,
            Stat::SuccessRate => 1.0 - error_rate,
            _ => latency_stat(stat, self.latency)?,
        };
        Some(Measured::of(value, self.requests))
    }
}

/// Notifications: delivery (received / expected; success rate alike, error rate its complement)
/// over `expected` samples, and, when measured, send-to-receive latency over the deliveries
/// timed.
#[derive(Clone, Copy)]
pub struct Deliveries<'a> {
    pub expected: u64,
    pub received: u64,
    pub latency: Option<&'a Histogram<u64>>,
}

impl Deliveries<'_> {
    /// received / expected; 1 when nothing was expected.
    pub fn ratio(&self) -> f64 {
        ratio(self.received, self.expected, 1.0)
    }
}

impl Measurements for Deliveries<'_> {
    fn measure(&self, stat: Stat) -> Option<Measured> {
        match stat {
            Stat::Delivery | Stat::SuccessRate => Some(Measured::of(self.ratio(), self.expected)),
            Stat::ErrorRate => Some(Measured::of(1.0 - self.ratio(), self.expected)),
            _ => {
                let h = self.latency?;
                Some(Measured::of(latency_stat(stat, h)?, h.len()))
            }
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Seconds rendered in ms below one second, else in s.
pub fn format_seconds(v: f64) -> String {
    if v < 1.0 { format!("{}ms", trim(v * 1000.0)) } else { format!("{}s", trim(v)) }
}

fn parse_stat(s: &str) -> Result<Stat, String> {
    let s = s.trim();
    let pct = |p: &str| -> Result<Stat, String> {
        let v: f64 = p.parse().map_err(|_| format!("bad percentile {p:?}"))?;
        if v > 0.0 && v <= 100.0 {
            Ok(Stat::Percentile(v))
        } else {
            Err(format!("percentile must be within (0, 100], got {v}"))
        }
    };
    match s {
        "avg" | "mean" => Ok(Stat::Avg),
        "min" => Ok(Stat::Min),
        "max" => Ok(Stat::Max),
        "med" | "median" => Ok(Stat::Percentile(50.0)),
        "error_rate" => Ok(Stat::ErrorRate),
        "success_rate" | "success_ratio" => Ok(Stat::SuccessRate),
        "delivery" | "delivery_ratio" => Ok(Stat::Delivery),
        "recovery_time" => Ok(Stat::RecoveryTime),
        "detect_time" => Ok(Stat::DetectTime),
        "notifications_lost" => Ok(Stat::NotificationsLost),
        "sessions_lost" => Ok(Stat::SessionsLost),
        "memory_growth" => Ok(Stat::MemoryGrowth),
        "memory_slope" => Ok(Stat::MemorySlope),
        _ => {
            if let Some(inner) = s.strip_prefix("p(").and_then(|r| r.strip_suffix(')')) {
                pct(inner)
            } else if let Some(n) = s.strip_prefix('p').filter(|n| !n.is_empty()) {
                pct(n)
            } else {
                Err(format!(
                    "unknown statistic {s:?}; expected avg, min, max, med, pN or p(N), error_rate, success_rate, delivery, recovery_time, detect_time, notifications_lost, sessions_lost, memory_growth, memory_slope"
                ))
            }
        }
    }
}

fn split_number(s: &str) -> Result<(f64, &str), String> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    if end == 0 {
        return Err(format!("expected a number, got {s:?}"));
    }
    let v: f64 = s[..end].parse().map_err(|_| format!("bad number {:?}", &s[..end]))?;
    Ok((v, s[end..].trim()))
}

/// A latency limit in seconds; a bare number is milliseconds (as in k6).
fn parse_latency(s: &str) -> Result<f64, String> {
    let (v, unit) = split_number(s)?;
    let scale = match unit {
        "" | "ms" => 1e-3,
        "s" => 1.0,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "%" => return Err("a latency limit takes a time unit (ms, s, us), not %".into()),
        other => return Err(format!("unknown time unit {other:?}; use ms, s or us")),
    };
    Ok(v * scale)
}

/// A rate limit as a fraction: `0.1%` or `0.001`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let (v, unit) = split_number(s)?;
    let v = match unit {
        "%" => v / 100.0,
        "" => v,
        other => return Err(format!("a rate takes % or a plain fraction, not {other:?}")),
    };
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("a rate must be within 0..=100%, got {s}")) }
}

/// A count limit: a plain non-negative number.
fn parse_count(s: &str) -> Result<f64, String> {
    let (v, unit) = split_number(s)?;
    if unit.is_empty() { Ok(v) } else { Err(format!("a count takes no unit, got {unit:?}")) }
}

/// A growth limit as a fraction: `50%` or `0.5`; growth may exceed 100 % and may be negative.
fn parse_growth(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    let (v, unit) = split_number(body)?;
    let v = match unit {
        "%" => v / 100.0,
        "" => v,
        other => return Err(format!("a memory growth takes % or a plain fraction, not {other:?}")),
    };
    Ok(if neg { -v } else { v })
}

/// A memory slope limit in bytes per hour: `10MB/h`, `512KiB/min`, `1GB/h`, `0B/h`.
fn parse_slope(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    let (v, unit) = split_number(body)?;
    let (size, per) = unit
        .split_once('/')
        .ok_or_else(|| format!("a memory slope takes a rate unit such as MB/h or KiB/min, got {unit:?}"))?;
    let bytes = match size.trim() {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?}; use B, KB, MB, GB, KiB, MiB or GiB")),
    };
    let per_hour = match per.trim() {
        "h" | "hour" => 1.0,
        "min" | "m" => 60.0,
        "s" => 3600.0,
        "d" | "day" => 1.0 / 24.0,
        other => return Err(format!("unknown time unit {other:?} in a memory slope; use s, min, h or d")),
    };
    let v = v * bytes * per_hour;
    Ok(if neg { -v } else { v })
}

/// Bytes per hour in decimal units (`10MB/h`, `-1.5KB/h`).
pub fn format_bytes_per_hour(v: f64) -> String {
    let a = v.abs();
    let (div, unit) = if a >= 1e9 {
        (1e9, "GB")
    } else if a >= 1e6 {
        (1e6, "MB")
    } else if a >= 1e3 {
        (1e3, "KB")
    } else {
        (1.0, "B")
    };
    let sign = if v < 0.0 { "-" } else { "" };
    format!("{sign}{}{unit}/h", trim(a / div))
}

/// A `Duration` limit (for tests and reports).
pub fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Threshold {
        Threshold::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parses_k6_forms() {
        assert_eq!(p("p95 < 50ms"), Threshold { scope: None, stat: Stat::Percentile(95.0), cmp: Cmp::Lt, limit: 0.05 });
        assert_eq!(p("p(99)<=1s").stat, Stat::Percentile(99.0));
        assert_eq!(p("p(99)<=1s").limit, 1.0);
        assert_eq!(p("p(99.9) < 200").limit, 0.2);
        assert_eq!(p("avg<20ms").stat, Stat::Avg);
        assert_eq!(p("med < 5ms").stat, Stat::Percentile(50.0));
        assert_eq!(p("max >= 10us").cmp, Cmp::Ge);
        let e = p("error_rate < 0.1%");
        assert_eq!(e.stat, Stat::ErrorRate);
        assert!((e.limit - 0.001).abs() < 1e-12);
        assert_eq!(p("success_rate > 0.99").limit, 0.99);
        let d = p("delivery >= 99%");
        assert_eq!((d.stat, d.cmp), (Stat::Delivery, Cmp::Ge));
        assert!((d.limit - 0.99).abs() < 1e-12);
        assert_eq!(d.to_string(), "delivery>=99%");
    }

    #[test]
    fn parses_scopes() {
        let t = p("tools/call:p95 < 100ms");
        assert_eq!(t.scope.as_deref(), Some("tools/call"));
        assert_eq!(t.limit, 0.1);
        assert_eq!(p("fast_tool:error_rate<1%").scope.as_deref(), Some("fast_tool"));
    }

    #[test]
    fn normalizes() {
        assert_eq!(p("tools/call : p(95) < 100").to_string(), "tools/call:p95<100ms");
        assert_eq!(p("error_rate < 0.1%").to_string(), "error_rate<0.1%");
        assert_eq!(p("p99<=1.5s").to_string(), "p99<=1.5s");
    }

    #[test]
    fn errors_are_clear() {
        let cases = [
            ("p95 50ms", "expected a comparison"),
            ("p101 < 5ms", "percentile must be within"),
            ("pxx < 5ms", "bad percentile"),
            ("latency < 5ms", "unknown statistic"),
            ("p95 < fast", "expected a number"),
            ("p95 < 5h", "unknown time unit"),
            ("p95 < 5%", "time unit"),
            ("error_rate < 5ms", "a rate takes %"),
            ("error_rate < 150%", "within 0..=100%"),
            (":p95 < 5ms", "empty operation"),
            ("p95 <> 5ms", "malformed operator"),
        ];
        for (expr, want) in cases {
            let e = Threshold::parse(expr).expect_err(expr);
            assert!(e.to_string().contains(want), "{expr}: {e}");
            assert!(e.to_string().contains(expr), "{expr}: message names the expression: {e}");
        }
    }

    #[test]
    fn parses_chaos_stats() {
        let r = p("recovery_time < 30s");
        assert_eq!((r.stat, r.limit), (Stat::RecoveryTime, 30.0));
        assert_eq!(r.to_string(), "recovery_time<30s");
        let n = p("notifications_lost == 0");
        assert_eq!((n.stat, n.cmp, n.limit), (Stat::NotificationsLost, Cmp::Eq, 0.0));
        assert_eq!(n.to_string(), "notifications_lost==0");
        assert!(n.holds(0.0) && !n.holds(1.0));
        let s = p("kill:sessions_lost <= 10");
        assert_eq!((s.scope.as_deref(), s.stat.is_chaos()), (Some("kill"), true));
        assert_eq!(p("detect_time<5s").stat, Stat::DetectTime);
        assert!(Threshold::parse("sessions_lost < 5ms").unwrap_err().to_string().contains("a count takes no unit"));
    }

    #[test]
    fn parses_memory_thresholds() {
        let g = p("memory_growth < 50%");
        assert_eq!((g.stat, g.cmp, g.limit), (Stat::MemoryGrowth, Cmp::Lt, 0.5));
        assert_eq!(g.to_string(), "memory_growth<50%");
        assert_eq!(p("memory_growth < 250%").limit, 2.5);
        assert_eq!(p("memory_growth < 0.2").limit, 0.2);
        let s = p("memory_slope < 10MB/h");
        assert_eq!((s.stat, s.limit), (Stat::MemorySlope, 10e6));
        assert_eq!(s.to_string(), "memory_slope<10MB/h");
        assert_eq!(p("memory_slope <= 1MiB/min").limit, 1024.0 * 1024.0 * 60.0);
        assert_eq!(p("memory_slope < 1KB/s").limit, 3.6e6);
        assert_eq!(p("memory_slope < 0B/h").limit, 0.0);
        assert_eq!(p("memory_slope < 2.5GB/h").to_string(), "memory_slope<2.5GB/h");
        assert_eq!(format_bytes_per_hour(-1500.0), "-1.5KB/h");
        assert!(p("memory_slope < 10MB/h").holds(9.9e6));
        for (expr, want) in [
            ("memory_slope < 10MB", "rate unit"),
            ("memory_slope < 10TB/h", "unknown size unit"),
            ("memory_slope < 10MB/week", "unknown time unit"),
            ("memory_growth < 5ms", "memory growth takes %"),
        ] {
            let e = Threshold::parse(expr).expect_err(expr);
            assert!(e.to_string().contains(want), "{expr}: {e}");
        }
    }

    #[test]
    fn comparisons() {
        assert!(p("p95<50ms").holds(0.049));
        assert!(!p("p95<50ms").holds(0.05));
        assert!(p("p95<=50ms").holds(0.05));
        assert!(p("success_rate>=99%").holds(0.99));
    }
    fn hist(ms: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = crate::profile::stats::new_histogram();
        for v in ms {
            h.record(v * 1000).unwrap();
        }
        h
    }

    /// A source with one number for every statistic, to test the judging alone.
    struct Fixed(Option<Measured>);
    impl Measurements for Fixed {
        fn measure(&self, _stat: Stat) -> Option<Measured> {
            self.0
        }
    }

    fn status(expr: &str, source: &impl Measurements) -> ThresholdStatus {
        p(expr).evaluate(source).status
    }

    use super::super::report::ThresholdStatus;

    #[test]
    fn evaluator_judges_each_comparison() {
        let at = |v: f64| Fixed(Some(Measured::of(v, 10)));
        for (expr, v, want) in [
            ("p95 < 50ms", 0.049, ThresholdStatus::Pass),
            ("p95 < 50ms", 0.05, ThresholdStatus::Fail),
            ("p95 <= 50ms", 0.05, ThresholdStatus::Pass),
            ("p95 <= 50ms", 0.051, ThresholdStatus::Fail),
            ("success_rate > 99%", 0.995, ThresholdStatus::Pass),
            ("success_rate > 99%", 0.99, ThresholdStatus::Fail),
            ("delivery >= 99%", 0.99, ThresholdStatus::Pass),
            ("delivery >= 99%", 0.98, ThresholdStatus::Fail),
            ("sessions_lost == 0", 0.0, ThresholdStatus::Pass),
            ("sessions_lost == 0", 1.0, ThresholdStatus::Fail),
        ] {
            let r = p(expr).evaluate(&at(v));
            assert_eq!((r.status, r.observed, r.samples), (want, v, 10), "{expr} at {v}");
            assert_eq!(r.passed, want == ThresholdStatus::Pass, "{expr} at {v}");
            assert_eq!(r.threshold, p(expr).to_string());
        }
        let r = p("recovery_time < 30s").evaluate_as("kill:recovery_time<30s".into(), &at(1.0));
        assert_eq!((r.threshold.as_str(), r.status), ("kill:recovery_time<30s", ThresholdStatus::Pass));
        // A value that holds but may not pass (a scenario that never recovered) fails.
        let never = Fixed(Some(Measured { value: 1.0, samples: 1, may_pass: false }));
        assert_eq!(status("recovery_time < 30s", &never), ThresholdStatus::Fail);
    }

    /// Zero samples are no_data, never a pass, even when the value would hold; so is a statistic
    /// the source does not measure.
    #[test]
    fn evaluator_without_samples_is_no_data() {
        for expr in ["p95 < 50ms", "error_rate < 1%", "memory_slope < 10MB/h", "sessions_lost == 0"] {
            let r = p(expr).evaluate(&Fixed(Some(Measured::of(0.0, 0))));
            assert_eq!((r.status, r.passed, r.samples), (ThresholdStatus::NoData, false, 0), "{expr}");
            assert_eq!(status(expr, &Fixed(None)), ThresholdStatus::NoData, "{expr}");
        }
        let empty = hist([]);
        let none = Requests { latency: &empty, requests: 0, failed: 0 };
        for expr in ["p95 < 50ms", "avg < 1s", "error_rate < 1%", "success_rate > 0%"] {
            assert_eq!(status(expr, &none), ThresholdStatus::NoData, "{expr}");
        }
        let nothing_expected = Deliveries { expected: 0, received: 0, latency: Some(&empty) };
        assert_eq!(status("delivery >= 0%", &nothing_expected), ThresholdStatus::NoData);
        assert_eq!(status("p50 < 1s", &nothing_expected), ThresholdStatus::NoData);
    }

    #[test]
    fn requests_measure_latency_and_rates() {
        let h = hist(1..=100);
        let r = Requests { latency: &h, requests: 104, failed: 6 };
        let m = |stat| r.measure(stat).unwrap();
        assert!((m(Stat::Percentile(95.0)).value - 0.095).abs() < 1e-4);
        assert!((m(Stat::Percentile(50.0)).value - 0.050).abs() < 1e-4);
        assert!((m(Stat::Avg).value - 0.0505).abs() < 1e-4);
        assert!((m(Stat::Min).value - 0.001).abs() < 1e-6);
        assert!((m(Stat::Max).value - 0.1).abs() < 1e-4);
        assert!((m(Stat::ErrorRate).value - 6.0 / 104.0).abs() < 1e-12);
        assert!((m(Stat::SuccessRate).value - 98.0 / 104.0).abs() < 1e-12);
        // Every statistic covers the requests counted, shed slots included.
        assert!([Stat::Avg, Stat::Percentile(99.0), Stat::ErrorRate].iter().all(|s| m(*s).samples == 104));
        for stat in [Stat::Delivery, Stat::RecoveryTime, Stat::MemoryGrowth, Stat::SessionsLost] {
            assert_eq!(r.measure(stat), None, "{stat:?}");
        }
        assert_eq!(status("error_rate < 5%", &r), ThresholdStatus::Fail);
        assert_eq!(status("error_rate < 6%", &r), ThresholdStatus::Pass);
        assert_eq!(status("p99 <= 100ms", &r), ThresholdStatus::Pass);
    }

    #[test]
    fn deliveries_measure_ratio_and_latency() {
        let h = hist([10, 20, 30, 40]);
        let d = Deliveries { expected: 10, received: 8, latency: Some(&h) };
        assert_eq!(d.measure(Stat::Delivery), Some(Measured::of(0.8, 10)));
        assert_eq!(d.measure(Stat::SuccessRate), Some(Measured::of(0.8, 10)));
        let e = d.measure(Stat::ErrorRate).unwrap();
        assert!((e.value - 0.2).abs() < 1e-12 && e.samples == 10);
        let p = d.measure(Stat::Percentile(50.0)).unwrap();
        assert!((p.value - 0.02).abs() < 1e-4 && p.samples == 4, "latency over the deliveries timed: {p:?}");
        let untimed = Deliveries { latency: None, ..d };
        assert_eq!(untimed.measure(Stat::Max), None);
        assert_eq!(d.measure(Stat::NotificationsLost), None);
        assert_eq!(Deliveries { expected: 0, received: 0, latency: None }.ratio(), 1.0);
        assert_eq!(ratio(1, 4, 9.0), 0.25);
        assert_eq!(ratio(1, 0, 9.0), 9.0);
    }
}
