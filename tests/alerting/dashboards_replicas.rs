//! The replicas dashboard against the real thing: Debian's Prometheus scrapes a daemon probing the
//! balanced topology of `deploy/local/topology.sh` (nginx, three reference instances, Redis) and
//! one-shot `run load` and `run notify` processes with `--replicas` through the same balancer;
//! every panel query, annotation and variable of the dashboards
//! `promql::DASHBOARDS_CHECKED_ELSEWHERE` gives this test must execute and return data, and the
//! figures behind them must be those of a healthy topology. Without Redis, the affinity and
//! delivery panels must show the breakage.

use crate::common;
use crate::promql;
use crate::stack;
use crate::topology;

use std::time::Duration;

use common::{Proc, free_port, start_daemon};
use stack::{query, start_prometheus};
use topology::Topology;

/// A one-shot run of `profile` through the balancer, tagging replicas, serving its metrics on
/// `port` until killed.
async fn run(profile: &str, topo: &Topology, port: u16, results: &std::path::Path, extra: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let replicas = topo.names.join(",");
    let mut args = vec!["run", profile, "--target", &topo.balancer, "--name", "dist", "--replicas", &replicas];
    let results = results.to_str().unwrap();
    args.extend(["--metrics-listen", &listen, "--linger", "120s", "--results-dir", results]);
    args.extend(extra);
    Proc::start(&format!("dash-replicas-{profile}"), &args, &[], "metrics listening on ").await
}

/// Wait (bounded) until the instant query `expr` returns `n` series.
async fn wait_series(prom: &str, expr: &str, n: usize, within: Duration, logs: &[&Proc]) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = query(prom, expr).await.unwrap_or(0);
        if got == n {
            return;
        }
        let logs: Vec<String> = logs.iter().map(|p| p.log_text()).collect();
        assert!(tokio::time::Instant::now() < deadline, "{expr}: {got} series, not {n}\n{}", logs.join("\n"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_panel_returns_data_against_a_balanced_topology() {
    let topo = Topology::up(true);
    let (daemon, _dir, base) = start_daemon("dash-replicas", &topo.daemon_config("2s", 3), &[]).await;
    let work = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let mut scrape: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    scrape.push(base.trim_start_matches("http://").to_string());
    let (_prom, prom) = start_prometheus(work.path(), &scrape, &[], None).await;
    // First scrapes of all three (`up` is 0 while a run does not listen yet), so that the runs are
    // seen from their beginning.
    wait_series(&prom, "up", 3, Duration::from_secs(20), &[&daemon]).await;

    let load = ["--clients", "6", "--duration", "8s", "--rpm", "120", "--protocol", "2025-11-25"];
    let load = [&load[..], &["--threshold", "error_rate < 1%"]].concat();
    let notify = ["--sessions", "6", "--batches", "4", "--broadcasts", "3", "--batch-interval", "1s"];
    let trigger = ["--trigger-tool", "notify", "--trigger-args", r#"{"nonce":"{nonce}","route":"broadcast"}"#];
    let notify = [&notify[..], &trigger, &["--threshold", "p95 < 10s"]].concat();
    let runs = [
        run("load", &topo, ports[0], work.path(), &load).await,
        run("notify", &topo, ports[1], work.path(), &notify).await,
    ];
    let logs = [&daemon, &runs[0], &runs[1]];

    // Both runs ended; the daemon ran its checks at least three times (3 x 11 affinity requests)
    // and Prometheus saw cross-instance deliveries at a rate.
    let within = Duration::from_secs(60);
    wait_series(&prom, "mcp_canary_run_end_timestamp_seconds > 0", 2, within, &logs).await;
    wait_series(&prom, "mcp_canary_run_running == 1", 0, within, &logs).await;
    wait_series(&prom, r#"sum(mcp_canary_affinity_requests_total{target="dist"}) >= 33"#, 1, within, &logs).await;

    let mut checked = 0;
    let mut broken = Vec::new();
    for file in promql::dashboards_checked_by(file!()) {
        let (n, b) = stack::broken_panels(&prom, file, Duration::from_secs(120)).await;
        assert!(n >= 15, "{file}: {n} queries");
        checked += n;
        broken.extend(b);
    }
    assert!(broken.is_empty(), "broken panels ({checked} queries checked):\n{}", broken.join("\n"));

    // What the panels show is what a healthy topology does: each replica passes its own probe and
    // is a value of the replica variable; affinity holds, nothing lost; both routes deliver all.
    assert_eq!(query(&prom, "count by (replica) (mcp_canary_replica_probe_success)").await, Ok(3));
    assert_eq!(query(&prom, r#"mcp_canary_replica_probe_success{target="dist"} == 1"#).await, Ok(3));
    assert_eq!(query(&prom, r#"mcp_canary_affinity_success{target="dist"} == 1"#).await, Ok(1));
    let lost = r#"mcp_canary_affinity_requests_total{error_type="session_lost"}"#;
    assert_eq!(query(&prom, lost).await, Ok(0), "a session was lost with Redis up");
    let delivered = "mcp_canary_instance_delivery_received_total / mcp_canary_instance_delivery_expected_total == 1";
    assert_eq!(query(&prom, delivered).await, Ok(2), "same_instance and cross_instance not both at 100 %");
    // The load run's requests were spread: at least two replicas served some, and the shares the
    // bar gauge shows add up to one.
    assert!(query(&prom, "mcp_canary_run_replica_requests > 0").await.unwrap() >= 2);
    let share = "mcp_canary_run_replica_requests / on (target, profile) group_left () \
                 sum by (target, profile) (mcp_canary_run_replica_requests)";
    assert_eq!(query(&prom, &format!("abs(sum({share}) - 1) < 1e-9")).await, Ok(1));
    // Every notify session's stream was held by one of the replicas.
    assert_eq!(query(&prom, "sum(mcp_canary_run_replica_sessions) == 6").await, Ok(1));
}

/// The first query of the replicas dashboard panel titled `title`, as Prometheus takes it.
fn panel(title: &str) -> String {
    let queries = promql::dashboard_panel_queries("replicas.json");
    let (_, expr, _) = queries.iter().find(|(t, _, _)| t == title).unwrap_or_else(|| panic!("no panel {title:?}"));
    promql::grafana_to_promql(expr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_affinity_and_delivery_panels_show_the_breakage() {
    let topo = Topology::up(false);
    let (daemon, _dir, base) = start_daemon("dash-replicas-no-redis", &topo.daemon_config("2s", 3), &[]).await;
    let work = tempfile::tempdir().unwrap();
    let (_prom, prom) =
        start_prometheus(work.path(), &[base.trim_start_matches("http://").to_string()], &[], None).await;
    // Sessions are lost on more than one serving replica (each replica other than the one that
    // created a session does not know it), once the panel's rate window covers a few checks.
    let lost = format!("({}) > 0", panel("session_lost by serving replica"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while query(&prom, &lost).await.unwrap_or(0) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "session_lost not on 2 replicas\n{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(query(&prom, &format!("({}) == 0", panel("Session affinity (last check)"))).await, Ok(1));
    // Nothing crosses instances; each instance still reaches its own sessions.
    let ratio = panel("Delivery ratio: same vs cross instance");
    assert_eq!(query(&prom, &format!(r#"({ratio}) == 0"#)).await, Ok(1), "cross_instance is not at 0");
    assert_eq!(query(&prom, &format!(r#"({ratio}) == 1"#)).await, Ok(1), "same_instance is not at 1");
    // Probed directly, the replicas are healthy: only the balanced path is broken.
    assert_eq!(query(&prom, &format!("({}) == 1", panel("Replica probe success"))).await, Ok(3));
}
