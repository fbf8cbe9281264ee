//! A hostile server cannot grow the daemon's series: label values it provides are bounded (at
//! most 128 characters, no control characters), `mcp_canary_server_info` keeps one series per
//! target however often the server's identity changes, and a tool the probe picked from the
//! server's list (none configured) is labelled `(read-only)`, however the server renames it.
//! `check --json` still shows the picked tool's real name.

use crate::client_support;
use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use client_support::*;
use common::{Scrape, scrape_until, start_daemon};
use serde_json::{Value, json};

const CAP: usize = 128;

/// A 10,000-byte server name with NUL, newline, tab, BEL, a quote, a backslash and an ANSI escape.
fn hostile_name() -> String {
    let mut name = String::from("\u{1b}[31mevil\u{1b}[0m\u{0}\n\t\"quoted\"\\\u{7}");
    let rest = 10_000 - name.len();
    name.push_str(&"é".repeat(rest / 2));
    if rest % 2 == 1 {
        name.push('x');
    }
    assert_eq!(name.len(), 10_000);
    name
}

/// A 2025 server in fresh sessions: every initialize answers a new version (`1.0.N`) and the
/// hostile name; tools/list lists one read-only tool, renamed on every list when `rotate`.
async fn hostile_server(rotate: bool) -> (Scripted, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (inits, lists) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (i, l) = (Arc::clone(&inits), Arc::clone(&lists));
    let server = serve(move |r| {
        let (i, l) = (Arc::clone(&i), Arc::clone(&l));
        async move {
            let id = r.id();
            match r.rpc_method() {
                Some("initialize") => {
                    let n = i.fetch_add(1, Ordering::SeqCst);
                    let init = result(
                        &id,
                        json!({
                            "protocolVersion": "2025-11-25",
                            "capabilities": {"tools": {}},
                            "serverInfo": {"name": hostile_name(), "version": format!("1.0.{n}\u{1b}[2J")}
                        }),
                    );
                    with_session(json_reply(200, init), &format!("s{n}"))
                }
                Some("tools/list") => {
                    let n = l.fetch_add(1, Ordering::SeqCst);
                    let name = if rotate { format!("rot-{n}") } else { "ro".to_string() };
                    let tool = json!({"name": name, "inputSchema": {"type": "object"},
                        "annotations": {"readOnlyHint": true}});
                    json_reply(200, result(&id, json!({"tools": [tool]})))
                }
                Some("tools/call") => {
                    json_reply(200, result(&id, json!({"content": [{"type": "text", "text": "ok"}]})))
                }
                Some("ping") => json_reply(200, result(&id, json!({}))),
                _ => handshake(&r, "s").unwrap_or_else(|| empty(202)),
            }
        }
    })
    .await;
    (server, inits, lists)
}

fn target(name: &str, url: &url::Url) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1s\"\ntimeout = \"1s\"\n\
         protocol = \"2025-11-25\"\nsession = \"fresh\"\n"
    )
}

fn cycles(s: &Scrape, t: &str) -> f64 {
    s.value("mcp_canary_probes_total", &[("target", t)])
}

/// Every label value of every series of target `t` is within the cap and free of control characters.
fn assert_bounded(s: &Scrape, t: &str) {
    let series: Vec<_> = s.samples.iter().filter(|x| x.labels.get("target").map(String::as_str) == Some(t)).collect();
    assert!(!series.is_empty(), "{t}: no series");
    for x in series {
        for (k, v) in &x.labels {
            assert!(v.chars().count() <= CAP, "{t}: {}{{{k}}} is {} characters", x.name, v.chars().count());
            assert!(!v.chars().any(char::is_control), "{t}: {}{{{k}={v:?}}} holds a control character", x.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_server_text_stays_bounded_and_one_info_series_per_target() {
    let (identity, inits, _) = hostile_server(false).await;
    let (rotating, _, lists) = hostile_server(true).await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}{}",
        target("identity", &identity.url),
        target("rotating", &rotating.url)
    );
    let (daemon, _dir, base) = start_daemon("hostile-labels", &config, &[]).await;
    let (s, ok) =
        scrape_until(&base, Duration::from_secs(40), |s| ["identity", "rotating"].iter().all(|t| cycles(s, t) >= 6.0))
            .await;
    assert!(ok, "six cycles per target did not complete:\n{}\n{}", s.text, daemon.log_text());
    assert!(!s.text.contains('\u{1b}') && !s.text.contains('\u{0}'), "a control character reached /metrics");

    for t in ["identity", "rotating"] {
        assert_bounded(&s, t);
        // One info series per target, the latest identity (a cycle may be in flight).
        let info: Vec<_> = s.matching("mcp_canary_server_info", &[("target", t)]).collect();
        assert_eq!(info.len(), 1, "{t}: {} server_info series:\n{}", info.len(), s.text);
        let info = info[0];
        assert_eq!(info.value, 1.0);
        assert_eq!(info.labels["mcp_protocol_version"], "2025-11-25");
        let name = &info.labels["server_name"];
        assert_eq!(name.chars().count(), CAP, "{name:?}");
        assert!(name.starts_with("?[31mevil?[0m???\"quoted\"\\?éé") && name.ends_with('…'), "{name:?}");
        assert!(info.labels["server_version"].starts_with("1.0.") && info.labels["server_version"].ends_with("?[2J"));
    }
    let info = s.matching("mcp_canary_server_info", &[("target", "identity")]).next().unwrap();
    let seen: usize =
        info.labels["server_version"].trim_start_matches("1.0.").trim_end_matches("?[2J").parse().unwrap();
    let connects = inits.load(Ordering::SeqCst);
    assert!(connects >= 6 && seen + 2 >= connects, "version 1.0.{seen} is not the latest of {connects} connects");

    // The auto-picked tool is one label value, however the server renames it.
    let tools: BTreeSet<&str> = s
        .matching(
            "mcp_client_operation_duration_seconds_count",
            &[("target", "rotating"), ("mcp_method_name", "tools/call")],
        )
        .map(|x| x.labels["gen_ai_tool_name"].as_str())
        .collect();
    assert_eq!(tools, BTreeSet::from(["(read-only)"]), "{}", s.text);
    let called: BTreeSet<String> = rotating
        .posts_of("tools/call")
        .iter()
        .filter_map(|r| r.body["params"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(called.len() >= 5 && lists.load(Ordering::SeqCst) >= 5, "the server did not rotate its tool: {called:?}");

    // A series the hostile identity once had is gone for good, not left at 0.
    let (later, _) =
        scrape_until(&base, Duration::from_secs(10), |x| cycles(x, "identity") >= cycles(&s, "identity") + 2.0).await;
    assert_eq!(later.matching("mcp_canary_server_info", &[("target", "identity")]).count(), 1, "{}", later.text);
    assert_eq!(later.matching("mcp_canary_server_info", &[]).filter(|x| x.value == 0.0).count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_shows_the_picked_tools_real_name() {
    let (rotating, _, _) = hostile_server(true).await;
    let out = tokio::process::Command::new(common::bin())
        .args(["check", "--json", "--protocol", "2025-11-25", rotating.url.as_str()])
        .output()
        .await
        .expect("run check");
    let report: Value = serde_json::from_slice(&out.stdout).expect("check --json prints JSON");
    let call = report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["method"] == "tools/call"))
        .unwrap_or_else(|| panic!("no tools/call step: {report}"));
    assert_eq!(call["tool"], "rot-0", "{report}");
    assert_eq!(call["outcome"], "success", "{report}");
}
