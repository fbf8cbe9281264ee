//! Turn typed outcomes into metrics and logs. The only place probe results meet metric names.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::catalogue as m;
use super::labels::{self, AUTO_TOOL, bounded};
use crate::inspect::redis::{RedisErrorClass, RedisObservation, policy_label};
use crate::mcp::transport::HttpVersion;
use crate::mcp::{ErrorType, ServerInfo};
use crate::runner::{NotificationOutcome, ProbeOutcome, StepOutcome, StepResult};

/// `rpc_response_status_code` label: well-known JSON-RPC and MCP codes, else `other` (bounded).
pub fn rpc_code_label(code: i64) -> &'static str {
    match code {
        -32700 => "-32700",
        -32600 => "-32600",
        -32601 => "-32601",
        -32602 => "-32602",
        -32603 => "-32603",
        -32002 => "-32002",
        -32020 => "-32020",
        -32042 => "-32042",
        -32099..=-32000 => "server_error",
        _ => "other",
    }
}

/// `gen_ai_tool_name` of a step: the configured tool's name (bounded), [`AUTO_TOOL`] for a tool
/// picked from the server's list, empty for other methods.
fn tool_label(step: &StepOutcome) -> String {
    match &step.tool {
        None => String::new(),
        Some(_) if step.tool_picked => AUTO_TOOL.to_string(),
        Some(name) => bounded(name),
    }
}

/// One target's series handles, registered on first use and held by its probe loop: a cycle
/// records some 40 samples, and finding each series by its labels (a key of owned strings built,
/// hashed and compared per sample) was the largest cost of the daemon's own code at 1,000
/// targets. A retired target's series are hidden by the exporter whatever holds their handles.
pub struct TargetSeries {
    target: String,
    /// `mcp_client_operation_duration_seconds` and `mcp_canary_operations_total` by method, tool
    /// label, error type (empty on success and skips) and protocol version; a target has a few
    /// dozen at most (error types and methods are closed sets), so a scan finds one.
    operations: Vec<OperationSeries>,
    /// The rest, each registered when first recorded (as the macros did), so no series appears
    /// before its first sample.
    probe_success: Option<Gauge>,
    probe_duration: Option<Histogram>,
    probes: [Option<Counter>; 2],
    items: [Option<Gauge>; 3],
    schema_changes: Option<Counter>,
    notifications_expected: Option<Counter>,
    notifications_received: Option<Counter>,
    notification_latency: Option<Histogram>,
    session_duration: Option<Histogram>,
    stream: Option<[Counter; 4]>,
}

/// `slot`'s handle, registered by `register` on first use.
fn held<H>(slot: &mut Option<H>, register: impl FnOnce() -> H) -> &H {
    slot.get_or_insert_with(register)
}

struct OperationSeries {
    method: &'static str,
    tool: String,
    error_type: &'static str,
    version: &'static str,
    skipped: bool,
    /// `None` for skips, which take no time.
    duration: Option<Histogram>,
    count: Counter,
}

impl TargetSeries {
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_string(),
            operations: Vec::new(),
            probe_success: None,
            probe_duration: None,
            probes: [None, None],
            items: [None, None, None],
            schema_changes: None,
            notifications_expected: None,
            notifications_received: None,
            notification_latency: None,
            session_duration: None,
            stream: None,
        }
    }

    /// The series of one step's labels; `skipped` steps count under `outcome="skipped"` and
    /// have no duration.
    fn operation(
        &mut self,
        method: &'static str,
        tool: &str,
        error_type: Option<&'static str>,
        version: &'static str,
        skipped: bool,
    ) -> &OperationSeries {
        let error = error_type.unwrap_or("");
        let found = self.operations.iter().position(|o| {
            o.method == method
                && o.error_type == error
                && o.version == version
                && o.skipped == skipped
                && o.tool == tool
        });
        let i = match found {
            Some(i) => i,
            None => {
                let t = self.target.clone();
                let outcome = match (skipped, error_type) {
                    (true, _) => "skipped",
                    (false, None) => "success",
                    (false, Some(_)) => "failure",
                };
                self.operations.push(OperationSeries {
                    method,
                    tool: tool.to_string(),
                    error_type: error,
                    version,
                    skipped,
                    duration: (!skipped).then(|| {
                        histogram!(m::OPERATION_DURATION.name, "target" => t.clone(), "mcp_method_name" => method,
                            "gen_ai_tool_name" => tool.to_string(), "error_type" => error,
                            "mcp_protocol_version" => version)
                    }),
                    count: counter!(m::OPERATIONS.name, "target" => t, "mcp_method_name" => method,
                        "outcome" => outcome, "error_type" => error),
                });
                self.operations.len() - 1
            }
        };
        &self.operations[i]
    }
}

impl OperationSeries {
    fn record(&self, latency: std::time::Duration) {
        if let Some(d) = &self.duration {
            d.record(latency.as_secs_f64());
        }
        self.count.increment(1);
    }
}

/// Record everything one probe cycle observed for its target; `span` is the cycle's probe span
/// when one was begun before it ([`super::spans::begin_probe`]), else it is made after the fact.
pub fn probe_completed(series: &mut TargetSeries, outcome: &ProbeOutcome, span: Option<super::spans::ProbeSpan>) {
    let t = series.target.clone();
    let target = t.as_str();
    let stateless = outcome.stateless();
    let version = labels::protocol_version(outcome.protocol_version());
    for step in &outcome.steps {
        let method = step.operation.method_name(stateless);
        let tool = tool_label(step);
        operation_otlp(target, step, method, version);
        match &step.result {
            StepResult::Success => {
                series.operation(method, &tool, None, version, false).record(step.latency);
            }
            StepResult::Failed { error_type, .. } => {
                series.operation(method, &tool, Some(error_type.as_str()), version, false).record(step.latency);
                if let Some(code) = jsonrpc_error_code(&step.result) {
                    counter!(m::JSONRPC_ERRORS.name, "target" => t.clone(), "mcp_method_name" => method,
                        "rpc_response_status_code" => rpc_code_label(code))
                    .increment(1);
                }
                tracing::warn!(target_name = %target, method, error_type = %error_type, error = %step.detail, "Probe step failed");
            }
            StepResult::Skipped(reason) => {
                series.operation(method, "", None, "", true).record(step.latency);
                tracing::debug!(target_name = %target, method, reason = reason.as_str(), "Probe step skipped");
            }
        }
    }

    if let Some(auth) = &outcome.auth {
        auth_status(&t, auth);
    }
    let name = &series.target;
    let success = outcome.success();
    held(&mut series.probe_success, || gauge!(m::PROBE_SUCCESS.name, "target" => name.clone())).set(if success {
        1.0
    } else {
        0.0
    });
    held(&mut series.probe_duration, || histogram!(m::PROBE_DURATION.name, "target" => name.clone()))
        .record(outcome.duration.as_secs_f64());
    let (slot, outcome_label) = if success { (0, "success") } else { (1, "failure") };
    held(&mut series.probes[slot], || counter!(m::PROBES.name, "target" => name.clone(), "outcome" => outcome_label))
        .increment(1);

    if let Some(server) = &outcome.server {
        server_observed(&t, server);
    }
    for (i, (kind, count)) in [
        ("tools", outcome.inventory.tools),
        ("resources", outcome.inventory.resources),
        ("prompts", outcome.inventory.prompts),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(count) = count {
            held(&mut series.items[i], || gauge!(m::SERVER_ITEMS.name, "target" => name.clone(), "kind" => kind))
                .set(count as f64);
        }
    }
    // Touched every cycle so the series exists (at 0) before the first change.
    let changes = held(&mut series.schema_changes, || counter!(m::TOOLS_SCHEMA_CHANGES.name, "target" => name.clone()));
    changes.increment(u64::from(outcome.tools_schema_changed));
    if outcome.tools_schema_changed {
        tracing::info!(target_name = %target, "Tools schema changed");
    }

    if let Some(notification) = &outcome.notification {
        let expected = held(
            &mut series.notifications_expected,
            || counter!(m::NOTIFICATIONS_EXPECTED.name, "target" => name.clone()),
        );
        expected.increment(1);
        let received = held(
            &mut series.notifications_received,
            || counter!(m::NOTIFICATIONS_RECEIVED.name, "target" => name.clone()),
        );
        match notification {
            NotificationOutcome::Delivered(latency) => {
                received.increment(1);
                held(
                    &mut series.notification_latency,
                    || histogram!(m::NOTIFICATION_LATENCY.name, "target" => name.clone()),
                )
                .record(latency.as_secs_f64());
            }
            NotificationOutcome::Missed => {
                received.increment(0);
                tracing::warn!(target_name = %target, "Notification not received in time");
            }
        }
    }

    sessions_observed(series, outcome);
    if let Some(instances) = &outcome.instances {
        super::instances::instances_checked(target, instances);
    }
    super::spans::probe_traced(target, outcome, span);
}

/// The code `mcp_canary_jsonrpc_errors_total` counts: a JSON-RPC error's only. A code in the body
/// of an HTTP error status goes to the OTLP `error.type` alone; on Prometheus that failure stays
/// its HTTP class.
fn jsonrpc_error_code(result: &StepResult) -> Option<i64> {
    match result {
        StepResult::Failed { error_type: ErrorType::JsonrpcError, rpc_code, .. } => *rpc_code,
        _ => None,
    }
}

/// The step's point on `mcp.client.operation.duration` over OTLP, with the semantic
/// conventions' attributes (a no-op without OTLP; skipped steps have no duration).
fn operation_otlp(target: &str, step: &StepOutcome, method: &'static str, version: &str) {
    let tool = configured_tool(step);
    if let Some(op) = step_operation(target, step, method, version, tool.as_deref()) {
        super::otel_bridge::record_operation(&op, step.latency.as_secs_f64());
    }
}

/// A step as the semantic conventions' operation; `None` for a skip (no request was made).
/// `tool` is the step's [`configured_tool`].
pub fn step_operation<'a>(
    target: &'a str,
    step: &StepOutcome,
    method: &'static str,
    version: &'a str,
    tool: Option<&'a str>,
) -> Option<super::semconv::Operation<'a>> {
    let failure = match &step.result {
        StepResult::Success => None,
        StepResult::Failed { error_type, rpc_code, .. } => Some((*error_type, *rpc_code)),
        StepResult::Skipped(_) => return None,
    };
    let http_version = step.http_version.map(HttpVersion::as_str);
    Some(super::semconv::Operation { target, method, tool, protocol_version: version, failure, http_version })
}

/// `gen_ai.tool.name` over OTLP: the configured tool (bounded); a tool picked from the server's
/// list is no name the conventions mean, and would be one series per server-chosen name.
pub fn configured_tool(step: &StepOutcome) -> Option<String> {
    step.tool.as_deref().filter(|_| !step.tool_picked).map(bounded)
}

/// A target's endpoint, for the OTLP attributes of its operations and sessions (`server.address`,
/// `server.port`, `network.*`); called when its probe loop starts.
pub fn target_endpoint(target: &str, url: &url::Url) {
    super::otel_bridge::target_endpoint(target, url);
}

/// Session lifetimes, re-initialisations and stream recovery from one cycle (or a shutdown).
pub fn sessions_observed(series: &mut TargetSeries, outcome: &ProbeOutcome) {
    let t = &series.target;
    if !outcome.sessions_ended.is_empty() {
        let lifetimes =
            held(&mut series.session_duration, || histogram!(m::SESSION_DURATION.name, "target" => t.clone()));
        for lifetime in &outcome.sessions_ended {
            lifetimes.record(lifetime.as_secs_f64());
        }
    }
    let [reinit, reconnects, resumed, duplicates] = held(&mut series.stream, || {
        [
            counter!(m::SESSIONS_REINITIALIZED.name, "target" => t.clone()),
            counter!(m::STREAM_RECONNECTS.name, "target" => t.clone()),
            counter!(m::STREAM_RESUMPTIONS.name, "target" => t.clone()),
            counter!(m::STREAM_DUPLICATES.name, "target" => t.clone()),
        ]
    });
    reinit.increment(u64::from(outcome.sessions_reinitialized));
    reconnects.increment(outcome.stream.reconnects);
    resumed.increment(outcome.stream.resumed);
    duplicates.increment(outcome.stream.duplicates_dropped);
}

/// The identity labels are bounded; the info family keeps one series per target (the last set,
/// see [`super::info`]), so a changed identity replaces the old series.
fn server_observed(t: &str, server: &ServerInfo) {
    gauge!(m::SERVER_INFO.name, "target" => t.to_string(), "server_name" => bounded(&server.name),
        "server_version" => bounded(&server.version),
        "mcp_protocol_version" => labels::protocol_version(&server.protocol_version))
    .set(1.0);
    for (capability, offered) in [
        ("tools", server.offers_tools),
        ("resources", server.offers_resources),
        ("resources_subscribe", server.resources_subscribe),
        ("prompts", server.offers_prompts),
        ("completions", server.offers_completions),
        ("logging", server.offers_logging),
    ] {
        gauge!(m::SERVER_CAPABILITY.name, "target" => t.to_string(), "capability" => capability).set(if offered {
            1.0
        } else {
            0.0
        });
    }
}

/// A cycle took longer than its interval.
pub fn probe_overrun(target: &str, elapsed: std::time::Duration) {
    counter!(m::PROBE_OVERRUNS.name, "target" => target.to_string()).increment(1);
    tracing::warn!(target_name = %target, elapsed_ms = elapsed.as_millis() as u64, "Probe cycle overran its interval");
}

/// Series every target has from the start, so dashboards and `rate()` see zeros, not gaps.
pub fn target_registered(target: &str) {
    let t = target.to_string();
    counter!(m::PROBE_OVERRUNS.name, "target" => t.clone()).increment(0);
    counter!(m::SESSIONS_REINITIALIZED.name, "target" => t.clone()).increment(0);
    counter!(m::NOTIFICATIONS_EXPECTED.name, "target" => t.clone()).increment(0);
    counter!(m::NOTIFICATIONS_RECEIVED.name, "target" => t.clone()).increment(0);
    for outcome in ["success", "failure"] {
        counter!(m::PROBES.name, "target" => t.clone(), "outcome" => outcome).increment(0);
    }
}

/// Daemon-level series set once at start.
pub fn daemon_started(targets: usize) {
    gauge!(m::BUILD_INFO.name, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    config_loaded(targets, false);
    for reason in HttpClose::ALL {
        counter!(m::HTTP_CONNECTIONS_CLOSED.name, "reason" => reason.label()).increment(0);
    }
    for reason in HttpRefusal::ALL {
        counter!(m::HTTP_REQUESTS_REFUSED.name, "reason" => reason.label()).increment(0);
    }
}

/// A config was loaded: at the start (`reload` false) or by a reload.
pub fn config_loaded(targets: usize, reload: bool) {
    gauge!(m::TARGETS.name).set(targets as f64);
    gauge!(m::CONFIG_LAST_RELOAD_SUCCESSFUL.name).set(1.0);
    gauge!(m::CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP.name).set(crate::clock::unix_seconds());
    counter!(m::CONFIG_RELOADS.name, "outcome" => "success").increment(u64::from(reload));
    counter!(m::CONFIG_RELOADS.name, "outcome" => "failure").increment(0);
}

/// A reload was refused: the previous config keeps running.
pub fn config_reload_failed() {
    gauge!(m::CONFIG_LAST_RELOAD_SUCCESSFUL.name).set(0.0);
    counter!(m::CONFIG_RELOADS.name, "outcome" => "failure").increment(1);
}

/// Why the daemon's HTTP surface closed a client's connection (the closed `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpClose {
    /// A newer connection needed its place under the connection cap.
    Displaced,
    /// No complete request head in time (an idle keep-alive connection included).
    HeaderTimeout,
    /// A request, to the last byte of its answer, took longer than allowed.
    RequestTimeout,
    /// The TLS handshake failed: plain HTTP, an unknown or missing client certificate, no
    /// common version or cipher (one that did not finish in time is `HeaderTimeout`).
    TlsHandshake,
}

impl HttpClose {
    pub const ALL: [HttpClose; 4] =
        [HttpClose::Displaced, HttpClose::HeaderTimeout, HttpClose::RequestTimeout, HttpClose::TlsHandshake];

    pub fn label(self) -> &'static str {
        match self {
            HttpClose::Displaced => "displaced",
            HttpClose::HeaderTimeout => "header_timeout",
            HttpClose::RequestTimeout => "request_timeout",
            HttpClose::TlsHandshake => "tls_handshake",
        }
    }
}

pub fn http_connection_closed(reason: HttpClose) {
    counter!(m::HTTP_CONNECTIONS_CLOSED.name, "reason" => reason.label()).increment(1);
}

/// Why the surface answered 401 (`server.basic_auth_users`, `server.bearer_token_file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRefusal {
    /// No `Authorization` header, or one of a scheme not configured.
    NoCredentials,
    /// A user, password or token that does not match.
    BadCredentials,
}

impl HttpRefusal {
    pub const ALL: [HttpRefusal; 2] = [HttpRefusal::NoCredentials, HttpRefusal::BadCredentials];

    pub fn label(self) -> &'static str {
        match self {
            HttpRefusal::NoCredentials => "no_credentials",
            HttpRefusal::BadCredentials => "bad_credentials",
        }
    }
}

pub fn http_request_refused(reason: HttpRefusal) {
    counter!(m::HTTP_REQUESTS_REFUSED.name, "reason" => reason.label()).increment(1);
}

/// Series of a target's Redis inspector that exist from the start (zeros, not gaps).
pub fn redis_inspector_registered(target: &str) {
    for class in RedisErrorClass::ALL {
        counter!(m::REDIS_ERRORS.name, "target" => target.to_string(), "error_type" => class.as_str()).increment(0);
    }
    counter!(m::REDIS_EVICTED_KEYS.name, "target" => target.to_string()).increment(0);
    counter!(m::REDIS_EXPIRED_KEYS.name, "target" => target.to_string()).increment(0);
}

/// Record one Redis sample. `policy` holds the policy label set last time, so a replaced policy
/// drops to 0 and the info metric keeps one live series.
pub fn redis_sampled(target: &str, obs: &RedisObservation, policy: &mut Option<&'static str>) {
    let t = || target.to_string();
    gauge!(m::REDIS_UP.name, "target" => t()).set(if obs.up { 1.0 } else { 0.0 });
    for class in &obs.errors {
        counter!(m::REDIS_ERRORS.name, "target" => t(), "error_type" => class.as_str()).increment(1);
    }
    if let Some(class) = obs.errors.first() {
        let detail = obs.detail.as_deref().unwrap_or("");
        if obs.up {
            tracing::warn!(target_name = %target, error_type = class.as_str(), error = detail, "Redis sample incomplete");
        } else {
            tracing::warn!(target_name = %target, error_type = class.as_str(), error = detail, "Redis unreachable");
        }
    }
    if let Some(ping) = obs.ping {
        histogram!(m::REDIS_PING_DURATION.name, "target" => t()).record(ping.as_secs_f64());
    }
    if let Some(info) = &obs.info {
        let set = |def: &m::MetricDef, v: Option<f64>| {
            if let Some(v) = v {
                gauge!(def.name, "target" => t()).set(v);
            }
        };
        set(&m::REDIS_MEMORY_USED, info.used_memory.map(|v| v as f64));
        set(&m::REDIS_MEMORY_PEAK, info.used_memory_peak.map(|v| v as f64));
        set(&m::REDIS_MEMORY_FRAGMENTATION, info.mem_fragmentation_ratio);
        set(&m::REDIS_MEMORY_MAX, info.maxmemory.map(|v| v as f64));
        set(&m::REDIS_CONNECTED_CLIENTS, info.connected_clients.map(|v| v as f64));
        set(&m::REDIS_PUBSUB_CHANNELS, info.pubsub_channels.map(|v| v as f64));
        if let Some(current) = info.maxmemory_policy.as_deref().map(policy_label) {
            if let Some(old) = policy.filter(|old| *old != current) {
                gauge!(m::REDIS_MAXMEMORY_POLICY.name, "target" => t(), "policy" => old).set(0.0);
            }
            gauge!(m::REDIS_MAXMEMORY_POLICY.name, "target" => t(), "policy" => current).set(1.0);
            *policy = Some(current);
        }
    }
    if let Some(n) = obs.evicted_keys_delta {
        counter!(m::REDIS_EVICTED_KEYS.name, "target" => t()).increment(n);
    }
    if let Some(n) = obs.expired_keys_delta {
        counter!(m::REDIS_EXPIRED_KEYS.name, "target" => t()).increment(n);
    }
    if let Some(n) = obs.pubsub_patterns {
        gauge!(m::REDIS_PUBSUB_PATTERNS.name, "target" => t()).set(n as f64);
    }
    for p in &obs.patterns {
        let pattern = p.pattern.clone();
        gauge!(m::REDIS_KEYS.name, "target" => t(), "pattern" => pattern.clone()).set(p.keys as f64);
        gauge!(m::REDIS_KEYS_EXACT.name, "target" => t(), "pattern" => pattern.clone()).set(if p.keys_exact {
            1.0
        } else {
            0.0
        });
        gauge!(m::REDIS_PATTERN_CHANNELS.name, "target" => t(), "pattern" => pattern.clone()).set(p.channels as f64);
        gauge!(m::REDIS_PATTERN_SUBSCRIBERS.name, "target" => t(), "pattern" => pattern).set(p.subscribers as f64);
    }
}

/// When a long-lived credential of `target` expires (`credential`: `bearer_token`), for the
/// credential-expiry alert.
pub fn credential_expiry(target: &str, credential: &'static str, at: f64) {
    gauge!(m::AUTH_CREDENTIAL_EXPIRY.name, "target" => target.to_string(), "credential" => credential).set(at);
}

/// A target's OAuth token health: the expiry of its current token, and its token requests by
/// outcome (the source's running totals).
fn auth_status(target: &str, status: &crate::mcp::auth::TokenStatus) {
    if let Some(at) = status.expires_at {
        gauge!(m::AUTH_TOKEN_EXPIRY.name, "target" => target.to_string()).set(at);
    }
    counter!(m::AUTH_TOKEN_REQUESTS.name, "target" => target.to_string(), "outcome" => "success")
        .absolute(status.acquired);
    counter!(m::AUTH_TOKEN_REQUESTS.name, "target" => target.to_string(), "outcome" => "failure")
        .absolute(status.failed);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::runner::Operation;

    fn call(tool: Option<&str>, tool_picked: bool) -> StepOutcome {
        StepOutcome {
            operation: Operation::ToolsCall,
            tool: tool.map(str::to_string),
            tool_picked,
            result: StepResult::Success,
            latency: Duration::ZERO,
            started_at: SystemTime::now(),
            session_id: None,
            http_version: None,
            span_id: None,
            detail: String::new(),
        }
    }

    #[test]
    fn only_a_jsonrpc_error_counts_its_code_on_prometheus() {
        let failed = |error_type, rpc_code| StepResult::Failed { error_type, rpc_code, http_status: None };
        assert_eq!(jsonrpc_error_code(&failed(ErrorType::JsonrpcError, Some(-32602))), Some(-32602));
        assert_eq!(jsonrpc_error_code(&failed(ErrorType::Http4xx, Some(-32602))), None);
        assert_eq!(jsonrpc_error_code(&failed(ErrorType::Http5xx, Some(-32603))), None);
        assert_eq!(jsonrpc_error_code(&StepResult::Success), None);
    }

    #[test]
    fn a_picked_tool_is_one_label_value_a_configured_one_keeps_its_bounded_name() {
        assert_eq!(tool_label(&call(Some("rot-1"), true)), AUTO_TOOL);
        assert_eq!(tool_label(&call(Some("rot-2"), true)), AUTO_TOOL);
        assert_eq!(tool_label(&call(Some("echo"), false)), "echo");
        assert_eq!(tool_label(&call(Some(&"x\n".repeat(200)), false)).chars().count(), labels::MAX_LABEL_CHARS);
        assert_eq!(tool_label(&call(None, false)), "");
    }
}
