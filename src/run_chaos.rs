//! `mcp-canary run chaos`: fault scenarios against a steady population, once, for CI or a game
//! day. Refused unless `--allow-chaos`; a table on stdout, the JSON report, metrics on
//! `--metrics-listen`, and an exit status: 0 pass, 99 a threshold failed or a fault was not
//! injected, 2 refused.

use std::time::Duration;

use crate::chaos::runner::KillHow;
use crate::chaos::{self, ChaosReport, ChaosRun, KillSpec, NotifySpec, inject};
use crate::mcp::ClientConfig;
use crate::profile::load;
use crate::profile::threshold::{Threshold, format_seconds};
use crate::run::{CommonArgs, EXIT_REFUSED, EXIT_THRESHOLD, Refused, RunSurface, client_config, write_report};
use crate::telemetry;

/// Flags of `mcp-canary run chaos`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Confirm that this target may be broken on purpose (chaos is refused without it).
    #[arg(long)]
    pub allow_chaos: bool,
    /// A fault, run one at a time in the order given (repeatable): proxy-latency[:DELAY[,JITTER]],
    /// proxy-reset, proxy-blackhole, proxy-bandwidth:BYTES_PER_S, kill, redis-pause[:DURATION],
    /// expire-sessions, restart (the last two through the reference target's admin endpoints).
    #[arg(long = "scenario", value_name = "KIND[:ARGS]", required = true)]
    pub scenarios: Vec<String>,
    /// Fault window of each scenario (a Redis pause lasts its own DURATION).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub fault: Duration,
    /// Recovery window after each fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub recovery: Duration,
    /// Baseline before the first fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    pub warmup: Duration,
    /// Sessions of the steady population.
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Requests per minute per session.
    #[arg(long, default_value_t = 60.0)]
    pub rpm: f64,
    /// Weights by operation of the load mix, e.g. "fast_tool=1,slow_tool=0".
    #[arg(long)]
    pub mix: Option<String>,
    /// Kill the target: a command, split into argv and run without a shell.
    #[arg(long, value_name = "COMMAND")]
    pub kill_command: Option<String>,
    /// Kill the target: SIGKILL this local process.
    #[arg(long, value_name = "PID", conflicts_with = "kill_command")]
    pub kill_pid: Option<u32>,
    /// Start the target again at the end of a kill's fault window (argv, no shell; it must exit).
    #[arg(long, value_name = "COMMAND")]
    pub start_command: Option<String>,
    /// Bound on every kill/start command, Redis command and admin call.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub command_timeout: Duration,
    /// The target's Redis (redis-pause), e.g. redis://127.0.0.1:6379/0.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Tool that triggers a broadcast; called with the JSON of --notify-args plus `nonce`.
    #[arg(long, default_value = "notify")]
    pub notify_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"route":"broadcast"}"#)]
    pub notify_args: String,
    /// Method the broadcasts arrive as; their params.data carries `nonce`.
    #[arg(long, default_value = "notifications/message")]
    pub notify_method: String,
    /// Interval between broadcasts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub notify_every: Duration,
    /// No broadcasts and no streams (a server without notifications).
    #[arg(long)]
    pub no_notify: bool,
    /// An operation slower than this (from its intended start) counts as degraded.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub slow_after: Duration,
    /// Consecutive good operations after a fault that make a recovery.
    #[arg(long, default_value_t = 5)]
    pub sustain: u32,
    /// Wait for late notifications after the last recovery window.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub settle: Duration,
}

/// Cap on a chaos population's aggregate request rate (per second).
pub const MAX_CHAOS_RATE: f64 = 5_000.0;

/// Thresholds of a chaos run when none is given.
pub const CHAOS_DEFAULT_THRESHOLDS: [&str; 1] = ["recovery_time < 30s"];

/// Validate the flags of a chaos run (the `--allow-chaos` refusal comes first).
pub fn plan_from_args(args: &ChaosArgs) -> Result<(ChaosRun, ClientConfig), Refused> {
    let c = &args.common;
    chaos::check_allowed(&c.target, args.allow_chaos).map_err(Refused)?;
    if c.baseline.is_some() || c.abort_on_fail {
        return Err(Refused("--baseline and --abort-on-fail do not apply to a chaos run".into()));
    }
    if args.clients == 0 || args.clients > c.max_sessions {
        return Err(Refused(format!("--clients must be between 1 and {} (--max-sessions)", c.max_sessions)));
    }
    if !(args.rpm.is_finite() && args.rpm > 0.0 && args.rpm <= 6000.0) {
        return Err(Refused(format!("--rpm must be within (0, 6000], got {}", args.rpm)));
    }
    let rate = f64::from(args.clients) * args.rpm / 60.0;
    if rate > MAX_CHAOS_RATE {
        return Err(Refused(format!(
            "{} sessions at {} rpm is {rate:.0} requests/s, over the chaos cap of {MAX_CHAOS_RATE}/s",
            args.clients, args.rpm
        )));
    }
    if args.sustain == 0 {
        return Err(Refused("--sustain must be at least 1".into()));
    }
    let scenarios = chaos::scenarios(&args.scenarios, args.fault, args.recovery).map_err(Refused)?;
    let kill = match (&args.kill_command, args.kill_pid) {
        (Some(cmd), _) => Some(KillHow::Command(inject::split_command("--kill-command", cmd).map_err(Refused)?)),
        (None, Some(pid)) => Some(KillHow::Pid(pid)),
        (None, None) => None,
    };
    let start = args
        .start_command
        .as_deref()
        .map(|s| inject::split_command("--start-command", s))
        .transpose()
        .map_err(Refused)?;
    let has = |k: &str| scenarios.iter().any(|s| s.kind.as_str() == k);
    if has("kill") && kill.is_none() {
        return Err(Refused("scenario kill needs --kill-command or --kill-pid (and usually --start-command)".into()));
    }
    if has("redis-pause") && args.redis.is_none() {
        return Err(Refused("scenario redis-pause needs --redis URL".into()));
    }
    let mut mix = load::default_mix();
    if let Some(spec) = &args.mix {
        load::apply_weights(&mut mix, spec).map_err(Refused)?;
    }
    let exprs: Vec<String> = if c.thresholds.is_empty() {
        CHAOS_DEFAULT_THRESHOLDS.iter().map(|s| s.to_string()).collect()
    } else {
        c.thresholds.clone()
    };
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|e| Refused(e.to_string()))?;
        if let Some(scope) = &t.scope
            && !scenarios.iter().any(|s| &s.name == scope)
        {
            let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
            return Err(Refused(format!(
                "threshold {e:?}: no scenario named {scope:?} (scenarios: {})",
                names.join(", ")
            )));
        }
        thresholds.push(t);
    }
    let notify = if args.no_notify {
        None
    } else {
        let arguments: serde_json::Value = serde_json::from_str(&args.notify_args)
            .map_err(|e| Refused(format!("--notify-args is not valid JSON: {e}")))?;
        if !arguments.is_object() {
            return Err(Refused("--notify-args must be a JSON object".into()));
        }
        if args.notify_every < Duration::from_millis(50) {
            return Err(Refused("--notify-every must be at least 50ms".into()));
        }
        Some(NotifySpec {
            tool: args.notify_tool.clone(),
            arguments,
            method: args.notify_method.clone(),
            every: args.notify_every,
        })
    };
    let (name, client) = client_config(c, "2025-11-25")?;
    let run = ChaosRun {
        target: name,
        sessions: args.clients,
        rpm: args.rpm,
        warmup: args.warmup,
        scenarios,
        mix,
        notify,
        slow_after: args.slow_after,
        sustain: args.sustain,
        thresholds,
        kill: kill.map(|kill| KillSpec { kill, start }),
        redis: args.redis.clone(),
        command_timeout: args.command_timeout,
        settle: args.settle,
        max_in_flight_per_session: 16,
    };
    Ok((run, client))
}

/// The end-of-run table: one row per scenario, then thresholds and the prober's health.
pub fn chaos_table(r: &ChaosReport) -> String {
    let opt = |v: Option<f64>| v.map(format_seconds).unwrap_or_else(|| "-".into());
    let mut out = format!(
        "\nchaos run against {} ({}): {:.1}s, {} sessions at {} rpm{}\n\n",
        r.target,
        r.verdict.to_uppercase(),
        r.elapsed_s,
        r.params.sessions,
        r.params.rpm,
        if r.aborted { ", ABORTED" } else { "" }
    );
    out.push_str(&format!(
        "{:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8} {:>8}  failures by class\n",
        "scenario", "detect", "recover", "p50", "p95", "requests", "lost", "re-est", "streams", "notif.lost"
    ));
    let row = |name: &str, detect: Option<f64>, recover: Option<f64>, p: &[&chaos::PhaseSummary]| {
        let requests: u64 = p.iter().map(|p| p.requests.count).sum();
        let lost: u64 = p.iter().map(|p| p.sessions_lost).sum();
        let re: u64 = p.iter().map(|p| p.sessions_reestablished).sum();
        let streams: u64 = p.iter().map(|p| p.streams_reconnected).sum();
        let nl: u64 = p.iter().map(|p| p.notifications_lost).sum();
        let mut classes = std::collections::BTreeMap::<&str, u64>::new();
        for ph in p {
            for (k, v) in &ph.requests.errors_by_type {
                *classes.entry(k).or_default() += v;
            }
        }
        let classes: Vec<String> = classes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let ms = |v: f64| format_seconds(v / 1000.0);
        format!(
            "{:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8} {:>8}  {}\n",
            name,
            opt(detect),
            opt(recover),
            ms(p[0].requests.latency.p50_ms),
            ms(p[0].requests.latency.p95_ms),
            requests,
            lost,
            re,
            streams,
            nl,
            classes.join(" ")
        )
    };
    out.push_str(&row("baseline", None, None, &[&r.baseline]));
    for s in &r.scenarios {
        out.push_str(&row(&s.name, s.detect_s, s.recover_s, &[&s.fault, &s.recovery]));
        for e in &s.injection_errors {
            out.push_str(&format!("  {}: fault not injected: {e}\n", s.name));
        }
    }
    out.push_str("(p50/p95 of the fault window; the other columns cover fault and recovery windows)\n\n");
    for t in &r.thresholds {
        out.push_str(&format!(
            "threshold {:<40} {}  observed {:.3}\n",
            t.threshold,
            if t.passed { "ok" } else { "FAILED" },
            t.observed
        ));
    }
    let mb = |b: Option<u64>| b.map(|b| format!("{:.1} MB", b as f64 / 1e6)).unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "prober: rss after warm-up {} peak {} end {}; stuck tasks {}\n",
        mb(r.prober.rss_after_warmup_bytes),
        mb(r.prober.rss_peak_bytes),
        mb(r.prober.rss_end_bytes),
        r.prober.stuck_tasks
    ));
    out
}

/// Run the chaos profile once; returns the exit status.
pub async fn run(args: ChaosArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let (run, client) = match plan_from_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let surface = RunSurface::start(args.common.metrics_listen).await?;
    let started_at =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let names: Vec<String> = run.scenarios.iter().map(|s| s.name.clone()).collect();
    let metrics = telemetry::chaos::ChaosMetrics::start(&run.target, &run.operations(), &names, started_at);
    println!(
        "chaos run: {} sessions x {} rpm against {}; scenarios {} ({} planned)",
        run.sessions,
        run.rpm,
        run.target,
        names.join(", "),
        humantime::format_duration(Duration::from_secs(run.planned().as_secs()))
    );
    let http = reqwest::Client::builder().user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION"))).build()?;
    let report = chaos::run_chaos(run, client, http, metrics, shutdown.clone()).await;
    surface.exporter.run_upkeep();
    let path =
        write_report(args.common.report.as_deref(), &args.common.results_dir, "chaos", report.started_at, &report)?;
    print!("{}", chaos_table(&report));
    println!("report: {}", path.display());
    if args.common.metrics_listen.is_some() && !args.common.linger.is_zero() {
        tokio::select! { _ = tokio::time::sleep(args.common.linger) => {}, _ = shutdown.cancelled() => {} }
    }
    surface.finish().await;
    Ok(if report.passed() { 0 } else { EXIT_THRESHOLD })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ChaosArgs,
    }

    fn plan(extra: &[&str]) -> Result<(ChaosRun, ClientConfig), Refused> {
        let mut argv = vec!["chaos", "--target", "http://127.0.0.1:9/mcp"];
        argv.extend_from_slice(extra);
        plan_from_args(&Cli::try_parse_from(argv).expect("flags parse").args)
    }

    fn refused(extra: &[&str]) -> String {
        plan(extra).expect_err("refused").to_string()
    }

    #[test]
    fn refusals_name_the_flag() {
        assert!(refused(&["--scenario", "proxy-reset"]).contains("--allow-chaos"));
        let ok = ["--allow-chaos", "--scenario"];
        assert!(refused(&[&ok[..], &["kill"]].concat()).contains("--kill-command or --kill-pid"));
        assert!(refused(&[&ok[..], &["redis-pause:2s"]].concat()).contains("--redis"));
        assert!(refused(&[&ok[..], &["nope"]].concat()).contains("unknown scenario kind"));
        let scoped = [&ok[..], &["proxy-reset", "--threshold", "kill:recovery_time < 5s"]].concat();
        assert!(refused(&scoped).contains("no scenario named \"kill\""));
        assert!(refused(&[&ok[..], &["kill", "--kill-command", "x 'y"]].concat()).contains("unbalanced"));
        assert!(refused(&[&ok[..], &["proxy-reset", "--clients", "0"]].concat()).contains("--clients"));
        let fast = [&ok[..], &["proxy-reset", "--clients", "1000", "--rpm", "600"]].concat();
        assert!(refused(&fast).contains("over the chaos cap"));
        assert!(refused(&[&ok[..], &["proxy-reset", "--notify-args", "[]"]].concat()).contains("JSON object"));
    }

    #[test]
    fn a_valid_plan() {
        let (run, client) = plan(&[
            "--allow-chaos",
            "--scenario",
            "kill",
            "--scenario",
            "proxy-latency:100ms,20ms",
            "--kill-pid",
            "42",
            "--start-command",
            "systemctl start 'mcp server'",
            "--threshold",
            "kill:recovery_time < 10s",
        ])
        .unwrap();
        assert_eq!(run.scenarios.len(), 2);
        assert!(run.needs_proxy());
        let kill = run.kill.unwrap();
        assert!(matches!(kill.kill, KillHow::Pid(42)));
        assert_eq!(kill.start.unwrap(), ["systemctl", "start", "mcp server"]);
        assert_eq!(run.thresholds.len(), 1);
        assert_eq!(client.protocol, crate::mcp::ProtocolPreference::Pinned("2025-11-25".into()));
        let defaults = plan(&["--allow-chaos", "--scenario", "proxy-reset", "--no-notify"]).unwrap().0;
        assert!(defaults.notify.is_none());
        assert_eq!(defaults.thresholds[0].to_string(), "recovery_time<30s");
    }
}
