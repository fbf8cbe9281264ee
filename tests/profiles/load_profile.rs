//! `mcp-canary run load` against the reference target at small scale: the exported metrics
//! during and after the run, the JSON report, and the verdict.
use crate::common;
use crate::promql;

use std::time::Duration;

use common::{Proc, scrape, scrape_until, start_target};

#[tokio::test]
async fn small_load_run_exports_metrics_and_report() {
    let (_target, url) = start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut run = Proc::start(
        "load-small",
        &[
            "run",
            "load",
            "--target",
            &url,
            "--name",
            "ref",
            "--clients",
            "10",
            "--duration",
            "4s",
            "--rpm",
            "120",
            "--progress",
            "1s",
            "--threshold",
            "p95 < 500ms",
            "--threshold",
            "error_rate < 1%",
            "--threshold",
            "tools/call:p99 <= 2s",
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
    let base = run.announced.clone();
    let running = [("target", "ref"), ("profile", "load")];
    let (s, ok) = scrape_until(&base, Duration::from_secs(10), |s| {
        s.value("mcp_canary_run_running", &running) == 1.0
            && s.value("mcp_canary_load_requests_total", &[("outcome", "success")]) > 0.0
            && s.value("mcp_canary_load_sessions", &running) >= 1.0
    })
    .await;
    assert!(ok, "running gauge and live requests during the run:\n{}", s.text);

    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        s.sum("mcp_canary_run_passed", &running).is_some() && s.value("mcp_canary_run_running", &running) == 0.0
    })
    .await;
    assert!(ok, "final gauges after the run:\n{}", s.text);
    // Every metric alerts/profiles.yml uses is on this live scrape (tests/alerting/alerting_end_to_end.rs
    // leaves that file to this test: its daemon runs no profile).
    let names = s.names();
    let missing: Vec<_> = promql::rule_file_metric_names("alerts/profiles.yml")
        .into_iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "used by alerts/profiles.yml but not exported: {missing:?}\n{}", s.text);
    assert_eq!(s.value("mcp_canary_run_passed", &running), 1.0);
    let all = [("target", "ref"), ("profile", "load"), ("operation", "all")];
    assert_eq!(s.value("mcp_canary_run_success_ratio", &all), 1.0);
    let p95 = s.value("mcp_canary_run_latency_seconds", &[("operation", "all"), ("stat", "p95")]);
    assert!(p95 > 0.0 && p95 < 0.5, "p95 {p95}");
    assert_eq!(s.value("mcp_canary_run_threshold_passed", &[("threshold", "tools/call:p99<=2s")]), 1.0);
    assert!(
        s.value("mcp_canary_run_end_timestamp_seconds", &running)
            > s.value("mcp_canary_run_start_timestamp_seconds", &running)
    );
    let live = s.value("mcp_canary_load_request_duration_seconds_count", &[("target", "ref"), ("error_type", "")]);
    let requests = s.value("mcp_canary_run_requests", &all);
    assert_eq!(live, requests, "live histogram and final count agree");

    let code = tokio::time::timeout(Duration::from_secs(30), run.child.wait()).await.expect("exits").unwrap().code();
    assert_eq!(code, Some(0), "{}", run.log_text());
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // 10 clients x 2 per second x 4 s = 80 slots.
    assert_eq!(r["slots"]["planned"], 80, "{r:#}");
    let count = r["total"]["count"].as_u64().unwrap();
    assert!((76..=80).contains(&count), "count {count}: {r:#}");
    assert_eq!(r["total"]["errors"], 0);
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["connect"]["count"], 10);
    let p50 = r["total"]["latency"]["p50_ms"].as_f64().unwrap();
    let max = r["total"]["latency"]["max_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= max && max < 2000.0, "{r:#}");
    let ops = r["operations"].as_object().unwrap();
    assert_eq!(ops.len(), 7);
    let summed: u64 = ops.values().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(summed, count);
    assert!(ops["slow_tool"]["latency"]["p50_ms"].as_f64().unwrap() >= 10.0, "slow burns 10 ms: {r:#}");
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn refused_beyond_caps() {
    let out = tokio::process::Command::new(common::bin())
        .args(["run", "load", "--target", "http://127.0.0.1:9/mcp", "--clients", "20", "--max-sessions", "10"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("20 sessions exceed the cap of 10 (--max-sessions)"), "{err}");
    let out = tokio::process::Command::new(common::bin())
        .args(["run", "load", "--target", "http://127.0.0.1:9/mcp", "--threshold", "p95 < fast"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a number"));
    let _ = scrape; // keep the helper import used in every configuration
}
