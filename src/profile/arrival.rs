//! Open-model arrival schedule: the intended start instant of every request slot, as offsets
//! from the start of a run. Pure maths; the profile engine sleeps until each slot and measures
//! latency from it, whether or not earlier requests finished.

use std::time::Duration;

/// Shape of a run: a population ramped up, held, then ramped down, each session issuing
/// requests at a fixed rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrivalPlan {
    pub sessions: u32,
    /// Requests per minute per session.
    pub rpm: f64,
    /// Total length of the run, ramps included.
    pub duration: Duration,
    /// Sessions join evenly over this span from the start.
    pub ramp_up: Duration,
    /// Sessions leave evenly over this span before the end.
    pub ramp_down: Duration,
}

/// When one session lives and when its slots fall, relative to the run start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionSchedule {
    /// The session connects here.
    pub start: Duration,
    /// The first slot (after `start`, phase-shifted so sessions do not fire together).
    pub first: Duration,
    /// No slot at or after this offset.
    pub stop: Duration,
    pub period: Duration,
}

impl ArrivalPlan {
    /// Time between two slots of one session.
    pub fn period(&self) -> Duration {
        if self.rpm <= 0.0 { Duration::MAX } else { Duration::from_secs_f64(60.0 / self.rpm) }
    }

    /// Schedule of session `index` (0-based, `index < sessions`).
    ///
    /// Session `i` joins at `ramp_up * i / n`, fires its first slot a further `period * i / n`
    /// later (an even phase spread), and leaves at `duration - ramp_down * (n - 1 - i) / n`,
    /// so the last to join leaves last.
    pub fn session(&self, index: u32) -> SessionSchedule {
        let n = f64::from(self.sessions.max(1));
        let i = f64::from(index);
        let period = self.period();
        let start = self.ramp_up.mul_f64(i / n);
        let phase = if period == Duration::MAX { Duration::ZERO } else { period.mul_f64(i / n) };
        let leave_early = self.ramp_down.mul_f64((n - 1.0 - i).max(0.0) / n);
        SessionSchedule { start, first: start + phase, stop: self.duration.saturating_sub(leave_early), period }
    }

    /// Slots the whole plan intends to issue (before any request-count bound).
    pub fn expected_slots(&self) -> u64 {
        (0..self.sessions).map(|i| self.session(i).slot_count()).sum()
    }

    /// Aggregate intended request rate at full population, requests per second.
    pub fn peak_rate(&self) -> f64 {
        f64::from(self.sessions) * self.rpm / 60.0
    }
}

impl SessionSchedule {
    /// Offset of slot `k`, or `None` once past `stop`.
    pub fn slot(&self, k: u64) -> Option<Duration> {
        if self.period == Duration::MAX {
            return None;
        }
        let at = self.first.checked_add(self.period.checked_mul(u32::try_from(k).ok()?)?)?;
        (at < self.stop).then_some(at)
    }

    /// Number of slots in `[first, stop)`.
    pub fn slot_count(&self) -> u64 {
        if self.period == Duration::MAX || self.first >= self.stop {
            return 0;
        }
        let span = (self.stop - self.first).as_nanos();
        let p = self.period.as_nanos().max(1);
        span.div_ceil(p) as u64
    }

    /// The first slot not before `elapsed` (where a session that fell behind resumes), so slots
    /// in between are skipped rather than fired in a burst.
    pub fn next_slot_at_or_after(&self, elapsed: Duration) -> u64 {
        if elapsed <= self.first || self.period == Duration::MAX {
            return 0;
        }
        (elapsed - self.first).as_nanos().div_ceil(self.period.as_nanos().max(1)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sessions: u32, rpm: f64, secs: u64, up: u64, down: u64) -> ArrivalPlan {
        ArrivalPlan {
            sessions,
            rpm,
            duration: Duration::from_secs(secs),
            ramp_up: Duration::from_secs(up),
            ramp_down: Duration::from_secs(down),
        }
    }

    #[test]
    fn constant_rate_counts_match_clients_times_rate_times_duration() {
        let p = plan(10, 60.0, 10, 0, 0);
        assert_eq!(p.period(), Duration::from_secs(1));
        assert_eq!(p.expected_slots(), 100);
        assert_eq!(p.peak_rate(), 10.0);
        let p = plan(100, 10.0, 300, 0, 0);
        assert_eq!(p.expected_slots(), 100 * 50);
    }

    #[test]
    fn slots_are_evenly_spaced_and_phase_spread() {
        let p = plan(4, 60.0, 3, 0, 0);
        let s0 = p.session(0);
        let s1 = p.session(1);
        assert_eq!(s0.slot(0), Some(Duration::ZERO));
        assert_eq!(s0.slot(1), Some(Duration::from_secs(1)));
        assert_eq!(s0.slot(3), None);
        assert_eq!(s1.slot(0), Some(Duration::from_millis(250)));
        assert_eq!(s1.slot(2), Some(Duration::from_millis(2250)));
        assert_eq!(s1.slot_count(), 3);
    }

    #[test]
    fn ramps_join_and_leave_evenly() {
        let p = plan(4, 60.0, 20, 8, 4);
        let starts: Vec<_> = (0..4).map(|i| p.session(i).start.as_secs_f64()).collect();
        assert_eq!(starts, [0.0, 2.0, 4.0, 6.0]);
        let stops: Vec<_> = (0..4).map(|i| p.session(i).stop.as_secs_f64()).collect();
        assert_eq!(stops, [17.0, 18.0, 19.0, 20.0]);
        // Fewer slots than the flat plan: the ramps trade load for a gentle start and end.
        assert!(p.expected_slots() < plan(4, 60.0, 20, 0, 0).expected_slots());
        for i in 0..4 {
            let s = p.session(i);
            assert_eq!(s.slot_count(), (0..).take_while(|k| s.slot(*k).is_some()).count() as u64);
        }
    }

    #[test]
    fn zero_rate_and_empty_windows_issue_nothing() {
        assert_eq!(plan(3, 0.0, 10, 0, 0).expected_slots(), 0);
        let p = plan(2, 60.0, 1, 0, 0);
        let s = SessionSchedule { first: Duration::from_secs(2), ..p.session(0) };
        assert_eq!(s.slot_count(), 0);
        assert_eq!(s.slot(0), None);
    }

    #[test]
    fn a_session_behind_resumes_at_the_next_future_slot() {
        let s = plan(1, 600.0, 10, 0, 0).session(0);
        assert_eq!(s.next_slot_at_or_after(Duration::ZERO), 0);
        assert_eq!(s.next_slot_at_or_after(Duration::from_millis(100)), 1);
        assert_eq!(s.next_slot_at_or_after(Duration::from_millis(350)), 4);
    }
}
