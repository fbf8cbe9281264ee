//! The profile engine: one loop, driven by an arrival schedule, over a population of simulated
//! MCP sessions. Each session owns its `McpClient`; each slot fires at its intended instant in a
//! task of its own (open model), so a slow answer never delays the next request. With a session
//! lifetime, each simulated session ends after that long (a share of them without DELETE) and
//! is replaced by a new one in the same slot schedule, so the population stays steady.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::replicas::ReplicaTagging;
use super::stats::{RequestResult, RunStats};
use crate::mcp::client::ServerNotification;
use crate::mcp::{ClientConfig, McpClient};
use crate::profile::arrival::{ArrivalPlan, SessionSchedule};

/// One session's slots in time (the open model's producer): each slot is due at its intended
/// instant; a session that fell a whole period behind resumes at the next future slot, the
/// slots in between skipped, never fired in a burst.
#[derive(Debug, Clone)]
pub struct SlotClock {
    start: Instant,
    sched: SessionSchedule,
    k: u64,
}

/// What a due slot turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Fire it: intended at `intended` (`offset` from the run start), now `lateness` past it.
    Fire { intended: Instant, offset: Duration, lateness: Duration },
    /// This many slots were missed and are skipped.
    Skipped(u64),
}

impl SlotClock {
    /// Slots of `sched`, its offsets counted from `start`.
    pub fn new(start: Instant, sched: SessionSchedule) -> Self {
        Self { start, sched, k: 0 }
    }

    /// When the next slot is due; `None` past the schedule's end.
    pub fn due(&self) -> Option<Instant> {
        self.sched.slot(self.k).map(|offset| self.start + offset)
    }

    /// Take the due slot at `now` (after sleeping until `due`): fire it, or skip the slots
    /// missed when it is a whole period or more late.
    pub fn take(&mut self, now: Instant) -> Option<Slot> {
        let offset = self.sched.slot(self.k)?;
        let intended = self.start + offset;
        let lateness = now.saturating_duration_since(intended);
        if lateness >= self.sched.period {
            let next = self.sched.next_slot_at_or_after(now - self.start).max(self.k + 1);
            let missed = next - self.k;
            self.k = next;
            return Some(Slot::Skipped(missed));
        }
        self.k += 1;
        Some(Slot::Fire { intended, offset, lateness })
    }
}

/// What each slot does. A profile is a workload plus a plan.
pub trait Workload: Send + Sync + 'static {
    /// Pick the operation for a slot; `unit` is uniform in [0, 1).
    fn pick(&self, unit: f64) -> usize;
    /// Perform operation `op` on a session.
    fn execute<'a>(&'a self, client: &'a McpClient, op: usize) -> BoxFuture<'a, RequestResult>;
}

/// What a profile adds to each session of the engine; every method defaults to nothing, which is
/// the load profile's session. Chaos keeps its sessions and their streams alive through faults:
/// it opens the stream, re-establishes lost sessions, reads the broadcasts and attributes every
/// operation to the phase it was meant to start in.
pub trait SessionHooks: Send + Sync + 'static {
    /// Whether sessions own their connections where they can (`McpClient::with_own_connections`,
    /// on lanes of their own); false keeps every client on the run's `reqwest::Client`.
    fn own_connections(&self) -> bool {
        true
    }
    /// Whether sessions read their clients' notifications (`notification`).
    fn listens(&self) -> bool {
        false
    }
    /// Session `index`'s connect attempt that began at `began` ended with `result`.
    fn connected<'a>(
        &'a self,
        _index: u32,
        _client: &'a Arc<McpClient>,
        _began: Instant,
        _result: RequestResult,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
    /// A slot intended at `intended` is due: a tag handed back with its end (`request`,
    /// `shed`), or `None` when the hook spent the slot otherwise (re-establishing a session).
    fn slot<'a>(
        &'a self,
        _index: u32,
        _client: &'a Arc<McpClient>,
        _intended: Instant,
    ) -> BoxFuture<'a, Option<usize>> {
        Box::pin(std::future::ready(Some(0)))
    }
    /// A notification arrived on session `index`'s client.
    fn notification(&self, _index: u32, _n: &ServerNotification) {}
    /// The request of a slot ended (`done` is now).
    fn request(
        &self,
        _index: u32,
        _tag: usize,
        _op: usize,
        _intended: Instant,
        _sent: Instant,
        _result: RequestResult,
    ) {
    }
    /// A slot was shed (over the bound on requests in flight).
    fn shed(&self, _index: u32, _tag: usize, _intended: Instant) {}
}

/// The load profile's sessions: nothing added.
pub struct NoHooks;
impl SessionHooks for NoHooks {}

/// Receives events as they happen (telemetry implements it; the engine never names a metric).
pub trait RunObserver: Send + Sync {
    fn request(&self, _op: usize, _latency: Duration, _result: RequestResult) {}
    fn connect(&self, _latency: Duration, _result: RequestResult) {}
    fn slot(&self, _kind: SlotEvent) {}
    /// A request served by `replica` (only when the run tags replicas).
    fn replica_request(&self, _replica: &str, _result: RequestResult) {}
    /// A session ended by the churn.
    fn session_ended(&self, _end: SessionEnd) {}
}

/// How the churn ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// With a DELETE.
    Clean,
    /// Dropped without a DELETE, as a crashed client would.
    Unclean,
    /// The server kept no session (stateless revision, or no `Mcp-Session-Id` issued): nothing
    /// to DELETE or leave behind.
    Sessionless,
}

impl SessionEnd {
    /// The `end` label.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Clean => "clean",
            SessionEnd::Unclean => "unclean",
            SessionEnd::Sessionless => "sessionless",
        }
    }
}

/// Observer that ignores everything.
pub struct NoObserver;
impl RunObserver for NoObserver {}

/// Slot accounting events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotEvent {
    Issued,
    Late,
    Skipped,
    Shed,
}

impl SlotEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotEvent::Issued => "issued",
            SlotEvent::Late => "late",
            SlotEvent::Skipped => "skipped",
            SlotEvent::Shed => "shed",
        }
    }
}

/// Engine parameters.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub plan: ArrivalPlan,
    /// Stop issuing after this many slots (sent or shed), across all sessions.
    pub max_requests: Option<u64>,
    /// Bound on requests in flight; slots beyond it are shed and counted.
    pub max_in_flight: usize,
    /// A request sent later than this after its intended start counts as late.
    pub late_after: Duration,
    /// Open the server-to-client stream (GET / listen) for every session.
    pub open_stream: bool,
    /// How long requests in flight may finish after the schedule ends or the run is cancelled;
    /// the rest are recorded as `cancelled`.
    pub drain: Duration,
    /// Seed for the per-session operation pickers.
    pub seed: u64,
    /// Count requests by the replica that served them (balanced targets).
    pub replicas: Option<Arc<ReplicaTagging>>,
    /// Churn: a session ends this long after it connected and a new one takes its place;
    /// `None` keeps every session for the whole run.
    pub session_lifetime: Option<Duration>,
    /// Share (0..=1) of churned sessions dropped without DELETE.
    pub unclean_share: f64,
    /// End every session with a DELETE when the run ends; false leaves them to the server's
    /// idle expiry, as clients that vanish would.
    pub delete_sessions: bool,
    /// Record the id of every session opened (orphaned session keys are looked up after the run).
    pub opened: Option<super::per_session::OpenedHandle>,
}

/// How the engine's run ended.
#[derive(Debug, Clone, Copy)]
pub struct EngineEnd {
    pub elapsed: Duration,
    pub cancelled: bool,
}

struct Shared<W> {
    cfg: EngineConfig,
    client: ClientConfig,
    http: reqwest::Client,
    workload: Arc<W>,
    observer: Arc<dyn RunObserver>,
    hooks: Arc<dyn SessionHooks>,
    stats: Arc<RunStats>,
    start: Instant,
    claimed: AtomicU64,
    in_flight: Arc<Semaphore>,
    cancel: CancellationToken,
}

/// Run the plan until it ends or `cancel` fires.
pub async fn run<W: Workload>(
    cfg: EngineConfig,
    client: ClientConfig,
    http: reqwest::Client,
    workload: Arc<W>,
    observer: Arc<dyn RunObserver>,
    stats: Arc<RunStats>,
    cancel: CancellationToken,
) -> EngineEnd {
    run_with(cfg, client, http, workload, observer, Arc::new(NoHooks), stats, cancel).await
}

/// [`run`] with what a profile adds to each session.
#[allow(clippy::too_many_arguments)]
pub async fn run_with<W: Workload>(
    cfg: EngineConfig,
    client: ClientConfig,
    http: reqwest::Client,
    workload: Arc<W>,
    observer: Arc<dyn RunObserver>,
    hooks: Arc<dyn SessionHooks>,
    stats: Arc<RunStats>,
    cancel: CancellationToken,
) -> EngineEnd {
    let sessions = cfg.plan.sessions;
    let shared = Arc::new(Shared {
        in_flight: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
        cfg,
        client,
        http,
        workload,
        observer,
        hooks,
        stats,
        start: Instant::now(),
        claimed: AtomicU64::new(0),
        cancel,
    });
    let tasks = TaskTracker::new();
    let own = shared.hooks.own_connections() && crate::mcp::lean::applies(&shared.client.url);
    let lanes = if own { lanes() } else { 0 };
    let mut done = Vec::new();
    for lane in 0..lanes {
        let mine: Vec<u32> = (lane..sessions).step_by(lanes as usize).collect();
        match spawn_lane(lane, mine.clone(), Arc::clone(&shared)) {
            Ok(rx) => done.push(rx),
            Err(e) => {
                tracing::warn!(error = %e, "Load lane thread not started; its sessions run on the shared runtime");
                for index in mine {
                    tasks.spawn(session(index, Arc::clone(&shared)));
                }
            }
        }
    }
    if lanes == 0 {
        for index in 0..sessions {
            tasks.spawn(session(index, Arc::clone(&shared)));
        }
    }
    tasks.close();
    tasks.wait().await;
    for rx in done {
        // An error means the lane's thread ended without reporting (a panic): nothing to wait for.
        let _ = rx.await;
    }
    EngineEnd { elapsed: shared.start.elapsed(), cancelled: shared.cancel.is_cancelled() }
}

/// Threads that run sessions, each on a current-thread runtime of its own: a session's slot
/// tasks, its requests and its connections' tasks then never change thread (on the shared
/// multi-thread runtime every request crossed threads several times; one worker instead of two
/// was 16 % cheaper per request). One per CPU, or `TOKIO_WORKER_THREADS` as tokio reads it.
fn lanes() -> u32 {
    let env = std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|v| v.trim().parse::<u32>().ok());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    env.unwrap_or(cpus).clamp(1, 64)
}

/// Run sessions `mine` on a thread of their own; the receiver completes when they all ended.
fn spawn_lane<W: Workload>(
    lane: u32,
    mine: Vec<u32>,
    shared: Arc<Shared<W>>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let fallback = tokio::runtime::Handle::current();
    std::thread::Builder::new().name(format!("load-lane-{lane}")).spawn(move || {
        let sessions = async move {
            let tasks = TaskTracker::new();
            for index in mine {
                tasks.spawn(session(index, Arc::clone(&shared)));
            }
            tasks.close();
            tasks.wait().await;
        };
        // Sockets and timers only: with the process and signal drivers enabled every park also
        // looked for exited child processes, which sessions never start.
        match tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build() {
            Ok(rt) => rt.block_on(sessions),
            Err(e) => {
                tracing::warn!(error = %e, "Load lane runtime not built; its sessions run on the shared runtime");
                fallback.block_on(sessions);
            }
        }
        let _ = tx.send(());
    })?;
    Ok(rx)
}

async fn session<W: Workload>(index: u32, s: Arc<Shared<W>>) {
    let sched = s.cfg.plan.session(index);
    let mut clock = SlotClock::new(s.start, sched);
    tokio::select! {
        _ = s.cancel.cancelled() => return,
        _ = tokio::time::sleep_until(s.start + sched.start) => {}
    }
    let Some((mut client, mut rx)) = open_session(index, &s).await else { return };
    let mut born = Instant::now();
    s.stats.sessions.fetch_add(1, Ordering::Relaxed);

    let mut rng = rand::rngs::StdRng::seed_from_u64(s.cfg.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let requests = TaskTracker::new();
    let hard_stop = CancellationToken::new();
    // Closed-loop shadow: nanoseconds since the run start until which a closed-loop client of
    // this session would still be waiting (u64::MAX while its counted request is in flight).
    let busy_until = Arc::new(AtomicU64::new(0));
    while let Some(due) = clock.due() {
        tokio::select! {
            _ = s.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
            n = next_notification(&mut rx) => {
                s.hooks.notification(index, &n);
                continue;
            }
        }
        let (intended, offset, lateness) = match clock.take(Instant::now()) {
            Some(Slot::Fire { intended, offset, lateness }) => (intended, offset, lateness),
            Some(Slot::Skipped(skipped)) => {
                // The generator itself fell a whole period behind.
                s.stats.skipped.fetch_add(skipped, Ordering::Relaxed);
                for _ in 0..skipped {
                    s.observer.slot(SlotEvent::Skipped);
                }
                continue;
            }
            None => break,
        };
        let Some(tag) = s.hooks.slot(index, &client, intended).await else { continue };
        if let Some(lifetime) = s.cfg.session_lifetime
            && born.elapsed() >= lifetime
        {
            let clean = rng.random::<f64>() >= s.cfg.unclean_share;
            let Some((next, next_rx)) = open_session(index, &s).await else { break };
            end_session(&s, &requests, std::mem::replace(&mut client, next), clean);
            rx = next_rx;
            born = Instant::now();
        }
        if let Some(max) = s.cfg.max_requests
            && s.claimed.fetch_add(1, Ordering::Relaxed) >= max
        {
            break;
        }
        let Ok(permit) = Arc::clone(&s.in_flight).try_acquire_owned() else {
            s.stats.shed.fetch_add(1, Ordering::Relaxed);
            s.observer.slot(SlotEvent::Shed);
            s.hooks.shed(index, tag, intended);
            continue;
        };
        s.stats.issued.fetch_add(1, Ordering::Relaxed);
        s.observer.slot(SlotEvent::Issued);
        if lateness > s.cfg.late_after {
            s.stats.late.fetch_add(1, Ordering::Relaxed);
            s.observer.slot(SlotEvent::Late);
        }
        let intended_ns = offset.as_nanos() as u64;
        let closed = busy_until
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| (b <= intended_ns).then_some(u64::MAX))
            .is_ok();
        let op = s.workload.pick(rng.random::<f64>());
        let (task_s, task_client, task_stop, task_busy) =
            (Arc::clone(&s), Arc::clone(&client), hard_stop.clone(), Arc::clone(&busy_until));
        requests.spawn(async move {
            let _permit = permit;
            task_s.stats.in_flight.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let result = tokio::select! {
                r = task_s.workload.execute(&task_client, op) => r,
                _ = task_stop.cancelled() => RequestResult::Failed(crate::mcp::ErrorType::Cancelled),
            };
            let done = Instant::now();
            let latency = done.saturating_duration_since(intended);
            let service = done.saturating_duration_since(sent);
            let closed_loop = closed.then(|| {
                task_busy.store(done.saturating_duration_since(task_s.start).as_nanos() as u64, Ordering::Release);
                service
            });
            task_s.stats.record(op, latency, service, closed_loop, result);
            task_s.observer.request(op, latency, result);
            task_s.hooks.request(index, tag, op, intended, sent, result);
            if let Some(tagging) = &task_s.cfg.replicas {
                let replica = tagging.answered_by(&task_client, result);
                task_s.stats.replicas.record(&replica, result);
                task_s.observer.replica_request(&replica, result);
            }
            task_s.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    requests.close();
    if tokio::time::timeout(s.cfg.drain, requests.wait()).await.is_err() {
        hard_stop.cancel();
        requests.wait().await;
    }
    s.stats.sessions.fetch_sub(1, Ordering::Relaxed);
    if s.cfg.delete_sessions {
        let _ = tokio::time::timeout(s.client.request_timeout, client.close()).await;
    }
}

/// The next notification on `rx` (lagging ones skipped); never once the channel is closed.
async fn next_notification(rx: &mut Option<Notifications>) -> Arc<ServerNotification> {
    loop {
        let Some(r) = rx.as_mut() else { return std::future::pending().await };
        match r.recv().await {
            Ok(n) => return n,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => *rx = None,
        }
    }
}

type Notifications = tokio::sync::broadcast::Receiver<Arc<ServerNotification>>;

/// Connect a new session of the population, with its notifications when the hooks listen;
/// `None` when the run was cancelled meanwhile. A failed connect is recorded and the session
/// still joins: each slot's request reconnects.
async fn open_session<W: Workload>(index: u32, s: &Shared<W>) -> Option<(Arc<McpClient>, Option<Notifications>)> {
    let client = Arc::new(if s.hooks.own_connections() {
        McpClient::with_own_connections(s.client.clone(), s.http.clone())
    } else {
        McpClient::new(s.client.clone(), s.http.clone())
    });
    if let Some(tagging) = &s.cfg.replicas {
        tagging.watch(&client);
    }
    // Subscribed before the stream opens so nothing it carries is missed.
    let rx = s.hooks.listens().then(|| client.notifications());
    let began = Instant::now();
    let connected = tokio::select! {
        r = client.connect() => r,
        _ = s.cancel.cancelled() => return None,
    };
    let result = match connected {
        Ok(info) => {
            if let (Some(opened), Some(id)) = (&s.cfg.opened, &info.session_id) {
                opened.record(id);
            }
            s.stats.record_connect(began.elapsed(), RequestResult::Success);
            s.observer.connect(began.elapsed(), RequestResult::Success);
            if s.cfg.open_stream
                && let Err(e) = client.open_stream().await
            {
                tracing::debug!(error = %e, "Load session stream not opened");
            }
            RequestResult::Success
        }
        Err(e) => {
            let r = RequestResult::Failed(e.error_type());
            s.stats.record_connect(began.elapsed(), r);
            s.observer.connect(began.elapsed(), r);
            r
        }
    };
    s.hooks.connected(index, &client, began, result).await;
    Some((client, rx))
}

/// End a churned session: DELETE it in the background (`clean`), or drop it as a crashed client
/// would, leaving the server to expire it; a server that kept no session gets neither.
/// Requests still in flight keep their own handle.
fn end_session<W: Workload>(s: &Arc<Shared<W>>, requests: &TaskTracker, client: Arc<McpClient>, clean: bool) {
    let sessionless = client.server_info().is_some_and(|i| i.stateless || i.session_id.is_none());
    let end = match (sessionless, clean) {
        (true, _) => SessionEnd::Sessionless,
        (false, true) => SessionEnd::Clean,
        (false, false) => SessionEnd::Unclean,
    };
    s.observer.session_ended(end);
    if sessionless {
        s.stats.ended_sessionless.fetch_add(1, Ordering::Relaxed);
        // Nothing to DELETE: closing only stops the client's own stream.
        requests.spawn(async move {
            let _ = client.close().await;
        });
    } else if clean {
        s.stats.ended_clean.fetch_add(1, Ordering::Relaxed);
        let timeout = s.client.request_timeout;
        requests.spawn(async move {
            let _ = tokio::time::timeout(timeout, client.close()).await;
        });
    } else {
        s.stats.ended_unclean.fetch_add(1, Ordering::Relaxed);
        drop(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots fire at their instants; one a whole period late skips to the next future slot.
    #[test]
    fn slot_clock_fires_on_schedule_and_skips_what_it_missed() {
        let plan = ArrivalPlan {
            sessions: 4,
            rpm: 60.0,
            duration: Duration::from_secs(10),
            ramp_up: Duration::ZERO,
            ramp_down: Duration::ZERO,
        };
        let t0 = Instant::now();
        let mut clock = SlotClock::new(t0, plan.session(1));
        let first = t0 + Duration::from_millis(250);
        assert_eq!(clock.due(), Some(first), "phase-spread by a quarter period");
        let late = Duration::from_millis(100);
        assert_eq!(
            clock.take(first + late),
            Some(Slot::Fire { intended: first, offset: Duration::from_millis(250), lateness: late })
        );
        assert_eq!(clock.due(), Some(first + Duration::from_secs(1)));
        // Due at 1.25 s, taken at 3.5 s: the slots at 1.25, 2.25 and 3.25 s are missed.
        assert_eq!(clock.take(t0 + Duration::from_millis(3500)), Some(Slot::Skipped(3)));
        assert_eq!(clock.due(), Some(t0 + Duration::from_millis(4250)));
        let mut fired = 1;
        while let Some(due) = clock.due() {
            assert!(matches!(clock.take(due), Some(Slot::Fire { .. })));
            fired += 1;
        }
        assert_eq!(fired, 7, "0.25 s and 4.25 s to 9.25 s");
        assert_eq!(clock.take(t0 + Duration::from_secs(20)), None);
    }
}
