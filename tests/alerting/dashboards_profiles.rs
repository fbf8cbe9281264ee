//! The profile and chaos dashboards against the real thing: Debian's Prometheus scrapes one-shot
//! `run load`, `run notify`, `run matrix` and `run chaos` processes (their `--metrics-listen`)
//! against the reference target, and every panel query, annotation and variable of each dashboard
//! `promql::DASHBOARDS_CHECKED_ELSEWHERE` gives this test must execute and return data.

use crate::common;
use crate::promql;
use crate::stack;

use std::time::Duration;

use common::{Proc, free_port, start_target};
use stack::{query, start_prometheus};

/// A one-shot run of `profile` serving its metrics on `port` until killed.
async fn run(profile: &str, url: &str, port: u16, results: &std::path::Path, extra: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["run", profile, "--target", url, "--name", "ref", "--metrics-listen", &listen];
    let results = results.to_str().unwrap();
    args.extend(["--linger", "120s", "--results-dir", results]);
    args.extend(extra);
    Proc::start(&format!("dash-{profile}"), &args, &[], "metrics listening on ").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_panel_returns_data_after_real_runs() {
    let (_target, url) = start_target(&[]).await;
    let work = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let scrape: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let (_prom, prom) = start_prometheus(work.path(), &scrape, &[], None).await;

    // Prometheus applies discovered targets a few seconds after start: wait for its first scrapes
    // (`up`, 0 while nothing listens yet) so that the runs are seen from their beginning.
    // Bounded generously: a loaded 2-core machine has been seen to need more than 20 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while query(&prom, "up").await.unwrap_or(0) < 4 {
        assert!(tokio::time::Instant::now() < deadline, "Prometheus did not scrape within 60s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Runs long enough for a few scrapes while they are in progress (rates, annotations).
    let load = ["--progress", "1s", "--clients", "8", "--duration", "8s", "--rpm", "120", "--threshold", "p95 < 1s"];
    let notify =
        ["--progress", "1s", "--sessions", "8", "--batches", "4", "--broadcasts", "3", "--batch-interval", "1s"];
    let notify = [&notify[..], &["--threshold", "delivery >= 99%"]].concat();
    let matrix = ["--settle", "100ms"];
    // Two proxy scenarios: added latency (slow, detected by latency) and connection resets
    // (failures under error_type=reset, sessions and streams to recover), short windows.
    let chaos = [
        ["--allow-chaos", "--scenario", "proxy-latency:300ms", "--scenario", "proxy-reset"].as_slice(),
        &["--fault", "3s", "--recovery", "3s", "--warmup", "2s", "--clients", "4", "--rpm", "120"],
        &["--notify-every", "500ms", "--threshold", "recovery_time < 3s"],
    ]
    .concat();
    let runs = [
        run("load", &url, ports[0], work.path(), &load).await,
        run("notify", &url, ports[1], work.path(), &notify).await,
        run("matrix", &url, ports[2], work.path(), &matrix).await,
        run("chaos", &url, ports[3], work.path(), &chaos).await,
    ];

    // All four finished (their end timestamps scraped) and not running any more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ended = query(&prom, "mcp_canary_run_end_timestamp_seconds > 0").await.unwrap_or(0);
        let running = query(&prom, "mcp_canary_run_running == 1").await.unwrap_or(1);
        if ended == 4 && running == 0 {
            break;
        }
        let logs: Vec<String> = runs.iter().map(|r| r.log_text()).collect();
        assert!(tokio::time::Instant::now() < deadline, "runs did not finish: {ended} ended\n{}", logs.join("\n"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut checked = 0;
    let mut broken = Vec::new();
    for file in promql::dashboards_checked_by(file!()) {
        let (n, b) = stack::broken_panels(&prom, file, Duration::from_secs(120)).await;
        assert!(n >= 10, "{file}: {n} queries");
        checked += n;
        broken.extend(b);
    }
    assert!(broken.is_empty(), "broken panels ({checked} queries checked):\n{}", broken.join("\n"));
    // The variables find the runs.
    assert_eq!(query(&prom, "count(count by (profile) (mcp_canary_run_start_timestamp_seconds))").await, Ok(1));
    let profiles = query(&prom, "count by (profile) (mcp_canary_run_start_timestamp_seconds)").await.unwrap();
    assert_eq!(profiles, 4, "one series per profile: load, notify, matrix, chaos");
    let scenarios = query(&prom, "count by (scenario) (mcp_canary_chaos_fault_active)").await.unwrap();
    assert_eq!(scenarios, 2, "one scenario variable value per scenario: proxy-latency, proxy-reset");
    // The chaos panels show what the run saw: resets failed requests and were detected, both
    // scenarios recovered, the fault windows opened while Prometheus was scraping.
    let reset = r#"mcp_canary_chaos_failed_requests_total{scenario="proxy-reset",error_type="reset"} >= 1"#;
    assert_eq!(query(&prom, reset).await, Ok(1), "no reset failures in the proxy-reset window");
    assert_eq!(query(&prom, "mcp_canary_chaos_recovered == 1").await, Ok(2));
    assert_eq!(query(&prom, r#"mcp_canary_chaos_detect_seconds{scenario="proxy-reset"}"#).await, Ok(1));
    let windows = "max_over_time(mcp_canary_chaos_fault_active[2m]) == 1";
    assert_eq!(query(&prom, windows).await, Ok(2), "a fault window was never scraped open");
}
