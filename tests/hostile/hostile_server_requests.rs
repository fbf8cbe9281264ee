//! A server cannot make the client answer thousands of server-to-client requests: at most
//! `MAX_SERVER_REQUESTS_PER_REQUEST` are answered during one request (on its SSE stream or in one
//! `InputRequiredResult`), one more fails the request as `error_type="protocol"` (`check` exits 5);
//! a background stream answers at most `MAX_SERVER_REQUESTS_PER_WINDOW` per window. A flood of
//! notifications before the response costs a bounded ring, not memory per notification. Both
//! transports (the shared reqwest client and the lean one of profile sessions).

use crate::client_support;
use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;
use client_support::*;
use mcp_canary::mcp::protocol::MAX_SERVER_REQUESTS_PER_REQUEST;
use mcp_canary::mcp::session::MAX_SERVER_REQUESTS_PER_WINDOW;
use mcp_canary::mcp::{ErrorType, McpClient};
use serde_json::{Value, json};

const FLOOD: usize = 2_000;

/// Server requests, one method after another, with distinct ids.
fn server_requests(n: usize, from: usize) -> String {
    let methods = ["roots/list", "sampling/createMessage", "elicitation/create", "ping"];
    (from..from + n)
        .map(|i| {
            event(None, &json!({"jsonrpc": "2.0", "id": format!("srv-{i}"), "method": methods[i % 4], "params": {}}))
        })
        .collect()
}

/// A 2025 server: `ping` is answered on an SSE stream carrying `asks` server requests (or, with
/// `notes`, that many notifications) before the response; the GET stream carries `FLOOD` server
/// requests and stays open. Counts the answers it receives.
async fn flooding(asks: usize, notes: usize) -> (Scripted, Arc<AtomicUsize>) {
    let answers = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&answers);
    let server = serve(move |r| {
        let a = Arc::clone(&a);
        async move {
            if r.method == Method::GET {
                return sse_then_stall(server_requests(FLOOD, 1_000_000));
            }
            if let Some(resp) = handshake(&r, "sess") {
                return resp;
            }
            match r.rpc_method() {
                Some("ping") => {
                    let note = |i: usize| {
                        event(
                            None,
                            &json!({"jsonrpc": "2.0", "method": "notifications/message",
                            "params": {"level": "info", "data": format!("note {i}")}}),
                        )
                    };
                    let body = server_requests(asks, 0)
                        + &(0..notes).map(note).collect::<String>()
                        + &event(None, &result(&r.id(), json!({})));
                    sse_reply(body)
                }
                None if r.body.get("result").is_some() || r.body.get("error").is_some() => {
                    a.fetch_add(1, Ordering::SeqCst);
                    empty(202)
                }
                _ => json_reply(200, rpc_error(&r.id(), -32601, "nope")),
            }
        }
    })
    .await;
    (server, answers)
}

/// Both transports: the shared reqwest client and the client's own connections.
fn clients(url: &url::Url) -> Vec<(&'static str, McpClient)> {
    let mut cfg = config(url);
    cfg.capabilities = json!({"roots": {}, "sampling": {}, "elicitation": {}});
    let own = McpClient::with_own_connections(cfg.clone(), reqwest::Client::new());
    assert!(own.owns_connections());
    vec![("reqwest", McpClient::new(cfg, reqwest::Client::new())), ("lean", own)]
}

/// Wait (bounded) until `n` answers arrived or a second passed; then a little more, to catch extras.
async fn settle(answers: &AtomicUsize, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(1);
    while answers.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    answers.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_request_flood_fails_the_request_as_protocol_after_the_cap() {
    let (server, answers) = flooding(FLOOD, 0).await;
    for (transport, client) in clients(&server.url) {
        answers.store(0, Ordering::SeqCst);
        client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        let started = Instant::now();
        let err = client.ping().await.expect_err(&format!("{transport}: a flooded ping fails"));
        assert_eq!(err.error_type(), ErrorType::Protocol, "{transport}: {err}");
        assert!(err.to_string().contains(&MAX_SERVER_REQUESTS_PER_REQUEST.to_string()), "{transport}: {err}");
        assert!(started.elapsed() < Duration::from_secs(4), "{transport}: not a timeout: {:?}", started.elapsed());
        let answered = settle(&answers, MAX_SERVER_REQUESTS_PER_REQUEST).await;
        assert_eq!(answered, MAX_SERVER_REQUESTS_PER_REQUEST, "{transport}: answers the server received");
        assert_eq!(client.stream_stats().server_requests_answered, MAX_SERVER_REQUESTS_PER_REQUEST as u64);
        client.close().await.ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_to_the_cap_every_server_request_is_answered() {
    let (server, answers) = flooding(MAX_SERVER_REQUESTS_PER_REQUEST, 0).await;
    for (transport, client) in clients(&server.url) {
        answers.store(0, Ordering::SeqCst);
        client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        client.ping().await.unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert_eq!(settle(&answers, MAX_SERVER_REQUESTS_PER_REQUEST).await, MAX_SERVER_REQUESTS_PER_REQUEST);
        client.close().await.ok();
    }
}

/// A GET stream that floods: at most `MAX_SERVER_REQUESTS_PER_WINDOW` answers in the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_stream_flood_is_answered_at_most_the_window_budget() {
    let (server, answers) = flooding(0, 0).await;
    for (transport, client) in clients(&server.url) {
        answers.store(0, Ordering::SeqCst);
        client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        assert!(client.open_stream().await.expect("open"), "{transport}: GET stream opened");
        let answered = settle(&answers, MAX_SERVER_REQUESTS_PER_WINDOW).await;
        // Half a second more: nothing beyond the budget arrives.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let later = answers.load(Ordering::SeqCst);
        assert_eq!((answered, later), (MAX_SERVER_REQUESTS_PER_WINDOW, MAX_SERVER_REQUESTS_PER_WINDOW), "{transport}");
        client.close().await.ok();
    }
}

/// 5,000 notifications (about 500 KB, under the body cap) before the response: the request succeeds, a subscriber holds at most its
/// ring (it lags), and nothing is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_flood_before_the_response_is_bounded_by_the_ring() {
    const NOTES: usize = 5_000;
    const RING: usize = 16;
    let (server, answers) = flooding(0, NOTES).await;
    for (transport, client) in clients(&server.url) {
        client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        let mut notes = client.notifications_buffered(RING);
        client.ping().await.unwrap_or_else(|e| panic!("{transport}: {e}"));
        let (mut kept, mut lagged) = (0, 0u64);
        loop {
            match notes.try_recv() {
                Ok(_) => kept += 1,
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => lagged += n,
                Err(_) => break,
            }
        }
        assert!(kept <= RING, "{transport}: {kept} notifications buffered");
        assert_eq!(kept as u64 + lagged, NOTES as u64, "{transport}");
        client.close().await.ok();
    }
    assert_eq!(answers.load(Ordering::SeqCst), 0);
}

/// An `InputRequiredResult` (2026-07-28) with 2,000 input requests: a protocol error, not 2,000
/// answers and a retry carrying them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_request_flood_is_a_protocol_error() {
    let retries = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&retries);
    let server = serve(move |r| {
        let retries = Arc::clone(&r2);
        async move {
            match r.rpc_method() {
                Some("server/discover") => json_reply(
                    200,
                    result(
                        &r.id(),
                        json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}},
                            "serverInfo": {"name": "s", "version": "1"}}),
                    ),
                ),
                Some("tools/call") => {
                    if r.body["params"].get("inputResponses").is_some() {
                        retries.fetch_add(1, Ordering::SeqCst);
                    }
                    let requests: serde_json::Map<String, Value> =
                        (0..FLOOD).map(|i| (format!("r{i}"), json!({"method": "roots/list"}))).collect();
                    json_reply(200, result(&r.id(), json!({"resultType": "input_required", "inputRequests": requests})))
                }
                _ => json_reply(200, rpc_error(&r.id(), -32601, "nope")),
            }
        }
    })
    .await;
    for (transport, client) in clients(&server.url) {
        let info = client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        assert!(info.stateless, "{transport}");
        let err = client.call_tool("t", json!({}), None).await.expect_err("flooded input requests fail");
        assert_eq!(err.error_type(), ErrorType::Protocol, "{transport}: {err}");
        assert_eq!(client.stream_stats().server_requests_answered, 0, "{transport}");
    }
    assert_eq!(retries.load(Ordering::SeqCst), 0, "no retry carried answers");
}

/// `check` against a server flooding during `ping`: the step fails as `protocol`, exit 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_server_request_flood_as_a_protocol_error() {
    let (server, answers) = flooding(FLOOD, 0).await;
    let out = tokio::process::Command::new(common::bin())
        .args(["check", "--json", "--timeout", "5s", "--protocol", "2025-11-25", server.url.as_str()])
        .output()
        .await
        .expect("run check");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(out.status.code(), Some(5), "{report}");
    assert_eq!(report["status"], "protocol_error", "{report}");
    let ping = report["steps"].as_array().unwrap().iter().find(|s| s["method"] == "ping").expect("a ping step");
    assert_eq!(ping["error_type"], "protocol", "{report}");
    assert!(answers.load(Ordering::SeqCst) <= MAX_SERVER_REQUESTS_PER_REQUEST, "answers: {answers:?}");
}
