//! Scale: N concurrent sessions holding open GET streams in one `mcp-canary run notify` process
//! against the reference target on loopback, held for a duration while broadcasts are triggered
//! in batches; delivery across every session, and the client's resident memory per session and CPU.
//!
//! `cargo bench --bench scale` (BENCH_SCALE_SESSIONS, default 10000; BENCH_SCALE_SECS, default
//! 600; BENCH_SCALE_BATCHES, default 10, the first when every session is ready and the last
//! BENCH_SCALE_SECS later). Client memory per session
//! is (peak RSS of the N-session run - peak RSS of the same run with 1 session) / (N - 1), both
//! read from `/proc` while the runs go, so the runtime, the recorder and the histograms every run
//! has are not charged to the sessions.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident set of `pid` in bytes (VmRSS), `None` once it is gone.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// User + system CPU seconds of `pid` (also readable while it is a zombie).
fn cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// What one `run notify` process did.
struct Run {
    report: serde_json::Value,
    /// Highest client RSS seen.
    peak_rss: u64,
    /// Seconds from the start until every session was ready.
    ramp_secs: f64,
    /// Client CPU spent on the ramp, and in total.
    ramp_cpu: f64,
    total_cpu: f64,
    /// Target RSS when the ramp was done.
    target_rss: u64,
}

/// Run `run notify` with `sessions` sessions and sample it until it exits.
fn notify(
    bin: &str,
    url: &str,
    target_pid: u32,
    sessions: u64,
    batches: u64,
    interval: Duration,
    dir: &std::path::Path,
) -> Run {
    let report = dir.join(format!("notify-{sessions}.json"));
    let mut child = Command::new(bin)
        .args(["run", "notify", "--target", url, "--broadcasts", "1", "--progress", "1s", "--timeout", "60s"])
        .args(["--connect-timeout", "300s", "--settle", "10s", "--results-dir"])
        .arg(dir)
        .arg("--report")
        .arg(&report)
        .args(["--sessions", &sessions.to_string(), "--batches", &batches.to_string()])
        .args(["--batch-interval", &format!("{}ms", interval.as_millis())])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mcp-canary run notify");
    let pid = child.id();
    // The progress lines say how many sessions hold their stream.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let ready =
                line.split_whitespace().find_map(|w| w.strip_prefix("sessions=")).and_then(|n| n.parse::<u64>().ok());
            if let Some(ready) = ready {
                let _ = tx.send(ready);
            }
        }
    });
    let began = Instant::now();
    let (mut ramp_secs, mut ramp_cpu, mut target_rss, mut peak_rss) = (None, 0.0, 0, 0);
    let mut last_cpu = 0.0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(c) = cpu(pid) {
            last_cpu = c;
        }
        if ramp_secs.is_none() && rx.try_iter().any(|ready| ready >= sessions) {
            ramp_secs = Some(began.elapsed().as_secs_f64());
            ramp_cpu = last_cpu;
            target_rss = rss(target_pid).unwrap_or(0);
            println!("  {sessions} sessions ready after {:.1}s", began.elapsed().as_secs_f64());
        }
        peak_rss = peak_rss.max(rss(pid).unwrap_or(0));
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with('Z')) {
            break;
        }
    }
    let total_cpu = cpu(pid).unwrap_or(last_cpu);
    let status = child.wait().expect("wait for run notify");
    reader.join().unwrap();
    assert!(status.success() || status.code() == Some(99), "run notify failed: {status}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    Run { report, peak_rss, ramp_secs: ramp_secs.unwrap_or(f64::NAN), ramp_cpu, total_cpu, target_rss }
}

/// The 1-session and the N-session run of `bin`; prints the figures, returns the notify report.
#[allow(clippy::too_many_arguments)]
fn measure(
    bin: &str,
    url: &str,
    target_pid: u32,
    target_idle: u64,
    sessions: u64,
    secs: u64,
    batches: u64,
    interval: Duration,
    dir: &std::path::Path,
) -> serde_json::Value {
    let one = notify(bin, url, target_pid, 1, 2, Duration::from_millis(1500), dir);
    println!(
        "{sessions} sessions holding GET streams for {secs}s, {batches} broadcasts {:.0}s apart",
        interval.as_secs_f64()
    );
    let run = notify(bin, url, target_pid, sessions, batches, interval, dir);
    let n = &run.report["notify"];
    let per_session = (run.peak_rss.saturating_sub(one.peak_rss)) as f64 / (sessions - 1) as f64;
    let target_per_session = run.target_rss.saturating_sub(target_idle) as f64 / sessions as f64;
    println!("ramp: {} sessions ready in {:.1}s, client CPU {:.2}s", n["sessions_ready"], run.ramp_secs, run.ramp_cpu);
    println!(
        "delivery: {} of {} ({:.4}), {} sessions missing any, {} duplicates, {} out of order, \
         send-to-receive p50 {} ms p95 {} ms p99 {} ms max {} ms",
        n["received"],
        n["expected"],
        n["delivery_ratio"].as_f64().unwrap_or(0.0),
        n["sessions_missing_any"],
        n["duplicates"],
        n["out_of_order"],
        n["latency"]["p50_ms"],
        n["latency"]["p95_ms"],
        n["latency"]["p99_ms"],
        n["latency"]["max_ms"]
    );
    println!(
        "client CPU: {:.2}s in total, {:.2}s after the ramp ({:.2}% of one core over {:.0}s)",
        run.total_cpu,
        run.total_cpu - run.ramp_cpu,
        (run.total_cpu - run.ramp_cpu) / (run.report["elapsed_s"].as_f64().unwrap_or(1.0) - run.ramp_secs) * 100.0,
        run.report["elapsed_s"].as_f64().unwrap_or(0.0) - run.ramp_secs
    );
    println!(
        "client memory: peak RSS {:.1} MB with {sessions} sessions, {:.1} MB with 1 session: {:.1} KB per session",
        run.peak_rss as f64 / 1e6,
        one.peak_rss as f64 / 1e6,
        per_session / 1024.0
    );
    println!(
        "target memory: {:.1} MB idle, {:.1} MB with {sessions} sessions: {:.1} KB per session",
        target_idle as f64 / 1e6,
        run.target_rss as f64 / 1e6,
        target_per_session / 1024.0
    );
    run.report["notify"].clone()
}

fn main() {
    // `cargo test --benches` passes --bench-less args; keep that pass short.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let sessions = env_or("BENCH_SCALE_SESSIONS", if smoke { 50 } else { 10_000 }).max(2);
    let secs = env_or("BENCH_SCALE_SECS", if smoke { 2 } else { 600 }).max(1);
    let batches = env_or("BENCH_SCALE_BATCHES", if smoke { 2 } else { 10 }).max(1);
    // The first batch goes out once every session is ready, the last one `secs` later.
    let interval = Duration::from_secs(secs) / (batches.max(2) - 1) as u32;
    // Sessions must outlive the hold; keep-alive comments every 15 s as in production.
    let (target, url) =
        support::spawn(&["target", "--listen", "127.0.0.1:0", "--session-idle-timeout", "2h"], "listening on ");
    let target_pid = target.0.id();
    let target_idle = rss(target_pid).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("mcp-canary-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // An earlier build of the binary, measured first in the same run for a before/after pair.
    if let Ok(baseline) = std::env::var("BENCH_BASELINE_BIN") {
        println!("baseline {baseline}:");
        measure(&baseline, &url, target_pid, target_idle, sessions, secs, batches, interval, &dir);
        println!("this build:");
    }
    let n = measure(
        env!("CARGO_BIN_EXE_mcp-canary"),
        &url,
        target_pid,
        target_idle,
        sessions,
        secs,
        batches,
        interval,
        &dir,
    );
    let ready = n["sessions_ready"].as_u64().unwrap_or(0);
    assert_eq!(ready, sessions, "every session holds its stream");
    assert!(n["received"].as_u64().unwrap_or(0) > 0, "broadcasts arrived");
    let _ = std::fs::remove_dir_all(&dir);
}
