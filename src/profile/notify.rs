//! Notification stress: N sessions each hold a server-to-client stream (the GET stream in the
//! 2025 era); the runner triggers B batches of K broadcasts through the target's trigger tool,
//! each carrying a nonce; the target stamps the send time (wall clock, the only cross-process
//! clock). Every session records which broadcasts it got and when: delivery ratio, send-to-receive
//! latency (HdrHistogram), sessions that missed any, duplicates and out-of-order arrivals.
//!
//! In session scope every session calls the trigger tool itself, with its own nonce per round,
//! and expects its own notification on whichever stream the server uses (the POST response's or
//! its GET stream); latency runs from its trigger's send. A notification matches when its method
//! is the run's and the nonce appears in any string of its params (`nonce.rs`); every method that
//! arrived is tallied (bounded) so a run that matched nothing says what came instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::delivery::{DeliveryTracker, Tally};
use super::nonce::{Arrived, Nonce, find_nonce, nonce};
use super::replicas::{ReplicaDelivery, ReplicaTagging};
use super::report::{self, Regression, RunReport, ThresholdOrigin, ThresholdResult, Tolerance};
use super::stats::Latency;
use super::threshold::Threshold;
use super::{Hooks, LiveRun, Population, drive, process_cpu_seconds, verdict};
use crate::clock::unix_seconds;
use crate::mcp::client::ServerNotification;
use crate::mcp::{ClientConfig, LogLevel, McpClient};
use crate::spec::TriggerScope;

/// A validated notification-stress run.
#[derive(Debug, Clone)]
pub struct NotifyRun {
    pub profile: String,
    pub target: String,
    pub sessions: u32,
    pub batches: u32,
    /// Broadcasts per batch.
    pub broadcasts: u32,
    /// From the start of one batch to the start of the next.
    pub batch_interval: Duration,
    /// Tool that broadcasts `{nonce}` to every session (or, in session scope, notifies its caller).
    pub trigger_tool: String,
    /// Who calls the trigger tool.
    pub trigger_scope: TriggerScope,
    /// Its arguments; `{nonce}` in any string is replaced by the broadcast's nonce.
    pub trigger_arguments: Value,
    /// Notification method the broadcasts arrive as.
    pub method: String,
    pub thresholds: Vec<Threshold>,
    pub thresholds_origin: ThresholdOrigin,
    pub abort_on_fail: bool,
    pub tick: Duration,
    /// How long sessions may take to connect and open their streams.
    pub connect_timeout: Duration,
    /// Sessions connecting at once during the ramp.
    pub connect_concurrency: u32,
    /// How long to wait for stragglers after the last broadcast.
    pub settle: Duration,
    /// Tally deliveries by the replica holding each session's stream (balanced targets).
    pub replicas: Option<Arc<ReplicaTagging>>,
}

impl NotifyRun {
    pub fn total_broadcasts(&self) -> u64 {
        u64::from(self.batches) * u64::from(self.broadcasts)
    }
}

/// Parameters of a notify run, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotifyParams {
    pub sessions: u32,
    pub batches: u32,
    pub broadcasts_per_batch: u32,
    pub batch_interval_s: f64,
    pub trigger_tool: String,
    /// Absent in reports written before trigger scopes: broadcast.
    #[serde(default)]
    pub trigger_scope: TriggerScope,
    pub method: String,
}

/// The notify section of the run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotifyResults {
    pub params: NotifyParams,
    /// Sessions that connected and opened their stream.
    pub sessions_ready: u64,
    /// Broadcasts triggered (the trigger call sent, whatever its answer).
    pub broadcasts: u64,
    /// Trigger calls that failed or answered `isError`.
    pub trigger_errors: u64,
    /// sessions x broadcasts.
    pub expected: u64,
    /// Distinct broadcasts received, summed over sessions.
    pub received: u64,
    /// received / expected.
    pub delivery_ratio: f64,
    /// Sessions that missed at least one broadcast.
    pub sessions_missing_any: u64,
    /// The same broadcast received again by a session.
    pub duplicates: u64,
    /// Broadcasts received after a later one by the same session.
    pub out_of_order: u64,
    /// Send (target wall clock) to receive (this process's wall clock).
    pub latency: Latency,
    /// Deliveries by the replica that held the session's stream (`--replicas`); absent otherwise.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub replicas: std::collections::BTreeMap<String, ReplicaDelivery>,
    /// Notifications the sessions received, by method (matching or not): at most 16 names, each
    /// cut to 64 characters with control characters as `?`, the rest counted as `other`.
    #[serde(default)]
    pub arrived: BTreeMap<String, u64>,
}

/// Receives delivery events as they happen (telemetry implements it).
pub trait NotifyObserver: Send + Sync {
    fn expected(&self, _n: u64) {}
    fn delivered(&self, _latency: Option<Duration>) {}
    fn duplicate(&self) {}
    fn out_of_order(&self) {}
}

/// Observer that ignores everything.
pub struct NoNotifyObserver;
impl NotifyObserver for NoNotifyObserver {}

/// Live accumulators of a run: deliveries, and the run's own counters.
struct Tracker {
    delivery: DeliveryTracker,
    ready: AtomicU64,
    settled: AtomicU64,
    trigger_errors: AtomicU64,
    /// Session-scope trigger calls answered or failed, over all sessions.
    calls_done: AtomicU64,
    /// Methods that arrived, merged from every session as it ends.
    arrived: Mutex<Arrived>,
}

impl Tracker {
    fn new(sessions: u32, broadcasts: u64) -> Self {
        Self {
            delivery: DeliveryTracker::new(sessions, broadcasts),
            ready: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            trigger_errors: AtomicU64::new(0),
            calls_done: AtomicU64::new(0),
            arrived: Mutex::new(Arrived::default()),
        }
    }

    fn tally(&self, sessions: u32) -> Tally {
        self.delivery.tally(sessions)
    }
}

/// From a send stamp of the target's wall clock (Unix ms) to now on this process's.
fn wall_latency(sent_at_ms: u64) -> Duration {
    let now_us = crate::clock::unix_micros();
    // Clocks of two processes: a receive "before" the send (same host, ms stamp) is 0.
    Duration::from_micros(now_us.saturating_sub(sent_at_ms.saturating_mul(1000)))
}

struct NotifyLive<'a> {
    run: &'a NotifyRun,
    tracker: &'a Tracker,
}

impl LiveRun for NotifyLive<'_> {
    fn evaluate(&self) -> Vec<ThresholdResult> {
        if self.run.thresholds.is_empty() {
            return Vec::new();
        }
        let tally = self.tracker.tally(self.run.sessions);
        let source = tally.deliveries();
        self.run.thresholds.iter().map(|t| t.evaluate(&source)).collect()
    }

    /// Sessions holding their stream; the driver asks every tick, so the timeline records the
    /// population here too (intervals with no session getting ready nor a delivery).
    fn population(&self) -> Population {
        let sessions = self.tracker.ready.load(Ordering::Relaxed);
        self.tracker.delivery.timeline.population(0, sessions);
        Population { sessions, in_flight: 0 }
    }

    fn detail(&self) -> String {
        let tally = self.tracker.tally(self.run.sessions);
        let t = &self.tracker.delivery;
        format!(
            "broadcasts={}/{} received={}/{} delivery={:.2}% duplicates={} out_of_order={} p95={}",
            t.broadcasts.load(Ordering::Relaxed),
            self.run.total_broadcasts(),
            tally.received,
            tally.expected,
            tally.delivery() * 100.0,
            t.duplicates.load(Ordering::Relaxed),
            t.out_of_order.load(Ordering::Relaxed),
            super::threshold::format_seconds(tally.latency.value_at_quantile(0.95) as f64 / 1e6),
        )
    }

    fn min_abort_samples(&self, _result: &ThresholdResult) -> u64 {
        // One whole broadcast over the population before a delivery breach may abort.
        u64::from(self.run.sessions).max(1)
    }
}

struct Ctx {
    run: NotifyRun,
    client: ClientConfig,
    http: reqwest::Client,
    tracker: Tracker,
    observer: Arc<dyn NotifyObserver>,
    run_id: String,
    /// Ends the sessions (after the settle wait, or on abort).
    stop: CancellationToken,
    /// Permits to connect: `connect_concurrency` sessions ramp at once.
    ramp: tokio::sync::Semaphore,
    /// Broadcast rounds released so far (session scope: each session triggers them itself).
    rounds: tokio::sync::watch::Sender<u64>,
}

impl Ctx {
    /// Count one notification `session` received and record it if it is one of its broadcasts.
    /// `sent` holds the session's own trigger instants (session scope).
    fn on_notification(&self, session: usize, n: &ServerNotification, sent: &[Option<Instant>], arrived: &mut Arrived) {
        arrived.count(&n.method);
        if n.method != self.run.method {
            return;
        }
        let Some(Nonce { session: from, index }) = find_nonce(&n.params, &self.run_id) else { return };
        let since = |at: Instant| n.received_at.saturating_duration_since(at);
        let latency = match self.run.trigger_scope {
            // Another session's nonce (a server that broadcasts what one session triggered).
            TriggerScope::Session if from != Some(session) => return,
            TriggerScope::Session => sent.get(index).copied().flatten().map(since),
            TriggerScope::Broadcast if from.is_some() => return,
            // The target's send stamp (the reference target's), else the trigger's send.
            TriggerScope::Broadcast => match n.params.pointer("/data/sent_at_ms").and_then(Value::as_u64) {
                Some(ms) => Some(wall_latency(ms)),
                None => self.tracker.delivery.sent.get(index).and_then(OnceLock::get).copied().map(since),
            },
        };
        self.tracker.delivery.receive(session, index, latency, self.observer.as_ref());
    }

    /// Count a trigger call's outcome.
    fn triggered(&self, result: Result<crate::mcp::ToolResult, crate::mcp::McpError>) {
        match result {
            Ok(r) if !r.is_error => {}
            Ok(r) => {
                self.tracker.trigger_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(content = %r.content, "Notify trigger answered isError");
            }
            Err(e) => {
                self.tracker.trigger_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "Notify trigger failed");
            }
        }
    }
}

/// What a session holds once connected.
enum Opened {
    /// A server-to-client stream.
    Stream,
    /// No stream (the server offers none, or opening it failed): enough in session scope.
    PostOnly,
}

/// One session: connect, open the stream, record every broadcast until stopped; in session scope
/// also trigger each released round itself.
async fn session(index: usize, ctx: Arc<Ctx>) {
    let client = McpClient::with_own_connections(ctx.client.clone(), ctx.http.clone());
    if let Some(tagging) = &ctx.run.replicas {
        tagging.watch(&client);
    }
    let scope = ctx.run.trigger_scope;
    // Subscribe before the stream opens so nothing it carries is missed. The ring holds a few
    // batches: this task takes each broadcast as it arrives, and every slot costs every session.
    let ring = (2 * ctx.run.broadcasts as usize).clamp(16, crate::mcp::session::NOTIFICATION_BUFFER);
    let mut rx = client.notifications_buffered(ring);
    // Boxed, as is the close below: the task lives for the whole hold, and inlined these futures
    // (the handshake down to the connection setup) made every session's task about 5 KB.
    let opened = tokio::select! {
        _ = ctx.stop.cancelled() => None,
        r = Box::pin(async {
            let _permit = ctx.ramp.acquire().await;
            client.connect().await?;
            match (client.open_stream().await, scope) {
                (Ok(true), _) => Ok(Some(Opened::Stream)),
                (Ok(false), TriggerScope::Session) => Ok(Some(Opened::PostOnly)),
                (Err(e), TriggerScope::Session) => {
                    tracing::debug!(session = index, error = %e, "Notify session has no stream; POST streams only");
                    Ok(Some(Opened::PostOnly))
                }
                (Ok(false), TriggerScope::Broadcast) => Ok(None),
                (Err(e), TriggerScope::Broadcast) => Err(e),
            }
        }) => Some(r),
    };
    ctx.tracker.settled.fetch_add(1, Ordering::Relaxed);
    let mut triggers = false;
    match opened {
        Some(Ok(Some(opened))) => {
            let ready = ctx.tracker.ready.fetch_add(1, Ordering::Relaxed) + 1;
            ctx.tracker.delivery.timeline.population(0, ready);
            triggers = scope == TriggerScope::Session;
            // The latest response is the GET that opened the stream: its replica holds it.
            if let (Opened::Stream, Some(tagging)) = (opened, &ctx.run.replicas) {
                ctx.tracker.delivery.tag_replica(index, tagging.served_by(&client));
            }
        }
        Some(Ok(None)) => tracing::warn!(session = index, "Server offers no server-to-client stream"),
        Some(Err(e)) => tracing::debug!(session = index, error = %e, "Notify session not ready"),
        None => return,
    }
    let mut arrived = Arrived::default();
    // Session scope: when this session sent the trigger of each round.
    let mut sent: Vec<Option<Instant>> =
        if triggers { vec![None; ctx.tracker.delivery.sent.len()] } else { Vec::new() };
    let mut rounds = ctx.rounds.subscribe();
    let mut next_round = 0u64;
    'hold: loop {
        let released = *rounds.borrow_and_update();
        if triggers && next_round < released {
            let round = next_round;
            next_round += 1;
            let nonce = nonce(&ctx.run_id, Some(index), round);
            let args = crate::runner::canary::substitute_nonce(&ctx.run.trigger_arguments, &nonce);
            if let Some(slot) = sent.get_mut(round as usize) {
                *slot = Some(Instant::now());
            }
            // The nonce doubles as the progress token: progress notifications carry it too.
            let mut call = Box::pin(client.call_tool(&ctx.run.trigger_tool, args, Some(&nonce)));
            // Receive while the call is in flight: the notification may come on its stream first.
            let result = loop {
                tokio::select! {
                    _ = ctx.stop.cancelled() => break 'hold,
                    r = &mut call => break r,
                    got = rx.recv() => match got {
                        Ok(n) => ctx.on_notification(index, &n, &sent, &mut arrived),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(session = index, lost = n, "Notify session fell behind its notification channel");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break 'hold,
                    },
                }
            };
            drop(call);
            ctx.triggered(result);
            ctx.tracker.calls_done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let got = tokio::select! {
            _ = ctx.stop.cancelled() => break,
            changed = rounds.changed(), if triggers => {
                if changed.is_err() {
                    triggers = false;
                }
                continue;
            }
            got = rx.recv() => got,
        };
        match got {
            Ok(n) => ctx.on_notification(index, &n, &sent, &mut arrived),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(session = index, lost = n, "Notify session fell behind its notification channel");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    if let Ok(mut all) = ctx.tracker.arrived.lock() {
        all.merge(&arrived);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), Box::pin(client.close())).await;
}

/// Trigger every batch, then wait for stragglers; stops early when `cancel` fires. Returns why
/// the run cannot go on when the broadcast trigger session cannot connect (every broadcast would
/// fail, each after a timeout).
async fn trigger(ctx: &Ctx, cancel: &CancellationToken) -> Option<String> {
    let t = &ctx.tracker;
    let sessions = u64::from(ctx.run.sessions);
    let deadline = tokio::time::Instant::now() + ctx.run.connect_timeout;
    // Wait for the population: every session ready or given up.
    while t.settled.load(Ordering::Relaxed) < sessions && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let scope = ctx.run.trigger_scope;
    // Broadcast scope: one trigger session of its own; in session scope the sessions trigger.
    let trigger = (scope == TriggerScope::Broadcast)
        .then(|| McpClient::with_own_connections(ctx.client.clone(), ctx.http.clone()));
    if let Some(trigger) = &trigger
        && let Err(e) = trigger.connect().await
    {
        tracing::error!(error = %e, "Trigger session not connected; stopping the run");
        cancel.cancel();
        return Some(format!(
            "the trigger session could not connect ({}): {}",
            e.error_type(),
            crate::mcp::protocol::printable(&e.to_string(), 300)
        ));
    }
    let start = tokio::time::Instant::now();
    let mut index = 0u64;
    'batches: for batch in 0..ctx.run.batches {
        let at = start + ctx.run.batch_interval * batch;
        tokio::select! {
            _ = cancel.cancelled() => break 'batches,
            _ = tokio::time::sleep_until(at) => {}
        }
        for _ in 0..ctx.run.broadcasts {
            if cancel.is_cancelled() {
                break 'batches;
            }
            t.delivery.broadcasts.fetch_add(1, Ordering::Relaxed);
            ctx.observer.expected(sessions);
            let round = index;
            index += 1;
            let Some(trigger) = &trigger else {
                // Every ready session triggers this round itself.
                ctx.rounds.send_replace(index);
                continue;
            };
            let nonce = nonce(&ctx.run_id, None, round);
            let args = crate::runner::canary::substitute_nonce(&ctx.run.trigger_arguments, &nonce);
            if let Some(sent) = t.delivery.sent.get(round as usize) {
                let _ = sent.set(Instant::now());
            }
            ctx.triggered(trigger.call_tool(&ctx.run.trigger_tool, args, Some(&nonce)).await);
        }
    }
    if scope == TriggerScope::Session {
        // Until every ready session's trigger calls are answered (bounded by the request timeout).
        let calls = t.ready.load(Ordering::Relaxed) * index;
        let until = tokio::time::Instant::now() + ctx.client.request_timeout;
        while t.calls_done.load(Ordering::Relaxed) < calls && tokio::time::Instant::now() < until {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
    // Stragglers: until everything expected arrived or the settle time is over.
    let settle_until = tokio::time::Instant::now() + ctx.run.settle;
    while tokio::time::Instant::now() < settle_until {
        let tally = t.tally(ctx.run.sessions);
        if tally.received >= tally.expected {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    if let Some(trigger) = &trigger {
        let _ = tokio::time::timeout(Duration::from_secs(2), trigger.close()).await;
    }
    None
}

/// Run a notification-stress profile and build its report.
pub async fn run_notify(
    run: NotifyRun,
    mut client: ClientConfig,
    http: reqwest::Client,
    observer: Arc<dyn NotifyObserver>,
    hooks: Hooks,
    cancel: CancellationToken,
) -> RunReport {
    // Broadcasts of log messages are opted into (2026-07-28 servers send none otherwise).
    client.log_level = client.log_level.or(LogLevel::to_receive(&run.method));
    let started_at = unix_seconds();
    let begin = tokio::time::Instant::now();
    let run_id = format!("{:08x}", rand::random::<u32>());
    let work_cancel = cancel.child_token();
    let ramp = tokio::sync::Semaphore::new(run.connect_concurrency.max(1) as usize);
    let ctx = Arc::new(Ctx {
        tracker: Tracker::new(run.sessions, run.total_broadcasts()),
        run,
        client,
        http,
        observer,
        run_id,
        stop: CancellationToken::new(),
        ramp,
        rounds: tokio::sync::watch::Sender::new(0),
    });
    let tasks = TaskTracker::new();
    for i in 0..ctx.run.sessions as usize {
        tasks.spawn(session(i, Arc::clone(&ctx)));
    }
    tasks.close();
    let live = NotifyLive { run: &ctx.run, tracker: &ctx.tracker };
    let driven =
        drive(trigger(&ctx, &work_cancel), &live, &hooks, ctx.run.tick, ctx.run.abort_on_fail, &work_cancel).await;
    ctx.stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;

    let t = &ctx.tracker;
    let tally = t.tally(ctx.run.sessions);
    let broadcasts = t.delivery.broadcasts.load(Ordering::Relaxed);
    let aborted = work_cancel.is_cancelled();
    let run = &ctx.run;
    let (verdict, verdict_reason) = verdict(&driven.thresholds, aborted, tally.received);
    RunReport {
        format: report::REPORT_FORMAT,
        profile: run.profile.clone(),
        target: run.target.clone(),
        started_at,
        ended_at: unix_seconds(),
        elapsed_s: begin.elapsed().as_secs_f64(),
        aborted,
        abort_reason: if aborted { driven.out.or(driven.abort_reason) } else { None },
        load: None,
        longevity: None,
        timeline: Some(ctx.tracker.delivery.timeline.timeline()),
        notify: Some(NotifyResults {
            params: NotifyParams {
                sessions: run.sessions,
                batches: run.batches,
                broadcasts_per_batch: run.broadcasts,
                batch_interval_s: run.batch_interval.as_secs_f64(),
                trigger_tool: run.trigger_tool.clone(),
                trigger_scope: run.trigger_scope,
                method: run.method.clone(),
            },
            sessions_ready: t.ready.load(Ordering::Relaxed),
            broadcasts,
            trigger_errors: t.trigger_errors.load(Ordering::Relaxed),
            expected: tally.expected,
            received: tally.received,
            delivery_ratio: tally.delivery(),
            sessions_missing_any: t.delivery.sessions_missing_any(broadcasts),
            duplicates: t.delivery.duplicates.load(Ordering::Relaxed),
            out_of_order: t.delivery.out_of_order.load(Ordering::Relaxed),
            latency: Latency::of(&tally.latency),
            replicas: t.delivery.by_replica(broadcasts),
            arrived: t.arrived.lock().map(|a| a.clone().into_map()).unwrap_or_default(),
        }),
        verdict,
        verdict_reason,
        thresholds: driven.thresholds,
        thresholds_origin: run.thresholds_origin,
        client_cpu_seconds: process_cpu_seconds(),
    }
}

/// Regressions of a notify run against its baseline: latency percentiles and delivery.
pub fn compare(base: &NotifyResults, cur: &NotifyResults, tol: Tolerance, out: &mut Vec<Regression>) {
    let scope = "notifications";
    if base.received > 0 && cur.received > 0 {
        for (stat, b, c) in [
            ("p50_ms", base.latency.p50_ms, cur.latency.p50_ms),
            ("p95_ms", base.latency.p95_ms, cur.latency.p95_ms),
            ("p99_ms", base.latency.p99_ms, cur.latency.p99_ms),
        ] {
            let allowed = b * (1.0 + tol.latency_ratio) + tol.latency_floor_ms;
            if c > allowed {
                out.push(Regression { scope: scope.into(), stat: stat.into(), baseline: b, current: c, allowed });
            }
        }
    }
    let allowed = base.delivery_ratio - tol.error_rate;
    if cur.delivery_ratio < allowed {
        out.push(Regression {
            scope: scope.into(),
            stat: "delivery_ratio".into(),
            baseline: base.delivery_ratio,
            current: cur.delivery_ratio,
            allowed,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_observe_delivery_and_latency() {
        let t = DeliveryTracker::new(5, 2);
        t.broadcasts.store(2, Ordering::Relaxed);
        let o = NoNotifyObserver;
        for s in 0..4 {
            for b in 0..2 {
                t.receive(s, b, Some(Duration::from_millis(10 * (s as u64 + 1))), &o);
            }
        }
        let tally = t.tally(5);
        let source = tally.deliveries();
        let d = Threshold::parse("delivery >= 99%").unwrap().evaluate(&source);
        assert_eq!((d.observed, d.samples, d.passed), (0.8, 10, false));
        let p = Threshold::parse("p95 < 500ms").unwrap().evaluate(&source);
        assert!((p.observed - 0.04).abs() < 0.001, "{p:?}");
        assert_eq!((p.samples, p.passed), (8, true));
        // Nothing timed yet: latency has no data, whatever the deliveries.
        let empty = DeliveryTracker::new(1, 1).tally(1);
        let r = Threshold::parse("p95 < 500ms").unwrap().evaluate(&empty.deliveries());
        assert_eq!(r.status, report::ThresholdStatus::NoData);
    }
}
