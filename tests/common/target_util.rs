//! Helpers for the `target_*` tests: run the reference target in-process on 127.0.0.1:0 and
//! speak raw JSON-RPC to it over reqwest. Included by the
//! `reference` crate (tests/reference/main.rs).
#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use mcp_canary::reference::{self, TargetHandle, TargetOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const V2025: &str = "2025-11-25";
pub const V2026: &str = "2026-07-28";
/// Upper bound of any single HTTP exchange in these tests.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A target running in this test process; stopped on drop.
pub struct Target {
    pub handle: TargetHandle,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A buffered HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub session_id: Option<String>,
    pub body: String,
}

impl Reply {
    /// JSON-RPC messages of the body: the SSE `data:` payloads or the JSON document.
    pub fn messages(&self) -> Vec<Value> {
        if self.content_type.starts_with("text/event-stream") {
            sse_messages(&self.body)
        } else {
            serde_json::from_str(&self.body).map(|v| vec![v]).unwrap_or_default()
        }
    }

    /// The message answering request `id`.
    pub fn response(&self, id: i64) -> Value {
        self.messages()
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(id)) && (m.get("result").is_some() || m.get("error").is_some()))
            .unwrap_or_else(|| panic!("no response to id {id} in {self:?}"))
    }
}

/// Non-empty JSON `data:` payloads of an SSE body (CR-tolerant; `{}`/empty priming data skipped).
pub fn sse_messages(body: &str) -> Vec<Value> {
    body.lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        .collect()
}

/// Start a target with default options.
pub async fn start() -> Target {
    start_with(TargetOptions::default()).await
}

/// Start a target on 127.0.0.1:0 with `options`.
pub async fn start_with(options: TargetOptions) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let shutdown = CancellationToken::new();
    let handle = reference::spawn(listener, options, shutdown.clone()).await.expect("spawn target");
    let client = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("reqwest client");
    Target { handle, client, shutdown }
}

/// `_meta` every 2026-07-28 request carries.
pub fn meta_2026() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "target-test", "version": "0"},
    })
}

impl Target {
    pub fn mcp_url(&self) -> String {
        self.handle.mcp_url()
    }

    /// POST a JSON-RPC message with the given extra headers; buffer the whole answer.
    pub async fn post(&self, headers: &[(&str, &str)], body: &Value) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .client
            .post(self.mcp_url())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = response.status().as_u16();
        let content_type = header("content-type").unwrap_or_default();
        let session_id = header("mcp-session-id");
        let body = response.text().await?;
        Ok(Reply { status, content_type, session_id, body })
    }

    /// 2025 handshake: initialize + notifications/initialized; returns the session id.
    pub async fn initialize_2025(&self) -> String {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": V2025, "capabilities": {}, "clientInfo": {"name": "target-test", "version": "0"}},
        });
        let reply = self.post(&[], &init).await.expect("initialize");
        assert_eq!(reply.status, 200, "initialize: {reply:?}");
        assert_eq!(reply.response(0)["result"]["protocolVersion"], V2025, "{reply:?}");
        let session = reply.session_id.clone().expect("initialize issues Mcp-Session-Id");
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = self.post(&self.session_headers(&session), &initialized).await.expect("initialized");
        assert_eq!(reply.status, 202, "notifications/initialized: {reply:?}");
        session
    }

    fn session_headers<'a>(&self, session: &'a str) -> [(&'static str, &'a str); 2] {
        [("Mcp-Session-Id", session), ("MCP-Protocol-Version", V2025)]
    }

    /// A request inside a 2025 session.
    pub async fn request_2025(
        &self,
        session: &str,
        id: i64,
        method: &str,
        params: Value,
    ) -> Result<Reply, reqwest::Error> {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.post(&self.session_headers(session), &body).await
    }

    /// A 2026-07-28 request: `_meta` added to `params`, `MCP-Protocol-Version`, `Mcp-Method` and
    /// (when given) `Mcp-Name` headers.
    pub async fn request_2026(
        &self,
        id: i64,
        method: &str,
        name: Option<&str>,
        mut params: Value,
    ) -> Result<Reply, reqwest::Error> {
        // The required keys, plus any the caller put in `_meta` (e.g. the logLevel opt-in).
        let mut meta = meta_2026();
        if let Some(own) = params.get("_meta").and_then(Value::as_object) {
            for (k, v) in own {
                meta[k] = v.clone();
            }
        }
        params["_meta"] = meta;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut headers = vec![("MCP-Protocol-Version", V2026), ("Mcp-Method", method)];
        if let Some(name) = name {
            headers.push(("Mcp-Name", name));
        }
        self.post(&headers, &body).await
    }

    /// Open the 2025 GET stream of `session`; returns the live response.
    pub async fn open_get_stream(&self, session: &str) -> reqwest::Response {
        let response = self
            .client
            .get(self.mcp_url())
            .header("Accept", "text/event-stream")
            .header("Mcp-Session-Id", session)
            .header("MCP-Protocol-Version", V2025)
            // The stream stays open: bound it by the read loop, not the client timeout.
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("GET stream");
        assert_eq!(response.status(), 200, "GET stream status");
        response
    }

    /// GET an admin or metrics path; returns (status, body).
    pub async fn get_path(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.handle.base_url())).send().await.expect("GET");
        (response.status().as_u16(), response.text().await.expect("body"))
    }

    /// POST a JSON body to an admin path; returns (status, parsed body).
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response =
            self.client.post(format!("{}{path}", self.handle.base_url())).json(body).send().await.expect("POST admin");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Read SSE messages from `response` until one satisfies `pred` or `within` passes.
pub async fn wait_for_message(
    response: reqwest::Response,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.ok()??.ok()?;
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        // Only parse complete events (terminated by a blank line).
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(found) = sse_messages(&event).into_iter().find(|m| pred(m)) {
                return Some(found);
            }
        }
    }
}

/// Text of the first content block of a tools/call result.
pub fn first_text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}
