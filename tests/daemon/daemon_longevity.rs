//! The longevity profile scheduled by the daemon (`profile = "longevity"` in `[[profiles]]`):
//! against the reference target leaking per unclean session, one scheduled run exports a
//! positive memory slope and a failing verdict, writes its report and its snapshots beside it;
//! a bad `[profiles.longevity]` key is refused at startup naming it.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{heavy_config, scrape_until, start_daemon, start_target};
use serde_json::Value;

/// Bytes the target leaks per unclean session (as tests/profiles/longevity_profile.rs).
const LEAK_BYTES: f64 = 2_000_000.0;

fn files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| Some(e.ok()?.path())).filter(|p| p.to_string_lossy().ends_with(suffix)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_longevity_run_exports_a_leak_and_fails() {
    let leak = (LEAK_BYTES as u64).to_string();
    let (_target, mcp_url) =
        start_target(&["--session-idle-timeout", "2s", "--leak-per-unclean-session-bytes", &leak]).await;
    let metrics_url = format!("{}/metrics", mcp_url.trim_end_matches("/mcp"));
    let results = tempfile::tempdir().unwrap();
    // Fire once, a few seconds from now: a second-of-minute schedule fires again only after
    // the test is over, so the gauges read below are this run's.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let second = (now + 6) % 60;
    let profiles = format!(
        r#"
[[profiles]]
name = "soak"
profile = "longevity"
targets = ["ref"]
schedule = "{second} * * * * *"
thresholds = ["memory_slope < 100MB/h", "error_rate < 1%"]
[profiles.longevity]
clients = 6
rpm = 120.0
duration = "14s"
churn = 0.5
session_lifetime = "2s"
memory_url = "{metrics_url}"
snapshot_interval = "1s"
slope_window = "8s"
warmup = "3s"
"#
    );
    let config = heavy_config(&mcp_url, results.path(), &profiles);
    let (mut daemon, _dir, base) = start_daemon("daemon-longevity", &config, &[]).await;
    let soak = [("target", "ref"), ("profile", "soak")];
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        s.value("mcp_canary_run_running", &soak) == 1.0
            && s.value("mcp_canary_profile_memory_bytes", &[("profile", "soak"), ("process", "target")]) > 1e6
    })
    .await;
    assert!(ok, "the scheduled run did not start sampling:\n{}\n{}", s.text, daemon.log_text());
    let (s, ok) = scrape_until(&base, Duration::from_secs(30), |s| {
        s.value("mcp_canary_profile_runs_completed_total", &[("profile", "soak"), ("verdict", "fail")]) == 1.0
    })
    .await;
    assert!(ok, "a failing run within 30 s:\n{}\n{}", s.text, daemon.log_text());

    // The metrics of `run longevity`, under the entry's name.
    let m = |name: &str, process: &str| s.value(name, &[("target", "ref"), ("profile", "soak"), ("process", process)]);
    let slope_gauge = m("mcp_canary_profile_memory_slope_bytes_per_second", "target") * 3600.0;
    assert!(m("mcp_canary_profile_memory_bytes", "daemon") > 1e6, "{}", s.text);
    assert_eq!(s.value("mcp_canary_run_passed", &soak), 0.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_run_running", &soak), 0.0);
    let threshold = |t: &str| s.value("mcp_canary_run_threshold_passed", &[("profile", "soak"), ("threshold", t)]);
    assert_eq!((threshold("memory_slope<100MB/h"), threshold("error_rate<1%")), (0.0, 1.0), "{}", s.text);
    let unclean = s.value(
        "mcp_canary_profile_sessions_ended_total",
        &[("target", "ref"), ("profile", "soak"), ("end", "unclean")],
    );
    assert!(unclean >= 5.0, "{}", s.text);

    // One report, and its snapshots beside it; they agree with the gauges.
    let reports = files(results.path(), ".json");
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    assert_eq!(
        (r["profile"].as_str(), r["target"].as_str(), r["verdict"].as_str()),
        (Some("soak"), Some("ref"), Some("fail"))
    );
    let l = &r["longevity"];
    let slope = l["target_memory"]["slope_bytes_per_hour"].as_f64().unwrap();
    assert!((slope_gauge - slope).abs() <= 1e-6 * slope.abs(), "{slope_gauge} vs {slope}");
    // A leak of LEAK_BYTES per session the client dropped, at the run's own churn (loose bounds:
    // this test is about the wiring; tests/profiles/longevity_profile.rs pins the figure).
    let expected =
        l["sessions_ended_unclean"].as_f64().unwrap() / r["elapsed_s"].as_f64().unwrap() * LEAK_BYTES * 3600.0;
    assert!(slope > 0.3 * expected && slope < 2.0 * expected && slope > 500e6, "slope {slope} vs {expected}: {r:#}");
    assert_eq!(r["thresholds"][0]["passed"], false, "{r:#}");
    assert_eq!(r["total"]["errors"], 0, "{r:#}");
    assert!(l["params"]["memory_source"].as_str().unwrap().contains("process_resident_memory_bytes"), "{r:#}");
    let snapshots = files(results.path(), ".snapshots.jsonl");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(
        snapshots[0].to_string_lossy().trim_end_matches(".snapshots.jsonl"),
        reports[0].to_string_lossy().trim_end_matches(".json"),
        "named like the report"
    );
    let lines: Vec<Value> =
        std::fs::read_to_string(&snapshots[0]).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // One at once, one a second for 14 s, the last at the end; the 3 s warm-up is written too.
    assert!((11..=16).contains(&lines.len()), "{} lines", lines.len());
    let counted = lines.iter().filter(|l| l["warmup"] == false).count() as u64;
    assert_eq!(l["target_memory"]["samples"].as_u64(), Some(counted), "{r:#}");
    assert_eq!(lines.last().unwrap()["target_slope_bytes_per_hour"].as_f64(), Some(slope));

    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}

#[tokio::test]
async fn bad_longevity_keys_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    let config = |table: &str| {
        format!(
            r#"
[[targets]]
name = "ref"
url = "http://127.0.0.1:9/mcp"
allow_heavy = true
[[profiles]]
name = "soak"
profile = "longevity"
targets = ["ref"]
schedule = "0 3 * * *"
thresholds = ["memory_slope < 10MB/h"]
[profiles.longevity]
memory_pid = 1
{table}
"#
        )
    };
    let cases = [
        ("churn = 1.5", "config key `profiles[0].longevity.churn`: must be within 0..=1, got 1.5"),
        (
            "memory_urll = \"http://127.0.0.1:9/metrics\"",
            "config key `profiles[0].longevity.memory_urll`: unknown field",
        ),
        (
            "memory_url = \"http://127.0.0.1:9/metrics\"",
            "config key `profiles[0].longevity.memory_pid`: cannot be used with memory_url",
        ),
        (
            "clients = 20000",
            "config key `profiles[0].longevity.clients`: 20000 sessions exceed the cap of 10000 (heavy_profiles.max_sessions)",
        ),
        ("prompt_args = \"[1]\"", "config key `profiles[0].longevity.prompt_args`: must be a JSON object"),
    ];
    for (table, want) in cases {
        std::fs::write(&path, config(table)).unwrap();
        let stderr = common::serve_refused(&path).await;
        assert!(stderr.contains(want), "{table}: {stderr}");
    }
    std::fs::write(&path, config("").replace("memory_pid = 1", "")).unwrap();
    let stderr = common::serve_refused(&path).await;
    assert!(
        stderr.contains("config key `profiles[0].thresholds`: \"memory_slope < 10MB/h\": memory thresholds need"),
        "{stderr}"
    );
}
