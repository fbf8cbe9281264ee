//! Against the official npm "everything" server over Streamable HTTP (skipped when it is not
//! installed: run `scripts/install-test-servers.sh`).
use crate::client_support;

use client_support::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

struct KillOnDrop(tokio::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn entry() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".cache/npm/everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    p.exists().then_some(p)
}

#[tokio::test]
async fn canary_script_against_everything() {
    // Installed by scripts/install-test-servers.sh: a missing server fails the test, never skips it.
    let entry = entry().expect("the everything server is missing: run scripts/install-test-servers.sh");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new("node")
        .arg(&entry)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let _guard = KillOnDrop(child);
    let mut ready = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "everything server did not listen within 10 s");

    let url = format!("http://127.0.0.1:{port}/mcp").parse().unwrap();
    let client = client(config(&url));
    let info = client.connect().await.expect("connect");
    eprintln!(
        "negotiated {} with {} {} session={:?}",
        info.protocol_version,
        info.name,
        info.version,
        info.session_id.is_some()
    );
    assert!(!info.protocol_version.is_empty() && info.offers_tools);
    let streamed = client.open_stream().await.expect("open stream");
    eprintln!("server-to-client stream: {streamed}");

    let tools = client.list_tools().await.expect("tools/list");
    assert!(tools.values().any(|t| t["name"] == "echo"), "echo listed");
    let r = client.call_tool("echo", json!({"message": "canary"}), None).await.expect("echo");
    assert!(!r.is_error);
    assert!(r.content.to_string().contains("canary"), "{}", r.content);

    let resources = client.list_resources().await.expect("resources/list");
    assert!(!resources.is_empty());
    let uri = resources.items[0].value()["uri"].as_str().unwrap().to_string();
    let read = client.read_resource(&uri).await.expect("resources/read");
    assert!(read["contents"].is_array());

    let prompts = client.list_prompts().await.expect("prompts/list");
    let simple = prompts
        .values()
        .find(|p| !p["arguments"].as_array().is_some_and(|a| a.iter().any(|x| x["required"] == true)))
        .expect("a prompt without required arguments");
    let got = client.get_prompt(simple["name"].as_str().unwrap(), Value::Null).await.expect("prompts/get");
    assert!(got["messages"].is_array());
    // Progress notifications arrive on the POST's SSE stream before the response.
    let mut notes = client.notifications();
    let long = client
        .call_tool("trigger-long-running-operation", json!({"duration": 0.4, "steps": 2}), Some("canary-progress"))
        .await
        .expect("long-running operation");
    assert!(!long.is_error);
    let mut progress = 0;
    while let Ok(n) = notes.try_recv() {
        if n.method == "notifications/progress" && n.params["progressToken"] == "canary-progress" {
            assert_eq!(n.via, mcp_canary::mcp::StreamKind::PostResponse);
            progress += 1;
        }
    }
    assert_eq!(progress, 2, "one progress notification per step");
    if client.supports_ping() {
        client.ping().await.expect("ping");
    }
    eprintln!(
        "tools={} resources={} prompts={} stats={:?}",
        tools.len(),
        resources.len(),
        prompts.len(),
        client.stream_stats()
    );
    client.close().await.expect("close");
}
