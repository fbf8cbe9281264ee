//! `Mcp-Session-Id` from a hostile server: one that is not visible ASCII (0x21-0x7E), is longer
//! than `MAX_SESSION_ID_BYTES` or comes twice with different values fails the request as
//! `error_type="protocol"` instead of the client silently running sessionless (or storing and
//! resending a megabyte). A session id that changes on every response is ignored after
//! `initialize`: the client keeps sending the one it was issued. Both transports (the shared
//! reqwest client and the lean one of profile sessions), and `check`.

use crate::client_support;
use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderValue, Method};
use axum::response::Response;
use client_support::*;
use mcp_canary::mcp::transport::MAX_SESSION_ID_BYTES;
use mcp_canary::mcp::{ErrorType, McpClient};
use serde_json::{Value, json};

/// Both transports: the shared reqwest client and the client's own connections.
fn clients(url: &url::Url) -> Vec<(&'static str, McpClient)> {
    let own = McpClient::with_own_connections(config(url), reqwest::Client::new());
    assert!(own.owns_connections());
    vec![("reqwest", McpClient::new(config(url), reqwest::Client::new())), ("lean", own)]
}

fn with_raw_session(mut r: Response, ids: &[&[u8]]) -> Response {
    for id in ids {
        r.headers_mut().append("mcp-session-id", HeaderValue::from_bytes(id).unwrap());
    }
    r
}

/// A 2025 server whose `initialize` answer carries the session id headers `ids`; `ping` answers
/// with the same ones when `on_ping`, else `initialize` carries a good id and only `ping` the bad.
async fn server_with(ids: Vec<Vec<u8>>, on_ping: bool) -> Scripted {
    let ids = Arc::new(ids);
    serve(move |r| {
        let ids = Arc::clone(&ids);
        async move {
            let raw: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
            match r.rpc_method() {
                Some("server/discover") => json_reply(400, rpc_error(&Value::Null, -32000, "no")),
                Some("initialize") if !on_ping => {
                    with_raw_session(json_reply(200, init_result(&r.id(), "2025-11-25")), &raw)
                }
                Some("ping") if on_ping => with_raw_session(json_reply(200, result(&r.id(), json!({}))), &raw),
                Some("ping") => json_reply(200, result(&r.id(), json!({}))),
                _ => handshake(&r, "good").unwrap_or_else(|| empty(202)),
            }
        }
    })
    .await
}

fn hostile_ids() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("non-ASCII", vec!["sess-\u{e9}t\u{e9}".as_bytes().to_vec()]),
        ("obs-text byte", vec![b"sess-\xff".to_vec()]),
        ("a space", vec![b"sess 1".to_vec()]),
        ("a tab", vec![b"sess\t1".to_vec()]),
        ("over the cap", vec![vec![b'x'; MAX_SESSION_ID_BYTES + 1]]),
        ("64 KB", vec![vec![b'y'; 60_000]]),
        ("two different", vec![b"one".to_vec(), b"two".to_vec()]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_session_id_on_initialize_is_a_protocol_error() {
    for (what, ids) in hostile_ids() {
        let server = server_with(ids, false).await;
        for (transport, client) in clients(&server.url) {
            let err = client.connect().await.expect_err(&format!("{transport}, {what}: connect fails"));
            assert_eq!(err.error_type(), ErrorType::Protocol, "{transport}, {what}: {err}");
            let text = err.to_string();
            assert!(text.contains("Mcp-Session-Id") && text.len() < 200, "{transport}, {what}: {text}");
            assert!(!text.contains("xxxx") && !text.contains("sess"), "the id is not echoed: {text}");
        }
        // No request after the failed initialize carried the id (nothing ran sessionless).
        let methods: Vec<_> = server.received().iter().map(|r| r.rpc_method().map(str::to_string)).collect();
        let handshake = [Some("server/discover"), Some("initialize")];
        assert!(methods.iter().all(|m| handshake.contains(&m.as_deref())), "{what}: {methods:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_session_id_on_a_later_response_fails_that_request() {
    let server = server_with(vec![b"sess-\xc3\xa9".to_vec()], true).await;
    for (transport, client) in clients(&server.url) {
        let info = client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        assert_eq!(info.session_id.as_deref(), Some("good"));
        let err = client.ping().await.expect_err("ping with a non-ASCII session id fails");
        assert_eq!(err.error_type(), ErrorType::Protocol, "{transport}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_visible_ascii_session_id_is_kept_and_sent_back() {
    let longest: Vec<u8> = (0..MAX_SESSION_ID_BYTES).map(|i| 0x21 + (i % 94) as u8).collect();
    let server = server_with(vec![longest.clone()], false).await;
    for (transport, client) in clients(&server.url) {
        let info = client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        assert_eq!(info.session_id.as_deref().map(str::as_bytes), Some(&longest[..]), "{transport}");
        client.ping().await.unwrap_or_else(|e| panic!("{transport}: {e}"));
        let ping = server.posts_of("ping").pop().unwrap();
        assert_eq!(ping.headers.get("mcp-session-id").map(|v| v.as_bytes()), Some(&longest[..]), "{transport}");
    }
}

/// Every response carries a new session id: the client keeps the one `initialize` issued, and
/// nothing grows (the ids are not collected anywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_changing_on_every_response_is_ignored_after_initialize() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let server = serve(move |r| {
        let n = Arc::clone(&n2);
        async move {
            let fresh = format!("rotating-{}", n.fetch_add(1, Ordering::SeqCst));
            let resp = match r.rpc_method() {
                Some("server/discover") => json_reply(400, rpc_error(&Value::Null, -32000, "no")),
                Some("initialize") => json_reply(200, init_result(&r.id(), "2025-11-25")),
                Some("ping") => json_reply(200, result(&r.id(), json!({}))),
                _ if r.method == Method::DELETE => empty(200),
                _ => empty(202),
            };
            with_session(resp, &fresh)
        }
    })
    .await;
    for (transport, client) in clients(&server.url) {
        let info = client.connect().await.unwrap_or_else(|e| panic!("{transport}: connect: {e}"));
        let issued = info.session_id.clone().expect("a session id");
        for _ in 0..20 {
            client.ping().await.unwrap_or_else(|e| panic!("{transport}: {e}"));
        }
        let sent: Vec<Option<String>> =
            server.posts_of("ping").iter().rev().take(20).map(|r| r.header("mcp-session-id")).collect();
        assert!(sent.iter().all(|s| s.as_deref() == Some(issued.as_str())), "{transport}: {sent:?}");
        assert_eq!(client.server_info().unwrap().session_id.as_deref(), Some(issued.as_str()));
        client.close().await.ok();
    }
}

/// `check` against a server issuing a non-ASCII session id: the connect step fails as `protocol`
/// (exit 5), in text and JSON, instead of a healthy sessionless run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_an_invalid_session_id_as_a_protocol_error() {
    let server = server_with(vec!["s\u{e9}ssion".as_bytes().to_vec()], false).await;
    let out = tokio::process::Command::new(common::bin())
        .args(["check", "--json", "--timeout", "5s", server.url.as_str()])
        .output()
        .await
        .expect("run check");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(out.status.code(), Some(5), "{report}");
    let first = &report["steps"][0];
    assert_eq!(
        (first["method"].as_str(), first["error_type"].as_str()),
        (Some("initialize"), Some("protocol")),
        "{report}"
    );
}
