//! Sessions idle longer than the session idle timeout are dropped (404 afterwards).
use crate::target_util;

use std::time::Duration;

use mcp_canary::reference::TargetOptions;
use serde_json::json;
use target_util::start_with;

#[tokio::test]
async fn idle_session_expires() {
    let options = TargetOptions { session_idle_timeout: Duration::from_millis(500), ..Default::default() };
    let target = start_with(options).await;
    let session = target.initialize_2025().await;
    // Bounded wait: at most 20 × 100 ms for the session to be dropped.
    let mut live = usize::MAX;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        live = target.handle.live_sessions().await;
        if live == 0 {
            break;
        }
    }
    assert_eq!(live, 0, "idle session dropped");
    let reply = target.request_2025(&session, 1, "tools/list", json!({})).await.expect("tools/list");
    assert_eq!(reply.status, 404, "{reply:?}");
}
