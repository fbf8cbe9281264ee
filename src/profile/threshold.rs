//! k6-style thresholds: `p95 < 50ms`, `p(99) <= 1s`, `error_rate < 0.1%`, `avg < 20ms`,
//! optionally scoped to an operation or an MCP method: `tools/call:p95 < 100ms`. Chaos runs add
//! `recovery_time < 30s`, `detect_time < 5s`, `notifications_lost == 0`, `sessions_lost <= 10`,
//! scoped to a scenario or applied to each.

use std::fmt;
use std::time::Duration;

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
}

impl Stat {
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
        }
    }

    pub fn is_rate(&self) -> bool {
        matches!(self.stat, Stat::ErrorRate | Stat::SuccessRate | Stat::Delivery)
    }

    /// Render an observed value in the threshold's unit.
    pub fn format_value(&self, v: f64) -> String {
        if self.is_rate() {
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
        _ => {
            if let Some(inner) = s.strip_prefix("p(").and_then(|r| r.strip_suffix(')')) {
                pct(inner)
            } else if let Some(n) = s.strip_prefix('p').filter(|n| !n.is_empty()) {
                pct(n)
            } else {
                Err(format!(
                    "unknown statistic {s:?}; expected avg, min, max, med, pN or p(N), error_rate, success_rate, delivery, recovery_time, detect_time, notifications_lost, sessions_lost"
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
    fn comparisons() {
        assert!(p("p95<50ms").holds(0.049));
        assert!(!p("p95<50ms").holds(0.05));
        assert!(p("p95<=50ms").holds(0.05));
        assert!(p("success_rate>=99%").holds(0.99));
    }
}
