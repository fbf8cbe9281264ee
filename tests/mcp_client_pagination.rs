//! List operations follow `nextCursor`, and stop on a repeated cursor.
#[path = "common/client_support.rs"]
mod client_support;

use client_support::*;
use serde_json::json;

#[tokio::test]
async fn follows_next_cursor() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        let id = r.id();
        match (r.rpc_method(), r.body["params"]["cursor"].as_str()) {
            (Some("tools/list"), None) => {
                json_reply(200, result(&id, json!({"tools": [{"name": "a"}], "nextCursor": "p2"})))
            }
            (Some("tools/list"), Some("p2")) => {
                json_reply(200, result(&id, json!({"tools": [{"name": "b"}], "nextCursor": "p3"})))
            }
            (Some("tools/list"), Some(_)) => json_reply(200, result(&id, json!({"tools": [{"name": "c"}]}))),
            // A broken server that always hands back the same cursor.
            (Some("prompts/list"), _) => {
                json_reply(200, result(&id, json!({"prompts": [{"name": "p"}], "nextCursor": "same"})))
            }
            _ => json_reply(200, rpc_error(&id, -32601, "nope")),
        }
    })
    .await;
    let client = client(config(&server.url));
    client.connect().await.unwrap();
    let tools = client.list_tools().await.unwrap();
    let names: Vec<_> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let prompts = client.list_prompts().await.unwrap();
    assert_eq!(prompts.len(), 2, "stopped at the repeated cursor");
    assert_eq!(server.posts_of("prompts/list").len(), 2);
}
