//! Helpers for the MCP client tests: a scripted misbehaving MCP server on 127.0.0.1:0.
#![allow(dead_code)]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use mcp_canary::mcp::{ClientConfig, McpClient, ProtocolPreference};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the scripted server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
    pub fn rpc_method(&self) -> Option<&str> {
        self.body.get("method").and_then(Value::as_str)
    }
    pub fn id(&self) -> Value {
        self.body.get("id").cloned().unwrap_or(Value::Null)
    }
}

pub type Log = Arc<Mutex<Vec<Received>>>;
type Handler = Arc<dyn Fn(Received) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// A running scripted server; its task ends when the test runtime does.
pub struct Scripted {
    pub url: url::Url,
    pub log: Log,
}

impl Scripted {
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
    pub fn posts_of(&self, method: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.rpc_method() == Some(method)).collect()
    }
}

/// Serve `/mcp` with `script`, recording every request.
pub async fn serve<F, Fut>(script: F) -> Scripted
where
    F: Fn(Received) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let log: Log = Arc::default();
    let handler: Handler = Arc::new(move |r| Box::pin(script(r)));
    let log2 = Arc::clone(&log);
    let app = axum::Router::new().route(
        "/mcp",
        any(move |req: Request| {
            let handler = Arc::clone(&handler);
            let log = Arc::clone(&log2);
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let r = Received { method: parts.method, headers: parts.headers, body };
                log.lock().unwrap().push(r.clone());
                handler(r).await
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Scripted { url: format!("http://{addr}/mcp").parse().unwrap(), log }
}

pub fn config(url: &url::Url) -> ClientConfig {
    ClientConfig {
        url: url.clone(),
        headers: Default::default(),
        protocol: ProtocolPreference::Auto,
        request_timeout: Duration::from_secs(5),
        max_response_bytes: 1 << 20,
        client_name: "client-test".into(),
        client_version: "0.0.0".into(),
        capabilities: serde_json::json!({}),
        accept: Default::default(),
        server_requests: Default::default(),
        log_level: None,
        auth: None,
        trace: Default::default(),
    }
}

/// A client on the shared reqwest path, or on its own connections (`mcp::lean`, as profile
/// sessions use) when `MCP_CANARY_TEST_OWN_CONNECTIONS=1`: scripts/test.sh runs the client tests
/// both ways.
pub fn client(cfg: ClientConfig) -> McpClient {
    if std::env::var("MCP_CANARY_TEST_OWN_CONNECTIONS").is_ok_and(|v| v == "1") {
        let c = McpClient::with_own_connections(cfg, reqwest::Client::new());
        assert!(c.owns_connections(), "plain-http test servers use the lean transport");
        c
    } else {
        McpClient::new(cfg, reqwest::Client::new())
    }
}

pub fn json_reply(status: u16, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

pub fn with_session(mut r: Response, sid: &str) -> Response {
    r.headers_mut().insert("mcp-session-id", sid.parse().unwrap());
    r
}

pub fn raw_reply(status: u16, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder().status(status).header(header::CONTENT_TYPE, content_type).body(body.into()).unwrap()
}

pub fn empty(status: u16) -> Response {
    Response::builder().status(StatusCode::from_u16(status).unwrap()).body(Body::empty()).unwrap()
}

/// An SSE body sent whole, then closed.
pub fn sse_reply(body: impl Into<String>) -> Response {
    raw_reply(200, "text/event-stream", body.into())
}

/// An SSE body sent, then held open (never closed) until the client gives up.
pub fn sse_then_stall(body: impl Into<String>) -> Response {
    let first = Bytes::from(body.into());
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(futures::stream::pending());
    raw_reply(200, "text/event-stream", Body::from_stream(stream))
}

use futures::StreamExt;

pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A minimal 2025 `initialize` result.
pub fn init_result(id: &Value, version: &str) -> Value {
    result(
        id,
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {}, "resources": {"subscribe": true}, "prompts": {}},
            "serverInfo": {"name": "scripted", "version": "1.0"}
        }),
    )
}

/// Answer the 2025 handshake (discover refused with 400 as the TypeScript server does);
/// `None` for other requests so the test script handles them.
pub fn handshake(r: &Received, sid: &str) -> Option<Response> {
    match r.rpc_method() {
        Some("server/discover") => {
            Some(json_reply(400, rpc_error(&Value::Null, -32000, "Bad Request: No valid session ID")))
        }
        Some("initialize") => Some(with_session(json_reply(200, init_result(&r.id(), "2025-11-25")), sid)),
        Some("notifications/initialized") => Some(empty(202)),
        _ if r.method == Method::DELETE => Some(empty(200)),
        _ => None,
    }
}

/// An SSE event line block.
pub fn event(id: Option<&str>, data: &Value) -> String {
    match id {
        Some(id) => format!("id: {id}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}
