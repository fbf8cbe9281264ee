//! The chaos run's population and broadcaster. The population is the profile engine's (a
//! constant rate per session from the load mix); its hooks keep every session and its
//! server-to-client stream alive through the faults and count what the broadcasts reached (the
//! delivery tracker shared with the notify profile).

use super::*;

pub(super) fn classify(r: Result<(), McpError>) -> RequestResult {
    match r {
        Ok(()) => RequestResult::Success,
        Err(e) => RequestResult::Failed(e.error_type()),
    }
}

/// Connect (a new session) and, with `stream`, open its server-to-client stream; records the
/// attempt as a `connect` operation.
pub(super) async fn establish(ctx: &Ctx, client: &McpClient, intended: Instant, stream: bool) -> bool {
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
/// broadcasts, and attributes every operation to its phase (`attributed_phase`).
pub(super) struct ChaosSessions {
    ctx: Arc<Ctx>,
    sessions: Vec<SessionState>,
    /// Streams reopened in the background.
    pub(super) reopens: TaskTracker,
}

impl ChaosSessions {
    pub(super) fn new(ctx: Arc<Ctx>) -> Self {
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
    pub(super) fn engine(run: &ChaosRun, drain: Duration) -> EngineConfig {
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
        {
            // On the report's timeline too (the population's: requests and deliveries together).
            ctx.population.timeline.delivery(None);
            if let Some(st) = self.state(index) {
                st.heard.fetch_max(i + 1, Ordering::Relaxed);
            }
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
pub(super) async fn open_stream(ctx: &Ctx, client: &McpClient) {
    match tokio::time::timeout(ctx.client.request_timeout, client.open_stream()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "Chaos session stream not opened"),
        Err(_) => tracing::debug!("Chaos session stream open timed out"),
    }
}

/// Trigger a numbered broadcast every `every` until stopped.
pub(super) async fn broadcaster(ctx: Arc<Ctx>, spec: BroadcastTrigger) {
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
