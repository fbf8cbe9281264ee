//! The reference MCP server (`mcp-canary target`): a Streamable HTTP MCP server on rmcp that
//! serves both the 2026-07-28 stateless revision and the 2025 session revisions on `/mcp`,
//! with fault knobs (`/admin/knobs`) and its own `/metrics`.

mod asks;
mod auth;
mod distributed;
mod knobs;
mod metrics;
mod server;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, routing::get};
use rmcp::{
    Peer, RoleServer,
    model::ResourceUpdatedNotificationParam,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
        session::{SessionManager, local::LocalSessionManager},
    },
};
use tokio_util::sync::CancellationToken;

pub use auth::{OAuthOptions, OAuthSetupError};
pub use distributed::{BROADCAST_CHANNEL, CONTROL_CHANNEL, Route, SESSION_KEY_PREFIX, STREAM_CHANNEL_PREFIX};
pub use knobs::{ERROR_HTML, INSTANCE_HEADER, Knobs, KnobsError, KnobsHandle, KnobsPatch};
pub use metrics::{FAULTS_INJECTED_TOTAL, Fault, LIVE_SESSIONS, REQUESTS_TOTAL, RESIDENT_MEMORY, RequestMethod};
pub use server::{CanaryServer, HELLO_TEXT, HELLO_URI, INFO_URI, ITEMS_TEMPLATE, MAX_PROGRESS_STEPS, MAX_SLOW_MS};

/// Flags of `mcp-canary target`.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Delay added before every MCP request, in milliseconds (knob `latency_ms`).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share (0..=1) of MCP POST requests answered with an HTML 500 (knob `error_rate`).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Hold every MCP request until the knob is cleared (knob `stall`).
    #[arg(long)]
    pub stall: bool,
    /// Make the `echo` tool answer with an isError result (knob `tool_error`).
    #[arg(long)]
    pub tool_error: bool,
    /// Share (0..=1) of `broadcast` deliveries dropped on purpose (knob `notify_drop_rate`).
    #[arg(long, default_value_t = 0.0)]
    pub notify_drop_rate: f64,
    /// Drop sessions idle for longer than this (then their id gets 404).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Duration,
    /// `retry` announced in SSE priming events.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub sse_retry: Duration,
    /// Interval of SSE keep-alive comments (0s disables them).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub sse_keep_alive: Duration,
    /// Accepted `Host` header values (DNS-rebinding protection); loopback names when none are
    /// given, `*` accepts any host.
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,
    /// Distributed mode: share session metadata and notifications through this Redis
    /// (`redis://host:port`); without it sessions are local to this instance.
    #[arg(long, env = "MCP_CANARY_TARGET_REDIS")]
    pub redis: Option<String>,
    /// Name of this instance, sent in the `Mcp-Canary-Instance` header and notification
    /// payloads (a random UUID when not given).
    #[arg(long)]
    pub instance: Option<String>,
    /// Ignore `--redis` for sessions and notifications (knob `local_only`).
    #[arg(long)]
    pub local_only: bool,
    /// Share (0..=1) of received pub/sub deliveries dropped (knob `pubsub_drop_rate`).
    #[arg(long, default_value_t = 0.0)]
    pub pubsub_drop_rate: f64,
    /// Bytes leaked per session that ends without DELETE (knob `leak_per_unclean_session_bytes`).
    #[arg(long, default_value_t = 0)]
    pub leak_per_unclean_session_bytes: u64,
    /// Protect `/mcp` with OAuth: accept only JWT access tokens from this authorization server
    /// (issuer identifier; its RFC 8414 or OpenID metadata and JWKS are read at start), serve
    /// protected resource metadata (RFC 9728) and answer 401/403 with a Bearer challenge.
    #[arg(long, value_name = "URL")]
    pub oauth_issuer: Option<String>,
    /// A scope every MCP request's token must carry (repeatable).
    #[arg(long = "oauth-scope", value_name = "SCOPE", requires = "oauth_issuer")]
    pub oauth_scopes: Vec<String>,
    /// A scope a `tools/call` of TOOL must also carry (repeatable): step-up authorization.
    #[arg(
        long = "oauth-tool-scope",
        value_name = "TOOL=SCOPE",
        requires = "oauth_issuer",
        value_parser = auth::parse_tool_scope
    )]
    pub oauth_tool_scopes: Vec<(String, String)>,
    /// The resource identifier tokens must be issued for (their `aud`); default the target's
    /// own MCP URL, `http://LISTEN/mcp` (set it behind a proxy).
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub oauth_resource: Option<String>,
}

impl TargetArgs {
    pub fn options(&self) -> TargetOptions {
        TargetOptions {
            knobs: Knobs {
                latency_ms: self.latency_ms,
                error_rate: self.error_rate,
                stall: self.stall,
                tool_error: self.tool_error,
                notify_drop_rate: self.notify_drop_rate,
                local_only: self.local_only,
                pubsub_drop_rate: self.pubsub_drop_rate,
                leak_per_unclean_session_bytes: self.leak_per_unclean_session_bytes,
                echo_jsonrpc_error: 0,
            },
            session_idle_timeout: self.session_idle_timeout,
            sse_retry: self.sse_retry,
            sse_keep_alive: (!self.sse_keep_alive.is_zero()).then_some(self.sse_keep_alive),
            allowed_hosts: self.allowed_hosts.clone(),
            redis_url: self.redis.clone(),
            instance: self.instance.clone(),
            oauth: self.oauth_issuer.as_ref().map(|issuer| OAuthOptions {
                issuer: issuer.clone(),
                scopes: self.oauth_scopes.clone(),
                tool_scopes: self.oauth_tool_scopes.clone(),
                resource: self.oauth_resource.clone(),
            }),
        }
    }
}

/// Startup settings of the reference target (initial knob values and limits).
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// Initial knob values.
    pub knobs: Knobs,
    /// Sessions idle for longer are dropped.
    pub session_idle_timeout: Duration,
    /// `retry` of SSE priming events.
    pub sse_retry: Duration,
    /// SSE keep-alive interval; `None` disables keep-alives.
    pub sse_keep_alive: Option<Duration>,
    /// Accepted `Host` values; empty means rmcp's loopback defaults, `*` means any.
    pub allowed_hosts: Vec<String>,
    /// Redis of distributed mode; `None` keeps sessions local.
    pub redis_url: Option<String>,
    /// Instance name; a random UUID when `None`.
    pub instance: Option<String>,
    /// OAuth protection of `/mcp`; `None` leaves it open.
    pub oauth: Option<OAuthOptions>,
}

impl Default for TargetOptions {
    fn default() -> Self {
        Self {
            knobs: Knobs::default(),
            session_idle_timeout: Duration::from_secs(300),
            sse_retry: Duration::from_secs(3),
            sse_keep_alive: Some(Duration::from_secs(15)),
            allowed_hosts: Vec::new(),
            redis_url: None,
            instance: None,
            oauth: None,
        }
    }
}

/// A resource subscription made over a 2025 session.
struct Subscription {
    handler: u64,
    uri: String,
    peer: Peer<RoleServer>,
}

/// State shared by the MCP handlers, the admin endpoints and the middleware.
pub(crate) struct Shared {
    knobs: KnobsHandle,
    metrics: metrics::TargetMetrics,
    sessions: Arc<LocalSessionManager>,
    subscriptions: Mutex<Vec<Subscription>>,
    instance: String,
    next_handler: AtomicU64,
    shutdown: CancellationToken,
    /// Distributed mode's Redis.
    redis: Option<Arc<distributed::RedisLink>>,
    /// Peers of initialised sessions held here, by session id (notification fan-out).
    peers: Mutex<HashMap<String, Peer<RoleServer>>>,
    /// Sessions that opened a GET stream here: the only ones fan-out delivers to, since a message
    /// to a session without a stream here could never be read (an instance sees the sessions of
    /// every request a balancer sends it, most of them streaming elsewhere).
    streamed: Mutex<HashSet<String>>,
    /// Sessions ended by a DELETE (here or, via pub/sub, elsewhere) not yet swept.
    deleted: Mutex<HashSet<String>>,
    /// Memory leaked on purpose by the `leak_per_unclean_session_bytes` knob.
    leaked: Mutex<Vec<Vec<u8>>>,
    /// Trace context keys of the last request's `_meta`, by method (`/admin/trace-meta`).
    trace_meta: Mutex<BTreeMap<&'static str, serde_json::Map<String, serde_json::Value>>>,
}

impl Shared {
    /// Note the W3C trace context keys of a request's `_meta` (SEP-414: unprefixed), replacing
    /// the method's last ones; bounded by the target's method set.
    fn note_trace_meta(&self, method: &'static str, meta: &serde_json::Map<String, serde_json::Value>) {
        let keys: serde_json::Map<String, serde_json::Value> = ["traceparent", "tracestate", "baggage"]
            .into_iter()
            .filter_map(|k| meta.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        self.trace_meta.lock().unwrap_or_else(|e| e.into_inner()).insert(method, keys);
    }

    fn trace_meta(&self) -> serde_json::Value {
        let seen = self.trace_meta.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::Value::Object(
            seen.iter().map(|(m, keys)| (m.to_string(), serde_json::Value::Object(keys.clone()))).collect(),
        )
    }

    fn next_handler_id(&self) -> u64 {
        self.next_handler.fetch_add(1, Ordering::Relaxed)
    }

    fn subscribe(&self, handler: u64, uri: String, peer: Peer<RoleServer>) {
        let mut subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        if !subs.iter().any(|s| s.handler == handler && s.uri == uri) {
            subs.push(Subscription { handler, uri, peer });
        }
    }

    fn unsubscribe(&self, handler: u64, uri: &str) {
        let mut subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| !(s.handler == handler && s.uri == uri));
    }

    /// Send `notifications/message` with `data` to every live session, dropping each delivery
    /// with probability `notify_drop_rate`; returns (sent, dropped on purpose, failed).
    async fn broadcast(&self, data: serde_json::Value) -> (usize, usize, usize) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers.retain(|_, p| !p.is_transport_closed());
            peers.values().cloned().collect()
        };
        let drop_rate = self.knobs.get().notify_drop_rate;
        let mut dropped = 0;
        let mut sends = Vec::with_capacity(peers.len());
        for peer in peers {
            if drop_rate > 0.0 && rand::random::<f64>() < drop_rate {
                self.metrics.count_fault(Fault::NotifyDrop);
                dropped += 1;
                continue;
            }
            sends.push(server::send_broadcast(peer, data.clone()));
        }
        let results = futures::future::join_all(sends).await;
        let sent = results.iter().filter(|ok| **ok).count();
        (sent, dropped, results.len() - sent)
    }

    async fn live_sessions(&self) -> usize {
        self.sessions.sessions.read().await.len()
    }

    /// Close every session now; returns how many were closed.
    async fn expire_sessions(&self) -> usize {
        let ids: Vec<_> = self.sessions.sessions.read().await.keys().cloned().collect();
        let mut closed = 0;
        for id in ids {
            match self.sessions.close_session(&id).await {
                Ok(()) => closed += 1,
                Err(error) => tracing::warn!(session_id = %id, error = %error, "Session not closed"),
            }
        }
        closed
    }

    /// Send `notifications/resources/updated` for every subscription; returns (sent, dropped).
    /// Subscriptions whose session is gone are dropped.
    async fn notify_resources_updated(&self) -> (usize, usize) {
        let targets: Vec<(u64, String, Peer<RoleServer>)> = {
            let subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            subs.iter().map(|s| (s.handler, s.uri.clone(), s.peer.clone())).collect()
        };
        let (mut sent, mut dead) = (0, Vec::new());
        for (handler, uri, peer) in targets {
            let param = ResourceUpdatedNotificationParam::new(uri.clone());
            let result = if peer.is_transport_closed() {
                Err("transport closed".to_string())
            } else {
                peer.notify_resource_updated(param).await.map_err(|e| e.to_string())
            };
            match result {
                Ok(()) => sent += 1,
                Err(error) => {
                    tracing::debug!(uri = %uri, error = %error, "Subscription dropped");
                    dead.push(handler);
                }
            }
        }
        if !dead.is_empty() {
            let mut subs = self.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            subs.retain(|s| !dead.contains(&s.handler));
        }
        (sent, dead.len())
    }
}

/// A running reference target.
pub struct TargetHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl TargetHandle {
    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The MCP endpoint, `http://host:port/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault knobs, shared with the running server.
    pub fn knobs(&self) -> KnobsHandle {
        self.shared.knobs.clone()
    }

    /// Number of sessions currently held.
    pub async fn live_sessions(&self) -> usize {
        self.shared.live_sessions().await
    }

    /// Close every session now (the admin action `expire-sessions`).
    pub async fn expire_sessions(&self) -> usize {
        self.shared.expire_sessions().await
    }

    /// Fire `notifications/resources/updated` for every subscription; returns (sent, dropped).
    pub async fn notify_resources_updated(&self) -> (usize, usize) {
        self.shared.notify_resources_updated().await
    }

    /// Identifier of this target instance (also in `notify` notifications).
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Wait until the server has stopped (after `shutdown` was cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Serve the reference target on `listener` until `shutdown`.
pub async fn spawn(
    listener: tokio::net::TcpListener,
    options: TargetOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<TargetHandle> {
    options.knobs.validate()?;
    let addr = listener.local_addr()?;
    let guard = match &options.oauth {
        Some(oauth) => Some(Arc::new(auth::Guard::discover(oauth, &format!("http://{addr}/mcp")).await?)),
        None => None,
    };

    let mut session_manager = LocalSessionManager::default();
    session_manager.session_config.keep_alive = Some(options.session_idle_timeout);
    session_manager.session_config.sse_retry = Some(options.sse_retry);
    let sessions = Arc::new(session_manager);

    let redis = match &options.redis_url {
        Some(url) => Some(Arc::new(distributed::RedisLink::new(url, options.session_idle_timeout)?)),
        None => None,
    };
    let shared = Arc::new(Shared {
        redis: redis.clone(),
        peers: Mutex::new(HashMap::new()),
        streamed: Mutex::new(HashSet::new()),
        deleted: Mutex::new(HashSet::new()),
        leaked: Mutex::new(Vec::new()),
        trace_meta: Mutex::new(BTreeMap::new()),
        knobs: KnobsHandle::new(options.knobs.clone()),
        metrics: metrics::TargetMetrics::default(),
        sessions: sessions.clone(),
        subscriptions: Mutex::new(Vec::new()),
        instance: options.instance.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        next_handler: AtomicU64::new(0),
        shutdown: shutdown.clone(),
    });

    let mut config = StreamableHttpServerConfig::default()
        .with_sse_retry(Some(options.sse_retry))
        .with_sse_keep_alive(options.sse_keep_alive)
        .with_cancellation_token(shutdown.child_token());
    if options.allowed_hosts.iter().any(|h| h == "*") {
        config = config.disable_allowed_hosts();
    } else if !options.allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(options.allowed_hosts.clone());
    }
    if let Some(link) = &redis {
        config.session_store =
            Some(Arc::new(distributed::RedisSessionStore { link: link.clone(), knobs: shared.knobs.clone() }));
    }
    distributed::spawn_tasks(shared.clone(), shutdown.clone());
    let factory_shared = shared.clone();
    let mcp = StreamableHttpService::new(move || Ok(CanaryServer::new(factory_shared.clone())), sessions, config);

    let metrics_shared = shared.clone();
    let mut app = Router::new().nest_service("/mcp", mcp);
    if let Some(guard) = &guard {
        app = app.layer(axum::middleware::from_fn_with_state(guard.clone(), auth::require_token));
    }
    let mut app = app
        .layer(axum::middleware::from_fn_with_state(shared.clone(), knobs::track_sessions))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), knobs::fault_middleware))
        .merge(knobs::admin_router(shared.clone()))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let shared = metrics_shared.clone();
                async move {
                    let live = shared.live_sessions().await;
                    let redis_up = shared.redis.as_ref().map(|link| link.is_up());
                    let body = shared.metrics.render(&metrics::Snapshot {
                        live_sessions: live,
                        resident_memory: metrics::resident_memory_bytes(),
                        redis_up,
                        leaked_bytes: shared.leaked_bytes(),
                    });
                    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
                }
            }),
        );
    if let Some(guard) = &guard {
        app = app.merge(auth::metadata_router(guard.clone()));
    }
    let app = app.layer(axum::middleware::from_fn_with_state(shared.clone(), knobs::instance_header));

    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        // Without TCP_NODELAY a response written in two parts (headers, then the SSE event) waits
        // for the client's delayed ACK: about 40 ms added to most requests of a busy session.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
        if let Err(error) = served {
            tracing::error!(error = %error, "Reference target stopped with an error");
        }
    });
    tracing::info!(
        addr = %addr,
        instance = %shared.instance,
        redis = redis.is_some(),
        oauth = guard.is_some(),
        "Reference target listening"
    );
    Ok(TargetHandle { addr, shared, task })
}
