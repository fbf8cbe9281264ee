//! Two replicas of one daemon config with `[coordination]` on a real redis-server: both probe the
//! targets, exactly one runs the scheduled profiles (the other counts `not_leader` skips); when
//! the holder stops cleanly the other takes over at once, when it dies it takes over once the
//! lease expires.

use crate::common;
use crate::promql;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{Proc, Scrape, heavy_config, scrape, scrape_until, start_daemon, start_target};

const PROFILE: &str = r#"
[[profiles]]
name = "pulse"
profile = "load"
targets = ["ref"]
schedule = "* * * * * *"
[profiles.load]
clients = 1
rpm = 60.0
duration = "1s"
"#;

fn started(s: &Scrape) -> f64 {
    s.value("mcp_canary_profile_runs_started_total", &[("profile", "pulse")])
}

fn not_leader(s: &Scrape) -> f64 {
    s.value("mcp_canary_profile_runs_skipped_total", &[("profile", "pulse"), ("reason", "not_leader")])
}

fn leader(s: &Scrape) -> f64 {
    s.value("mcp_canary_coordination_leader", &[])
}

async fn replica(name: &str, config: &str) -> (Proc, tempfile::TempDir, String) {
    start_daemon(name, config, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_runs_the_profiles_and_the_other_takes_over() {
    let (_target, mcp_url) = start_target(&[]).await;
    let redis = RedisServer::start().await;
    let results = tempfile::tempdir().unwrap();
    let coordination = |holder: &str| {
        format!("\n[coordination]\nredis = \"{}\"\nlease = \"3s\"\nholder = \"{holder}\"\n", redis.url())
    };
    let config = |holder: &str| heavy_config(&mcp_url, results.path(), PROFILE) + &coordination(holder);
    let (a, _da, base_a) = replica("daemon-ha-a", &config("a")).await;
    let (b, _db, base_b) = replica("daemon-ha-b", &config("b")).await;

    // Both probe; one leads and runs, the other skips every fire as not_leader.
    let both = |s: &Scrape| s.value("mcp_canary_probes_total", &[("target", "ref")]) >= 1.0;
    let (sa, ok) =
        scrape_until(&base_a, Duration::from_secs(20), |s| both(s) && started(s) + not_leader(s) >= 3.0).await;
    assert!(ok, "replica a:\n{}", a.log_text());
    let (sb, ok) =
        scrape_until(&base_b, Duration::from_secs(20), |s| both(s) && started(s) + not_leader(s) >= 3.0).await;
    assert!(ok, "replica b:\n{}", b.log_text());
    assert_eq!(leader(&sa) + leader(&sb), 1.0, "exactly one leader: a={} b={}", leader(&sa), leader(&sb));
    let (mut holder, mut standby, holder_base, standby_base) =
        if leader(&sa) == 1.0 { (a, b, base_a, base_b) } else { (b, a, base_b, base_a) };
    let (h, s) = (scrape(&holder_base).await, scrape(&standby_base).await);
    assert!(started(&h) >= 2.0 && not_leader(&h) == 0.0, "the holder runs every fire");
    assert!(started(&s) == 0.0 && not_leader(&s) >= 2.0, "the standby runs nothing");
    assert_eq!(s.value("mcp_canary_profile_runs_skipped_total", &[("reason", "target_busy")]), 0.0);
    // Every metric alerts/coordination.yml uses is on a live replica's scrape.
    let names = s.names();
    let missing: Vec<_> = promql::rule_file_metric_names("alerts/coordination.yml")
        .into_iter()
        .filter(|n| !names.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "used by alerts/coordination.yml but not exported: {missing:?}");

    // A clean stop releases the lease: the standby leads within one renewal (1 s) plus a fire.
    let stopped = std::time::Instant::now();
    assert_eq!(holder.terminate(Duration::from_secs(15)).await, Some(0), "{}", holder.log_text());
    assert!(holder.log_text().contains("Lease released"), "{}", holder.log_text());
    let (after, ok) =
        scrape_until(&standby_base, Duration::from_secs(10), |x| leader(x) == 1.0 && started(x) >= 1.0).await;
    assert!(ok, "the standby did not take over:\n{}", standby.log_text());
    assert!(stopped.elapsed() < Duration::from_secs(8), "takeover took {:?}", stopped.elapsed());
    assert_eq!(after.value("mcp_canary_coordination_lease_acquired_total", &[]), 1.0);

    // A holder that dies keeps the key until it expires (3 s); then a new replica takes it.
    let (c, _dc, base_c) = replica("daemon-ha-c", &config("c")).await;
    let (sc, ok) = scrape_until(&base_c, Duration::from_secs(10), |x| not_leader(x) >= 2.0).await;
    assert!(ok, "c does not see the lease held:\n{}", c.log_text());
    assert_eq!(leader(&sc), 0.0);
    standby.child.start_kill().unwrap();
    let _ = standby.child.wait().await;
    let killed = std::time::Instant::now();
    let (_, ok) = scrape_until(&base_c, Duration::from_secs(15), |x| leader(x) == 1.0 && started(x) >= 1.0).await;
    assert!(ok, "c did not take over from a dead holder:\n{}", c.log_text());
    let took = killed.elapsed();
    assert!(took >= Duration::from_millis(1500), "took over before the dead holder's lease could expire: {took:?}");
    drop(c);
    redis.stop().await;
}

/// Without Redis, a replica never leads: its fires are `not_leader` skips, the errors are
/// counted, and probing goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_no_replica_runs_profiles() {
    let (_target, mcp_url) = start_target(&[]).await;
    let results = tempfile::tempdir().unwrap();
    let closed = common::closed_addr();
    let config = heavy_config(&mcp_url, results.path(), PROFILE)
        + &format!("\n[coordination]\nredis = \"redis://{closed}/0\"\nlease = \"3s\"\n");
    let (daemon, _d, base) = replica("daemon-ha-noredis", &config).await;
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        not_leader(s) >= 2.0
            && s.value("mcp_canary_coordination_lease_errors_total", &[]) >= 2.0
            && s.value("mcp_canary_probes_total", &[("target", "ref"), ("outcome", "success")]) >= 1.0
    })
    .await;
    assert!(ok, "{}", daemon.log_text());
    assert_eq!(started(&s), 0.0);
    assert_eq!(leader(&s), 0.0);
}
