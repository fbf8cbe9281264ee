//! Profile runs as metrics: live per-operation series through pre-registered handles while a
//! run goes, and the last run's results (HdrHistogram percentiles, verdicts) when it ends.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::catalogue as m;
use crate::profile::engine::{RunObserver, SessionEnd, SlotEvent};
use crate::profile::notify::{NotifyObserver, NotifyResults};
use crate::profile::per_session::MemoryResults;
use crate::profile::report::{RunReport, ThresholdResult};
use crate::profile::stats::{OpSummary, RequestResult};

/// Series of one operation, registered before the run starts.
struct OpHandles {
    name: String,
    ok_latency: Histogram,
    ok_count: Counter,
}

/// Live delivery series of a notify run, registered before it starts.
struct NotifyHandles {
    latency: Histogram,
    expected: Counter,
    received: Counter,
    duplicates: Counter,
    out_of_order: Counter,
}

/// The metrics side of one profile run (implements the engine's and the notify observers).
pub struct RunMetrics {
    target: String,
    profile: String,
    ops: Vec<OpHandles>,
    notify: Option<NotifyHandles>,
    slots: [Counter; 4],
    sessions: Gauge,
    in_flight: Gauge,
}

impl RunMetrics {
    /// Register a load run's series and mark it running.
    pub fn start(target: &str, profile: &str, operations: &[String], started_at: f64) -> Arc<Self> {
        Self::start_with(target, profile, operations, started_at, false)
    }

    /// Register a notify run's series and mark it running.
    pub fn start_notify(target: &str, profile: &str, started_at: f64) -> Arc<Self> {
        Self::start_with(target, profile, &[], started_at, true)
    }

    fn start_with(target: &str, profile: &str, operations: &[String], started_at: f64, notify: bool) -> Arc<Self> {
        let (t, p) = (target.to_string(), profile.to_string());
        let notify = notify.then(|| {
            let c = |name: &'static str| {
                let c = counter!(name, "target" => t.clone(), "profile" => p.clone());
                c.increment(0);
                c
            };
            NotifyHandles {
                latency: histogram!(m::NOTIFY_DELIVERY_LATENCY.name, "target" => t.clone(), "profile" => p.clone()),
                expected: c(m::NOTIFY_EXPECTED.name),
                received: c(m::NOTIFY_RECEIVED.name),
                duplicates: c(m::NOTIFY_DUPLICATES.name),
                out_of_order: c(m::NOTIFY_OUT_OF_ORDER.name),
            }
        });
        let ops = operations
            .iter()
            .map(|op| OpHandles {
                name: op.clone(),
                ok_latency: histogram!(m::LOAD_REQUEST_DURATION.name, "target" => t.clone(), "profile" => p.clone(),
                    "operation" => op.clone(), "error_type" => ""),
                ok_count: counter!(m::LOAD_REQUESTS.name, "target" => t.clone(), "profile" => p.clone(),
                    "operation" => op.clone(), "outcome" => "success", "error_type" => ""),
            })
            .collect();
        let slot = |e: SlotEvent| {
            let c = counter!(m::LOAD_SLOTS.name, "target" => t.clone(), "profile" => p.clone(), "slot" => e.as_str());
            c.increment(0);
            c
        };
        let slots = [slot(SlotEvent::Issued), slot(SlotEvent::Late), slot(SlotEvent::Skipped), slot(SlotEvent::Shed)];
        gauge!(m::RUN_RUNNING.name, "target" => t.clone(), "profile" => p.clone()).set(1.0);
        gauge!(m::RUN_START.name, "target" => t.clone(), "profile" => p.clone()).set(started_at);
        tracing::info!(target_name = %target, profile, "Profile run started");
        Arc::new(Self {
            sessions: gauge!(m::LOAD_SESSIONS.name, "target" => t.clone(), "profile" => p.clone()),
            in_flight: gauge!(m::LOAD_IN_FLIGHT.name, "target" => t.clone(), "profile" => p.clone()),
            target: t,
            profile: p,
            ops,
            notify,
            slots,
        })
    }

    /// Live population gauges (called on every tick).
    pub fn population(&self, sessions: u64, in_flight: u64) {
        self.sessions.set(sessions as f64);
        self.in_flight.set(in_flight as f64);
    }

    /// Threshold states during the run and at its end.
    pub fn thresholds(&self, results: &[ThresholdResult]) {
        for r in results {
            gauge!(m::RUN_THRESHOLD_PASSED.name, "target" => self.target.clone(), "profile" => self.profile.clone(),
                "threshold" => r.threshold.clone())
            .set(if r.passed { 1.0 } else { 0.0 });
        }
    }

    fn summary(&self, operation: &str, s: &OpSummary) {
        let (t, p) = (self.target.clone(), self.profile.clone());
        for (stat, ms) in [
            ("avg", s.latency.avg_ms),
            ("p50", s.latency.p50_ms),
            ("p95", s.latency.p95_ms),
            ("p99", s.latency.p99_ms),
            ("max", s.latency.max_ms),
        ] {
            gauge!(m::RUN_LATENCY.name, "target" => t.clone(), "profile" => p.clone(),
                "operation" => operation.to_string(), "stat" => stat)
            .set(ms / 1000.0);
        }
        gauge!(m::RUN_REQUESTS.name, "target" => t.clone(), "profile" => p.clone(), "operation" => operation.to_string())
            .set(s.count as f64);
        gauge!(m::RUN_SUCCESS_RATIO.name, "target" => t, "profile" => p, "operation" => operation.to_string())
            .set(1.0 - s.error_rate);
    }

    /// The last run's results; the run is no longer running.
    pub fn finished(&self, report: &RunReport) {
        if let Some(load) = &report.load {
            self.summary("all", &load.total);
            for (name, s) in &load.operations {
                self.summary(name, s);
            }
            for (replica, r) in &load.replicas {
                gauge!(m::RUN_REPLICA_REQUESTS.name, "target" => self.target.clone(),
                    "profile" => self.profile.clone(), "replica" => replica.clone())
                .set(r.requests as f64);
            }
            if let Some(memory) = &load.memory {
                self.memory_summary(memory);
            }
        }
        if let Some(n) = &report.notify {
            self.notify_summary(n);
        }
        self.thresholds(&report.thresholds);
        let (t, p) = (self.target.clone(), self.profile.clone());
        gauge!(m::RUN_PASSED.name, "target" => t.clone(), "profile" => p.clone()).set(if report.passed() {
            1.0
        } else {
            0.0
        });
        gauge!(m::RUN_END.name, "target" => t.clone(), "profile" => p.clone()).set(report.ended_at);
        gauge!(m::RUN_RUNNING.name, "target" => t, "profile" => p).set(0.0);
        self.population(0, 0);
        tracing::info!(target_name = %self.target, profile = %self.profile, verdict = %report.verdict,
            "Profile run finished");
    }

    /// Memory per 1,000 sessions (only the series with a slope) and orphaned session keys.
    fn memory_summary(&self, memory: &MemoryResults) {
        let (t, p) = (self.target.clone(), self.profile.clone());
        for (replica, fit) in &memory.target {
            if let Some(bytes) = fit.bytes_per_1000_sessions {
                gauge!(m::RUN_TARGET_MEMORY_PER_1000_SESSIONS.name, "target" => t.clone(), "profile" => p.clone(),
                    "replica" => replica.clone())
                .set(bytes);
            }
        }
        if let Some(bytes) = memory.redis.as_ref().and_then(|f| f.bytes_per_1000_sessions) {
            gauge!(m::RUN_REDIS_MEMORY_PER_1000_SESSIONS.name, "target" => t.clone(), "profile" => p.clone())
                .set(bytes);
        }
        if let Some(n) = memory.orphaned_session_keys {
            gauge!(m::REDIS_ORPHANED_SESSION_KEYS.name, "target" => t, "profile" => p).set(n as f64);
        }
    }

    fn notify_summary(&self, n: &NotifyResults) {
        let (t, p) = (self.target.clone(), self.profile.clone());
        for (stat, ms) in [
            ("avg", n.latency.avg_ms),
            ("p50", n.latency.p50_ms),
            ("p95", n.latency.p95_ms),
            ("p99", n.latency.p99_ms),
            ("max", n.latency.max_ms),
        ] {
            gauge!(m::RUN_LATENCY.name, "target" => t.clone(), "profile" => p.clone(),
                "operation" => "notification", "stat" => stat)
            .set(ms / 1000.0);
        }
        gauge!(m::RUN_DELIVERY_RATIO.name, "target" => t.clone(), "profile" => p.clone()).set(n.delivery_ratio);
        for (replica, d) in &n.replicas {
            let r = || replica.clone();
            gauge!(m::RUN_REPLICA_SESSIONS.name, "target" => t.clone(), "profile" => p.clone(), "replica" => r())
                .set(d.sessions as f64);
            gauge!(m::RUN_REPLICA_DELIVERY_RATIO.name, "target" => t.clone(), "profile" => p.clone(), "replica" => r())
                .set(d.delivery_ratio);
        }
        gauge!(m::RUN_SESSIONS_MISSING.name, "target" => t, "profile" => p).set(n.sessions_missing_any as f64);
    }
}

impl RunObserver for RunMetrics {
    fn request(&self, op: usize, latency: Duration, result: RequestResult) {
        let Some(h) = self.ops.get(op) else { return };
        match result {
            RequestResult::Success => {
                h.ok_latency.record(latency.as_secs_f64());
                h.ok_count.increment(1);
            }
            // Failures are rarer: look their series up by error class.
            RequestResult::Failed(e) => {
                let (t, p) = (self.target.clone(), self.profile.clone());
                histogram!(m::LOAD_REQUEST_DURATION.name, "target" => t.clone(), "profile" => p.clone(),
                    "operation" => h.name.clone(), "error_type" => e.as_str())
                .record(latency.as_secs_f64());
                counter!(m::LOAD_REQUESTS.name, "target" => t, "profile" => p, "operation" => h.name.clone(),
                    "outcome" => "failure", "error_type" => e.as_str())
                .increment(1);
            }
        }
    }

    fn replica_request(&self, replica: &str, result: RequestResult) {
        let outcome = if result == RequestResult::Success { "success" } else { "failure" };
        counter!(m::LOAD_REPLICA_REQUESTS.name, "target" => self.target.clone(), "profile" => self.profile.clone(),
            "replica" => replica.to_string(), "outcome" => outcome)
        .increment(1);
    }

    fn slot(&self, kind: SlotEvent) {
        let i = match kind {
            SlotEvent::Issued => 0,
            SlotEvent::Late => 1,
            SlotEvent::Skipped => 2,
            SlotEvent::Shed => 3,
        };
        self.slots[i].increment(1);
    }

    fn session_ended(&self, end: SessionEnd) {
        counter!(m::PROFILE_SESSIONS_ENDED.name, "target" => self.target.clone(), "profile" => self.profile.clone(),
            "end" => end.as_str())
        .increment(1);
    }
}

impl NotifyObserver for RunMetrics {
    fn expected(&self, n: u64) {
        if let Some(h) = &self.notify {
            h.expected.increment(n);
        }
    }

    fn delivered(&self, latency: Option<Duration>) {
        if let Some(h) = &self.notify {
            h.received.increment(1);
            if let Some(l) = latency {
                h.latency.record(l.as_secs_f64());
            }
        }
    }

    fn duplicate(&self) {
        if let Some(h) = &self.notify {
            h.duplicates.increment(1);
        }
    }

    fn out_of_order(&self) {
        if let Some(h) = &self.notify {
            h.out_of_order.increment(1);
        }
    }
}
