//! Per-run statistics: an HdrHistogram per operation for exact percentiles (fixed memory, never
//! every sample), error counts by class, and the slot accounting of the open model.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::mcp::ErrorType;

/// Highest latency tracked exactly, in microseconds (one hour); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

pub(crate) fn new_histogram() -> Histogram<u64> {
    // 3 significant digits: 0.1 % precision, about 200 KB per histogram at this range.
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 sigfig is valid"))
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    Success,
    Failed(ErrorType),
}

/// Raw accumulators of one operation.
#[derive(Clone)]
pub struct OpAccum {
    /// From the intended start (what a user of the open model sees).
    pub latency: Histogram<u64>,
    /// From the actual send (what a closed-loop tool would have reported).
    pub service: Histogram<u64>,
    /// What a closed-loop client would have recorded: only requests sent when the session's
    /// previous counted request had finished, timed from their send (coordinated omission).
    pub closed_loop: Histogram<u64>,
    pub errors: BTreeMap<ErrorType, u64>,
}

impl OpAccum {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            service: new_histogram(),
            closed_loop: new_histogram(),
            errors: BTreeMap::new(),
        }
    }

    pub fn count(&self) -> u64 {
        self.latency.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Merge `other` into `self` (scopes spanning several operations).
    pub fn add(&mut self, other: &OpAccum) {
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        let _ = self.closed_loop.add(&other.closed_loop);
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
    }

    pub fn summary(&self, shed: u64) -> OpSummary {
        OpSummary::of(self, shed)
    }
}

/// What thresholds and progress lines read of one or more operations: latency from the
/// intended start and the failures (not the service and closed-loop views, which only the report
/// shows). Scratch space: reset and refilled on every tick, never reallocated.
pub struct Outcomes {
    pub latency: Histogram<u64>,
    pub errors: u64,
}

impl Default for Outcomes {
    fn default() -> Self {
        Self { latency: new_histogram(), errors: 0 }
    }
}

impl Outcomes {
    /// Completed requests (successes and failures).
    pub fn count(&self) -> u64 {
        self.latency.len()
    }

    fn reset(&mut self) {
        self.latency.reset();
        self.errors = 0;
    }

    fn add(&mut self, a: &OpAccum) {
        let _ = self.latency.add(&a.latency);
        self.errors += a.error_count();
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Latency {
    pub avg_ms: f64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Latency {
            avg_ms: h.mean() / 1000.0,
            min_ms: ms(h.min()),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The report view of one operation (or a scope, or the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpSummary {
    /// Completed requests (successes and failures).
    pub count: u64,
    pub errors: u64,
    /// Failures by `error_type`.
    pub errors_by_type: BTreeMap<String, u64>,
    /// Slots shed because too many requests were in flight (scope: whole run only).
    #[serde(default)]
    pub shed: u64,
    /// (errors + shed) / (count + shed).
    pub error_rate: f64,
    /// Latency from the intended start.
    pub latency: Latency,
    /// Latency from the actual send (the closed-loop view, for comparison).
    pub service: Latency,
    /// The closed-loop view of the same run, for comparison (what a tool with coordinated
    /// omission would have reported).
    #[serde(default)]
    pub closed_loop: Latency,
}

impl OpSummary {
    /// Requests that completed without an error.
    pub fn succeeded(&self) -> u64 {
        self.count.saturating_sub(self.errors)
    }

    fn of(a: &OpAccum, shed: u64) -> Self {
        let count = a.count();
        let errors = a.error_count();
        let all = count + shed;
        OpSummary {
            count,
            errors,
            errors_by_type: a.errors.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect(),
            shed,
            error_rate: if all == 0 { 0.0 } else { (errors + shed) as f64 / all as f64 },
            latency: Latency::of(&a.latency),
            service: Latency::of(&a.service),
            closed_loop: Latency::of(&a.closed_loop),
        }
    }
}

/// Live accumulators shared by every request task of a run.
pub struct RunStats {
    ops: Vec<Mutex<OpAccum>>,
    connect: Mutex<OpAccum>,
    pub issued: AtomicU64,
    pub late: AtomicU64,
    pub skipped: AtomicU64,
    pub shed: AtomicU64,
    pub in_flight: AtomicU64,
    pub sessions: AtomicU64,
    /// Requests by serving replica (filled only when the run tags replicas).
    pub replicas: super::replicas::ReplicaCounts,
    /// Sessions the churn ended with a DELETE.
    pub ended_clean: AtomicU64,
    /// Sessions the churn dropped without a DELETE (a crashed client, a lost network).
    pub ended_unclean: AtomicU64,
    /// Sessions the churn ended where the server kept none (stateless, no session id).
    pub ended_sessionless: AtomicU64,
    /// The run interval by interval, for the report's charts.
    pub timeline: super::timeline::TimelineRecorder,
}

/// Slot accounting of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Slots {
    /// Slots the arrival plan intended (before any request-count bound).
    pub planned: u64,
    /// Requests sent.
    pub issued: u64,
    /// Sent later than the lateness tolerance after their intended start.
    pub late: u64,
    /// Never sent: the generator fell a whole period behind and resumed at the next slot.
    pub skipped: u64,
    /// Never sent: the in-flight bound was reached (a stalled server).
    pub shed: u64,
}

impl RunStats {
    pub fn new(operations: usize) -> Self {
        Self {
            ops: (0..operations).map(|_| Mutex::new(OpAccum::new())).collect(),
            connect: Mutex::new(OpAccum::new()),
            issued: AtomicU64::new(0),
            late: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            replicas: Default::default(),
            ended_clean: AtomicU64::new(0),
            ended_unclean: AtomicU64::new(0),
            ended_sessionless: AtomicU64::new(0),
            timeline: super::timeline::TimelineRecorder::new(std::time::Instant::now()),
        }
    }

    /// Record a request of operation `op`: latency from intended start, service time from send.
    /// `closed_loop` is set when a closed-loop client would have sent this request.
    pub fn record(
        &self,
        op: usize,
        latency: Duration,
        service: Duration,
        closed_loop: Option<Duration>,
        result: RequestResult,
    ) {
        if let Some(slot) = self.ops.get(op)
            && let Ok(mut a) = slot.lock()
        {
            Self::record_into(&mut a, latency, service, result);
            if let Some(c) = closed_loop {
                let _ = a.closed_loop.record(us(c));
            }
        }
        self.record_on_timeline(latency, result);
    }

    /// A completed request on the run's timeline only, with the population at its completion
    /// (chaos keeps its requests' histograms per phase, and its timeline here).
    pub fn record_on_timeline(&self, latency: Duration, result: RequestResult) {
        let failed = match result {
            RequestResult::Success => None,
            RequestResult::Failed(t) => Some(t),
        };
        let population = self.population();
        self.timeline.request(latency, failed, population.in_flight, population.sessions);
    }

    pub fn record_connect(&self, latency: Duration, result: RequestResult) {
        if let Ok(mut a) = self.connect.lock() {
            Self::record_into(&mut a, latency, latency, result);
        }
    }

    fn record_into(a: &mut OpAccum, latency: Duration, service: Duration, result: RequestResult) {
        let _ = a.latency.record(us(latency));
        let _ = a.service.record(us(service));
        if let RequestResult::Failed(t) = result {
            *a.errors.entry(t).or_default() += 1;
        }
    }

    /// Merge what thresholds and progress lines read of the operations for which `pick(index)`
    /// holds into `out` (emptied first), each locked in turn. Live views go through here: a full
    /// `snapshot` copies every histogram (hundreds of KB each), which on every tick of a run cost
    /// more CPU than the requests themselves.
    pub fn outcomes_into(&self, pick: impl Fn(usize) -> bool, out: &mut Outcomes) {
        out.reset();
        for (i, m) in self.ops.iter().enumerate() {
            if pick(i)
                && let Ok(a) = m.lock()
                && a.count() > 0
            {
                out.add(&a);
            }
        }
    }

    /// A consistent-enough copy of every accumulator (each op locked in turn).
    pub fn snapshot(&self) -> Snapshot {
        let ops = self.ops.iter().map(|m| m.lock().map(|a| a.clone()).unwrap_or_else(|_| OpAccum::new())).collect();
        let connect = self.connect.lock().map(|a| a.clone()).unwrap_or_else(|_| OpAccum::new());
        Snapshot { ops, connect, slots: self.slots(0) }
    }

    /// Sessions open and requests in flight now.
    pub fn population(&self) -> super::Population {
        super::Population {
            sessions: self.sessions.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    pub fn slots(&self, planned: u64) -> Slots {
        Slots {
            planned,
            issued: self.issued.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            shed: self.shed.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of the run's accumulators.
#[derive(Clone)]
pub struct Snapshot {
    pub ops: Vec<OpAccum>,
    pub connect: OpAccum,
    pub slots: Slots,
}

impl Snapshot {
    /// All operations merged.
    pub fn total(&self) -> OpAccum {
        self.merged(|_| true)
    }

    /// The operations for which `pick(index)` holds, merged.
    pub fn merged(&self, pick: impl Fn(usize) -> bool) -> OpAccum {
        let mut out = OpAccum::new();
        for (i, a) in self.ops.iter().enumerate() {
            if pick(i) {
                out.add(a);
            }
        }
        out
    }

    /// As [`RunStats::outcomes_into`], over this copy.
    pub fn outcomes_into(&self, pick: impl Fn(usize) -> bool, out: &mut Outcomes) {
        out.reset();
        for (i, a) in self.ops.iter().enumerate() {
            if pick(i) {
                out.add(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact_enough_and_errors_counted() {
        let s = RunStats::new(2);
        for ms in 1..=100u64 {
            s.record(0, Duration::from_millis(ms), Duration::from_millis(1), None, RequestResult::Success);
        }
        s.record(
            1,
            Duration::from_millis(5),
            Duration::from_millis(5),
            None,
            RequestResult::Failed(ErrorType::Http5xx),
        );
        let snap = s.snapshot();
        let a = snap.ops[0].summary(0);
        assert_eq!(a.count, 100);
        assert!((a.latency.p95_ms - 95.0).abs() < 0.2, "{a:?}");
        assert!((a.latency.p50_ms - 50.0).abs() < 0.1, "{a:?}");
        assert!((a.latency.max_ms - 100.0).abs() < 0.1);
        assert!((a.latency.avg_ms - 50.5).abs() < 0.1);
        assert!(a.service.p99_ms <= 1.01);
        let t = snap.total().summary(1);
        assert_eq!((t.count, t.errors, t.shed), (101, 1, 1));
        assert!((t.error_rate - 2.0 / 102.0).abs() < 1e-9);
        assert_eq!(t.errors_by_type.get("http_5xx"), Some(&1));
    }
}
