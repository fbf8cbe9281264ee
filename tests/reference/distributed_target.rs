//! The distributed reference target behind nginx (`deploy/local/topology.sh`): real redis-server,
//! three `mcp-canary target --redis … --instance …` processes and nginx with least_conn and no
//! stickiness. With Redis a session survives landing on any instance and a notification
//! triggered on one instance reaches a GET stream held by another; without Redis a session is
//! "not found" on the instances that did not create it.
use crate::target_util;
use crate::topology;

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};
use target_util::{V2025, sse_messages, wait_for_message};
use topology::Topology;

/// One buffered answer with the serving instance.
#[derive(Debug)]
struct Answer {
    status: u16,
    instance: String,
    session: Option<String>,
    body: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

async fn post(url: &str, session: Option<&str>, body: &Value) -> Answer {
    let mut request = client()
        .post(url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .json(body);
    if let Some(session) = session {
        request = request.header("Mcp-Session-Id", session).header("MCP-Protocol-Version", V2025);
    }
    let response = request.send().await.expect("POST");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let instance = header("mcp-canary-instance").unwrap_or_default();
    let session = header("mcp-session-id");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    Answer { status, instance, session, body }
}

/// initialize + notifications/initialized on `url`; returns the session id and the instance
/// that created it.
async fn initialize(url: &str) -> (String, String) {
    let (session, instance, ack) = initialize_unchecked(url).await;
    assert_eq!(ack.status, 202, "{ack:?}");
    (session, instance)
}

/// Like [`initialize`], also returning the answer to notifications/initialized unchecked.
async fn initialize_unchecked(url: &str) -> (String, String, Answer) {
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": V2025, "capabilities": {}, "clientInfo": {"name": "dist-test", "version": "0"}},
    });
    let answer = post(url, None, &init).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let session = answer.session.clone().expect("Mcp-Session-Id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let ack = post(url, Some(&session), &initialized).await;
    (session, answer.instance, ack)
}

async fn echo(url: &str, session: &str, id: i64) -> Answer {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": format!("m{id}")}}});
    post(url, Some(session), &body).await
}

fn echoed(answer: &Answer, id: i64) -> bool {
    sse_messages(&answer.body)
        .into_iter()
        .chain(serde_json::from_str::<Value>(&answer.body).ok())
        .any(|m| m["id"] == id && m["result"]["content"][0]["text"] == format!("m{id}"))
}

async fn open_stream(url: &str, session: &str) -> reqwest::Response {
    let response = client()
        .get(url)
        .header("Accept", "text/event-stream")
        .header("Mcp-Session-Id", session)
        .header("MCP-Protocol-Version", V2025)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("GET stream");
    assert_eq!(response.status(), 200, "GET stream");
    response
}

fn is_notify(message: &Value, nonce: &str) -> bool {
    message["method"] == "notifications/message" && message["params"]["data"]["nonce"] == nonce
}

#[tokio::test]
async fn with_redis_any_instance_serves_any_session_and_notifications_cross_instances() {
    let topo = Topology::up(true);

    // Sequential requests through the balancer land on different instances; none is lost.
    let (session, created_on) = initialize(&topo.balancer).await;
    let mut served = BTreeSet::from([created_on]);
    for id in 1..=10 {
        let answer = echo(&topo.balancer, &session, id).await;
        assert_eq!(answer.status, 200, "request {id}: {answer:?}");
        assert!(echoed(&answer, id), "request {id}: {answer:?}");
        served.insert(answer.instance);
    }
    assert!(served.len() >= 2, "one instance served everything: {served:?}");
    assert!(served.iter().all(|i| i.starts_with("target-")), "{served:?}");

    // Broadcast triggered on instance 3 reaches the GET stream held by instance 2.
    let (session, _) = initialize(&topo.instances[0]).await;
    let stream = open_stream(&topo.instances[1], &session).await;
    // The stream is registered once its priming event arrives; give the subscription a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = topo.instances[2].trim_end_matches("/mcp");
    let response = client().post(format!("{admin}/admin/broadcast")).json(&json!({"nonce": "b-1"})).send().await;
    let response = response.expect("broadcast");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["mcp-canary-instance"], "target-3");
    let seen = wait_for_message(stream, Duration::from_secs(5), |m| is_notify(m, "b-1")).await;
    let seen = seen.expect("broadcast from target-3 on the stream held by target-2");
    assert_eq!(seen["params"]["data"]["instance"], "target-3", "{seen}");
    assert_eq!(seen["params"]["data"]["delivered_by"], "target-2", "{seen}");

    // The notify tool with route=session, called on instance 1, reaches the stream on instance 3.
    let stream = open_stream(&topo.instances[2], &session).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = json!({"jsonrpc": "2.0", "id": 50, "method": "tools/call",
        "params": {"name": "notify", "arguments": {"nonce": "s-1", "route": "session"}}});
    let answer = post(&topo.instances[0], Some(&session), &body).await;
    assert_eq!((answer.status, answer.instance.as_str()), (200, "target-1"), "{answer:?}");
    let seen = wait_for_message(stream, Duration::from_secs(5), |m| is_notify(m, "s-1")).await;
    let seen = seen.expect("session notification from target-1 on the stream held by target-3");
    assert_eq!(seen["params"]["data"]["delivered_by"], "target-3", "{seen}");

    // A session created on instance 1 whose notifications/initialized a balancer sent to instance 2
    // still gets broadcasts on a GET stream later opened on instance 1 (its creator registers it
    // at initialize, not only on notifications/initialized).
    let init = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": V2025, "capabilities": {}, "clientInfo": {"name": "dist-test", "version": "0"}},
    });
    let answer = post(&topo.instances[0], None, &init).await;
    let session = answer.session.clone().expect("Mcp-Session-Id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let ack = post(&topo.instances[1], Some(&session), &initialized).await;
    assert_eq!((ack.status, ack.instance.as_str()), (202, "target-2"), "{ack:?}");
    let stream = open_stream(&topo.instances[0], &session).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = topo.instances[2].trim_end_matches("/mcp");
    let response = client().post(format!("{admin}/admin/broadcast")).json(&json!({"nonce": "b-2"})).send().await;
    assert_eq!(response.expect("broadcast").status(), 200);
    let seen = wait_for_message(stream, Duration::from_secs(5), |m| is_notify(m, "b-2")).await;
    let seen = seen.expect("broadcast on the creator's stream of a session initialized elsewhere");
    assert_eq!(seen["params"]["data"]["delivered_by"], "target-1", "{seen}");

    // Each instance reports Redis up.
    for url in &topo.instances {
        let text = client().get(url.replace("/mcp", "/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("mcp_canary_target_redis_up 1\n"), "{text}");
    }
}

#[tokio::test]
async fn without_redis_a_session_is_not_found_on_other_instances() {
    let topo = Topology::up(false);
    let (session, created_on) = initialize(&topo.instances[0]).await;
    assert_eq!(created_on, "target-1");
    let answer = echo(&topo.instances[1], &session, 1).await;
    assert_eq!((answer.status, answer.instance.as_str()), (404, "target-2"), "{answer:?}");
    assert!(answer.body.to_lowercase().contains("session not found"), "{answer:?}");

    // Through the balancer: the requests that land elsewhere fail the same way.
    // Even notifications/initialized may land elsewhere and be lost.
    let (session, created_on, ack) = initialize_unchecked(&topo.balancer).await;
    let mut lost = usize::from(ack.status == 404);
    for id in 1..=6 {
        let answer = echo(&topo.balancer, &session, id).await;
        if answer.instance == created_on {
            assert_eq!(answer.status, 200, "{answer:?}");
        } else {
            assert_eq!(answer.status, 404, "{answer:?}");
            lost += 1;
        }
    }
    assert!(lost > 0, "no request reached another instance");
}
