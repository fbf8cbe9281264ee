//! Chaos runs as metrics: the workload's live series through the load profile's handles, fault
//! windows as a gauge, failures, session and stream recovery per scenario as counters while the
//! run goes, and detect/recover times, notifications lost and the verdict when it ends.

use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, gauge};

use super::catalogue as m;
use super::load::RunMetrics;
use crate::chaos::{ChaosObserver, ChaosReport};
use crate::mcp::ErrorType;
use crate::profile::engine::RunObserver;
use crate::profile::stats::RequestResult;

/// The metrics side of one chaos run.
pub struct ChaosMetrics {
    target: String,
    profile: String,
    run: Arc<RunMetrics>,
}

impl ChaosMetrics {
    /// Register the run's series (`operations` from `ChaosRun::operations`, `scenarios` by name)
    /// and mark it running; `profile` is `ChaosRun::profile`.
    pub fn start(
        target: &str,
        profile: &str,
        operations: &[String],
        scenarios: &[String],
        started_at: f64,
    ) -> Arc<Self> {
        let run = RunMetrics::start(target, profile, operations, started_at);
        let (t, p) = (target.to_string(), profile.to_string());
        for s in scenarios {
            gauge!(m::CHAOS_FAULT_ACTIVE.name, "target" => t.clone(), "profile" => p.clone(), "scenario" => s.clone())
                .set(0.0);
            for c in [
                m::CHAOS_SESSIONS_LOST,
                m::CHAOS_SESSIONS_REESTABLISHED,
                m::CHAOS_STREAMS_RECONNECTED,
                m::CHAOS_STREAMS_RESUMED,
                m::CHAOS_NOTIFICATIONS_LOST,
            ] {
                counter!(c.name, "target" => t.clone(), "profile" => p.clone(), "scenario" => s.clone()).increment(0);
            }
        }
        Arc::new(Self { target: t, profile: p, run })
    }

    fn count(&self, def: m::MetricDef, scenario: &str, n: u64) {
        counter!(def.name, "target" => self.target.clone(), "profile" => self.profile.clone(), "scenario" => scenario.to_string())
            .increment(n);
    }

    fn scenario_gauge(&self, def: m::MetricDef, scenario: &str, v: f64) {
        gauge!(def.name, "target" => self.target.clone(), "profile" => self.profile.clone(), "scenario" => scenario.to_string())
            .set(v);
    }
}

impl ChaosObserver for ChaosMetrics {
    fn request(&self, op: usize, latency: Duration, result: RequestResult) {
        self.run.request(op, latency, result);
    }

    fn population(&self, sessions: u64, in_flight: u64) {
        self.run.population(sessions, in_flight);
    }

    fn fault(&self, scenario: &str, active: bool) {
        self.scenario_gauge(m::CHAOS_FAULT_ACTIVE, scenario, if active { 1.0 } else { 0.0 });
    }

    fn failed_in_window(&self, scenario: &str, error: ErrorType) {
        counter!(m::CHAOS_FAILED_REQUESTS.name, "target" => self.target.clone(), "profile" => self.profile.clone(),
            "scenario" => scenario.to_string(), "error_type" => error.as_str())
        .increment(1);
    }

    fn session_lost(&self, scenario: &str) {
        self.count(m::CHAOS_SESSIONS_LOST, scenario, 1);
    }

    fn session_reestablished(&self, scenario: &str) {
        self.count(m::CHAOS_SESSIONS_REESTABLISHED, scenario, 1);
    }

    fn streams(&self, scenario: &str, reconnected: u64, resumed: u64) {
        self.count(m::CHAOS_STREAMS_RECONNECTED, scenario, reconnected);
        self.count(m::CHAOS_STREAMS_RESUMED, scenario, resumed);
    }

    fn finished(&self, report: &ChaosReport) {
        for s in &report.scenarios {
            self.scenario_gauge(m::CHAOS_FAULT_ACTIVE, &s.name, 0.0);
            // NaN, not the previous run's value, when this run measured nothing: a scheduled
            // profile runs again and again, and a series cannot be withdrawn.
            self.scenario_gauge(m::CHAOS_DETECT, &s.name, s.detect_s.unwrap_or(f64::NAN));
            self.scenario_gauge(m::CHAOS_RECOVERY, &s.name, s.recover_s.unwrap_or(f64::NAN));
            self.scenario_gauge(m::CHAOS_RECOVERED, &s.name, if s.recovered { 1.0 } else { 0.0 });
            self.count(m::CHAOS_NOTIFICATIONS_LOST, &s.name, s.window_sum(|p| p.notifications_lost));
        }
        self.run.thresholds(&report.thresholds);
        self.run.population(0, 0);
        let t = self.target.clone();
        gauge!(m::RUN_PASSED.name, "target" => t.clone(), "profile" => self.profile.clone()).set(if report.passed() {
            1.0
        } else {
            0.0
        });
        gauge!(m::RUN_END.name, "target" => t.clone(), "profile" => self.profile.clone()).set(report.ended_at);
        gauge!(m::RUN_RUNNING.name, "target" => t, "profile" => self.profile.clone()).set(0.0);
        tracing::info!(target_name = %self.target, profile = %self.profile, verdict = %report.verdict,
            scenarios = report.scenarios.len(), "Profile run finished");
    }
}
