//! The notify ramp: at most `connect_concurrency` sessions are in their handshake at once (a
//! scripted server that takes 100 ms to answer `initialize` counts them), and without the bound
//! all of them are.
use crate::client_support;

use client_support::*;
use mcp_canary::profile::Hooks;
use mcp_canary::profile::notify::{NoNotifyObserver, run_notify};
use mcp_canary::profile::params::plan_notify;
use mcp_canary::spec::{Caps, NotifySpec, RunOptions};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SESSIONS: u32 = 8;

/// Most `initialize` requests the server had in hand at once during a notify run.
async fn most_handshakes_at_once(connect_concurrency: u32) -> usize {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (n, m) = (Arc::clone(&now), Arc::clone(&most));
    let server = serve(move |r| {
        let (now, most) = (Arc::clone(&n), Arc::clone(&m));
        async move {
            if r.rpc_method() == Some("initialize") {
                let inside = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(inside, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }
            if r.method == axum::http::Method::GET {
                return sse_then_stall(": open\n\n");
            }
            if let Some(resp) = handshake(&r, "sess") {
                return resp;
            }
            json_reply(200, result(&r.id(), json!({"content": []})))
        }
    })
    .await;
    let spec = NotifySpec { sessions: SESSIONS, batches: 1, broadcasts: 1, connect_concurrency, ..Default::default() };
    let options = RunOptions {
        profile: "notify",
        target: "scripted",
        thresholds: &[],
        abort_on_fail: false,
        timeout: Duration::from_secs(5),
        tick: Duration::from_millis(200),
        caps: Caps { max_sessions: 100, max_rate: 100.0, sessions_name: "s", rate_name: "r", descriptors: u64::MAX },
    };
    let mut run = plan_notify(&spec, &options).expect("valid notify parameters");
    run.settle = Duration::from_millis(100);
    let hooks = Hooks::none();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        run_notify(
            run,
            config(&server.url),
            reqwest::Client::new(),
            Arc::new(NoNotifyObserver),
            hooks,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the run ends");
    let ready = serde_json::to_value(&report).unwrap()["notify"]["sessions_ready"].as_u64();
    assert_eq!(ready, Some(u64::from(SESSIONS)), "every session opened its stream");
    most.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ramp_at_most_connect_concurrency_at_once() {
    let bounded = most_handshakes_at_once(2).await;
    assert!((1..=2).contains(&bounded), "at most 2 handshakes at once, saw {bounded}");
    let unbounded = most_handshakes_at_once(SESSIONS).await;
    assert!(unbounded > 2, "without the bound the handshakes overlap (saw at most {unbounded} at once)");
}
