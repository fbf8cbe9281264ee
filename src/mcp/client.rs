//! The MCP client, by operation. Both protocol eras behind one interface; it never knows which
//! profile or metric calls it.

use super::McpError;
use super::lean::Lean;
use super::listing::{Accumulator, ListKind, Listing, MAX_LISTING_BYTES};
use super::protocol::{self, Era, method};
use super::session::{Ctx, Inner, NOTIFICATION_BUFFER, Session, open_background};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub use super::protocol::{LATEST_PROTOCOL, LogLevel, SESSION_PROTOCOLS};

/// Bound on pages followed by a list operation.
pub const MAX_PAGES: usize = 100;

/// A listing's pages share one deadline of this many request timeouts (each page is also
/// bounded by one): a server dripping 100 slow pages cannot hold a probe cycle for 100 timeouts.
pub const LISTING_TIMEOUTS: u32 = 3;

/// A listing page this large or larger is parsed on the blocking pool (`benches/neighbour.rs`
/// measures why); smaller ones, nearly all, cost less than the hand-off.
pub const OFF_THREAD_PAGE_BYTES: usize = 256 * 1024;

/// The default cap on one response body (`max_response_bytes`): 4 MiB. A body is held whole
/// while it is read, so each target's request in flight may cost this much.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Which revision to speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolPreference {
    /// Try 2026-07-28 (`server/discover`), fall back to the 2025 session handshake.
    Auto,
    /// Exactly this version (and its era).
    Pinned(String),
}

/// How to reach one MCP endpoint.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub url: url::Url,
    /// Sent on every request (may contain credentials; never logged).
    pub headers: reqwest::header::HeaderMap,
    pub protocol: ProtocolPreference,
    /// Bound on one whole exchange (headers, body, stream resumption).
    pub request_timeout: Duration,
    /// Cap on one response body, enforced while reading.
    pub max_response_bytes: usize,
    pub client_name: String,
    pub client_version: String,
    /// Client capabilities declared in `initialize` (and `_meta` in 2026-07-28); `{}` declares none.
    pub capabilities: Value,
    /// Which response types POSTs accept.
    pub accept: AcceptMode,
    /// How server-to-client requests (sampling, elicitation, roots, ping) are answered.
    pub server_requests: ServerRequestHandler,
    /// Ask for log notifications (`notifications/message`) at or above this level. On 2026-07-28
    /// every request (`subscriptions/listen` included) carries
    /// `_meta["io.modelcontextprotocol/logLevel"]`: servers of that revision send no log message
    /// for a request without it. On the 2025 revisions nothing is sent (servers log without being
    /// asked there; `logging/setLevel` is left to the caller, through `request`). `None`: no opt-in.
    pub log_level: Option<LogLevel>,
    /// OAuth access tokens for a protected server, sent as `Authorization: Bearer` and renewed
    /// on expiry or a 401/403 challenge (shared by the clients of a target); `None`: only the
    /// configured headers.
    pub auth: Option<Arc<super::auth::TokenSource>>,
    /// W3C trace context written into `params._meta` (`traceparent`, `tracestate`) of every
    /// request while the caller holds one in the slot; empty (the default): none sent.
    pub trace: TraceSlot,
}

/// A W3C trace context as plain data: what a request carries in `params._meta` so the server's
/// spans join the caller's trace (the MCP semantic conventions' context propagation, SEP-414:
/// unprefixed `traceparent` and `tracestate` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-{trace id}-{parent span id}-{flags}`.
    pub traceparent: String,
    /// Vendor entries, when the caller has any.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The same trace with `span_id` (8 bytes, not all zero) as the parent: the context of a
    /// child span the caller exports later under that id, so a server's spans nest under the
    /// operation that sent the request rather than beside it.
    /// A `traceparent` not of version 00's shape is returned unchanged.
    pub fn with_parent(&self, span_id: [u8; 8]) -> TraceContext {
        use std::fmt::Write as _;
        // `00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}`: only the parent id changes.
        let (Some(head), Some(flags)) = (self.traceparent.get(..36), self.traceparent.get(52..)) else {
            return self.clone();
        };
        if self.traceparent.len() != 55 {
            return self.clone();
        }
        let mut traceparent = String::with_capacity(55);
        traceparent.push_str(head);
        for b in span_id {
            let _ = write!(traceparent, "{b:02x}");
        }
        traceparent.push_str(flags);
        TraceContext { traceparent, tracestate: self.tracestate.clone() }
    }
}

/// The trace context requests carry, set and cleared by the caller (the canary: each step's
/// operation span, within its probe span's trace) and shared by every client built from the same
/// `ClientConfig`. The client only
/// reads it; it never knows where the context comes from.
#[derive(Clone, Debug, Default)]
pub struct TraceSlot(Arc<std::sync::RwLock<Option<TraceContext>>>);

impl TraceSlot {
    /// Carry `context` from now on (`None`: nothing).
    pub fn set(&self, context: Option<TraceContext>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = context;
    }

    /// The context requests carry now.
    pub fn get(&self) -> Option<TraceContext> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The name this client gives in `initialize` (`clientInfo.name`) and the stateless `_meta`.
pub const CLIENT_NAME: &str = "mcp-canary";

/// Bound on one whole exchange unless the caller sets another.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientConfig {
    /// The one place a client configuration starts from: `url` with this client's name and
    /// version, no headers, `auto` protocol, [`DEFAULT_REQUEST_TIMEOUT`],
    /// [`DEFAULT_MAX_RESPONSE_BYTES`], no capabilities, no log opt-in. Callers change what they
    /// need with struct update syntax (`ClientConfig { protocol, ..ClientConfig::new(url) }`).
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            headers: Default::default(),
            protocol: ProtocolPreference::Auto,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            client_name: CLIENT_NAME.into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            capabilities: serde_json::json!({}),
            accept: Default::default(),
            server_requests: Default::default(),
            log_level: None,
            auth: None,
            trace: TraceSlot::default(),
        }
    }

    /// The stateless revision's `_meta` fields of this client.
    pub fn meta_fields(&self) -> protocol::MetaFields<'_> {
        protocol::MetaFields {
            capabilities: &self.capabilities,
            client_name: &self.client_name,
            client_version: &self.client_version,
            log_level: self.log_level,
        }
    }
}

/// The `Accept` of POSTs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AcceptMode {
    /// `application/json, text/event-stream`, as the specification requires.
    #[default]
    JsonAndSse,
    /// `application/json` only (strict servers answer 406).
    JsonOnly,
}

impl AcceptMode {
    pub fn header(self) -> &'static str {
        match self {
            Self::JsonAndSse => protocol::ACCEPT_BOTH,
            Self::JsonOnly => protocol::ACCEPT_JSON,
        }
    }
}

/// The answer to one server-to-client request: a result, or a JSON-RPC error (code, message).
pub type ServerAnswer = Result<Value, (i64, String)>;

/// Policy for server-to-client requests: called with the method and params of every request the
/// server sends (on any stream), it returns the answer to POST back. The default answers `ping`
/// and `roots/list` (no roots) and -32601 otherwise.
#[derive(Clone)]
pub struct ServerRequestHandler(Arc<AnswerFn>);

/// The function behind a `ServerRequestHandler`: (method, params) to the answer.
pub type AnswerFn = dyn Fn(&str, &Value) -> ServerAnswer + Send + Sync;

impl ServerRequestHandler {
    pub fn new(f: impl Fn(&str, &Value) -> ServerAnswer + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub fn answer(&self, method: &str, params: &Value) -> ServerAnswer {
        (self.0)(method, params)
    }
}

impl Default for ServerRequestHandler {
    fn default() -> Self {
        Self::new(protocol::default_server_answer)
    }
}

impl std::fmt::Debug for ServerRequestHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerRequestHandler")
    }
}

/// What the server said about itself when the connection was negotiated.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub protocol_version: String,
    pub name: String,
    pub version: String,
    pub session_id: Option<String>,
    pub capabilities: Value,
    pub offers_tools: bool,
    pub offers_resources: bool,
    pub offers_prompts: bool,
    pub offers_completions: bool,
    pub offers_logging: bool,
    pub resources_subscribe: bool,
    /// Negotiated the stateless 2026-07-28 revision.
    pub stateless: bool,
}

impl ServerInfo {
    fn from_result(result: &Value, version: &str, session_id: Option<String>, stateless: bool) -> Self {
        let server_info = result
            .get("serverInfo")
            .or_else(|| result.pointer("/_meta").and_then(|m| m.get(protocol::META_SERVER_INFO)))
            .cloned()
            .unwrap_or(Value::Null);
        let text = |k: &str| server_info.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let capabilities = result.get("capabilities").cloned().unwrap_or_else(|| json!({}));
        let has = |k: &str| capabilities.get(k).is_some_and(|v| !v.is_null());
        Self {
            protocol_version: version.to_string(),
            name: text("name"),
            version: text("version"),
            session_id,
            offers_tools: has("tools"),
            offers_resources: has("resources"),
            offers_prompts: has("prompts"),
            offers_completions: has("completions"),
            offers_logging: has("logging"),
            resources_subscribe: capabilities.pointer("/resources/subscribe").and_then(Value::as_bool).unwrap_or(false),
            capabilities,
            stateless,
        }
    }
}

/// A notification the server sent, stamped when it arrived.
#[derive(Clone, Debug)]
pub struct ServerNotification {
    pub method: String,
    pub params: Value,
    pub received_at: Instant,
    pub via: StreamKind,
}

/// Which stream carried a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    PostResponse,
    GetStream,
    Listen,
}

/// Recovery counters since the client was created.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    pub reconnects: u64,
    pub resumed: u64,
    pub duplicates_dropped: u64,
    pub server_requests_answered: u64,
}

/// A tools/call result; `is_error` results are returned, not raised.
#[derive(Clone, Debug)]
pub struct ToolResult {
    pub is_error: bool,
    pub content: Value,
    pub structured: Option<Value>,
}

/// A Streamable HTTP MCP client. Usable concurrently from `&self`; background streams end when it
/// is closed or dropped.
pub struct McpClient {
    inner: Arc<Inner>,
}

impl Drop for McpClient {
    fn drop(&mut self) {
        self.inner.root.cancel();
    }
}

impl McpClient {
    /// A client whose requests go through the shared `http` client (connection pool, proxies, TLS).
    pub fn new(config: ClientConfig, http: reqwest::Client) -> Self {
        Self { inner: Arc::new(Inner::new(config, http, None)) }
    }

    /// A client that owns its connections to a plain-http endpoint (`mcp::lean`: cheaper per
    /// request and per held stream, no proxy); https endpoints and URLs with credentials, or any
    /// proxy variable in the environment, fall back to `http`. Used by the load-generating profiles.
    pub fn with_own_connections(config: ClientConfig, http: reqwest::Client) -> Self {
        let lean = Lean::new(&config.url, &config.headers).map(Arc::new);
        Self { inner: Arc::new(Inner::new(config, http, lean)) }
    }

    /// A client sending plain-http requests over `lean`, connections its caller keeps across
    /// clients (a prober's, one set per endpoint across cycles; `None`: the shared `http`).
    pub fn with_connections(config: ClientConfig, http: reqwest::Client, lean: Option<Arc<Lean>>) -> Self {
        Self { inner: Arc::new(Inner::new(config, http, lean)) }
    }

    /// Whether requests go over the client's own connections.
    pub fn owns_connections(&self) -> bool {
        self.inner.transport.owns_connections()
    }

    /// Negotiate a connection (a new session when called again, e.g. after `SessionExpired`).
    pub async fn connect(&self) -> Result<ServerInfo, McpError> {
        if let Some(old) = self.take_session() {
            old.cancel.cancel();
        }
        let session = match self.inner.config.protocol.clone() {
            ProtocolPreference::Auto => match self.discover().await {
                Ok(Some(s)) => s,
                Ok(None) => self.initialize(None).await?,
                Err(e) if protocol::discover_unsupported(&e) => {
                    tracing::debug!(error = %e, "server/discover unsupported; falling back to initialize");
                    self.initialize(None).await?
                }
                Err(e) => return Err(e),
            },
            ProtocolPreference::Pinned(v) => match protocol::era_of(&v) {
                Some(Era::Stateless) => self.discover().await?.ok_or_else(|| unsupported(&v))?,
                Some(Era::Session) => self.initialize(Some(&v)).await?,
                None => return Err(unsupported(&v)),
            },
        };
        let info = session.info.clone();
        if let Ok(mut slot) = self.inner.session.lock() {
            *slot = Some(session);
        }
        Ok(info)
    }

    /// `server/discover`; `None` when the result does not list the stateless revision.
    async fn discover(&self) -> Result<Option<Session>, McpError> {
        let ctx = Ctx { era: Era::Stateless, version: Some(LATEST_PROTOCOL.into()), session_id: None };
        let answer = self.inner.exchange(&ctx, method::DISCOVER, &json!({})).await?;
        let result = answer.result.value()?;
        if !protocol::discover_lists_latest(&result) {
            return Ok(None);
        }
        let info = ServerInfo::from_result(&result, LATEST_PROTOCOL, None, true);
        Ok(Some(Session { ctx, info, cancel: self.inner.root.child_token() }))
    }

    /// The 2025 handshake: `initialize`, then `notifications/initialized`.
    async fn initialize(&self, pinned: Option<&str>) -> Result<Session, McpError> {
        let offer = pinned.unwrap_or(SESSION_PROTOCOLS[0]);
        let ctx = Ctx { era: Era::Session, version: None, session_id: None };
        let cfg = &self.inner.config;
        let params = protocol::initialize_params(offer, &cfg.capabilities, &cfg.client_name, &cfg.client_version);
        let answer = self.inner.exchange(&ctx, method::INITIALIZE, &params).await?;
        let result = answer.result.value()?;
        // A result that is no InitializeResult (not an object, no version) is a malformed answer,
        // not a version the server chose.
        let Some(answered) = result.get("protocolVersion").and_then(Value::as_str) else {
            return Err(McpError::InvalidJson("initialize result without a protocolVersion string".into()));
        };
        let version = protocol::accept_session_version(answered, pinned)?;
        let ctx = Ctx { era: Era::Session, version: Some(version.clone()), session_id: answer.session_id.clone() };
        self.inner.notify(&ctx, method::INITIALIZED, Value::Null).await?;
        let info = ServerInfo::from_result(&result, &version, answer.session_id, false);
        Ok(Session { ctx, info, cancel: self.inner.root.child_token() })
    }

    fn take_session(&self) -> Option<Session> {
        self.inner.session.lock().ok().and_then(|mut s| s.take())
    }

    /// The negotiated context, connecting first when there is none.
    async fn ctx(&self) -> Result<Ctx, McpError> {
        if let Some(ctx) = self.current_ctx() {
            return Ok(ctx);
        }
        self.connect().await?;
        self.current_ctx().ok_or(McpError::Cancelled)
    }

    fn current_ctx(&self) -> Option<Ctx> {
        self.inner.session.lock().ok().and_then(|s| s.as_ref().map(|s| s.ctx.clone()))
    }

    pub fn server_info(&self) -> Option<ServerInfo> {
        self.inner.session.lock().ok().and_then(|s| s.as_ref().map(|s| s.info.clone()))
    }

    /// Any request; the result object. An `InputRequiredResult` (2026-07-28) is answered through
    /// the server-request policy when the client declared the capabilities it asks for, and the
    /// request re-sent with the answers, for at most `MAX_INPUT_ROUNDS` rounds; otherwise it is
    /// an error (`INPUT_REQUIRED_CODE`).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, McpError> {
        let ctx = self.ctx().await?;
        let mut result = self.inner.exchange(&ctx, method, &params).await?.result.value()?;
        let mut params = params;
        for _ in 0..protocol::MAX_INPUT_ROUNDS {
            let Some(input) = protocol::input_required(&result) else { return Ok(result) };
            let cfg = &self.inner.config;
            let responses = protocol::answer_input_requests(&input, &cfg.capabilities, |m: &str, p: &Value| {
                cfg.server_requests.answer(m, p)
            })?;
            self.inner.count_input_answers(responses.len());
            params = protocol::with_input_responses(&params, responses, input.request_state);
            result = self.inner.exchange(&ctx, method, &params).await?.result.value()?;
        }
        match protocol::input_required(&result) {
            None => Ok(result),
            Some(_) => Err(protocol::input_required_error(format!(
                "still asking after {} rounds of answers",
                protocol::MAX_INPUT_ROUNDS
            ))),
        }
    }

    pub async fn ping(&self) -> Result<(), McpError> {
        self.request(method::PING, json!({})).await.map(|_| ())
    }

    /// The stateless revision has no ping.
    pub fn supports_ping(&self) -> bool {
        self.current_ctx().is_none_or(|c| c.era == Era::Session)
    }

    /// `tools/list`, all pages (bounded: see `list`).
    pub async fn list_tools(&self) -> Result<Listing, McpError> {
        self.list(ListKind::Tools).await
    }

    pub async fn list_resources(&self) -> Result<Listing, McpError> {
        self.list(ListKind::Resources).await
    }

    pub async fn list_resource_templates(&self) -> Result<Listing, McpError> {
        self.list(ListKind::ResourceTemplates).await
    }

    pub async fn list_prompts(&self) -> Result<Listing, McpError> {
        self.list(ListKind::Prompts).await
    }

    /// Follow `nextCursor` for at most `MAX_PAGES` pages, each processed as it arrives: every
    /// item counted and hashed, the first ones kept (`listing::MAX_KEPT_ITEMS`,
    /// `listing::MAX_KEPT_BYTES`). Pages past `listing::MAX_LISTING_BYTES` (or one
    /// `max_response_bytes`, when larger) fail the listing as `body_too_large`; a cursor still
    /// offered after `MAX_PAGES` pages ends it, marked `truncated`. All pages together must
    /// arrive within `LISTING_TIMEOUTS` request timeouts (`timeout`).
    pub async fn list(&self, kind: ListKind) -> Result<Listing, McpError> {
        let deadline = self.inner.config.request_timeout.saturating_mul(LISTING_TIMEOUTS);
        tokio::time::timeout(deadline, self.list_pages(kind)).await.map_err(|_| McpError::Timeout(deadline))?
    }

    async fn list_pages(&self, kind: ListKind) -> Result<Listing, McpError> {
        let budget = MAX_LISTING_BYTES.max(self.inner.config.max_response_bytes);
        let mut acc = Accumulator::new(kind, budget);
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let ctx = self.ctx().await?;
            let answer = self.inner.exchange(&ctx, kind.method(), &params).await?;
            let mut end = if answer.result.get().len() >= OFF_THREAD_PAGE_BYTES {
                // Parsing a page of megabytes holds a thread for milliseconds to tens of them: on
                // the blocking pool, not the runtime thread the other targets' probes share.
                let (returned, end) = tokio::task::spawn_blocking(move || {
                    let end = acc.page(answer.result.get());
                    (acc, end)
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                acc = returned;
                end?
            } else {
                acc.page(answer.result.get())?
            };
            if end.input_required {
                // Rare (2026-07-28): the page comes once `request` has answered the server's
                // input requests.
                let result = self.request(kind.method(), params).await?;
                end = acc.page(&result.to_string())?;
            }
            match end.next_cursor {
                Some(next) if !next.is_empty() && cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(acc.finish(false)),
            }
        }
        Ok(acc.finish(true))
    }

    /// `tools/call`; an `isError: true` result is returned with `is_error` set.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        progress_token: Option<&str>,
    ) -> Result<ToolResult, McpError> {
        let arguments = if arguments.is_null() { json!({}) } else { arguments };
        let mut params = json!({"name": name, "arguments": arguments});
        if let Some(token) = progress_token {
            params["_meta"] = json!({"progressToken": token});
        }
        let mut result = self.request(method::TOOLS_CALL, params).await?;
        // Taken out of the owned result rather than cloned: a load run makes thousands a second.
        let mut take = |key: &str| result.as_object_mut().and_then(|o| o.remove(key));
        Ok(ToolResult {
            is_error: take("isError").and_then(|v| v.as_bool()).unwrap_or(false),
            content: take("content").unwrap_or(Value::Null),
            structured: take("structuredContent"),
        })
    }

    pub async fn read_resource(&self, uri: &str) -> Result<Value, McpError> {
        self.request(method::RESOURCES_READ, json!({"uri": uri})).await
    }

    pub async fn subscribe_resource(&self, uri: &str) -> Result<(), McpError> {
        self.request(method::RESOURCES_SUBSCRIBE, json!({"uri": uri})).await.map(|_| ())
    }

    pub async fn get_prompt(&self, name: &str, arguments: Value) -> Result<Value, McpError> {
        let arguments = if arguments.is_null() { json!({}) } else { arguments };
        self.request(method::PROMPTS_GET, json!({"name": name, "arguments": arguments})).await
    }

    /// `completion/complete` for a prompt argument (`reference` is the `ref` object).
    pub async fn complete(&self, reference: Value, argument: &str, value: &str) -> Result<Value, McpError> {
        self.request(method::COMPLETE, json!({"ref": reference, "argument": {"name": argument, "value": value}})).await
    }

    /// Notifications arriving from now on, on any stream; a receiver more than
    /// `NOTIFICATION_BUFFER` behind loses the oldest (`Lagged`).
    pub fn notifications(&self) -> tokio::sync::broadcast::Receiver<Arc<ServerNotification>> {
        self.inner.subscribe(NOTIFICATION_BUFFER)
    }

    /// As `notifications`, with a ring of `capacity` slots if this is the client's first
    /// subscription (the ring is allocated whole, so a session held by the thousand takes a small
    /// one).
    pub fn notifications_buffered(&self, capacity: usize) -> tokio::sync::broadcast::Receiver<Arc<ServerNotification>> {
        self.inner.subscribe(capacity)
    }

    /// Open the server-to-client stream in the background: the GET stream (2025 era) or a
    /// `subscriptions/listen` stream (2026-07-28). `Ok(false)` when the server offers none.
    pub async fn open_stream(&self) -> Result<bool, McpError> {
        let ctx = self.ctx().await?;
        let cancel = self.session_token().unwrap_or_default();
        open_background(&self.inner, &ctx, &cancel).await
    }

    fn session_token(&self) -> Option<CancellationToken> {
        self.inner.session.lock().ok().and_then(|s| s.as_ref().map(|s| s.cancel.clone()))
    }

    /// Keep these response headers of every POST and GET (e.g. a balancer's served-by header);
    /// read them with `last_response_headers`. Replaces any earlier list.
    pub fn capture_response_headers(&self, names: Vec<reqwest::header::HeaderName>) {
        self.inner.transport.capture_headers(names);
    }

    /// The captured headers of the latest response to arrive, failed ones included. With
    /// concurrent requests on one client, "latest" is whichever answered last.
    pub fn last_response_headers(&self) -> reqwest::header::HeaderMap {
        self.inner.transport.captured()
    }

    /// The HTTP version of the latest response to arrive (`network.protocol.version`); `None`
    /// when the latest request got no response.
    pub fn last_http_version(&self) -> Option<super::transport::HttpVersion> {
        self.inner.transport.last_version()
    }

    pub fn stream_stats(&self) -> StreamStats {
        self.inner.stats()
    }

    /// Stop background streams and end the session (DELETE in the 2025 era when a session id was issued).
    pub async fn close(&self) -> Result<(), McpError> {
        let Some(session) = self.take_session() else { return Ok(()) };
        session.cancel.cancel();
        if session.ctx.era != Era::Session || session.ctx.session_id.is_none() {
            return Ok(());
        }
        let headers = session.ctx.headers(None, &Value::Null);
        let timeout = self.inner.config.request_timeout;
        tokio::time::timeout(timeout, self.inner.transport.delete(&headers))
            .await
            .map_err(|_| McpError::Timeout(timeout))?
    }
}

fn unsupported(version: &str) -> McpError {
    McpError::JsonRpc {
        code: protocol::UNSUPPORTED_VERSION_CODE,
        message: format!("server does not support protocol version {}", protocol::snippet(version, 40)),
    }
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn with_parent_replaces_only_the_parent_id() {
        let base = TraceContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: Some("rojo=1".into()),
        };
        let child = base.with_parent([0xab, 0, 1, 2, 3, 4, 5, 0xff]);
        assert_eq!(child.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-ab000102030405ff-01");
        assert_eq!(child.tracestate.as_deref(), Some("rojo=1"));
        let odd = TraceContext { traceparent: "garbage".into(), tracestate: None };
        assert_eq!(odd.with_parent([1; 8]), odd);
    }

    use super::*;

    #[test]
    fn server_info_from_initialize() {
        let r = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}, "resources": {"subscribe": true}, "logging": {}},
            "serverInfo": {"name": "srv", "version": "1.2"}
        });
        let i = ServerInfo::from_result(&r, "2025-06-18", Some("s".into()), false);
        assert!(i.offers_tools && i.offers_resources && i.resources_subscribe && i.offers_logging);
        assert!(!i.offers_prompts && !i.offers_completions && !i.stateless);
        assert_eq!((i.name.as_str(), i.version.as_str()), ("srv", "1.2"));
    }

    #[test]
    fn server_info_from_discover_meta() {
        let r = json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"prompts": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "d", "version": "9"}}
        });
        let i = ServerInfo::from_result(&r, LATEST_PROTOCOL, None, true);
        assert!(i.offers_prompts && i.stateless);
        assert_eq!(i.name, "d");
    }

    #[test]
    fn client_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<McpClient>();
    }
}
