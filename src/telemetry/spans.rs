//! Probe spans: one per probe cycle, begun before the cycle so its MCP requests can carry its
//! trace context in `params._meta` (the MCP conventions' context propagation), and a child per
//! MCP operation built after the fact from the typed `ProbeOutcome`, with the attributes of the
//! OpenTelemetry MCP semantic conventions. Runners stay unaware: they get the context as data,
//! and name each step's span id in its requests up front ([`StepIds`] exports the span under it).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::{Span, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer};

use super::events::{configured_tool, step_operation};
use super::{labels, otel_bridge, semconv};
use crate::mcp::TraceContext;
use crate::runner::{ProbeOutcome, StepResult};

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Turn span export on (once, when OTLP is configured).
pub fn install(provider: &opentelemetry_sdk::trace::SdkTracerProvider) {
    let _ = TRACER.set(provider.tracer(super::otlp::SCOPE));
}

thread_local! {
    /// The id the next span started on this thread takes (see [`StepIds`]).
    static NEXT_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// The tracer provider's ids: random, but for a span started under [`with_span_id`]. A step's
/// requests named its span id as their parent before the span existed (it is built after the
/// fact), and the SDK ignores a span id set on the builder, so the id reaches it here.
#[derive(Debug, Default)]
pub struct StepIds(RandomIdGenerator);

impl IdGenerator for StepIds {
    fn new_trace_id(&self) -> TraceId {
        self.0.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN_ID.take().unwrap_or_else(|| self.0.new_span_id())
    }
}

/// Run `start` (which starts one span, synchronously) so that span takes `id` when given.
fn with_span_id<S>(id: Option<[u8; 8]>, start: impl FnOnce() -> S) -> S {
    NEXT_SPAN_ID.set(id.map(SpanId::from_bytes));
    let span = start();
    // Unused when the provider was shut down: the next span must not take it.
    NEXT_SPAN_ID.set(None);
    span
}

/// Name of the span of a whole cycle.
pub const PROBE_SPAN: &str = "mcp-canary probe";

/// The span of a cycle in progress and the context its requests carry.
pub struct ProbeSpan {
    span: opentelemetry_sdk::trace::Span,
    context: TraceContext,
}

impl ProbeSpan {
    /// The W3C trace context of this span: the cycle's requests carry it with their operation's
    /// span id as the parent (`TraceContext::with_parent`).
    pub fn context(&self) -> TraceContext {
        self.context.clone()
    }
}

/// Begin the span of a cycle of `target` (now). `None` without OTLP: nothing to propagate, so
/// requests carry no (meaningless) trace ids.
pub fn begin_probe(target: &str) -> Option<ProbeSpan> {
    let tracer = TRACER.get()?;
    let span = tracer
        .span_builder(PROBE_SPAN)
        .with_kind(SpanKind::Internal)
        .with_start_time(SystemTime::now())
        .with_attributes([KeyValue::new("target", target.to_string())])
        .start(tracer);
    let context = trace_context(span.span_context());
    Some(ProbeSpan { span, context })
}

/// W3C `traceparent` (version 00) and `tracestate` of a span.
pub fn trace_context(sc: &opentelemetry::trace::SpanContext) -> TraceContext {
    let traceparent = format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8());
    let state = sc.trace_state().header();
    TraceContext { traceparent, tracestate: (!state.is_empty()).then_some(state) }
}

/// Emit the spans of one cycle of `target`, under `root` when it was begun before the cycle.
/// A no-op without OTLP, or without a start time and a begun span.
pub fn probe_traced(target: &str, outcome: &ProbeOutcome, root: Option<ProbeSpan>) {
    let Some(tracer) = TRACER.get() else { return };
    let mut root = match (root, outcome.started_at) {
        (Some(root), _) => root.span,
        (None, Some(started)) => tracer
            .span_builder(PROBE_SPAN)
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_attributes([KeyValue::new("target", target.to_string())])
            .start(tracer),
        (None, None) => return,
    };
    let stateless = outcome.stateless();
    let version = labels::protocol_version(outcome.protocol_version());
    let version = if outcome.protocol_version().is_empty() { "" } else { version };
    let endpoint = otel_bridge::endpoint(target);
    if !version.is_empty() {
        root.set_attribute(KeyValue::new("mcp.protocol.version", version));
    }
    if let Some(failed) = outcome.first_failure()
        && let StepResult::Failed { error_type, rpc_code, .. } = &failed.result
    {
        root.set_attribute(KeyValue::new("error.type", semconv::error_type(*error_type, *rpc_code).into_owned()));
    }
    if !outcome.success() {
        root.set_status(Status::error("probe failed"));
    }
    let parent = Context::new().with_remote_span_context(root.span_context().clone());

    for step in &outcome.steps {
        let method = step.operation.method_name(stateless);
        let tool = configured_tool(step);
        let Some(op) = step_operation(target, step, method, version, tool.as_deref()) else { continue };
        let mut attrs = op.attributes();
        attrs.extend(endpoint.iter().cloned());
        // The session id only where there is a session: never on 2026-07-28 (stateless) traffic.
        let session = step.session_id.clone().or_else(|| outcome.server.as_ref().and_then(|s| s.session_id.clone()));
        if let Some(session) = session.filter(|_| !stateless) {
            attrs.push(KeyValue::new("mcp.session.id", session));
        }
        if let StepResult::Failed { http_status: Some(status), .. } = &step.result {
            attrs.push(KeyValue::new("http.response.status_code", i64::from(*status)));
        }
        let name = match &tool {
            Some(tool) => format!("{method} {tool}"),
            None => method.to_string(),
        };
        let builder = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_start_time(step.started_at)
            .with_attributes(attrs);
        let mut span = with_span_id(step.span_id, || builder.start_with_context(tracer, &parent));
        if let Some((class, code)) = op.failure {
            span.set_status(Status::error(semconv::error_type(class, code).into_owned()));
        }
        span.end_with_timestamp(step.started_at + step.latency);
    }
    match outcome.started_at {
        Some(started) => root.end_with_timestamp(started + outcome.duration),
        None => root.end(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn traceparent_is_w3c_version_00() {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let ctx = trace_context(&sc);
        assert_eq!(ctx.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(ctx.tracestate, None);
        let state = TraceState::from_key_value([("rojo", "00f067aa0ba902b7")]).unwrap();
        let sc = SpanContext::new(sc.trace_id(), sc.span_id(), TraceFlags::default(), false, state);
        let ctx = trace_context(&sc);
        assert!(ctx.traceparent.ends_with("-00"), "{}", ctx.traceparent);
        assert_eq!(ctx.tracestate.as_deref(), Some("rojo=00f067aa0ba902b7"));
    }

    #[test]
    fn a_step_span_takes_the_id_its_requests_named() {
        let provider =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_id_generator(StepIds::default()).build();
        let tracer = provider.tracer("test");
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let span = with_span_id(Some(id), || tracer.start("step"));
        assert_eq!(span.span_context().span_id(), SpanId::from_bytes(id));
        // Only that span: the next one gets a random id again.
        let next = tracer.start("other");
        assert_ne!(next.span_context().span_id(), SpanId::from_bytes(id));
        assert!(next.span_context().is_valid());
    }
}
