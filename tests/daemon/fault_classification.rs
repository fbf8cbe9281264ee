//! Misbehaving servers become classified error metrics: each fault shows up under its own
//! `error_type`, probe_success drops to 0 and comes back when the fault is lifted, and the
//! daemon keeps running throughout.

use crate::common;

use std::time::Duration;

use common::faulty::FaultyProxy;
use common::{Scrape, admin, closed_addr, scrape_until, start_daemon, start_target};

/// (target name, fault, the error_type it must produce)
const CASES: &[(&str, &str, &str)] = &[
    ("html500", "html500", "http_5xx"),
    ("garbage", "garbage_json", "invalid_json"),
    ("truncated", "truncated_sse", "invalid_sse"),
    ("huge", "huge_body", "body_too_large"),
    ("stall", "stall", "timeout"),
];

fn target(name: &str, url: &str, session: &str) -> String {
    format!(
        r#"
[[targets]]
name = "{name}"
url = "{url}"
interval = "1s"
timeout = "1s"
protocol = "2025-11-25"
session = "{session}"
max_response_bytes = 1048576
[targets.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
"#
    )
}

/// The notification round trip, appended to the warm target: it must survive re-initialisation.
const NOTIFY: &str = r#"[targets.notification]
tool = "notify"
arguments = { nonce = "{nonce}" }
method = "notifications/message"
timeout = "900ms"
"#;

fn failures(s: &Scrape, target: &str, error_type: &str) -> f64 {
    s.value("mcp_canary_operations_total", &[("target", target), ("outcome", "failure"), ("error_type", error_type)])
}

fn success(s: &Scrape, target: &str) -> Option<f64> {
    s.sum("mcp_canary_probe_success", &[("target", target)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_classified_and_recovered_from() {
    let (_target, mcp_url) = start_target(&[]).await;
    let proxy = FaultyProxy::start(&mcp_url).await;
    let refused = closed_addr();

    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for (name, fault, _) in CASES {
        config.push_str(&target(name, &proxy.url(fault), "fresh"));
    }
    config.push_str(&target("refused", &format!("http://{refused}/mcp"), "fresh"));
    config.push_str(&target("expiry", &mcp_url, "persistent"));
    config.push_str(NOTIFY);
    let (daemon, _dir, base) = start_daemon("daemon-faults", &config, &[]).await;

    // Every fault is classified, and its probe fails.
    let all_failed = |s: &Scrape| {
        CASES.iter().all(|(name, _, class)| failures(s, name, class) >= 1.0 && success(s, name) == Some(0.0))
            && failures(s, "refused", "connect") >= 1.0
            && success(s, "refused") == Some(0.0)
    };
    let (s, ok) = scrape_until(&base, Duration::from_secs(30), all_failed).await;
    assert!(ok, "faults not classified as expected:\n{}\n{}", failing_lines(&s), daemon.log_text());
    // Nothing else was blamed: each faulty target failed only with its own class.
    for (name, _, class) in CASES {
        let other: f64 = s
            .matching("mcp_canary_operations_total", &[("target", name), ("outcome", "failure")])
            .filter(|x| x.labels["error_type"] != *class)
            .map(|x| x.value)
            .sum();
        assert_eq!(other, 0.0, "{name} failed with other classes too:\n{}", failing_lines(&s));
        // Failed operations still record their latency, labelled by class.
        assert!(
            s.value("mcp_client_operation_duration_seconds_count", &[("target", name), ("error_type", class)]) >= 1.0,
            "{name}: no latency recorded for the failure"
        );
    }

    // Session expiry on the warm session: counted, re-initialised, then healthy again.
    let (before, _) = scrape_until(&base, Duration::from_secs(15), |s| success(s, "expiry") == Some(1.0)).await;
    let reinit_before = before.value("mcp_canary_sessions_reinitialized_total", &[("target", "expiry")]);
    // A cycle that fails for another reason (a slow step on a loaded machine) closes the warm
    // session itself and starts afresh, so the expiry may land on a session the probe already
    // dropped: expire again, a bounded number of times.
    let mut detected = None;
    for _ in 0..3 {
        admin(&mcp_url, "/admin/expire-sessions", serde_json::json!({})).await;
        let (s, ok) = scrape_until(&base, Duration::from_secs(6), |s| {
            s.value("mcp_canary_sessions_reinitialized_total", &[("target", "expiry")]) > reinit_before
                && failures(s, "expiry", "session_expired") >= 1.0
        })
        .await;
        detected = Some((s, ok));
        if ok {
            break;
        }
    }
    let (s, ok) = detected.expect("at least one attempt");
    assert!(ok, "session expiry not detected:\n{}\n{}", failing_lines(&s), daemon.log_text());

    // Lift every fault: each target recovers and the daemon never stopped.
    proxy.set_faults(false);
    let (s, ok) = scrape_until(&base, Duration::from_secs(30), |s| {
        CASES.iter().all(|(name, _, _)| success(s, name) == Some(1.0)) && success(s, "expiry") == Some(1.0)
    })
    .await;
    assert!(ok, "targets did not recover:\n{}\n{}", failing_lines(&s), daemon.log_text());
    // The re-initialised warm session reopened its stream: notifications arrive again.
    let received = |s: &Scrape| s.value("mcp_canary_notifications_received_total", &[("target", "expiry")]);
    let expected = |s: &Scrape| s.value("mcp_canary_notifications_expected_total", &[("target", "expiry")]);
    let (r0, e0) = (received(&s), expected(&s));
    let (s, ok) = scrape_until(&base, Duration::from_secs(15), |s| expected(s) >= e0 + 3.0).await;
    assert!(ok, "warm target stopped cycling:\n{}", daemon.log_text());
    assert_eq!(received(&s) - r0, expected(&s) - e0, "notifications lost after re-initialisation");
    let health = reqwest::get(format!("{base}/healthz")).await.expect("daemon still serving");
    assert_eq!(health.status(), 200);
    assert!(!daemon.log_text().contains("panicked"), "the daemon panicked:\n{}", daemon.log_text());
}

fn failing_lines(s: &Scrape) -> String {
    s.text
        .lines()
        .filter(|l| {
            l.starts_with("mcp_canary_probe_success") || (l.contains("outcome=\"failure\"") && !l.ends_with(" 0"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
