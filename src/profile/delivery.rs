//! The one delivery tracker, shared by the notify and chaos profiles: which numbered broadcasts
//! each session received (the first receipt counts; again is a duplicate, after a later one out
//! of order), the sessions that got each broadcast, and send-to-receive latency (HdrHistogram).
//! A broadcast's number comes from its nonce (`nonce.rs`); what triggers it is the profile's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::notify::NotifyObserver;
use super::replicas::ReplicaDelivery;
use super::stats::new_histogram;
use super::threshold::Deliveries;

/// What one session got.
struct SessionLog {
    seen: Vec<bool>,
    highest: Option<usize>,
    /// The replica that answered the stream's GET, when the run tags replicas.
    replica: Option<String>,
}

/// Deliveries of up to `broadcasts` numbered broadcasts to a fixed population of sessions.
pub struct DeliveryTracker {
    sessions: Vec<Mutex<SessionLog>>,
    /// Sessions that received each broadcast.
    per_broadcast: Vec<AtomicU64>,
    latency: Mutex<Histogram<u64>>,
    /// Broadcasts triggered so far (the profile counts them).
    pub broadcasts: AtomicU64,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_order: AtomicU64,
    /// When the trigger of each broadcast was sent (for a latency without the target's stamp).
    pub sent: Vec<OnceLock<Instant>>,
    /// Deliveries interval by interval, for the report's charts.
    pub timeline: super::timeline::TimelineRecorder,
}

/// Counts and percentiles at one instant.
pub struct Tally {
    pub expected: u64,
    pub received: u64,
    pub latency: Histogram<u64>,
}

impl Tally {
    /// What thresholds read: delivery and send-to-receive latency.
    pub fn deliveries(&self) -> Deliveries<'_> {
        Deliveries { expected: self.expected, received: self.received, latency: Some(&self.latency) }
    }

    /// received / expected; 1 when nothing was expected.
    pub fn delivery(&self) -> f64 {
        self.deliveries().ratio()
    }
}

impl DeliveryTracker {
    pub fn new(sessions: u32, broadcasts: u64) -> Self {
        let log = || Mutex::new(SessionLog { seen: vec![false; broadcasts as usize], highest: None, replica: None });
        Self {
            sessions: (0..sessions).map(|_| log()).collect(),
            per_broadcast: (0..broadcasts).map(|_| AtomicU64::new(0)).collect(),
            latency: Mutex::new(new_histogram()),
            broadcasts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            sent: (0..broadcasts).map(|_| OnceLock::new()).collect(),
            timeline: super::timeline::TimelineRecorder::new(std::time::Instant::now()),
        }
    }

    /// Record that `session` received broadcast `index`, `latency` after it was sent; true when
    /// it is the session's first receipt of a broadcast of the run.
    pub fn receive(
        &self,
        session: usize,
        index: usize,
        latency: Option<Duration>,
        observer: &dyn NotifyObserver,
    ) -> bool {
        let Some(slot) = self.sessions.get(session) else { return false };
        let Ok(mut log) = slot.lock() else { return false };
        let Some(seen) = log.seen.get_mut(index) else { return false };
        if *seen {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            observer.duplicate();
            return false;
        }
        *seen = true;
        if log.highest.is_some_and(|h| h > index) {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
            observer.out_of_order();
        }
        log.highest = log.highest.max(Some(index));
        drop(log);
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.per_broadcast.get(index) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(latency) = latency
            && let Ok(mut h) = self.latency.lock()
        {
            h.saturating_record((latency.as_micros() as u64).max(1));
        }
        self.timeline.delivery(latency);
        observer.delivered(latency);
        true
    }

    /// Sessions that received broadcast `index`.
    pub fn received_by(&self, index: usize) -> u64 {
        self.per_broadcast.get(index).map_or(0, |n| n.load(Ordering::Relaxed))
    }

    /// Mark `session`'s stream as held by `replica` (runs that tag replicas).
    pub fn tag_replica(&self, session: usize, replica: String) {
        if let Some(Ok(mut log)) = self.sessions.get(session).map(|s| s.lock()) {
            log.replica = Some(replica);
        }
    }

    /// Expected (`sessions` x broadcasts triggered), received, and the latency so far.
    pub fn tally(&self, sessions: u32) -> Tally {
        Tally {
            expected: u64::from(sessions) * self.broadcasts.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            latency: self.latency.lock().map(|h| h.clone()).unwrap_or_else(|_| new_histogram()),
        }
    }

    /// Deliveries of the first `broadcasts` broadcasts by the replica holding each tagged stream.
    pub fn by_replica(&self, broadcasts: u64) -> BTreeMap<String, ReplicaDelivery> {
        let mut out = BTreeMap::<String, ReplicaDelivery>::new();
        for slot in &self.sessions {
            let Ok(log) = slot.lock() else { continue };
            let Some(replica) = &log.replica else { continue };
            let d = out.entry(replica.clone()).or_default();
            d.sessions += 1;
            d.expected += broadcasts;
            d.received += log.seen.iter().take(broadcasts as usize).filter(|got| **got).count() as u64;
        }
        for d in out.values_mut() {
            d.delivery_ratio = if d.expected == 0 { 1.0 } else { d.received as f64 / d.expected as f64 };
        }
        out
    }

    /// Sessions that missed any of the first `broadcasts` broadcasts.
    pub fn sessions_missing_any(&self, broadcasts: u64) -> u64 {
        let n = broadcasts as usize;
        self.sessions.iter().filter(|s| s.lock().map(|l| l.seen.iter().take(n).any(|got| !got)).unwrap_or(true)).count()
            as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::notify::NoNotifyObserver;

    #[test]
    fn counts_duplicates_order_misses_and_receipts_per_broadcast() {
        let t = DeliveryTracker::new(2, 3);
        t.broadcasts.store(3, Ordering::Relaxed);
        let o = NoNotifyObserver;
        let ms = Some(Duration::from_millis(1));
        assert!(t.receive(0, 0, ms, &o));
        assert!(t.receive(0, 2, ms, &o));
        assert!(t.receive(0, 1, ms, &o)); // after 2: out of order
        assert!(!t.receive(0, 1, ms, &o)); // again: duplicate
        assert!(t.receive(1, 0, None, &o));
        assert!(!t.receive(1, 9, None, &o)); // unknown index: ignored
        assert!(!t.receive(7, 0, None, &o)); // unknown session: ignored
        let tally = t.tally(2);
        assert_eq!((tally.expected, tally.received), (6, 4));
        assert!((tally.delivery() - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(t.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(t.out_of_order.load(Ordering::Relaxed), 1);
        assert_eq!(t.sessions_missing_any(3), 1);
        assert_eq!(t.sessions_missing_any(1), 0);
        assert_eq!(tally.latency.len(), 3, "deliveries with a send stamp");
        assert_eq!([t.received_by(0), t.received_by(1), t.received_by(2), t.received_by(9)], [2, 1, 1, 0]);
        t.tag_replica(1, "b".into());
        let by = t.by_replica(3);
        assert_eq!(by.len(), 1);
        assert_eq!((by["b"].sessions, by["b"].expected, by["b"].received), (1, 3, 1));
    }
}
