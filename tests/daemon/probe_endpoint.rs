//! `GET /probe?target=URL&module=NAME` on the real daemon (blackbox_exporter's contract): one
//! cycle of a module against an allowed URL, answered with that cycle's metrics only; refusals
//! (endpoint off, a target outside `probe.allowed_targets`, bad parameters, the concurrency cap)
//! come before any connection.

use crate::common;

use std::time::{Duration, Instant};

use common::faulty::FaultyProxy;
use common::{Scrape, scrape, start_daemon, start_target};

/// A daemon that only answers /probe (no `[[targets]]`): loopback `/mcp` and `/fault/*` URLs on
/// any port are allowed; module `ref` runs the reference target's script.
fn config(max_concurrent: usize) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[probe]
allowed_targets = ["http://127.0.0.1:*/mcp", "http://127.0.0.1:*/fault/*"]
max_concurrent = {max_concurrent}
[modules.ref]
timeout = "5s"
bearer_token = "module-secret"
[modules.ref.probe]
tool = "echo"
tool_arguments = {{ message = "canary" }}
resource = "canary://static/hello"
prompt = "greeting"
prompt_arguments = {{ name = "canary" }}
[modules.ref.notification]
tool = "notify"
arguments = {{ nonce = "{{nonce}}" }}
method = "notifications/message"
timeout = "2s"
"#
    )
}

async fn get(base: &str, query: &[(&str, &str)], scrape_timeout: Option<&str>) -> (u16, String) {
    let url = url::Url::parse_with_params(&format!("{base}/probe"), query).unwrap();
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = scrape_timeout {
        request = request.header("X-Prometheus-Scrape-Timeout-Seconds", t);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .expect("/probe answers within 30 s")
        .expect("/probe request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("/probe body"))
}

/// Every label value of a `/probe` answer is from a closed set.
fn assert_bounded(answer: &Scrape) {
    let errors: Vec<&str> = mcp_canary::mcp::ErrorType::ALL.iter().map(|t| t.as_str()).collect();
    for s in &answer.samples {
        assert!(s.name.starts_with("probe_"), "{} in a /probe answer", s.name);
        for (k, v) in &s.labels {
            match k.as_str() {
                "step" => assert!(
                    v.contains('/') || ["initialize", "ping", "notification", "deadline"].contains(&v.as_str()),
                    "{v}"
                ),
                "error_type" => assert!(errors.contains(&v.as_str()), "{v}"),
                "mcp_protocol_version" => assert!(v.starts_with("20") || v == "other", "{v}"),
                other => panic!("unexpected label {other}={v}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_answers_one_cycle_of_an_allowed_target() {
    let (_target, mcp_url) = start_target(&[]).await;
    let (daemon, _dir, base) = start_daemon("probe-endpoint", &config(4), &[]).await;

    let (status, text) = get(&base, &[("target", &mcp_url), ("module", "ref")], None).await;
    assert_eq!(status, 200, "{text}\n{}", daemon.log_text());
    let answer = Scrape::parse(&text);
    assert_bounded(&answer);
    assert_eq!(answer.value("probe_success", &[]), 1.0, "{text}");
    assert!(answer.value("probe_duration_seconds", &[]) > 0.0, "{text}");
    for step in ["tools/list", "tools/call", "resources/read", "prompts/get"] {
        assert!(
            answer.sum("probe_step_duration_seconds", &[("step", step)]).is_some_and(|d| d > 0.0),
            "{step}: {text}"
        );
    }
    assert!(
        ["initialize", "server/discover"]
            .iter()
            .any(|s| answer.sum("probe_step_duration_seconds", &[("step", s)]).is_some()),
        "a connect step: {text}"
    );
    assert!(answer.sum("probe_notification_latency_seconds", &[]).is_some(), "{text}");
    assert_eq!(answer.sum("probe_error_info", &[]), None, "{text}");
    assert_eq!(answer.matching("probe_mcp_info", &[]).count(), 1, "{text}");

    // The default module exists without being configured.
    let (status, text) = get(&base, &[("target", &mcp_url)], None).await;
    assert_eq!((status, Scrape::parse(&text).value("probe_success", &[])), (200, 1.0), "{text}");

    // A failing server: probe_success 0 and the step's error class, nothing from its body.
    let proxy = FaultyProxy::start(&mcp_url).await;
    let (status, text) = get(&base, &[("target", &proxy.url("html500")), ("module", "ref")], None).await;
    assert_eq!(status, 200, "{text}");
    let answer = Scrape::parse(&text);
    assert_bounded(&answer);
    assert_eq!(answer.value("probe_success", &[]), 0.0, "{text}");
    assert!(answer.sum("probe_error_info", &[("error_type", "http_5xx")]) == Some(1.0), "{text}");
    assert!(!text.contains("nginx"), "server text in the answer: {text}");

    // Bad requests name what is wrong and make no connection.
    let (status, text) = get(&base, &[("target", &mcp_url), ("module", "nope")], None).await;
    assert_eq!(status, 400);
    assert!(text.contains("unknown module \"nope\"") && text.contains("default, ref"), "{text}");
    let (status, text) = get(&base, &[("module", "ref")], None).await;
    assert_eq!(status, 400);
    assert!(text.contains("target"), "{text}");
    let (status, text) = get(&base, &[("target", "ftp://127.0.0.1/mcp")], None).await;
    assert_eq!(status, 400);
    assert!(text.contains("http or https"), "{text}");
    let (status, _) = get(&base, &[("target", &mcp_url)], Some("soon")).await;
    assert_eq!(status, 400);

    // The answer is that cycle's only: /metrics has the requests, not the probe's series.
    let metrics = scrape(&base).await;
    assert!(metrics.sum("probe_success", &[]).is_none(), "probe series leaked into /metrics");
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "ok")]), 3.0, "{}", metrics.text);
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "bad_request")]), 4.0);
    assert!(!daemon.log_text().contains("module-secret"), "the module's token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_refuses_targets_outside_the_allow_list_without_connecting() {
    let (daemon, _dir, base) = start_daemon("probe-refused", &config(4), &[]).await;
    // A listener of ours: any connection the daemon made would be accepted here.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    let outside = format!("http://127.0.0.1:{port}/elsewhere");
    let (status, text) = get(&base, &[("target", &outside), ("module", "ref")], None).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("probe.allowed_targets"), "{text}");
    // The user-info trick: `*` would match "1@127.0.0.1:PORT", but credentials in the URL are refused.
    let trick = format!("http://127.0.0.1:1@127.0.0.1:{port}/mcp");
    let (status, text) = get(&base, &[("target", &trick), ("module", "ref")], None).await;
    assert_eq!(status, 400, "{text}");

    let accepted = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
    assert!(accepted.is_err(), "the daemon connected to a refused target:\n{}", daemon.log_text());
    let metrics = scrape(&base).await;
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "refused")]), 1.0);
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "ok")]), 0.0);

    // Allowed by a pattern, the same listener is connected to (the check above could fail).
    let allowed = format!("http://127.0.0.1:{port}/mcp");
    let probe = tokio::spawn({
        let base = base.clone();
        async move { get(&base, &[("target", &allowed)], Some("1.5")).await }
    });
    let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
    assert!(accepted.is_ok(), "an allowed target was not connected to");
    drop(accepted);
    let (status, text) = probe.await.unwrap();
    assert_eq!((status, Scrape::parse(&text).value("probe_success", &[])), (200, 0.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_is_capped_and_bounded_by_the_scrape_timeout() {
    let (_target, mcp_url) = start_target(&[]).await;
    let proxy = FaultyProxy::start(&mcp_url).await;
    let (_daemon, _dir, base) = start_daemon("probe-capped", &config(1), &[]).await;

    // A server that never answers holds the only slot for its deadline: 1.5 s less the 0.5 s
    // offset, not the module's 5 s.
    let stalled = proxy.url("stall");
    let started = Instant::now();
    let first = tokio::spawn({
        let base = base.clone();
        async move { get(&base, &[("target", &stalled), ("module", "ref")], Some("1.5")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy_at = Instant::now();
    let (status, text) = get(&base, &[("target", &mcp_url), ("module", "ref")], None).await;
    assert_eq!(status, 503, "{text}");
    assert!(busy_at.elapsed() < Duration::from_millis(500), "503 at once, not after a wait");

    let (status, text) = first.await.unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200, "{text}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(2500), "took {took:?}");
    let answer = Scrape::parse(&text);
    assert_bounded(&answer);
    assert_eq!(answer.value("probe_success", &[]), 0.0, "{text}");
    assert_eq!(answer.sum("probe_error_info", &[("error_type", "timeout")]), Some(1.0), "{text}");

    // The slot is free again.
    let (status, text) = get(&base, &[("target", &mcp_url), ("module", "ref")], None).await;
    assert_eq!((status, Scrape::parse(&text).value("probe_success", &[])), (200, 1.0), "{text}");
    let metrics = scrape(&base).await;
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "busy")]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_is_off_without_a_probe_table() {
    let (_target, mcp_url) = start_target(&[]).await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[targets]]\nname = \"t\"\nurl = \"{mcp_url}\"\ninterval = \"30s\"\n"
    );
    let (_daemon, _dir, base) = start_daemon("probe-off", &config, &[]).await;
    let (status, text) = get(&base, &[("target", &mcp_url)], None).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("/probe is off") && text.contains("allowed_targets"), "{text}");
    let metrics = scrape(&base).await;
    assert_eq!(metrics.value("mcp_canary_probe_requests_total", &[("outcome", "refused")]), 1.0);
}
