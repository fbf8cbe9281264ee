//! Heavy profiles scheduled by the daemon: refused for a target without `allow_heavy`; a load
//! profile on a seconds schedule against the reference target exports the run metrics, writes a
//! report per run and counts the fires it skipped; SIGTERM mid-run exits promptly; a notify
//! profile against a target with `instances` counts deliveries by replica.

use crate::common;
use crate::promql;

use std::time::{Duration, Instant};

use common::{Scrape, heavy_config, reports, scrape_until, start_daemon, start_target};

#[tokio::test]
async fn heavy_profile_is_refused_for_a_target_without_allow_heavy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "127.0.0.1:0"
[[targets]]
name = "heavy-ok"
url = "http://127.0.0.1:9/mcp"
allow_heavy = true
[[targets]]
name = "prod"
url = "http://127.0.0.1:9/mcp"
[[profiles]]
name = "nightly"
profile = "load"
targets = ["heavy-ok", "prod"]
schedule = "0 3 * * *"
"#,
    )
    .unwrap();
    let stderr = common::serve_refused(&path).await;
    assert!(
        stderr.contains("config key `profiles[0].targets`: target \"prod\" does not set allow_heavy = true"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"heavy-ok\""), "only the target without allow_heavy is named:\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_load_profile_exports_results_and_counts_skipped_fires() {
    let (_target, mcp_url) = start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    // "soak" lasts 3 s and fires every 2 s: every other fire overlaps its own run. "burst"
    // fires every 3 s and meets the target held by "soak" (or holds it when "soak" fires).
    let profiles = r#"
[[profiles]]
name = "soak"
profile = "load"
targets = ["ref"]
schedule = "*/2 * * * * *"
thresholds = ["p95 < 500ms", "error_rate < 5%"]
[profiles.load]
clients = 4
rpm = 120.0
duration = "3s"

[[profiles]]
name = "burst"
profile = "load"
targets = ["ref"]
schedule = "*/3 * * * * *"
[profiles.load]
clients = 2
rpm = 60.0
duration = "1s"
"#;
    let (mut daemon, _dir, base) =
        start_daemon("daemon-profiles", &heavy_config(&mcp_url, results.path(), profiles), &[]).await;
    let soak = [("target", "ref"), ("profile", "soak")];
    let skipped = |s: &Scrape, profile: &str, reason: &str| {
        s.value("mcp_canary_profile_runs_skipped_total", &[("profile", profile), ("reason", reason)])
    };
    let (s, ok) = scrape_until(&base, Duration::from_secs(30), |s| {
        s.value("mcp_canary_profile_runs_completed_total", &[("profile", "soak"), ("verdict", "pass")]) >= 1.0
            && skipped(s, "soak", "overlap") >= 1.0
            && skipped(s, "soak", "target_busy") + skipped(s, "burst", "target_busy") >= 1.0
    })
    .await;
    assert!(ok, "a passing run, an overlap and a busy target within 30 s:\n{}\n{}", s.text, daemon.log_text());

    // The last run's results, as `run load` exports them.
    assert_eq!(s.value("mcp_canary_run_passed", &soak), 1.0, "{}", s.text);
    let all = [("target", "ref"), ("profile", "soak"), ("operation", "all")];
    assert_eq!(s.value("mcp_canary_run_success_ratio", &all), 1.0);
    let requests = s.value("mcp_canary_run_requests", &all);
    // 4 clients x 2 requests/s x 3 s = 24 planned.
    assert!((12.0..=30.0).contains(&requests), "requests of the last run: {requests}");
    let p95 = s.value("mcp_canary_run_latency_seconds", &[("profile", "soak"), ("operation", "all"), ("stat", "p95")]);
    assert!(p95 > 0.0 && p95 < 0.5, "p95 {p95}");
    assert_eq!(s.value("mcp_canary_run_threshold_passed", &[("profile", "soak"), ("threshold", "p95<500ms")]), 1.0);
    let (start, end) = (
        s.value("mcp_canary_run_start_timestamp_seconds", &soak),
        s.value("mcp_canary_run_end_timestamp_seconds", &soak),
    );
    assert!(end - start >= 2.5 && end - start < 10.0, "run from {start} to {end}");
    assert!(s.value("mcp_canary_profile_runs_started_total", &soak) >= 1.0);
    assert!(s.value("mcp_canary_load_requests_total", &[("profile", "soak"), ("outcome", "success")]) >= 12.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let next = s.value("mcp_canary_profile_next_run_timestamp_seconds", &soak);
    assert!(next > now - 3.0 && next < now + 3.0, "next fire {next} vs now {now}");
    assert_eq!(s.value("mcp_canary_profile_report_errors_total", &soak), 0.0);
    // Every metric alerts/scheduled.yml uses is on this live scrape (tests/alerting/alerting_end_to_end.rs
    // leaves that file to this test: its daemon schedules no profile).
    let names = s.names();
    let missing: Vec<_> = promql::rule_file_metric_names("alerts/scheduled.yml")
        .into_iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "used by alerts/scheduled.yml but not exported: {missing:?}");

    // A report per completed run, in the results directory.
    let soak_reports: Vec<_> = reports(results.path()).into_iter().filter(|r| r["profile"] == "soak").collect();
    assert!(!soak_reports.is_empty(), "no report in {}", results.path().display());
    let r = &soak_reports[0];
    assert_eq!((r["target"].as_str(), r["verdict"].as_str()), (Some("ref"), Some("pass")), "{r}");
    assert_eq!(r["params"]["clients"], 4);
    assert!(r["total"]["count"].as_u64().unwrap() >= 12, "{r}");
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 2);

    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_a_run_in_progress_promptly() {
    let (_target, mcp_url) = start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    let profiles = r#"
[[profiles]]
name = "long"
profile = "load"
targets = ["ref"]
schedule = "* * * * * *"
[profiles.load]
clients = 5
rpm = 60.0
duration = "10m"
"#;
    let (mut daemon, _dir, base) =
        start_daemon("daemon-profiles-stop", &heavy_config(&mcp_url, results.path(), profiles), &[]).await;
    let long = [("target", "ref"), ("profile", "long")];
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_run_running", &long) == 1.0
            && s.value("mcp_canary_load_requests_total", &[("profile", "long"), ("outcome", "success")]) >= 3.0
            && s.value("mcp_canary_profile_runs_skipped_total", &[("profile", "long"), ("reason", "overlap")]) >= 1.0
    })
    .await;
    assert!(ok, "the run did not get going:\n{}\n{}", s.text, daemon.log_text());

    let stop = Instant::now();
    let code = daemon.terminate(Duration::from_secs(10)).await;
    let took = stop.elapsed();
    eprintln!("shutdown with a run in progress took {took:?}");
    assert_eq!(code, Some(0), "exit status; log:\n{}", daemon.log_text());
    // Within the 5 s grace; the run stops issuing at once and drains within the 2 s timeout.
    assert!(took < Duration::from_secs(5), "exit took {took:?}");

    let reports = reports(results.path());
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["aborted"], true);
    assert_eq!(reports[0]["abort_reason"], "cancelled");
    assert!(reports[0]["total"]["count"].as_u64().unwrap() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_notify_and_matrix_profiles_export_their_results() {
    // The notify target names its one instance, so deliveries are also counted by replica.
    let (_notify_target, notify_url) = start_target(&["--instance", "n1"]).await;
    let (_matrix_target, matrix_url) = start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[[targets]]
name = "n"
url = "{notify_url}"
interval = "30s"
timeout = "2s"
allow_heavy = true
instances = [{{ name = "n1", url = "{notify_url}" }}]
affinity_requests = 0
[[targets]]
name = "m"
url = "{matrix_url}"
interval = "30s"
timeout = "2s"
allow_heavy = true
[heavy_profiles]
results_dir = "{}"

[[profiles]]
name = "fanout"
profile = "notify"
targets = ["n"]
schedule = "*/2 * * * * *"
[profiles.notify]
sessions = 5
batches = 2
broadcasts = 3
batch_interval = "200ms"
settle = "500ms"

[[profiles]]
name = "caps"
profile = "matrix"
targets = ["m"]
schedule = "*/2 * * * * *"
[profiles.matrix]
settle = "100ms"
concurrency = 8
"#,
        results.path().display()
    );
    let (mut daemon, _dir, base) = start_daemon("daemon-profiles-notify-matrix", &config, &[]).await;
    let fanout = [("target", "n"), ("profile", "fanout")];
    let caps = [("target", "m"), ("profile", "caps")];
    let done = |s: &Scrape, labels: &[(&str, &str)]| {
        let mut f = labels.to_vec();
        f.push(("verdict", "pass"));
        s.value("mcp_canary_profile_runs_completed_total", &f) >= 1.0
    };
    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| done(s, &fanout) && done(s, &caps)).await;
    assert!(ok, "a passing notify and matrix run within 40 s:\n{}\n{}", s.text, daemon.log_text());

    assert_eq!(s.value("mcp_canary_run_delivery_ratio", &fanout), 1.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_run_passed", &fanout), 1.0);
    assert_eq!(
        s.value("mcp_canary_run_threshold_passed", &[("profile", "fanout"), ("threshold", "delivery>=99%")]),
        1.0
    );
    assert!(s.value("mcp_canary_notify_received_total", &fanout) >= 30.0, "5 sessions x 6 broadcasts");
    let n1 = [("target", "n"), ("profile", "fanout"), ("replica", "n1")];
    assert_eq!(s.value("mcp_canary_run_replica_sessions", &n1), 5.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_run_replica_delivery_ratio", &n1), 1.0);
    assert_eq!(s.value("mcp_canary_run_passed", &caps), 1.0);
    assert_eq!(s.value("mcp_canary_matrix_cells", &[("profile", "caps"), ("result", "broken")]), 0.0);
    assert!(s.value("mcp_canary_matrix_cells", &[("profile", "caps"), ("result", "works")]) >= 10.0, "{}", s.text);

    let all = reports(results.path());
    let notify = all.iter().find(|r| r["profile"] == "fanout").expect("a notify report");
    assert_eq!((notify["target"].as_str(), notify["verdict"].as_str()), (Some("n"), Some("pass")), "{notify}");
    assert_eq!(notify["notify"]["delivery_ratio"], 1.0);
    let matrix = all.iter().find(|r| r["target"] == "m").expect("a matrix report");
    assert_eq!(matrix["verdict"], "pass", "{matrix}");
    assert!(matrix["cells"].as_array().is_some_and(|c| c.len() >= 10));

    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());
}
