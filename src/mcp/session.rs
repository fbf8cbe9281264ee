//! Shared session state and the request exchange: one POST, its JSON or SSE answer, stream
//! resumption, server requests answered, notifications fanned out, background streams.

use super::McpError;
use super::client::{ClientConfig, ServerInfo, ServerNotification, StreamKind, StreamStats};
use super::lean::Lean;
use super::protocol::{self, Era, MAX_SERVER_REQUESTS_PER_REQUEST, RawIncoming, RawResult, method};
use super::sse::{EventStream, Frame, Seen, drain, event_key, next_frame, retry_delay};
use super::transport::{Body, McpHeaders, Transport};
use serde_json::Value;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Bound on GET + `Last-Event-ID` attempts for one POST stream.
pub const MAX_RESUME_ATTEMPTS: u32 = 3;
/// Bound on consecutive failed reconnects of a background stream.
pub const MAX_STREAM_RECONNECTS: u32 = 5;
/// Remembered event keys and answered request ids.
const SEEN_CAPACITY: usize = 4096;
/// Server-to-client requests answered on a background stream (GET or `subscriptions/listen`) per
/// `SERVER_REQUEST_WINDOW`; more in the same window are dropped unanswered (and logged once per
/// window), so a flood there costs at most this many POSTs a minute.
pub const MAX_SERVER_REQUESTS_PER_WINDOW: usize = MAX_SERVER_REQUESTS_PER_REQUEST;
/// The window of `MAX_SERVER_REQUESTS_PER_WINDOW`.
pub const SERVER_REQUEST_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Notifications buffered per subscriber before a slow one lags. The ring is allocated up front
/// for every client that subscribes, so it is kept small: at 1,024 slots of full copies it was
/// about 100 KB per session, two thirds of the client's memory in a notify run.
pub const NOTIFICATION_BUFFER: usize = 64;

/// What a request is sent under: the negotiated (or being negotiated) era and ids.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub era: Era,
    /// `MCP-Protocol-Version` to send; `None` during `initialize`.
    pub version: Option<String>,
    pub session_id: Option<String>,
}

impl Ctx {
    pub fn headers(&self, method: Option<&str>, params: &Value) -> McpHeaders {
        let stateless = self.era == Era::Stateless;
        McpHeaders {
            session_id: self.session_id.clone(),
            protocol_version: self.version.clone(),
            method: method.filter(|_| stateless).map(str::to_string),
            name: method.filter(|_| stateless).and_then(|m| protocol::mcp_name(m, params)),
        }
    }
}

/// A negotiated session (or stateless connection).
pub struct Session {
    pub ctx: Ctx,
    pub info: ServerInfo,
    /// Stops this session's background streams.
    pub cancel: CancellationToken,
}

/// A response plus the session id header it came with.
pub struct Answer {
    /// The result as text: `value()` parses it (bounded), a list reads it page by page.
    pub result: RawResult,
    pub session_id: Option<String>,
}

#[derive(Default)]
struct Stats {
    reconnects: AtomicU64,
    resumed: AtomicU64,
    duplicates_dropped: AtomicU64,
    server_requests_answered: AtomicU64,
}

/// Everything the client and its background tasks share.
pub struct Inner {
    pub config: ClientConfig,
    pub transport: Transport,
    /// Created by the first `subscribe`: without subscribers notifications are dropped anyway,
    /// so clients nobody listens to (load sessions) allocate no ring.
    tx: OnceLock<broadcast::Sender<Arc<ServerNotification>>>,
    pub session: Mutex<Option<Session>>,
    /// Cancelled when the client is dropped.
    pub root: CancellationToken,
    next_id: AtomicI64,
    stats: Stats,
    seen: Mutex<Seen>,
    /// The stateless revision's `_meta` keys, written into every request of that era; built on
    /// first use, so 2025 sessions (notify runs hold thousands) never carry it.
    meta: OnceLock<serde_json::Map<String, Value>>,
}

impl Inner {
    /// `lean`: plain-http requests go over these connections instead of `http`.
    pub fn new(config: ClientConfig, http: reqwest::Client, lean: Option<Arc<Lean>>) -> Self {
        let transport = Transport::new(
            http,
            config.url.clone(),
            config.headers.clone(),
            config.max_response_bytes,
            config.request_timeout,
        )
        .with_accept(config.accept.header())
        .with_auth(config.auth.clone())
        .with_connections(lean);
        Self {
            config,
            transport,
            tx: OnceLock::new(),
            session: Mutex::new(None),
            root: CancellationToken::new(),
            next_id: AtomicI64::new(1),
            stats: Stats::default(),
            seen: Mutex::new(Seen::new(SEEN_CAPACITY)),
            meta: OnceLock::new(),
        }
    }

    /// A receiver of every notification that arrives from now on; the first subscription sizes
    /// the ring.
    pub fn subscribe(&self, capacity: usize) -> broadcast::Receiver<Arc<ServerNotification>> {
        self.tx.get_or_init(|| broadcast::channel(capacity.max(1)).0).subscribe()
    }

    pub fn stats(&self) -> StreamStats {
        let s = &self.stats;
        StreamStats {
            reconnects: s.reconnects.load(Ordering::Relaxed),
            resumed: s.resumed.load(Ordering::Relaxed),
            duplicates_dropped: s.duplicates_dropped.load(Ordering::Relaxed),
            server_requests_answered: s.server_requests_answered.load(Ordering::Relaxed),
        }
    }

    /// Input requests of an `InputRequiredResult` answered (counted with the server requests).
    pub fn count_input_answers(&self, n: usize) {
        self.stats.server_requests_answered.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn first_time(&self, key: String) -> bool {
        let fresh = self.seen.lock().map(|mut s| s.insert(key)).unwrap_or(true);
        if !fresh {
            self.stats.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    /// `meta` with the caller's trace context added, when it holds one (else `None`: the
    /// request goes out as it would without tracing).
    fn trace_meta(&self, meta: Option<&serde_json::Map<String, Value>>) -> Option<serde_json::Map<String, Value>> {
        let trace = self.config.trace.get()?;
        Some(protocol::with_trace(meta, &trace.traceparent, trace.tracestate.as_deref()))
    }

    /// One request under `ctx`, bounded by the request timeout as a whole.
    pub async fn exchange(&self, ctx: &Ctx, method: &str, params: &Value) -> Result<Answer, McpError> {
        let timeout = self.config.request_timeout;
        tokio::select! {
            r = tokio::time::timeout(timeout, self.exchange_untimed(ctx, method, params)) => {
                r.map_err(|_| McpError::Timeout(timeout))?
            }
            _ = self.root.cancelled() => Err(McpError::Cancelled),
        }
    }

    async fn exchange_untimed(&self, ctx: &Ctx, method: &str, params: &Value) -> Result<Answer, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = (ctx.era == Era::Stateless).then(|| {
            let c = &self.config;
            self.meta.get_or_init(|| protocol::stateless_meta(c.meta_fields()))
        });
        let traced = self.trace_meta(meta);
        let meta = traced.as_ref().or(meta);
        let headers = ctx.headers(Some(method), params);
        let message = protocol::Outgoing { id: Some(id), method, params, meta };
        let reply = self.transport.post(&message, &headers).await?;
        let session_id = reply.session_id;
        let result = match reply.body {
            Body::Empty => Err(McpError::InvalidJson(format!("HTTP {} with no body for a request", reply.status))),
            Body::Json(text) => match protocol::parse_raw(text)? {
                // Error bodies come with id null, absent, or even a string like "server-error".
                RawIncoming::Response { id: rid, outcome } if protocol::id_matches(&rid, id) || outcome.is_err() => {
                    outcome.map_err(|(code, message)| McpError::JsonRpc { code, message })
                }
                RawIncoming::Response { .. } => Err(McpError::InvalidJson("response id does not match".into())),
                _ => Err(McpError::InvalidJson("expected a JSON-RPC response".into())),
            },
            Body::Sse(stream) => self.await_on_stream(ctx, id, stream).await,
        }?;
        Ok(Answer { result, session_id })
    }

    /// POST a notification; any 2xx is success.
    pub async fn notify(&self, ctx: &Ctx, method: &str, params: Value) -> Result<(), McpError> {
        let timeout = self.config.request_timeout;
        let headers = ctx.headers(Some(method), &params);
        let traced = self.trace_meta(None);
        let message = protocol::Outgoing { id: None, method, params: &params, meta: traced.as_ref() };
        tokio::time::timeout(timeout, self.transport.post(&message, &headers))
            .await
            .map_err(|_| McpError::Timeout(timeout))?
            .map(|_| ())
    }

    /// Read a POST's SSE stream until the response with `id`, resuming with GET + `Last-Event-ID`.
    async fn await_on_stream(&self, ctx: &Ctx, id: i64, mut stream: EventStream) -> Result<RawResult, McpError> {
        let mut last_event_id: Option<String> = None;
        let mut retry = None;
        let mut attempts = 0;
        let mut budget = Budget::per_request();
        loop {
            let ended_with = loop {
                match next_frame(&mut stream).await {
                    None => break None,
                    Some(Err(e @ (McpError::Reset(_) | McpError::Timeout(_)))) => break Some(e),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(frame)) => {
                        note_frame(&frame, &mut last_event_id, &mut retry);
                        let via = StreamKind::PostResponse;
                        if let Some(done) = self.handle_frame(ctx, frame, Some(id), via, &mut budget).await {
                            // A flood is not read further: dropping the stream closes it.
                            if !matches!(done, Err(McpError::Protocol(_))) {
                                drain(stream);
                            }
                            return done;
                        }
                    }
                }
            };
            let resumable = ctx.era == Era::Session && last_event_id.is_some();
            if !resumable || attempts >= MAX_RESUME_ATTEMPTS {
                return Err(match ended_with {
                    Some(e) if !resumable => e,
                    _ => McpError::InvalidSse("stream ended before the response".into()),
                });
            }
            attempts += 1;
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(retry_delay(retry)).await;
            let headers = ctx.headers(None, &Value::Null);
            match self.transport.get(&headers, last_event_id.as_deref()).await? {
                Some(s) => {
                    self.stats.resumed.fetch_add(1, Ordering::Relaxed);
                    stream = s;
                }
                None => return Err(McpError::InvalidSse("stream ended before the response; no resumption".into())),
            }
        }
    }

    /// Act on one frame. Returns the awaited response when this frame carries it.
    async fn handle_frame(
        &self,
        ctx: &Ctx,
        frame: Frame,
        awaiting: Option<i64>,
        via: StreamKind,
        budget: &mut Budget,
    ) -> Option<Result<RawResult, McpError>> {
        let received_at = Instant::now();
        if let Some(key) = event_key(&frame)
            && frame.message.is_some()
            && !self.first_time(key)
        {
            return None;
        }
        let message = match protocol::parse_raw(frame.message?) {
            Ok(m) => m,
            Err(e) => return awaiting.map(|_| Err(e)),
        };
        match message {
            RawIncoming::Response { id, outcome } => {
                let ours =
                    awaiting.is_some_and(|ours| protocol::id_matches(&id, ours) || (id.is_null() && outcome.is_err()));
                if ours {
                    return Some(outcome.map_err(|(code, message)| McpError::JsonRpc { code, message }));
                }
                // A replayed old response, or one for another request.
                self.stats.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
            RawIncoming::Notification { method, params } => {
                if let Some(tx) = self.tx.get() {
                    let _ = tx.send(Arc::new(ServerNotification { method, params, received_at, via }));
                }
                None
            }
            RawIncoming::Request { id, method, params } => {
                if !self.first_time(format!("r\u{1f}{id}")) {
                    return None;
                }
                match budget.spend() {
                    Spend::Answer => {
                        self.answer(ctx, &id, &method, &params).await;
                        None
                    }
                    Spend::Drop { first } => {
                        if first {
                            tracing::warn!(
                                limit = MAX_SERVER_REQUESTS_PER_WINDOW,
                                window_s = SERVER_REQUEST_WINDOW.as_secs(),
                                "Server sends more requests on its stream than are answered; the rest of this window goes unanswered"
                            );
                        }
                        None
                    }
                    Spend::Abort => Some(Err(McpError::Protocol(format!(
                        "more than {MAX_SERVER_REQUESTS_PER_REQUEST} server-to-client requests during one request"
                    )))),
                }
            }
        }
    }

    /// Answer a server-to-client request with a POST of the JSON-RPC response.
    async fn answer(&self, ctx: &Ctx, id: &Value, method: &str, params: &Value) {
        let response = protocol::answer_server_request(id, self.config.server_requests.answer(method, params));
        let headers = ctx.headers(None, &Value::Null);
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, self.transport.post(&response, &headers)).await {
            Ok(Ok(_)) => {
                self.stats.server_requests_answered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => tracing::debug!(method, error = %e, "Answer to server request failed"),
            Err(_) => tracing::debug!(method, "Answer to server request timed out"),
        }
    }
}

/// How many server-to-client requests one stream may still have answered.
struct Budget {
    used: usize,
    /// Start of the current window; `None` for a POST's stream (one budget for the request).
    window: Option<Instant>,
}

/// What the budget says about one more server request.
#[derive(Debug, PartialEq, Eq)]
enum Spend {
    Answer,
    /// A background stream over its window's budget: not answered; `first` in this window.
    Drop {
        first: bool,
    },
    /// A request's stream over its budget: the request fails.
    Abort,
}

impl Budget {
    fn per_request() -> Self {
        Self { used: 0, window: None }
    }

    fn per_window() -> Self {
        Self { used: 0, window: Some(Instant::now()) }
    }

    fn spend(&mut self) -> Spend {
        if let Some(start) = self.window
            && start.elapsed() >= SERVER_REQUEST_WINDOW
        {
            self.window = Some(Instant::now());
            self.used = 0;
        }
        self.used = self.used.saturating_add(1);
        let cap = if self.window.is_some() { MAX_SERVER_REQUESTS_PER_WINDOW } else { MAX_SERVER_REQUESTS_PER_REQUEST };
        match (self.used <= cap, self.window.is_some()) {
            (true, _) => Spend::Answer,
            (false, true) => Spend::Drop { first: self.used == cap + 1 },
            (false, false) => Spend::Abort,
        }
    }
}

fn note_frame(frame: &Frame, last_event_id: &mut Option<String>, retry: &mut Option<u64>) {
    if frame.id.is_some() {
        last_event_id.clone_from(&frame.id);
    }
    if frame.retry.is_some() {
        *retry = frame.retry;
    }
}

/// Read a background stream (GET or `subscriptions/listen`) until cancelled; resume a dropped GET
/// stream with `Last-Event-ID`, bounded in consecutive failures.
pub async fn run_background(
    inner: Arc<Inner>,
    ctx: Ctx,
    cancel: CancellationToken,
    first: EventStream,
    via: StreamKind,
) {
    let mut stream = first;
    let mut last_event_id: Option<String> = None;
    let mut retry = None;
    let mut budget = Budget::per_window();
    loop {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                f = next_frame(&mut stream) => f,
            };
            match next {
                Some(Ok(frame)) => {
                    note_frame(&frame, &mut last_event_id, &mut retry);
                    // Boxed here and for the reconnect below: this task lives as long as the
                    // stream, and these rare paths (answering a server request, a new GET) would
                    // otherwise size every held stream's task.
                    let _ = Box::pin(inner.handle_frame(&ctx, frame, None, via, &mut budget)).await;
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "Background stream failed");
                    break;
                }
                None => break,
            }
        }
        if via != StreamKind::GetStream {
            return;
        }
        let mut failures = 0;
        stream = loop {
            if failures >= MAX_STREAM_RECONNECTS {
                tracing::debug!("Background stream given up");
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(retry_delay(retry)) => {}
            }
            inner.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            let headers = ctx.headers(None, &Value::Null);
            let attempt = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(inner.config.request_timeout, Box::pin(inner.transport.get(&headers, last_event_id.as_deref()))) => r,
            };
            match attempt {
                Ok(Ok(Some(s))) => {
                    if last_event_id.is_some() {
                        inner.stats.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    break s;
                }
                Ok(Ok(None)) | Ok(Err(McpError::SessionExpired { .. })) => return,
                Ok(Err(_)) | Err(_) => failures += 1,
            }
        };
    }
}

/// Open the server-to-client stream for `ctx`: GET (session era) or a `subscriptions/listen` POST.
pub async fn open_background(inner: &Arc<Inner>, ctx: &Ctx, cancel: &CancellationToken) -> Result<bool, McpError> {
    let timeout = inner.config.request_timeout;
    let (stream, via) = match ctx.era {
        Era::Session => {
            let headers = ctx.headers(None, &Value::Null);
            let got = tokio::time::timeout(timeout, inner.transport.get(&headers, None))
                .await
                .map_err(|_| McpError::Timeout(timeout))??;
            match got {
                Some(s) => (s, StreamKind::GetStream),
                None => return Ok(false),
            }
        }
        Era::Stateless => {
            // The filter is required; ask for every list change the server may announce.
            let filter = serde_json::json!({"notifications": {
                "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true,
            }});
            // With `log_level` set the stream also opts into log messages the server sends on it.
            let params = protocol::with_stateless_meta(filter, inner.config.meta_fields());
            let headers = ctx.headers(Some(method::LISTEN), &params);
            let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
            let message = protocol::request(Some(id), method::LISTEN, params);
            let got = tokio::time::timeout(timeout, inner.transport.post(&message, &headers))
                .await
                .map_err(|_| McpError::Timeout(timeout))?;
            match got {
                Ok(reply) => match reply.body {
                    Body::Sse(s) => (s, StreamKind::Listen),
                    // A JSON answer is an error or an immediate end: no stream.
                    _ => return Ok(false),
                },
                Err(McpError::Http { status: 400 | 404 | 405, .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    };
    tokio::spawn(run_background(Arc::clone(inner), ctx.clone(), cancel.clone(), stream, via));
    Ok(true)
}
