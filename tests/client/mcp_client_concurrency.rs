//! One client used concurrently from `&self`: every response reaches its own caller.
use crate::client_support;

use client_support::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn concurrent_calls_match_their_responses() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        let id = r.id();
        let n = r.body["params"]["arguments"]["n"].as_u64().unwrap_or(0);
        // Answer in reverse order of arrival, some as SSE.
        tokio::time::sleep(Duration::from_millis(100 - n * 5)).await;
        let body = result(&id, json!({"content": [{"type": "text", "text": n.to_string()}]}));
        if n % 2 == 0 { sse_reply(event(Some(&format!("e{n}")), &body)) } else { json_reply(200, body) }
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.unwrap();
    let calls = (0..10u64).map(|n| {
        let client = &client;
        async move { (n, client.call_tool("echo", json!({"n": n}), None).await) }
    });
    for (n, r) in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().content[0]["text"], n.to_string());
    }
}
