//! Detection and recovery of each scenario, from every operation's end: the first failed or
//! slow one after a fault starts is its detection; after its end, the first of `sustain` good
//! ones in a row its recovery. With `abort_on_fail` the run driver judges these times as soon as
//! they are settled.

use super::*;

/// Detect and recovery tracking of one scenario.
#[derive(Default)]
pub(super) struct Detector {
    pub(super) fault_start: Option<Instant>,
    pub(super) fault_end: Option<Instant>,
    pub(super) detect: Option<(Duration, &'static str)>,
    streak_start: Option<Instant>,
    streak: u32,
    pub(super) recovered: Option<Duration>,
    pub(super) closed: bool,
}

impl Detector {
    /// One operation ended at `at`; `bad` says why it was not good (`error`, `latency`). The
    /// first bad one after the fault's start is the detection; after the fault's end, the first
    /// of `sustain` good ones in a row is the recovery.
    pub(super) fn observe(&mut self, at: Instant, bad: Option<&'static str>, sustain: u32) {
        if self.closed {
            return;
        }
        if let (Some(start), Some(how)) = (self.fault_start, bad)
            && self.detect.is_none()
            && at >= start
        {
            self.detect = Some((at - start, how));
        }
        let Some(end) = self.fault_end else { return };
        if at < end || self.recovered.is_some() {
            return;
        }
        if bad.is_some() {
            self.streak_start = None;
            self.streak = 0;
            return;
        }
        let first = *self.streak_start.get_or_insert(at);
        self.streak += 1;
        if self.streak >= sustain.max(1) {
            self.recovered = Some(first.saturating_duration_since(end));
        }
    }
}

impl Detector {
    /// A detect or recovery time as far as known at `now`: the final value (`may_pass` false
    /// when the detector closed without it), or `None` while it may still pass. A time still
    /// running is breached beyond doubt once its lower bound breaks a `<` or `<=` limit:
    /// operations end at `now` or later, and a recovery streak under way starts no earlier.
    fn live(&self, t: &Threshold, window: Duration, now: Instant) -> Option<Measured> {
        let (known, from, bound) = match t.stat {
            Stat::DetectTime => (self.detect.map(|(d, _)| d), self.fault_start?, now),
            Stat::RecoveryTime => (self.recovered, self.fault_end?, self.streak_start.unwrap_or(now)),
            _ => return None,
        };
        if let Some(d) = known {
            return Some(Measured::of(d.as_secs_f64(), 1));
        }
        if self.closed {
            return Some(Measured { value: window.as_secs_f64(), samples: 1, may_pass: false });
        }
        let lower = bound.saturating_duration_since(from).as_secs_f64();
        (matches!(t.cmp, Cmp::Lt | Cmp::Le) && !t.holds(lower)).then_some(Measured {
            value: lower,
            samples: 1,
            may_pass: false,
        })
    }
}

/// (fault started, detection, recovery) of a detector.
pub(super) fn snapshot(d: &Detector) -> (bool, Option<(Duration, &'static str)>, Option<Duration>) {
    (d.fault_start.is_some(), d.detect, d.recovered)
}

/// A count that only grows (sessions lost in a scenario's windows) as far as it settles a
/// threshold: once it breaks a `<`, `<=` or `==` limit it stays broken; otherwise `None`.
fn settled_count(t: &Threshold, count: u64) -> Option<Measured> {
    let value = count as f64;
    (matches!(t.cmp, Cmp::Lt | Cmp::Le | Cmp::Eq) && !t.holds(value)).then_some(Measured {
        value,
        samples: 1,
        may_pass: false,
    })
}

/// What the run driver sees of a chaos run: the detect and recovery times and the sessions lost
/// as far as they settle a threshold (only with `abort_on_fail`; the report judges every
/// threshold at the end).
pub(super) struct ChaosLive<'a> {
    pub(super) ctx: &'a Ctx,
}

impl LiveRun for ChaosLive<'_> {
    fn evaluate(&self) -> Vec<ThresholdResult> {
        let run = &self.ctx.run;
        if !run.abort_on_fail {
            return Vec::new();
        }
        let Ok(detectors) = self.ctx.detectors.lock() else { return Vec::new() };
        let now = Instant::now();
        let mut out = Vec::new();
        let settles = |t: &&Threshold| matches!(t.stat, Stat::DetectTime | Stat::RecoveryTime | Stat::SessionsLost);
        for t in run.thresholds.iter().filter(settles) {
            for (i, (s, d)) in run.scenarios.iter().zip(detectors.iter()).enumerate() {
                if t.scope.as_deref().is_some_and(|scope| scope != s.name) {
                    continue;
                }
                let measured = match t.stat {
                    Stat::SessionsLost => {
                        let lost = |p: usize| self.ctx.phases.get(p).map_or(0, |p| p.lost.load(Ordering::Relaxed));
                        settled_count(t, lost(2 * i + 1) + lost(2 * i + 2))
                    }
                    Stat::DetectTime => d.live(t, s.fault, now),
                    _ => d.live(t, s.recovery, now),
                };
                let unscoped = Threshold { scope: None, ..t.clone() };
                out.push(t.judge_as(format!("{}:{unscoped}", s.name), measured));
            }
        }
        out
    }

    fn population(&self) -> Population {
        self.ctx.population.population()
    }

    fn detail(&self) -> String {
        format!("phase={}", self.ctx.phase())
    }

    fn min_abort_samples(&self, _result: &ThresholdResult) -> u64 {
        // A time or a count is one sample, settled when it is judged at all.
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_times_detection_and_sustained_recovery() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut d = Detector { fault_start: Some(at(1000)), ..Detector::default() };
        d.observe(at(500), Some("error"), 3); // before the fault: not a detection
        d.observe(at(1100), None, 3);
        d.observe(at(1250), Some("latency"), 3);
        d.observe(at(1300), Some("error"), 3);
        assert_eq!(d.detect, Some((Duration::from_millis(250), "latency")));
        d.fault_end = Some(at(2000));
        d.observe(at(2100), None, 3);
        d.observe(at(2200), None, 3);
        d.observe(at(2300), Some("error"), 3); // the streak breaks
        for ms in [2400, 2500] {
            d.observe(at(ms), None, 3);
        }
        assert_eq!(d.recovered, None);
        d.observe(at(2600), None, 3);
        assert_eq!(d.recovered, Some(Duration::from_millis(400)));
        d.observe(at(2700), Some("error"), 3); // recovered stays recovered
        assert_eq!(d.recovered, Some(Duration::from_millis(400)));
        d.closed = true;
        let before = d.detect;
        d.observe(at(2800), Some("error"), 3);
        assert_eq!(d.detect, before);
    }

    /// Live judgement for abort_on_fail: nothing until a time is settled or its lower bound
    /// already breaks the limit; a streak under way bounds a recovery from below, not `now`.
    #[test]
    fn detector_settles_times_only_beyond_doubt() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let th = |e: &str| Threshold::parse(e).unwrap();
        let (recovery, detect) = (th("recovery_time < 1s"), th("detect_time <= 500ms"));
        let window = Duration::from_secs(10);
        let mut d = Detector { fault_start: Some(at(0)), ..Detector::default() };
        assert_eq!(d.live(&recovery, window, at(5000)), None, "the fault has not ended");
        assert_eq!(d.live(&detect, window, at(400)), None, "may still be detected in time");
        let late = d.live(&detect, window, at(600)).unwrap();
        assert_eq!((late.value, late.samples, late.may_pass), (0.6, 1, false));
        assert_eq!(d.live(&th("detect_time > 500ms"), window, at(600)), None, "a lower bound settles < and <= only");
        d.observe(at(700), Some("error"), 2);
        assert_eq!(d.live(&detect, window, at(900)), Some(Measured::of(0.7, 1)));
        d.fault_end = Some(at(1000));
        assert_eq!(d.live(&recovery, window, at(1900)), None);
        d.observe(at(1800), None, 2); // a streak starts 0.8 s after the end
        assert_eq!(d.live(&recovery, window, at(2500)), None, "the streak may still complete in time");
        d.observe(at(2100), Some("error"), 2); // and breaks
        let breached = d.live(&recovery, window, at(2100)).unwrap();
        assert!(!breached.may_pass && (breached.value - 1.1).abs() < 1e-9, "{breached:?}");
        d.observe(at(2200), None, 2);
        d.observe(at(2300), None, 2);
        assert_eq!(d.live(&recovery, window, at(2400)), Some(Measured::of(1.2, 1)), "settled: recovered late");
        let closed =
            Detector { fault_start: Some(at(0)), fault_end: Some(at(1000)), closed: true, ..Detector::default() };
        let never = closed.live(&th("recovery_time < 30s"), window, at(1001)).unwrap();
        assert_eq!((never.value, never.may_pass), (10.0, false), "closed unrecovered: the whole window, failed");
        assert_eq!(closed.live(&th("sessions_lost == 0"), window, at(1001)), None);
    }

    /// Sessions lost only grow: a count past a `<`, `<=` or `==` limit is settled, one within
    /// it, or any count against `>`/`>=`, is not (yet).
    #[test]
    fn lost_sessions_settle_upper_limits_only() {
        let th = |e: &str| Threshold::parse(e).unwrap();
        assert_eq!(settled_count(&th("sessions_lost == 0"), 0), None);
        assert_eq!(
            settled_count(&th("sessions_lost == 0"), 1),
            Some(Measured { value: 1.0, samples: 1, may_pass: false })
        );
        assert_eq!(settled_count(&th("sessions_lost <= 3"), 3), None);
        assert!(settled_count(&th("sessions_lost <= 3"), 4).is_some());
        assert!(settled_count(&th("sessions_lost < 3"), 3).is_some());
        assert_eq!(settled_count(&th("sessions_lost >= 3"), 0), None);
        assert_eq!(settled_count(&th("sessions_lost > 0"), 0), None);
        let r = th("sessions_lost == 0")
            .judge_as("kill:sessions_lost==0".into(), settled_count(&th("sessions_lost == 0"), 2));
        assert_eq!((r.status.as_str(), r.observed), ("fail", 2.0));
    }
}
