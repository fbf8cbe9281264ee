//! The longevity (soak) profile: a steady population of sessions on the load profile's engine
//! and workload, churned (each session lives `session_lifetime`, a `churn` share of them end
//! without DELETE, as crashed clients do), while the target's and this process's memory are
//! snapshotted on a schedule. A leak shows as a sustained positive least-squares slope over the
//! sliding window, not as one noisy snapshot; growth is measured from the first snapshot.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::engine::{self, EngineConfig, RunObserver};
use super::load::{LoadWorkload, MixEntry};
use super::report::{self, Regression, RunReport, ThresholdOrigin, ThresholdResult, Tolerance};
use super::stats::{Outcomes, RunStats};
use super::threshold::{self, Measured, Measurements, Stat, Threshold};
use super::{Hooks, LiveRun, Population, drive, evaluate_live, process_cpu_seconds, verdict};
use crate::clock::unix_seconds;
use crate::inspect::memory::{self, MemorySeries, MemorySource};
use crate::mcp::ClientConfig;

/// A validated longevity run.
#[derive(Debug, Clone)]
pub struct LongevityRun {
    pub profile: String,
    pub target: String,
    /// The population (`session_lifetime` and `unclean_share` set) and its request schedule.
    pub engine: EngineConfig,
    pub mix: Vec<MixEntry>,
    pub thresholds: Vec<Threshold>,
    pub thresholds_origin: ThresholdOrigin,
    pub abort_on_fail: bool,
    pub tick: Duration,
    /// Where the target's memory is read; `None` samples only this process.
    pub memory: Option<MemorySource>,
    pub snapshot_interval: Duration,
    pub slope_window: Duration,
    /// Snapshots before this are recorded but left out of growth and slope (a freshly started
    /// target filling its allocator and caches is not a leak).
    pub warmup: Duration,
    /// Timeout of one target memory sample.
    pub sample_timeout: Duration,
    /// JSON-lines file the snapshots are appended to.
    pub snapshots: Option<std::path::PathBuf>,
}

/// One memory snapshot: a line of the JSON-lines file, and what the telemetry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemorySnapshot {
    /// Unix seconds.
    pub timestamp: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Taken during --warmup: not part of growth and slope.
    pub warmup: bool,
    /// Target memory; `None` without a source or when the sample failed (`target_error`).
    pub target_bytes: Option<u64>,
    /// Error class of a failed target sample.
    pub target_error: Option<String>,
    pub daemon_bytes: Option<u64>,
    pub live_sessions: u64,
    pub sessions_ended_clean: u64,
    pub sessions_ended_unclean: u64,
    pub target_growth_ratio: Option<f64>,
    pub target_slope_bytes_per_hour: Option<f64>,
    pub daemon_growth_ratio: Option<f64>,
    pub daemon_slope_bytes_per_hour: Option<f64>,
}

/// Receives every snapshot (telemetry implements it).
pub trait MemoryObserver: Send + Sync {
    fn snapshot(&self, snapshot: &MemorySnapshot);
}

/// Memory of one process over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemorySummary {
    pub samples: u64,
    pub first_bytes: Option<u64>,
    pub last_bytes: Option<u64>,
    pub min_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    /// (last - first) / first.
    pub growth_ratio: Option<f64>,
    /// Least-squares slope over the last `slope_window` of the run.
    pub slope_bytes_per_hour: Option<f64>,
}

impl MemorySummary {
    fn of(s: &MemorySeries) -> Self {
        Self {
            samples: s.count,
            first_bytes: s.first(),
            last_bytes: s.last(),
            min_bytes: s.min(),
            max_bytes: s.max(),
            growth_ratio: s.growth_ratio(),
            slope_bytes_per_hour: s.slope_bytes_per_hour(),
        }
    }
}

/// Parameters of a longevity run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LongevityParams {
    pub session_lifetime_s: f64,
    pub churn: f64,
    pub snapshot_interval_s: f64,
    pub slope_window_s: f64,
    #[serde(default)]
    pub warmup_s: f64,
    /// What was sampled (`process_resident_memory_bytes from http://...`, `VmRSS of pid N`).
    pub memory_source: Option<String>,
}

/// What a longevity run measured besides its requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LongevityResults {
    pub params: LongevityParams,
    pub sessions_ended_clean: u64,
    pub sessions_ended_unclean: u64,
    /// Sessions ended where the server kept none (stateless, or no session id): neither a
    /// DELETE nor a session left to expire.
    #[serde(default)]
    pub sessions_ended_sessionless: u64,
    pub target_memory: Option<MemorySummary>,
    pub daemon_memory: MemorySummary,
    /// Failed target samples by error class.
    pub sample_errors: BTreeMap<String, u64>,
}

/// Slope slack against a baseline: below this a short run's RSS noise, not a regression.
pub const SLOPE_FLOOR_BYTES_PER_HOUR: f64 = 10e6;
/// Growth slack against a baseline (5 percentage points).
pub const GROWTH_FLOOR: f64 = 0.05;

/// Memory regressions of `cur` against `base`: the target's slope and growth may exceed the
/// baseline's (a negative one counts as flat) by the relative tolerance plus a floor.
pub fn compare(base: &LongevityResults, cur: &LongevityResults, tol: Tolerance, out: &mut Vec<Regression>) {
    let (Some(b), Some(c)) = (&base.target_memory, &cur.target_memory) else { return };
    let pairs = [
        ("slope_bytes_per_hour", b.slope_bytes_per_hour, c.slope_bytes_per_hour, SLOPE_FLOOR_BYTES_PER_HOUR),
        ("growth_ratio", b.growth_ratio, c.growth_ratio, GROWTH_FLOOR),
    ];
    for (stat, base, cur, floor) in pairs {
        let (Some(base), Some(cur)) = (base, cur) else { continue };
        let allowed = base.max(0.0) * (1.0 + tol.latency_ratio) + floor;
        if cur > allowed {
            out.push(Regression {
                scope: "target_memory".into(),
                stat: stat.into(),
                baseline: base,
                current: cur,
                allowed,
            });
        }
    }
}

/// The memory side of a running longevity run.
struct MemoryState {
    target: MemorySeries,
    daemon: MemorySeries,
    errors: BTreeMap<String, u64>,
    /// Last samples, warm-up included (for progress lines).
    last: (Option<u64>, Option<u64>),
}

/// The memory thresholds' numbers: growth over the snapshots taken, slope over the sliding
/// window (a slope needs two snapshots; until then there is no data).
impl Measurements for MemorySeries {
    fn measure(&self, stat: Stat) -> Option<Measured> {
        let (value, samples) = match stat {
            Stat::MemoryGrowth => (self.growth_ratio()?, self.count),
            Stat::MemorySlope => (self.slope_bytes_per_hour()?, self.window_len() as u64),
            _ => return None,
        };
        Some(Measured::of(value, samples.max(1)))
    }
}

struct LongevityLive<'a> {
    run: &'a LongevityRun,
    stats: &'a RunStats,
    memory: &'a Mutex<MemoryState>,
    /// Snapshots a memory threshold needs before it may abort the run: half a slope window.
    memory_min_samples: u64,
    /// Reused for every merge of a tick, so a tick allocates no histogram.
    scratch: Mutex<Outcomes>,
}

impl LiveRun for LongevityLive<'_> {
    fn evaluate(&self) -> Vec<ThresholdResult> {
        let (memory, requests): (Vec<Threshold>, Vec<Threshold>) =
            self.run.thresholds.iter().cloned().partition(|t| t.stat.is_memory());
        let mut by_expr: BTreeMap<String, ThresholdResult> =
            evaluate_live(&requests, &self.run.mix, self.stats, &self.scratch)
                .into_iter()
                .map(|r| (r.threshold.clone(), r))
                .collect();
        let state = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        for t in &memory {
            by_expr.insert(t.to_string(), t.evaluate(&state.target));
        }
        // Keep the order the thresholds were given in.
        self.run.thresholds.iter().filter_map(|t| by_expr.remove(&t.to_string())).collect()
    }

    fn population(&self) -> Population {
        self.stats.population()
    }

    fn detail(&self) -> String {
        let Ok(mut total) = self.scratch.lock() else { return String::new() };
        self.stats.outcomes_into(|_| true, &mut total);
        let state = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let mb = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}MB", b as f64 / 1e6));
        let slope = state.target.slope_bytes_per_hour().map_or("-".to_string(), threshold::format_bytes_per_hour);
        format!(
            "requests={} errors={} ended_clean={} ended_unclean={} target={} slope={} daemon={}",
            total.count(),
            total.errors,
            self.stats.ended_clean.load(Ordering::Relaxed),
            self.stats.ended_unclean.load(Ordering::Relaxed),
            mb(state.last.0),
            slope,
            mb(state.last.1),
        )
    }

    fn min_abort_samples(&self, result: &ThresholdResult) -> u64 {
        if result.threshold.starts_with("memory_") { self.memory_min_samples } else { super::MIN_ABORT_SAMPLES }
    }
}

/// Everything the snapshot loop needs.
struct Sampler<'a> {
    run: &'a LongevityRun,
    http: reqwest::Client,
    stats: &'a RunStats,
    memory: &'a Mutex<MemoryState>,
    observer: Arc<dyn MemoryObserver>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    begin: Instant,
}

impl Sampler<'_> {
    /// Take snapshots every `snapshot_interval` (the first at once) until `stop`, then a last one.
    async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.run.snapshot_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.snapshot().await,
                _ = stop.cancelled() => break,
            }
        }
        self.snapshot().await;
    }

    async fn snapshot(&mut self) {
        let target = match &self.run.memory {
            Some(source) => Some(memory::sample(&self.http, source, self.run.sample_timeout).await),
            None => None,
        };
        let daemon = memory::self_rss();
        let elapsed = self.begin.elapsed().as_secs_f64();
        let warmup = elapsed < self.run.warmup.as_secs_f64();
        let snap = {
            let mut state = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            let mut target_error = None;
            match &target {
                Some(Ok(_)) if warmup => {}
                Some(Ok(bytes)) => state.target.push(elapsed, *bytes),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, error_type = e.error_type(), "Target memory sample failed");
                    *state.errors.entry(e.error_type().to_string()).or_default() += 1;
                    target_error = Some(e.error_type().to_string());
                }
                None => {}
            }
            state.last = (
                target.as_ref().and_then(|t| t.as_ref().ok().copied()).or(state.last.0),
                daemon.as_ref().ok().copied(),
            );
            if let Ok(bytes) = daemon
                && !warmup
            {
                state.daemon.push(elapsed, bytes);
            }
            MemorySnapshot {
                timestamp: unix_seconds(),
                elapsed_s: elapsed,
                warmup,
                target_bytes: target.and_then(Result::ok),
                target_error,
                daemon_bytes: daemon.ok(),
                live_sessions: self.stats.sessions.load(Ordering::Relaxed),
                sessions_ended_clean: self.stats.ended_clean.load(Ordering::Relaxed),
                sessions_ended_unclean: self.stats.ended_unclean.load(Ordering::Relaxed),
                target_growth_ratio: state.target.growth_ratio(),
                target_slope_bytes_per_hour: state.target.slope_bytes_per_hour(),
                daemon_growth_ratio: state.daemon.growth_ratio(),
                daemon_slope_bytes_per_hour: state.daemon.slope_bytes_per_hour(),
            }
        };
        self.stats.timeline.memory(snap.target_bytes, snap.daemon_bytes);
        self.observer.snapshot(&snap);
        if let Some(file) = &mut self.file {
            let written = serde_json::to_writer(&mut *file, &snap)
                .map_err(std::io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.flush());
            if let Err(error) = written {
                tracing::warn!(error = %error, "Snapshot not written; no further snapshots go to the file");
                self.file = None;
            }
        }
    }
}

/// Run a longevity profile to its end (or abort / cancellation) and build its report.
/// `snapshots` receives one JSON line per snapshot.
#[allow(clippy::too_many_arguments)]
pub async fn run_longevity(
    run: LongevityRun,
    client: ClientConfig,
    http: reqwest::Client,
    observer: Arc<dyn RunObserver>,
    memory_observer: Arc<dyn MemoryObserver>,
    snapshots: Option<std::fs::File>,
    hooks: Hooks,
    cancel: CancellationToken,
) -> RunReport {
    let started_at = unix_seconds();
    let stats = Arc::new(RunStats::new(run.mix.len()));
    let memory = Mutex::new(MemoryState {
        target: MemorySeries::new(run.slope_window),
        daemon: MemorySeries::new(run.slope_window),
        errors: BTreeMap::new(),
        last: (None, None),
    });
    let workload = Arc::new(LoadWorkload::new(run.mix.clone()));
    let engine_cancel = cancel.child_token();
    let sampler_stop = CancellationToken::new();
    let sampler = Sampler {
        run: &run,
        http: http.clone(),
        stats: &stats,
        memory: &memory,
        observer: memory_observer,
        file: snapshots.map(std::io::BufWriter::new),
        begin: Instant::now(),
    };
    let engine =
        engine::run(run.engine.clone(), client, http, workload, observer, Arc::clone(&stats), engine_cancel.clone());
    let work = async {
        let end = engine.await;
        sampler_stop.cancel();
        end
    };
    let per_window = (run.slope_window.as_secs_f64() / run.snapshot_interval.as_secs_f64() / 2.0).ceil() as u64;
    let live = LongevityLive {
        run: &run,
        stats: &stats,
        memory: &memory,
        memory_min_samples: per_window.max(3),
        scratch: Mutex::default(),
    };
    let (driven, ()) = tokio::join!(
        drive(work, &live, &hooks, run.tick, run.abort_on_fail, &engine_cancel),
        sampler.run(sampler_stop.clone())
    );
    // The last snapshot is in: evaluate once more so the verdict covers it.
    let thresholds = live.evaluate();
    (hooks.thresholds)(&thresholds);
    let end = driven.out;
    let snap = stats.snapshot();
    let aborted = end.cancelled;
    let plan = run.engine.plan;
    let state = memory.into_inner().unwrap_or_else(|e| e.into_inner());
    let load = super::load_results(None, &run.engine, &run.mix, &stats, &snap);
    let (verdict, verdict_reason) = verdict(&thresholds, aborted, load.total.succeeded());
    RunReport {
        format: report::REPORT_FORMAT,
        profile: run.profile.clone(),
        target: run.target.clone(),
        started_at,
        ended_at: unix_seconds(),
        elapsed_s: end.elapsed.as_secs_f64(),
        aborted,
        abort_reason: if aborted { driven.abort_reason } else { None },
        load: Some(load),
        notify: None,
        timeline: Some(stats.timeline.timeline()),
        longevity: Some(LongevityResults {
            params: LongevityParams {
                session_lifetime_s: run
                    .engine
                    .session_lifetime
                    .map_or(plan.duration.as_secs_f64(), |d| d.as_secs_f64()),
                churn: run.engine.unclean_share,
                snapshot_interval_s: run.snapshot_interval.as_secs_f64(),
                slope_window_s: run.slope_window.as_secs_f64(),
                warmup_s: run.warmup.as_secs_f64(),
                memory_source: run.memory.as_ref().map(MemorySource::describe),
            },
            sessions_ended_clean: stats.ended_clean.load(Ordering::Relaxed),
            sessions_ended_unclean: stats.ended_unclean.load(Ordering::Relaxed),
            sessions_ended_sessionless: stats.ended_sessionless.load(Ordering::Relaxed),
            target_memory: run.memory.as_ref().map(|_| MemorySummary::of(&state.target)),
            daemon_memory: MemorySummary::of(&state.daemon),
            sample_errors: state.errors,
        }),
        verdict,
        verdict_reason,
        thresholds,
        thresholds_origin: run.thresholds_origin,
        client_cpu_seconds: process_cpu_seconds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(slope: f64, growth: f64) -> LongevityResults {
        LongevityResults {
            params: LongevityParams {
                session_lifetime_s: 1.0,
                churn: 0.5,
                snapshot_interval_s: 1.0,
                slope_window_s: 10.0,
                warmup_s: 0.0,
                memory_source: None,
            },
            sessions_ended_clean: 0,
            sessions_ended_unclean: 0,
            sessions_ended_sessionless: 0,
            target_memory: Some(MemorySummary {
                slope_bytes_per_hour: Some(slope),
                growth_ratio: Some(growth),
                ..Default::default()
            }),
            daemon_memory: MemorySummary::default(),
            sample_errors: BTreeMap::new(),
        }
    }

    #[test]
    fn memory_regressions_against_a_baseline() {
        let tol = Tolerance::default();
        let mut out = Vec::new();
        // Flat baseline: noise within the floors is no regression.
        compare(&results(-2e6, 0.01), &results(8e6, 0.04), tol, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A leak appears: 64 MB/h and 30 % growth against a flat baseline.
        compare(&results(1e6, 0.02), &results(64e6, 0.3), tol, &mut out);
        let stats: Vec<&str> = out.iter().map(|r| r.stat.as_str()).collect();
        assert_eq!(stats, ["slope_bytes_per_hour", "growth_ratio"]);
        assert_eq!(out[0].allowed, 1e6 * 1.2 + 10e6);
        // A leaking baseline allows the same leak within the tolerance.
        out.clear();
        compare(&results(64e6, 0.3), &results(70e6, 0.33), tol, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    /// Growth from the first snapshot, slope over the window; no data until there is one.
    #[test]
    fn memory_series_measures_growth_and_slope() {
        let growth = Threshold::parse("memory_growth < 50%").unwrap();
        let slope = Threshold::parse("memory_slope < 10MB/h").unwrap();
        let mut series = MemorySeries::new(Duration::from_secs(3600));
        for t in [&growth, &slope] {
            assert_eq!(t.evaluate(&series).status, report::ThresholdStatus::NoData, "{t}");
        }
        series.push(0.0, 100_000_000);
        series.push(1800.0, 110_000_000);
        series.push(3600.0, 160_000_000);
        let g = growth.evaluate(&series);
        assert!((g.observed - 0.6).abs() < 1e-9, "{g:?}");
        assert_eq!((g.samples, g.status), (3, report::ThresholdStatus::Fail));
        let s = slope.evaluate(&series);
        assert!((s.observed - 60e6).abs() < 1.0, "{s:?}");
        assert_eq!((s.samples, s.status), (3, report::ThresholdStatus::Fail));
        assert!(Threshold::parse("memory_slope < 70MB/h").unwrap().evaluate(&series).passed);
        assert_eq!(series.measure(Stat::Avg), None);
    }
}
