//! Knob latency_ms delays every MCP request by at least that much.
use crate::target_util;

use std::time::{Duration, Instant};

use mcp_canary::reference::KnobsPatch;
use serde_json::json;
use target_util::start;

#[tokio::test]
async fn latency_knob_delays_requests() {
    let target = start().await;
    target.handle.knobs().apply(&KnobsPatch { latency_ms: Some(300), ..Default::default() }).expect("set latency");
    let started = Instant::now();
    let reply = target.request_2026(1, "server/discover", None, json!({})).await.expect("discover");
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(elapsed >= Duration::from_millis(300), "took {elapsed:?}");

    target.handle.knobs().apply(&KnobsPatch { latency_ms: Some(0), ..Default::default() }).expect("clear latency");
    let started = Instant::now();
    target.request_2026(2, "server/discover", None, json!({})).await.expect("discover");
    assert!(started.elapsed() < Duration::from_millis(300), "took {:?}", started.elapsed());
}
