//! Turn typed outcomes into metrics and logs. The only place probe results meet metric names.

use metrics::{counter, gauge, histogram};

use super::catalogue as m;
use crate::mcp::ServerInfo;
use crate::runner::{NotificationOutcome, ProbeOutcome, StepResult};

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

/// Record everything one probe cycle observed for `target`.
pub fn probe_completed(target: &str, outcome: &ProbeOutcome) {
    let t = target.to_string();
    let stateless = outcome.server.as_ref().is_some_and(|s| s.stateless);
    let version = outcome.protocol_version().to_string();
    for step in &outcome.steps {
        let method = step.operation.method_name(stateless);
        let tool = step.tool.clone().unwrap_or_default();
        match &step.result {
            StepResult::Success => {
                histogram!(m::OPERATION_DURATION.name, "target" => t.clone(), "mcp_method_name" => method,
                    "gen_ai_tool_name" => tool, "error_type" => "", "mcp_protocol_version" => version.clone())
                .record(step.latency.as_secs_f64());
                counter!(m::OPERATIONS.name, "target" => t.clone(), "mcp_method_name" => method,
                    "outcome" => "success", "error_type" => "")
                .increment(1);
            }
            StepResult::Failed { error_type, rpc_code, .. } => {
                histogram!(m::OPERATION_DURATION.name, "target" => t.clone(), "mcp_method_name" => method,
                    "gen_ai_tool_name" => tool, "error_type" => error_type.as_str(),
                    "mcp_protocol_version" => version.clone())
                .record(step.latency.as_secs_f64());
                counter!(m::OPERATIONS.name, "target" => t.clone(), "mcp_method_name" => method,
                    "outcome" => "failure", "error_type" => error_type.as_str())
                .increment(1);
                if let Some(code) = rpc_code {
                    counter!(m::JSONRPC_ERRORS.name, "target" => t.clone(), "mcp_method_name" => method,
                        "rpc_response_status_code" => rpc_code_label(*code))
                    .increment(1);
                }
                tracing::warn!(target_name = %target, method, error_type = %error_type, error = %step.detail, "Probe step failed");
            }
            StepResult::Skipped(reason) => {
                counter!(m::OPERATIONS.name, "target" => t.clone(), "mcp_method_name" => method,
                    "outcome" => "skipped", "error_type" => "")
                .increment(1);
                tracing::debug!(target_name = %target, method, reason = reason.as_str(), "Probe step skipped");
            }
        }
    }

    let success = outcome.success();
    gauge!(m::PROBE_SUCCESS.name, "target" => t.clone()).set(if success { 1.0 } else { 0.0 });
    histogram!(m::PROBE_DURATION.name, "target" => t.clone()).record(outcome.duration.as_secs_f64());
    counter!(m::PROBES.name, "target" => t.clone(), "outcome" => if success { "success" } else { "failure" })
        .increment(1);

    if let Some(server) = &outcome.server {
        server_observed(&t, server);
    }
    for (kind, count) in [
        ("tools", outcome.inventory.tools),
        ("resources", outcome.inventory.resources),
        ("prompts", outcome.inventory.prompts),
    ] {
        if let Some(count) = count {
            gauge!(m::SERVER_ITEMS.name, "target" => t.clone(), "kind" => kind).set(count as f64);
        }
    }
    if outcome.tools_schema_changed {
        counter!(m::TOOLS_SCHEMA_CHANGES.name, "target" => t.clone()).increment(1);
        tracing::info!(target_name = %target, "Tools schema changed");
    }
    // Touch the counter so the series exists (at 0) before the first change.
    counter!(m::TOOLS_SCHEMA_CHANGES.name, "target" => t.clone()).increment(0);

    match outcome.notification {
        Some(NotificationOutcome::Delivered(latency)) => {
            counter!(m::NOTIFICATIONS_EXPECTED.name, "target" => t.clone()).increment(1);
            counter!(m::NOTIFICATIONS_RECEIVED.name, "target" => t.clone()).increment(1);
            histogram!(m::NOTIFICATION_LATENCY.name, "target" => t.clone()).record(latency.as_secs_f64());
        }
        Some(NotificationOutcome::Missed) => {
            counter!(m::NOTIFICATIONS_EXPECTED.name, "target" => t.clone()).increment(1);
            counter!(m::NOTIFICATIONS_RECEIVED.name, "target" => t.clone()).increment(0);
            tracing::warn!(target_name = %target, "Notification not received in time");
        }
        None => {}
    }

    sessions_observed(&t, outcome);
    super::spans::probe_traced(target, outcome);
}

/// Session lifetimes, re-initialisations and stream recovery from one cycle (or a shutdown).
pub fn sessions_observed(t: &str, outcome: &ProbeOutcome) {
    for lifetime in &outcome.sessions_ended {
        histogram!(m::SESSION_DURATION.name, "target" => t.to_string()).record(lifetime.as_secs_f64());
    }
    let reinit = counter!(m::SESSIONS_REINITIALIZED.name, "target" => t.to_string());
    reinit.increment(u64::from(outcome.sessions_reinitialized));
    counter!(m::STREAM_RECONNECTS.name, "target" => t.to_string()).increment(outcome.stream.reconnects);
    counter!(m::STREAM_RESUMPTIONS.name, "target" => t.to_string()).increment(outcome.stream.resumed);
    counter!(m::STREAM_DUPLICATES.name, "target" => t.to_string()).increment(outcome.stream.duplicates_dropped);
}

fn server_observed(t: &str, server: &ServerInfo) {
    gauge!(m::SERVER_INFO.name, "target" => t.to_string(), "server_name" => server.name.clone(),
        "server_version" => server.version.clone(), "mcp_protocol_version" => server.protocol_version.clone())
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

/// A server identity that is no longer current drops to 0 so the info metric has one live series.
pub fn server_identity_replaced(t: &str, old: &ServerInfo) {
    gauge!(m::SERVER_INFO.name, "target" => t.to_string(), "server_name" => old.name.clone(),
        "server_version" => old.version.clone(), "mcp_protocol_version" => old.protocol_version.clone())
    .set(0.0);
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
    gauge!(m::TARGETS.name).set(targets as f64);
}
