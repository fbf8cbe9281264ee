//! The chaos run: a steady population of sessions (each at a constant request rate from the load
//! mix, holding its server-to-client stream), a broadcaster triggering a numbered notification
//! every few seconds, and the scenario driver opening and closing fault windows. Every operation
//! is timed from its intended start and attributed to the phase it was meant to start in.

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
    /// already past its limit, or a scenario over without detection or recovery).
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

/// Detect and recovery tracking of one scenario.
#[derive(Default)]
struct Detector {
    fault_start: Option<Instant>,
    fault_end: Option<Instant>,
    detect: Option<(Duration, &'static str)>,
    streak_start: Option<Instant>,
    streak: u32,
    recovered: Option<Duration>,
    closed: bool,
}

impl Detector {
    /// One operation ended at `at`; `bad` says why it was not good (`error`, `latency`). The
    /// first bad one after the fault's start is the detection; after the fault's end, the first
    /// of `sustain` good ones in a row is the recovery.
    fn observe(&mut self, at: Instant, bad: Option<&'static str>, sustain: u32) {
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
        let latency = done.saturating_duration_since(intended);
        if let Some(p) = self.phases.get(phase) {
            p.stats.record(0, latency, done.saturating_duration_since(sent), None, result);
        }
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

/// What the run driver sees of a chaos run: the detect and recovery thresholds as far as they
/// are settled (only with `abort_on_fail`; the report judges every threshold at the end).
struct ChaosLive<'a> {
    ctx: &'a Ctx,
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
        for t in run.thresholds.iter().filter(|t| matches!(t.stat, Stat::DetectTime | Stat::RecoveryTime)) {
            for (s, d) in run.scenarios.iter().zip(detectors.iter()) {
                if t.scope.as_deref().is_some_and(|scope| scope != s.name) {
                    continue;
                }
                let window = if t.stat == Stat::DetectTime { s.fault } else { s.recovery };
                let unscoped = Threshold { scope: None, ..t.clone() };
                out.push(t.judge_as(format!("{}:{unscoped}", s.name), d.live(t, window, now)));
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
        // A detect or recovery time is one sample, settled when it is judged at all.
        1
    }
}

fn classify(r: Result<(), McpError>) -> RequestResult {
    match r {
        Ok(()) => RequestResult::Success,
        Err(e) => RequestResult::Failed(e.error_type()),
    }
}

/// Connect (a new session) and, with `stream`, open its server-to-client stream; records the
/// attempt as a `connect` operation.
async fn establish(ctx: &Ctx, client: &McpClient, intended: Instant, stream: bool) -> bool {
    let phase = ctx.phase();
    let sent = Instant::now();
    let r = tokio::select! {
        r = client.connect() => r.map(|_| ()),
        _ = ctx.stop.cancelled() => return false,
    };
    let ok = r.is_ok();
    ctx.record(ctx.run.mix.len(), phase, intended, sent, classify(r));
    if ok && stream {
        open_stream(ctx, client).await;
    }
    ok
}

/// One session of the steady population, as the chaos run keeps it.
struct SessionState {
    connected: AtomicBool,
    /// The server lost the session (`session_expired`) since its last slot.
    lost: AtomicBool,
    /// One past the newest broadcast this session heard of (or gave up on when reconnecting).
    heard: AtomicUsize,
    last_reopen: Mutex<Instant>,
}

/// The steady population on the profile engine (constant rate per session, the load mix, no
/// churn); chaos adds the server-to-client streams, re-establishes lost sessions, reads the
/// broadcasts, and attributes every operation to the phase it was meant to start in.
struct ChaosSessions {
    ctx: Arc<Ctx>,
    sessions: Vec<SessionState>,
    /// Streams reopened in the background.
    reopens: TaskTracker,
}

impl ChaosSessions {
    fn new(ctx: Arc<Ctx>) -> Self {
        let now = Instant::now();
        let sessions = (0..ctx.run.sessions)
            .map(|_| SessionState {
                connected: AtomicBool::new(false),
                lost: AtomicBool::new(false),
                heard: AtomicUsize::new(0),
                last_reopen: Mutex::new(now),
            })
            .collect();
        Self { ctx, sessions, reopens: TaskTracker::new() }
    }

    /// The engine's configuration of the population: it runs until the run stops it.
    fn engine(run: &ChaosRun, drain: Duration) -> EngineConfig {
        EngineConfig {
            plan: ArrivalPlan {
                sessions: run.sessions,
                rpm: run.rpm,
                duration: Duration::MAX,
                ramp_up: Duration::ZERO,
                ramp_down: Duration::ZERO,
            },
            max_requests: None,
            // Slots beyond are shed (recorded as `cancelled` failures).
            max_in_flight: run.max_in_flight_per_session.saturating_mul(run.sessions as usize).max(1),
            late_after: run.slow_after,
            open_stream: false,
            drain,
            seed: 0,
            replicas: None,
            session_lifetime: None,
            unclean_share: 0.0,
            delete_sessions: true,
            opened: None,
        }
    }

    fn state(&self, index: u32) -> Option<&SessionState> {
        self.sessions.get(index as usize)
    }

    /// Remember that the session is now connected and caught up with the broadcasts.
    fn caught_up(&self, st: &SessionState) {
        st.heard.fetch_max(self.ctx.latest_ok.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Ok(mut at) = st.last_reopen.lock() {
            *at = Instant::now();
        }
    }
}

impl SessionHooks for ChaosSessions {
    fn own_connections(&self) -> bool {
        // Sessions stay on the run's HTTP client: it resolves the target to the fault proxy.
        false
    }

    fn listens(&self) -> bool {
        self.ctx.run.notify.is_some()
    }

    fn connected<'a>(
        &'a self,
        index: u32,
        client: &'a Arc<McpClient>,
        began: Instant,
        result: RequestResult,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let ctx = &self.ctx;
            if let Ok(mut c) = ctx.clients.lock() {
                c.push(Arc::clone(client));
            }
            ctx.record(ctx.run.mix.len(), ctx.phase(), began, began, result);
            let ok = result == RequestResult::Success;
            if ok && ctx.run.notify.is_some() {
                open_stream(ctx, client).await;
            }
            ctx.settled.fetch_add(1, Ordering::Relaxed);
            if let Some(st) = self.state(index)
                && ok
            {
                ctx.ready.fetch_add(1, Ordering::Relaxed);
                st.connected.store(true, Ordering::Relaxed);
                self.caught_up(st);
            }
        })
    }

    fn slot<'a>(&'a self, index: u32, client: &'a Arc<McpClient>, intended: Instant) -> BoxFuture<'a, Option<usize>> {
        Box::pin(async move {
            let ctx = &self.ctx;
            let st = self.state(index)?;
            let was_lost = st.lost.swap(false, Ordering::Relaxed);
            if !st.connected.load(Ordering::Relaxed) || was_lost {
                // This slot goes to connecting again (recorded as a `connect` operation).
                let connected = establish(ctx, client, intended, ctx.run.notify.is_some()).await;
                st.connected.store(connected, Ordering::Relaxed);
                if connected {
                    self.caught_up(st);
                    if was_lost {
                        ctx.reestablish_session();
                        if ctx.run.notify.is_some() {
                            ctx.reopened.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                } else if was_lost {
                    st.lost.store(true, Ordering::Relaxed);
                }
                return None;
            }
            // A stream the client gave up on (its reconnects bounded) goes silent while
            // broadcasts keep succeeding: open it again.
            let latest = ctx.latest_ok.load(Ordering::Relaxed);
            if let Some(after) = ctx.run.notify.as_ref().map(|n| n.every * 3)
                && latest >= st.heard.load(Ordering::Relaxed) + 3
                && let Ok(mut last) = st.last_reopen.lock()
                && last.elapsed() >= after
            {
                st.heard.store(latest, Ordering::Relaxed);
                *last = Instant::now();
                let (c, cl) = (Arc::clone(ctx), Arc::clone(client));
                self.reopens.spawn(async move {
                    if let Ok(Ok(true)) = tokio::time::timeout(c.client.request_timeout, cl.open_stream()).await {
                        c.reopened.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Some(ctx.phase())
        })
    }

    fn notification(&self, index: u32, n: &ServerNotification) {
        let ctx = &self.ctx;
        if ctx.run.notify.as_ref().is_some_and(|s| s.method == n.method)
            && let Some(Nonce { session: None, index: i }) = find_nonce(&n.params, &ctx.run_id)
            && ctx.delivery.receive(index as usize, i, None, &NoNotifyObserver)
            && let Some(st) = self.state(index)
        {
            st.heard.fetch_max(i + 1, Ordering::Relaxed);
        }
    }

    fn request(&self, index: u32, phase: usize, op: usize, intended: Instant, sent: Instant, result: RequestResult) {
        if result == RequestResult::Failed(ErrorType::SessionExpired)
            && let Some(st) = self.state(index)
            && !st.lost.swap(true, Ordering::Relaxed)
        {
            self.ctx.lose_session();
        }
        self.ctx.record(op, phase, intended, sent, result);
    }

    fn shed(&self, _index: u32, phase: usize, intended: Instant) {
        // Shed, not dropped: a stalled target shows as `cancelled` failures.
        let op = self.ctx.workload.pick(rand::random::<f64>());
        self.ctx.record(op, phase, intended, intended, RequestResult::Failed(ErrorType::Cancelled));
    }
}

/// Open a session's server-to-client stream, bounded by the request timeout.
async fn open_stream(ctx: &Ctx, client: &McpClient) {
    match tokio::time::timeout(ctx.client.request_timeout, client.open_stream()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "Chaos session stream not opened"),
        Err(_) => tracing::debug!("Chaos session stream open timed out"),
    }
}

/// Trigger a numbered broadcast every `every` until stopped.
async fn broadcaster(ctx: Arc<Ctx>, spec: BroadcastTrigger) {
    // Wait (bounded) for the population so early broadcasts have someone to reach.
    let deadline = Instant::now() + ctx.client.request_timeout;
    while ctx.settled.load(Ordering::Relaxed) < u64::from(ctx.run.sessions) && Instant::now() < deadline {
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let client = Arc::new(McpClient::new(ctx.client.clone(), ctx.http.clone()));
    let lost = Arc::new(AtomicBool::new(true));
    let triggers = TaskTracker::new();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let begin = Instant::now();
    for (i, slot) in ctx.broadcasts.iter().enumerate() {
        let intended = begin + spec.every * i as u32;
        tokio::select! {
            _ = ctx.stop.cancelled() => break,
            _ = tokio::time::sleep_until(intended) => {}
        }
        let phase = ctx.phase();
        slot.phase.store(phase, Ordering::Relaxed);
        let op = ctx.run.mix.len() + 1;
        if lost.swap(false, Ordering::Relaxed) && !establish(&ctx, &client, intended, false).await {
            lost.store(true, Ordering::Relaxed);
            slot.state.store(2, Ordering::Relaxed);
            continue;
        }
        if in_flight.load(Ordering::Relaxed) >= 8 {
            slot.state.store(2, Ordering::Relaxed);
            ctx.record(op, phase, intended, intended, RequestResult::Failed(ErrorType::Cancelled));
            continue;
        }
        let mut args = spec.arguments.clone();
        if let Some(obj) = args.as_object_mut() {
            obj.insert("nonce".into(), Value::String(nonce(&ctx.run_id, None, i as u64)));
        }
        let (c, cl, lo, inf, tool) =
            (Arc::clone(&ctx), Arc::clone(&client), Arc::clone(&lost), Arc::clone(&in_flight), spec.tool.clone());
        inf.fetch_add(1, Ordering::Relaxed);
        triggers.spawn(async move {
            let sent = Instant::now();
            let result = match cl.call_tool(&tool, args, None).await {
                Ok(r) if r.is_error => RequestResult::Failed(ErrorType::ToolError),
                Ok(_) => RequestResult::Success,
                Err(e) => RequestResult::Failed(e.error_type()),
            };
            if matches!(result, RequestResult::Failed(ErrorType::SessionExpired)) {
                lo.store(true, Ordering::Relaxed);
            }
            if let Some(slot) = c.broadcasts.get(i) {
                slot.state.store(if result == RequestResult::Success { 1 } else { 2 }, Ordering::Relaxed);
            }
            if result == RequestResult::Success {
                c.latest_ok.fetch_max(i + 1, Ordering::Relaxed);
            }
            c.record(op, phase, intended, sent, result);
            inf.fetch_sub(1, Ordering::Relaxed);
        });
    }
    triggers.close();
    let _ = tokio::time::timeout(ctx.client.request_timeout + Duration::from_secs(1), triggers.wait()).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
}

/// Everything the scenario driver needs to inject faults.
struct Injectors {
    proxy: Option<FaultProxy>,
    redis: Option<RedisPauser>,
    admin_http: reqwest::Client,
    /// The target's MCP URL (admin endpoints live next to it, never behind the proxy).
    admin_url: url::Url,
    /// The `error_rate` knob to restore after a restart.
    restore_error_rate: Mutex<Option<f64>>,
}

/// Open a scenario's fault; errors are reported, never fatal to the run.
async fn begin_fault(ctx: &Ctx, inj: &Injectors, s: &Scenario) -> Result<(), String> {
    let t = ctx.run.command_timeout;
    if let Some(f) = s.kind.net_fault() {
        let proxy = inj.proxy.as_ref().ok_or("no fault proxy on the path")?;
        proxy.set(f);
        return Ok(());
    }
    match &s.kind {
        ScenarioKind::Kill => match ctx.run.kill.as_ref().map(|k| &k.kill) {
            Some(KillHow::Command(argv)) => inject::run_command(argv, t).await,
            Some(KillHow::Pid(pid)) => inject::kill_pid(*pid),
            Some(KillHow::PidFile(path)) => inject::read_pid_file(path).and_then(inject::kill_pid),
            None => Err("kill needs --kill-command, --kill-pid or --kill-pid-file".into()),
        },
        ScenarioKind::RedisPause { duration } => match &inj.redis {
            Some(r) => r.pause(*duration, t).await,
            None => Err("redis-pause needs the target's Redis".into()),
        },
        ScenarioKind::ExpireSessions => inject::expire_sessions(&inj.admin_http, &inj.admin_url, t).await,
        ScenarioKind::Restart => {
            let previous = inject::begin_restart(&inj.admin_http, &inj.admin_url, t).await?;
            if let Ok(mut r) = inj.restore_error_rate.lock() {
                *r = Some(previous);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Close a scenario's fault.
async fn end_fault(ctx: &Ctx, inj: &Injectors, s: &Scenario) -> Result<(), String> {
    if s.kind.net_fault().is_some() {
        if let Some(p) = &inj.proxy {
            p.set(NetFault::None);
        }
        return Ok(());
    }
    match (&s.kind, ctx.run.kill.as_ref().and_then(|k| k.start.as_ref())) {
        (ScenarioKind::Kill, Some(argv)) => inject::run_command(argv, ctx.run.command_timeout).await,
        (ScenarioKind::Restart, _) => {
            let previous = inj.restore_error_rate.lock().ok().and_then(|mut r| r.take());
            match previous {
                Some(p) => inject::end_restart(&inj.admin_http, &inj.admin_url, p, ctx.run.command_timeout).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Attribute stream counters since the last sample to `phase`.
fn sample_streams(ctx: &Ctx, phase: usize, last: &mut (u64, u64)) {
    let now = ctx.stream_totals();
    let (dr, dres) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
    *last = now;
    if let Some(p) = ctx.phases.get(phase) {
        p.reconnected.fetch_add(dr, Ordering::Relaxed);
        p.resumed.fetch_add(dres, Ordering::Relaxed);
    }
    if let Some(s) = ctx.scenario_of(phase) {
        ctx.observer.streams(&s.name, dr, dres);
    }
}

/// Sleep until `at` or cancellation; false when cancelled.
async fn wait_until(at: Instant, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep_until(at) => true,
    }
}

/// Phase boundaries and the results of the injections.
struct Timeline {
    bounds: Vec<Instant>,
    injection_errors: Vec<Vec<String>>,
    rss_after_warmup: Option<u64>,
    rss_peak: Option<u64>,
}

async fn drive_scenarios(ctx: &Ctx, inj: &Injectors, cancel: &CancellationToken) -> Timeline {
    let mut t = Timeline {
        bounds: vec![ctx.start],
        injection_errors: vec![Vec::new(); ctx.run.scenarios.len()],
        rss_after_warmup: None,
        rss_peak: resident_memory_bytes(),
    };
    let mut streams = ctx.stream_totals();
    let peak = |t: &mut Timeline| {
        let now = resident_memory_bytes();
        t.rss_peak = t.rss_peak.max(now);
        now
    };
    if !wait_until(ctx.start + ctx.run.warmup, cancel).await {
        return t;
    }
    t.rss_after_warmup = peak(&mut t);
    for (i, s) in ctx.run.scenarios.iter().enumerate() {
        let fault_phase = 2 * i + 1;
        sample_streams(ctx, fault_phase - 1, &mut streams);
        let start = Instant::now();
        t.bounds.push(start);
        if let Ok(mut d) = ctx.detectors.lock() {
            if let Some(prev) = i.checked_sub(1).and_then(|p| d.get_mut(p)) {
                prev.closed = true;
            }
            if let Some(cur) = d.get_mut(i) {
                cur.fault_start = Some(start);
            }
        }
        ctx.phase.store(fault_phase, Ordering::Relaxed);
        ctx.scenario.store(i, Ordering::Relaxed);
        ctx.observer.fault(&s.name, true);
        tracing::info!(scenario = %s.name, window = ?s.fault, "Chaos fault window opened");
        if let Err(e) = begin_fault(ctx, inj, s).await {
            tracing::warn!(scenario = %s.name, error = %e, "Fault not injected");
            t.injection_errors[i].push(e);
        }
        let ok = wait_until(start + s.fault, cancel).await;
        sample_streams(ctx, fault_phase, &mut streams);
        let end = Instant::now();
        t.bounds.push(end);
        if let Ok(mut d) = ctx.detectors.lock()
            && let Some(cur) = d.get_mut(i)
        {
            cur.fault_end = Some(end);
        }
        ctx.phase.store(fault_phase + 1, Ordering::Relaxed);
        ctx.observer.fault(&s.name, false);
        if let Err(e) = end_fault(ctx, inj, s).await {
            tracing::warn!(scenario = %s.name, error = %e, "Fault not reverted");
            t.injection_errors[i].push(e);
        }
        peak(&mut t);
        tracing::info!(scenario = %s.name, window = ?s.recovery, "Chaos recovery window opened");
        if !ok || !wait_until(end + s.recovery, cancel).await {
            break;
        }
    }
    sample_streams(ctx, ctx.phase(), &mut streams);
    t.bounds.push(Instant::now());
    if let Ok(mut d) = ctx.detectors.lock() {
        d.iter_mut().for_each(|d| d.closed = true);
    }
    peak(&mut t);
    t
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

/// Start the fault proxy in front of the target and point the client at it: an IP host is
/// rewritten to the proxy; a DNS name keeps its URL (Host, TLS name) and resolves to the proxy.
async fn start_proxy(
    client: &mut ClientConfig,
    http: &reqwest::Client,
) -> Result<(FaultProxy, reqwest::Client), String> {
    let url = client.url.clone();
    let host = url.host_str().ok_or("target URL has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("target URL has no port")?;
    let upstream = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let proxy = FaultProxy::start(upstream).await.map_err(|e| format!("fault proxy: {e}"))?;
    let addr = proxy.local_addr();
    let http = match url.host() {
        Some(url::Host::Domain(d)) => reqwest::Client::builder()
            .user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION")))
            .resolve(d, addr)
            .redirect(crate::mcp::transport::redirect_policy())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        _ => {
            let mut u = url.clone();
            let _ = u.set_ip_host(addr.ip());
            let _ = u.set_port(Some(addr.port()));
            client.url = u;
            http.clone()
        }
    };
    tracing::info!(proxy = %addr, upstream = %upstream, "Chaos fault proxy on the path");
    Ok((proxy, http))
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

/// (fault started, detection, recovery) of a detector.
fn snapshot(d: &Detector) -> (bool, Option<(Duration, &'static str)>, Option<Duration>) {
    (d.fault_start.is_some(), d.detect, d.recovered)
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
}
