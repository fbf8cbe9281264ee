//! Heavy profiles against the balanced topology of `deploy/local/topology.sh` with `--replicas`:
//! a load run counts its requests by the replica that served them, a notify run its deliveries by
//! the replica that held each session's stream, in the JSON report and the summary.
use crate::common;
use crate::topology;

use std::time::Duration;

use serde_json::Value;
use topology::Topology;

/// Run `mcp-canary run ...` to its end (bounded); returns the exit code, stdout and the report.
async fn run(args: &[&str]) -> (Option<i32>, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = tokio::process::Command::new(common::bin());
    cmd.args(args).arg("--report").arg(&report).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("run ended").expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), stdout, serde_json::from_str(&text).expect("report JSON"))
}

#[tokio::test]
async fn load_and_notify_runs_count_by_replica() {
    let topo = Topology::up(true);
    let replicas = topo.names.join(",");

    let (code, stdout, report) = run(&[
        "run",
        "load",
        "--target",
        &topo.balancer,
        "--name",
        "dist",
        "--clients",
        "6",
        "--duration",
        "3s",
        "--rpm",
        "120",
        "--protocol",
        "2025-11-25",
        "--replicas",
        &replicas,
        "--threshold",
        "error_rate < 1%",
    ])
    .await;
    assert_eq!(code, Some(0), "{stdout}");
    // The load section is the top level of the report (its first format).
    let load = &report;
    let by_replica = load["replicas"].as_object().unwrap_or_else(|| panic!("no replicas in {load}"));
    let total: u64 = by_replica.values().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, load["total"]["count"].as_u64().unwrap(), "{load}");
    assert!(total >= 30, "{load}");
    assert!(!by_replica.contains_key("unknown"), "every answer named a configured replica: {load}");
    // least_conn without stickiness spreads one run's requests over the replicas.
    let serving = by_replica.values().filter(|r| r["requests"].as_u64().unwrap() > 0).count();
    assert!(serving >= 2, "{load}");
    assert!(stdout.contains("replica target-"), "{stdout}");

    let (code, stdout, report) = run(&[
        "run",
        "notify",
        "--target",
        &topo.balancer,
        "--name",
        "dist",
        "--sessions",
        "30",
        "--batches",
        "2",
        "--broadcasts",
        "3",
        "--batch-interval",
        "200ms",
        "--trigger-tool",
        "notify",
        "--trigger-args",
        r#"{"nonce":"{nonce}","route":"broadcast"}"#,
        "--replicas",
        &replicas,
        "--threshold",
        "p95 < 10s",
    ])
    .await;
    assert_eq!(code, Some(0), "{stdout}");
    let notify = &report["notify"];
    let by_replica = notify["replicas"].as_object().unwrap_or_else(|| panic!("no replicas in {notify}"));
    let sessions: u64 = by_replica.values().map(|r| r["sessions"].as_u64().unwrap()).sum();
    assert_eq!(sessions, notify["sessions_ready"].as_u64().unwrap(), "{notify}");
    assert_eq!(sessions, 30, "{notify}");
    assert!(by_replica.len() >= 2, "streams all on one replica: {notify}");
    // The per-replica tallies add up to the run's and each ratio is its own received/expected.
    let (mut expected, mut received) = (0, 0);
    for (name, r) in by_replica {
        assert!(topo.names.contains(name), "{name}: {notify}");
        let (e, got) = (r["expected"].as_u64().unwrap(), r["received"].as_u64().unwrap());
        assert_eq!(e, r["sessions"].as_u64().unwrap() * 6, "{notify}");
        assert_eq!(r["delivery_ratio"].as_f64().unwrap(), got as f64 / e as f64, "{name}: {notify}");
        (expected, received) = (expected + e, received + got);
    }
    assert_eq!(expected, notify["expected"].as_u64().unwrap(), "{notify}");
    assert_eq!(received, notify["received"].as_u64().unwrap(), "{notify}");
    // Every session gets every broadcast whichever replicas its POSTs and its stream landed on
    // (before the target registered sessions at initialize, a session initialized on one replica
    // and acknowledged on another missed everything on its creator: about 1 in 7 sessions).
    assert_eq!(received, expected, "{notify}");
    assert_eq!(notify["sessions_missing_any"].as_u64(), Some(0), "{notify}");
}
