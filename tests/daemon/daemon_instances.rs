//! A balanced target with `instances`: the daemon probes the nginx balancer of
//! `deploy/local/topology.sh` and each of its three reference instances directly, checks session
//! affinity through the balancer and cross-instance notification delivery. With Redis the
//! checks pass; without it sessions are lost and nothing crosses instances; with the pub/sub drop
//! knob the delivery ratio follows it.

use crate::common;
use crate::promql;
use crate::topology;

use std::time::Duration;

use common::{Scrape, admin, scrape_until, start_daemon};
use topology::Topology;

const AFFINITY: &str = "mcp_canary_affinity_requests_total";
const EXPECTED: &str = "mcp_canary_instance_delivery_expected_total";
const RECEIVED: &str = "mcp_canary_instance_delivery_received_total";

fn delivery(s: &Scrape, route: &str) -> (f64, f64) {
    let f = [("target", "dist"), ("route", route)];
    (s.value(EXPECTED, &f), s.value(RECEIVED, &f))
}

#[tokio::test]
async fn with_redis_affinity_holds_and_every_notification_crosses_instances() {
    let topo = Topology::up(true);
    let (mut daemon, _dir, base) = start_daemon("instances-redis", &topo.daemon_config("2s", 3), &[]).await;

    // Three checks: 3 x (handshake + 10 pings) affinity requests, 3 x 3 triggers x 3 streams.
    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| {
        s.value(AFFINITY, &[("target", "dist")]) >= 33.0 && delivery(s, "cross_instance").0 >= 18.0
    })
    .await;
    assert!(ok, "checks did not run three times: {}", s.text);

    assert_eq!(s.value(AFFINITY, &[("error_type", "session_lost")]), 0.0, "{}", s.text);
    assert_eq!(s.value(AFFINITY, &[("outcome", "failure")]), 0.0, "{}", s.text);
    assert_eq!(s.value("mcp_canary_affinity_success", &[("target", "dist")]), 1.0, "{}", s.text);
    // Non-sticky least_conn spreads the session's requests: more than one replica served them,
    // each recognised by its header (none `unknown`).
    let served: Vec<&str> = topo
        .names
        .iter()
        .map(String::as_str)
        .filter(|r| s.value(AFFINITY, &[("replica", r), ("outcome", "success")]) > 0.0)
        .collect();
    assert!(served.len() >= 2, "one replica served every request: {}", s.text);
    assert_eq!(s.value(AFFINITY, &[("replica", "unknown")]), 0.0, "{}", s.text);

    for route in ["same_instance", "cross_instance"] {
        let (expected, received) = delivery(&s, route);
        assert!(expected > 0.0, "{route}: {}", s.text);
        assert_eq!(received, expected, "{route} delivery is not 100 %: {}", s.text);
    }
    // A third of the deliveries stay on the trigger's instance, two thirds cross.
    assert_eq!(delivery(&s, "cross_instance").0, 2.0 * delivery(&s, "same_instance").0, "{}", s.text);
    let latencies = s.value("mcp_canary_instance_delivery_latency_seconds_count", &[("route", "cross_instance")]);
    assert_eq!(latencies, delivery(&s, "cross_instance").1, "{}", s.text);

    for replica in &topo.names {
        let f = [("target", "dist"), ("replica", replica.as_str())];
        assert_eq!(s.value("mcp_canary_replica_probe_success", &f), 1.0, "{replica}: {}", s.text);
        assert!(s.value("mcp_canary_replica_probes_total", &[f[0], f[1], ("outcome", "success")]) >= 1.0);
        let calls = [f[0], f[1], ("mcp_method_name", "tools/call"), ("outcome", "success")];
        assert!(s.value("mcp_canary_replica_operations_total", &calls) >= 1.0, "{replica}: {}", s.text);
    }
    // Every metric alerts/instances.yml uses is on this live scrape (tests/alerting/alerting_end_to_end.rs
    // leaves that file to this test: its daemon has no target with instances).
    let names = s.names();
    let missing: Vec<_> = promql::rule_file_metric_names("alerts/instances.yml")
        .into_iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "used by alerts/instances.yml but not exported: {missing:?}");
    // The balancer keeps its own, unlabelled series.
    assert_eq!(s.value("mcp_canary_probe_success", &[("target", "dist")]), 1.0, "{}", s.text);
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0));
}

#[tokio::test]
async fn without_redis_sessions_are_lost_and_nothing_crosses_instances() {
    let topo = Topology::up(false);
    let (mut daemon, _dir, base) = start_daemon("instances-no-redis", &topo.daemon_config("2s", 3), &[]).await;

    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| {
        s.value(AFFINITY, &[("error_type", "session_lost")]) >= 3.0 && delivery(s, "cross_instance").0 >= 18.0
    })
    .await;
    assert!(ok, "no session_lost or too few deliveries: {}", s.text);

    // Every lost request names the configured replica that did not know the session.
    let lost_on: f64 =
        topo.names.iter().map(|r| s.value(AFFINITY, &[("replica", r), ("error_type", "session_lost")])).sum();
    assert_eq!(lost_on, s.value(AFFINITY, &[("error_type", "session_lost")]), "{}", s.text);
    assert_eq!(s.value("mcp_canary_affinity_success", &[("target", "dist")]), 0.0, "{}", s.text);

    let (expected, received) = delivery(&s, "cross_instance");
    assert!(expected >= 18.0, "{}", s.text);
    assert_eq!(received, 0.0, "cross-instance delivery without Redis: {}", s.text);
    // Each instance still reaches its own sessions.
    let (expected, received) = delivery(&s, "same_instance");
    assert!(expected >= 9.0, "{}", s.text);
    assert_eq!(received, expected, "{}", s.text);
    // Probed directly, every replica is healthy: only the balanced path is broken.
    for replica in &topo.names {
        let f = [("target", "dist"), ("replica", replica.as_str())];
        assert_eq!(s.value("mcp_canary_replica_probe_success", &f), 1.0, "{replica}: {}", s.text);
    }
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0));
}

/// Each instance drops a pub/sub message with probability 0.1, independently per (trigger,
/// receiving instance), so the deliveries are Bernoulli(0.9) trials. The test waits for at least
/// 300 of them: misses ~ Binomial(300, 0.1), mean 30, sd 5.2. The bound [0.80, 0.97] allows
/// 9..=60 misses, more than 4 sd on either side (chance of a false failure well under 1e-4), and
/// still fails a canary that ignores drops (100 %) or counts per trigger instead of per stream.
#[tokio::test]
async fn with_a_ten_percent_pubsub_drop_delivery_is_near_ninety_percent() {
    let topo = Topology::up(true);
    for url in &topo.instances {
        admin(url, "/admin/knobs", serde_json::json!({"pubsub_drop_rate": 0.1})).await;
    }
    let (mut daemon, _dir, base) = start_daemon("instances-drop", &topo.daemon_config("3s", 25), &[]).await;

    let total = |s: &Scrape| {
        let (same, cross) = (delivery(s, "same_instance"), delivery(s, "cross_instance"));
        (same.0 + cross.0, same.1 + cross.1)
    };
    let (s, ok) = scrape_until(&base, Duration::from_secs(50), |s| total(s).0 >= 300.0).await;
    assert!(ok, "fewer than 300 deliveries expected: {}", s.text);
    let (expected, received) = total(&s);
    let ratio = received / expected;
    eprintln!("delivery with a 10 % pub/sub drop: {received}/{expected} = {ratio:.3}");
    assert!((0.80..=0.97).contains(&ratio), "delivery {received}/{expected} = {ratio:.3} not near 0.9: {}", s.text);
    // Drops hit both routes.
    for route in ["same_instance", "cross_instance"] {
        let (e, r) = delivery(&s, route);
        assert!(e > 0.0 && r < e, "{route}: {r}/{e}");
    }
    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0));
}
