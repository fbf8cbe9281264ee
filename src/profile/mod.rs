//! Heavy profiles. The engine (`engine.rs`) runs a population of sessions on an open-model
//! arrival schedule; a profile supplies the workload (`load.rs`: the mixed workload). This file
//! drives one run: thresholds evaluated during the run (abort on breach) and at the end, and the
//! JSON run report. Later profiles (notification stress, longevity, capability matrix) plug in
//! as other workloads and observers over the same engine.

pub mod engine;
pub mod load;
pub mod matrix;
pub mod report;
pub mod stats;
pub mod threshold;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::mcp::ClientConfig;
use engine::{EngineConfig, RunObserver};
use load::{LoadWorkload, MixEntry};
use report::{RunParams, RunReport, ThresholdResult};
use stats::{OpAccum, RunStats, Snapshot};
use threshold::{Stat, Threshold};

/// Do not abort on a breach computed over fewer requests than this (noise at the start).
pub const MIN_ABORT_SAMPLES: u64 = 20;

/// A validated load run.
#[derive(Debug, Clone)]
pub struct LoadRun {
    pub profile: String,
    pub target: String,
    pub preset: Option<String>,
    pub engine: EngineConfig,
    pub mix: Vec<MixEntry>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// How often thresholds are evaluated and progress reported during the run.
    pub tick: Duration,
}

/// A live view for progress lines.
#[derive(Debug, Clone)]
pub struct Progress {
    pub elapsed: Duration,
    pub sessions: u64,
    pub in_flight: u64,
    pub requests: u64,
    pub errors: u64,
    pub shed: u64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Resolve a threshold scope to mix indices; `None` scope is every operation.
pub fn scope_indices(mix: &[MixEntry], scope: Option<&str>) -> Result<Vec<usize>, String> {
    let Some(scope) = scope else { return Ok((0..mix.len()).collect()) };
    let hits: Vec<usize> =
        mix.iter().enumerate().filter(|(_, e)| e.name == scope || e.kind.method() == scope).map(|(i, _)| i).collect();
    if hits.is_empty() {
        let names: Vec<&str> = mix.iter().map(|e| e.name.as_str()).collect();
        return Err(format!(
            "threshold scope {scope:?} matches no operation of the mix (operations: {}; or an MCP method such as tools/call)",
            names.join(", ")
        ));
    }
    Ok(hits)
}

/// The observed value of a threshold's statistic over `acc` (shed slots count as failures).
pub fn observe(t: &Threshold, acc: &OpAccum, shed: u64) -> f64 {
    let h = &acc.latency;
    let secs = |us: u64| us as f64 / 1e6;
    let all = acc.count() + shed;
    let error_rate = if all == 0 { 0.0 } else { (acc.error_count() + shed) as f64 / all as f64 };
    match t.stat {
        Stat::Avg => h.mean() / 1e6,
        Stat::Min => secs(h.min()),
        Stat::Max => secs(h.max()),
        Stat::Percentile(p) => secs(h.value_at_quantile(p / 100.0)),
        Stat::ErrorRate => error_rate,
        Stat::SuccessRate => 1.0 - error_rate,
    }
}

/// Evaluate every threshold against a snapshot.
pub fn evaluate(thresholds: &[Threshold], mix: &[MixEntry], snap: &Snapshot) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let idx = scope_indices(mix, t.scope.as_deref()).unwrap_or_default();
            let acc = snap.merged(|i| idx.contains(&i));
            // Shed slots have no operation; they weigh on whole-run rates only.
            let shed = if t.scope.is_none() { snap.slots.shed } else { 0 };
            let observed = observe(t, &acc, shed);
            let samples = acc.count() + shed;
            ThresholdResult { threshold: t.to_string(), passed: samples == 0 || t.holds(observed), observed, samples }
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// CPU seconds (user + system) this process has used, from /proc (Linux; 100 ticks/s).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is index 0, utime is 11, stime is 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Callback receiving threshold results.
pub type ThresholdHook = Box<dyn Fn(&[ThresholdResult]) + Send + Sync>;

/// Hooks a caller gives a run.
pub struct Hooks {
    pub observer: Arc<dyn RunObserver>,
    /// Called every tick with a live view.
    pub progress: Box<dyn Fn(&Progress) + Send + Sync>,
    /// Called every tick and at the end with the threshold results so far.
    pub thresholds: ThresholdHook,
}

/// Run a load profile to its end (or abort / cancellation) and build its report.
pub async fn run_load(
    run: LoadRun,
    client: ClientConfig,
    http: reqwest::Client,
    hooks: Hooks,
    cancel: CancellationToken,
) -> RunReport {
    let started_at = unix_now();
    let stats = Arc::new(RunStats::new(run.mix.len()));
    let workload = Arc::new(LoadWorkload::new(run.mix.clone()));
    let engine_cancel = cancel.child_token();
    let engine = engine::run(
        run.engine.clone(),
        client,
        http,
        workload,
        Arc::clone(&hooks.observer),
        Arc::clone(&stats),
        engine_cancel.clone(),
    );
    tokio::pin!(engine);
    let begin = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(begin + run.tick, run.tick);
    let mut abort_reason: Option<String> = None;
    let end = loop {
        tokio::select! {
            end = &mut engine => break end,
            _ = ticker.tick() => {
                let snap = stats.snapshot();
                let results = evaluate(&run.thresholds, &run.mix, &snap);
                (hooks.thresholds)(&results);
                let total = snap.total();
                (hooks.progress)(&Progress {
                    elapsed: begin.elapsed(),
                    sessions: stats.sessions.load(std::sync::atomic::Ordering::Relaxed),
                    in_flight: stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                    requests: total.count(),
                    errors: total.error_count(),
                    shed: snap.slots.shed,
                    p95_ms: total.latency.value_at_quantile(0.95) as f64 / 1000.0,
                    p99_ms: total.latency.value_at_quantile(0.99) as f64 / 1000.0,
                });
                if run.abort_on_fail && abort_reason.is_none()
                    && let Some(breach) = results.iter().find(|r| !r.passed && r.samples >= MIN_ABORT_SAMPLES)
                {
                    tracing::warn!(threshold = %breach.threshold, observed = breach.observed, "Threshold breached; aborting the run");
                    abort_reason = Some(format!("threshold {} breached", breach.threshold));
                    engine_cancel.cancel();
                }
            }
        }
    };
    let snap = stats.snapshot();
    let results = evaluate(&run.thresholds, &run.mix, &snap);
    (hooks.thresholds)(&results);
    let shed = snap.slots.shed;
    let aborted = end.cancelled;
    if aborted && abort_reason.is_none() {
        abort_reason = Some("cancelled".into());
    }
    let plan = run.engine.plan;
    RunReport {
        format: report::REPORT_FORMAT,
        profile: run.profile,
        target: run.target,
        started_at,
        ended_at: unix_now(),
        elapsed_s: end.elapsed.as_secs_f64(),
        aborted,
        abort_reason,
        params: RunParams {
            preset: run.preset,
            clients: plan.sessions,
            rpm: plan.rpm,
            duration_s: plan.duration.as_secs_f64(),
            ramp_up_s: plan.ramp_up.as_secs_f64(),
            ramp_down_s: plan.ramp_down.as_secs_f64(),
            max_requests: run.engine.max_requests,
            max_in_flight: run.engine.max_in_flight,
            mix: run.mix.clone(),
        },
        slots: stats.slots(plan.expected_slots()),
        total: snap.total().summary(shed),
        operations: run.mix.iter().zip(&snap.ops).map(|(e, a)| (e.name.clone(), a.summary(0))).collect(),
        connect: snap.connect.summary(0),
        verdict: if results.iter().all(|r| r.passed) && !aborted { "pass" } else { "fail" }.into(),
        thresholds: results,
        client_cpu_seconds: process_cpu_seconds(),
    }
}
