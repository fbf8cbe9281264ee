//! The daemon's probe_success follows `check`'s verdict: a notification round trip that was
//! asked for and missed makes the cycle a failure (probe_success 0), a delivered one keeps it a
//! success (1). Against the reference target and a peer from PyPI (the Python SDK 1.x).

use crate::common;

use std::time::Duration;

use common::peers::{Peer, start};
use common::{Scrape, scrape_until, start_daemon, start_target};

fn target(name: &str, url: &str, method: &str) -> String {
    format!(
        r#"
[[targets]]
name = "{name}"
url = "{url}"
interval = "2s"
timeout = "2s"
protocol = "2025-11-25"
[targets.notification]
tool = "notify"
arguments = {{ nonce = "{{nonce}}" }}
method = "{method}"
timeout = "1s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_notification_makes_probe_success_zero() {
    let (_target, reference) = start_target(&[]).await;
    let peer = start(Peer::PythonSdk1).await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}{}{}{}",
        target("ref-delivered", &reference, "notifications/message"),
        target("ref-missed", &reference, "notifications/never"),
        target("peer-delivered", &peer.url, "notifications/message"),
        target("peer-missed", &peer.url, "notifications/never"),
    );
    let (daemon, _dir, base) = start_daemon("daemon-notification-missed", &config, &[]).await;
    let targets = ["ref-delivered", "ref-missed", "peer-delivered", "peer-missed"];
    let cycles = |s: &Scrape, t: &str| s.value("mcp_canary_probes_total", &[("target", t)]);
    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| targets.iter().all(|t| cycles(s, t) >= 2.0)).await;
    assert!(ok, "two cycles per target did not complete:\n{}\n{}", s.text, daemon.log_text());

    for t in targets {
        let missed = t.ends_with("missed");
        let expected = s.value("mcp_canary_notifications_expected_total", &[("target", t)]);
        let received = s.value("mcp_canary_notifications_received_total", &[("target", t)]);
        assert!(expected >= 2.0, "{t}: {expected} notifications expected\n{}", s.text);
        assert_eq!(received, if missed { 0.0 } else { expected }, "{t}\n{}", peer.log_text());
        let success = s.value("mcp_canary_probe_success", &[("target", t)]);
        assert_eq!(success, if missed { 0.0 } else { 1.0 }, "{t}:\n{}", daemon.log_text());
        let failures = s.value("mcp_canary_probes_total", &[("target", t), ("outcome", "failure")]);
        if missed {
            assert!(failures >= 2.0, "{t}: every missed round trip is a failed cycle: {failures}");
        } else {
            assert_eq!(failures, 0.0, "{t}");
        }
        // The steps themselves all succeeded: the failure is the round trip's alone.
        let step_failures = s.value("mcp_canary_operations_total", &[("target", t), ("outcome", "failure")]);
        assert_eq!(step_failures, 0.0, "{t}\n{}", s.text);
    }
}
