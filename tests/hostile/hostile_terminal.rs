//! `mcp-canary check` (the real binary) against a server whose every text carries terminal
//! control sequences: an OSC title change, a screen clear, a fake green "ALL TARGETS HEALTHY",
//! CR, NUL, DEL and C1 controls (U+009B, the one-character CSI). None of those bytes reaches
//! stdout or stderr, in text or `--json` output (JSON escapes them as `\uXXXX`, so the values
//! stay exact), and `--json` carries the full server name and version, never cut.

use crate::client_support;
use crate::common;

use std::process::Output;

use axum::http::Method;
use client_support::*;
use serde_json::{Value, json};

/// Every kind of control a server could aim at a terminal.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[32mALL TARGETS HEALTHY\u{1b}[0m\r\u{0}\u{7f}\u{9b}31m\u{85}\u{1b}P+q\u{1b}\\end";

fn long_version() -> String {
    format!("{HOSTILE}-{}", "9".repeat(500))
}

/// The hostile 2025 server: every name, description, message and notification carries `HOSTILE`.
async fn hostile(session_id: &'static [u8]) -> Scripted {
    serve(move |r| async move {
        let id = r.id();
        if r.method == Method::GET {
            return empty(405);
        }
        match r.rpc_method() {
            Some("server/discover") => json_reply(400, rpc_error(&Value::Null, -32000, HOSTILE)),
            Some("initialize") => {
                let init = result(
                    &id,
                    json!({
                        "protocolVersion": "2025-11-25",
                        "capabilities": {"tools": {}, "resources": {}, "prompts": {}, "logging": {}},
                        "serverInfo": {"name": format!("{HOSTILE}-name"), "version": long_version(), "title": HOSTILE},
                        "instructions": HOSTILE,
                    }),
                );
                let mut resp = json_reply(200, init);
                resp.headers_mut().insert("mcp-session-id", axum::http::HeaderValue::from_bytes(session_id).unwrap());
                resp
            }
            Some("tools/list") => {
                let tool = |name: String| {
                    json!({"name": name, "title": HOSTILE, "description": HOSTILE,
                        "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true, "title": HOSTILE}})
                };
                json_reply(200, result(&id, json!({"tools": [tool(format!("{HOSTILE}ro")), tool("notify".into())]})))
            }
            Some("tools/call") if r.body["params"]["name"] == "notify" => {
                let nonce = r.body["params"]["arguments"]["nonce"].as_str().unwrap_or_default().to_string();
                let note = json!({"jsonrpc": "2.0", "method": "notifications/message",
                    "params": {"level": "info", "logger": HOSTILE, "data": format!("{HOSTILE} {nonce}")}});
                let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                    "params": {"progressToken": HOSTILE, "progress": 1, "message": HOSTILE}});
                sse_reply(
                    event(None, &progress)
                        + &event(None, &note)
                        + &event(None, &result(&id, json!({"content": [{"type": "text", "text": HOSTILE}]}))),
                )
            }
            Some("tools/call") => json_reply(
                200,
                result(&id, json!({"isError": true, "content": [{"type": "text", "text": HOSTILE}], "structuredContent": {"e": HOSTILE}})),
            ),
            Some("resources/list") => json_reply(200, rpc_error(&id, -32000, HOSTILE)),
            Some("prompts/list") => raw_reply(500, "text/html", format!("<html><body><h1>{HOSTILE}</h1></body></html>")),
            Some("ping") => json_reply(200, result(&id, json!({}))),
            Some("notifications/initialized") => empty(202),
            _ if r.method == Method::DELETE => empty(200),
            _ => json_reply(200, rpc_error(&id, -32601, HOSTILE)),
        }
    })
    .await
}

async fn check(url: &url::Url, extra: &[&str], log: &str) -> Output {
    let notify = ["--notify-tool", "notify", "--notify-args", r#"{"nonce":"{nonce}"}"#];
    let notify = [&notify[..], &["--notify-method", "notifications/message", "--timeout", "5s"]].concat();
    tokio::process::Command::new(common::bin())
        .arg("check")
        .args(extra)
        .args(notify)
        .arg(url.as_str())
        .env("RUST_LOG", log)
        .env_remove("NO_COLOR")
        .output()
        .await
        .expect("run check")
}

/// No terminal control byte: C0 (ESC, BEL, CR, NUL, ...; newline and tab aside), DEL, C1.
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
    let bad: Vec<(usize, char)> =
        text.char_indices().filter(|(_, c)| c.is_control() && *c != '\n' && *c != '\t').take(5).collect();
    assert!(bad.is_empty(), "{what}: control characters {bad:?} reach the terminal:\n{}", text.escape_debug());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_output_carries_no_terminal_control_from_the_server() {
    let server = hostile(b"sess-]0;pwned").await;
    for log in ["info", "debug"] {
        let text = check(&server.url, &[], log).await;
        assert_inert(&format!("text stdout, RUST_LOG={log}"), &text.stdout);
        assert_inert(&format!("text stderr, RUST_LOG={log}"), &text.stderr);
        let shown = String::from_utf8_lossy(&text.stdout);
        assert!(shown.contains("?]0;pwned??[2J?[32mALL TARGETS HEALTHY?[0m"), "{shown}");
        assert!(shown.contains("notification: delivered"), "{shown}");
        assert_eq!(text.status.code(), Some(6), "the picked tool answers isError:\n{shown}");

        let json = check(&server.url, &["--json"], log).await;
        assert_inert(&format!("JSON stdout, RUST_LOG={log}"), &json.stdout);
        assert_inert(&format!("JSON stderr, RUST_LOG={log}"), &json.stderr);
        let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
        // The full values, exactly, once decoded.
        assert_eq!(report["server"]["name"], format!("{HOSTILE}-name"));
        assert_eq!(report["server"]["version"], long_version(), "the JSON version is not cut");
        let failed: Vec<&Value> =
            report["steps"].as_array().unwrap().iter().filter(|s| s["outcome"] == "failure").collect();
        assert!(failed.len() >= 3, "{report}");
        assert_eq!(report["notification"]["delivered"], true, "{report}");
    }
}

/// The text report bounds the name and version; JSON keeps them whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_bounds_the_server_identity_json_keeps_it_whole() {
    let server = hostile(b"sess-1").await;
    let text = check(&server.url, &[], "info").await;
    let shown = String::from_utf8_lossy(&text.stdout);
    let line = shown.lines().find(|l| l.starts_with("server: ")).expect("a server line");
    assert!(line.chars().count() < 400, "{line}");
    assert!(!line.contains(&"9".repeat(200)), "{line}");
    let json = check(&server.url, &["--json"], "info").await;
    let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    assert_eq!(report["server"]["version"].as_str().map(|v| v.chars().count()), Some(long_version().chars().count()));
}

/// A session id with a raw C1 byte (UTF-8 of U+009B) or obs-text: a protocol error whose message
/// does not carry the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_session_id_fails_without_reaching_the_terminal() {
    for id in [&b"sess\xc2\x9b2J"[..], &b"\xff\xfe"[..]] {
        let server = hostile(id).await;
        for extra in [&[][..], &["--json"][..]] {
            let out = check(&server.url, extra, "debug").await;
            assert_inert("stdout", &out.stdout);
            assert_inert("stderr", &out.stderr);
            assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stdout));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("protocol"),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
