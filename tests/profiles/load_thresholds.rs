//! Threshold breaches fail a one-shot run (exit 99), `--abort-on-fail` stops it early, and
//! `--baseline` catches a latency regression (exit 98).
use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{admin, bin, start_target};
use serde_json::json;

async fn run_load(url: &str, report: &Path, extra: &[&str]) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut args = vec!["run", "load", "--target", url, "--clients", "5", "--rpm", "600", "--progress", "1s"];
    args.extend_from_slice(&["--report", report.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let out = tokio::time::timeout(Duration::from_secs(60), tokio::process::Command::new(bin()).args(&args).output())
        .await
        .expect("run ends")
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text, started.elapsed())
}

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn error_rate_breach_fails_and_abort_stops_early() {
    let (_target, url) = start_target(&[]).await;
    admin(&url, "/admin/knobs", json!({"error_rate": 0.5})).await;
    let dir = tempfile::tempdir().unwrap();

    let report = dir.path().join("breach.json");
    let (code, out, _) = run_load(&url, &report, &["--duration", "3s", "--threshold", "error_rate < 1%"]).await;
    assert_eq!(code, 99, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    // Not a terminal: one plain progress line a second, with the live error count.
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("progress elapsed=")).collect();
    assert!((2..=4).contains(&lines.len()), "{out}");
    let errors = |l: &str| l.split_once(" errors=").and_then(|(_, r)| r.split(' ').next()?.parse::<u64>().ok());
    assert!(lines.iter().all(|l| l.contains(" p95=")) && errors(lines[lines.len() - 1]) > Some(0), "{out}");
    let r = read(&report);
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["aborted"], false);
    assert!(r["total"]["errors_by_type"]["http_5xx"].as_u64().unwrap() > 10, "{r:#}");
    assert_eq!(r["thresholds"][0]["passed"], false);

    let report = dir.path().join("abort.json");
    let (code, out, took) =
        run_load(&url, &report, &["--duration", "30s", "--threshold", "error_rate < 1%", "--abort-on-fail"]).await;
    assert_eq!(code, 99, "{out}");
    assert!(took < Duration::from_secs(12), "aborted early, took {took:?}: {out}");
    let r = read(&report);
    assert_eq!(r["aborted"], true);
    assert!(r["abort_reason"].as_str().unwrap().contains("error_rate<1%"), "{r:#}");
    assert!(r["elapsed_s"].as_f64().unwrap() < 10.0);
}

#[tokio::test]
async fn baseline_regression_is_detected() {
    let (_target, url) = start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mix = "fast_tool=1,slow_tool=0,resource_read=0,prompt_get=0,tools_list=0,resources_list=0,prompts_list=0";
    let baseline = dir.path().join("baseline.json");
    let (code, out, _) = run_load(&url, &baseline, &["--duration", "2s", "--mix", mix]).await;
    assert_eq!(code, 0, "{out}");

    // The same run again is within tolerance of itself (a p99 of 100 requests on a shared 2-core
    // machine moves by a few ms: seen 2.4 -> 6.5 ms) ...
    let again = dir.path().join("again.json");
    let b = baseline.to_str().unwrap();
    let (code, out, _) =
        run_load(&url, &again, &["--duration", "2s", "--mix", mix, "--baseline", b, "--baseline-tolerance", "500"])
            .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("baseline: no regression"), "{out}");

    // ... a server 80 ms slower is a regression.
    admin(&url, "/admin/knobs", json!({"latency_ms": 80})).await;
    let slow = dir.path().join("slow.json");
    let (code, out, _) = run_load(&url, &slow, &["--duration", "2s", "--mix", mix, "--baseline", b]).await;
    assert_eq!(code, 98, "{out}");
    assert!(out.contains("baseline regression: total p95_ms"), "{out}");
}
