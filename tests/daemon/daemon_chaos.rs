//! The chaos profile scheduled by the daemon: refused for a target without `allow_chaos` (even
//! with `allow_heavy`), accepted for one with `allow_chaos` alone; a scheduled run against the
//! reference target (a proxy reset, then a session wipe) exports its detect/recover times and
//! failures by class under the entry's name, writes its report, and SIGTERM cancels the next run.

use crate::common;

use std::time::{Duration, Instant};

use common::{reports, scrape_until, start_daemon, start_target};

fn refusal_config(lab: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[targets]]
name = "chaos-ok"
url = "http://127.0.0.1:9/mcp"
allow_chaos = true
[[targets]]
name = "lab"
url = "http://127.0.0.1:9/mcp"
{lab}
[[profiles]]
name = "game-day"
profile = "chaos"
targets = ["chaos-ok", "lab"]
schedule = "0 5 * * MON"
[profiles.chaos]
scenarios = ["proxy-reset"]
"#
    )
}

#[tokio::test]
async fn chaos_profile_needs_allow_chaos_not_allow_heavy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canary.toml");
    std::fs::write(&path, refusal_config("allow_heavy = true")).unwrap();
    let stderr = common::serve_refused(&path).await;
    assert!(
        stderr.contains("config key `profiles[0].targets`: target \"lab\" does not set allow_chaos = true"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"chaos-ok\""), "only the target without allow_chaos is named:\n{stderr}");

    // allow_chaos alone is enough: chaos does not need allow_heavy.
    std::fs::write(&path, refusal_config("allow_chaos = true")).unwrap();
    let out = std::process::Command::new(common::bin()).arg("check-config").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_chaos_profile_exports_recovery_and_writes_its_report() {
    let (_target, mcp_url) = start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    // One run: 1 s warm-up, two scenarios of 1.5 s fault + 2.5 s recovery, 0.5 s settle (9.5 s);
    // fired every 2 s, so the fires in between are skipped as overlaps.
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "10s"
[[targets]]
name = "ref"
url = "{mcp_url}"
interval = "30s"
timeout = "2s"
allow_chaos = true
[heavy_profiles]
max_sessions = 20
max_request_rate = 50.0
results_dir = "{}"

[[profiles]]
name = "game-day"
profile = "chaos"
targets = ["ref"]
schedule = "*/2 * * * * *"
thresholds = ["recovery_time < 30s", "expire-sessions:sessions_lost >= 1"]
[profiles.chaos]
scenarios = ["proxy-reset", "expire-sessions"]
warmup = "1s"
fault = "1500ms"
recovery = "2500ms"
clients = 4
rpm = 120.0
notify_every = "500ms"
sustain = 3
settle = "500ms"
"#,
        results.path().display()
    );
    let (mut daemon, _dir, base) = start_daemon("daemon-chaos", &config, &[]).await;
    let gd = [("target", "ref"), ("profile", "game-day")];
    let at = |scenario: &'static str| [("target", "ref"), ("profile", "game-day"), ("scenario", scenario)];
    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| {
        s.value("mcp_canary_profile_runs_completed_total", &[("profile", "game-day"), ("verdict", "pass")]) >= 1.0
    })
    .await;
    assert!(ok, "a passing chaos run within 40 s:\n{}\n{}", s.text, daemon.log_text());

    // Detect and recover times of the last run, under the entry's name.
    let detect = s.value("mcp_canary_chaos_detect_seconds", &at("proxy-reset"));
    assert!(detect > 0.0 && detect < 1.5, "proxy-reset detected after {detect} s");
    let recover = s.sum("mcp_canary_chaos_recovery_seconds", &at("proxy-reset")).expect("proxy-reset recovered");
    assert!((0.0..2.5).contains(&recover), "proxy-reset recovered after {recover} s");
    assert_eq!(s.value("mcp_canary_chaos_recovered", &at("proxy-reset")), 1.0);
    assert_eq!(s.value("mcp_canary_chaos_recovered", &at("expire-sessions")), 1.0);
    assert_eq!(s.value("mcp_canary_chaos_fault_active", &at("proxy-reset")), 0.0);
    // Failures by class: resets in the reset window, expired sessions after the wipe.
    let failed = |scenario, error_type| {
        s.value(
            "mcp_canary_chaos_failed_requests_total",
            &[("profile", "game-day"), ("scenario", scenario), ("error_type", error_type)],
        )
    };
    let resets = failed("proxy-reset", "reset");
    // 4 sessions x 2 requests/s over a 1.5 s window, plus reconnects.
    assert!((3.0..=40.0).contains(&resets), "resets {resets}");
    assert_eq!(failed("expire-sessions", "reset"), 0.0, "{}", s.text);
    let lost = s.value("mcp_canary_chaos_sessions_lost_total", &at("expire-sessions"));
    eprintln!(
        "proxy-reset: detect {detect:.3} s, recover {recover:.3} s, resets {resets}; expire-sessions: lost {lost}"
    );
    assert!((1.0..=4.0).contains(&lost), "sessions lost {lost} of 4");
    assert!(failed("expire-sessions", "session_expired") >= lost, "{}", s.text);
    assert!(s.value("mcp_canary_chaos_sessions_reestablished_total", &at("expire-sessions")) >= 1.0);
    assert_eq!(s.value("mcp_canary_chaos_notifications_lost_total", &at("proxy-reset")), 0.0, "{}", s.text);
    // The run series and the scheduler's counters.
    assert_eq!(s.value("mcp_canary_run_passed", &gd), 1.0, "{}", s.text);
    let threshold = |t| s.value("mcp_canary_run_threshold_passed", &[("profile", "game-day"), ("threshold", t)]);
    assert_eq!(threshold("proxy-reset:recovery_time<30s"), 1.0, "{}", s.text);
    assert_eq!(threshold("expire-sessions:sessions_lost>=1"), 1.0, "{}", s.text);
    let (start, end) =
        (s.value("mcp_canary_run_start_timestamp_seconds", &gd), s.value("mcp_canary_run_end_timestamp_seconds", &gd));
    assert!(end - start >= 9.0 && end - start < 20.0, "run from {start} to {end}");
    assert!(s.value("mcp_canary_profile_runs_started_total", &gd) >= 1.0);
    assert!(
        s.value("mcp_canary_profile_runs_skipped_total", &[("profile", "game-day"), ("reason", "overlap")]) >= 1.0,
        "{}",
        s.text
    );
    let successes = s.value("mcp_canary_load_requests_total", &[("profile", "game-day"), ("outcome", "success")]);
    assert!(successes >= 20.0, "workload successes {successes}");
    assert!(s.sum("mcp_canary_chaos_recovered", &[("profile", "chaos")]).is_none(), "label is the entry's name");

    // The report of that run, in the results directory.
    let all = reports(results.path());
    let r = all.iter().find(|r| r["verdict"] == "pass").unwrap_or_else(|| panic!("a passing report: {all:?}"));
    assert_eq!((r["profile"].as_str(), r["target"].as_str()), (Some("game-day"), Some("ref")), "{r}");
    assert_eq!((r["params"]["sessions"].as_u64(), r["params"]["through_proxy"].as_bool()), (Some(4), Some(true)));
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2, "{r}");
    assert!(scenarios.iter().all(|s| s["injected"] == true && s["recovered"] == true), "{r}");
    assert_eq!(r["prober"]["stuck_tasks"], 0);

    // SIGTERM while the next run goes: it is cancelled and still writes its report.
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| {
        s.value("mcp_canary_run_running", &gd) == 1.0 && s.value("mcp_canary_profile_runs_started_total", &gd) >= 2.0
    })
    .await;
    assert!(ok, "the next run did not start:\n{}", s.text);
    let stop = Instant::now();
    let code = daemon.terminate(Duration::from_secs(15)).await;
    let took = stop.elapsed();
    eprintln!("shutdown with a chaos run in progress took {took:?}");
    assert_eq!(code, Some(0), "{}", daemon.log_text());
    assert!(took < Duration::from_secs(8), "exit took {took:?}");
    let cancelled: Vec<_> = reports(results.path()).into_iter().filter(|r| r["aborted"] == true).collect();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    assert_eq!(cancelled[0]["abort_reason"], "cancelled");
    assert_eq!(cancelled[0]["profile"], "game-day");
}
