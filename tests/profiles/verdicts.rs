//! Verdicts that must be able to fail (issue 15): a run in which nothing succeeded never
//! passes, load runs get default thresholds, and a threshold over zero samples is `no_data`,
//! which fails the run. Judged against the official "everything" server (a server we did not
//! write) and a closed port.
use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{bin, closed_addr, start_everything};
use serde_json::Value;

/// `mcp-canary run ARGS... --report PATH`: exit code, stdout + stderr, the report.
async fn run(args: &[&str], report: &Path) -> (i32, String, Value) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(bin())
            .arg("run")
            .args(args)
            .args(["--progress", "1s", "--report"])
            .arg(report)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(report).unwrap_or_else(|e| panic!("no report ({e}):\n{text}"));
    (out.status.code().unwrap_or(-1), text, serde_json::from_str(&report).unwrap())
}

fn statuses(r: &Value) -> Vec<(String, String)> {
    r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["threshold"].as_str().unwrap().to_string(), t["status"].as_str().unwrap().to_string()))
        .collect()
}

/// The reproduction of the issue: every request fails (nothing listens), no threshold given.
#[tokio::test]
async fn a_load_run_in_which_every_request_fails_does_not_pass() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/mcp", closed_addr());
    let report = dir.path().join("dead.json");
    let (code, out, r) = run(&["load", "--target", &url, "--duration", "2s", "--clients", "2"], &report).await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(r["verdict"], "fail", "{r:#}");
    assert_eq!(r["verdict_reason"], "nothing succeeded", "{r:#}");
    assert_eq!(r["thresholds_origin"], "default", "{r:#}");
    assert_eq!(statuses(&r), [("error_rate<1%".to_string(), "fail".to_string())], "{r:#}");
    assert!(out.contains("thresholds: the default ones"), "{out}");
    assert!(out.contains("verdict: FAIL: nothing succeeded"), "{out}");

    // A lenient threshold of the user's own does not rescue it: nothing succeeded.
    let report = dir.path().join("lenient.json");
    let (code, out, r) =
        run(&["load", "--target", &url, "--duration", "2s", "--clients", "2", "--threshold", "p99 < 60s"], &report)
            .await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(
        (r["thresholds_origin"].as_str(), r["verdict_reason"].as_str()),
        (Some("given"), Some("nothing succeeded"))
    );
    assert_eq!(r["thresholds"][0]["status"], "pass", "the latency threshold itself holds: {r:#}");
}

/// Against a foreign server: the default thresholds pass a healthy mix and fail one whose tool
/// does not exist; a threshold scoped to an operation the mix never runs has no data and fails.
#[tokio::test]
async fn default_thresholds_and_no_data_against_the_everything_server() {
    let everything = start_everything().await;
    let dir = tempfile::tempdir().unwrap();
    let base = ["load", "--target", everything.url.as_str(), "--duration", "3s", "--clients", "2", "--rpm", "120"];

    let report = dir.path().join("healthy.json");
    let mut args = base.to_vec();
    args.extend(["--mix", "fast_tool=1", "--fast-tool", "echo"]);
    let (code, out, r) = run(&args, &report).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(statuses(&r), [("error_rate<1%".to_string(), "pass".to_string())], "{r:#}");
    assert!(r["operations"]["fast_tool"]["count"].as_u64().unwrap() >= 5, "{r:#}");
    assert_eq!(r["operations"]["slow_tool"]["count"], 0, "--mix names the whole mix: {r:#}");
    assert!(r.get("verdict_reason").is_none(), "{r:#}");

    let report = dir.path().join("missing-tool.json");
    let mut args = base.to_vec();
    args.extend(["--mix", "fast_tool=1", "--fast-tool", "no-such-tool"]);
    let (code, out, r) = run(&args, &report).await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(statuses(&r), [("error_rate<1%".to_string(), "fail".to_string())], "{r:#}");
    assert_eq!(r["verdict_reason"], "nothing succeeded", "{r:#}");

    let report = dir.path().join("no-data.json");
    let mut args = base.to_vec();
    args.extend(["--mix", "fast_tool=1", "--fast-tool", "echo", "--threshold", "error_rate < 1%"]);
    args.extend(["--threshold", "resource_read:p95 < 1s"]);
    let (code, out, r) = run(&args, &report).await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(
        statuses(&r),
        [
            ("error_rate<1%".to_string(), "pass".to_string()),
            ("resource_read:p95<1s".to_string(), "no_data".to_string())
        ],
        "{r:#}"
    );
    assert_eq!(r["thresholds"][1]["passed"], false, "{r:#}");
    assert!(out.contains("resource_read:p95<1s") && out.contains("NO DATA"), "{out}");
}

/// The reproduction of the issue: a notify run whose trigger never notifies (everything's
/// `echo`) used to print `p95<500ms pass (observed 0ms over 0 samples)`.
#[tokio::test]
async fn a_notify_run_whose_trigger_never_notifies_has_no_data() {
    let everything = start_everything().await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("silent.json");
    let args = [
        "notify",
        "--target",
        everything.url.as_str(),
        "--sessions",
        "2",
        "--batches",
        "1",
        "--broadcasts",
        "2",
        "--batch-interval",
        "500ms",
        "--settle",
        "1s",
        "--trigger-tool",
        "echo",
        "--trigger-args",
        r#"{"message":"{nonce}"}"#,
    ];
    let (code, out, r) = run(&args, &report).await;
    assert_eq!(code, 99, "{out}");
    assert_eq!(r["notify"]["trigger_errors"], 0, "the trigger itself works: {r:#}");
    assert_eq!(r["notify"]["received"], 0, "{r:#}");
    assert_eq!(
        statuses(&r),
        [("delivery>=99%".to_string(), "fail".to_string()), ("p95<500ms".to_string(), "no_data".to_string())],
        "{r:#}"
    );
    assert_eq!(r["verdict_reason"], "nothing succeeded", "{r:#}");
    assert!(!out.contains("over 0 samples"), "{out}");
}

/// A broadcast trigger that cannot connect stops the run at once with a clear reason, instead of
/// failing every broadcast (each after a timeout) and passing nothing.
#[tokio::test]
async fn a_notify_run_whose_trigger_cannot_connect_stops_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/mcp", closed_addr());
    let report = dir.path().join("dead-trigger.json");
    let started = std::time::Instant::now();
    let args = ["notify", "--target", &url, "--sessions", "2", "--batches", "20", "--batch-interval", "1s"];
    let (code, out, r) = run(&args, &report).await;
    assert_eq!(code, 99, "{out}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}: {out}", started.elapsed());
    assert_eq!(r["aborted"], true, "{r:#}");
    let reason = r["abort_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("the trigger session could not connect (connect)"), "{r:#}");
    assert!(out.contains("ABORTED: the trigger session could not connect"), "{out}");
}

/// `ulimit -Sn SOFT -Hn HARD; mcp-canary run notify --sessions N` against a closed port.
async fn notify_under_limits(soft: u32, hard: u32, sessions: u32, report: &Path) -> (i32, String) {
    let script = format!(
        "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" run notify --target http://{}/mcp --sessions {sessions} \
         --batches 1 --connect-timeout 5s --report {}",
        closed_addr(),
        report.display()
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("bash").arg("-c").arg(&script).arg(bin()).env("RUST_LOG", "warn").output(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// A run raises its soft open-file limit to the hard one, and refuses (exit 2, naming the limit)
/// a population that cannot fit in the hard one instead of failing sessions one by one.
#[tokio::test]
async fn a_run_that_cannot_fit_its_descriptors_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("refused.json");
    let (code, out) = notify_under_limits(400, 600, 1000, &report).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--sessions: 1000 sessions need about 1256 file descriptors") && out.contains("600"), "{out}");
    assert!(!report.exists(), "refused before anything ran");

    // The same population fits once the hard limit allows it, though the soft one would not: the
    // soft limit was raised (the run then fails on the closed port, past the refusal).
    let report = dir.path().join("raised.json");
    let (code, out) = notify_under_limits(400, 2000, 1000, &report).await;
    assert_eq!(code, 99, "{out}");
    assert!(!out.contains("file descriptors"), "{out}");
    assert!(report.exists(), "{out}");
}
