//! The run timeline: what a run saw interval by interval (requests, errors by class, latency
//! percentiles, population, deliveries), for the report's charts. Memory is fixed whatever the
//! run's length: at most [`MAX_POINTS`] intervals are kept, and when a run outgrows them the
//! interval doubles and neighbouring points merge (a 72-hour soak ends with points of a few
//! minutes each, never with more of them).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::mcp::ErrorType;

/// Most points a timeline holds.
pub const MAX_POINTS: usize = 512;
/// Width of a point until the run outgrows [`MAX_POINTS`] of them.
pub const FIRST_INTERVAL: Duration = Duration::from_secs(1);

/// Growth factor between latency buckets: percentiles within 4 % of the exact value, which
/// is what a chart can show (the report's tables use the run's exact histograms).
const BUCKET_GROWTH: f64 = 1.08;
/// Buckets from 1 µs to an hour at [`BUCKET_GROWTH`].
const BUCKETS: usize = 287;

/// One interval of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelinePoint {
    /// Start of the interval, in seconds from the start of the run.
    pub t_s: f64,
    /// Requests that completed in the interval (successes and failures).
    pub requests: u64,
    pub errors: u64,
    /// Failures by `error_type`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_type: BTreeMap<String, u64>,
    /// Latency percentiles of the interval's requests (absent without requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Most requests in flight seen in the interval.
    pub in_flight_max: u64,
    /// Most sessions open seen in the interval.
    pub sessions_max: u64,
    /// Notifications delivered in the interval.
    #[serde(default)]
    pub deliveries: u64,
    /// 95th percentile of their delivery latency (absent without deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_p95_ms: Option<f64>,
    /// The target's memory at the interval's last sample (longevity with a memory source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_memory_bytes: Option<u64>,
    /// This process's memory at the interval's last sample (longevity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_memory_bytes: Option<u64>,
}

/// A run's points, oldest first; intervals without activity are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timeline {
    /// Seconds each point covers (a power-of-two multiple of the first interval).
    pub interval_s: f64,
    pub points: Vec<TimelinePoint>,
}

/// Latency counts in geometric buckets (allocated on the first sample).
#[derive(Clone, Default)]
struct Buckets(Vec<u32>);

impl Buckets {
    fn record(&mut self, d: Duration) {
        if self.0.is_empty() {
            self.0 = vec![0; BUCKETS];
        }
        let us = d.as_secs_f64() * 1e6;
        let i = if us <= 1.0 { 0 } else { (us.ln() / BUCKET_GROWTH.ln()) as usize };
        let slot = &mut self.0[i.min(BUCKETS - 1)];
        *slot = slot.saturating_add(1);
    }

    fn add(&mut self, other: &Buckets) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0 = other.0.clone();
            return;
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = a.saturating_add(*b);
        }
    }

    /// The value at quantile `q` in milliseconds: the geometric middle of its bucket.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.iter().map(|c| u64::from(*c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.0.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                let mid_us = BUCKET_GROWTH.powf(i as f64 + 0.5);
                return Some(mid_us.round() / 1000.0);
            }
        }
        None
    }
}

#[derive(Clone, Default)]
struct Slot {
    requests: u64,
    errors: BTreeMap<ErrorType, u64>,
    latency: Buckets,
    in_flight_max: u64,
    sessions_max: u64,
    deliveries: u64,
    delivery_latency: Buckets,
    target_memory: Option<u64>,
    daemon_memory: Option<u64>,
}

impl Slot {
    fn merge(&mut self, other: &Slot) {
        self.requests += other.requests;
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.latency.add(&other.latency);
        self.in_flight_max = self.in_flight_max.max(other.in_flight_max);
        self.sessions_max = self.sessions_max.max(other.sessions_max);
        self.deliveries += other.deliveries;
        self.delivery_latency.add(&other.delivery_latency);
        self.target_memory = other.target_memory.or(self.target_memory);
        self.daemon_memory = other.daemon_memory.or(self.daemon_memory);
    }

    fn is_empty(&self) -> bool {
        self.requests == 0
            && self.deliveries == 0
            && self.in_flight_max == 0
            && self.sessions_max == 0
            && self.target_memory.is_none()
            && self.daemon_memory.is_none()
    }

    fn point(&self, t_s: f64) -> TimelinePoint {
        TimelinePoint {
            t_s,
            requests: self.requests,
            errors: self.errors.values().sum(),
            errors_by_type: self.errors.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect(),
            p50_ms: self.latency.quantile_ms(0.50),
            p95_ms: self.latency.quantile_ms(0.95),
            p99_ms: self.latency.quantile_ms(0.99),
            in_flight_max: self.in_flight_max,
            sessions_max: self.sessions_max,
            deliveries: self.deliveries,
            delivery_p95_ms: self.delivery_latency.quantile_ms(0.95),
            target_memory_bytes: self.target_memory,
            daemon_memory_bytes: self.daemon_memory,
        }
    }
}

struct State {
    /// Width of a slot, in multiples of [`FIRST_INTERVAL`].
    scale: u64,
    slots: Vec<Slot>,
}

/// Collects a run's timeline from its request tasks (one short lock per event).
pub struct TimelineRecorder {
    start: Instant,
    state: Mutex<State>,
}

impl TimelineRecorder {
    /// A recorder whose time zero is `start` (the run's start).
    pub fn new(start: Instant) -> Self {
        Self { start, state: Mutex::new(State { scale: 1, slots: Vec::new() }) }
    }

    /// The slot of `at`, after merging neighbours as often as needed to keep it in range.
    fn with_slot(&self, at: Instant, f: impl FnOnce(&mut Slot)) {
        let elapsed = at.saturating_duration_since(self.start);
        let Ok(mut s) = self.state.lock() else { return };
        let first = FIRST_INTERVAL.as_nanos();
        let mut index = (elapsed.as_nanos() / (first * u128::from(s.scale))) as usize;
        while index >= MAX_POINTS {
            let merged: Vec<Slot> = s
                .slots
                .chunks(2)
                .map(|pair| {
                    let mut m = pair[0].clone();
                    if let Some(b) = pair.get(1) {
                        m.merge(b);
                    }
                    m
                })
                .collect();
            s.slots = merged;
            s.scale *= 2;
            index /= 2;
        }
        if s.slots.len() <= index {
            s.slots.resize_with(index + 1, Slot::default);
        }
        f(&mut s.slots[index]);
    }

    /// A completed request: its latency, its failure class if it failed, and the population
    /// (requests in flight, sessions open) when it completed.
    pub fn request(&self, latency: Duration, failed: Option<ErrorType>, in_flight: u64, sessions: u64) {
        self.with_slot(Instant::now(), |slot| {
            slot.requests += 1;
            if let Some(t) = failed {
                *slot.errors.entry(t).or_default() += 1;
            }
            slot.latency.record(latency);
            slot.in_flight_max = slot.in_flight_max.max(in_flight);
            slot.sessions_max = slot.sessions_max.max(sessions);
        });
    }

    /// A notification delivered, `latency` after its broadcast was triggered when known.
    pub fn delivery(&self, latency: Option<Duration>) {
        self.with_slot(Instant::now(), |slot| {
            slot.deliveries += 1;
            if let Some(latency) = latency {
                slot.delivery_latency.record(latency);
            }
        });
    }

    /// A memory sample: the target's and this process's resident bytes, each when known.
    pub fn memory(&self, target_bytes: Option<u64>, daemon_bytes: Option<u64>) {
        self.with_slot(Instant::now(), |slot| {
            slot.target_memory = target_bytes.or(slot.target_memory);
            slot.daemon_memory = daemon_bytes.or(slot.daemon_memory);
        });
    }

    /// The population alone (a tick with no request completing, e.g. a stalled server).
    pub fn population(&self, in_flight: u64, sessions: u64) {
        self.with_slot(Instant::now(), |slot| {
            slot.in_flight_max = slot.in_flight_max.max(in_flight);
            slot.sessions_max = slot.sessions_max.max(sessions);
        });
    }

    /// The points so far.
    pub fn timeline(&self) -> Timeline {
        let Ok(s) = self.state.lock() else { return Timeline::default() };
        let width = FIRST_INTERVAL.as_secs_f64() * s.scale as f64;
        Timeline {
            interval_s: width,
            points: s
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| !slot.is_empty())
                .map(|(i, slot)| slot.point(i as f64 * width))
                .collect(),
        }
    }

    #[cfg(test)]
    fn record_at(&self, at: Instant, latency: Duration, failed: Option<ErrorType>) {
        self.with_slot(at, |slot| {
            slot.requests += 1;
            if let Some(t) = failed {
                *slot.errors.entry(t).or_default() += 1;
            }
            slot.latency.record(latency);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_follow_the_clock_and_percentiles_are_close() {
        let start = Instant::now();
        let r = TimelineRecorder::new(start);
        for ms in 1..=100u64 {
            r.record_at(start + Duration::from_millis(100), Duration::from_millis(ms), None);
        }
        r.record_at(start + Duration::from_millis(2500), Duration::from_millis(7), Some(ErrorType::Http5xx));
        let t = r.timeline();
        assert_eq!(t.interval_s, 1.0);
        assert_eq!(t.points.len(), 2, "the empty second is left out: {t:?}");
        let p = &t.points[0];
        assert_eq!((p.t_s, p.requests, p.errors), (0.0, 100, 0));
        let p95 = p.p95_ms.unwrap();
        assert!((p95 / 95.0 - 1.0).abs() < 0.05, "p95 {p95}");
        assert!((p.p50_ms.unwrap() / 50.0 - 1.0).abs() < 0.05);
        let q = &t.points[1];
        assert_eq!((q.t_s, q.requests, q.errors), (2.0, 1, 1));
        assert_eq!(q.errors_by_type.get("http_5xx"), Some(&1));
    }

    #[test]
    fn a_long_run_merges_points_and_keeps_every_request() {
        let start = Instant::now();
        let r = TimelineRecorder::new(start);
        // Three days, one request a minute.
        let minutes = 3 * 24 * 60u64;
        for m in 0..minutes {
            r.record_at(start + Duration::from_secs(m * 60), Duration::from_millis(10), None);
        }
        let t = r.timeline();
        assert!(t.points.len() <= MAX_POINTS, "{} points", t.points.len());
        assert!(t.points.len() > MAX_POINTS / 4, "{} points", t.points.len());
        assert_eq!(t.points.iter().map(|p| p.requests).sum::<u64>(), minutes);
        assert!(t.interval_s >= 3.0 * 86_400.0 / MAX_POINTS as f64, "interval {}", t.interval_s);
        assert!(t.points.windows(2).all(|w| w[0].t_s < w[1].t_s));
        assert_eq!(t.points.last().unwrap().t_s % t.interval_s, 0.0);
    }

    #[test]
    fn round_trips_as_json() {
        let r = TimelineRecorder::new(Instant::now());
        r.request(Duration::from_millis(3), Some(ErrorType::Timeout), 4, 2);
        r.delivery(Some(Duration::from_millis(12)));
        r.memory(Some(1 << 20), None);
        let t = r.timeline();
        let back: Timeline = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.points[0].deliveries, 1);
        assert_eq!(back.points[0].sessions_max, 2);
        assert_eq!(back.points[0].target_memory_bytes, Some(1 << 20));
        assert!(back.points[0].delivery_p95_ms.is_some());
    }
}
