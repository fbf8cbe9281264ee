//! A large fleet on one daemon, measured on real processes (release builds, loopback): the
//! reference target (`mcp-canary target`) and `mcp-canary serve` with FLEET_TARGETS targets
//! (default 1,000) at a 15 s interval, all pointing at that one target.
//!
//! After every target's first cycle (`/readyz`, bounded) and a warm-up, the bench measures:
//!
//! - daemon CPU over a window with nobody scraping (share of one core, and per probe cycle),
//!   from /proc/PID/stat utime + stime; probe cycles from `mcp_canary_probes_total`;
//! - resident memory from /proc/PID/status: VmRSS sampled every 0.5 s in the window (no scrapes),
//!   and VmHWM (the peak since start) after the scrapes;
//! - `/metrics` as text (what a classic scraper gets) and as protobuf (a scraper that asks for
//!   `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`):
//!   series (samples Prometheus would store; a native histogram is one), bytes, wall time of the
//!   scrape and the daemon CPU it cost, median of FLEET_SCRAPES scrapes each;
//! - then, the daemon stopped, the floor (`fleet/floor.rs`: the same exchanges with nothing parsed
//!   or recorded) against the same target, same targets, warm-up and window: its CPU the same
//!   way, and the daemon's CPU per cycle over the floor's.
//!
//! `cargo bench --bench fleet` (FLEET_TARGETS, FLEET_INTERVAL_SECS default 15, FLEET_WINDOW_SECS default 60, FLEET_WARMUP_SECS
//! default 15, FLEET_SCRAPES default 3; FLEET_BIN runs the daemon from another build, for a
//! before/after pair); it prints figures and writes nothing else. Under
//! `cargo test` a smoke pass of 20 targets keeps the harness tested (its figures mean nothing).

#[path = "fleet/floor.rs"]
mod floor;
mod support;

use std::time::{Duration, Instant};

use prost::Message;
use support::{Guard, echo_target, get, spawn, spawn_bin};

const PROTOBUF: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";

/// User + system CPU seconds of a process, from /proc/PID/stat (fields 14 and 15).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

/// A `Vm*:` line of /proc/PID/status, in bytes.
fn vm(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Sum of the text samples of `name` (any labels).
fn text_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with('{') || r.starts_with(' ')))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn text_series(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

/// Series a Prometheus stores from a delimited protobuf exposition: one per counter, gauge or
/// native histogram; a classic histogram's buckets + sum + count; a summary's quantiles + 2.
fn protobuf_series(mut body: &[u8]) -> (usize, usize) {
    let (mut series, mut native) = (0, 0);
    while !body.is_empty() {
        let family = mcp_canary::telemetry::protobuf::MetricFamily::decode_length_delimited(&mut body)
            .expect("a delimited MetricFamily");
        for metric in &family.metric {
            series += match (&metric.histogram, &metric.summary) {
                (Some(h), _) if h.schema.is_some() => {
                    native += 1;
                    1
                }
                (Some(h), _) => {
                    h.bucket.len() + 2 + usize::from(!h.bucket.iter().any(|b| b.upper_bound() == f64::INFINITY))
                }
                (None, Some(s)) => s.quantile.len() + 2,
                _ => 1,
            };
        }
    }
    (series, native)
}

fn config(mcp_url: &str, targets: usize, interval: u64) -> String {
    let mut c = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for i in 0..targets {
        c.push_str(&echo_target(&format!("t{i}"), mcp_url, &format!("{interval}s"), "5s"));
    }
    c
}

struct Scrape {
    series: usize,
    native: usize,
    bytes: usize,
    wall: f64,
    cpu: f64,
}

/// Median-by-wall-time of `n` scrapes (each on its own connection, one after the other).
fn scrape(base: &str, pid: u32, accept: Option<&str>, n: usize) -> Option<Scrape> {
    let mut runs = Vec::new();
    for _ in 0..n {
        let cpu0 = cpu_seconds(pid);
        let start = Instant::now();
        let (status, content_type, body) = get(&format!("{base}/metrics"), accept);
        let wall = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu0;
        assert!(status.contains(" 200"), "GET /metrics: {status}");
        let (series, native) = if content_type.starts_with("application/vnd.google.protobuf") {
            protobuf_series(&body)
        } else if accept.is_some() {
            return None; // the daemon does not offer protobuf
        } else {
            (text_series(&String::from_utf8(body.clone()).expect("UTF-8 text")), 0)
        };
        runs.push(Scrape { series, native, bytes: body.len(), wall, cpu });
    }
    runs.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    runs.into_iter().nth(n / 2)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Cycles and failed cycles of the floor child, as it last printed them.
type FloorCounts = std::sync::Arc<std::sync::Mutex<(f64, f64)>>;

/// Start the floor (`floor.rs`) as a child against `url`; returns it once it announced itself,
/// with the counts its output keeps up to date.
fn start_floor(url: &str, targets: usize, interval: u64) -> (Guard, FloorCounts, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("FLEET_FLOOR_CHILD", format!("{url},{targets},{interval}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the floor");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(announced.starts_with("floor ready"), "the floor did not start: {announced:?}");
    let counts = FloorCounts::default();
    let kept = std::sync::Arc::clone(&counts);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let n: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            if let [cycles, failures] = n[..] {
                *kept.lock().unwrap() = (cycles, failures);
            }
        }
    });
    (Guard(child), counts, announced)
}

fn main() {
    if let Ok(spec) = std::env::var("FLEET_FLOOR_CHILD") {
        floor::run(&spec);
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (targets, window, warmup, scrapes) = if full {
        (
            env("FLEET_TARGETS", 1000) as usize,
            Duration::from_secs(env("FLEET_WINDOW_SECS", 60)),
            Duration::from_secs(env("FLEET_WARMUP_SECS", 15)),
            env("FLEET_SCRAPES", 3).max(1) as usize,
        )
    } else {
        (20, Duration::from_secs(3), Duration::from_secs(1), 1)
    };
    let (_target, mcp_url) = spawn(&["target", "--listen", "127.0.0.1:0"], "listening on ");
    let dir = std::env::temp_dir().join(format!("mcp-canary-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("canary.toml");
    // FLEET_INTERVAL_SECS: every target's interval (default 15 s).
    let interval = if full { env("FLEET_INTERVAL_SECS", 15).max(1) } else { 15 };
    std::fs::write(&path, config(&mcp_url, targets, interval)).unwrap();
    let started = Instant::now();
    // FLEET_BIN: the daemon from another build (the target stays this build's).
    let bin = std::env::var("FLEET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mcp-canary").to_string());
    let (daemon, base) = spawn_bin(&bin, &["serve", "--config", path.to_str().unwrap()], "mcp-canary listening on ");
    let _ = std::fs::remove_dir_all(&dir);
    let pid = daemon.0.id();

    // Every target's first cycle: the interval plus slack, bounded.
    let bound = interval.max(15) + 45;
    let deadline = Instant::now() + Duration::from_secs(bound);
    while !get(&format!("{base}/readyz"), None).0.contains(" 200") {
        assert!(Instant::now() < deadline, "not every target completed a first cycle within {bound} s");
        std::thread::sleep(Duration::from_millis(500));
    }
    let ready_after = started.elapsed().as_secs_f64();
    std::thread::sleep(warmup);

    let hwm_before_scrapes = vm(pid, "VmHWM:");
    let before = String::from_utf8(get(&format!("{base}/metrics"), None).2).unwrap();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let mut peak = 0;
    while t0.elapsed() < window {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(vm(pid, "VmRSS:"));
    }
    let (cpu1, elapsed) = (cpu_seconds(pid), t0.elapsed().as_secs_f64());
    let rss = vm(pid, "VmRSS:");
    let peak = peak.max(rss);
    let after = String::from_utf8(get(&format!("{base}/metrics"), None).2).unwrap();
    let cycles = text_sum(&after, "mcp_canary_probes_total") - text_sum(&before, "mcp_canary_probes_total");
    let healthy = text_sum(&after, "mcp_canary_probe_success");

    let text = scrape(&base, pid, None, scrapes).expect("text scrape");
    let hwm_after_text = vm(pid, "VmHWM:");
    let protobuf = scrape(&base, pid, Some(PROTOBUF), scrapes);
    let hwm_after_scrapes = vm(pid, "VmHWM:");

    let cpu = cpu1 - cpu0;
    println!(
        "fleet: {targets} targets at {interval}s, all ready after {ready_after:.1} s; {healthy} healthy (probe_success = 1)"
    );
    println!(
        "window {elapsed:.0} s, no scrapes: {cycles} cycles, daemon CPU {cpu:.2} s = {:.2} % of one core, {:.3} ms per cycle",
        cpu / elapsed * 100.0,
        if cycles > 0.0 { cpu / cycles * 1e3 } else { f64::NAN }
    );
    println!(
        "memory: VmRSS {:.1} MB at the window's end, peak {:.1} MB in the window (sampled every 0.5 s); VmHWM after the scrapes {:.1} MB",
        rss as f64 / 1e6,
        peak as f64 / 1e6,
        hwm_after_scrapes as f64 / 1e6
    );
    println!(
        "VmHWM (peak since start): {:.1} MB before any scrape, {:.1} MB after the text scrapes, {:.1} MB after the protobuf ones",
        hwm_before_scrapes as f64 / 1e6,
        hwm_after_text as f64 / 1e6,
        hwm_after_scrapes as f64 / 1e6
    );
    let line = |kind: &str, s: &Scrape| {
        println!(
            "scrape {kind}: {} series ({} native histograms, {:.1} per target), {:.2} MB, {:.3} s wall, {:.3} s daemon CPU (median of {scrapes})",
            s.series,
            s.native,
            s.series as f64 / targets as f64,
            s.bytes as f64 / 1e6,
            s.wall,
            s.cpu
        );
    };
    line("text", &text);
    match &protobuf {
        Some(p) => {
            line("protobuf", p);
            println!(
                "protobuf / text: series {:.3}, bytes {:.3}, wall {:.3}",
                p.series as f64 / text.series as f64,
                p.bytes as f64 / text.bytes as f64,
                p.wall / text.wall
            );
        }
        None => println!("scrape protobuf: not offered (text answered)"),
    }
    for (kind, s) in [("text", Some(&text)), ("protobuf", protobuf.as_ref())] {
        if let Some(s) = s {
            println!(
                "daemon CPU with a {kind} scrape every 15 s: {:.2} % of one core",
                (cpu / elapsed + s.cpu / 15.0) * 100.0
            );
        }
    }
    assert!(cycles > 0.0 || !full, "no probe cycle completed in the window: the bench measured nothing");
    assert!(text.series > 0, "an empty /metrics");

    // The floor, alone against the same target: every target's first cycle, the warm-up, the
    // same window.
    drop(daemon);
    let (floor, counts, announced) = start_floor(&mcp_url, targets, interval);
    let floor_pid = floor.0.id();
    let deadline = Instant::now() + Duration::from_secs(bound);
    while counts.lock().unwrap().0 < targets as f64 {
        assert!(Instant::now() < deadline, "the floor's targets did not all complete a cycle within {bound} s");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(warmup);
    let ((floor_cycles0, _), floor_cpu0, t0) = (*counts.lock().unwrap(), cpu_seconds(floor_pid), Instant::now());
    std::thread::sleep(window);
    // Counts are printed once a second: wait for a line from after the window.
    std::thread::sleep(Duration::from_millis(1100));
    let floor_cpu = cpu_seconds(floor_pid) - floor_cpu0;
    let floor_elapsed = t0.elapsed().as_secs_f64();
    let (floor_cycles1, floor_failures) = *counts.lock().unwrap();
    let floor_cycles = floor_cycles1 - floor_cycles0;
    assert_eq!(floor_failures, 0.0, "the floor's exchanges failed: its figures would mean nothing");
    // Under `cargo test` the window is shorter than the interval: every target's first cycle
    // (waited for above) is what the smoke pass checks.
    assert!(floor_cycles > 0.0 || !full, "the floor completed no cycle in the window");
    let per_cycle = |cpu: f64, cycles: f64| if cycles > 0.0 { cpu / cycles * 1e3 } else { f64::NAN };
    println!(
        "{announced} (bare HTTP/1.1, same target, {floor_elapsed:.0} s): {floor_cycles} cycles, CPU {floor_cpu:.2} s = {:.2} % of one core, {:.3} ms per cycle",
        floor_cpu / floor_elapsed * 100.0,
        per_cycle(floor_cpu, floor_cycles)
    );
    if cycles > 0.0 && floor_cycles > 0.0 {
        println!("daemon / floor, CPU per cycle: {:.2}", per_cycle(cpu, cycles) / per_cycle(floor_cpu, floor_cycles));
    }
    if full {
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!("goal CPU < 2 % of one core: {}", verdict(cpu / elapsed < 0.02));
        println!("goal memory < 100 MB (peak without scrapes): {}", verdict(peak < 100_000_000));
        println!("goal memory < 100 MB (VmHWM, scrapes included): {}", verdict(hwm_after_scrapes < 100_000_000));
    }
}
