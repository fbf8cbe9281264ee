//! The canary probe script: connect, list and call what the server offers, round-trip a
//! notification, ping, close. One `CanaryProbe` per target keeps the warm session across cycles.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::instances::InstanceChecks;
use super::outcome::{Inventory, NotificationOutcome, Operation, ProbeOutcome, SkipReason, StepOutcome, StepResult};
use crate::config::{NotificationSpec, Replica, SessionMode, TargetConfig};
use crate::mcp::lean::Lean;
use crate::mcp::transport::HttpVersion;
use crate::mcp::{
    ClientConfig, ErrorType, LATEST_PROTOCOL, LogLevel, McpClient, McpError, ProtocolPreference, ServerInfo,
    StreamStats, TraceContext, TraceSlot,
};

/// Client name sent in `clientInfo`.
pub use crate::mcp::CLIENT_NAME;

/// Per-target probe state that outlives one cycle.
pub struct CanaryProbe {
    target: Arc<TargetConfig>,
    http: reqwest::Client,
    /// The open session (warm path) and when it started.
    session: Option<(McpClient, ServerInfo, Instant)>,
    last_tools_hash: Option<u64>,
    last_stream: StreamStats,
    /// Set when this probe watches one replica of a balanced target directly.
    replica: Option<String>,
    /// The replica checks of a balanced target, run after the balancer's script.
    checks: Option<InstanceChecks>,
    /// Whether the log already said that `session = "persistent"` found no session to keep.
    said_sessionless: bool,
    /// The trace context this probe's requests carry during a traced cycle (shared with its clients).
    trace: TraceSlot,
    /// The probe's own connections to a plain-http target, kept across cycles (the fresh
    /// session of each cycle reuses them; a connection the server closed while idle is
    /// replaced). `None`: the shared client (https, a proxy, credentials in the URL).
    connections: Option<Arc<Lean>>,
    /// The probe span's context during a traced cycle: each step's requests carry it with the
    /// step's own span id as the parent.
    cycle_trace: Option<TraceContext>,
}

/// Steps of the cycle being built.
struct Cycle {
    outcome: ProbeOutcome,
    stateless: bool,
    /// Set when a transport failure makes further steps pointless.
    aborted: bool,
    /// The session steps currently run in (span attribute).
    session_id: Option<String>,
    /// Set while the tools/call of a tool picked from the server's list (not configured) runs.
    tool_picked: bool,
    /// The slot the clients read and the probe span's context, in a traced cycle.
    trace: Option<(TraceSlot, TraceContext)>,
}

/// How a step ran: when and for how long, over which HTTP version, under which span id.
struct Ran {
    latency: Duration,
    started_at: SystemTime,
    http_version: Option<HttpVersion>,
    span_id: Option<[u8; 8]>,
}

impl Cycle {
    fn new(stateless: bool, session_id: Option<String>) -> Self {
        let outcome = ProbeOutcome::default();
        Cycle { outcome, stateless, aborted: false, session_id, tool_picked: false, trace: None }
    }

    /// In a traced cycle, a fresh span id for the next step, whose requests then carry it as
    /// their parent (the step's span is built after the fact, under this id).
    fn begin_span(&self) -> Option<[u8; 8]> {
        let (slot, base) = self.trace.as_ref()?;
        // W3C: an all-zero parent id is invalid.
        let id = std::iter::repeat_with(rand::random::<[u8; 8]>).find(|id| *id != [0; 8])?;
        slot.set(Some(base.with_parent(id)));
        Some(id)
    }

    /// Back to the probe span's context for requests outside a step.
    fn end_span(&self) {
        if let Some((slot, base)) = &self.trace {
            slot.set(Some(base.clone()));
        }
    }

    fn push(&mut self, operation: Operation, tool: Option<&str>, result: StepResult, ran: Ran, detail: String) {
        let Ran { latency, started_at, http_version, span_id } = ran;
        let session_id = self.session_id.clone();
        let tool = tool.map(str::to_string);
        let tool_picked = tool.is_some() && self.tool_picked;
        self.outcome.steps.push(StepOutcome {
            operation,
            tool,
            tool_picked,
            result,
            latency,
            started_at,
            session_id,
            http_version,
            span_id,
            detail,
        });
    }

    fn skip(&mut self, operation: Operation, reason: SkipReason) {
        let skipped = StepResult::Skipped(reason);
        let ran = Ran { latency: Duration::ZERO, started_at: SystemTime::now(), http_version: None, span_id: None };
        self.push(operation, None, skipped, ran, String::new());
    }

    /// Time `fut` (a request of `client`), record it as a step and return its value on success.
    async fn step<T>(
        &mut self,
        operation: Operation,
        tool: Option<&str>,
        client: &McpClient,
        fut: impl Future<Output = Result<T, McpError>>,
    ) -> Result<T, McpError> {
        let span_id = self.begin_span();
        let wall = SystemTime::now();
        let start = Instant::now();
        let result = fut.await;
        let latency = start.elapsed();
        self.end_span();
        let ran = Ran { latency, started_at: wall, http_version: client.last_http_version(), span_id };
        let (step, detail) = match &result {
            Ok(_) => (StepResult::Success, String::new()),
            Err(e) => {
                if is_transport_failure(e.error_type()) {
                    self.aborted = true;
                }
                (StepResult::from_error(e), e.to_string())
            }
        };
        self.push(operation, tool, step, ran, detail);
        result
    }
}

/// Failures after which the server is unreachable and the rest of the script would only time out.
fn is_transport_failure(t: ErrorType) -> bool {
    matches!(t, ErrorType::Connect | ErrorType::Timeout | ErrorType::Tls | ErrorType::Reset)
}

impl CanaryProbe {
    pub fn new(target: Arc<TargetConfig>, http: reqwest::Client) -> Self {
        let checks = target.instances.is_some().then(|| InstanceChecks::new(Arc::clone(&target), http.clone()));
        let connections = Lean::following_redirects(&target.url, &target.headers).map(Arc::new);
        Self {
            target,
            http,
            session: None,
            last_tools_hash: None,
            last_stream: StreamStats::default(),
            replica: None,
            checks,
            said_sessionless: false,
            trace: TraceSlot::default(),
            connections,
            cycle_trace: None,
        }
    }

    /// The probe of one replica of `target`: the same script against the replica's own URL.
    pub fn for_replica(target: &TargetConfig, replica: &Replica, http: reqwest::Client) -> Self {
        let direct = TargetConfig { url: replica.url.clone(), redis: None, instances: None, ..target.clone() };
        let mut probe = Self::new(Arc::new(direct), http);
        probe.replica = Some(replica.name.clone());
        probe
    }

    /// The replica this probe watches directly; `None` for the target's own URL.
    pub fn replica(&self) -> Option<&str> {
        self.replica.as_deref()
    }

    pub fn target(&self) -> &TargetConfig {
        &self.target
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig {
            // The notification round trip waits for log messages: ask for them (2026-07-28 servers send
            // none otherwise).
            log_level: self.target.notification.as_ref().and_then(|n| LogLevel::to_receive(&n.method)),
            trace: self.trace.clone(),
            ..self.target.client_config()
        }
    }

    /// Run one cycle whose MCP requests carry `trace` in `params._meta` (the caller's probe span,
    /// so the server's spans join its trace): a step's requests name the step's own span id
    /// ([`StepOutcome::span_id`]) as their parent, other requests the probe span. `None`: as
    /// `run_cycle`. Requests outside the cycle (a warm session's stream between cycles) carry
    /// nothing.
    pub async fn run_cycle_traced(&mut self, trace: Option<TraceContext>) -> ProbeOutcome {
        self.trace.set(trace.clone());
        self.cycle_trace = trace;
        let outcome = self.run_cycle().await;
        self.cycle_trace = None;
        self.trace.set(None);
        outcome
    }

    /// Run one cycle of the default script.
    pub async fn run_cycle(&mut self) -> ProbeOutcome {
        let started = Instant::now();
        let mut cycle = Cycle::new(false, None);
        cycle.trace = self.cycle_trace.clone().map(|base| (self.trace.clone(), base));
        cycle.outcome.started_at = Some(SystemTime::now());
        cycle.outcome.pinned_stateless =
            matches!(&self.target.protocol, ProtocolPreference::Pinned(v) if v == LATEST_PROTOCOL);
        let (client, info, session_start) = match self.session.take() {
            Some(session) => session,
            None => match self.connect(&mut cycle).await {
                Some(s) => s,
                None => {
                    cycle.outcome.duration = started.elapsed();
                    self.run_checks(&mut cycle.outcome).await;
                    cycle.outcome.auth = self.auth_status();
                    return cycle.outcome;
                }
            },
        };
        cycle.stateless = info.stateless;
        cycle.session_id = info.session_id.clone();
        cycle.outcome.server = Some(info.clone());
        let mut session = (client, info, session_start);
        self.script(&mut cycle, &mut session).await;

        // Record recovery counters as a delta since the last cycle of this client.
        let stats = session.0.stream_stats();
        cycle.outcome.stream = delta(&stats, &self.last_stream);
        self.last_stream = stats;

        let keep = self.target.session == SessionMode::Persistent && !cycle.aborted;
        if keep {
            self.session = Some(session);
        } else {
            self.close_session(&mut cycle, session).await;
        }
        cycle.outcome.duration = started.elapsed();
        self.run_checks(&mut cycle.outcome).await;
        cycle.outcome.auth = self.auth_status();
        cycle.outcome
    }

    /// The target's token health, reported by its own probe (replica probes share its source).
    fn auth_status(&self) -> Option<crate::mcp::auth::TokenStatus> {
        self.replica.is_none().then(|| self.target.auth.as_ref().map(|a| a.status())).flatten()
    }

    /// Replica checks run after the script, whatever its result; they are not part of the
    /// probe's duration or success (they have their own series).
    async fn run_checks(&mut self, outcome: &mut ProbeOutcome) {
        if let Some(checks) = &mut self.checks {
            outcome.instances = Some(checks.run().await);
        }
    }

    /// Close the warm session, if any (shutdown). Returns its lifetime.
    pub async fn shutdown(&mut self) -> Option<ProbeOutcome> {
        let session = self.session.take()?;
        let mut cycle = Cycle::new(session.1.stateless, session.1.session_id.clone());
        self.close_session(&mut cycle, session).await;
        Some(cycle.outcome)
    }

    async fn connect(&mut self, cycle: &mut Cycle) -> Option<(McpClient, ServerInfo, Instant)> {
        let client = McpClient::with_connections(self.client_config(), self.http.clone(), self.connections.clone());
        self.last_stream = StreamStats::default();
        let start = Instant::now();
        let info = cycle.step(Operation::Connect, None, &client, client.connect()).await.ok()?;
        // The connect step is labelled by the era it negotiated.
        cycle.stateless = info.stateless;
        self.say_if_sessionless(&info);
        self.open_stream_if_wanted(&client).await;
        Some((client, info, start))
    }

    /// `session = "persistent"` asks for one long-lived session; a server that negotiates the
    /// stateless revision (or issues no session id) has none to keep, which the user should hear
    /// of once, with the keys that change it.
    fn say_if_sessionless(&mut self, info: &ServerInfo) {
        if self.target.session != SessionMode::Persistent || self.said_sessionless {
            return;
        }
        let (why, fix) = if info.stateless {
            let why = match self.target.protocol {
                ProtocolPreference::Auto => {
                    "the server offers the stateless 2026-07-28 revision, which protocol = \"auto\" picked"
                }
                ProtocolPreference::Pinned(_) => "protocol pins the stateless 2026-07-28 revision",
            };
            (why, "pin protocol = \"2025-11-25\" to probe one long-lived session, or set session = \"fresh\"")
        } else if info.session_id.is_none() {
            ("the server issued no Mcp-Session-Id", "set session = \"fresh\"")
        } else {
            return;
        };
        self.said_sessionless = true;
        tracing::warn!(target_name = %self.target.name, "Target has session = \"persistent\" but no session to keep between cycles: {why}; {fix}");
    }

    /// The warm path watches the server-to-client stream; the notification round trip needs it
    /// because servers (rmcp among them) send unsolicited notifications only there.
    async fn open_stream_if_wanted(&self, client: &McpClient) {
        let wanted = self.target.session == SessionMode::Persistent || self.target.notification.is_some();
        if wanted && let Err(e) = client.open_stream().await {
            tracing::debug!(target_name = %self.target.name, error = %e, "Server-to-client stream not opened");
        }
    }

    async fn close_session(&mut self, cycle: &mut Cycle, (client, info, start): (McpClient, ServerInfo, Instant)) {
        if info.stateless || info.session_id.is_none() {
            // Nothing to DELETE; still stop background streams.
            let _ = client.close().await;
            cycle.skip(Operation::SessionDelete, SkipReason::Unsupported);
        } else {
            let _ = cycle.step(Operation::SessionDelete, None, &client, client.close()).await;
        }
        cycle.outcome.sessions_ended.push(start.elapsed());
    }

    async fn script(&mut self, cycle: &mut Cycle, session: &mut (McpClient, ServerInfo, Instant)) {
        let target = Arc::clone(&self.target);
        let probe = &target.probe;
        let mut inventory = Inventory::default();

        // tools/list, then the configured tool.
        if !session.1.offers_tools {
            cycle.skip(Operation::ToolsList, SkipReason::NotOffered);
            cycle.skip(Operation::ToolsCall, SkipReason::NotOffered);
        } else {
            let tools = self.guarded(cycle, session, Operation::ToolsList, None, |c| Box::pin(c.list_tools())).await;
            if let Some(tools) = &tools {
                // The true count and hash, over every page; only the first items are kept.
                inventory.tools = Some(tools.total);
                let hash = tools.hash;
                cycle.outcome.tools_schema_changed = self.last_tools_hash.is_some_and(|h| h != hash);
                self.last_tools_hash = Some(hash);
            }
            // The configured tool, else one the server marks read-only (never one that may have
            // side effects), among the kept items.
            let picked = tools
                .as_ref()
                .and_then(|t| {
                    t.values().find_map(|tool| crate::mcp::protocol::read_only_name(&tool).map(str::to_string))
                })
                .map(|name| (name, Value::Object(Default::default())));
            match probe.tool.as_ref().or(picked.as_ref()) {
                Some((name, args)) if !cycle.aborted => {
                    cycle.tool_picked = probe.tool.is_none();
                    let r = self
                        .guarded(cycle, session, Operation::ToolsCall, Some(name), |c| {
                            Box::pin(c.call_tool(name, args.clone(), None))
                        })
                        .await;
                    cycle.tool_picked = false;
                    if let Some(r) = r.filter(|r| r.is_error) {
                        mark_tool_error(cycle, &r.content);
                    }
                }
                Some(_) => {}
                None => cycle.skip(Operation::ToolsCall, SkipReason::NotConfigured),
            }
        }

        // resources/list, then the configured resource or the first listed one.
        if cycle.aborted {
        } else if !session.1.offers_resources {
            cycle.skip(Operation::ResourcesList, SkipReason::NotOffered);
            cycle.skip(Operation::ResourcesRead, SkipReason::NotOffered);
        } else {
            let listed =
                self.guarded(cycle, session, Operation::ResourcesList, None, |c| Box::pin(c.list_resources())).await;
            inventory.resources = listed.as_ref().map(|l| l.total);
            let uri = probe
                .resource
                .clone()
                .or_else(|| listed?.values().find_map(|r| r.get("uri").and_then(Value::as_str).map(str::to_string)));
            match uri {
                Some(uri) if !cycle.aborted => {
                    self.guarded(cycle, session, Operation::ResourcesRead, None, |c| Box::pin(c.read_resource(&uri)))
                        .await;
                }
                Some(_) => {}
                None => cycle.skip(Operation::ResourcesRead, SkipReason::NotConfigured),
            }
        }

        // prompts/list, then the configured prompt or the first one without required arguments.
        if cycle.aborted {
        } else if !session.1.offers_prompts {
            cycle.skip(Operation::PromptsList, SkipReason::NotOffered);
            cycle.skip(Operation::PromptsGet, SkipReason::NotOffered);
        } else {
            let listed =
                self.guarded(cycle, session, Operation::PromptsList, None, |c| Box::pin(c.list_prompts())).await;
            inventory.prompts = listed.as_ref().map(|l| l.total);
            let prompt = probe.prompt.clone().or_else(|| {
                listed?.values().find(|p| !has_required_arguments(p)).and_then(|p| {
                    p.get("name").and_then(Value::as_str).map(|n| (n.to_string(), Value::Object(Default::default())))
                })
            });
            match prompt {
                Some((name, args)) if !cycle.aborted => {
                    self.guarded(cycle, session, Operation::PromptsGet, None, |c| {
                        Box::pin(c.get_prompt(&name, args.clone()))
                    })
                    .await;
                }
                Some(_) => {}
                None => cycle.skip(Operation::PromptsGet, SkipReason::NotConfigured),
            }
        }
        cycle.outcome.inventory = inventory;

        if let Some(spec) = target.notification.as_ref().filter(|_| !cycle.aborted) {
            let outcome = self.notification_round_trip(cycle, session, spec).await;
            cycle.outcome.notification = outcome;
        }

        if cycle.aborted {
        } else if session.0.supports_ping() {
            self.guarded(cycle, session, Operation::Ping, None, |c| Box::pin(c.ping())).await;
        } else {
            cycle.skip(Operation::Ping, SkipReason::Unsupported);
        }
    }

    /// Run a step; on session expiry, re-initialise once so the rest of the script can go on.
    async fn guarded<'a, T>(
        &mut self,
        cycle: &mut Cycle,
        session: &'a mut (McpClient, ServerInfo, Instant),
        operation: Operation,
        tool: Option<&str>,
        call: impl FnOnce(&'a McpClient) -> std::pin::Pin<Box<dyn Future<Output = Result<T, McpError>> + Send + 'a>>,
    ) -> Option<T> {
        let result = cycle.step(operation, tool, &session.0, call(&session.0)).await;
        match result {
            Ok(v) => Some(v),
            Err(McpError::SessionExpired { .. }) => {
                cycle.outcome.sessions_ended.push(session.2.elapsed());
                cycle.outcome.sessions_reinitialized += 1;
                cycle.session_id = None;
                if let Ok(info) = cycle.step(Operation::Connect, None, &session.0, session.0.connect()).await {
                    self.open_stream_if_wanted(&session.0).await;
                    cycle.session_id = info.session_id.clone();
                    session.1 = info.clone();
                    session.2 = Instant::now();
                    cycle.outcome.server = Some(info);
                }
                None
            }
            Err(_) => None,
        }
    }

    async fn notification_round_trip(
        &mut self,
        cycle: &mut Cycle,
        session: &mut (McpClient, ServerInfo, Instant),
        spec: &NotificationSpec,
    ) -> Option<NotificationOutcome> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let arguments = substitute_nonce(&spec.arguments, &nonce);
        let mut notifications = session.0.notifications();
        let sent = Instant::now();
        let called = self
            .guarded(cycle, session, Operation::ToolsCall, Some(&spec.tool), |c| {
                Box::pin(c.call_tool(&spec.tool, arguments.clone(), Some(&nonce)))
            })
            .await?;
        if called.is_error {
            mark_tool_error(cycle, &called.content);
            return None;
        }
        let deadline = tokio::time::Instant::now() + spec.timeout;
        loop {
            match tokio::time::timeout_at(deadline, notifications.recv()).await {
                Ok(Ok(n)) if n.method == spec.method && n.params.to_string().contains(&nonce) => {
                    return Some(NotificationOutcome::Delivered(n.received_at.saturating_duration_since(sent)));
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Some(NotificationOutcome::Missed);
                }
            }
        }
    }
}

/// A tools/call that came back with `isError: true` is a failed step with class `tool_error`.
fn mark_tool_error(cycle: &mut Cycle, content: &Value) {
    if let Some(last) = cycle.outcome.steps.last_mut() {
        last.result = StepResult::Failed { error_type: ErrorType::ToolError, rpc_code: None, http_status: None };
        last.detail = format!("tool returned isError: {}", truncate(&content.to_string(), 200));
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn has_required_arguments(prompt: &Value) -> bool {
    prompt
        .get("arguments")
        .and_then(Value::as_array)
        .is_some_and(|args| args.iter().any(|a| a.get("required").and_then(Value::as_bool).unwrap_or(false)))
}

/// Replace `{nonce}` in every string of `value`.
pub fn substitute_nonce(value: &Value, nonce: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace("{nonce}", nonce)),
        Value::Array(a) => Value::Array(a.iter().map(|v| substitute_nonce(v, nonce)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), substitute_nonce(v, nonce))).collect()),
        other => other.clone(),
    }
}

/// Order-independent hash of the tools' contracts (name, title, description, input and output
/// schemas, annotations: `ListKind::contract`); a change means drift. The same hash a
/// `tools/list` listing of these tools carries (`Listing::hash`).
pub fn tools_schema_hash(tools: &[Value]) -> u64 {
    crate::mcp::listing::hash_values(crate::mcp::ListKind::Tools, tools)
}

fn delta(now: &StreamStats, before: &StreamStats) -> StreamStats {
    StreamStats {
        reconnects: now.reconnects.saturating_sub(before.reconnects),
        resumed: now.resumed.saturating_sub(before.resumed),
        duplicates_dropped: now.duplicates_dropped.saturating_sub(before.duplicates_dropped),
        server_requests_answered: now.server_requests_answered.saturating_sub(before.server_requests_answered),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nonce_is_substituted_everywhere() {
        let v = json!({"a": "{nonce}", "b": ["x-{nonce}", 3], "c": {"d": "{nonce}{nonce}"}});
        assert_eq!(substitute_nonce(&v, "N"), json!({"a": "N", "b": ["x-N", 3], "c": {"d": "NN"}}));
    }

    #[test]
    fn schema_hash_ignores_order_and_sees_schema_changes() {
        let a = json!({"name": "a", "inputSchema": {"type": "object"}});
        let b = json!({"name": "b", "inputSchema": {"type": "object"}});
        let b2 = json!({"name": "b", "inputSchema": {"type": "object", "properties": {"x": {}}}});
        assert_eq!(tools_schema_hash(&[a.clone(), b.clone()]), tools_schema_hash(&[b, a.clone()]));
        assert_ne!(tools_schema_hash(std::slice::from_ref(&a)), tools_schema_hash(&[a, b2]));
    }

    #[test]
    fn schema_hash_sees_a_description_change_alone() {
        let a = json!({"name": "a", "description": "Reads the status", "inputSchema": {"type": "object"}});
        let b = json!({"name": "b", "inputSchema": {"type": "object"}});
        let mut a2 = a.clone();
        a2["description"] = json!("Deletes everything");
        assert_eq!(tools_schema_hash(&[a.clone(), b.clone()]), tools_schema_hash(&[b.clone(), a.clone()]));
        assert_ne!(tools_schema_hash(&[a, b.clone()]), tools_schema_hash(&[a2, b]));
    }

    #[test]
    fn prompts_with_required_arguments_are_not_auto_picked() {
        assert!(has_required_arguments(&json!({"arguments": [{"name": "x", "required": true}]})));
        assert!(!has_required_arguments(&json!({"arguments": [{"name": "x"}]})));
        assert!(!has_required_arguments(&json!({"name": "p"})));
    }
}
