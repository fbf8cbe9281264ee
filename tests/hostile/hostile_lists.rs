//! Hostile list answers cannot exhaust the daemon's memory (issue 16, item 1). Against one
//! daemon, at the same time:
//!
//! - `many`: 50,000 tools over 100 pages of 500 (6.5 MB of JSON): listed whole, the tool count
//!   is the true 50,000 although only the first `MAX_KEPT_ITEMS` are kept;
//! - `bomb`: a page bomb, 100 pages of nearly the default response cap (4 MiB) each: refused
//!   as `body_too_large` once the listing budget (32 MiB) is spent;
//! - `huge`: a 100 MB tools/list body: `body_too_large` at the response cap;
//! - `dense`: one page just under the cap holding one tool whose schema is 2 million JSON
//!   numbers (over 64 MB as a `serde_json::Value`): listed, counted, not kept;
//! - 20 normal targets, all healthy.
//!
//! The daemon stays alive, classifies each, and its peak RSS (VmHWM) stays under
//! `RSS_BOUND_MB`, run as shipped (the daemon sets glibc's mmap threshold itself:
//! `process::return_freed_bodies_to_the_system`). Before the bounded listing (and with the former
//! 8 MiB cap) the same run peaked at 1,618 MB. The peak of anonymous memory (RssAnon, sampled)
//! is printed too. The debug binary `cargo test` builds maps about 38 MB of code that a release
//! build does not (and more with every dependency), so against it the bound applies to the peak
//! less its file-backed pages (RssFile: code); against the release build
//! (`TEST_MCP_CANARY_BIN`, as `scripts/test.sh` runs it) to the whole peak.

use crate::client_support;
use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use client_support::*;
use common::{Scrape, scrape_until, start_daemon};
use serde_json::{Value, json};

/// The documented bound on the daemon's peak RSS with these hostile targets and 20 normal ones
/// (README, "Response and list limits").
const RSS_BOUND_MB: u64 = 64;
/// The default response cap (`max_response_bytes`).
const CAP: usize = 4 * 1024 * 1024;
const NORMAL: usize = 20;

/// A JSON-RPC response to `id` whose result is `parts` concatenated, streamed without copying them.
fn streamed(id: &Value, parts: Vec<Bytes>) -> Response {
    let mut chunks = vec![Bytes::from(format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":"))];
    chunks.extend(parts);
    chunks.push(Bytes::from_static(b"}"));
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    raw_reply(200, "application/json", Body::from_stream(stream))
}

fn cursor_of(r: &Received) -> usize {
    r.body["params"]["cursor"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A 2025 server answering tools/list with `list`, the handshake, ping and empty other lists.
async fn server(list: impl Fn(&Value, usize) -> Response + Send + Sync + 'static) -> Scripted {
    let list = std::sync::Arc::new(list);
    serve(move |r| {
        let list = std::sync::Arc::clone(&list);
        async move {
            let id = r.id();
            match r.rpc_method() {
                Some("tools/list") => list(&id, cursor_of(&r)),
                Some("resources/list") => json_reply(200, result(&id, json!({"resources": []}))),
                Some("prompts/list") => json_reply(200, result(&id, json!({"prompts": []}))),
                Some("tools/call") => {
                    json_reply(200, result(&id, json!({"content": [{"type": "text", "text": "ok"}]})))
                }
                Some("ping") => json_reply(200, result(&id, json!({}))),
                _ => handshake(&r, "s").unwrap_or_else(|| empty(202)),
            }
        }
    })
    .await
}

/// 50,000 tools, 500 a page.
async fn many() -> Scripted {
    let pages: Vec<Bytes> = (0..100)
        .map(|p| {
            let tools: Vec<Value> = (p * 500..(p + 1) * 500)
                .map(|i| {
                    json!({"name": format!("tool-{i}"), "description": format!("Tool number {i} of many."),
                           "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}})
                })
                .collect();
            Bytes::from(serde_json::to_vec(&tools).unwrap())
        })
        .collect();
    server(move |id, p| {
        let page = pages[p.min(99)].clone();
        let next = if p < 99 { format!(",\"nextCursor\":\"{}\"}}", p + 1) } else { "}".into() };
        streamed(id, vec![Bytes::from_static(b"{\"tools\":"), page, Bytes::from(next)])
    })
    .await
}

/// 100 pages of 1,000 tools with 4,000-byte descriptions each (about 4,000,000 bytes a page).
async fn bomb() -> Scripted {
    let description = "d".repeat(3_950);
    let tools: Vec<Value> = (0..1_000)
        .map(|i| json!({"name": format!("t{i}"), "description": description, "inputSchema": {"type": "object"}}))
        .collect();
    let page = Bytes::from(serde_json::to_vec(&tools).unwrap());
    assert!(page.len() < CAP - 1024 && page.len() > CAP * 9 / 10, "{}", page.len());
    server(move |id, p| {
        let next = if p < 99 { format!(",\"nextCursor\":\"{}\"}}", p + 1) } else { "}".into() };
        streamed(id, vec![Bytes::from_static(b"{\"tools\":"), page.clone(), Bytes::from(next)])
    })
    .await
}

/// A 100 MB tools/list body (1,600 chunks of 64 KiB of tools), never fully read.
async fn huge() -> Scripted {
    let tool = json!({"name": "x", "description": "y".repeat(200), "inputSchema": {"type": "object"}}).to_string();
    let mut chunk = String::new();
    while chunk.len() < 64 * 1024 {
        chunk.push_str(&tool);
        chunk.push(',');
    }
    let chunk = Bytes::from(chunk);
    server(move |id, _| {
        let mut parts = vec![Bytes::from_static(b"{\"tools\":[")];
        parts.extend(std::iter::repeat_n(chunk.clone(), 1_600));
        parts.push(Bytes::from(tool.clone() + "]}"));
        streamed(id, parts)
    })
    .await
}

/// One page just under the cap: one tool whose schema enumerates 2 million zeros.
async fn dense() -> Scripted {
    let zeros = "0,".repeat(2_000_000);
    let page = Bytes::from(format!(
        "{{\"tools\":[{{\"name\":\"dense\",\"inputSchema\":{{\"type\":\"object\",\"enum\":[{zeros}0]}}}}]}}"
    ));
    assert!(page.len() < CAP - 1024);
    server(move |id, _| streamed(id, vec![page.clone()])).await
}

async fn normal() -> Scripted {
    server(|id, _| {
        let tools = json!([
            {"name": "status", "description": "Health", "inputSchema": {"type": "object"},
             "annotations": {"readOnlyHint": true}},
            {"name": "search", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}
        ]);
        json_reply(200, result(id, json!({"tools": tools})))
    })
    .await
}

fn target(name: &str, url: &str, interval: &str, timeout: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n\
         protocol = \"2025-11-25\"\nsession = \"fresh\"\n"
    )
}

fn probes(s: &Scrape, t: &str) -> f64 {
    s.value("mcp_canary_probes_total", &[("target", t)])
}

fn list_failures(s: &Scrape, t: &str, error_type: &str) -> f64 {
    s.value(
        "mcp_canary_operations_total",
        &[("target", t), ("mcp_method_name", "tools/list"), ("outcome", "failure"), ("error_type", error_type)],
    )
}

/// A `Name:   N kB` field of /proc/PID/status, in kB (0 when absent).
fn kb_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// (VmHWM, VmRSS) of a process in MB.
fn rss_mb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    (kb_field(&status, "VmHWM:") / 1024, kb_field(&status, "VmRSS:") / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_lists_leave_the_daemon_small_and_every_target_classified() {
    let (many, bomb, huge, dense, normal) = (many().await, bomb().await, huge().await, dense().await, normal().await);
    // HOSTILE_LISTS_ONLY=many,bomb: only these hostile targets (to measure one's cost alone);
    // the assertions on the others are then skipped.
    let only = std::env::var("HOSTILE_LISTS_ONLY").ok();
    let on = |t: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == t));
    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for (name, s) in [("many", &many), ("bomb", &bomb), ("huge", &huge), ("dense", &dense)] {
        if on(name) {
            config.push_str(&target(name, s.url.as_str(), "5s", "5s"));
        }
    }
    for i in 0..NORMAL {
        config.push_str(&target(&format!("normal-{i}"), &format!("{}?n={i}", normal.url), "1s", "1s"));
    }
    let (mut daemon, _dir, base) = start_daemon("hostile-lists", &config, &[]).await;
    let pid = daemon.child.id().expect("daemon pid");
    let anon_peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = std::sync::Arc::clone(&anon_peak);
        tokio::spawn(async move {
            for _ in 0..3_000 {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                peak.fetch_max(kb_field(&status, "RssAnon:") / 1024, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let hostile: Vec<&str> = ["many", "bomb", "huge", "dense"].into_iter().filter(|t| on(t)).collect();
    let (s, ok) = scrape_until(&base, Duration::from_secs(150), |s| {
        hostile.iter().all(|t| probes(s, t) >= 3.0) && (0..NORMAL).all(|i| probes(s, &format!("normal-{i}")) >= 3.0)
    })
    .await;
    let (hwm, rss) = rss_mb(pid);
    sampler.abort();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let parts: Vec<&str> = status.lines().filter(|l| l.starts_with("Rss")).map(str::trim).collect();
    let anon = anon_peak.load(std::sync::atomic::Ordering::Relaxed);
    for t in &hostile {
        let f = [("target", *t), ("mcp_method_name", "tools/list")];
        let sum = s.sum("mcp_client_operation_duration_seconds_sum", &f).unwrap_or(0.0);
        let count = s.sum("mcp_client_operation_duration_seconds_count", &f).unwrap_or(0.0);
        eprintln!("{t}: {count} listings, {:.2} s each on average", sum / count.max(1.0));
    }
    eprintln!("daemon peak RSS (VmHWM) {hwm} MB, sampled peak RssAnon {anon} MB; now {rss} MB ({})", parts.join(", "));
    assert!(ok, "three cycles per target did not complete:\n{}\n{}", s.text, daemon.log_text());
    assert!(daemon.child.try_wait().expect("poll daemon").is_none(), "the daemon died:\n{}", daemon.log_text());
    assert!(!daemon.log_text().contains("panicked"), "{}", daemon.log_text());

    let items = |t: &str| s.value("mcp_canary_server_items", &[("target", t), ("kind", "tools")]);
    if on("many") {
        assert_eq!(items("many"), 50_000.0, "the true count, not the kept inventory:\n{}", s.text);
    }
    if on("dense") {
        assert_eq!(items("dense"), 1.0, "{}", s.text);
    }
    for t in ["many", "dense"].into_iter().filter(|t| on(t)) {
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", t)]), 1.0, "{t}:\n{}", s.text);
    }
    for t in ["bomb", "huge"].into_iter().filter(|t| on(t)) {
        assert!(list_failures(&s, t, "body_too_large") >= 3.0, "{t}: no body_too_large:\n{}", s.text);
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", t)]), 0.0, "{t}");
    }
    // The bomb is refused once the budget is spent: 8 pages of about 4,000,000 bytes fit in 32 MiB.
    let pages = bomb.posts_of("tools/list").len() as f64;
    assert!(pages <= 9.0 * probes(&s, "bomb") + 9.0, "{pages} bomb pages for {} cycles", probes(&s, "bomb"));
    for i in 0..NORMAL {
        let t = format!("normal-{i}");
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", &t)]), 1.0, "{t}:\n{}", s.text);
    }
    let debug_daemon = cfg!(debug_assertions) && std::env::var_os("TEST_MCP_CANARY_BIN").is_none();
    if debug_daemon {
        let own = hwm.saturating_sub(kb_field(&status, "RssFile:") / 1024);
        assert!(own < RSS_BOUND_MB, "debug daemon peak RSS less its code {own} MB is over the {RSS_BOUND_MB} MB bound");
    } else {
        assert!(hwm < RSS_BOUND_MB, "daemon peak RSS {hwm} MB is over the {RSS_BOUND_MB} MB bound");
    }
    let _ = daemon.terminate(Duration::from_secs(20)).await;
}
