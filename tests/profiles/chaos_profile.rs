//! `mcp-canary run chaos` against the real reference target: the fault proxy's added latency
//! shows in the window's percentiles and its resets under `error_type="reset"`; a SIGKILLed
//! target (started again by a start command) is detected and its recovery time reported; a
//! Redis `CLIENT PAUSE` of 2 s against a distributed target shows in the window and recovers;
//! two kills in one run both land, the second on the restarted process (`--kill-pid-file`);
//! chaos is refused without `--allow-chaos`. Every run must end on its own with no stuck task.
use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::redis_server::RedisServer;
use common::{Proc, bin, free_port, log_dir, scrape_until};
use serde_json::Value;

use tokio::process::Command;

/// Run `mcp-canary ARGS` to its end (bounded); returns the exit code and stdout+stderr.
async fn run_cli(args: &[&str], within: Duration) -> (i32, String) {
    let out = tokio::time::timeout(
        within,
        Command::new(bin()).args(args).env("RUST_LOG", "warn").stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .expect("chaos run ended within its bound")
    .expect("run mcp-canary");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("report is JSON")
}

fn scenario<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["scenarios"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} in {r}"))
}

/// The prober survived: no stuck task, its memory reported (and printed for the record).
fn assert_prober_healthy(r: &Value) {
    let p = &r["prober"];
    assert_eq!(p["stuck_tasks"], 0, "{p}");
    let warm = p["rss_after_warmup_bytes"].as_u64().expect("rss after warm-up");
    let end = p["rss_end_bytes"].as_u64().expect("rss at end");
    println!("prober rss: after warm-up {warm} B, peak {}, end {end} B", p["rss_peak_bytes"]);
    assert!(end < warm * 2 + 64 * 1024 * 1024, "prober memory grew from {warm} to {end}");
}

#[tokio::test]
async fn refused_without_allow_chaos() {
    let (code, out) = run_cli(
        &["run", "chaos", "--target", "http://127.0.0.1:9/mcp", "--scenario", "proxy-reset"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--allow-chaos") && out.contains("allow_chaos = true"), "{out}");
    assert!(out.contains("chaos is not allowed against http://127.0.0.1:9/mcp"), "{out}");
}

#[tokio::test]
async fn a_failed_threshold_fails_the_run() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let (code, out) = run_cli(
        &[
            "run",
            "chaos",
            "--target",
            &url,
            "--allow-chaos",
            "--scenario",
            "expire-sessions",
            "--fault",
            "1s",
            "--recovery",
            "3s",
            "--warmup",
            "1s",
            "--clients",
            "3",
            "--rpm",
            "120",
            "--threshold",
            "sessions_lost == 0",
            "--report",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(code, 99, "{out}");
    let r = report(&path);
    assert_eq!(r["verdict"], "fail");
    let t = &r["thresholds"][0];
    assert_eq!(t["threshold"], "expire-sessions:sessions_lost==0");
    assert_eq!(t["passed"], false);
    assert!(t["observed"].as_f64().unwrap() >= 3.0, "every session was expired: {t}");
    assert!(out.contains("FAIL"), "{out}");
}

#[tokio::test]
async fn proxy_latency_shows_in_percentiles_and_resets_under_reset() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let args = [
        "run",
        "chaos",
        "--target",
        &url,
        "--allow-chaos",
        "--scenario",
        "proxy-latency:300ms",
        "--scenario",
        "proxy-reset",
        "--fault",
        "3s",
        "--recovery",
        "4s",
        "--warmup",
        "2s",
        "--clients",
        "5",
        "--rpm",
        "120",
        "--notify-every",
        "500ms",
        "--report",
        path.to_str().unwrap(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--linger",
        "10s",
        "--threshold",
        "recovery_time < 3s",
        "--threshold",
        "proxy-latency:p50 >= 300ms",
    ];
    let mut run = Proc::start("chaos-proxy", &args, &[], "mcp-canary metrics listening on ").await;
    let (scrape, done) = scrape_until(&run.announced, Duration::from_secs(60), |s| {
        s.sum("mcp_canary_chaos_recovered", &[("scenario", "proxy-reset")]).is_some()
    })
    .await;
    assert!(done, "run did not finish; log: {}", run.log_text());
    let status = tokio::time::timeout(Duration::from_secs(20), run.child.wait()).await.expect("run exits").unwrap();
    assert_eq!(status.code(), Some(0), "log: {}", run.log_text());
    let r = report(&path);

    let base = r["baseline"]["requests"]["latency"]["p50_ms"].as_f64().unwrap();
    let lat = scenario(&r, "proxy-latency");
    let p50 = lat["fault"]["requests"]["latency"]["p50_ms"].as_f64().unwrap();
    let rec_p50 = lat["recovery"]["requests"]["latency"]["p50_ms"].as_f64().unwrap();
    assert!(base < 150.0, "baseline p50 {base} ms");
    assert!((300.0..1000.0).contains(&p50), "added 300 ms must show in the fault window's p50: {p50} ms");
    assert!(rec_p50 < 150.0, "latency must be gone after the window: {rec_p50} ms");
    assert_eq!(lat["fault"]["requests"]["errors"], 0, "{lat}");
    assert_eq!(lat["recovered"], true);

    let reset = scenario(&r, "proxy-reset");
    let resets = reset["fault"]["requests"]["errors_by_type"]["reset"].as_u64().unwrap_or(0);
    assert!(resets >= 3, "resets must land under error_type=reset: {}", reset["fault"]["requests"]);
    assert_eq!(reset["detected_by"], "error", "{reset}");
    let detect = reset["detect_s"].as_f64().expect("reset detected");
    assert!(detect < 1.5, "detect {detect}");
    let recover = reset["recover_s"].as_f64().expect("reset recovered");
    assert!(recover < 3.0, "recover {recover}");
    assert_eq!(reset["recovery"]["notifications_lost"], 0, "{reset}");
    assert!(r["prober"]["proxy_resets"].as_u64().unwrap() >= 3);
    assert!(r["thresholds"].as_array().unwrap().iter().all(|t| t["passed"] == true), "{}", r["thresholds"]);
    assert_prober_healthy(&r);

    // The same figures on /metrics.
    let failed =
        scrape.value("mcp_canary_chaos_failed_requests_total", &[("scenario", "proxy-reset"), ("error_type", "reset")]);
    assert!(failed >= 3.0, "{failed}");
    assert_eq!(scrape.value("mcp_canary_chaos_recovered", &[("scenario", "proxy-latency")]), 1.0);
    assert!(scrape.sum("mcp_canary_chaos_detect_seconds", &[("scenario", "proxy-reset")]).is_some());
    assert!(scrape.sum("mcp_canary_chaos_recovery_seconds", &[("scenario", "proxy-reset")]).is_some());
    assert_eq!(scrape.value("mcp_canary_run_passed", &[("profile", "chaos")]), 1.0);
}

/// Processes the start command launched, killed when the test ends.
struct PidFile(std::path::PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

/// A start command (in `dir`) that launches the reference target on `port` in the background,
/// writes its PID to `pidfile`, appends it to `dir/starts` (one line per start) and waits until
/// it listens.
fn start_command(dir: &Path, port: u16, pidfile: &Path) -> String {
    let script = dir.join("start.sh");
    std::fs::write(
        &script,
        format!(
            "{bin} target --listen 127.0.0.1:{port} >>{log} 2>&1 &\necho $! >{pidfile}\necho $! >>{starts}\n\
             for i in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/{port}) 2>/dev/null && exit 0; sleep 0.1; done\nexit 1\n",
            bin = bin().display(),
            log = log_dir().join(format!("chaos-restarted-{port}.log")).display(),
            pidfile = pidfile.display(),
            starts = dir.join("starts").display(),
        ),
    )
    .unwrap();
    format!("bash {}", script.display())
}

/// `run chaos` against `url` with the kill flags `kill`: 5 sessions at 120 rpm, a broadcast every
/// 500 ms, 2 s faults and 6 s recoveries; the report goes to `report`.
async fn kill_run(url: &str, kill: &[&str], report: &Path) -> (i32, String) {
    let report = report.to_str().unwrap();
    let mut args = vec!["run", "chaos", "--target", url, "--allow-chaos"];
    args.extend_from_slice(kill);
    args.extend_from_slice(&["--fault", "2s", "--recovery", "6s", "--warmup", "2s", "--clients", "5"]);
    args.extend_from_slice(&["--rpm", "120", "--notify-every", "500ms", "--report", report]);
    run_cli(&args, Duration::from_secs(60)).await
}

/// A kill scenario was injected, detected by connection errors within 1.5 s and recovered within
/// 5 s; the restarted target knows none of the old sessions: each is lost, then negotiated again.
fn assert_kill_recovered(kill: &Value) {
    assert_eq!(kill["injected"], true, "{kill}");
    assert_eq!(kill["detected_by"], "error", "{kill}");
    assert!(kill["detect_s"].as_f64().expect("kill detected") < 1.5, "{kill}");
    let recover = kill["recover_s"].as_f64().expect("kill recovered");
    assert!(recover < 5.0, "recover {recover}: {kill}");
    let failures = &kill["fault"]["requests"]["errors_by_type"];
    assert!(failures["connect"].as_u64().unwrap_or(0) > 0, "a dead target refuses connections: {failures}");
    let lost = kill["recovery"]["sessions_lost"].as_u64().unwrap() + kill["fault"]["sessions_lost"].as_u64().unwrap();
    let again = kill["recovery"]["sessions_reestablished"].as_u64().unwrap();
    assert!(lost >= 5 && again >= 5, "lost {lost}, re-established {again}: {kill}");
    assert!(kill["recovery"]["streams_reconnected"].as_u64().unwrap() >= 5, "{kill}");
}

#[tokio::test]
async fn killed_target_is_detected_and_its_recovery_timed() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let target = Proc::start("chaos-target", &["target", "--listen", &listen], &[], "listening on ").await;
    let url = target.announced.clone();
    let pid = target.child.id().expect("target pid").to_string();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = PidFile(dir.path().join("restarted.pid"));
    let start = start_command(dir.path(), port, &pidfile.0);
    let path = dir.path().join("chaos.json");
    let (code, out) = kill_run(
        &url,
        &["--scenario", "kill", "--scenario", "restart", "--kill-pid", &pid, "--start-command", &start],
        &path,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let r = report(&path);
    assert_kill_recovered(scenario(&r, "kill"));
    // The admin-endpoint restart of the (restarted) reference target: 500s, then every session lost.
    let restart = scenario(&r, "restart");
    assert_eq!(restart["injected"], true, "{restart}");
    assert!(restart["fault"]["requests"]["errors_by_type"]["http_5xx"].as_u64().unwrap_or(0) > 0, "{restart}");
    assert!(restart["recovered"] == true && restart["recover_s"].as_f64().unwrap() < 5.0, "{restart}");
    let lost =
        restart["recovery"]["sessions_lost"].as_u64().unwrap() + restart["fault"]["sessions_lost"].as_u64().unwrap();
    assert!(lost >= 5, "{restart}");
    let knobs: Value = reqwest::get(url.replace("/mcp", "/admin/knobs")).await.unwrap().json().await.unwrap();
    assert_eq!(knobs["error_rate"], 0.0, "the knob is restored after the window: {knobs}");
    assert_prober_healthy(&r);
    assert!(out.contains("kill") && out.contains("restart"), "{out}");
}

/// Two kill scenarios in one run: `--kill-pid-file` is read again at every kill, and the start
/// command writes the restarted target's PID there, so the second kill ends the new process.
#[tokio::test]
async fn repeated_kills_follow_the_pid_file() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut target = Proc::start("chaos-target-twice", &["target", "--listen", &listen], &[], "listening on ").await;
    let url = target.announced.clone();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = PidFile(dir.path().join("target.pid"));
    std::fs::write(&pidfile.0, target.child.id().expect("target pid").to_string()).unwrap();
    let start = start_command(dir.path(), port, &pidfile.0);
    let starts = dir.path().join("starts");
    let path = dir.path().join("chaos.json");
    let pid_file = pidfile.0.to_str().unwrap();
    let kills = ["--scenario", "kill", "--scenario", "kill", "--kill-pid-file", pid_file, "--start-command", &start];
    let (code, out) = kill_run(&url, &kills, &path).await;
    assert_eq!(code, 0, "{out}");
    // Both kills landed: the original target (first kill) and the process the first start
    // launched (second kill); the second start's process is the one left running.
    assert!(target.child.try_wait().unwrap().is_some(), "the first kill ended the original target");
    let started: Vec<String> = std::fs::read_to_string(&starts).unwrap().lines().map(str::to_string).collect();
    assert_eq!(started.len(), 2, "one start per kill: {started:?}");
    // Gone, or a zombie until its new parent reaps it.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", started[0])).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "restarted target {} survived the second kill: {stat}",
        started[0]
    );
    assert_eq!(std::fs::read_to_string(&pidfile.0).unwrap().trim(), started[1]);
    let r = report(&path);
    assert_kill_recovered(scenario(&r, "kill"));
    assert_kill_recovered(scenario(&r, "kill-2"));
    assert_prober_healthy(&r);
}

#[tokio::test]
async fn redis_pause_shows_in_the_window_and_recovers() {
    let redis = RedisServer::start().await;
    let (_target, url) = common::start_target(&["--redis", &redis.url(), "--instance", "a"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let (code, out) = run_cli(
        &[
            "run",
            "chaos",
            "--target",
            &url,
            "--allow-chaos",
            "--scenario",
            "redis-pause:2s",
            "--redis",
            &redis.url(),
            "--recovery",
            "5s",
            "--warmup",
            "2s",
            "--clients",
            "5",
            "--rpm",
            "120",
            "--notify-every",
            "300ms",
            "--report",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let r = report(&path);
    let pause = scenario(&r, "redis-pause");
    assert_eq!(pause["injected"], true, "{pause}");
    assert_eq!(pause["fault_window_s"], 2.0);
    let fault = &pause["fault"]["requests"];
    let max_ms = fault["latency"]["max_ms"].as_f64().unwrap();
    let errors = fault["errors"].as_u64().unwrap();
    assert!(max_ms >= 1000.0 || errors > 0, "a 2 s pause must show as errors or added latency: {fault}");
    assert!(pause["detect_s"].as_f64().is_some(), "{pause}");
    // Full recovery: recovered, and nothing failed in the recovery window.
    assert_eq!(pause["recovered"], true, "{pause}");
    assert!(pause["recover_s"].as_f64().unwrap() < 3.0, "{pause}");
    assert_eq!(pause["recovery"]["requests"]["errors"], 0, "{pause}");
    let base = r["baseline"]["requests"]["latency"]["max_ms"].as_f64().unwrap();
    assert!(base < 1000.0, "baseline max {base} ms");
    assert_prober_healthy(&r);
}

/// A target that fails before any fault is not a recovery story: the default
/// `baseline:error_rate < 1%` fails the run, beside `recovery_time < 30s` per scenario.
#[tokio::test]
async fn a_target_failing_before_the_first_fault_fails_the_baseline_default() {
    let (_target, url) = common::start_target(&[]).await;
    common::admin(&url, "/admin/knobs", serde_json::json!({"error_rate": 0.5})).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let args = [
        "run",
        "chaos",
        "--target",
        &url,
        "--allow-chaos",
        "--scenario",
        "proxy-latency:50ms",
        "--warmup",
        "2s",
        "--fault",
        "1s",
        "--recovery",
        "2s",
        "--clients",
        "3",
        "--rpm",
        "240",
        "--no-notify",
        "--report",
        path.to_str().unwrap(),
    ];
    let (code, out) = run_cli(&args, Duration::from_secs(40)).await;
    assert_eq!(code, 99, "{out}");
    let r = report(&path);
    assert_eq!((r["verdict"].as_str(), r["thresholds_origin"].as_str()), (Some("fail"), Some("default")), "{r:#}");
    let baseline = r["thresholds"].as_array().unwrap().iter().find(|t| t["threshold"] == "baseline:error_rate<1%");
    let baseline = baseline.unwrap_or_else(|| panic!("no baseline threshold: {r:#}"));
    assert_eq!(baseline["status"], "fail", "{r:#}");
    assert!(baseline["samples"].as_u64().unwrap() >= 5 && baseline["observed"].as_f64().unwrap() > 0.2, "{r:#}");
    assert!(out.contains("thresholds: the default ones") && out.contains("baseline:error_rate<1%"), "{out}");
}

/// `--abort-on-fail`: a target killed and never started again cannot meet `recovery_time < 2s`;
/// the run stops about 2 s after the fault window closes instead of sitting out its 60 s
/// recovery window and the scenario after it, and the report says why.
#[tokio::test]
async fn abort_on_fail_stops_at_an_unreachable_recovery() {
    let (target, url) = common::start_target(&[]).await;
    let pid = target.child.id().expect("target pid").to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let began = std::time::Instant::now();
    let (code, out) = run_cli(
        &[
            "run",
            "chaos",
            "--target",
            &url,
            "--allow-chaos",
            "--scenario",
            "kill",
            "--scenario",
            "expire-sessions",
            "--kill-pid",
            &pid,
            "--fault",
            "1s",
            "--recovery",
            "60s",
            "--warmup",
            "1s",
            "--clients",
            "3",
            "--rpm",
            "240",
            "--threshold",
            "recovery_time < 2s",
            "--abort-on-fail",
            "--report",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(100),
    )
    .await;
    let took = began.elapsed();
    assert_eq!(code, 99, "{out}");
    let r = report(&path);
    assert_eq!((&r["verdict"], &r["aborted"]), (&Value::from("fail"), &Value::from(true)), "{r}");
    assert_eq!(r["abort_reason"], "threshold kill:recovery_time<2s breached", "{r}");
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    // Warm-up 1 s, fault 1 s, then 2 s unrecovered; a run sitting out its windows takes 120 s.
    assert!((4.0..20.0).contains(&elapsed), "aborted early: {elapsed} s");
    assert!(took < Duration::from_secs(40), "the process ended early too: {took:?}");
    let kill = scenario(&r, "kill");
    assert_eq!((&kill["injected"], &kill["recovered"]), (&Value::from(true), &Value::from(false)), "{kill}");
    let t = r["thresholds"].as_array().unwrap().iter().find(|t| t["threshold"] == "kill:recovery_time<2s").unwrap();
    assert_eq!(t["status"], "fail", "{t}");
    // The scenario after the breach was never reached.
    let expire = scenario(&r, "expire-sessions");
    assert_eq!(expire["injected"], false, "{expire}");
    assert_prober_healthy(&r);
    assert!(out.contains("ABORTED"), "{out}");
}

/// `--abort-on-fail` with `sessions_lost == 0`: the first session the expiry costs settles the
/// breach (lost sessions only grow), so the run stops within its first fault window, before the
/// 30 s recovery window and the restart scenario after it.
#[tokio::test]
async fn abort_on_fail_stops_at_the_first_lost_session() {
    let (_target, url) = common::start_target(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos.json");
    let (code, out) = run_cli(
        &[
            "run",
            "chaos",
            "--target",
            &url,
            "--allow-chaos",
            "--scenario",
            "expire-sessions",
            "--scenario",
            "restart",
            "--fault",
            "2s",
            "--recovery",
            "30s",
            "--warmup",
            "1s",
            "--clients",
            "3",
            "--rpm",
            "240",
            "--threshold",
            "sessions_lost == 0",
            "--abort-on-fail",
            "--report",
            path.to_str().unwrap(),
        ],
        Duration::from_secs(100),
    )
    .await;
    assert_eq!(code, 99, "{out}");
    let r = report(&path);
    assert_eq!(r["aborted"], true, "{r}");
    assert_eq!(r["abort_reason"], "threshold expire-sessions:sessions_lost==0 breached", "{r}");
    let elapsed = r["elapsed_s"].as_f64().unwrap();
    assert!(elapsed < 12.0, "aborted in the first scenario's windows: {elapsed} s");
    let expire = scenario(&r, "expire-sessions");
    let lost =
        expire["fault"]["sessions_lost"].as_u64().unwrap() + expire["recovery"]["sessions_lost"].as_u64().unwrap();
    assert!(lost >= 1, "{expire}");
    assert_eq!(scenario(&r, "restart")["injected"], false, "never reached: {r}");
    assert_prober_healthy(&r);
}
