//! The guide's baseline table on the local topology (`deploy/local/topology.sh`: redis-server,
//! three distributed reference targets, nginx least_conn without stickiness), one instance
//! addressed directly vs the three behind nginx, at a scale this 2-core machine holds:
//!
//! - tool call (`echo`) and resource read p95 of a mixed `run load` (open model) with a ramp;
//! - target memory (sum over the instances) and Redis memory per 1,000 sessions over that ramp
//!   (`--memory-url` per instance, `--redis`);
//! - notification p95 and the largest session count with delivery >= 99 %: `run notify` with a
//!   Redis broadcast (`notify` tool, route broadcast) at growing session counts until delivery
//!   drops below 99 % or the largest step passed.
//!
//! `cargo bench --bench baseline` (BENCH_BASELINE_CLIENTS, default 400; BENCH_BASELINE_STEPS,
//! default "250,500,1000,2000"); under `cargo test` a smoke pass at a few sessions.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Topology {
    dir: PathBuf,
    balancer: String,
    instances: Vec<String>,
    redis: String,
}

impl Topology {
    fn up() -> Topology {
        let dir = std::env::temp_dir().join(format!("mcp-canary-bench-topology-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("bash")
            .arg(script())
            .args(["up", "--detach"])
            .env("TOPOLOGY_DIR", &dir)
            .env("MCP_CANARY_BIN", env!("CARGO_BIN_EXE_mcp-canary"))
            .output()
            .expect("run topology.sh (needs nginx, redis-server, python3)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "topology up failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        let mut t = Topology { dir, balancer: String::new(), instances: Vec::new(), redis: String::new() };
        for line in text.lines() {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["balancer", url] => t.balancer = url.to_string(),
                ["instance", _, url] => t.instances.push(url.to_string()),
                ["redis", url] => t.redis = url.to_string(),
                _ => {}
            }
        }
        assert!(t.instances.len() == 3 && t.redis.starts_with("redis://"), "{text}");
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("down").env("TOPOLOGY_DIR", &self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/local/topology.sh")
}

/// Run `mcp-canary run ...` to its end and return its report (any exit status: a notify step
/// below 99 % exits 99 and is still a measurement).
fn run(dir: &Path, name: &str, args: &[&str]) -> Value {
    let report = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-canary"))
        .arg("run")
        .args(args)
        .args(["--report", report.to_str().unwrap(), "--progress", "10s"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mcp-canary");
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|_| panic!("{name}: no report; {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(&text).unwrap()
}

fn metrics_url(mcp: &str) -> String {
    mcp.trim_end_matches("/mcp").to_string() + "/metrics"
}

struct Row {
    setup: &'static str,
    tool_p95_ms: f64,
    read_p95_ms: f64,
    errors: f64,
    target_mb: Option<f64>,
    redis_mb: Option<f64>,
    notify: Vec<(u64, f64, f64)>,
}

fn measure(t: &Topology, dir: &Path, setup: &'static str, url: &str, memory: &[String], p: &Params) -> Row {
    let clients = p.clients.to_string();
    let mut args = vec![
        "load",
        "--target",
        url,
        "--protocol",
        "2025-11-25",
        "--clients",
        &clients,
        "--rpm",
        "30",
        "--ramp",
        &p.ramp,
        "--duration",
        &p.duration,
        "--redis",
        &t.redis,
        "--mix",
        "fast_tool=1,slow_tool=0,resource_read=1,prompt_get=0,tools_list=0,resources_list=0,prompts_list=0",
    ];
    for m in memory {
        args.extend_from_slice(&["--memory-url", m]);
    }
    let load = run(dir, &format!("load-{}", setup.replace(' ', "-")), &args);
    let p95 = |op: &str| load["operations"][op]["latency"]["p95_ms"].as_f64().unwrap_or(f64::NAN);
    let mb = |v: &Value| v["bytes_per_1000_sessions"].as_f64().map(|b| b / 1e6);
    let mut row = Row {
        setup,
        tool_p95_ms: p95("fast_tool"),
        read_p95_ms: p95("resource_read"),
        errors: load["total"]["error_rate"].as_f64().unwrap_or(f64::NAN),
        target_mb: mb(&load["memory"]["target"]["all"]),
        redis_mb: mb(&load["memory"]["redis"]),
        notify: Vec::new(),
    };
    for &sessions in &p.steps {
        let s = sessions.to_string();
        let args = [
            "notify",
            "--target",
            url,
            "--sessions",
            &s,
            "--batches",
            "3",
            "--broadcasts",
            "5",
            "--batch-interval",
            "1s",
            "--connect-timeout",
            "60s",
            "--trigger-tool",
            "notify",
            "--trigger-args",
            r#"{"nonce":"{nonce}","route":"broadcast"}"#,
        ];
        let r = run(dir, &format!("notify-{}-{sessions}", setup.replace(' ', "-")), &args);
        let n = &r["notify"];
        let (delivery, p95) =
            (n["delivery_ratio"].as_f64().unwrap_or(0.0), n["latency"]["p95_ms"].as_f64().unwrap_or(f64::NAN));
        println!("{setup}: notify {sessions} sessions: delivery {:.2}% p95 {p95:.1} ms", delivery * 100.0);
        row.notify.push((sessions, delivery, p95));
        if delivery < 0.99 {
            break;
        }
    }
    row
}

struct Params {
    clients: u32,
    ramp: String,
    duration: String,
    steps: Vec<u64>,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str| std::env::var(k).ok();
    let params = if full {
        Params {
            clients: env("BENCH_BASELINE_CLIENTS").and_then(|v| v.parse().ok()).unwrap_or(400),
            ramp: "20s".into(),
            duration: "30s".into(),
            steps: env("BENCH_BASELINE_STEPS")
                .unwrap_or_else(|| "250,500,1000,2000".into())
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
        }
    } else {
        Params { clients: 6, ramp: "2s".into(), duration: "3s".into(), steps: vec![4] }
    };
    let topology = Topology::up();
    let dir = topology.dir.join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let one = measure(
        &topology,
        &dir,
        "one instance",
        &topology.instances[0].clone(),
        &[metrics_url(&topology.instances[0])],
        &params,
    );
    let named: Vec<String> =
        topology.instances.iter().enumerate().map(|(i, u)| format!("target-{}={}", i + 1, metrics_url(u))).collect();
    let three = measure(&topology, &dir, "three behind nginx", &topology.balancer.clone(), &named, &params);

    println!(
        "\n| setup | tool call p95 | resource read p95 | load errors | target MB / 1,000 sessions | Redis MB / 1,000 sessions | notification p95 (sessions) | largest session count with delivery >= 99 % |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in [&one, &three] {
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into());
        let passing: Vec<&(u64, f64, f64)> = r.notify.iter().filter(|(_, d, _)| *d >= 0.99).collect();
        let largest = passing.last().map(|(s, _, _)| s.to_string()).unwrap_or_else(|| "none".into());
        let notify_p95 = passing.last().map(|(s, _, p)| format!("{p:.1} ms ({s})")).unwrap_or_else(|| "n/a".into());
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.3} % | {} | {} | {} | {} |",
            r.setup,
            r.tool_p95_ms,
            r.read_p95_ms,
            r.errors * 100.0,
            fmt(r.target_mb),
            fmt(r.redis_mb),
            notify_p95,
            largest
        );
    }
    for r in [&one, &three] {
        assert!(r.tool_p95_ms.is_finite() && r.read_p95_ms.is_finite(), "{}: no latency measured", r.setup);
        assert!(!r.notify.is_empty(), "{}: no notify step ran", r.setup);
    }
}
