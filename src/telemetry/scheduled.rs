//! The daemon's profile scheduler as metrics: runs started, completed by verdict, skipped by
//! reason, and each profile's next fire time.

use metrics::{counter, gauge};

use super::catalogue as m;

/// Why a scheduled run did not start (the closed `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSkipReason {
    /// The profile's previous run against the target is still going at the fire time.
    Overlap,
    /// Another profile's run holds the target (at most one heavy run per target).
    TargetBusy,
    /// Runs in progress leave too little of the global session or request-rate cap.
    OverCaps,
    /// Another replica holds the `[coordination]` lease and runs the profiles.
    NotLeader,
}

impl RunSkipReason {
    pub const ALL: [RunSkipReason; 4] =
        [RunSkipReason::Overlap, RunSkipReason::TargetBusy, RunSkipReason::OverCaps, RunSkipReason::NotLeader];

    pub fn as_str(self) -> &'static str {
        match self {
            RunSkipReason::Overlap => "overlap",
            RunSkipReason::TargetBusy => "target_busy",
            RunSkipReason::OverCaps => "over_caps",
            RunSkipReason::NotLeader => "not_leader",
        }
    }
}

/// How a scheduled run ended (the closed `verdict` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Stopped by the daemon's shutdown.
    Cancelled,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Pass, Verdict::Fail, Verdict::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Cancelled => "cancelled",
        }
    }
}

/// Series of a (profile, target) pair exist at 0 from startup, so `increase()` sees the first run.
pub fn registered(target: &str, profile: &str) {
    let (t, p) = (target.to_string(), profile.to_string());
    counter!(m::PROFILE_RUNS_STARTED.name, "target" => t.clone(), "profile" => p.clone()).increment(0);
    for v in Verdict::ALL {
        counter!(m::PROFILE_RUNS_COMPLETED.name, "target" => t.clone(), "profile" => p.clone(), "verdict" => v.as_str())
            .increment(0);
    }
    for r in RunSkipReason::ALL {
        counter!(m::PROFILE_RUNS_SKIPPED.name, "target" => t.clone(), "profile" => p.clone(), "reason" => r.as_str())
            .increment(0);
    }
    counter!(m::PROFILE_REPORT_ERRORS.name, "target" => t, "profile" => p).increment(0);
}

pub fn next_fire(target: &str, profile: &str, unix_seconds: f64) {
    gauge!(m::PROFILE_NEXT_RUN.name, "target" => target.to_string(), "profile" => profile.to_string())
        .set(unix_seconds);
}

pub fn run_started(target: &str, profile: &str) {
    counter!(m::PROFILE_RUNS_STARTED.name, "target" => target.to_string(), "profile" => profile.to_string())
        .increment(1);
}

pub fn run_skipped(target: &str, profile: &str, reason: RunSkipReason) {
    counter!(m::PROFILE_RUNS_SKIPPED.name, "target" => target.to_string(), "profile" => profile.to_string(),
        "reason" => reason.as_str())
    .increment(1);
    if reason == RunSkipReason::NotLeader {
        // Every fire of a standby replica: expected, not worth a warning.
        tracing::debug!(target_name = %target, profile, "Scheduled profile run left to the lease holder");
    } else {
        tracing::warn!(target_name = %target, profile, reason = reason.as_str(), "Scheduled profile run skipped");
    }
}

/// Whether this replica holds the `[coordination]` lease.
pub fn leader(held: bool) {
    gauge!(m::COORDINATION_LEADER.name).set(if held { 1.0 } else { 0.0 });
}

pub fn lease_acquired() {
    counter!(m::COORDINATION_LEASE_ACQUIRED.name).increment(1);
}

/// A round trip to the lease's Redis failed (or took longer than a third of the lease).
pub fn lease_error() {
    counter!(m::COORDINATION_LEASE_ERRORS.name).increment(1);
}

pub fn run_completed(target: &str, profile: &str, verdict: Verdict) {
    counter!(m::PROFILE_RUNS_COMPLETED.name, "target" => target.to_string(), "profile" => profile.to_string(),
        "verdict" => verdict.as_str())
    .increment(1);
}

pub fn report_failed(target: &str, profile: &str, error: &dyn std::fmt::Display) {
    counter!(m::PROFILE_REPORT_ERRORS.name, "target" => target.to_string(), "profile" => profile.to_string())
        .increment(1);
    tracing::error!(target_name = %target, profile, error = %error, "Cannot write the run report");
}
