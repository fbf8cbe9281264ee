//! A fault-injecting HTTP proxy in front of a real MCP server. While faults are on, each path
//! `/fault/<kind>` misbehaves its own way; when they are lifted every path forwards to the
//! upstream server, so the same probe target recovers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use futures::StreamExt;

/// The misbehaviours the proxy can play.
pub const FAULTS: &[&str] = &["html500", "garbage_json", "truncated_sse", "huge_body", "stall", "unauthorized"];

/// One request the proxy forwarded: HTTP method, MCP method header, session id header.
#[derive(Debug, Clone)]
pub struct Seen {
    pub http_method: String,
    pub session_id: Option<String>,
}

/// Forwarded requests kept for assertions (bounded).
const MAX_SEEN: usize = 10_000;

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    faults_on: Arc<AtomicBool>,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running proxy; dropping it leaves the task to end with the test runtime.
pub struct FaultyProxy {
    pub base: String,
    faults_on: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultyProxy {
    /// Serve on a free loopback port, forwarding healthy traffic to `upstream` (an MCP URL).
    pub async fn start(upstream: &str) -> FaultyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let faults_on = Arc::new(AtomicBool::new(true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.to_string(),
            faults_on: faults_on.clone(),
            http: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = Router::new().route("/fault/{kind}", any(handle)).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultyProxy { base, faults_on, seen }
    }

    /// Requests forwarded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The MCP URL that plays `kind`.
    pub fn url(&self, kind: &str) -> String {
        format!("{}/fault/{kind}", self.base)
    }

    pub fn set_faults(&self, on: bool) {
        self.faults_on.store(on, Ordering::SeqCst);
    }
}

async fn handle(
    State(state): State<ProxyState>,
    Path(kind): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.faults_on.load(Ordering::SeqCst) {
        return forward(&state, method, headers, body).await;
    }
    match kind.as_str() {
        "html500" => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from("<html><body><h1>500 Internal Server Error</h1><p>nginx</p></body></html>"))
            .unwrap(),
        "unauthorized" => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Bearer realm=\"mcp\"")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"error\": \"invalid_token\"}"))
            .unwrap(),
        "garbage_json" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {oops"))
            .unwrap(),
        "truncated_sse" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":"))
            .unwrap(),
        "huge_body" => {
            // 50 MB of valid-looking JSON, streamed, so the client's size cap must stop it.
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let head = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"{\"pad\": \"")) });
            let pad = futures::stream::iter((0..800).map(move |_| Ok(chunk.clone())));
            let tail = futures::stream::once(async { Ok(Bytes::from_static(b"\"}")) });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(head.chain(pad).chain(tail)))
                .unwrap()
        }
        "stall" => {
            // Hold the request well past any probe timeout (bounded, so the task ends).
            tokio::time::sleep(Duration::from_secs(60)).await;
            Response::builder().status(StatusCode::GATEWAY_TIMEOUT).body(Body::empty()).unwrap()
        }
        _ => Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap(),
    }
}

const FORWARDED: &[&str] = &[
    "accept",
    "content-type",
    "authorization",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

async fn forward(state: &ProxyState, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    {
        let mut seen = state.seen.lock().unwrap();
        if seen.len() < MAX_SEEN {
            let session_id = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
            seen.push(Seen { http_method: method.to_string(), session_id });
        }
    }
    let mut req = state.http.request(method, &state.upstream).body(body);
    for name in FORWARDED {
        for v in headers.get_all(*name) {
            req = req.header(*name, v);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status().as_u16());
            for name in ["content-type", "mcp-session-id", "cache-control"] {
                if let Some(v) = resp.headers().get(name) {
                    out = out.header(name, v);
                }
            }
            out.body(Body::from_stream(resp.bytes_stream())).unwrap()
        }
        Err(e) => Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(e.to_string())).unwrap(),
    }
}
