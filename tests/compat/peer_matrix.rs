//! The peer matrix (issue 15, section 2) beyond `check`: the real binary's `serve`, `run load`,
//! `run matrix`, `run longevity` and `run chaos` against every independent MCP server of
//! tests/common/peers.rs, each verdict asserted per peer and compared with the committed
//! docs/compatibility.md (tests/common/compat.rs), so the doc cannot go stale.
//!
//! Short runs (2-7 s, 2 sessions): the whole matrix takes well under a minute on 2 cores.

use crate::common;

use std::time::Duration;

use common::compat::{Column, assert_cell};
use common::peers::{Peer, PeerServer, start};
use common::{Scrape, scrape_until, start_daemon};
use serde_json::{Value, json};

/// What a load mix may call on a peer: a tool that always succeeds quickly, a resource and a
/// prompt the peer serves (tests/peers/*; the everything server's own).
struct Workload {
    fast_tool: &'static str,
    fast_args: Value,
    resource: &'static str,
    prompt: &'static str,
}

fn workload(peer: Peer) -> Workload {
    match peer {
        Peer::Everything => Workload {
            fast_tool: "echo",
            fast_args: json!({"message": "load"}),
            resource: "demo://resource/static/document/architecture.md",
            prompt: "simple-prompt",
        },
        _ => Workload {
            fast_tool: "slow",
            fast_args: json!({"ms": 0}),
            resource: "peer://static/hello",
            prompt: "greeting",
        },
    }
}

/// The workload flags of `run load` / `run longevity`.
fn workload_args(peer: Peer) -> Vec<String> {
    let w = workload(peer);
    let args = ["--fast-tool", w.fast_tool, "--fast-tool-args", &w.fast_args.to_string(), "--resource", w.resource];
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["--prompt", w.prompt, "--prompt-args", "{}"].map(String::from));
    args
}

/// Run `mcp-canary run PROFILE --target URL ARGS --report FILE` (bounded by `within`); returns
/// the exit code, the JSON report and the output for assertion messages.
async fn run(server: &PeerServer, profile: &str, args: &[String], within: Duration) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = tokio::process::Command::new(common::bin())
        .args(["run", profile, "--target", &server.url, "--name", server.peer.name()])
        .args(args)
        .arg("--report")
        .arg(&report)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(within, out)
        .await
        .unwrap_or_else(|_| panic!("{}: run {profile} did not end within {within:?}", server.peer.name()))
        .expect("run mcp-canary");
    let text = format!(
        "{}\n{}\npeer log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let r = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("{}: run {profile} wrote no report:\n{text}", server.peer.name()));
    (out.status.code(), r, text)
}

/// `run load`, 3 s, 2 sessions at 600 rpm, a mix of only what the peer has: passes with no
/// error, every operation of the mix issued, percentiles present.
async fn load(server: &PeerServer) {
    let peer = server.peer;
    // About 60 requests, each operation a quarter of them (the mix is drawn at random): each runs.
    let mut args: Vec<String> =
        ["--clients", "2", "--duration", "3s", "--rpm", "600", "--progress", "10s"].map(String::from).to_vec();
    args.extend(["--mix".into(), "fast_tool=1,tools_list=1,resource_read=1,prompt_get=1".into()]);
    args.extend(workload_args(peer));
    let (code, r, out) = run(server, "load", &args, Duration::from_secs(30)).await;
    let name = peer.name();
    assert_eq!(code, Some(0), "{name}: {out}");
    assert_eq!(r["verdict"], "pass", "{name}: {r:#}");
    assert_eq!((r["total"]["errors"].as_u64(), r["total"]["error_rate"].as_f64()), (Some(0), Some(0.0)), "{name}");
    assert!(r["total"]["count"].as_u64().unwrap() >= 40, "{name}: {r:#}");
    assert!(r["total"]["latency"]["p95_ms"].as_f64().unwrap() > 0.0, "{name}: {r:#}");
    assert_eq!(r["connect"]["errors"], 0, "{name}: {r:#}");
    assert_eq!(r["thresholds"][0]["status"], "pass", "{name}: {r:#}");
    for op in ["fast_tool", "tools_list", "resource_read", "prompt_get"] {
        let o = &r["operations"][op];
        assert!(o["count"].as_u64().unwrap_or(0) >= 1, "{name}: {op} never ran: {r:#}");
        assert_eq!(o["errors"], 0, "{name}: {op}: {o}");
    }
    assert_cell(peer, Column::Load, "pass");
}

/// `run matrix`, the peer's quick tool in every cell: no cell broken; exactly the cells the
/// peer supports, by result.
async fn matrix(server: &PeerServer) {
    let peer = server.peer;
    let w = workload(peer);
    let args = ["--tool", w.fast_tool, "--tool-args", &w.fast_args.to_string(), "--settle", "300ms"];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, r, out) = run(server, "matrix", &args, Duration::from_secs(90)).await;
    let name = peer.name();
    assert_eq!(code, Some(0), "{name}: {out}");
    assert_eq!(r["verdict"], "pass", "{name}: {r:#}");
    let supported: Vec<&str> = r["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["supported"] == true)
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    let cells = r["cells"].as_array().unwrap();
    let result = |c: &Value| c["result"].as_str().unwrap().to_string();
    let summary: Vec<String> = ["works", "not_exercised", "degraded", "broken"]
        .iter()
        .filter(|k| r["summary"][**k].as_u64().unwrap_or(0) > 0)
        .map(|k| format!("{} {k}", r["summary"][*k]))
        .collect();
    assert_eq!(r["summary"]["broken"], 0, "{name}: {r:#}");
    for c in cells {
        let (mode, version) = (c["response_mode"].as_str().unwrap(), c["protocol_version"].as_str().unwrap());
        // The core features work in every cell that connects.
        let connects = mode == "sse" || (peer, version) == (Peer::McpUse, "2026-07-28");
        if connects {
            for f in ["connect", "tools", "resources", "prompts"] {
                let k = c["checks"].as_array().unwrap().iter().find(|k| k["feature"] == f);
                assert!(k.is_some_and(|k| k["result"] == "works"), "{name}: {f} in {c:#}");
            }
            assert!(c["server_requests"].as_array().unwrap().iter().all(|s| s["declared"] == true), "{name}: {c:#}");
        }
        let expected = match (peer, connects, c["capabilities"].as_str().unwrap()) {
            // Every peer but mcp-use in 2026-07-28 (stateless, it answers JSON to a JSON-only
            // client) insists on an Accept of both JSON and SSE: an explicit 406.
            (_, false, _) => "degraded",
            (_, true, "none") | (Peer::Everything, true, _) => "works",
            // No trigger tool for roots, sampling or elicitation, and no such request: nothing
            // shows the declared capability works.
            (_, true, _) => "not_exercised",
        };
        assert_eq!(result(c), expected, "{name}: {c:#}");
        if result(c) == "degraded" {
            assert!(c["checks"][0]["detail"].as_str().unwrap().starts_with("HTTP 406"), "{name}: {c:#}");
        }
        if result(c) == "not_exercised" {
            let k = c["checks"].as_array().unwrap().iter().filter(|k| k["result"] == "not_exercised");
            assert!(k.clone().count() >= 1, "{name}: {c:#}");
            assert!(k.into_iter().all(|k| k["detail"].as_str().unwrap().contains("no trigger tool listed")), "{c:#}");
        }
        // The everything server asks for what the profile declares; our peers' servers have no
        // trigger tools, so they never do.
        let requests: Vec<&str> =
            c["server_requests"].as_array().unwrap().iter().map(|s| s["method"].as_str().unwrap()).collect();
        if peer != Peer::Everything || mode == "json_only" {
            assert!(requests.is_empty(), "{name}: {c:#}");
        } else {
            assert_eq!(requests.is_empty(), c["capabilities"] == "none", "{name}: {c:#}");
        }
    }
    let want: &[&str] = match peer {
        Peer::PythonSdk2 | Peer::McpUse | Peer::Rmcp => &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
        Peer::PythonSdk1 | Peer::Everything => &["2025-11-25", "2025-06-18", "2025-03-26"],
    };
    assert_eq!(supported, want, "{name}: {r:#}");
    assert_eq!(cells.len(), want.len() * 10, "{name}");
    assert_cell(peer, Column::Matrix, &format!("pass: {}", summary.join(", ")));
}

/// `run longevity`, 3 s, 2 sessions living 1 s each: passes the default `error_rate < 1%` with
/// no error, and sessions churned (ended and replaced; against mcp-use, which issues no session
/// id, counted as sessionless rather than DELETEd).
async fn longevity(server: &PeerServer) {
    let peer = server.peer;
    let mut args: Vec<String> =
        ["--clients", "2", "--duration", "3s", "--rpm", "240", "--session-lifetime", "1s"].map(String::from).to_vec();
    args.extend(["--snapshot-interval", "1s", "--slope-window", "2s", "--progress", "10s"].map(String::from));
    args.extend(["--mix".into(), "fast_tool=3,tools_list=1".into()]);
    args.extend(workload_args(peer));
    let (code, r, out) = run(server, "longevity", &args, Duration::from_secs(30)).await;
    let name = peer.name();
    assert_eq!(code, Some(0), "{name}: {out}");
    assert_eq!(r["verdict"], "pass", "{name}: {r:#}");
    assert_eq!(r["thresholds"][0]["threshold"], "error_rate<1%", "{name}: {r:#}");
    assert_eq!(r["thresholds"][0]["status"], "pass", "{name}: {r:#}");
    assert_eq!(r["total"]["errors"], 0, "{name}: {r:#}");
    let l = &r["longevity"];
    let ended = l["sessions_ended_clean"].as_u64().unwrap() + l["sessions_ended_unclean"].as_u64().unwrap();
    let sessionless = l["sessions_ended_sessionless"].as_u64().unwrap();
    // mcp-use answers the 2025-11-25 handshake without a session id: its ended "sessions" had
    // nothing to DELETE or leave behind, and are not counted as DELETEd.
    if peer == Peer::McpUse {
        assert!(ended == 0 && sessionless >= 2, "{name}: {l:#}");
    } else {
        assert!(ended >= 2 && sessionless == 0, "{name}: sessions did not churn: {l:#}");
    }
    assert!(r["connect"]["count"].as_u64().unwrap() >= 4, "{name}: churned sessions were not replaced: {r:#}");
    assert_eq!(r["connect"]["errors"], 0, "{name}: {r:#}");
    assert_cell(peer, Column::Longevity, "pass");
}

/// `run chaos --scenario proxy-reset` (1 s fault, 3 s recovery), the load mix of what the peer
/// has: the resets land, the run recovers and passes `recovery_time < 30s`. No broadcasts
/// (`--no-notify`): the peers' notifying tools answer on the caller's own stream, not to every
/// session.
async fn chaos(server: &PeerServer) {
    let peer = server.peer;
    let args = ["--allow-chaos", "--scenario", "proxy-reset", "--fault", "1s", "--recovery", "3s", "--warmup", "1s"];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--clients", "2", "--rpm", "120", "--no-notify", "--sustain", "3"].map(String::from));
    args.extend(["--mix".into(), "fast_tool=2,tools_list=1,resource_read=1,prompt_get=1".into()]);
    args.extend(workload_args(peer));
    let (code, r, out) = run(server, "chaos", &args, Duration::from_secs(60)).await;
    let name = peer.name();
    assert_eq!(code, Some(0), "{name}: {out}");
    assert_eq!(r["verdict"], "pass", "{name}: {r:#}");
    assert_eq!(r["baseline"]["requests"]["errors"], 0, "{name}: {r:#}");
    let s = &r["scenarios"][0];
    assert_eq!((s["name"].as_str(), s["injected"].as_bool()), (Some("proxy-reset"), Some(true)), "{name}: {s:#}");
    assert_eq!(s["recovered"], true, "{name}: {s:#}");
    assert!(s["recover_s"].as_f64().is_some_and(|t| t < 3.0), "{name}: {s:#}");
    assert!(s["detect_s"].as_f64().is_some(), "{name}: the resets went unseen: {s:#}");
    assert_eq!(s["recovery"]["requests"]["errors"], 0, "{name}: {s:#}");
    assert_eq!(r["prober"]["stuck_tasks"], 0, "{name}: {r:#}");
    assert_cell(peer, Column::Chaos, "pass");
}

async fn profiles(peer: Peer) {
    let server = start(peer).await;
    load(&server).await;
    matrix(&server).await;
    longevity(&server).await;
    chaos(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_2_profiles() {
    profiles(Peer::PythonSdk2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_1_profiles() {
    profiles(Peer::PythonSdk1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_use_profiles() {
    profiles(Peer::McpUse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_profiles() {
    profiles(Peer::Everything).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_profiles() {
    profiles(Peer::Rmcp).await;
}

#[test]
fn the_compatibility_doc_has_one_row_per_peer() {
    common::compat::assert_rows(&Peer::ALL);
}

/// One `[[targets]]` table probing `url` with the peer's notifying tool as the probed tool and
/// its notification round trip, every second.
fn serve_target(name: &str, peer: Peer, url: &str, protocol: &str) -> String {
    let notify = peer.notify();
    let args = toml::Value::try_from(&notify.tool.args).unwrap().to_string();
    format!(
        r#"
[[targets]]
name = "{name}"
url = "{url}"
interval = "1s"
timeout = "1s"
protocol = "{protocol}"
[targets.probe]
tool = "{tool}"
tool_arguments = {args}
[targets.notification]
tool = "{tool}"
arguments = {args}
method = "{method}"
timeout = "1s"
"#,
        tool = notify.tool.name,
        method = notify.method,
    )
}

/// `serve`: one daemon, two targets per peer (protocol `auto` and pinned `2025-11-25`), each
/// probing the peer's notifying tool with its round trip. After 3 cycles each: probe_success 1,
/// no failed cycle or step, the script's tools, resources and prompts steps succeeded in every
/// cycle, every expected notification received, and `auto` negotiates
/// 2026-07-28 where the peer speaks it (Python SDK 2.x, mcp-use, rmcp), 2025-11-25 elsewhere. The
/// peers that speak only the 2025 revisions get a third target pinned to 2026-07-28: every cycle
/// fails on a 400 to `server/discover` (labelled so, not `initialize`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_probes_every_peer_in_both_eras() {
    let servers = futures::future::join_all(Peer::ALL.map(start)).await;
    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    let speaks_2026 = |p: Peer| matches!(p, Peer::PythonSdk2 | Peer::McpUse | Peer::Rmcp);
    for s in &servers {
        config.push_str(&serve_target(&format!("{}-auto", s.peer.name()), s.peer, &s.url, "auto"));
        config.push_str(&serve_target(&format!("{}-2025", s.peer.name()), s.peer, &s.url, "2025-11-25"));
        if !speaks_2026(s.peer) {
            config.push_str(&serve_target(&format!("{}-2026", s.peer.name()), s.peer, &s.url, "2026-07-28"));
        }
    }
    // /probe too, with a module per pinned revision: its verdict must agree with the daemon's.
    config.push_str(
        "[probe]\nallowed_targets = [\"http://127.0.0.1:*/mcp\"]\n\
         [modules.v2025]\nprotocol = \"2025-11-25\"\n[modules.v2026]\nprotocol = \"2026-07-28\"\n",
    );
    let (daemon, _dir, base) = start_daemon("daemon-peer-matrix", &config, &[]).await;
    let targets: Vec<(Peer, String, &str)> = servers
        .iter()
        .flat_map(|s| {
            [(s.peer, format!("{}-auto", s.peer.name()), "auto"), (s.peer, format!("{}-2025", s.peer.name()), "2025")]
        })
        .collect();
    let refused: Vec<(Peer, String)> =
        servers.iter().filter(|s| !speaks_2026(s.peer)).map(|s| (s.peer, format!("{}-2026", s.peer.name()))).collect();
    let cycles = |s: &Scrape, t: &str| s.value("mcp_canary_probes_total", &[("target", t)]);
    let (s, ok) = scrape_until(&base, Duration::from_secs(40), |s| {
        targets.iter().map(|(_, t, _)| t).chain(refused.iter().map(|(_, t)| t)).all(|t| cycles(s, t) >= 3.0)
    })
    .await;
    assert!(ok, "three cycles per target did not complete:\n{}\n{}", s.text, daemon.log_text());

    for (peer, t, era) in &targets {
        let t = t.as_str();
        let server = servers.iter().find(|s| s.peer == *peer).unwrap();
        let why = || format!("{t}:\n{}\npeer log:\n{}", daemon.log_text(), server.log_text());
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", t)]), 1.0, "{}", why());
        assert_eq!(s.value("mcp_canary_probes_total", &[("target", t), ("outcome", "failure")]), 0.0, "{}", why());
        let step_failures = s.value("mcp_canary_operations_total", &[("target", t), ("outcome", "failure")]);
        assert_eq!(step_failures, 0.0, "{}\n{}", why(), s.text);
        for method in ["tools/list", "tools/call", "resources/list", "resources/read", "prompts/list", "prompts/get"] {
            let ok = s.value(
                "mcp_canary_operations_total",
                &[("target", t), ("mcp_method_name", method), ("outcome", "success")],
            );
            assert!(ok >= 3.0, "{t}: {method} succeeded {ok} times\n{}", s.text);
        }
        let expected = s.value("mcp_canary_notifications_expected_total", &[("target", t)]);
        let received = s.value("mcp_canary_notifications_received_total", &[("target", t)]);
        assert!(expected >= 3.0 && received == expected, "{t}: {received} of {expected} notifications\n{}", s.text);
        let info = s
            .matching("mcp_canary_server_info", &[("target", t)])
            .find(|x| x.value == 1.0)
            .unwrap_or_else(|| panic!("{t}: no server info\n{}", s.text));
        let negotiated = info.labels["mcp_protocol_version"].as_str();
        let want = if *era == "auto" && speaks_2026(*peer) { "2026-07-28" } else { "2025-11-25" };
        assert_eq!(negotiated, want, "{t}: {:?}", info.labels);
        match *era {
            "auto" if speaks_2026(*peer) => assert_cell(*peer, Column::Serve2026, "pass"),
            "auto" => {}
            _ => assert_cell(*peer, Column::Serve2025, "pass"),
        }
    }
    for (peer, t) in &refused {
        let t = t.as_str();
        let why = || format!("{t}:\n{}\n{}", s.text, daemon.log_text());
        assert_eq!(s.value("mcp_canary_probe_success", &[("target", t)]), 0.0, "{}", why());
        let total = cycles(&s, t);
        assert_eq!(s.value("mcp_canary_probes_total", &[("target", t), ("outcome", "failure")]), total, "{}", why());
        let discover = [("target", t), ("mcp_method_name", "server/discover"), ("outcome", "failure")];
        assert_eq!(
            s.value(
                "mcp_canary_operations_total",
                &[discover[0], discover[1], discover[2], ("error_type", "http_4xx")]
            ),
            total,
            "{}",
            why()
        );
        assert!(
            s.sum("mcp_canary_operations_total", &[("target", t), ("mcp_method_name", "initialize")]).is_none(),
            "{}",
            why()
        );
        assert_cell(*peer, Column::Serve2026, "refused: HTTP 400 to server/discover (2025 revisions only)");
    }

    // `/probe` (one cycle per request, the default module's script): every peer passes in `auto`
    // and in 2025-11-25; a peer that speaks only the 2025 revisions fails 2026-07-28 with http_4xx.
    for server in &servers {
        let target: String = url::form_urlencoded::byte_serialize(server.url.as_bytes()).collect();
        for module in ["default", "v2025", "v2026"] {
            let r = reqwest::get(format!("{base}/probe?target={target}&module={module}")).await.expect("GET /probe");
            assert_eq!(r.status().as_u16(), 200, "{} {module}", server.peer.name());
            let answer = Scrape::parse(&r.text().await.unwrap());
            let why = || {
                format!("{} module {module}:\n{}\npeer log:\n{}", server.peer.name(), answer.text, server.log_text())
            };
            if module == "v2026" && !speaks_2026(server.peer) {
                assert_eq!(answer.value("probe_success", &[]), 0.0, "{}", why());
                assert_eq!(answer.sum("probe_error_info", &[("error_type", "http_4xx")]), Some(1.0), "{}", why());
            } else {
                assert_eq!(answer.value("probe_success", &[]), 1.0, "{}", why());
                assert_eq!(answer.sum("probe_error_info", &[]), None, "{}", why());
            }
        }
    }
}
