//! `mcp-canary run notify` beyond the reference target's broadcast format: with
//! `--trigger-scope session` every session triggers its own notification and finds the nonce in
//! any string of its params, on the reference target at both protocol eras and on the official
//! "everything" server (whose progress notifications carry the nonce as their progress token).
//! When nothing matches, the report and the summary say which notifications came instead.
use crate::common;

use std::time::Duration;

use common::compat::{self, Column};
use common::peers::Peer;
use common::{start_everything, start_target};
use serde_json::Value;

/// Run `run notify ARGS` against `url` to its end: the report, the summary and the exit code.
async fn notify(url: &str, args: &[&str]) -> (Value, String, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let base = [
        "run",
        "notify",
        "--target",
        url,
        "--sessions",
        "8",
        "--batches",
        "2",
        "--broadcasts",
        "3",
        "--batch-interval",
        "300ms",
        "--progress",
        "1s",
        "--report",
        report.to_str().unwrap(),
    ];
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(common::bin()).args(base).args(args).kill_on_drop(true).output(),
    )
    .await
    .expect("run notify ends within 60s")
    .unwrap();
    let summary = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}):\n{summary}"));
    (serde_json::from_str(&text).unwrap(), summary, out.status.code())
}

#[tokio::test]
async fn session_scope_reaches_every_session_of_the_reference_target_in_both_eras() {
    let (_target, url) = start_target(&[]).await;
    // auto negotiates 2026-07-28 (stateless: no GET stream; the log message comes on the POST
    // stream because the trigger opts in); 2025-11-25 holds sessions.
    for protocol in ["auto", "2026-07-28", "2025-11-25"] {
        let (r, summary, code) =
            notify(&url, &["--trigger-scope", "session", "--trigger-tool", "notify", "--protocol", protocol]).await;
        let n = &r["notify"];
        assert_eq!(code, Some(0), "{protocol}: {summary}\n{r:#}");
        assert_eq!(n["params"]["trigger_scope"], "session");
        assert_eq!((n["sessions_ready"].as_u64(), n["expected"].as_u64()), (Some(8), Some(48)), "{protocol}: {n:#}");
        assert!(n["delivery_ratio"].as_f64().unwrap() >= 0.99, "{protocol}: {n:#}");
        assert_eq!((n["trigger_errors"].as_u64(), n["duplicates"].as_u64()), (Some(0), Some(0)), "{protocol}: {n:#}");
        assert_eq!(n["sessions_missing_any"], 0, "{protocol}: {n:#}");
        assert!(n["latency"]["max_ms"].as_f64().unwrap() < 2000.0, "{protocol}: {n:#}");
        assert_eq!(n["arrived"]["notifications/message"], 48, "{protocol}: {n:#}");
        assert_eq!(r["verdict"], "pass", "{protocol}: {r:#}");
        assert!(!summary.contains("notifications arrived"), "printed only below 100 %: {summary}");
    }
}

/// `trigger-long-running-operation` sends one `notifications/progress` per step carrying the
/// request's progress token, which the run sets to the nonce.
const LONG_RUNNING: [&str; 4] = ["--trigger-scope", "session", "--trigger-tool", "trigger-long-running-operation"];
const ONE_STEP: &str = r#"{"duration":0.05,"steps":1}"#;

#[tokio::test]
async fn everything_server_progress_carries_the_nonce() {
    let everything = start_everything().await;
    let args = [&LONG_RUNNING[..], &["--trigger-args", ONE_STEP, "--method", "notifications/progress"]].concat();
    let (r, summary, code) = notify(&everything.url, &args).await;
    let n = &r["notify"];
    assert_eq!(code, Some(0), "{summary}\n{r:#}");
    assert_eq!(n["sessions_ready"], 8, "{n:#}");
    assert!(n["delivery_ratio"].as_f64().unwrap() >= 0.99, "{n:#}");
    assert_eq!((n["duplicates"].as_u64(), n["trigger_errors"].as_u64()), (Some(0), Some(0)), "{n:#}");
    assert_eq!(n["arrived"]["notifications/progress"], 48, "{n:#}");
    // Latency runs from each trigger's send: at least the operation's 50 ms.
    assert!(n["latency"]["min_ms"].as_f64().unwrap() >= 40.0, "{n:#}");
    assert_eq!(r["verdict"], "pass");
    compat::assert_cell(Peer::Everything, Column::Notify, "pass: session scope, progress notifications");
}

#[tokio::test]
async fn nothing_matching_reports_what_arrived_instead() {
    let everything = start_everything().await;
    // Expecting log messages: none come, the progress notifications do.
    let args = [&LONG_RUNNING[..], &["--trigger-args", ONE_STEP]].concat();
    let (r, summary, code) = notify(&everything.url, &args).await;
    let n = &r["notify"];
    assert_eq!(code, Some(99), "{summary}\n{r:#}");
    assert_eq!(r["verdict"], "fail");
    assert_eq!((n["received"].as_u64(), n["delivery_ratio"].as_f64()), (Some(0), Some(0.0)), "{n:#}");
    assert_eq!(n["arrived"]["notifications/progress"], 48, "{n:#}");
    assert!(n["arrived"].get("notifications/message").is_none(), "{n:#}");
    assert!(
        summary.contains(
            "notifications arrived (expected notifications/message carrying the nonce): notifications/progress x48"
        ),
        "{summary}"
    );

    // The default broadcast scope on a server without a `broadcast` tool: every trigger fails,
    // nothing arrives, and the summary says so.
    let (r, summary, code) = notify(&everything.url, &[]).await;
    let n = &r["notify"];
    assert_eq!(code, Some(99), "{summary}\n{r:#}");
    assert_eq!(n["trigger_errors"], n["broadcasts"], "{n:#}");
    assert_eq!(n["arrived"], serde_json::json!({}), "{n:#}");
    assert!(summary.contains("notifications arrived (expected notifications/message carrying the nonce): nothing"));
}

/// The peer matrix's `run notify` column: each independent server's own `notify` tool (a log
/// message whose text carries the nonce), every session triggering its own, at the revision
/// `auto` negotiates (2026-07-28 for the Python SDK 2.x, which needs the log opt-in) and at
/// 2025-11-25. The everything server has its own test above.
async fn session_scope_on_peer(peer: Peer) {
    let server = common::peers::start(peer).await;
    let notify_call = peer.notify();
    let trigger_args = notify_call.tool.args.to_string();
    for protocol in ["auto", "2025-11-25"] {
        let args = [
            "--trigger-scope",
            "session",
            "--trigger-tool",
            notify_call.tool.name,
            "--trigger-args",
            &trigger_args,
            "--method",
            notify_call.method,
            "--protocol",
            protocol,
        ];
        let (r, summary, code) = notify(&server.url, &args).await;
        let n = &r["notify"];
        let name = format!("{} at {protocol}", peer.package());
        assert_eq!(code, Some(0), "{name}: {summary}\n{r:#}\n{}", server.log_text());
        assert_eq!(n["sessions_ready"], 8, "{name}: {n:#}");
        assert!(n["delivery_ratio"].as_f64().unwrap() >= 0.99, "{name}: {n:#}");
        assert_eq!((n["trigger_errors"].as_u64(), n["duplicates"].as_u64()), (Some(0), Some(0)), "{name}: {n:#}");
        assert!(n["latency"]["p95_ms"].as_f64().unwrap() > 0.0, "{name}: {n:#}");
        assert_eq!(r["verdict"], "pass", "{name}: {r:#}");
    }
    compat::assert_cell(peer, Column::Notify, "pass: session scope, at auto and 2025-11-25");
}

#[tokio::test]
async fn session_scope_on_python_sdk_2() {
    session_scope_on_peer(Peer::PythonSdk2).await;
}

#[tokio::test]
async fn session_scope_on_python_sdk_1() {
    session_scope_on_peer(Peer::PythonSdk1).await;
}

#[tokio::test]
async fn session_scope_on_mcp_use() {
    session_scope_on_peer(Peer::McpUse).await;
}

#[tokio::test]
async fn session_scope_on_rmcp() {
    session_scope_on_peer(Peer::Rmcp).await;
}
