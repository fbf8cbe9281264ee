//! Heavy profiles. The engine (`engine.rs`) runs a population of sessions on an open-model
//! arrival schedule; a profile supplies the workload (`load.rs`: the mixed workload). This file
//! drives one run: thresholds evaluated during the run (abort on breach) and at the end, and the
//! JSON run report. `drive` is the one run driver every profile goes through; `notify.rs` is the
//! notification-stress profile (sessions holding streams, broadcasts triggered in batches).

pub mod arrival;
pub mod delivery;
pub mod engine;
pub mod load;
pub mod longevity;
pub mod matrix;
pub mod nonce;
pub mod notify;
pub mod params;
pub mod per_session;
pub mod replicas;
pub mod report;
pub mod stats;
pub mod threshold;
pub mod timeline;

use crate::clock::unix_seconds;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::mcp::ClientConfig;
use engine::{EngineConfig, RunObserver};
use load::{LoadWorkload, MixEntry};
use report::{LoadResults, RunParams, RunReport, ThresholdOrigin, ThresholdResult};
use stats::{Outcomes, RunStats, Snapshot};
use threshold::Threshold;

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
    pub thresholds_origin: ThresholdOrigin,
    pub abort_on_fail: bool,
    /// How often thresholds are evaluated and progress reported during the run.
    pub tick: Duration,
    /// Memory sampled during the ramp (and session keys looked up after the run).
    pub memory: Option<per_session::MemoryProbe>,
}

/// A live view for progress lines: the population, and a profile-specific summary.
#[derive(Debug, Clone)]
pub struct Progress {
    pub elapsed: Duration,
    pub population: Population,
    /// Profile-specific `key=value` pairs (requests and percentiles, deliveries, ...).
    pub detail: String,
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

/// What a threshold reads of `acc`: its requests, with `shed` slots counted as failed requests.
pub fn requests(acc: &Outcomes, shed: u64) -> threshold::Requests<'_> {
    threshold::Requests { latency: &acc.latency, requests: acc.count() + shed, failed: acc.errors + shed }
}

/// Evaluate every threshold against a snapshot.
pub fn evaluate(thresholds: &[Threshold], mix: &[MixEntry], snap: &Snapshot) -> Vec<ThresholdResult> {
    let mut acc = Outcomes::default();
    evaluate_with(thresholds, mix, snap.slots.shed, &mut acc, |pick, out| snap.outcomes_into(pick, out))
}

/// Evaluate every threshold against the live accumulators, merging into `scratch` (a run's
/// live view calls this on every tick).
fn evaluate_live(
    thresholds: &[Threshold],
    mix: &[MixEntry],
    stats: &RunStats,
    scratch: &std::sync::Mutex<Outcomes>,
) -> Vec<ThresholdResult> {
    if thresholds.is_empty() {
        return Vec::new();
    }
    let Ok(mut acc) = scratch.lock() else { return Vec::new() };
    let shed = stats.shed.load(Ordering::Relaxed);
    evaluate_with(thresholds, mix, shed, &mut acc, |pick, out| stats.outcomes_into(pick, out))
}

/// Evaluate every threshold; `merge(pick, out)` fills `out` with the picked operations merged.
fn evaluate_with(
    thresholds: &[Threshold],
    mix: &[MixEntry],
    shed: u64,
    acc: &mut Outcomes,
    merge: impl Fn(&dyn Fn(usize) -> bool, &mut Outcomes),
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let idx = scope_indices(mix, t.scope.as_deref()).unwrap_or_default();
            merge(&|i| idx.contains(&i), acc);
            // Shed slots have no operation; they weigh on whole-run rates only.
            let shed = if t.scope.is_none() { shed } else { 0 };
            t.evaluate(&requests(acc, shed))
        })
        .collect()
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
    /// Called every tick with the live population.
    pub population: Box<dyn Fn(Population) + Send + Sync>,
    /// Progress lines, if the caller prints any.
    pub progress: Option<ProgressLines>,
    /// Called every tick and at the end with the threshold results so far.
    pub thresholds: ThresholdHook,
}

impl Hooks {
    /// Hooks that ignore everything.
    pub fn none() -> Self {
        Self { population: Box::new(|_| {}), progress: None, thresholds: Box::new(|_| {}) }
    }
}

/// Where progress lines go and how often: the live view behind a line (percentiles merged over
/// every operation) is built only when one is printed.
pub struct ProgressLines {
    pub every: Duration,
    pub print: Box<dyn Fn(&Progress) + Send + Sync>,
}

/// Sessions open and requests in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Population {
    pub sessions: u64,
    pub in_flight: u64,
}

/// What the run driver asks a running profile.
pub trait LiveRun: Send + Sync {
    /// Threshold results over what the run measured so far (every tick).
    fn evaluate(&self) -> Vec<ThresholdResult>;
    /// The live population (every tick; two counters, no merging).
    fn population(&self) -> Population;
    /// Profile-specific `key=value` pairs of a progress line (requests and percentiles,
    /// deliveries, ...), built only when a line is printed.
    fn detail(&self) -> String;
    /// Samples a threshold result must cover before it may abort the run.
    fn min_abort_samples(&self, _result: &ThresholdResult) -> u64 {
        MIN_ABORT_SAMPLES
    }
}

/// How a driven run ended.
pub struct Driven<T> {
    /// What the profile's work returned.
    pub out: T,
    /// Threshold results at the end.
    pub thresholds: Vec<ThresholdResult>,
    /// Why the run ended early (a threshold breach or cancellation), if it did.
    pub abort_reason: Option<String>,
}

/// The one run driver shared by every profile: runs `work` to its end while evaluating the
/// thresholds and reporting the population every `tick` (and a progress line as often as the
/// hooks ask); with `abort_on_fail`, the first breach over enough samples cancels `work_cancel`
/// (the work then winds down and returns).
pub async fn drive<T>(
    work: impl std::future::Future<Output = T>,
    live: &dyn LiveRun,
    hooks: &Hooks,
    tick: Duration,
    abort_on_fail: bool,
    work_cancel: &CancellationToken,
) -> Driven<T> {
    tokio::pin!(work);
    let begin = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(begin + tick, tick);
    let mut last_line = begin;
    let mut abort_reason: Option<String> = None;
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = ticker.tick() => {
                let results = live.evaluate();
                (hooks.thresholds)(&results);
                let population = live.population();
                (hooks.population)(population);
                // Within half a tick of due: a line every `every` even when ticks jitter.
                if let Some(lines) = &hooks.progress
                    && last_line.elapsed() + tick / 2 >= lines.every
                {
                    last_line = tokio::time::Instant::now();
                    (lines.print)(&Progress { elapsed: begin.elapsed(), population, detail: live.detail() });
                }
                if abort_on_fail && abort_reason.is_none()
                    && let Some(breach) = results.iter().find(|r| !r.passed && r.samples >= live.min_abort_samples(r))
                {
                    tracing::warn!(threshold = %breach.threshold, observed = breach.observed, "Threshold breached; aborting the run");
                    abort_reason = Some(format!("threshold {} breached", breach.threshold));
                    work_cancel.cancel();
                }
            }
        }
    };
    let thresholds = live.evaluate();
    (hooks.thresholds)(&thresholds);
    if work_cancel.is_cancelled() && abort_reason.is_none() {
        abort_reason = Some("cancelled".into());
    }
    Driven { out, thresholds, abort_reason }
}

/// Why a run in which nothing succeeded fails (the report's `verdict_reason`).
pub const NOTHING_SUCCEEDED: &str = "nothing succeeded";

/// The verdict of a run, and the reason when no threshold gives it: every threshold must pass
/// (`no_data` never does), an aborted run fails, and a run in which nothing succeeded
/// (`succeeded` is 0: requests, or deliveries for notify) never passes, whatever its thresholds.
pub fn verdict(thresholds: &[ThresholdResult], aborted: bool, succeeded: u64) -> (String, Option<String>) {
    let reason = (succeeded == 0).then(|| NOTHING_SUCCEEDED.to_string());
    let pass = thresholds.iter().all(|r| r.passed) && !aborted && reason.is_none();
    (if pass { "pass" } else { "fail" }.into(), reason)
}

/// The load profile's live state, as the driver sees it.
struct LoadLive<'a> {
    run: &'a LoadRun,
    stats: &'a RunStats,
    planned: u64,
    /// Reused for every merge of a tick, so a tick allocates no histogram.
    scratch: std::sync::Mutex<Outcomes>,
}

impl LiveRun for LoadLive<'_> {
    fn evaluate(&self) -> Vec<ThresholdResult> {
        evaluate_live(&self.run.thresholds, &self.run.mix, self.stats, &self.scratch)
    }

    fn population(&self) -> Population {
        self.stats.population()
    }

    fn detail(&self) -> String {
        let Ok(mut total) = self.scratch.lock() else { return String::new() };
        self.stats.outcomes_into(|_| true, &mut total);
        let ms = |q: f64| threshold::format_seconds(total.latency.value_at_quantile(q) as f64 / 1e6);
        format!(
            "requests={}/{} errors={} shed={} p95={} p99={}",
            total.count(),
            self.planned,
            total.errors,
            self.stats.shed.load(Ordering::Relaxed),
            ms(0.95),
            ms(0.99)
        )
    }
}

/// The load section of a report from a finished engine run (no memory-per-session section).
pub(crate) fn load_results(
    preset: Option<String>,
    engine: &EngineConfig,
    mix: &[MixEntry],
    stats: &RunStats,
    snap: &Snapshot,
) -> LoadResults {
    let plan = engine.plan;
    LoadResults {
        params: RunParams {
            preset,
            clients: plan.sessions,
            rpm: plan.rpm,
            duration_s: plan.duration.as_secs_f64(),
            ramp_up_s: plan.ramp_up.as_secs_f64(),
            ramp_down_s: plan.ramp_down.as_secs_f64(),
            max_requests: engine.max_requests,
            max_in_flight: engine.max_in_flight,
            mix: mix.to_vec(),
        },
        slots: stats.slots(plan.expected_slots()),
        total: snap.total().summary(snap.slots.shed),
        operations: mix.iter().zip(&snap.ops).map(|(e, a)| (e.name.clone(), a.summary(0))).collect(),
        connect: snap.connect.summary(0),
        replicas: stats.replicas.snapshot(),
        memory: None,
    }
}

/// Run a load profile to its end (or abort / cancellation) and build its report.
pub async fn run_load(
    run: LoadRun,
    client: ClientConfig,
    http: reqwest::Client,
    observer: Arc<dyn RunObserver>,
    hooks: Hooks,
    cancel: CancellationToken,
) -> RunReport {
    let started_at = unix_seconds();
    let stats = Arc::new(RunStats::new(run.mix.len()));
    let workload = Arc::new(LoadWorkload::new(run.mix.clone()));
    let engine_cancel = cancel.child_token();
    let mut engine_cfg = run.engine.clone();
    let opened = run.memory.as_ref().filter(|m| m.redis.is_some()).map(|_| Arc::default());
    engine_cfg.opened.clone_from(&opened);
    let engine =
        engine::run(engine_cfg, client, http.clone(), workload, observer, Arc::clone(&stats), engine_cancel.clone());
    let plan = run.engine.plan;
    let live =
        LoadLive { run: &run, stats: &stats, planned: plan.expected_slots(), scratch: std::sync::Mutex::default() };
    let sampler = async {
        let probe = run.memory.as_ref()?;
        // Sample a little past the ramp: the last session joins just before its end.
        let until = plan.ramp_up + probe.interval;
        Some(probe.sample_ramp(&http, &stats.sessions, until, &engine_cancel).await)
    };
    let (driven, mut memory) =
        tokio::join!(drive(engine, &live, &hooks, run.tick, run.abort_on_fail, &engine_cancel), sampler);
    if let (Some(memory), Some(probe), Some(opened)) = (memory.as_mut(), &run.memory, &opened) {
        // The run has ended (its sessions DELETEd or abandoned): it holds none of these any more.
        let ids: Vec<String> = opened.ids();
        memory.session_ids = ids.len() as u64;
        memory.orphaned_session_keys = probe.orphaned_keys(&ids).await;
    }
    let end = driven.out;
    let snap = stats.snapshot();
    let aborted = end.cancelled;
    let load = LoadResults { memory, ..load_results(run.preset.clone(), &run.engine, &run.mix, &stats, &snap) };
    let (verdict, verdict_reason) = verdict(&driven.thresholds, aborted, load.total.succeeded());
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
        longevity: None,
        verdict,
        verdict_reason,
        thresholds: driven.thresholds,
        thresholds_origin: run.thresholds_origin,
        client_cpu_seconds: process_cpu_seconds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    /// Counts what the driver asks of it.
    #[derive(Default)]
    struct Counting {
        evaluations: AtomicU64,
        details: AtomicU64,
    }

    impl LiveRun for Counting {
        fn evaluate(&self) -> Vec<ThresholdResult> {
            self.evaluations.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        }
        fn population(&self) -> Population {
            Population { sessions: 3, in_flight: 1 }
        }
        fn detail(&self) -> String {
            format!("n={}", self.details.fetch_add(1, Ordering::Relaxed))
        }
    }

    /// Every tick reports the population; a progress line (and the detail behind it) comes only
    /// as often as asked, and never without a printer.
    #[tokio::test]
    async fn lines_and_their_detail_only_as_often_as_asked() {
        let live = Counting::default();
        let populations = Arc::new(AtomicU64::new(0));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (p, l) = (Arc::clone(&populations), Arc::clone(&lines));
        let hooks = Hooks {
            population: Box::new(move |pop| {
                assert_eq!(pop, Population { sessions: 3, in_flight: 1 });
                p.fetch_add(1, Ordering::Relaxed);
            }),
            progress: Some(ProgressLines {
                every: Duration::from_millis(200),
                print: Box::new(move |p: &Progress| l.lock().unwrap().push((p.elapsed, p.detail.clone()))),
            }),
            thresholds: Box::new(|_| {}),
        };
        let tick = Duration::from_millis(50);
        drive(tokio::time::sleep(Duration::from_millis(730)), &live, &hooks, tick, false, &CancellationToken::new())
            .await;
        let ticks = populations.load(Ordering::Relaxed);
        assert!((10..=14).contains(&ticks), "{ticks} ticks");
        // Every tick evaluates, and once more at the end.
        assert_eq!(live.evaluations.load(Ordering::Relaxed), ticks + 1);
        let lines = lines.lock().unwrap().clone();
        assert!((2..=4).contains(&lines.len()), "{lines:?}");
        assert!(lines.windows(2).all(|w| w[1].0 - w[0].0 >= Duration::from_millis(150)), "{lines:?}");
        let details: Vec<String> = (0..lines.len()).map(|n| format!("n={n}")).collect();
        assert_eq!(lines.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(), details, "one detail per line");

        let quiet = Counting::default();
        let hooks = Hooks::none();
        drive(tokio::time::sleep(Duration::from_millis(300)), &quiet, &hooks, tick, false, &CancellationToken::new())
            .await;
        assert_eq!(quiet.details.load(Ordering::Relaxed), 0, "no printer: no detail built");
        assert!(quiet.evaluations.load(Ordering::Relaxed) >= 4);
    }
}
