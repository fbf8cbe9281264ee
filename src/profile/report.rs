//! The JSON run report (one per run; also the baseline format) and the baseline comparison.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::load::MixEntry;
pub use super::notify::NotifyResults;
use super::stats::{OpSummary, Slots};

/// Version of the report layout: 2 added `timeline` (readers of 1 ignore it; a version-1 report
/// still reads, without one).
pub const REPORT_FORMAT: u32 = 2;

/// Parameters the run was started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunParams {
    pub preset: Option<String>,
    pub clients: u32,
    pub rpm: f64,
    pub duration_s: f64,
    pub ramp_up_s: f64,
    pub ramp_down_s: f64,
    pub max_requests: Option<u64>,
    pub max_in_flight: usize,
    pub mix: Vec<MixEntry>,
}

/// How a threshold came out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdStatus {
    /// The observed value satisfies the limit.
    #[default]
    Pass,
    /// The observed value breaks the limit.
    Fail,
    /// Nothing was measured (zero samples): never a pass.
    NoData,
}

impl ThresholdStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdStatus::Pass => "pass",
            ThresholdStatus::Fail => "fail",
            ThresholdStatus::NoData => "no_data",
        }
    }
}

/// One threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThresholdResult {
    /// Normalized expression (also the `threshold` label).
    pub threshold: String,
    /// `status == pass` (kept for readers of the first report layout).
    pub passed: bool,
    /// pass, fail or no_data (zero samples).
    #[serde(default)]
    pub status: ThresholdStatus,
    /// Observed value: seconds for latency, a fraction for rates.
    pub observed: f64,
    /// Requests the value was computed over.
    pub samples: u64,
}

impl ThresholdResult {
    /// The result of a threshold over `samples` samples; `holds` is asked only when there are
    /// samples (zero samples are `no_data`, which never passes).
    pub fn judge(threshold: String, observed: f64, samples: u64, holds: impl FnOnce(f64) -> bool) -> Self {
        let status = if samples == 0 {
            ThresholdStatus::NoData
        } else if holds(observed) {
            ThresholdStatus::Pass
        } else {
            ThresholdStatus::Fail
        };
        Self { threshold, passed: status == ThresholdStatus::Pass, status, observed, samples }
    }
}

/// Where a run's thresholds came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdOrigin {
    /// `--threshold` flags or the config's `thresholds`.
    Given,
    /// The `--preset`'s thresholds.
    Preset,
    /// The profile's defaults (none given).
    #[default]
    Default,
}

impl ThresholdOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdOrigin::Given => "given",
            ThresholdOrigin::Preset => "preset",
            ThresholdOrigin::Default => "default",
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(transform = load_fields_together)]
pub struct RunReport {
    /// Version of this layout: 2 (added `timeline`); 1 reads the same without it.
    #[schemars(range(min = 1, max = REPORT_FORMAT))]
    pub format: u32,
    /// `load`, `notify` or `longevity` one-shot; the profile entry's name in the daemon.
    pub profile: String,
    /// The target's name (`--name`, or host:port of its URL).
    pub target: String,
    /// Unix seconds (wall clock; the only cross-process timestamps).
    pub started_at: f64,
    /// Unix seconds.
    pub ended_at: f64,
    /// Monotonic run time.
    pub elapsed_s: f64,
    /// Ended before the schedule did (abort on a threshold breach, or cancellation).
    pub aborted: bool,
    /// Why it ended early (`threshold ... breached`, `cancelled`).
    pub abort_reason: Option<String>,
    /// The load profile's section (at the top level of the JSON, as in the first format; load
    /// and longevity reports have all of its fields, notify reports none).
    #[serde(flatten)]
    pub load: Option<LoadResults>,
    /// The notification-stress profile's section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyResults>,
    /// The longevity profile's section (memory snapshots and churn; its requests are in `load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longevity: Option<super::longevity::LongevityResults>,
    /// The run interval by interval (requests, errors, latency, population, deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<super::timeline::Timeline>,
    pub thresholds: Vec<ThresholdResult>,
    /// Whether the thresholds were given, a preset's or the profile's defaults.
    #[serde(default)]
    pub thresholds_origin: ThresholdOrigin,
    /// "pass" or "fail": a threshold failed or had no data, the run was aborted, or nothing
    /// succeeded.
    #[schemars(extend("enum" = ["pass", "fail"]))]
    pub verdict: String,
    /// Why the run failed when no threshold says so (nothing succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    /// CPU time of this process (user + system) over its life, when known.
    pub client_cpu_seconds: Option<f64>,
}

/// What a load run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadResults {
    pub params: RunParams,
    pub slots: Slots,
    pub total: OpSummary,
    pub operations: BTreeMap<String, OpSummary>,
    pub connect: OpSummary,
    /// Requests by the replica that served them (`--replicas`); absent otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, super::replicas::ReplicaRequests>,
    /// Target and Redis memory per 1,000 sessions over the ramp, orphaned session keys
    /// (`--memory-url`, `--redis`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<super::per_session::MemoryResults>,
}

/// Schema of [`RunReport`]: the flattened [`LoadResults`] fields are there all together or not at
/// all (a notify report has none of them).
fn load_fields_together(schema: &mut schemars::Schema) {
    const FIELDS: [&str; 5] = ["params", "slots", "total", "operations", "connect"];
    let others = |f: &str| FIELDS.iter().filter(|o| **o != f).copied().collect::<Vec<_>>();
    let map: serde_json::Map<String, serde_json::Value> =
        FIELDS.iter().map(|f| (f.to_string(), others(f).into())).collect();
    schema.insert("dependentRequired".into(), map.into());
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// How much worse than the baseline a run may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative latency increase allowed (0.2 = 20 %).
    pub latency_ratio: f64,
    /// Absolute latency slack in milliseconds, so sub-millisecond noise is not a regression.
    pub latency_floor_ms: f64,
    /// Absolute error-rate increase allowed (0.001 = 0.1 percentage points).
    pub error_rate: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self { latency_ratio: 0.2, latency_floor_ms: 1.0, error_rate: 0.001 }
    }
}

/// One way a run is worse than its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Regression {
    /// `total` or an operation name.
    pub scope: String,
    /// `p95_ms`, `error_rate`, ...
    pub stat: String,
    pub baseline: f64,
    pub current: f64,
    pub allowed: f64,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {:.3} vs baseline {:.3} (allowed up to {:.3})",
            self.scope, self.stat, self.current, self.baseline, self.allowed
        )
    }
}

fn compare_summary(scope: &str, base: &OpSummary, cur: &OpSummary, tol: Tolerance, out: &mut Vec<Regression>) {
    if base.count == 0 || cur.count == 0 {
        return;
    }
    let lat = [
        ("avg_ms", base.latency.avg_ms, cur.latency.avg_ms),
        ("p50_ms", base.latency.p50_ms, cur.latency.p50_ms),
        ("p95_ms", base.latency.p95_ms, cur.latency.p95_ms),
        ("p99_ms", base.latency.p99_ms, cur.latency.p99_ms),
    ];
    for (stat, b, c) in lat {
        let allowed = b * (1.0 + tol.latency_ratio) + tol.latency_floor_ms;
        if c > allowed {
            out.push(Regression { scope: scope.into(), stat: stat.into(), baseline: b, current: c, allowed });
        }
    }
    let allowed = base.error_rate + tol.error_rate;
    if cur.error_rate > allowed {
        out.push(Regression {
            scope: scope.into(),
            stat: "error_rate".into(),
            baseline: base.error_rate,
            current: cur.error_rate,
            allowed,
        });
    }
}

/// Regressions of `current` against `baseline`: the whole run and every operation both have.
pub fn compare(baseline: &RunReport, current: &RunReport, tol: Tolerance) -> Vec<Regression> {
    let mut out = Vec::new();
    if let (Some(b), Some(c)) = (&baseline.notify, &current.notify) {
        super::notify::compare(b, c, tol, &mut out);
    }
    if let (Some(b), Some(c)) = (&baseline.longevity, &current.longevity) {
        super::longevity::compare(b, c, tol, &mut out);
    }
    let (Some(baseline), Some(current)) = (&baseline.load, &current.load) else { return out };
    compare_summary("total", &baseline.total, &current.total, tol, &mut out);
    for (name, base) in &baseline.operations {
        if let Some(cur) = current.operations.get(name) {
            compare_summary(name, base, cur, tol, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::stats::Latency;

    fn summary(p95: f64, error_rate: f64) -> OpSummary {
        OpSummary {
            count: 100,
            error_rate,
            latency: Latency { avg_ms: p95 / 2.0, p50_ms: p95 / 2.0, p95_ms: p95, p99_ms: p95, ..Default::default() },
            ..Default::default()
        }
    }

    fn report(p95: f64, error_rate: f64) -> RunReport {
        RunReport {
            format: REPORT_FORMAT,
            profile: "load".into(),
            target: "t".into(),
            started_at: 0.0,
            ended_at: 1.0,
            elapsed_s: 1.0,
            aborted: false,
            abort_reason: None,
            load: Some(LoadResults {
                params: RunParams {
                    preset: None,
                    clients: 1,
                    rpm: 60.0,
                    duration_s: 1.0,
                    ramp_up_s: 0.0,
                    ramp_down_s: 0.0,
                    max_requests: None,
                    max_in_flight: 1,
                    mix: vec![],
                },
                slots: Slots::default(),
                total: summary(p95, error_rate),
                operations: [("fast_tool".to_string(), summary(p95, error_rate))].into(),
                connect: OpSummary::default(),
                replicas: Default::default(),
                memory: None,
            }),
            notify: None,
            longevity: None,
            timeline: None,
            thresholds: vec![],
            thresholds_origin: ThresholdOrigin::Given,
            verdict: "pass".into(),
            verdict_reason: None,
            client_cpu_seconds: None,
        }
    }

    #[test]
    fn within_tolerance_is_not_a_regression() {
        assert!(compare(&report(10.0, 0.0), &report(12.5, 0.0005), Tolerance::default()).is_empty());
        // Sub-millisecond noise on a fast baseline is absorbed by the floor.
        assert!(compare(&report(0.4, 0.0), &report(1.2, 0.0), Tolerance::default()).is_empty());
    }

    #[test]
    fn slower_or_failing_runs_regress() {
        let r = compare(&report(10.0, 0.0), &report(20.0, 0.0), Tolerance::default());
        assert!(r.iter().any(|r| r.scope == "total" && r.stat == "p95_ms"), "{r:?}");
        assert!(r.iter().any(|r| r.scope == "fast_tool" && r.stat == "p99_ms"), "{r:?}");
        let r = compare(&report(10.0, 0.0), &report(10.0, 0.05), Tolerance::default());
        assert_eq!(r.iter().filter(|r| r.stat == "error_rate").count(), 2, "{r:?}");
        assert!(r[0].to_string().contains("vs baseline"));
    }

    #[test]
    fn report_round_trips_as_json() {
        let r = report(10.0, 0.0);
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert_eq!(serde_json::from_str::<RunReport>(&text).unwrap(), r);
    }
}
