//! The charts of each profile, from its timeline: what is drawn, not how.

use std::collections::BTreeMap;

use super::charts::{self, Band, Chart, Marker, Series};
use crate::chaos::report::ScenarioReport;
use crate::profile::timeline::{Timeline, TimelinePoint};

/// Error types drawn as their own line; the rest are summed as `other`.
const ERROR_LINES: usize = 6;
const MIB: f64 = 1024.0 * 1024.0;

/// A line of a chart: its name, what it draws of a point, its colour.
type Line = (&'static str, fn(&TimelinePoint) -> Option<f64>, plotters::style::RGBColor);

fn interval(tl: &Timeline) -> f64 {
    if tl.interval_s.is_finite() && tl.interval_s > 0.0 { tl.interval_s } else { 1.0 }
}

/// A per-second rate over the run, intervals without activity drawn as zero (the timeline
/// leaves them out). A timeline whose gaps would take more than the vertex bound is drawn
/// through its points only.
fn rate(tl: &Timeline, value: impl Fn(&TimelinePoint) -> u64) -> Vec<(f64, f64)> {
    let step = interval(tl);
    let per_s = |p: &TimelinePoint| value(p) as f64 / step;
    let last = tl.points.iter().map(|p| p.t_s).filter(|t| t.is_finite()).fold(0.0_f64, f64::max);
    let slots = (last / step).round();
    if !(0.0..charts::MAX_VERTICES as f64).contains(&slots) || tl.points.iter().any(|p| p.t_s < 0.0) {
        return tl.points.iter().map(|p| (p.t_s, per_s(p))).collect();
    }
    let mut out: Vec<(f64, f64)> = (0..=slots as usize).map(|i| (i as f64 * step, 0.0)).collect();
    for p in &tl.points {
        if let Some(slot) = out.get_mut((p.t_s / step).round() as usize) {
            slot.1 += per_s(p);
        }
    }
    out
}

/// A value that exists only in some intervals, broken into lines where it is absent.
fn gappy(tl: &Timeline, value: impl Fn(&TimelinePoint) -> Option<f64>) -> Vec<Vec<(f64, f64)>> {
    let step = interval(tl);
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut last_t = f64::NEG_INFINITY;
    for p in &tl.points {
        let Some(v) = value(p) else {
            last_t = f64::NEG_INFINITY;
            continue;
        };
        if p.t_s - last_t > step * 1.5 || segments.is_empty() {
            segments.push(Vec::new());
        }
        if let Some(seg) = segments.last_mut() {
            seg.push((p.t_s, v));
        }
        last_t = p.t_s;
    }
    segments
}

fn series(name: &str, colour: plotters::style::RGBColor, dashed: bool, segments: Vec<Vec<(f64, f64)>>) -> Series {
    Series { name: name.into(), colour, dashed, segments }
}

/// Requests per second, and the baseline's dashed.
pub fn throughput(tl: &Timeline, baseline: Option<&Timeline>) -> Chart {
    let mut c = Chart::new("Throughput", "requests/s");
    c.series.push(series("requests/s", charts::BLUE, false, vec![rate(tl, |p| p.requests)]));
    c.series.push(series("errors/s", charts::RED, false, vec![rate(tl, |p| p.errors)]));
    if let Some(b) = baseline {
        c.series.push(series("baseline requests/s", charts::GREY, true, vec![rate(b, |p| p.requests)]));
    }
    c
}

/// p50, p95 and p99 of each interval, and the baseline's dashed.
pub fn latency(tl: &Timeline, baseline: Option<&Timeline>) -> Chart {
    let mut c = Chart::new("Latency percentiles", "latency (ms)");
    let lines: [Line; 3] = [
        ("p50", |p| p.p50_ms, charts::GREEN),
        ("p95", |p| p.p95_ms, charts::ORANGE),
        ("p99", |p| p.p99_ms, charts::RED),
    ];
    for (name, value, colour) in lines {
        c.series.push(series(name, colour, false, gappy(tl, value)));
    }
    if let Some(b) = baseline {
        for (name, value, colour) in lines {
            c.series.push(series(&format!("baseline {name}"), colour, true, gappy(b, value)));
        }
    }
    c
}

/// Errors per second by type: the most frequent types, the rest as `other`.
pub fn errors(tl: &Timeline) -> Chart {
    let mut c = Chart::new("Errors by type", "errors/s");
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &tl.points {
        for (k, v) in &p.errors_by_type {
            *totals.entry(k.as_str()).or_default() += v;
        }
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = ranked.iter().take(ERROR_LINES).map(|(k, _)| *k).collect();
    for (i, name) in shown.iter().enumerate() {
        let line = rate(tl, |p| p.errors_by_type.get(*name).copied().unwrap_or(0));
        c.series.push(series(&charts::clip(name, 40), charts::PALETTE[(i + 3) % 10], false, vec![line]));
    }
    if ranked.len() > ERROR_LINES {
        let other =
            rate(tl, |p| p.errors_by_type.iter().filter(|(k, _)| !shown.contains(&k.as_str())).map(|(_, v)| *v).sum());
        c.series.push(series("other", charts::GREY, false, vec![other]));
    }
    if shown.is_empty() {
        c.series.push(series("errors/s", charts::RED, false, vec![rate(tl, |p| p.errors)]));
    }
    c
}

/// Sessions open and requests in flight (the most of each interval).
pub fn population(tl: &Timeline) -> Chart {
    let mut c = Chart::new("Sessions and requests in flight", "count");
    let at = |f: fn(&TimelinePoint) -> u64| vec![tl.points.iter().map(|p| (p.t_s, f(p) as f64)).collect()];
    c.series.push(series("sessions open", charts::PURPLE, false, at(|p| p.sessions_max)));
    c.series.push(series("requests in flight", charts::BROWN, false, at(|p| p.in_flight_max)));
    c
}

/// Notifications delivered per second.
pub fn deliveries(tl: &Timeline, baseline: Option<&Timeline>) -> Chart {
    let mut c = Chart::new("Notification deliveries", "deliveries/s");
    c.series.push(series("deliveries/s", charts::BLUE, false, vec![rate(tl, |p| p.deliveries)]));
    if let Some(b) = baseline {
        c.series.push(series("baseline deliveries/s", charts::GREY, true, vec![rate(b, |p| p.deliveries)]));
    }
    c
}

/// 95th percentile of delivery latency per interval.
pub fn delivery_latency(tl: &Timeline, baseline: Option<&Timeline>) -> Chart {
    let mut c = Chart::new("Delivery latency", "p95 delivery latency (ms)");
    c.series.push(series("delivery p95", charts::ORANGE, false, gappy(tl, |p| p.delivery_p95_ms)));
    if let Some(b) = baseline {
        c.series.push(series("baseline delivery p95", charts::ORANGE, true, gappy(b, |p| p.delivery_p95_ms)));
    }
    c
}

/// Least-squares line through the points: (intercept, slope per second).
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let slope = sxy / sxx;
    Some((my - slope * mx, slope)).filter(|(a, b)| a.is_finite() && b.is_finite())
}

/// Memory of the target and of this process in MiB, a chart each (scaled to its data, so a
/// slow leak shows), warm-up shaded, each with the least-squares line over its post-warm-up
/// points; returns each chart's id, the chart and its fitted slope in MiB per hour.
pub fn memory(tl: &Timeline, warmup_s: f64) -> Vec<(&'static str, Chart, Option<f64>)> {
    let mut out = Vec::new();
    let end = tl.points.iter().map(|p| p.t_s).filter(|t| t.is_finite()).fold(0.0, f64::max);
    type Process = (&'static str, &'static str, fn(&TimelinePoint) -> Option<u64>);
    let lines: [Process; 2] = [
        ("memory-target", "Target memory", |p| p.target_memory_bytes),
        ("memory-mcp-canary", "mcp-canary memory", |p| p.daemon_memory_bytes),
    ];
    for (id, title, value) in lines {
        let segs = gappy(tl, |p| value(p).map(|b| b as f64 / MIB));
        if segs.iter().all(Vec::is_empty) {
            continue;
        }
        let mut c = Chart::new(title, "memory (MiB)");
        c.y_fit = true;
        if warmup_s > 0.0 && warmup_s.is_finite() {
            c.bands.push(Band {
                name: "warm-up".into(),
                from: 0.0,
                to: warmup_s.min(end.max(warmup_s)),
                colour: charts::GREY,
            });
        }
        let after: Vec<(f64, f64)> = segs.iter().flatten().copied().filter(|(t, _)| *t >= warmup_s).collect();
        c.series.push(series("memory", charts::BLUE, false, segs));
        let mut slope = None;
        if let Some((a, b)) = fit(&after) {
            let from = after.first().map_or(warmup_s, |p| p.0);
            let to = after.last().map_or(end, |p| p.0);
            let line = vec![vec![(from, a + b * from), (to, a + b * to)]];
            c.series.push(series("least-squares fit after warm-up", charts::RED, true, line));
            slope = Some(b * 3600.0);
        }
        out.push((id, c, slope));
    }
    out
}

/// Shade each scenario's fault (red) and recovery (green) window, mark where the fault was
/// detected and where the target recovered.
pub fn chaos_marks(c: &mut Chart, scenarios: &[ScenarioReport]) {
    for s in scenarios {
        let Some(fault) = s.fault_started_s else { continue };
        let recovery = s.recovery_started_s.unwrap_or(fault + s.fault_window_s);
        c.bands.push(Band { name: "fault window".into(), from: fault, to: recovery, colour: charts::RED });
        c.bands.push(Band {
            name: "recovery window".into(),
            from: recovery,
            to: recovery + s.recovery_window_s,
            colour: charts::GREEN,
        });
        if let Some(d) = s.detect_s {
            c.markers.push(Marker { name: "detected".into(), at: fault + d, colour: charts::PURPLE });
        }
        if let Some(r) = s.recover_s.filter(|_| s.recovered) {
            c.markers.push(Marker { name: "recovered".into(), at: recovery + r, colour: charts::CYAN });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, requests: u64) -> TimelinePoint {
        TimelinePoint { t_s, requests, p95_ms: Some(1.0), ..TimelinePoint::default() }
    }

    #[test]
    fn quiet_intervals_are_zero_throughput_and_break_latency_lines() {
        let tl = Timeline { interval_s: 2.0, points: vec![point(0.0, 4), point(6.0, 8)] };
        assert_eq!(rate(&tl, |p| p.requests), vec![(0.0, 2.0), (2.0, 0.0), (4.0, 0.0), (6.0, 4.0)]);
        assert_eq!(gappy(&tl, |p| p.p95_ms).len(), 2);
    }

    #[test]
    fn a_hostile_timeline_is_drawn_through_its_points_only() {
        let tl = Timeline { interval_s: 0.0, points: vec![point(0.0, 1), point(1e12, 1)] };
        assert_eq!(rate(&tl, |p| p.requests).len(), 2);
    }

    #[test]
    fn the_fit_finds_the_slope() {
        let (a, b) = fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((a - 1.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9);
        assert!(fit(&[(1.0, 1.0)]).is_none());
    }
}
