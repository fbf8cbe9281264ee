//! `mcp-canary check URL`: readable or JSON result, exit status by failure class.

use crate::common;

use std::process::Output;

use common::faulty::FaultyProxy;
use common::{admin, closed_addr, start_target};

async fn check(args: &[&str]) -> Output {
    tokio::process::Command::new(common::bin()).arg("check").args(args).output().await.expect("run check")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_health_and_exits_by_class() {
    let (_target, url) = start_target(&[]).await;

    let healthy = check(&["--tool", "echo", "--tool-args", r#"{"message":"hi"}"#, &url]).await;
    assert_eq!(healthy.status.code(), Some(0), "{}", stdout(&healthy));
    let text = stdout(&healthy);
    assert!(text.contains("result: healthy (exit 0)"), "{text}");
    assert!(text.contains("tools/call echo"), "{text}");

    let json = check(&["--json", "--protocol", "2025-11-25", &url]).await;
    assert_eq!(json.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON report");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["server"]["protocol_version"], "2025-11-25");
    let methods: Vec<&str> = report["steps"].as_array().unwrap().iter().filter_map(|s| s["method"].as_str()).collect();
    assert!(methods.contains(&"initialize") && methods.contains(&"ping"), "{methods:?}");

    let unreachable = check(&["--timeout", "2s", &format!("http://{}/mcp", closed_addr())]).await;
    assert_eq!(unreachable.status.code(), Some(3), "{}", stdout(&unreachable));

    let proxy = FaultyProxy::start(&url).await;
    let auth = check(&[&proxy.url("unauthorized")]).await;
    assert_eq!(auth.status.code(), Some(4), "{}", stdout(&auth));
    let protocol = check(&[&proxy.url("garbage_json")]).await;
    assert_eq!(protocol.status.code(), Some(5), "{}", stdout(&protocol));

    admin(&url, "/admin/knobs", serde_json::json!({"tool_error": true})).await;
    let tool = check(&["--json", "--tool", "echo", "--tool-args", r#"{"message":"hi"}"#, &url]).await;
    assert_eq!(tool.status.code(), Some(6), "{}", stdout(&tool));
    let report: serde_json::Value = serde_json::from_slice(&tool.stdout).unwrap();
    assert_eq!(report["status"], "tool_error");
}

/// The notification round trip at the negotiated 2026-07-28 revision: the reference target sends
/// the log message only to a request that opted in (`_meta` logLevel), and `check` asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_notification_round_trip_at_2026() {
    let (_target, url) = start_target(&[]).await;
    let args = ["--json", "--notify-tool", "notify", "--notify-args", r#"{"nonce":"{nonce}"}"#];
    let out = check(&[&args[..], &["--notify-method", "notifications/message", &url]].concat()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["server"]["protocol_version"], "2026-07-28", "{report}");
    assert_eq!(report["notification"]["delivered"], true, "{report}");
}
