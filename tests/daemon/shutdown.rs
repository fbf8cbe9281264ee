//! SIGTERM: the daemon stops probing, sends DELETE for its open sessions and exits 0.

use crate::common;

use std::time::Duration;

use common::faulty::FaultyProxy;
use common::{scrape_until, start_daemon, start_target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_deletes_open_sessions() {
    let (_target, mcp_url) = start_target(&[]).await;
    let proxy = FaultyProxy::start(&mcp_url).await;
    proxy.set_faults(false);
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[[targets]]
name = "warm"
url = "{}"
interval = "30s"
timeout = "5s"
protocol = "2025-11-25"
session = "persistent"
"#,
        proxy.url("any")
    );
    let (mut daemon, _dir, base) = start_daemon("daemon-shutdown", &config, &[]).await;
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        s.value("mcp_canary_probes_total", &[("target", "warm"), ("outcome", "success")]) >= 1.0
    })
    .await;
    assert!(ok, "first cycle did not succeed:\n{}", daemon.log_text());
    let seen = proxy.seen();
    let session = seen.iter().find_map(|s| s.session_id.clone()).expect("the warm session has an id");
    assert!(!seen.iter().any(|s| s.http_method == "DELETE"), "DELETE before shutdown");

    let code = daemon.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "exit status; log:\n{}", daemon.log_text());
    let deletes: Vec<_> = proxy.seen().into_iter().filter(|s| s.http_method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "one DELETE at shutdown: {deletes:?}");
    assert_eq!(deletes[0].session_id.as_deref(), Some(session.as_str()));
}

fn signal(daemon: &common::Proc, name: &str) {
    let pid = daemon.child.id().expect("daemon still running").to_string();
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// SIGHUP reloads the config and never kills the daemon; while a graceful stop waits for a
/// stalled probe, a second SIGTERM exits at once (130).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_second_sigterm_exits_at_once() {
    let (_target, mcp_url) = start_target(&[]).await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "60s"
[[targets]]
name = "plain"
url = "{mcp_url}"
interval = "2s"
timeout = "2s"
"#
    );
    let (mut daemon, _dir, base) = start_daemon("daemon-signals", &config, &[]).await;
    let probes = |s: &common::Scrape| s.value("mcp_canary_probes_total", &[("target", "plain")]);
    let (first, ok) = scrape_until(&base, Duration::from_secs(20), |s| probes(s) >= 1.0).await;
    assert!(ok, "no first cycle:\n{}", daemon.log_text());

    signal(&daemon, "HUP");
    let (_, ok) = scrape_until(&base, Duration::from_secs(20), |s| probes(s) >= probes(&first) + 2.0).await;
    assert!(ok, "probing stopped after SIGHUP:\n{}", daemon.log_text());
    assert!(daemon.child.try_wait().unwrap().is_none(), "SIGHUP ended the daemon:\n{}", daemon.log_text());
    assert!(daemon.log_text().contains("SIGHUP: reloading the config"), "{}", daemon.log_text());
    assert!(daemon.log_text().contains("Config reloaded"), "{}", daemon.log_text());

    assert_eq!(daemon.terminate(Duration::from_secs(10)).await, Some(0), "{}", daemon.log_text());

    // A target that stalls from the start: the first cycle is in flight for a minute, and a
    // graceful stop waits for it (60 s of grace); a second SIGTERM does not wait.
    common::admin(&mcp_url, "/admin/knobs", serde_json::json!({"stall": true})).await;
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "60s"
[[targets]]
name = "stalled"
url = "{mcp_url}"
interval = "60s"
jitter = 0.0
timeout = "60s"
"#
    );
    let (mut daemon, _dir, _base) = start_daemon("daemon-second-signal", &config, &[]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&daemon, "TERM");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(daemon.child.try_wait().unwrap().is_none(), "the graceful stop did not wait:\n{}", daemon.log_text());
    let started = std::time::Instant::now();
    signal(&daemon, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), daemon.child.wait())
        .await
        .unwrap_or_else(|_| panic!("a second SIGTERM did not exit at once:\n{}", daemon.log_text()))
        .unwrap();
    assert_eq!(status.code(), Some(130), "{}", daemon.log_text());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(daemon.log_text().contains("Second stop signal"), "{}", daemon.log_text());
}
