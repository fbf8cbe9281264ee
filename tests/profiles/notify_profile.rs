//! `mcp-canary run notify` against the reference target: every broadcast reaches every session
//! with the drop knob off; with `notify_drop_rate` 0.2 the delivery is measured near 80 % and a
//! `delivery >= 99%` threshold fails the run (exit 99). Metrics scraped from `--metrics-listen`
//! match the JSON report.
use crate::common;

use std::time::Duration;

use common::{Proc, admin, scrape_until, start_target};
use serde_json::{Value, json};

const SESSIONS: u64 = 20;
const BROADCASTS: u64 = 15; // 3 batches x 5

/// Run `run notify` to its end; returns the scrape after the run, the report and the exit code.
async fn notify_run(url: &str, name: &str) -> (common::Scrape, Value, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut run = Proc::start(
        &format!("notify-{name}"),
        &[
            "run",
            "notify",
            "--target",
            url,
            "--name",
            name,
            "--sessions",
            "20",
            "--batches",
            "3",
            "--broadcasts",
            "5",
            "--batch-interval",
            "300ms",
            "--progress",
            "1s",
            "--threshold",
            "delivery >= 99%",
            "--threshold",
            "p95 < 500ms",
            "--metrics-listen",
            "127.0.0.1:0",
            "--linger",
            "5s",
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
        "metrics listening on ",
    )
    .await;
    let labels = [("target", name), ("profile", "notify")];
    let (s, ok) = scrape_until(&run.announced, Duration::from_secs(30), |s| {
        s.sum("mcp_canary_run_delivery_ratio", &labels).is_some() && s.value("mcp_canary_run_running", &labels) == 0.0
    })
    .await;
    assert!(ok, "final gauges after the run:\n{}\n{}", s.text, run.log_text());
    let code = tokio::time::timeout(Duration::from_secs(30), run.child.wait()).await.expect("exits").unwrap().code();
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (s, r, code)
}

/// The exported series agree with the report.
fn assert_metrics_match(s: &common::Scrape, r: &Value, name: &str) {
    let labels = [("target", name), ("profile", "notify")];
    let n = &r["notify"];
    assert_eq!(s.value("mcp_canary_notify_expected_total", &labels), n["expected"].as_f64().unwrap());
    assert_eq!(s.value("mcp_canary_notify_received_total", &labels), n["received"].as_f64().unwrap());
    assert_eq!(s.value("mcp_canary_notify_duplicates_total", &labels), n["duplicates"].as_f64().unwrap());
    assert_eq!(s.value("mcp_canary_notify_out_of_order_total", &labels), n["out_of_order"].as_f64().unwrap());
    assert_eq!(
        s.value("mcp_canary_notify_delivery_latency_seconds_count", &labels),
        n["received"].as_f64().unwrap(),
        "every delivery carries a send stamp"
    );
    assert!((s.value("mcp_canary_run_delivery_ratio", &labels) - n["delivery_ratio"].as_f64().unwrap()).abs() < 1e-9);
    assert_eq!(s.value("mcp_canary_run_sessions_missing", &labels), n["sessions_missing_any"].as_f64().unwrap());
    let p95 = s.value("mcp_canary_run_latency_seconds", &[("operation", "notification"), ("stat", "p95")]);
    assert!((p95 * 1000.0 - n["latency"]["p95_ms"].as_f64().unwrap()).abs() < 1e-6, "p95 {p95}: {n:#}");
    let passed = if r["verdict"] == "pass" { 1.0 } else { 0.0 };
    assert_eq!(s.value("mcp_canary_run_passed", &labels), passed);
    assert_eq!(s.value("mcp_canary_run_threshold_passed", &[("threshold", "p95<500ms")]), 1.0);
}

#[tokio::test]
async fn every_broadcast_reaches_every_session() {
    let (_target, url) = start_target(&[]).await;
    let (s, r, code) = notify_run(&url, "ref").await;
    let n = &r["notify"];
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["profile"], "notify");
    assert!(r.get("total").is_none() && r.get("slots").is_none(), "no load section: {r:#}");
    assert_eq!(n["sessions_ready"], SESSIONS);
    assert_eq!(n["broadcasts"], BROADCASTS);
    assert_eq!(n["trigger_errors"], 0);
    assert_eq!(n["expected"], SESSIONS * BROADCASTS);
    assert_eq!(n["received"], SESSIONS * BROADCASTS);
    assert_eq!(n["delivery_ratio"], 1.0);
    assert_eq!((n["sessions_missing_any"].as_u64(), n["duplicates"].as_u64()), (Some(0), Some(0)));
    assert_eq!(n["out_of_order"], 0);
    let (p50, max) = (n["latency"]["p50_ms"].as_f64().unwrap(), n["latency"]["max_ms"].as_f64().unwrap());
    assert!(p50 <= max && max < 2000.0, "{n:#}");
    assert_eq!(r["verdict"], "pass");
    assert_eq!(s.value("mcp_canary_run_threshold_passed", &[("threshold", "delivery>=99%")]), 1.0);
    assert_metrics_match(&s, &r, "ref");
}

#[tokio::test]
async fn dropped_broadcasts_fail_the_delivery_threshold() {
    let (target, url) = start_target(&[]).await;
    admin(&url, "/admin/knobs", json!({"notify_drop_rate": 0.2})).await;
    let (s, r, code) = notify_run(&url, "lossy").await;
    let n = &r["notify"];
    assert_eq!(code, Some(99), "{r:#}");
    assert_eq!(r["verdict"], "fail");
    let ratio = n["delivery_ratio"].as_f64().unwrap();
    // 300 deliveries, each dropped with p = 0.2: 80 % +- 5 sigma (2.3 % each).
    assert!((0.68..0.92).contains(&ratio), "delivery {ratio}: {n:#}");
    let dropped = SESSIONS * BROADCASTS - n["received"].as_u64().unwrap();
    assert!(n["sessions_missing_any"].as_u64().unwrap() >= 1, "{n:#}");
    assert_eq!(s.value("mcp_canary_run_threshold_passed", &[("threshold", "delivery>=99%")]), 0.0);
    assert_metrics_match(&s, &r, "lossy");

    // The target counts the deliveries it dropped: the missing ones, plus those it dropped for
    // the trigger session (a session too, without a stream: at most one per broadcast).
    let faults = common::scrape(&target.announced.replace("/mcp", "")).await;
    let counted = faults.value("mcp_canary_target_faults_injected_total", &[("kind", "notify_drop")]) as u64;
    assert!((dropped..=dropped + BROADCASTS).contains(&counted), "target dropped {counted}, run missed {dropped}");
}

#[tokio::test]
async fn delivery_threshold_is_refused_for_load_and_scopes_for_notify() {
    let out = tokio::process::Command::new(common::bin())
        .args(["run", "load", "--target", "http://127.0.0.1:9/mcp", "--threshold", "delivery >= 99%"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("delivery applies to `run notify` only"));
    let out = tokio::process::Command::new(common::bin())
        .args(["run", "notify", "--target", "http://127.0.0.1:9/mcp", "--threshold", "tools/call:p95 < 1s"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no operations to scope to"));
}
