//! Real reports validate against the committed JSON Schema (`docs/report.schema.json`) with
//! check-jsonschema (PyPI, installed by `scripts/install-test-servers.sh`, run offline): a short
//! load, notify, longevity, matrix and chaos run against the reference target, each with
//! `--report FILE`. The validation can fail: a wrong-typed field is rejected.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The check-jsonschema the install script puts in the test cache; missing is a failure.
fn check_jsonschema() -> PathBuf {
    let path = repo().join(".cache/py/check-jsonschema/bin/check-jsonschema");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-servers.sh (it installs check-jsonschema from PyPI)",
        path.display()
    );
    path
}

/// Validate `report` against the committed schema: whether it passed, and the tool's output.
/// Offline: the schema is a local file and its metaschema ships with the tool; a proxy that
/// refuses makes any network attempt fail rather than hang.
async fn validate(report: &Path) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(check_jsonschema())
            .arg("--schemafile")
            .arg(repo().join("docs/report.schema.json"))
            .arg(report)
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("check-jsonschema within 60s")
    .expect("run check-jsonschema");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Run `mcp-canary run PROFILE ARGS... --report FILE` to its end (bounded; any verdict), assert
/// the report validates, and return it.
async fn valid_report(profile: &str, args: &[&str], within: Duration) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{profile}.json"));
    let out = tokio::time::timeout(
        within,
        Command::new(common::bin())
            .args(["run", profile])
            .args(args)
            .arg("--report")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{profile} run ended within {within:?}"))
    .expect("run mcp-canary");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0 | 99)), "{profile} exit {:?}:\n{log}", out.status.code());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{profile} report: {e}\n{log}"));
    let (ok, why) = validate(&path).await;
    assert!(ok, "{profile} report does not match docs/report.schema.json:\n{why}\n{text}");
    serde_json::from_str(&text).expect("report is JSON")
}

fn points(r: &Value) -> &Vec<Value> {
    r["timeline"]["points"].as_array().unwrap_or_else(|| panic!("a timeline: {r:#}"))
}

#[tokio::test]
async fn load_report_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let args = ["--target", &url, "--clients", "2", "--rpm", "240", "--duration", "2s", "--threshold", "p95 < 5s"];
    let r = valid_report("load", &args, Duration::from_secs(60)).await;
    assert_eq!(r["format"], 2, "{r:#}");
    assert!(r["total"]["count"].as_u64().unwrap() > 0, "{r:#}");
    assert!(points(&r).iter().any(|p| p["requests"].as_u64() > Some(0)), "{r:#}");
}

#[tokio::test]
async fn notify_report_without_load_fields_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let args =
        ["--target", &url, "--sessions", "3", "--batches", "2", "--broadcasts", "2", "--batch-interval", "300ms"];
    let r = valid_report("notify", &args, Duration::from_secs(60)).await;
    assert!(r.get("params").is_none() && r.get("total").is_none(), "no load fields: {r:#}");
    assert!(r["notify"]["received"].as_u64().unwrap() > 0, "{r:#}");
    let p = points(&r);
    assert!(p.iter().map(|p| p["deliveries"].as_u64().unwrap()).sum::<u64>() > 0, "deliveries: {r:#}");
    assert!(p.iter().any(|p| p["sessions_max"] == 3), "the population on the timeline: {r:#}");
}

#[tokio::test]
async fn longevity_report_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let metrics = format!("{}/metrics", url.trim_end_matches("/mcp"));
    let args = [
        "--target",
        &url,
        "--clients",
        "2",
        "--rpm",
        "120",
        "--duration",
        "3s",
        "--session-lifetime",
        "1s",
        "--churn",
        "0.5",
        "--snapshot-interval",
        "1s",
        "--memory-url",
        &metrics,
    ];
    let r = valid_report("longevity", &args, Duration::from_secs(60)).await;
    assert!(r["longevity"]["daemon_memory"]["samples"].as_u64().unwrap() > 0, "{r:#}");
    assert!(points(&r).iter().any(|p| p["target_memory_bytes"].as_u64() > Some(0)), "memory points: {r:#}");
}

#[tokio::test]
async fn matrix_report_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let r = valid_report("matrix", &["--target", &url, "--settle", "0s"], Duration::from_secs(90)).await;
    assert_eq!(r["format"], 1, "{r:#}");
    assert!(!r["cells"].as_array().unwrap().is_empty(), "{r:#}");
}

#[tokio::test]
async fn chaos_report_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let args = [
        "--target",
        &url,
        "--allow-chaos",
        "--scenario",
        "proxy-latency:50ms",
        "--fault",
        "1s",
        "--recovery",
        "1s",
        "--warmup",
        "1s",
        "--clients",
        "2",
        "--rpm",
        "120",
        "--notify-every",
        "300ms",
    ];
    let r = valid_report("chaos", &args, Duration::from_secs(60)).await;
    assert_eq!(r["format"], 2, "{r:#}");
    assert!(r["scenarios"][0]["fault_started_s"].as_f64().is_some(), "{r:#}");
    let p = points(&r);
    assert!(p.iter().any(|p| p["requests"].as_u64() > Some(0)), "{r:#}");
    assert!(p.iter().map(|p| p["deliveries"].as_u64().unwrap()).sum::<u64>() > 0, "deliveries: {r:#}");
}

/// The daemon's scheduled profiles write the same reports to their `results_dir`.
#[tokio::test]
async fn daemon_report_matches_the_schema() {
    let (_target, url) = common::start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    let profiles = r#"
[[profiles]]
name = "nightly"
profile = "load"
targets = ["ref"]
schedule = "*/2 * * * * *"
[profiles.load]
clients = 2
rpm = 120.0
duration = "1s"
"#;
    let config = common::heavy_config(&url, results.path(), profiles);
    let (daemon, _dir, _base) = common::start_daemon("daemon-report-schema", &config, &[]).await;
    let mut written = None;
    for _ in 0..60 {
        written = std::fs::read_dir(results.path()).unwrap().filter_map(|e| Some(e.ok()?.path())).find(|p| {
            p.extension().is_some_and(|x| x == "json")
                && std::fs::read_to_string(p).is_ok_and(|t| serde_json::from_str::<Value>(&t).is_ok())
        });
        if written.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let path = written.unwrap_or_else(|| panic!("a report within 30 s:\n{}", daemon.log_text()));
    let (ok, why) = validate(&path).await;
    assert!(ok, "{why}\n{}", std::fs::read_to_string(&path).unwrap());
}

/// A minimal notify-shaped run report passes (and so does a field the schema does not know,
/// from a newer mcp-canary); a wrong-typed field, a wrong-typed nested field and a missing
/// required field do not.
#[tokio::test]
async fn wrong_reports_are_rejected() {
    let good = json!({
        "format": 2, "profile": "notify", "target": "t", "started_at": 1.0, "ended_at": 2.0,
        "elapsed_s": 1.0, "aborted": false, "abort_reason": null, "thresholds": [],
        "verdict": "pass", "client_cpu_seconds": null, "from_a_newer_version": true,
        "timeline": {"interval_s": 1.0, "points": [{"t_s": 0.0, "requests": 0, "errors": 0,
            "in_flight_max": 0, "sessions_max": 3, "deliveries": 6}]},
    });
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, v: &Value| {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, v.to_string()).unwrap();
        path
    };
    let (ok, why) = validate(&check("good", &good)).await;
    assert!(ok, "{why}");
    let mut wrong = good.clone();
    wrong["timeline"] = json!({"interval_s": "x", "points": []});
    let mut nested = good.clone();
    nested["timeline"]["points"][0]["requests"] = json!(-1);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("verdict");
    let mut half_load = good.clone();
    half_load["params"] = json!({});
    let mut future = good.clone();
    future["format"] = json!(3);
    let cases =
        [("wrong", wrong), ("nested", nested), ("missing", missing), ("half_load", half_load), ("future", future)];
    for (name, v) in cases {
        let (ok, why) = validate(&check(name, &v)).await;
        assert!(!ok, "{name} passed: {v}\n{why}");
        assert!(why.contains("is not valid under any of the given schemas"), "{name}: {why}");
    }
}
