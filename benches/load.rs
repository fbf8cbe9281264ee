//! Load-generation efficiency: client CPU seconds per 1,000 tool calls against the reference
//! target on loopback, `mcp-canary run load` side by side with `wrk` POSTing the same
//! JSON-RPC `tools/call` (stateless 2026-07-28 request) as the raw-HTTP floor, `oha` POSTing it
//! at the same rate (the floor of a generator on a schedule; optional), and with a load
//! loop on the official TypeScript MCP SDK client (`benches/ts/sdk-load.mjs`: same sessions, same
//! rate, same tool; the SDK from `scripts/install-test-servers.sh`). mcp-canary runs twice a
//! round: as CI runs it (no `--metrics-listen`, no OTLP, so no metrics are recorded) and with
//! `--metrics-listen`, recording every metric a scrape would see.
//!
//! `cargo bench --bench load` (BENCH_LOAD_SECS, default 20; BENCH_LOAD_CLIENTS, default 50;
//! BENCH_LOAD_RPM per client, a comma-separated list of rates measured in turn, default
//! `600,1200`; BENCH_LOAD_ROUNDS, rounds per rate, default 3, the ratios taken between medians;
//! BENCH_BASELINE_BIN, an earlier `mcp-canary` binary measured in every round; BENCH_OHA, the
//! `oha` binary). Client CPU comes from the shell's `times` builtin (user + system
//! of the waited child), so every tool is measured the same way. Each open-model client's line
//! says what share of the schedule it completed: a generator that falls behind its schedule
//! does less work per second than asked, and its cost per call is no longer comparable.

mod support;

use std::process::Command;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn start_target() -> (support::Guard, String) {
    support::spawn(&["target", "--listen", "127.0.0.1:0"], "listening on ")
}

/// Run `script` under sh followed by `times`; returns (stdout, children's user+system seconds).
fn timed(script: &str) -> (String, f64) {
    let out = Command::new("sh").arg("-c").arg(format!("{script}; times")).output().expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let last = text.lines().last().unwrap_or_default();
    let secs: f64 = last
        .split_whitespace()
        .map(|t| {
            let (m, s) = t.trim_end_matches('s').split_once('m').unwrap_or(("0", "0"));
            m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
        })
        .sum();
    (text, secs)
}

/// The stateless 2026-07-28 `tools/call` the raw-HTTP tools POST.
const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"load"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"0"}}}}"#;

const HEADERS: [(&str, &str); 5] = [
    ("Content-Type", "application/json"),
    ("Accept", "application/json, text/event-stream"),
    ("MCP-Protocol-Version", "2026-07-28"),
    ("Mcp-Method", "tools/call"),
    ("Mcp-Name", "echo"),
];

fn wrk_script() -> String {
    let mut lua = String::from("wrk.method = \"POST\"\n");
    for (name, value) in HEADERS {
        lua.push_str(&format!("wrk.headers[\"{name}\"] = \"{value}\"\n"));
    }
    lua.push_str(&format!("wrk.body = '{BODY}'\n"));
    lua
}

/// `oha` POSTing the same request at the same total rate as the load run (open loop, `-q`): the
/// raw-HTTP floor of a generator that also keeps a schedule. Skipped when `oha` (BENCH_OHA, or
/// on PATH) is not installed (`cargo install oha`).
fn oha(url: &str, clients: u64, rpm: u64, secs: u64) -> Option<f64> {
    let bin = std::env::var("BENCH_OHA").unwrap_or_else(|_| "oha".into());
    if Command::new(&bin).arg("--version").output().is_err() {
        println!("oha not installed (cargo install oha): rate-matched raw-HTTP floor skipped");
        return None;
    }
    let rate = clients * rpm / 60;
    let headers: String = HEADERS.iter().map(|(n, v)| format!(" -H '{n}: {v}'")).collect();
    let (out, cpu) = timed(&format!(
        "{bin} -z {secs}s -c {clients} -q {rate} --no-tui --output-format json -m POST{headers} -d '{BODY}' {url}"
    ));
    let json = out.rfind('}').map(|end| &out[..=end]).unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let ok = report["statusCodeDistribution"]["200"].as_f64().unwrap_or(0.0);
    let per_k = per_thousand(cpu, ok);
    println!(
        "oha (raw HTTP floor, open loop at the same {rate}/s): {ok} tools/call answered 200 in {secs}s \
         ({:.1} % of the schedule); client CPU {cpu:.2}s = {per_k:.3} CPU-s per 1,000 calls",
        share(ok, clients, rpm, secs)
    );
    Some(per_k)
}

/// CPU seconds per 1,000 calls (NaN when no call was made).
fn per_thousand(cpu: f64, calls: f64) -> f64 {
    if calls > 0.0 { cpu / calls * 1000.0 } else { f64::NAN }
}

/// Percent of the planned calls (`clients` x `rpm` for `secs`) that `calls` is.
fn share(calls: f64, clients: u64, rpm: u64, secs: u64) -> f64 {
    let planned = (clients * rpm) as f64 * secs as f64 / 60.0;
    if planned > 0.0 { calls / planned * 100.0 } else { f64::NAN }
}

/// The TypeScript SDK loop at the same sessions, rate and duration; prints and returns its cost.
fn ts_sdk(url: &str, clients: u64, rpm: u64, secs: u64) -> Option<f64> {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/npm/sdk");
    if !sdk.join("node_modules/@modelcontextprotocol/sdk/package.json").is_file() {
        println!("TypeScript SDK not installed (scripts/install-test-servers.sh): SDK comparison skipped");
        return None;
    }
    let script = sdk.join("sdk-load.mjs");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/ts/sdk-load.mjs"), &script).unwrap();
    let (out, cpu) = timed(&format!("node {} {url} {clients} {rpm} {secs}", script.display()));
    let Some(r) = out.lines().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) else {
        println!("TypeScript SDK loop printed no result: {out}");
        return None;
    };
    let calls = r["calls"].as_f64().unwrap_or(0.0);
    let per_k = per_thousand(cpu, calls);
    println!(
        "TypeScript SDK client loop: {calls} tools/call ({} errors) in {secs}s, {clients} sessions x {rpm} rpm \
         ({:.1} % of the schedule); client CPU {cpu:.2}s = {per_k:.3} CPU-s per 1,000 calls",
        r["errors"],
        share(calls, clients, rpm, secs)
    );
    Some(per_k)
}

/// What one `run load` is asked for: a rate, a duration, and any further flags.
struct Load<'a> {
    url: &'a str,
    clients: u64,
    rpm: u64,
    secs: u64,
    extra: &'a str,
}

/// One `run load` of `bin`; prints its cost and returns CPU seconds per 1,000 calls.
fn canary(bin: &str, label: &str, load: &Load, dir: &std::path::Path) -> f64 {
    let Load { url, clients, rpm, secs, extra } = *load;
    let report = dir.join("report.json");
    let mix = "fast_tool=1,slow_tool=0,resource_read=0,prompt_get=0,tools_list=0,resources_list=0,prompts_list=0";
    let cmd = format!(
        "RUST_LOG=warn {bin} run load --target {url} --clients {clients} --rpm {rpm} --duration {secs}s --mix {mix} \
         --progress 1h --report {} {extra} >/dev/null",
        report.display()
    );
    let (_, canary_cpu) = timed(&cmd);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let calls = r["total"]["count"].as_f64().unwrap();
    let errors = r["total"]["errors"].as_f64().unwrap();
    let p99 = r["total"]["latency"]["p99_ms"].as_f64().unwrap();
    let canary_per_k = per_thousand(canary_cpu, calls);
    println!(
        "{label} run load: {calls} tools/call ({errors} errors) in {secs}s, {clients} sessions x {rpm} rpm \
         ({:.1} % of the schedule), p99 {p99:.2} ms; client CPU {canary_cpu:.2}s = {canary_per_k:.3} CPU-s per 1,000 calls",
        share(calls, clients, rpm, secs)
    );
    canary_per_k
}

/// The median of the figures collected (NaN when there are none).
fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median cost per 1,000 calls of one client at one rate, with every round's figure.
fn summarise(label: &str, figures: &[f64]) -> f64 {
    let each: Vec<String> = figures.iter().map(|f| format!("{f:.3}")).collect();
    let m = median(figures);
    if !figures.is_empty() {
        println!("  {label}: median {m:.3} CPU-s per 1,000 calls (rounds: {})", each.join(", "));
    }
    m
}

fn main() {
    // `cargo test --benches` passes --bench-less args; keep that pass short.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = if smoke { 2 } else { env_or("BENCH_LOAD_SECS", 20) };
    let clients = env_or("BENCH_LOAD_CLIENTS", if smoke { 5 } else { 50 });
    let rounds = if smoke { 1 } else { env_or("BENCH_LOAD_ROUNDS", 3).max(1) };
    let rates =
        std::env::var("BENCH_LOAD_RPM").unwrap_or_else(|_| if smoke { "1200".into() } else { "600,1200".into() });
    let rates: Vec<u64> = rates.split(',').map(|r| r.trim().parse().expect("BENCH_LOAD_RPM: numbers")).collect();
    let (_target, url) = start_target();
    let dir = std::env::temp_dir().join(format!("mcp-canary-bench-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = std::env::var("BENCH_BASELINE_BIN").ok();
    let mut canary_medians = Vec::new();
    for &rpm in &rates {
        let (mut base, mut ours, mut exported, mut ts, mut floor) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let plain = Load { url: &url, clients, rpm, secs, extra: "" };
        // Metrics on /metrics as a scraped run has them (a run without a listener or OTLP records none).
        let scraped = Load { extra: "--metrics-listen 127.0.0.1:0", ..plain };
        // Rounds interleave the clients, so a slow minute of a shared machine falls on all of them.
        for round in 1..=rounds {
            println!(
                "-- {clients} sessions x {rpm} rpm = {} calls a second, round {round}/{rounds}",
                clients * rpm / 60
            );
            // An earlier build of the binary, measured in the same run for a before/after pair.
            if let Some(bin) = &baseline {
                base.push(canary(bin, "baseline", &plain, &dir));
            }
            let bin = env!("CARGO_BIN_EXE_mcp-canary");
            ours.push(canary(bin, "mcp-canary", &plain, &dir));
            exported.push(canary(bin, "mcp-canary --metrics-listen", &scraped, &dir));
            ts.extend(ts_sdk(&url, clients, rpm, secs));
            floor.extend(oha(&url, clients, rpm, secs));
        }
        println!("== {clients} sessions x {rpm} rpm, medians of {rounds} round(s):");
        let base = summarise("baseline", &base);
        let ours = summarise("mcp-canary", &ours);
        let exported = summarise("mcp-canary --metrics-listen", &exported);
        let ts = summarise("TypeScript SDK", &ts);
        let floor = summarise("oha", &floor);
        if base.is_finite() {
            println!("  ratio mcp-canary / baseline: {:.2}", ours / base);
        }
        if ts.is_finite() {
            println!("  ratio TypeScript SDK / mcp-canary: {:.1}x", ts / ours);
            println!("  ratio TypeScript SDK / mcp-canary --metrics-listen: {:.1}x", ts / exported);
        }
        if floor.is_finite() {
            println!("  ratio mcp-canary / oha: {:.1}x", ours / floor);
        }
        canary_medians.push((rpm, ours));
    }

    let lua = dir.join("tools_call.lua");
    std::fs::write(&lua, wrk_script()).unwrap();
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("wrk not installed (apt-get install wrk): raw-HTTP floor skipped");
        return;
    }
    let (out, wrk_cpu) = timed(&format!("wrk -t1 -c{clients} -d{secs}s -s {} {url}", lua.display()));
    let requests: f64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let non2xx = out.lines().find(|l| l.contains("Non-2xx")).unwrap_or("no non-2xx responses").trim().to_string();
    let wrk_per_k = per_thousand(wrk_cpu, requests);
    println!(
        "wrk (raw HTTP floor, closed loop at full speed): {requests} tools/call in {secs}s ({non2xx}); \
         client CPU {wrk_cpu:.2}s = {wrk_per_k:.3} CPU-s per 1,000 calls"
    );
    for (rpm, ours) in canary_medians {
        println!("ratio mcp-canary at {rpm} rpm / wrk: {:.1}x", ours / wrk_per_k);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
