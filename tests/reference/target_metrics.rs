//! The target's /metrics shows live sessions, resident memory and request counts.
use crate::target_util;

use target_util::start;

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_show_sessions_and_memory() {
    let target = start().await;
    let (status, before) = target.get_path("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(value(&before, "mcp_canary_target_live_sessions"), Some(0.0), "{before}");

    let _first = target.initialize_2025().await;
    let _second = target.initialize_2025().await;
    let (_, after) = target.get_path("/metrics").await;
    assert_eq!(value(&after, "mcp_canary_target_live_sessions"), Some(2.0), "{after}");
    assert!(value(&after, "process_resident_memory_bytes").is_some_and(|b| b > 0.0), "{after}");
    // 2 × (initialize + notifications/initialized)
    assert_eq!(value(&after, "mcp_canary_target_requests_total{method=\"POST\"}"), Some(4.0), "{after}");
    assert!(after.contains("# TYPE mcp_canary_target_faults_injected_total counter"), "{after}");
}
