//! The OpenTelemetry MCP semantic conventions (GenAI semantic-conventions repository,
//! `docs/gen-ai/mcp.md`, status Development) as they apply to OTLP only: attribute values the
//! Prometheus labels do not carry. The Prometheus `error_type` label keeps the closed set of
//! [`ErrorType`]; over OTLP `error.type` is the JSON-RPC code when the server sent one.
//!
//! Every value here is bounded: per target (its endpoint), per method, per configured tool, per
//! JSON-RPC code of the reserved range.

use std::borrow::Cow;

use opentelemetry::KeyValue;

use crate::mcp::ErrorType;

/// `error.type` (and `rpc.response.status_code`) for a JSON-RPC code outside the range JSON-RPC
/// reserves: the conventions' fallback value, so a server inventing codes adds no series.
pub const OTHER_CODE: &str = "_OTHER";

/// `gen_ai.operation.name` of a tools/call (the only method the conventions give one).
pub const EXECUTE_TOOL: &str = "execute_tool";

/// `network.transport`: Streamable HTTP runs over TCP.
pub const NETWORK_TRANSPORT: &str = "tcp";
/// `network.protocol.name`.
pub const NETWORK_PROTOCOL_NAME: &str = "http";

/// The explicit bucket boundaries the conventions advise for `mcp.client.operation.duration`.
pub const ADVISED_BOUNDARIES: [f64; 14] =
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// The latency SLO thresholds (s): always bucket boundaries, so burn rates can be read off them.
pub const SLO_THRESHOLDS: [f64; 4] = [0.05, 0.1, 0.2, 0.5];

/// OTLP boundaries of `mcp.client.operation.duration`: the advised ones merged with the SLO
/// thresholds, ascending, without duplicates (the Prometheus buckets are the catalogue's).
pub fn operation_boundaries() -> Vec<f64> {
    let mut bounds: Vec<f64> = ADVISED_BOUNDARIES.iter().chain(&SLO_THRESHOLDS).copied().collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds
}

/// Attributes the OTLP side adds that no Prometheus label maps to (the mapping table of
/// docs/metrics.md lists them; a test keeps both in step).
pub const OTLP_ONLY_ATTRIBUTES: &[&str] = &[
    "gen_ai.operation.name",
    "rpc.response.status_code",
    "network.transport",
    "network.protocol.name",
    "network.protocol.version",
    "server.address",
    "server.port",
];

/// Attributes only spans carry (per request, so never on a metric).
pub const SPAN_ONLY_ATTRIBUTES: &[&str] = &["mcp.session.id", "http.response.status_code"];

/// A JSON-RPC error code as an attribute value: its decimal string within the range JSON-RPC
/// reserves (-32768 to -32000: the standard codes, MCP's and the implementation-defined server
/// errors), else [`OTHER_CODE`].
pub fn code_value(code: i64) -> Cow<'static, str> {
    if (-32768..=-32000).contains(&code) { Cow::Owned(code.to_string()) } else { Cow::Borrowed(OTHER_CODE) }
}

/// `error.type` over OTLP: the JSON-RPC code when the server returned a JSON-RPC error,
/// `tool_error` for a tools/call result with `isError: true`, else our class (the Prometheus
/// `error_type` value).
pub fn error_type(class: ErrorType, rpc_code: Option<i64>) -> Cow<'static, str> {
    match rpc_code {
        Some(code) => code_value(code),
        None => Cow::Borrowed(class.as_str()),
    }
}

/// The endpoint attributes of a target: `server.address`, `server.port` (from its URL) and the
/// network ones known before any response (`network.protocol.version` is each operation's: the
/// shared client may negotiate HTTP/2 over TLS). One set per target, registered when it starts.
pub fn endpoint_attributes(url: &url::Url) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new("network.transport", NETWORK_TRANSPORT),
        KeyValue::new("network.protocol.name", NETWORK_PROTOCOL_NAME),
    ];
    if let Some(host) = url.host_str() {
        // An IPv6 literal without its brackets, as the conventions write addresses.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        attrs.push(KeyValue::new("server.address", host.to_string()));
        if let Some(port) = url.port_or_known_default() {
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    attrs
}

/// One MCP operation as the conventions describe it (metric and span attributes alike).
#[derive(Debug, Clone)]
pub struct Operation<'a> {
    pub target: &'a str,
    /// `mcp.method.name`.
    pub method: &'static str,
    /// `gen_ai.tool.name`: a configured tool only (bounded), never one picked from the server's list.
    pub tool: Option<&'a str>,
    /// `mcp.protocol.version` (a known revision, else `other`); empty before a connect.
    pub protocol_version: &'a str,
    /// Failure class and JSON-RPC code, `None` on success.
    pub failure: Option<(ErrorType, Option<i64>)>,
    /// `network.protocol.version`: the HTTP version of the operation's latest response; `None`
    /// when none came.
    pub http_version: Option<&'static str>,
}

impl Operation<'_> {
    /// The attributes of `mcp.client.operation.duration` (and of its span, which adds the
    /// session id), the target's endpoint attributes excluded.
    pub fn attributes(&self) -> Vec<KeyValue> {
        let mut attrs =
            vec![KeyValue::new("target", self.target.to_string()), KeyValue::new("mcp.method.name", self.method)];
        if let Some(tool) = self.tool.filter(|t| !t.is_empty()) {
            attrs.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
        }
        if self.method == "tools/call" {
            attrs.push(KeyValue::new("gen_ai.operation.name", EXECUTE_TOOL));
        }
        if !self.protocol_version.is_empty() {
            attrs.push(KeyValue::new("mcp.protocol.version", self.protocol_version.to_string()));
        }
        if let Some(version) = self.http_version {
            attrs.push(KeyValue::new("network.protocol.version", version));
        }
        if let Some((class, code)) = self.failure {
            attrs.push(KeyValue::new("error.type", error_type(class, code).into_owned()));
            if let Some(code) = code {
                attrs.push(KeyValue::new("rpc.response.status_code", code_value(code).into_owned()));
            }
        }
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_is_the_jsonrpc_code_then_tool_error_then_our_class() {
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(-32602)), "-32602");
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(-32601)), "-32601");
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(-32000)), "-32000");
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(-32768)), "-32768");
        // Codes outside the reserved range are the conventions' fallback: bounded.
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(-31999)), OTHER_CODE);
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(42)), OTHER_CODE);
        assert_eq!(error_type(ErrorType::JsonrpcError, Some(i64::MIN)), OTHER_CODE);
        assert_eq!(error_type(ErrorType::ToolError, None), "tool_error");
        assert_eq!(error_type(ErrorType::Http5xx, None), "http_5xx");
        assert_eq!(error_type(ErrorType::Timeout, None), "timeout");
        // A JSON-RPC class without a code (none was sent) keeps the class.
        assert_eq!(error_type(ErrorType::JsonrpcError, None), "jsonrpc_error");
    }

    fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a opentelemetry::Value> {
        attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
    }

    #[test]
    fn operation_attributes_follow_the_conventions() {
        let op = Operation {
            target: "t",
            method: "tools/call",
            tool: Some("echo"),
            protocol_version: "2025-11-25",
            failure: Some((ErrorType::JsonrpcError, Some(-32603))),
            http_version: Some("2"),
        };
        let attrs = op.attributes();
        assert_eq!(get(&attrs, "error.type").map(|v| v.as_str().into_owned()).as_deref(), Some("-32603"));
        assert_eq!(get(&attrs, "rpc.response.status_code").map(|v| v.as_str().into_owned()).as_deref(), Some("-32603"));
        assert_eq!(
            get(&attrs, "gen_ai.operation.name").map(|v| v.as_str().into_owned()).as_deref(),
            Some("execute_tool")
        );
        assert_eq!(get(&attrs, "gen_ai.tool.name").map(|v| v.as_str().into_owned()).as_deref(), Some("echo"));
        assert_eq!(get(&attrs, "network.protocol.version"), Some(&opentelemetry::Value::from("2")));
        // No response, no version.
        let unanswered = Operation { http_version: None, ..op.clone() };
        assert!(get(&unanswered.attributes(), "network.protocol.version").is_none());
        // Other methods: no GenAI operation, no tool, no error attributes on success.
        let list = Operation { method: "tools/list", tool: None, failure: None, ..op };
        let attrs = list.attributes();
        for key in ["gen_ai.operation.name", "gen_ai.tool.name", "error.type", "rpc.response.status_code"] {
            assert!(get(&attrs, key).is_none(), "{key} on tools/list: {attrs:?}");
        }
        let tool_error = Operation { failure: Some((ErrorType::ToolError, None)), ..op };
        let attrs = tool_error.attributes();
        assert_eq!(get(&attrs, "error.type").map(|v| v.as_str().into_owned()).as_deref(), Some("tool_error"));
        assert!(get(&attrs, "rpc.response.status_code").is_none());
    }

    #[test]
    fn operation_boundaries_are_the_advised_ones_with_the_slo_thresholds() {
        let bounds = operation_boundaries();
        assert_eq!(bounds, ADVISED_BOUNDARIES.to_vec(), "the advised list already holds every SLO threshold");
        for slo in SLO_THRESHOLDS {
            assert!(bounds.contains(&slo), "{slo}");
        }
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn endpoint_attributes_come_from_the_url() {
        let attrs = endpoint_attributes(&"http://127.0.0.1:8931/mcp?key=secret".parse().unwrap());
        assert_eq!(get(&attrs, "server.address"), Some(&opentelemetry::Value::from("127.0.0.1")));
        assert_eq!(get(&attrs, "server.port"), Some(&opentelemetry::Value::I64(8931)));
        assert_eq!(get(&attrs, "network.transport"), Some(&opentelemetry::Value::from("tcp")));
        assert_eq!(get(&attrs, "network.protocol.name"), Some(&opentelemetry::Value::from("http")));
        assert!(get(&attrs, "network.protocol.version").is_none(), "each operation's, not the endpoint's");
        let attrs = endpoint_attributes(&"https://[::1]/mcp".parse().unwrap());
        assert_eq!(get(&attrs, "server.address"), Some(&opentelemetry::Value::from("::1")));
        assert_eq!(get(&attrs, "server.port"), Some(&opentelemetry::Value::I64(443)));
    }
}
