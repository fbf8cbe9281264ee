//! `mcp-canary check` against every peer of the matrix (tests/common/peers.rs): independent MCP
//! servers from PyPI and npm. Per peer: a notification round trip is healthy (exit 0); a failing
//! tool is `tool_error` (exit 6); a tools/call that outlives `--timeout` is `tool_timeout`
//! (exit 6), not unreachable; a notification that never arrives is `notification_missed`
//! (exit 7); a stopped peer is unreachable (exit 3, `connect`); without `--tool` only a tool the
//! server marks read-only is called. The `check` column of docs/compatibility.md is compared with
//! the result.

use crate::common;

use std::process::Output;

use common::compat::{Column, assert_cell};
use common::peers::{Peer, PeerServer, start};
use serde_json::Value;

async fn check(args: &[&str]) -> Output {
    tokio::process::Command::new(common::bin()).arg("check").arg("--json").args(args).output().await.expect("run check")
}

/// The JSON report and the exit code; panics with both outputs when stdout is not JSON.
async fn report(peer: &PeerServer, args: &[&str]) -> (Value, Option<i32>) {
    let out = check(args).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: check {args:?} printed no JSON report ({e}):\n{}\n{}",
            peer.peer.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code())
}

/// The steps of `method` (and tool, when given) in a report.
fn steps<'a>(report: &'a Value, method: &str, tool: Option<&str>) -> Vec<&'a Value> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["method"] == method && tool.is_none_or(|t| s["tool"] == t))
        .collect()
}

async fn check_peer(peer: Peer) {
    let mut server = start(peer).await;
    let name = format!("{} ({})", peer.name(), peer.package());
    let url = server.url.clone();

    // The notification round trip, with the notifying tool also as the probed tool: healthy.
    let notify = peer.notify();
    let notify_args = notify.tool.args.to_string();
    let mut args = vec!["--notify-tool", notify.tool.name, "--notify-args", &notify_args];
    args.extend(["--notify-method", notify.method]);
    if let Some(protocol) = notify.protocol {
        args.extend(["--protocol", protocol]);
    }
    let mut healthy = args.clone();
    healthy.extend(["--tool", notify.tool.name, "--tool-args", &notify_args, &url]);
    let (r, code) = report(&server, &healthy).await;
    assert_eq!(code, Some(0), "{name}: {r:#}\n{}", server.log_text());
    assert_eq!((r["status"].as_str(), r["healthy"].as_bool()), (Some("healthy"), Some(true)), "{name}: {r:#}");
    assert_eq!(r["notification"]["delivered"], true, "{name}: {r:#}");
    assert_eq!(steps(&r, "tools/call", Some(notify.tool.name)).len(), 2, "{name}: {r:#}");
    assert!(r["server"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{name}: {r:#}");
    if let Some(version) = peer.reported_version() {
        assert_eq!(r["server"]["version"], version, "{name}: a stale .cache/? run scripts/install-test-servers.sh");
    }

    // Item 4: the same trigger, expecting a method that never comes: unhealthy, exit 7.
    let mut missed = args.clone();
    *missed.iter_mut().find(|a| **a == notify.method).unwrap() = "notifications/never";
    missed.push(&url);
    let (r, code) = report(&server, &missed).await;
    assert_eq!(code, Some(7), "{name}: {r:#}");
    assert_eq!((r["status"].as_str(), r["healthy"].as_bool()), (Some("notification_missed"), Some(false)), "{name}");
    assert_eq!((r["exit_code"].as_i64(), &r["notification"]["delivered"]), (Some(7), &Value::Bool(false)), "{name}");

    // No --tool: only a tool the server annotates readOnlyHint (and that needs no argument) is
    // called. Everything marks get-env so (echo needs its message); ours carry no annotations.
    let (r, code) = report(&server, &[&url]).await;
    assert_eq!(code, Some(0), "{name}: {r:#}");
    let calls = steps(&r, "tools/call", None);
    assert_eq!(calls.len(), 1, "{name}: {r:#}");
    match peer {
        Peer::Everything => {
            assert_eq!((&calls[0]["outcome"], &calls[0]["tool"]), (&"success".into(), &"get-env".into()), "{r:#}")
        }
        _ => assert_eq!(
            (&calls[0]["outcome"], &calls[0]["skip_reason"]),
            (&"skipped".into(), &"not_configured".into()),
            "{name}: {r:#}"
        ),
    }

    // The failing tool: tool_error, exit 6.
    let fail = peer.fail();
    let fail_args = fail.args.to_string();
    let (r, code) = report(&server, &["--tool", fail.name, "--tool-args", &fail_args, &url]).await;
    assert_eq!(code, Some(6), "{name}: {r:#}");
    assert_eq!(r["status"], "tool_error", "{name}: {r:#}");
    let call = steps(&r, "tools/call", Some(fail.name));
    assert_eq!(call.len(), 1, "{name}: {r:#}");
    assert_eq!((&call[0]["outcome"], &call[0]["error_type"]), (&"failure".into(), &"tool_error".into()), "{name}");

    // An unknown tool: tool_error whichever way the server says it (mcp-use answers the spec's
    // -32602, the others an isError result).
    let (r, code) = report(&server, &["--tool", "no-such-tool", &url]).await;
    assert_eq!((code, r["status"].as_str()), (Some(6), Some("tool_error")), "{name}: {r:#}");
    let call = steps(&r, "tools/call", Some("no-such-tool"));
    assert_eq!(call.len(), 1, "{name}: {r:#}");
    let how = (call[0]["error_type"].as_str(), call[0]["rpc_code"].as_i64());
    assert!(matches!(how, (Some("tool_error"), None) | (Some("jsonrpc_error"), Some(-32602))), "{name}: {r:#}");

    // Item 6: a tools/call slower than --timeout after a good connect: tool_timeout, exit 6.
    let slow = peer.slow(5000);
    let slow_args = slow.args.to_string();
    let (r, code) = report(&server, &["--timeout", "2s", "--tool", slow.name, "--tool-args", &slow_args, &url]).await;
    assert_eq!(code, Some(6), "{name}: {r:#}");
    assert_eq!(r["status"], "tool_timeout", "{name}: {r:#}");
    assert!(r["server"].is_object(), "{name}: the connection was made: {r:#}");
    let call = steps(&r, "tools/call", Some(slow.name));
    assert_eq!(call.len(), 1, "{name}: {r:#}");
    assert_eq!(call[0]["error_type"], "timeout", "{name}: {r:#}");

    // A stopped peer: unreachable, exit 3, the connect step failed with `connect`.
    server.stop().await;
    let (r, code) = report(&server, &["--timeout", "2s", &url]).await;
    assert_eq!(code, Some(3), "{name}: {r:#}");
    assert_eq!(r["status"], "unreachable", "{name}: {r:#}");
    let failed: Vec<&Value> = r["steps"].as_array().unwrap().iter().filter(|s| s["outcome"] == "failure").collect();
    assert_eq!(failed.len(), 1, "{name}: {r:#}");
    assert_eq!(failed[0]["error_type"], "connect", "{name}: {r:#}");
    assert_cell(peer, Column::Check, "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2() {
    check_peer(Peer::PythonSdk2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_1() {
    check_peer(Peer::PythonSdk1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_use() {
    check_peer(Peer::McpUse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything() {
    check_peer(Peer::Everything).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp() {
    check_peer(Peer::Rmcp).await;
}
