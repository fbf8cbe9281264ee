//! A large fleet's scrape kept small: Debian's Prometheus with native histograms on
//! (`--enable-feature=native-histograms`, which makes it ask for the protobuf exposition first)
//! scrapes a daemon; the latency histogram arrives as native histograms: `histogram_quantile`
//! over the histogram itself (no `le`) answers, and no `_bucket` series exists. Counters, gauges
//! and the info family arrive too. A scraper that does not ask keeps the classic text.

use std::time::Duration;

use crate::common::{start_daemon, start_target};
use crate::stack::{query, query_vector, start_prometheus_flags};

const P95: &str =
    "histogram_quantile(0.95, rate(mcp_client_operation_duration_seconds{mcp_method_name=\"tools/call\"}[1m]))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_native_histograms_over_protobuf() {
    let (_target, mcp_url) = start_target(&[]).await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[targets]]\nname = \"ref\"\nurl = \"{mcp_url}\"\ninterval = \"1s\"\n\
         [targets.probe]\ntool = \"echo\"\ntool_arguments = {{ message = \"canary\" }}\n"
    );
    let (_daemon, _dir, base) = start_daemon("native", &config, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let host = base.trim_start_matches("http://").to_string();
    let (_prom, prom) = start_prometheus_flags(
        work.path(),
        &[("mcp-canary", vec![host])],
        &[],
        None,
        &["--enable-feature=native-histograms"],
    )
    .await;

    // Bounded: a rate over native histograms needs two scrapes with probes between them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let p95 = loop {
        if let Ok(v) = query_vector(&prom, P95).await
            && let [(labels, value)] = v.as_slice()
            && value.is_finite()
        {
            break (labels.clone(), *value);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no native histogram p95 within 40 s: {:?}",
            query_vector(&prom, P95).await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(p95.0.get("target").map(String::as_str), Some("ref"), "{p95:?}");
    assert!(p95.1 > 0.0 && p95.1 < 5.0, "p95 of echo on loopback: {p95:?}");
    assert_eq!(query(&prom, "mcp_client_operation_duration_seconds_bucket").await, Ok(0), "classic buckets stored");
    assert_eq!(query(&prom, "mcp_client_operation_duration_seconds_count").await, Ok(0), "classic _count stored");
    assert_eq!(query(&prom, "mcp_canary_probes_total{target=\"ref\",outcome=\"success\"}").await, Ok(1));
    assert_eq!(query(&prom, "mcp_canary_probe_success{target=\"ref\"} == 1").await, Ok(1));
    assert_eq!(query(&prom, "mcp_canary_server_info{target=\"ref\"}").await, Ok(1), "the info family");
    assert_eq!(query(&prom, "process_resident_memory_bytes > 0").await, Ok(1));

    // A classic scraper (no Accept) still gets the text with buckets.
    let plain = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(plain.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = plain.text().await.unwrap();
    assert!(text.contains("mcp_client_operation_duration_seconds_bucket{target=\"ref\""), "{text}");
}
