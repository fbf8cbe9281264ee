//! A hostile neighbour on the probe runtime: does one target whose listings are as large as the
//! daemon accepts delay the other targets' probes enough to breach a latency SLO?
//!
//! Real processes on loopback (release builds): the reference target, a hostile target served by
//! this bench (every `tools/list` page just under the default response cap, 4 MiB, always with a
//! next cursor, so each of its cycles reads and parses pages until the 32 MiB listing budget is
//! spent and the step fails as `body_too_large`), and `mcp-canary serve` with NEIGHBOUR_TARGETS
//! healthy targets on the reference target at NEIGHBOUR_INTERVAL_SECS. Three phases, each a
//! fresh daemon: no hostile target; the hostile target with `probe_threads = 1` (the default);
//! the hostile target with `probe_threads = 2`. In each, after every target's first cycle and a
//! warm-up, the window's `mcp_client_operation_duration_seconds` buckets of the healthy targets
//! give the share of their operations slower than 10, 25, 50 and 100 ms (50 and 100 are the
//! lowest SLO thresholds the shipped rules use), and the hostile target's failed listings prove it was parsed.
//!
//! `cargo bench --bench neighbour` (NEIGHBOUR_TARGETS default 200, NEIGHBOUR_INTERVAL_SECS
//! default 5, NEIGHBOUR_WINDOW_SECS default 30, NEIGHBOUR_WARMUP_SECS default 5,
//! NEIGHBOUR_SHAPE `wide` (default: 1 KB tools) or `dense` (one tool of two-byte numbers),
//! NEIGHBOUR_BIN a daemon from another build); under
//! `cargo test` a smoke pass (10 targets, short windows) keeps it tested.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{echo_target, get, spawn, spawn_bin};

const HOSTILE: &str = "hostile";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A `tools` array of about `bytes` bytes: `wide`, tools with 1 KB descriptions; `dense`, one
/// tool whose schema is two-byte JSON numbers (the costliest shape to parse per byte).
fn tools_page(bytes: usize, dense: bool) -> Vec<u8> {
    if dense {
        let mut out = br#"[{"name":"dense","inputSchema":{"type":"object","enum":[0"#.to_vec();
        while out.len() < bytes {
            out.extend_from_slice(b",0");
        }
        out.extend_from_slice(b"]}}]");
        return out;
    }
    let description = "x".repeat(1000);
    let mut out = b"[".to_vec();
    let mut i = 0;
    while out.len() < bytes {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(r#"{{"name":"tool{i:06}","description":"{description}","inputSchema":{{"type":"object"}}}}"#)
                .as_bytes(),
        );
        i += 1;
    }
    out.push(b']');
    out
}

fn reply(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nmcp-session-id: hostile-session\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// One connection of the hostile target: HTTP/1.1 keep-alive, one request at a time.
fn serve_hostile(mut s: TcpStream, page: &[u8]) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
        buf.drain(..head_end + length);
        let id = body["id"].to_string();
        let out = if head.starts_with("delete") {
            reply("200 OK", b"")
        } else {
            match body["method"].as_str().unwrap_or("") {
                "initialize" => reply(
                    "200 OK",
                    format!(
                        r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-11-25","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"hostile","version":"1"}}}}}}"#
                    )
                    .as_bytes(),
                ),
                m if m.starts_with("notifications/") => b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n".to_vec(),
                "tools/list" => {
                    // A new cursor every page: the listing ends only at the daemon's budget.
                    let next = body["params"]["cursor"].as_str().and_then(|c| c.parse::<u64>().ok()).unwrap_or(0) + 1;
                    let mut result =
                        format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"nextCursor":"{next}","tools":"#).into_bytes();
                    result.extend_from_slice(page);
                    result.extend_from_slice(b"}}");
                    reply("200 OK", &result)
                }
                "ping" => reply("200 OK", format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{}}}}"#).as_bytes()),
                _ => reply(
                    "200 OK",
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":-32601,"message":"no"}}}}"#).as_bytes(),
                ),
            }
        };
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// The hostile target's URL; it serves until the bench exits.
fn start_hostile(page_bytes: usize, dense: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let page = Arc::new(tools_page(page_bytes, dense));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let page = Arc::clone(&page);
            std::thread::spawn(move || serve_hostile(stream, &page));
        }
    });
    format!("http://{addr}/mcp")
}

fn config(healthy_url: &str, hostile_url: Option<&str>, targets: usize, interval: u64, threads: usize) -> String {
    let mut c = format!("[server]\nlisten = \"127.0.0.1:0\"\nprobe_threads = {threads}\n");
    let every = format!("{interval}s");
    let target = |name: &str, url: &str| echo_target(name, url, &every, &every);
    for i in 0..targets {
        c.push_str(&target(&format!("t{i}"), healthy_url));
    }
    if let Some(url) = hostile_url {
        c.push_str(&target(HOSTILE, url));
    }
    c
}

/// The daemon's `/metrics` as text.
fn metrics(base: &str) -> String {
    String::from_utf8(get(&format!("{base}/metrics"), None).2).expect("UTF-8 text")
}

/// Sum of the samples of `name` whose labels satisfy `keep`.
fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            keep(labels).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum::<f64>()
        + 0.0 // an empty sum is -0
}

/// Healthy targets' operations in the window: count, and how many took over 10, 25, 50 and 100 ms.
fn slow_operations(before: &str, after: &str) -> (f64, [f64; 4]) {
    let bucket = |text: &str, le: &str| {
        let le = format!("le=\"{le}\"");
        sum(text, "mcp_client_operation_duration_seconds_bucket", |l| {
            l.contains(&le) && !l.contains(&format!("target=\"{HOSTILE}\""))
        })
    };
    let delta = |le: &str| bucket(after, le) - bucket(before, le);
    let all = delta("+Inf");
    (all, ["0.01", "0.025", "0.05", "0.1"].map(|le| all - delta(le)))
}

struct Phase {
    name: &'static str,
    operations: f64,
    /// Over 10, 25, 50 and 100 ms.
    over: [f64; 4],
    healthy_failures: f64,
    hostile_failed_lists: f64,
    hostile_too_large: f64,
}

fn run_phase(
    name: &'static str,
    healthy_url: &str,
    hostile_url: Option<&str>,
    targets: usize,
    interval: u64,
    threads: usize,
    (warmup, window): (Duration, Duration),
) -> Phase {
    let dir = std::env::temp_dir().join(format!("mcp-canary-neighbour-{}-{threads}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("canary.toml");
    std::fs::write(&path, config(healthy_url, hostile_url, targets, interval, threads)).unwrap();
    let bin = std::env::var("NEIGHBOUR_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mcp-canary").to_string());
    let (_daemon, base) = spawn_bin(&bin, &["serve", "--config", path.to_str().unwrap()], "mcp-canary listening on ");
    let _ = std::fs::remove_dir_all(&dir);
    let bound = interval + 45;
    let deadline = Instant::now() + Duration::from_secs(bound);
    while !get(&format!("{base}/readyz"), None).0.contains(" 200") {
        assert!(Instant::now() < deadline, "{name}: not every target completed a first cycle within {bound} s");
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(warmup);
    let before = metrics(&base);
    std::thread::sleep(window);
    let after = metrics(&base);
    let (operations, over) = slow_operations(&before, &after);
    let healthy_failures = sum(&after, "mcp_canary_operations_total", |l| {
        l.contains("outcome=\"failure\"") && !l.contains(&format!("target=\"{HOSTILE}\""))
    });
    let hostile_lists = |error: &str| {
        sum(&after, "mcp_canary_operations_total", |l| {
            l.contains(&format!("target=\"{HOSTILE}\""))
                && l.contains("mcp_method_name=\"tools/list\"")
                && l.contains("outcome=\"failure\"")
                && l.contains(error)
        })
    };
    let (hostile_failed_lists, hostile_too_large) = (hostile_lists(""), hostile_lists("error_type=\"body_too_large\""));
    Phase { name, operations, over, healthy_failures, hostile_failed_lists, hostile_too_large }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (targets, interval, warmup, window) = if full {
        (
            env("NEIGHBOUR_TARGETS", 200) as usize,
            env("NEIGHBOUR_INTERVAL_SECS", 5).max(1),
            Duration::from_secs(env("NEIGHBOUR_WARMUP_SECS", 5)),
            Duration::from_secs(env("NEIGHBOUR_WINDOW_SECS", 30)),
        )
    } else {
        (10, 5, Duration::from_secs(1), Duration::from_secs(3))
    };
    // Just under the default response cap (4 MiB), so every page is read and parsed.
    let page = 4 * 1024 * 1024 - 64 * 1024;
    let (_reference, healthy_url) = spawn(&["target", "--listen", "127.0.0.1:0"], "listening on ");
    let dense = std::env::var("NEIGHBOUR_SHAPE").is_ok_and(|s| s == "dense");
    let hostile_url = start_hostile(page, dense);
    let times = (warmup, window);
    let phases = [
        run_phase("no hostile target, probe_threads = 1", &healthy_url, None, targets, interval, 1, times),
        run_phase("hostile target, probe_threads = 1", &healthy_url, Some(&hostile_url), targets, interval, 1, times),
        run_phase("hostile target, probe_threads = 2", &healthy_url, Some(&hostile_url), targets, interval, 2, times),
    ];
    println!(
        "neighbour: {targets} healthy targets at {interval} s, {:.1} MiB {} tools/list pages from the hostile one, {} s windows",
        page as f64 / 1048576.0,
        if dense { "dense" } else { "wide" },
        window.as_secs()
    );
    for p in &phases {
        println!(
            "{}: {} healthy operations, over 10 / 25 / 50 / 100 ms: {} %, {} failed; hostile listings failed: {} ({} as body_too_large)",
            p.name,
            p.operations,
            p.over.map(|n| format!("{:.3}", n / p.operations.max(1.0) * 100.0)).join(" / "),
            p.healthy_failures,
            p.hostile_failed_lists,
            p.hostile_too_large
        );
    }
    for p in &phases {
        assert_eq!(p.healthy_failures, 0.0, "{}: a healthy target's operation failed", p.name);
        assert!(p.operations > 0.0 || !full, "{}: no healthy operation in the window", p.name);
    }
    for p in &phases[1..] {
        // Every target's first cycle is waited for, so the hostile one was read at least once.
        assert!(p.hostile_failed_lists > 0.0, "{}: the hostile listing never failed", p.name);
    }
}
