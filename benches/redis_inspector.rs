//! The Redis inspector's own cost at its default interval (15 s, default key patterns, SCAN
//! budget 10,000) against a real `redis-server` holding 10,000 session keys:
//!
//! - daemon CPU with the inspector minus the same daemon config without it (one target probed
//!   every 15 s in both), as a share of one core, from /proc;
//! - Redis PING round trips measured by the bench (one connection, one PING every 5 ms) while
//!   the daemon runs without the inspector and then with it: p50, p99, max.
//!
//! `cargo bench --bench redis_inspector` (BENCH_REDIS_SECS, default 120 per phase); under
//! `cargo test` a few-second smoke pass keeps the harness tested (its figures mean nothing).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Guard, spawn};

/// (user + system CPU seconds) of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_redis(port: u16) -> Guard {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server (apt-get install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Guard(child)
}

/// Write `n` session keys with one pipelined burst of SET commands.
fn populate(port: u16, n: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = String::new();
    for i in 0..n {
        let key = format!("mcp:session:bench-{i:06}");
        let value = r#"{"protocol":"2025-11-25","initialized":true}"#;
        out.push_str(&format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len()));
    }
    s.write_all(out.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n");
    }
}

/// PING every `gap` for `window`; sorted round trips in microseconds.
fn ping_loop(port: u16, window: Duration, gap: Duration) -> Vec<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 16];
    let mut rtts = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        let t = Instant::now();
        s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut got = 0;
        while got < 7 {
            got += s.read(&mut buf[got..]).unwrap();
        }
        rtts.push(t.elapsed().as_micros() as u64);
        std::thread::sleep(gap);
    }
    rtts.sort_unstable();
    rtts
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn config(mcp_url: &str, redis: Option<u16>) -> String {
    let mut c = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[[targets]]\nname = \"t\"\nurl = \"{mcp_url}\"\ninterval = \"15s\"\n"
    );
    if let Some(port) = redis {
        c.push_str(&format!("redis = \"redis://127.0.0.1:{port}/0\"\n"));
    }
    c
}

struct Phase {
    cpu_share: f64,
    pings: Vec<u64>,
}

fn phase(mcp_url: &str, port: u16, inspect: bool, warmup: Duration, window: Duration) -> Phase {
    let dir = std::env::temp_dir().join(format!("mcp-canary-bench-redis-{}-{inspect}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("canary.toml");
    std::fs::write(&path, config(mcp_url, inspect.then_some(port))).unwrap();
    let (daemon, _base) = spawn(&["serve", "--config", path.to_str().unwrap()], "mcp-canary listening on ");
    let pid = daemon.0.id();
    std::thread::sleep(warmup);
    let cpu0 = cpu_seconds(pid);
    let start = Instant::now();
    let pings = ping_loop(port, window, Duration::from_millis(5));
    let cpu_share = (cpu_seconds(pid) - cpu0) / start.elapsed().as_secs_f64();
    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    Phase { cpu_share, pings }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("BENCH_REDIS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let (window, warmup) = if full {
        (Duration::from_secs(secs), Duration::from_secs(5))
    } else {
        (Duration::from_secs(2), Duration::from_secs(1))
    };
    let port = free_port();
    let _redis = start_redis(port);
    populate(port, 10_000);
    let (_target, mcp_url) = spawn(&["target", "--listen", "127.0.0.1:0"], "listening on ");

    let without = phase(&mcp_url, port, false, warmup, window);
    let with = phase(&mcp_url, port, true, warmup, window);
    for (name, p) in [("without inspector", &without), ("with inspector", &with)] {
        println!(
            "{name}: daemon CPU {:.3}% of one core; PING n={} p50 {} us p99 {} us max {} us",
            p.cpu_share * 100.0,
            p.pings.len(),
            pct(&p.pings, 0.5),
            pct(&p.pings, 0.99),
            p.pings.last().unwrap()
        );
    }
    let cost = with.cpu_share - without.cpu_share;
    println!("inspector cost: {:.3}% of one core at the default 15 s interval", cost * 100.0);
    assert!(!with.pings.is_empty() && !without.pings.is_empty(), "no PING measured");
    if full {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!("goal inspector CPU < 1% of one core: {}", verdict(cost < 0.01));
    }
}
