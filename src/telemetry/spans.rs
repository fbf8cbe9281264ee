//! Spans built after the fact from a typed `ProbeOutcome`: one per probe cycle, a child per MCP
//! operation, attributes from the OpenTelemetry MCP semantic conventions. Runners stay unaware.

use std::sync::OnceLock;

use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use super::events::rpc_code_label;
use crate::runner::{Operation, ProbeOutcome, StepResult};

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Turn span export on (once, when OTLP is configured).
pub fn install(provider: &opentelemetry_sdk::trace::SdkTracerProvider) {
    let _ = TRACER.set(provider.tracer(super::otlp::SCOPE));
}

/// Name of the span of a whole cycle.
pub const PROBE_SPAN: &str = "mcp-canary probe";

/// Emit the spans of one cycle of `target`. A no-op without OTLP or without a start time.
pub fn probe_traced(target: &str, outcome: &ProbeOutcome) {
    let (Some(tracer), Some(started)) = (TRACER.get(), outcome.started_at) else {
        return;
    };
    let stateless = outcome.stateless();
    let version = outcome.protocol_version().to_string();
    let success = outcome.success();
    let mut root_attrs = vec![KeyValue::new("target", target.to_string())];
    if !version.is_empty() {
        root_attrs.push(KeyValue::new("mcp.protocol.version", version.clone()));
    }
    if let Some(failed) = outcome.first_failure()
        && let StepResult::Failed { error_type, .. } = &failed.result
    {
        root_attrs.push(KeyValue::new("error.type", error_type.as_str()));
    }
    let mut root = tracer
        .span_builder(PROBE_SPAN)
        .with_kind(SpanKind::Internal)
        .with_start_time(started)
        .with_attributes(root_attrs)
        .start(tracer);
    if !success {
        root.set_status(Status::error("probe failed"));
    }
    let parent = Context::new().with_remote_span_context(root.span_context().clone());

    for step in &outcome.steps {
        if matches!(step.result, StepResult::Skipped(_)) {
            continue;
        }
        let method = step.operation.method_name(stateless);
        let mut attrs = vec![KeyValue::new("mcp.method.name", method), KeyValue::new("target", target.to_string())];
        let name = match (&step.tool, step.operation) {
            (Some(tool), Operation::ToolsCall) => {
                let tool = super::labels::bounded(tool);
                attrs.push(KeyValue::new("gen_ai.tool.name", tool.clone()));
                attrs.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
                format!("{method} {tool}")
            }
            _ => method.to_string(),
        };
        let session = step.session_id.clone().or_else(|| outcome.server.as_ref().and_then(|s| s.session_id.clone()));
        if let Some(session) = session {
            attrs.push(KeyValue::new("mcp.session.id", session));
        }
        if !version.is_empty() {
            attrs.push(KeyValue::new("mcp.protocol.version", version.clone()));
        }
        attrs.push(KeyValue::new("network.transport", "tcp"));
        let failure = match &step.result {
            StepResult::Failed { error_type, rpc_code, http_status } => {
                attrs.push(KeyValue::new("error.type", error_type.as_str()));
                if let Some(code) = rpc_code {
                    attrs.push(KeyValue::new("rpc.response.status_code", rpc_code_label(*code)));
                }
                if let Some(status) = http_status {
                    attrs.push(KeyValue::new("http.response.status_code", i64::from(*status)));
                }
                Some(error_type.as_str())
            }
            _ => None,
        };
        let mut span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(step.started_at)
            .with_attributes(attrs)
            .start_with_context(tracer, &parent);
        if let Some(error_type) = failure {
            span.set_status(Status::error(error_type));
        }
        span.end_with_timestamp(step.started_at + step.latency);
    }
    root.end_with_timestamp(started + outcome.duration);
}
