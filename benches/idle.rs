//! Daemon cost, measured on real processes: the reference target and `mcp-canary serve`, both
//! release builds, on loopback.
//!
//! - idle cost: 20 targets at 15 s intervals; CPU share of one core and peak resident memory
//!   of the daemon over the measurement window (from /proc);
//! - per-probe cost: 20 targets at 1 s intervals; daemon CPU time per completed probe cycle.
//!
//! `cargo bench --bench idle` runs the full measurement (BENCH_IDLE_SECS, default 120);
//! under `cargo test` it runs a few-second smoke pass so the harness itself stays tested.

mod support;

use std::time::{Duration, Instant};

use support::{echo_target, get, spawn};

/// (user + system CPU seconds, resident bytes) of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = 100.0; // USER_HZ on Linux
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks / hz, rss_kb * 1024)
}

fn probes_completed(base: &str) -> f64 {
    let body = String::from_utf8(get(&format!("{base}/metrics"), None).2).expect("UTF-8 text");
    body.lines()
        .filter(|l| l.starts_with("mcp_canary_probes_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn config(mcp_url: &str, targets: usize, interval: &str) -> String {
    let mut c = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for i in 0..targets {
        c.push_str(&echo_target(&format!("t{i}"), mcp_url, interval, "1s"));
    }
    c
}

struct Measured {
    cpu_share: f64,
    peak_rss: u64,
    cycles: f64,
    cpu_seconds: f64,
}

fn measure(mcp_url: &str, targets: usize, interval: &str, warmup: Duration, window: Duration) -> Measured {
    let dir = std::env::temp_dir().join(format!("mcp-canary-bench-{}-{targets}-{interval}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("canary.toml");
    std::fs::write(&path, config(mcp_url, targets, interval)).unwrap();
    let (daemon, base) = spawn(&["serve", "--config", path.to_str().unwrap()], "mcp-canary listening on ");
    let pid = daemon.0.id();
    std::thread::sleep(warmup);
    let (cpu0, _) = proc_usage(pid);
    let cycles0 = probes_completed(&base);
    let start = Instant::now();
    let mut peak_rss = 0;
    while start.elapsed() < window {
        std::thread::sleep(Duration::from_millis(500));
        peak_rss = peak_rss.max(proc_usage(pid).1);
    }
    let (cpu1, rss) = proc_usage(pid);
    let cycles = probes_completed(&base) - cycles0;
    let elapsed = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Measured { cpu_share: (cpu1 - cpu0) / elapsed, peak_rss: peak_rss.max(rss), cycles, cpu_seconds: cpu1 - cpu0 }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let (window, warmup) = if full {
        (Duration::from_secs(secs), Duration::from_secs(20))
    } else {
        (Duration::from_secs(3), Duration::from_secs(2))
    };
    let (_target, mcp_url) = spawn(&["target", "--listen", "127.0.0.1:0"], "listening on ");

    let idle = measure(&mcp_url, 20, "15s", warmup, window);
    println!(
        "idle: 20 targets at 15s for {:.0}s: daemon CPU {:.3}% of one core, peak RSS {:.1} MB, {} cycles",
        window.as_secs_f64(),
        idle.cpu_share * 100.0,
        idle.peak_rss as f64 / 1e6,
        idle.cycles
    );
    let busy = measure(&mcp_url, 20, "1s", warmup.min(Duration::from_secs(5)), window.min(Duration::from_secs(60)));
    let per_cycle_ms = if busy.cycles > 0.0 { busy.cpu_seconds / busy.cycles * 1e3 } else { f64::NAN };
    println!(
        "per-probe: 20 targets at 1s: {} cycles, daemon CPU {:.3} s, {:.3} ms CPU per default probe cycle, peak RSS {:.1} MB",
        busy.cycles,
        busy.cpu_seconds,
        per_cycle_ms,
        busy.peak_rss as f64 / 1e6
    );
    assert!(busy.cycles > 0.0, "no probe cycle completed: the bench measured nothing");
    if full {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!("goal idle CPU < 1% of one core: {}", verdict(idle.cpu_share < 0.01));
        println!("goal idle RSS < 30 MB: {}", verdict(idle.peak_rss < 30_000_000));
    }
}
