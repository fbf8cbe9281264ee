//! Admin expire-sessions drops every session: the old session id then gets 404.
use crate::target_util;

use serde_json::json;
use target_util::start;

#[tokio::test]
async fn expired_session_gets_404() {
    let target = start().await;
    let session = target.initialize_2025().await;
    let reply = target.request_2025(&session, 1, "tools/list", json!({})).await.expect("tools/list");
    assert_eq!(reply.status, 200);
    assert_eq!(target.handle.live_sessions().await, 1);

    let (status, body) = target.admin_post("/admin/expire-sessions", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["expired"], 1);

    let reply = target.request_2025(&session, 2, "tools/list", json!({})).await.expect("tools/list");
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(target.handle.live_sessions().await, 0);
}
