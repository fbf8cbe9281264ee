//! The chaos run: a steady population of sessions (each at a constant request rate from the load
//! mix, holding its server-to-client stream), a broadcaster triggering a numbered notification
//! every few seconds, and the scenario driver opening and closing fault windows. Every operation
//! is timed from its intended start and attributed to the phase it was meant to start in, unless
//! a fault window opened while it was in flight: then it belongs to that window (its outcome may be
//! the fault's doing, and the baseline and recovery windows must measure the server alone).

use crate::clock::unix_seconds;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::inject::{self, RedisPauser};
use super::params::BASELINE;
use super::report::{CHAOS_REPORT_FORMAT, ChaosParams, ChaosReport, PhaseSummary, ProberHealth, ScenarioReport};
use super::{FaultProxy, NetFault, PROFILE, Scenario, ScenarioKind, resident_memory_bytes};
use crate::mcp::client::ServerNotification;
use crate::mcp::{ClientConfig, ErrorType, LogLevel, McpClient, McpError};
use crate::profile::arrival::ArrivalPlan;
use crate::profile::delivery::DeliveryTracker;
use crate::profile::engine::{self, EngineConfig, NoObserver, SessionHooks, Workload};
use crate::profile::load::{LoadWorkload, MixEntry};
use crate::profile::nonce::{Nonce, find_nonce, nonce};
use crate::profile::notify::NoNotifyObserver;
use crate::profile::report::ThresholdOrigin;
use crate::profile::report::ThresholdResult;
use crate::profile::stats::{OpAccum, RequestResult, RunStats};
use crate::profile::threshold::{Cmp, Deliveries, Measured, Measurements, Requests, Stat, Threshold};
use crate::profile::{Hooks, LiveRun, Population, drive};

mod detect;
mod faults;
mod population;

use detect::{ChaosLive, Detector, snapshot};
use faults::{Injectors, Timeline, drive_scenarios, start_proxy, wait_until};
use population::{ChaosSessions, broadcaster};

/// How often the run driver looks at the thresholds (abort_on_fail).
const TICK: Duration = Duration::from_millis(250);

/// How broadcasts are triggered and recognised.
#[derive(Debug, Clone)]
pub struct BroadcastTrigger {
    /// Tool called with `arguments` plus `nonce` (the reference target's `notify` with
    /// `route: broadcast` goes through Redis in distributed mode).
    pub tool: String,
    pub arguments: Value,
    /// The notification method carrying `params.data.nonce`.
    pub method: String,
    pub every: Duration,
}

/// How the `kill` scenario kills the target.
#[derive(Debug, Clone)]
pub enum KillHow {
    /// A command (argv, no shell).
    Command(Vec<String>),
    /// SIGKILL of a local process.
    Pid(u32),
    /// SIGKILL of the PID a file holds, read at every kill (the start command rewrites it).
    PidFile(std::path::PathBuf),
}

/// How the `kill` scenario kills and starts the target.
#[derive(Debug, Clone)]
pub struct KillSpec {
    pub kill: KillHow,
    /// Run at the end of the fault window (argv, no shell); `None` waits for a supervisor.
    pub start: Option<Vec<String>>,
}

/// Where `redis-pause` pauses: a URL without its password, the password apart (never logged).
#[derive(Debug, Clone)]
pub struct ChaosRedis {
    pub url: String,
    pub password: Option<crate::config::Secret>,
}

/// A validated chaos run.
#[derive(Debug, Clone)]
pub struct ChaosRun {
    /// The `profile` label and the report's (`chaos` one-shot, the entry's name in the daemon).
    pub profile: String,
    pub target: String,
    pub sessions: u32,
    /// Requests per minute per session.
    pub rpm: f64,
    /// Baseline phase before the first fault.
    pub warmup: Duration,
    pub scenarios: Vec<Scenario>,
    pub mix: Vec<MixEntry>,
    pub notify: Option<BroadcastTrigger>,
    /// An operation slower than this counts as degraded (detects latency faults; breaks a
    /// recovery streak).
    pub slow_after: Duration,
    /// Consecutive good operations that make a recovery.
    pub sustain: u32,
    pub thresholds: Vec<Threshold>,
    pub thresholds_origin: ThresholdOrigin,
    pub kill: Option<KillSpec>,
    pub redis: Option<ChaosRedis>,
    /// Bound on each injection (command, Redis, admin call).
    pub command_timeout: Duration,
    /// Wait for late notifications after the last window.
    pub settle: Duration,
    /// Requests in flight per session; slots beyond are shed (counted as `cancelled`).
    pub max_in_flight_per_session: usize,
    /// Stop the run as soon as a threshold is breached beyond doubt (a detect or recovery time
    /// already past its limit, a scenario over without detection or recovery, more sessions
    /// lost than allowed).
    pub abort_on_fail: bool,
}

impl ChaosRun {
    /// A run with the one-shot defaults (10 sessions at 60 rpm, 3 s warm-up, the load mix, a
    /// broadcast every second through the reference target's `notify`, `recovery_time < 30s`);
    /// the daemon scheduler fills the rest from its `[[profiles]]` entry.
    pub fn new(target: impl Into<String>, scenarios: Vec<Scenario>) -> Self {
        Self {
            profile: PROFILE.into(),
            target: target.into(),
            sessions: 10,
            rpm: 60.0,
            warmup: Duration::from_secs(3),
            scenarios,
            mix: crate::profile::load::default_mix(),
            notify: Some(BroadcastTrigger {
                tool: "notify".into(),
                arguments: serde_json::json!({"route": "broadcast"}),
                method: "notifications/message".into(),
                every: Duration::from_secs(1),
            }),
            slow_after: Duration::from_secs(1),
            sustain: 5,
            thresholds: Threshold::parse("recovery_time < 30s").into_iter().collect(),
            thresholds_origin: ThresholdOrigin::Default,
            kill: None,
            redis: None,
            command_timeout: Duration::from_secs(10),
            settle: Duration::from_secs(2),
            max_in_flight_per_session: 16,
            abort_on_fail: false,
        }
    }

    /// Operation names in observer order: the mix, then `connect` and `notify_trigger`.
    pub fn operations(&self) -> Vec<String> {
        let mut ops: Vec<String> = self.mix.iter().map(|e| e.name.clone()).collect();
        ops.push("connect".into());
        ops.push("notify_trigger".into());
        ops
    }

    /// Whether any scenario needs the fault proxy on the path.
    pub fn needs_proxy(&self) -> bool {
        self.scenarios.iter().any(|s| s.kind.net_fault().is_some())
    }

    /// Requests per second at the peak: the population's rate plus the broadcast triggers.
    pub fn peak_rate(&self) -> f64 {
        let broadcasts = self.notify.as_ref().map_or(0.0, |n| 1.0 / n.every.as_secs_f64().max(0.001));
        f64::from(self.sessions) * self.rpm / 60.0 + broadcasts
    }

    /// The planned length: warm-up, every window, the settle time.
    pub fn planned(&self) -> Duration {
        self.warmup + self.scenarios.iter().map(|s| s.fault + s.recovery).sum::<Duration>() + self.settle
    }
}

/// Receives chaos events as they happen (telemetry implements it; the runner names no metric).
pub trait ChaosObserver: Send + Sync {
    /// An operation ended; `op` indexes `ChaosRun::operations`.
    fn request(&self, _op: usize, _latency: Duration, _result: RequestResult) {}
    fn population(&self, _sessions: u64, _in_flight: u64) {}
    /// A scenario's fault window opened (`true`) or closed.
    fn fault(&self, _scenario: &str, _active: bool) {}
    /// An operation failed in a scenario's fault or recovery window.
    fn failed_in_window(&self, _scenario: &str, _error: ErrorType) {}
    fn session_lost(&self, _scenario: &str) {}
    fn session_reestablished(&self, _scenario: &str) {}
    fn streams(&self, _scenario: &str, _reconnected: u64, _resumed: u64) {}
    fn finished(&self, _report: &ChaosReport) {}
}

/// Observer that ignores everything.
pub struct NoChaosObserver;
impl ChaosObserver for NoChaosObserver {}

/// Counters of one phase.
struct PhaseAcc {
    stats: RunStats,
    lost: AtomicU64,
    reestablished: AtomicU64,
    reconnected: AtomicU64,
    resumed: AtomicU64,
}

impl PhaseAcc {
    fn new() -> Self {
        Self {
            stats: RunStats::new(1),
            lost: AtomicU64::new(0),
            reestablished: AtomicU64::new(0),
            reconnected: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        }
    }
}

/// One broadcast: the phase it was sent in and whether the trigger worked (who got it is the
/// delivery tracker's).
struct Broadcast {
    phase: AtomicUsize,
    /// 0 not sent, 1 sent, 2 trigger failed.
    state: AtomicU8,
}

struct Ctx {
    run: ChaosRun,
    client: ClientConfig,
    http: reqwest::Client,
    workload: Arc<LoadWorkload>,
    observer: Arc<dyn ChaosObserver>,
    start: Instant,
    phases: Vec<PhaseAcc>,
    phase: AtomicUsize,
    /// Scenario whose fault started last (`usize::MAX` before the first).
    scenario: AtomicUsize,
    detectors: Mutex<Vec<Detector>>,
    broadcasts: Vec<Broadcast>,
    /// Which session got which broadcast (shared with the notify profile).
    delivery: DeliveryTracker,
    run_id: String,
    clients: Mutex<Vec<Arc<McpClient>>>,
    /// Streams this runner reopened (after re-establishing a session, or found silent).
    reopened: AtomicU64,
    /// One past the highest broadcast whose trigger succeeded.
    latest_ok: AtomicUsize,
    ready: AtomicU64,
    settled: AtomicU64,
    /// The engine's counters: sessions live and requests in flight.
    population: Arc<RunStats>,
    /// Ends the population and the broadcaster.
    stop: CancellationToken,
}

impl Ctx {
    fn phase(&self) -> usize {
        self.phase.load(Ordering::Relaxed)
    }

    /// The scenario a phase belongs to (phase 0 is the baseline).
    fn scenario_of(&self, phase: usize) -> Option<&Scenario> {
        phase.checked_sub(1).and_then(|p| self.run.scenarios.get(p / 2))
    }

    /// Record one finished operation intended at `intended` in `phase`.
    fn record(&self, op: usize, phase: usize, intended: Instant, sent: Instant, result: RequestResult) {
        let done = Instant::now();
        let phase = attributed_phase(phase, self.phase());
        let latency = done.saturating_duration_since(intended);
        if let Some(p) = self.phases.get(phase) {
            p.stats.record(0, latency, done.saturating_duration_since(sent), None, result);
        }
        self.population.record_on_timeline(latency, result);
        self.observer.request(op, latency, result);
        if let (RequestResult::Failed(e), Some(s)) = (result, self.scenario_of(phase)) {
            self.observer.failed_in_window(&s.name, e);
        }
        let bad = match result {
            RequestResult::Failed(_) => Some("error"),
            RequestResult::Success if latency > self.run.slow_after => Some("latency"),
            RequestResult::Success => None,
        };
        self.detect(done, bad);
    }

    fn detect(&self, at: Instant, bad: Option<&'static str>) {
        let current = self.scenario.load(Ordering::Relaxed);
        if let Ok(mut detectors) = self.detectors.lock()
            && let Some(d) = detectors.get_mut(current)
        {
            d.observe(at, bad, self.run.sustain);
        }
    }

    fn lose_session(&self) {
        let phase = self.phase();
        if let Some(p) = self.phases.get(phase) {
            p.lost.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(s) = self.scenario_of(phase) {
            self.observer.session_lost(&s.name);
        }
    }

    fn reestablish_session(&self) {
        let phase = self.phase();
        if let Some(p) = self.phases.get(phase) {
            p.reestablished.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(s) = self.scenario_of(phase) {
            self.observer.session_reestablished(&s.name);
        }
    }

    /// Stream recovery counters summed over every client.
    fn stream_totals(&self) -> (u64, u64) {
        let clients = self.clients.lock().map(|c| c.clone()).unwrap_or_default();
        let (mut reconnects, mut resumed) = (self.reopened.load(Ordering::Relaxed), 0);
        for c in clients {
            let s = c.stream_stats();
            reconnects += s.reconnects;
            resumed += s.resumed;
        }
        (reconnects, resumed)
    }
}

/// The phase an operation meant to start in `intended` and finished in `current` counts in: the
/// last fault window it overlapped, if one opened after it was meant to start (phases are the
/// baseline, 0, then each scenario's fault, odd, and recovery, even).
fn attributed_phase(intended: usize, current: usize) -> usize {
    let last_fault = if current % 2 == 1 { current } else { current.saturating_sub(1) };
    if last_fault > intended { last_fault } else { intended }
}

fn phase_summary(ctx: &Ctx, phase: usize, duration: Duration) -> PhaseSummary {
    let Some(p) = ctx.phases.get(phase) else { return PhaseSummary::default() };
    let sessions = u64::from(ctx.run.sessions);
    let (mut sent, mut failed, mut received) = (0, 0, 0);
    for (i, b) in ctx.broadcasts.iter().enumerate().filter(|(_, b)| b.phase.load(Ordering::Relaxed) == phase) {
        match b.state.load(Ordering::Relaxed) {
            1 => {
                sent += 1;
                received += ctx.delivery.received_by(i).min(sessions);
            }
            2 => failed += 1,
            _ => {}
        }
    }
    let expected = sent * sessions;
    PhaseSummary {
        duration_s: duration.as_secs_f64(),
        requests: p.stats.snapshot().total().summary(0),
        sessions_lost: p.lost.load(Ordering::Relaxed),
        sessions_reestablished: p.reestablished.load(Ordering::Relaxed),
        streams_reconnected: p.reconnected.load(Ordering::Relaxed),
        streams_resumed: p.resumed.load(Ordering::Relaxed),
        notifications_sent: sent,
        notification_triggers_failed: failed,
        notifications_expected: expected,
        notifications_received: received,
        notifications_lost: expected.saturating_sub(received),
    }
}

/// What a threshold reads of a window's requests.
fn requests(window: &OpAccum) -> Requests<'_> {
    Requests { latency: &window.latency, requests: window.count(), failed: window.error_count() }
}

/// A chaos threshold's numbers over one scenario. Latency and error rates cover the fault window
/// (`window`); counts and delivery cover fault and recovery windows; not detected or not
/// recovered may never pass.
struct ScenarioMeasurements<'a> {
    report: &'a ScenarioReport,
    window: &'a OpAccum,
}

impl Measurements for ScenarioMeasurements<'_> {
    fn measure(&self, stat: Stat) -> Option<Measured> {
        let s = self.report;
        let expected = s.window_sum(|p| p.notifications_expected);
        Some(match stat {
            Stat::RecoveryTime => {
                Measured { value: s.recover_s.unwrap_or(s.recovery_window_s), samples: 1, may_pass: s.recovered }
            }
            Stat::DetectTime => {
                Measured { value: s.detect_s.unwrap_or(s.fault_window_s), samples: 1, may_pass: s.detect_s.is_some() }
            }
            Stat::NotificationsLost => Measured::of(s.window_sum(|p| p.notifications_lost) as f64, expected),
            Stat::SessionsLost => Measured::of(s.window_sum(|p| p.sessions_lost) as f64, 1),
            Stat::Delivery => {
                let received = s.window_sum(|p| p.notifications_received);
                return Deliveries { expected, received, latency: None }.measure(stat);
            }
            _ => return requests(self.window).measure(stat),
        })
    }
}

/// Run a chaos profile to its end (or cancellation) and build its report. `http` is used as is
/// unless a proxy scenario puts the fault proxy on the path.
pub async fn run_chaos(
    run: ChaosRun,
    mut client: ClientConfig,
    http: reqwest::Client,
    observer: Arc<dyn ChaosObserver>,
    cancel: CancellationToken,
) -> ChaosReport {
    let started_at = unix_seconds();
    let begin = Instant::now();
    let mut setup = SetupErrors::default();
    let admin_http = http.clone();
    let admin_url = client.url.clone();
    // Broadcasts of log messages are opted into (2026-07-28 servers send none otherwise).
    if let Some(notify) = &run.notify {
        client.log_level = client.log_level.or(LogLevel::to_receive(&notify.method));
    }
    // Network faults need the proxy on the path for the whole run (sessions are made over it).
    let (proxy, http) = if run.needs_proxy() {
        match start_proxy(&mut client, &http).await {
            Ok((p, h)) => (Some(p), h),
            Err(e) => {
                setup.proxy = Some(e);
                (None, http)
            }
        }
    } else {
        (None, http)
    };
    let redis = match &run.redis {
        Some(redis) if run.scenarios.iter().any(|s| matches!(s.kind, ScenarioKind::RedisPause { .. })) => {
            match RedisPauser::connect(redis, run.command_timeout).await {
                Ok(r) => Some(r),
                Err(e) => {
                    setup.redis = Some(e);
                    None
                }
            }
        }
        _ => None,
    };
    let slots = run
        .notify
        .as_ref()
        .map(|n| (run.planned().as_secs_f64() / n.every.as_secs_f64().max(0.01)).ceil() as usize + 1)
        .unwrap_or(0);
    let population = Arc::new(RunStats::new(run.mix.len()));
    let ctx = Arc::new(Ctx {
        workload: Arc::new(LoadWorkload::new(run.mix.clone())),
        observer,
        start: Instant::now(),
        phases: (0..=2 * run.scenarios.len()).map(|_| PhaseAcc::new()).collect(),
        phase: AtomicUsize::new(0),
        scenario: AtomicUsize::new(usize::MAX),
        detectors: Mutex::new(run.scenarios.iter().map(|_| Detector::default()).collect()),
        broadcasts: (0..slots).map(|_| Broadcast { phase: AtomicUsize::new(0), state: AtomicU8::new(0) }).collect(),
        delivery: DeliveryTracker::new(run.sessions, slots as u64),
        run_id: format!("{:08x}", rand::random::<u32>()),
        clients: Mutex::new(Vec::new()),
        reopened: AtomicU64::new(0),
        latest_ok: AtomicUsize::new(0),
        ready: AtomicU64::new(0),
        settled: AtomicU64::new(0),
        population: Arc::clone(&population),
        stop: cancel.child_token(),
        client,
        http,
        run,
    });
    let tasks = TaskTracker::new();
    let sessions = Arc::new(ChaosSessions::new(Arc::clone(&ctx)));
    let drain = ctx.client.request_timeout;
    tasks.spawn(engine::run_with(
        ChaosSessions::engine(&ctx.run, drain),
        ctx.client.clone(),
        ctx.http.clone(),
        Arc::clone(&ctx.workload),
        Arc::new(NoObserver),
        Arc::clone(&sessions) as Arc<dyn SessionHooks>,
        population,
        ctx.stop.clone(),
    ));
    if let Some(spec) = ctx.run.notify.clone() {
        tasks.spawn(broadcaster(Arc::clone(&ctx), spec));
    }
    tasks.close();
    let injectors = Injectors { proxy, redis, admin_http, admin_url, restore_error_rate: Mutex::new(None) };
    // Cancelled by the caller, or by the driver on a breach (abort_on_fail).
    let work_cancel = cancel.child_token();
    let work = async {
        let timeline = drive_scenarios(&ctx, &injectors, &work_cancel).await;
        // Late notifications of the last window, then the population ends.
        let _ = wait_until(Instant::now() + ctx.run.settle, &work_cancel).await;
        timeline
    };
    let live = ChaosLive { ctx: &ctx };
    let observer = Arc::clone(&ctx.observer);
    let hooks = Hooks { population: Box::new(move |p| observer.population(p.sessions, p.in_flight)), ..Hooks::none() };
    let driven = drive(work, &live, &hooks, TICK, ctx.run.abort_on_fail, &work_cancel).await;
    let timeline = driven.out;
    ctx.stop.cancel();
    // Sessions drain their requests, then close (each bounded by the request timeout).
    let bound = 2 * drain + Duration::from_secs(5);
    let ended = tokio::time::timeout(bound, async {
        tasks.wait().await;
        sessions.reopens.close();
        sessions.reopens.wait().await;
    });
    let stuck = if ended.await.is_err() { 1 } else { 0 };
    let (proxy_connections, proxy_resets) = match &injectors.proxy {
        Some(p) => (p.counters().connections.load(Ordering::Relaxed), p.counters().resets.load(Ordering::Relaxed)),
        None => (0, 0),
    };
    if let Some(p) = injectors.proxy {
        p.stop().await;
    }
    if let Ok(mut c) = ctx.clients.lock() {
        c.clear();
    }
    let abort_reason = work_cancel.is_cancelled().then(|| driven.abort_reason.unwrap_or_else(|| "cancelled".into()));
    let report = build_report(&ctx, &timeline, &setup, started_at, begin, abort_reason);
    let mut report = report;
    report.prober = ProberHealth {
        rss_after_warmup_bytes: timeline.rss_after_warmup,
        rss_end_bytes: resident_memory_bytes(),
        rss_peak_bytes: timeline.rss_peak,
        stuck_tasks: stuck,
        proxy_connections,
        proxy_resets,
    };
    ctx.observer.finished(&report);
    report
}

fn build_report(
    ctx: &Ctx,
    t: &Timeline,
    setup: &SetupErrors,
    started_at: f64,
    begin: Instant,
    abort_reason: Option<String>,
) -> ChaosReport {
    let aborted = abort_reason.is_some();
    let span = |i: usize| match (t.bounds.get(i), t.bounds.get(i + 1)) {
        (Some(a), Some(b)) => b.saturating_duration_since(*a),
        _ => Duration::ZERO,
    };
    let detectors = ctx.detectors.lock().map(|d| d.iter().map(snapshot).collect::<Vec<_>>()).unwrap_or_default();
    let mut scenarios = Vec::new();
    let mut windows = Vec::new();
    for (i, s) in ctx.run.scenarios.iter().enumerate() {
        let d = detectors.get(i).cloned().unwrap_or_default();
        let mut errors = t.injection_errors.get(i).cloned().unwrap_or_default();
        let started = d.0;
        if !started {
            errors.push("not reached (run ended first)".into());
        }
        let setup_error = match s.kind {
            ScenarioKind::RedisPause { .. } => setup.redis.clone(),
            ref k if k.net_fault().is_some() => setup.proxy.clone(),
            _ => None,
        };
        errors.extend(setup_error);
        let (fault, recovery) = (2 * i + 1, 2 * i + 2);
        // Latency and error-rate thresholds look at what the fault did: its own window.
        let window = ctx
            .phases
            .get(fault)
            .map(|p| p.stats.snapshot().total())
            .unwrap_or_else(|| RunStats::new(1).snapshot().total());
        windows.push(window);
        scenarios.push(ScenarioReport {
            name: s.name.clone(),
            kind: s.kind.as_str().into(),
            spec: s.spec.clone(),
            fault_window_s: s.fault.as_secs_f64(),
            recovery_window_s: s.recovery.as_secs_f64(),
            fault_started_s: t.bounds.get(fault).map(|b| b.saturating_duration_since(ctx.start).as_secs_f64()),
            recovery_started_s: t.bounds.get(recovery).map(|b| b.saturating_duration_since(ctx.start).as_secs_f64()),
            injected: errors.is_empty(),
            injection_errors: errors,
            detect_s: d.1.map(|(d, _)| d.as_secs_f64()),
            detected_by: d.1.map(|(_, how)| how.to_string()),
            recover_s: d.2.map(|d| d.as_secs_f64()),
            recovered: d.2.is_some(),
            fault: phase_summary(ctx, fault, span(fault)),
            recovery: phase_summary(ctx, recovery, span(recovery)),
        });
    }
    let mut thresholds = Vec::new();
    for th in &ctx.run.thresholds {
        if th.scope.as_deref() == Some(BASELINE) {
            // The warm-up before any fault: the target must be healthy to begin with.
            let window =
                ctx.phases.first().map_or_else(|| RunStats::new(1).snapshot().total(), |p| p.stats.snapshot().total());
            thresholds.push(th.evaluate(&requests(&window)));
            continue;
        }
        for (s, w) in scenarios.iter().zip(&windows) {
            if th.scope.as_deref().is_some_and(|scope| scope != s.name) {
                continue;
            }
            let unscoped = Threshold { scope: None, ..th.clone() };
            let source = ScenarioMeasurements { report: s, window: w };
            thresholds.push(th.evaluate_as(format!("{}:{unscoped}", s.name), &source));
        }
    }
    let baseline = phase_summary(ctx, 0, span(0));
    let succeeded = std::iter::once(&baseline)
        .chain(scenarios.iter().flat_map(|s| [&s.fault, &s.recovery]))
        .map(|p| p.requests.succeeded())
        .sum();
    let (verdict, verdict_reason) = crate::profile::verdict(&thresholds, aborted, succeeded);
    let verdict = if scenarios.iter().all(|s| s.injected) { verdict } else { "fail".into() };
    let notify_every_s = ctx.run.notify.as_ref().map(|n| n.every.as_secs_f64());
    ChaosReport {
        format: CHAOS_REPORT_FORMAT,
        profile: ctx.run.profile.clone(),
        target: ctx.run.target.clone(),
        started_at,
        ended_at: unix_seconds(),
        elapsed_s: begin.elapsed().as_secs_f64(),
        aborted,
        abort_reason,
        params: ChaosParams {
            sessions: ctx.run.sessions,
            rpm: ctx.run.rpm,
            warmup_s: ctx.run.warmup.as_secs_f64(),
            slow_after_ms: ctx.run.slow_after.as_secs_f64() * 1000.0,
            sustain: ctx.run.sustain,
            notify_every_s,
            through_proxy: ctx.run.needs_proxy(),
        },
        baseline,
        scenarios,
        timeline: Some(ctx.population.timeline.timeline()),
        prober: ProberHealth::default(),
        thresholds,
        thresholds_origin: ctx.run.thresholds_origin,
        verdict,
        verdict_reason,
        client_cpu_seconds: crate::profile::process_cpu_seconds(),
    }
}

/// Why injectors could not be set up (reported on the scenarios that need them).
#[derive(Default)]
struct SetupErrors {
    proxy: Option<String>,
    redis: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request in flight when a fault window opens is the fault's, never the baseline's or a
    /// recovery window's; one that started in a fault window stays there.
    #[test]
    fn requests_overlapping_a_fault_window_count_in_it() {
        assert_eq!(attributed_phase(0, 0), 0);
        assert_eq!(attributed_phase(0, 1), 1);
        assert_eq!(attributed_phase(0, 2), 1, "spanned the whole first fault window");
        assert_eq!(attributed_phase(1, 1), 1);
        assert_eq!(attributed_phase(1, 2), 1, "began in the fault, ended in recovery");
        assert_eq!(attributed_phase(2, 2), 2);
        assert_eq!(attributed_phase(2, 3), 3);
        assert_eq!(attributed_phase(2, 4), 3);
        assert_eq!(attributed_phase(3, 4), 3);
    }

    /// A scenario's thresholds: times (that may not pass when nothing was detected or
    /// recovered), counts and delivery over both windows, request statistics over the fault's.
    #[test]
    fn scenario_measurements() {
        use crate::profile::report::ThresholdStatus::{Fail, NoData, Pass};
        let phase = |expected, received, lost| PhaseSummary {
            notifications_expected: expected,
            notifications_received: received,
            notifications_lost: expected - received,
            sessions_lost: lost,
            ..PhaseSummary::default()
        };
        let mut report = ScenarioReport {
            name: "kill".into(),
            kind: "kill".into(),
            spec: "kill:5s".into(),
            fault_window_s: 5.0,
            recovery_window_s: 20.0,
            fault_started_s: Some(10.0),
            recovery_started_s: Some(15.0),
            injected: true,
            injection_errors: Vec::new(),
            detect_s: Some(0.5),
            detected_by: Some("error".into()),
            recover_s: Some(3.0),
            recovered: true,
            fault: phase(10, 6, 2),
            recovery: phase(10, 10, 1),
        };
        let stats = RunStats::new(1);
        for ms in [10, 20, 2000] {
            stats.record(0, Duration::from_millis(ms), Duration::from_millis(ms), None, RequestResult::Success);
        }
        stats.record(
            0,
            Duration::from_millis(5),
            Duration::from_millis(5),
            None,
            RequestResult::Failed(ErrorType::Timeout),
        );
        let window = stats.snapshot().total();
        let judge = |expr: &str, report: &ScenarioReport| {
            let r = Threshold::parse(expr).unwrap().evaluate(&ScenarioMeasurements { report, window: &window });
            (r.status, r.observed, r.samples)
        };
        assert_eq!(judge("recovery_time < 5s", &report), (Pass, 3.0, 1));
        assert_eq!(judge("detect_time < 1s", &report), (Pass, 0.5, 1));
        assert_eq!(judge("notifications_lost <= 4", &report), (Pass, 4.0, 20));
        assert_eq!(judge("notifications_lost == 0", &report), (Fail, 4.0, 20));
        assert_eq!(judge("sessions_lost <= 3", &report), (Pass, 3.0, 1));
        assert_eq!(judge("delivery >= 80%", &report), (Pass, 0.8, 20));
        assert_eq!(judge("error_rate < 30%", &report), (Pass, 0.25, 4));
        assert_eq!(judge("error_rate < 25%", &report).0, Fail);
        assert_eq!(judge("max < 1s", &report).0, Fail);
        assert_eq!(judge("memory_growth < 50%", &report).0, NoData);
        // Not recovered: the whole recovery window, and a failure whatever the limit.
        report.recovered = false;
        report.recover_s = None;
        assert_eq!(judge("recovery_time < 30s", &report), (Fail, 20.0, 1));
        report.detect_s = None;
        assert_eq!(judge("detect_time < 30s", &report), (Fail, 5.0, 1));
        // No notifications expected: delivery has no data.
        report.fault = phase(0, 0, 0);
        report.recovery = phase(0, 0, 0);
        assert_eq!(judge("delivery >= 80%", &report).0, NoData);
    }
}
