//! A JSON-RPC error object in the body of an HTTP 4xx/5xx: the error keeps the status's class
//! (the Prometheus `error_type`) and carries the JSON-RPC code, which the OTLP `error.type` and
//! `rpc.response.status_code` then are, as for a JSON-RPC error in a 200.

use std::sync::Arc;

use mcp_canary::config::{RawConfig, RawProbeSettings, RawTarget};
use mcp_canary::mcp::ErrorType;
use mcp_canary::runner::{CanaryProbe, Operation, StepResult};
use mcp_canary::telemetry::semconv;
use serde_json::json;

use crate::client_support::{client, config, handshake, json_reply, raw_reply, rpc_error, serve};

/// tools/list answers 422 with a JSON-RPC -32602 body, tools/call 500 with -32603, ping 503 with
/// an HTML page.
async fn server() -> crate::client_support::Scripted {
    serve(|r| async move {
        if let Some(reply) = handshake(&r, "s1") {
            return reply;
        }
        match r.rpc_method() {
            Some("tools/list") => json_reply(422, rpc_error(&r.id(), -32602, "Invalid params: cursor")),
            Some("tools/call") => json_reply(500, rpc_error(&r.id(), -32603, "Internal error")),
            _ => raw_reply(503, "text/html", "<html><body>Service Unavailable</body></html>"),
        }
    })
    .await
}

#[tokio::test]
async fn the_error_keeps_its_http_class_and_carries_the_code() {
    let s = server().await;
    let c = client(config(&s.url));
    c.connect().await.unwrap();
    let e = c.list_tools().await.unwrap_err();
    assert_eq!((e.error_type(), e.rpc_code(), e.http_status()), (ErrorType::Http4xx, Some(-32602), Some(422)));
    assert!(e.to_string().contains("Invalid params: cursor"), "{e}");
    let e = c.call_tool("echo", json!({}), None).await.unwrap_err();
    assert_eq!((e.error_type(), e.rpc_code()), (ErrorType::Http5xx, Some(-32603)));
    let e = c.ping().await.unwrap_err();
    assert_eq!((e.error_type(), e.rpc_code()), (ErrorType::Http5xx, None), "no JSON-RPC body, no code");
}

#[tokio::test]
async fn probe_steps_give_the_code_to_the_otlp_error_type_only() {
    let s = server().await;
    let settings = RawProbeSettings { protocol: "2025-11-25".into(), ..Default::default() };
    let mut target = RawTarget { settings, ..RawTarget::new("codes", s.url.as_str()) };
    target.settings.probe.tool = Some("echo".into());
    let raw = RawConfig { targets: vec![target], ..Default::default() };
    let target = mcp_canary::config::validate(&raw).unwrap().targets.remove(0);
    let outcome = CanaryProbe::new(Arc::new(target), reqwest::Client::new()).run_cycle().await;
    let failed = |operation: Operation| {
        let step = outcome.steps.iter().find(|s| s.operation == operation).expect("the step ran");
        match step.result {
            StepResult::Failed { error_type, rpc_code, .. } => (error_type, rpc_code),
            ref other => panic!("{operation:?}: {other:?}"),
        }
    };
    for (operation, class, code, value) in [
        (Operation::ToolsList, ErrorType::Http4xx, -32602, "-32602"),
        (Operation::ToolsCall, ErrorType::Http5xx, -32603, "-32603"),
    ] {
        let (error_type, rpc_code) = failed(operation);
        // Prometheus: the HTTP class, unchanged.
        assert_eq!((error_type, error_type.as_str()), (class, class.as_str()), "{operation:?}");
        // OTLP: the code, on error.type and rpc.response.status_code.
        let op = semconv::Operation {
            target: "codes",
            method: operation.method_name(false),
            tool: None,
            protocol_version: "2025-11-25",
            failure: Some((error_type, rpc_code)),
            http_version: None,
        };
        let attrs = op.attributes();
        let get = |key: &str| attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned());
        assert_eq!(get("error.type").as_deref(), Some(value), "{operation:?}: {attrs:?}");
        assert_eq!(get("rpc.response.status_code").as_deref(), Some(value), "{operation:?}");
        assert_eq!(rpc_code, Some(code));
    }
    let (error_type, rpc_code) = failed(Operation::Ping);
    assert_eq!((error_type, rpc_code), (ErrorType::Http5xx, None));
    assert_eq!(semconv::error_type(error_type, rpc_code), "http_5xx");
}
