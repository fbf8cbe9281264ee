//! List operations follow `nextCursor`, and stop on a repeated cursor.
use crate::client_support;

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
    let names: Vec<_> = tools.values().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let prompts = client.list_prompts().await.unwrap();
    assert_eq!(prompts.len(), 2, "stopped at the repeated cursor");
    assert_eq!(server.posts_of("prompts/list").len(), 2);
}

/// A server dripping pages (each within the request timeout) cannot make a listing last 100
/// timeouts: all pages share `LISTING_TIMEOUTS` timeouts. A listing still offering a cursor after
/// `MAX_PAGES` pages is marked truncated, its count the pages read.
#[tokio::test]
async fn a_listing_is_bounded_in_time_and_pages() {
    let server = serve(|r| async move {
        if let Some(resp) = handshake(&r, "s") {
            return resp;
        }
        let id = r.id();
        let next = r.body["params"]["cursor"].as_str().and_then(|c| c.parse::<u64>().ok()).unwrap_or(0) + 1;
        if r.rpc_method() == Some("prompts/list") {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
        let key = if r.rpc_method() == Some("prompts/list") { "prompts" } else { "resources" };
        json_reply(200, result(&id, json!({key: [{"name": "x", "uri": "u"}], "nextCursor": next.to_string()})))
    })
    .await;
    let mut cfg = config(&server.url);
    cfg.request_timeout = std::time::Duration::from_millis(400);
    let client = client(cfg);
    client.connect().await.unwrap();
    let started = std::time::Instant::now();
    let e = client.list_prompts().await.unwrap_err();
    assert_eq!(e.error_type(), mcp_canary::mcp::ErrorType::Timeout, "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    let pages = server.posts_of("prompts/list").len();
    assert!((5..=10).contains(&pages), "{pages} pages in 3 timeouts of 400 ms at 150 ms a page");

    let resources = client.list_resources().await.unwrap();
    assert_eq!((resources.len(), resources.pages), (mcp_canary::mcp::MAX_PAGES, mcp_canary::mcp::MAX_PAGES));
    assert!(resources.truncated && resources.kept_all());
}
