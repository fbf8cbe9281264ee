//! `mcp-canary run chaos`: fault scenarios against a steady population, once, for CI or a game
//! day. Refused unless `--allow-chaos`; a table on stdout, the JSON report, metrics on
//! `--metrics-listen`, and an exit status: 0 pass, 99 a threshold failed or a fault was not
//! injected, 2 refused.

use super::{CommonArgs, Refused, plan_flags};
use crate::chaos::{self, ChaosRedis, ChaosReport};
use crate::driver::{PlanTarget, PlannedRun};
use crate::mcp::ClientConfig;
use crate::profile::threshold::format_seconds;
use crate::spec::{ChaosSpec, ProfileSpec};

/// Flags of `mcp-canary run chaos`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Confirm that this target may be broken on purpose (chaos is refused without it).
    #[arg(long)]
    pub allow_chaos: bool,
    #[command(flatten)]
    pub spec: ChaosSpec,
    /// Global cap on the aggregate request rate (per second, broadcast triggers included).
    #[arg(long, default_value_t = crate::spec::DEFAULT_MAX_RATE)]
    pub max_rate: f64,
}

/// Validate the flags of a chaos run (the `--allow-chaos` refusal comes first).
pub fn plan_from_args(args: &ChaosArgs) -> Result<(PlannedRun, ClientConfig), Refused> {
    let c = &args.common;
    chaos::check_allowed(&c.target, args.allow_chaos).map_err(Refused)?;
    if c.baseline.is_some() {
        return Err(Refused("--baseline does not apply to a chaos run".into()));
    }
    let target = PlanTarget {
        chaos_redis: args.spec.redis.clone().map(|url| ChaosRedis { url, password: None }),
        ..PlanTarget::default()
    };
    plan_flags(c, ProfileSpec::Chaos(Box::new(args.spec.clone())), args.max_rate, target)
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
    out.push_str(&super::verdict_lines(&r.thresholds, r.thresholds_origin, r.verdict_reason.as_deref()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::runner::KillHow;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ChaosArgs,
    }

    fn plan(extra: &[&str]) -> Result<(crate::chaos::ChaosRun, ClientConfig), Refused> {
        let mut argv = vec!["chaos", "--target", "http://127.0.0.1:9/mcp"];
        argv.extend_from_slice(extra);
        match plan_from_args(&Cli::try_parse_from(argv).expect("flags parse").args)? {
            (PlannedRun::Chaos(run), client) => Ok((*run, client)),
            (other, _) => panic!("a chaos plan, got {:?}", other.kind()),
        }
    }

    fn refused(extra: &[&str]) -> String {
        plan(extra).expect_err("refused").to_string()
    }

    #[test]
    fn refusals_name_the_flag() {
        assert!(refused(&["--scenario", "proxy-reset"]).contains("--allow-chaos"));
        let ok = ["--allow-chaos", "--scenario"];
        assert!(refused(&[&ok[..], &["kill"]].concat()).contains("--kill-command: scenario kill needs"));
        assert!(refused(&[&ok[..], &["redis-pause:2s"]].concat()).contains("--redis: "));
        assert!(refused(&[&ok[..], &["nope"]].concat()).contains("--scenario: unknown scenario kind"));
        let scoped = [&ok[..], &["proxy-reset", "--threshold", "kill:recovery_time < 5s"]].concat();
        assert!(refused(&scoped).contains("--threshold: \"kill:recovery_time < 5s\": no scenario named \"kill\""));
        assert!(refused(&[&ok[..], &["kill", "--kill-command", "x 'y"]].concat()).contains("--kill-command: "));
        assert!(refused(&[&ok[..], &["proxy-reset", "--clients", "0"]].concat()).contains("--clients"));
        let fast = [&ok[..], &["proxy-reset", "--clients", "1000", "--rpm", "600"]].concat();
        assert!(refused(&fast).contains("--rpm: ") && refused(&fast).contains("(--max-rate)"));
        assert!(refused(&[&ok[..], &["proxy-reset", "--notify-args", "[]"]].concat()).contains("JSON object"));
        // --abort-on-fail applies to chaos (detect and recovery times breached beyond doubt).
        assert!(plan(&[&ok[..], &["proxy-reset", "--abort-on-fail"]].concat()).is_ok_and(|(run, _)| run.abort_on_fail));
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
