//! The daemon against the reference target, both protocol eras and both session modes: after a
//! few cycles the `/metrics` scrape shows successes per method, probe_success 1, and every
//! triggered notification received.

use crate::common;

use std::time::Duration;

use common::{Scrape, scrape, scrape_until, start_daemon, start_target};

fn config(mcp_url: &str) -> String {
    let target = |name: &str, protocol: &str, session: &str| {
        format!(
            r#"
[[targets]]
name = "{name}"
url = "{mcp_url}"
interval = "1s"
timeout = "1s"
protocol = "{protocol}"
session = "{session}"
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
resource = "canary://static/hello"
prompt = "greeting"
prompt_arguments = {{ name = "canary" }}
[targets.notification]
tool = "notify"
arguments = {{ nonce = "{{nonce}}" }}
method = "notifications/message"
timeout = "1s"
"#
        )
    };
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}{}{}",
        target("auto", "auto", "fresh"),
        target("cold", "2025-11-25", "fresh"),
        target("warm", "2025-11-25", "persistent"),
    )
}

fn successes(s: &Scrape, target: &str, method: &str) -> f64 {
    s.value("mcp_canary_operations_total", &[("target", target), ("mcp_method_name", method), ("outcome", "success")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_probes_the_reference_target_in_both_eras() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (daemon, _dir, base) = start_daemon("daemon-reference", &config(&mcp_url), &[]).await;

    let cycles = |s: &Scrape, t: &str| s.value("mcp_canary_probes_total", &[("target", t)]);
    let (first, ok) =
        scrape_until(&base, Duration::from_secs(30), |s| ["auto", "cold", "warm"].iter().all(|t| cycles(s, t) >= 3.0))
            .await;
    assert!(ok, "three cycles per target did not complete:\n{}\n{}", first.text, daemon.log_text());

    for t in ["auto", "cold", "warm"] {
        assert_eq!(
            first.value("mcp_canary_probe_success", &[("target", t)]),
            1.0,
            "{t} probe failed:\n{}",
            daemon.log_text()
        );
        assert_eq!(first.value("mcp_canary_probes_total", &[("target", t), ("outcome", "failure")]), 0.0, "{t}");
        let expected = first.value("mcp_canary_notifications_expected_total", &[("target", t)]);
        let received = first.value("mcp_canary_notifications_received_total", &[("target", t)]);
        assert!(expected >= 3.0, "{t}: {expected} notifications expected");
        assert_eq!(received, expected, "{t}: every triggered notification arrives");
        assert_eq!(first.value("mcp_canary_server_items", &[("target", t), ("kind", "tools")]), 9.0, "{t}");
        assert!(first.value("mcp_canary_notification_latency_seconds_count", &[("target", t)]) >= 3.0);
    }

    // The latest revision is negotiated on auto; the pinned targets speak 2025-11-25.
    let version = |t: &str| {
        first
            .matching("mcp_canary_server_info", &[("target", t)])
            .find(|s| s.value == 1.0)
            .map(|s| s.labels["mcp_protocol_version"].clone())
    };
    assert_eq!(version("auto").as_deref(), Some("2026-07-28"));
    assert_eq!(version("cold").as_deref(), Some("2025-11-25"));
    assert_eq!(version("warm").as_deref(), Some("2025-11-25"));

    // Success counts keep increasing per method.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = scrape(&base).await;
    let session_methods = ["initialize", "tools/list", "tools/call", "resources/read", "prompts/get", "ping"];
    for method in session_methods.iter().chain(["session/delete"].iter()) {
        assert!(
            successes(&later, "cold", method) > successes(&first, "cold", method),
            "cold {method} did not increase"
        );
    }
    for method in ["server/discover", "tools/list", "tools/call", "resources/read", "prompts/get"] {
        assert!(
            successes(&later, "auto", method) > successes(&first, "auto", method),
            "auto {method} did not increase"
        );
    }
    // The stateless era has no ping and no session to delete: skipped, never failed.
    assert!(
        later.value(
            "mcp_canary_operations_total",
            &[("target", "auto"), ("mcp_method_name", "ping"), ("outcome", "skipped")]
        ) > 0.0
    );
    // The warm session connects once and then only runs the script.
    assert_eq!(successes(&later, "warm", "initialize"), 1.0, "warm session was re-established");
    assert!(successes(&later, "warm", "tools/call") > successes(&first, "warm", "tools/call"));

    // Latency histograms carry the SLO thresholds as buckets, labelled per the OTel MCP conventions.
    for le in ["0.05", "0.1", "0.2", "0.5"] {
        let filter = [("target", "cold"), ("mcp_method_name", "tools/call"), ("gen_ai_tool_name", "echo"), ("le", le)];
        assert!(
            later.sum("mcp_client_operation_duration_seconds_bucket", &filter).is_some(),
            "no le={le} bucket for tools/call"
        );
    }
    assert!(later.value("mcp_canary_build_info", &[]) == 1.0);
    assert!(later.value("process_resident_memory_bytes", &[]) > 0.0);
    // Without OTLP there is no probe span: requests carry no trace context in `_meta`.
    let seen: serde_json::Value = reqwest::get(format!("{}/admin/trace-meta", mcp_url.trim_end_matches("/mcp")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for method in ["initialize", "tools/list", "tools/call"] {
        assert_eq!(seen[method], serde_json::json!({}), "{method} carried trace context without OTLP: {seen}");
    }
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// `session = "persistent"` with `protocol = "auto"` against a server offering 2026-07-28 (the
/// reference target and the Python SDK 2.x) has no session to keep: the daemon says so once per
/// target, naming the keys, and keeps probing.
#[tokio::test]
async fn persistent_session_on_a_stateless_server_is_reported_once() {
    let (_target, url) = start_target(&[]).await;
    let python = common::peers::start(common::peers::Peer::PythonSdk2).await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[targets]]
name = "warm-auto"
url = "{url}"
interval = "1s"
session = "persistent"
[[targets]]
name = "warm-auto-python"
url = "{python}"
interval = "1s"
session = "persistent"
"#,
        python = python.url
    );
    let (daemon, _dir, base) = start_daemon("daemon-sessionless", &config, &[]).await;
    let targets = ["warm-auto", "warm-auto-python"];
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        targets.iter().all(|t| s.value("mcp_canary_probes_total", &[("target", t)]) >= 3.0)
    })
    .await;
    assert!(ok, "cycles did not complete:\n{}\n{}", s.text, daemon.log_text());
    let log = daemon.log_text();
    assert!(!log.contains('\u{1b}'), "colour codes in a log file (stderr is not a terminal): {log}");
    for t in targets {
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", t)]), 1.0, "{t}: {log}");
        // The line ends with the target's name (`target_name=warm-auto`), once per target.
        let said: Vec<String> = log
            .lines()
            .map(without_ansi)
            .filter(|l| l.contains("no session to keep") && l.trim_end().ends_with(&format!("target_name={t}")))
            .collect();
        assert_eq!(said.len(), 1, "{t}: {log}");
        assert!(said[0].contains("protocol = \"auto\"") && said[0].contains("2025-11-25"), "{}", said[0]);
    }
}

/// A log line without its terminal colour sequences (`ESC [ ... m`).
fn without_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
