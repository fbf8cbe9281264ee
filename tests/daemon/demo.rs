//! `mcp-canary demo`: no config, the reference target probed in one process, metrics at once.

use crate::common;

use std::time::Duration;

use common::{Proc, scrape_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_a_probed_server_within_seconds() {
    let demo =
        Proc::start("demo", &["demo", "--listen", "127.0.0.1:0", "--interval", "1s"], &[], "mcp-canary listening on ")
            .await;
    let base = demo.announced.clone();
    let (s, ok) = scrape_until(&base, Duration::from_secs(20), |s| {
        ["reference-cold", "reference-warm"].iter().all(|t| {
            s.value("mcp_canary_probe_success", &[("target", t)]) == 1.0
                && s.value("mcp_canary_notifications_received_total", &[("target", t)]) >= 1.0
        })
    })
    .await;
    assert!(ok, "demo targets not healthy:\n{}\n{}", s.text, demo.log_text());
    // Both protocol eras are on show.
    for (t, version) in [("reference-cold", "2026-07-28"), ("reference-warm", "2025-11-25")] {
        let filter = [("target", t), ("mcp_protocol_version", version)];
        assert_eq!(s.value("mcp_canary_server_info", &filter), 1.0, "{t} should speak {version}:\n{}", s.text);
    }
}
