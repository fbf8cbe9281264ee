//! Knob error_rate=1: every MCP POST gets an HTML 500; admin and other paths are unaffected.
use crate::target_util;

use serde_json::json;
use target_util::start;

#[tokio::test]
async fn error_rate_one_answers_html_500() {
    let target = start().await;
    let (status, knobs) = target.admin_post("/admin/knobs", &json!({"error_rate": 1.0})).await;
    assert_eq!(status, 200);
    assert_eq!(knobs["error_rate"], 1.0);
    assert_eq!(knobs["latency_ms"], 0, "partial update keeps other knobs: {knobs}");

    let reply = target.request_2026(1, "server/discover", None, json!({})).await.expect("discover");
    assert_eq!(reply.status, 500, "{reply:?}");
    assert!(reply.content_type.starts_with("text/html"), "{reply:?}");
    assert_eq!(reply.body, "<html><body><h1>500 Internal Server Error</h1></body></html>");

    let (status, _) = target.admin_post("/admin/knobs", &json!({"error_rate": 0.0})).await;
    assert_eq!(status, 200);
    let reply = target.request_2026(2, "server/discover", None, json!({})).await.expect("discover");
    assert_eq!(reply.status, 200, "cleared knob restores service: {reply:?}");

    let (_, metrics) = target.get_path("/metrics").await;
    assert!(metrics.contains("mcp_canary_target_faults_injected_total{kind=\"http_error\"} 1\n"), "{metrics}");
}

#[tokio::test]
async fn invalid_knobs_are_refused() {
    let target = start().await;
    let (status, _) = target.admin_post("/admin/knobs", &json!({"error_rate": 2.0})).await;
    assert_eq!(status, 400);
    let (status, _) = target.admin_post("/admin/knobs", &json!({"no_such_knob": true})).await;
    assert_eq!(status, 400);
    assert_eq!(target.handle.knobs().get().error_rate, 0.0);
}
