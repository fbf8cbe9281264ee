//! SIGTERM: the daemon stops probing, sends DELETE for its open sessions and exits 0.

mod common;

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
