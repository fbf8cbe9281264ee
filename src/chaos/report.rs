//! The chaos run report: per scenario the fault and recovery windows, what was measured in each,
//! detect and recover times; the prober's own health; thresholds and the verdict.

use serde::{Deserialize, Serialize};

use crate::profile::report::{ThresholdOrigin, ThresholdResult};
use crate::profile::stats::OpSummary;

/// Version of the chaos report layout: 2 added `timeline` and the scenarios' window starts.
pub const CHAOS_REPORT_FORMAT: u32 = 2;

/// What one phase (baseline, a fault window or a recovery window) measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseSummary {
    pub duration_s: f64,
    /// Every operation whose intended start fell in the phase, or that was in flight when this
    /// fault window opened (workload, connects, broadcast
    /// triggers), failures by `error_type`, latency from the intended start.
    pub requests: OpSummary,
    /// Sessions the server no longer knew (`session_expired`).
    pub sessions_lost: u64,
    /// Sessions negotiated again after a loss.
    pub sessions_reestablished: u64,
    /// Server-to-client streams reconnected (by the client, or reopened after a new session).
    pub streams_reconnected: u64,
    /// Reconnects that resumed with `Last-Event-ID`.
    pub streams_resumed: u64,
    /// Broadcasts triggered successfully in the phase.
    pub notifications_sent: u64,
    /// Broadcast triggers that failed.
    pub notification_triggers_failed: u64,
    /// sessions x broadcasts sent.
    pub notifications_expected: u64,
    pub notifications_received: u64,
    /// expected - received, after the settle time.
    pub notifications_lost: u64,
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioReport {
    pub name: String,
    pub kind: String,
    pub spec: String,
    pub fault_window_s: f64,
    pub recovery_window_s: f64,
    /// When the fault window began, in seconds from the start of the run (absent when the run
    /// ended before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_started_s: Option<f64>,
    /// When the recovery window began (the fault reverted), in seconds from the start of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_started_s: Option<f64>,
    /// The fault was injected (and reverted) without error.
    pub injected: bool,
    pub injection_errors: Vec<String>,
    /// From the fault's start to the first failed (or slower than `slow_after`) operation.
    pub detect_s: Option<f64>,
    /// `error` or `latency`.
    pub detected_by: Option<String>,
    /// From the fault's end to the first of `sustain` consecutive good operations.
    pub recover_s: Option<f64>,
    pub recovered: bool,
    pub fault: PhaseSummary,
    pub recovery: PhaseSummary,
}

impl ScenarioReport {
    /// Fault and recovery windows together (what thresholds on counts look at).
    pub fn window_sum(&self, f: impl Fn(&PhaseSummary) -> u64) -> u64 {
        f(&self.fault) + f(&self.recovery)
    }
}

/// Parameters of the run, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChaosParams {
    pub sessions: u32,
    pub rpm: f64,
    pub warmup_s: f64,
    pub slow_after_ms: f64,
    pub sustain: u32,
    pub notify_every_s: Option<f64>,
    pub through_proxy: bool,
}

/// The prober's own health over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProberHealth {
    /// Resident memory after the warm-up (population up) and after the run (population gone).
    pub rss_after_warmup_bytes: Option<u64>,
    pub rss_end_bytes: Option<u64>,
    /// Peak resident memory sampled at phase boundaries.
    pub rss_peak_bytes: Option<u64>,
    /// Session tasks that had not ended within the drain time (0 when nothing got stuck).
    pub stuck_tasks: u64,
    /// Connections the fault proxy relayed and reset.
    pub proxy_connections: u64,
    pub proxy_resets: u64,
}

/// Everything a chaos run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChaosReport {
    /// Version of this layout: 2 (added `timeline` and the scenarios'
    /// window starts); 1 reads the same without them.
    #[schemars(range(min = 1, max = CHAOS_REPORT_FORMAT))]
    pub format: u32,
    /// `chaos` one-shot; the profile entry's name in the daemon.
    pub profile: String,
    /// The target's name.
    pub target: String,
    /// Unix seconds.
    pub started_at: f64,
    /// Unix seconds.
    pub ended_at: f64,
    /// Monotonic run time.
    pub elapsed_s: f64,
    /// Ended before the scenarios did (abort on a threshold breach, or cancellation).
    pub aborted: bool,
    pub abort_reason: Option<String>,
    pub params: ChaosParams,
    /// The warm-up, before the first fault.
    pub baseline: PhaseSummary,
    /// Scenarios in the order they ran.
    pub scenarios: Vec<ScenarioReport>,
    /// The run interval by interval (requests, errors, latency, population).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<crate::profile::timeline::Timeline>,
    pub prober: ProberHealth,
    pub thresholds: Vec<ThresholdResult>,
    #[serde(default)]
    pub thresholds_origin: ThresholdOrigin,
    /// "pass" when every scenario was injected, every threshold held (`no_data` never does) and
    /// some request succeeded.
    #[schemars(extend("enum" = ["pass", "fail"]))]
    pub verdict: String,
    /// Why the run failed when no threshold says so (nothing succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    pub client_cpu_seconds: Option<f64>,
}

impl ChaosReport {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}
