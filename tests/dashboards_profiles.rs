//! The profile dashboards against the real thing: Debian's Prometheus scrapes one-shot `run load`,
//! `run notify` and `run matrix` processes (their `--metrics-listen`) against the reference
//! target, and every panel query and annotation of each dashboard in
//! `promql::PROFILE_DASHBOARDS` must execute and return data.

mod common;
#[path = "alerting/promql.rs"]
mod promql;
#[path = "alerting/stack.rs"]
mod stack;

use std::time::Duration;

use common::{Proc, free_port, start_target};
use stack::{query, query_range, start_prometheus};

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
    let ports = [free_port(), free_port(), free_port()];
    let scrape: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let (_prom, prom) = start_prometheus(work.path(), &scrape, &[], None).await;

    // Prometheus applies discovered targets a few seconds after start: wait for its first scrapes
    // (`up`, 0 while nothing listens yet) so that the runs are seen from their beginning.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while query(&prom, "up").await.unwrap_or(0) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "Prometheus did not scrape within 20s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Runs long enough for a few scrapes while they are in progress (rates, annotations).
    let load = ["--progress", "1s", "--clients", "8", "--duration", "8s", "--rpm", "120", "--threshold", "p95 < 1s"];
    let notify =
        ["--progress", "1s", "--sessions", "8", "--batches", "4", "--broadcasts", "3", "--batch-interval", "1s"];
    let notify = [&notify[..], &["--threshold", "delivery >= 99%"]].concat();
    let matrix = ["--settle", "100ms"];
    let runs = [
        run("load", &url, ports[0], work.path(), &load).await,
        run("notify", &url, ports[1], work.path(), &notify).await,
        run("matrix", &url, ports[2], work.path(), &matrix).await,
    ];

    // All three finished (their end timestamps scraped) and not running any more.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ended = query(&prom, "mcp_canary_run_end_timestamp_seconds > 0").await.unwrap_or(0);
        let running = query(&prom, "mcp_canary_run_running == 1").await.unwrap_or(1);
        if ended == 3 && running == 0 {
            break;
        }
        let logs: Vec<String> = runs.iter().map(|r| r.log_text()).collect();
        assert!(tokio::time::Instant::now() < deadline, "runs did not finish: {ended} ended\n{}", logs.join("\n"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut checked = 0;
    let mut broken = Vec::new();
    for file in promql::PROFILE_DASHBOARDS {
        let queries = promql::dashboard_panel_queries(file);
        assert!(queries.len() >= 10, "{file}: {} queries", queries.len());
        for (title, expr, instant) in queries {
            let q = promql::grafana_to_promql(&expr);
            let result =
                if instant { query(&prom, &q).await } else { query_range(&prom, &q, Duration::from_secs(120)).await };
            checked += 1;
            match result {
                Ok(0) => broken.push(format!("{file} / {title}: no data for {q}")),
                Ok(_) => {}
                Err(e) => broken.push(format!("{file} / {title}: {q} failed: {e}")),
            }
        }
    }
    assert!(broken.is_empty(), "broken panels ({checked} queries checked):\n{}", broken.join("\n"));
    // The variables find the runs.
    assert_eq!(query(&prom, "count(count by (profile) (mcp_canary_run_start_timestamp_seconds))").await, Ok(1));
    let profiles = query(&prom, "count by (profile) (mcp_canary_run_start_timestamp_seconds)").await.unwrap();
    assert_eq!(profiles, 3, "one series per profile: load, notify, capability_matrix");
}
