//! Planning the chaos profile: its parameters (`crate::spec::ChaosSpec`, the `run chaos` flags
//! and `[profiles.chaos]` keys) validated into a run.

use std::time::Duration;

use super::runner::{ChaosRedis, KillHow};
use super::{BroadcastTrigger, ChaosRun, KillSpec, inject};
use crate::profile::params::plan_mix;
use crate::profile::threshold::{Stat, Threshold};
use crate::spec::{ChaosSpec, ParamError, RunOptions, refuse};

/// Thresholds of a chaos run when none is given: every scenario recovers, and the target was
/// healthy before the first fault (its fault windows fail requests on purpose, so no run-wide
/// error rate).
pub const CHAOS_DEFAULT_THRESHOLDS: [&str; 2] = ["recovery_time < 30s", "baseline:error_rate < 1%"];

/// The threshold scope of the warm-up before the first fault (latency and request rates only).
pub const BASELINE: &str = "baseline";

/// Highest request rate per session.
const MAX_RPM: f64 = 6000.0;

/// Validate chaos parameters into a run. `redis` is where `redis-pause` pauses (the `--redis`
/// flag, or the daemon target's `redis`); a scenario without what it needs is refused naming
/// the key (`kill_command`, `redis`).
pub fn plan_chaos(spec: &ChaosSpec, o: &RunOptions<'_>, redis: Option<ChaosRedis>) -> Result<ChaosRun, ParamError> {
    o.caps.check_sessions("clients", spec.clients)?;
    if !(spec.rpm.is_finite() && spec.rpm > 0.0 && spec.rpm <= MAX_RPM) {
        return refuse("rpm", format!("must be within (0, {MAX_RPM}], got {}", spec.rpm));
    }
    if spec.sustain == 0 {
        return refuse("sustain", "must be at least 1");
    }
    if spec.scenarios.is_empty() {
        return refuse("scenarios", "name at least one scenario");
    }
    let scenarios = super::scenarios(&spec.scenarios, spec.fault, spec.recovery)
        .map_err(|message| ParamError { key: "scenarios", message })?;
    let ways = [spec.kill_command.is_some(), spec.kill_pid.is_some(), spec.kill_pid_file.is_some()];
    if ways.iter().filter(|w| **w).count() > 1 {
        let key = if spec.kill_pid_file.is_some() { "kill_pid_file" } else { "kill_pid" };
        return refuse(key, "set only one of kill_command, kill_pid and kill_pid_file");
    }
    let split =
        |key: &'static str, line: &str| inject::split_command(line).map_err(|message| ParamError { key, message });
    let kill = match (&spec.kill_command, spec.kill_pid, &spec.kill_pid_file) {
        (Some(cmd), _, _) => Some(KillHow::Command(split("kill_command", cmd)?)),
        (None, Some(pid), _) => Some(KillHow::Pid(pid)),
        (None, None, Some(path)) => Some(KillHow::PidFile(path.clone())),
        (None, None, None) => None,
    };
    let start = spec.start_command.as_deref().map(|s| split("start_command", s)).transpose()?;
    let has = |k: &str| scenarios.iter().any(|s| s.kind.as_str() == k);
    if has("kill") && kill.is_none() {
        return refuse(
            "kill_command",
            "scenario kill needs a kill command, a PID or a PID file to SIGKILL (and usually a start command)",
        );
    }
    let kills = scenarios.iter().filter(|s| s.kind.as_str() == "kill").count();
    if kills > 1 && matches!(kill, Some(KillHow::Pid(_))) {
        // The first kill ends that process; a second SIGKILL would find it gone, or worse, its
        // PID reused by an unrelated process.
        return refuse(
            "kill_pid",
            format!(
                "{kills} kill scenarios, but kill_pid names one process, which the first kill ends (a restarted \
                 target has another PID): give kill_pid_file, the file the start command writes the new PID to"
            ),
        );
    }
    if has("redis-pause") && redis.is_none() {
        return refuse("redis", "scenario redis-pause needs the target's Redis URL");
    }
    let mix = plan_mix(&spec.workload)?;
    let notify = if spec.no_notify {
        None
    } else {
        let arguments = match serde_json::from_str::<serde_json::Value>(&spec.notify_args) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return refuse("notify_args", "must be a JSON object"),
            Err(e) => return refuse("notify_args", format!("is not valid JSON: {e}")),
        };
        if spec.notify_every < Duration::from_millis(50) {
            return refuse("notify_every", "must be at least 50ms");
        }
        Some(BroadcastTrigger {
            tool: spec.notify_tool.clone(),
            arguments,
            method: spec.notify_method.clone(),
            every: spec.notify_every,
        })
    };
    let (exprs, thresholds_origin) =
        crate::profile::params::threshold_exprs(o.thresholds, None, &CHAOS_DEFAULT_THRESHOLDS);
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|err| ParamError { key: "thresholds", message: err.to_string() })?;
        if t.scope.as_deref() == Some(BASELINE) {
            if t.stat.is_chaos() || t.stat.is_memory() || t.stat == Stat::Delivery {
                return refuse(
                    "thresholds",
                    format!("{e:?}: the baseline takes latency and request-rate statistics only"),
                );
            }
        } else if let Some(scope) = &t.scope
            && !scenarios.iter().any(|s| &s.name == scope)
        {
            let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
            return refuse(
                "thresholds",
                format!("{e:?}: no scenario named {scope:?} (scenarios: {}; or baseline)", names.join(", ")),
            );
        }
        thresholds.push(t);
    }
    let run = ChaosRun {
        profile: o.profile.into(),
        target: o.target.into(),
        sessions: spec.clients,
        rpm: spec.rpm,
        warmup: spec.warmup,
        scenarios,
        mix,
        notify,
        slow_after: spec.slow_after,
        sustain: spec.sustain,
        thresholds,
        thresholds_origin,
        kill: kill.map(|kill| KillSpec { kill, start }),
        redis,
        command_timeout: spec.command_timeout,
        settle: spec.settle,
        max_in_flight_per_session: 16,
        abort_on_fail: o.abort_on_fail,
    };
    let rate = run.peak_rate();
    if rate > o.caps.max_rate * (1.0 + 1e-9) {
        return refuse(
            "rpm",
            format!(
                "{} clients x {} rpm plus broadcast triggers = {rate:.1} requests/s exceed the cap of {} ({})",
                spec.clients, spec.rpm, o.caps.max_rate, o.caps.rate_name
            ),
        );
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::spec::Caps;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        spec: ChaosSpec,
    }

    #[test]
    fn flag_defaults_equal_config_defaults() {
        let flags = Flags::try_parse_from(["x", "--scenario", "proxy-reset"]).unwrap().spec;
        assert_eq!(flags, ChaosSpec { scenarios: vec!["proxy-reset".into()], ..ChaosSpec::default() });
    }

    #[test]
    fn the_mix_takes_the_load_workload_flags_and_keys() {
        let args = [
            "x",
            "--scenario",
            "proxy-reset",
            "--clients",
            "2",
            "--mix",
            "fast_tool=1,prompt_get=1",
            "--fast-tool",
            "slow",
        ];
        let flags =
            Flags::try_parse_from(args.into_iter().chain(["--fast-tool-args", r#"{"ms":0}"#, "--prompt", "hi"]));
        let run = plan_chaos(&flags.unwrap().spec, &options(&[]), None).unwrap();
        let toml = "scenarios = [\"proxy-reset\"]\nclients = 2\nmix = \"fast_tool=1,prompt_get=1\"\nfast_tool = \"slow\"\n\
                    fast_tool_args = '{\"ms\":0}'\nprompt = \"hi\"";
        let keys = plan_chaos(&toml::from_str::<ChaosSpec>(toml).unwrap(), &options(&[]), None).unwrap();
        for mix in [&run.mix, &keys.mix] {
            let weighted: Vec<String> =
                mix.iter().filter(|e| e.weight > 0).map(|e| format!("{}={:?}", e.name, e.kind)).collect();
            assert_eq!(weighted.len(), 2, "{weighted:?}");
            assert!(weighted[0].contains("slow") && weighted[0].contains("\"ms\": Number(0)"), "{weighted:?}");
            assert!(weighted[1].starts_with("prompt_get=") && weighted[1].contains("\"hi\""), "{weighted:?}");
        }
    }

    fn options(thresholds: &[String]) -> RunOptions<'_> {
        RunOptions {
            profile: "game-day",
            target: "lab",
            thresholds,
            abort_on_fail: false,
            timeout: Duration::from_secs(10),
            tick: Duration::from_millis(500),
            caps: Caps {
                max_sessions: 20,
                max_rate: 10.0,
                sessions_name: "cap.s",
                rate_name: "cap.r",
                descriptors: u64::MAX,
            },
        }
    }

    fn spec(scenarios: &[&str]) -> ChaosSpec {
        ChaosSpec { scenarios: scenarios.iter().map(|s| s.to_string()).collect(), ..ChaosSpec::default() }
    }

    #[test]
    fn refusals_name_the_key() {
        let key = |s: &ChaosSpec| plan_chaos(s, &options(&[]), None).unwrap_err().key;
        assert_eq!(key(&spec(&[])), "scenarios");
        assert_eq!(key(&spec(&["nope"])), "scenarios");
        assert_eq!(key(&spec(&["kill"])), "kill_command");
        assert_eq!(key(&spec(&["redis-pause:1s"])), "redis");
        assert_eq!(key(&ChaosSpec { clients: 21, ..spec(&["proxy-reset"]) }), "clients");
        assert_eq!(key(&ChaosSpec { kill_command: Some("a 'b".into()), ..spec(&["kill"]) }), "kill_command");
        let twice = spec(&["kill", "kill"]);
        assert_eq!(key(&ChaosSpec { kill_pid: Some(42), ..twice.clone() }), "kill_pid");
        let file = Some(std::path::PathBuf::from("/run/mcp.pid"));
        assert_eq!(
            key(&ChaosSpec { kill_pid: Some(42), kill_pid_file: file.clone(), ..spec(&["kill"]) }),
            "kill_pid_file"
        );
        let quiet = ChaosSpec { no_notify: true, clients: 1, kill_pid_file: file, ..twice };
        let run = plan_chaos(&quiet, &options(&[]), None).unwrap();
        assert!(matches!(&run.kill.unwrap().kill, KillHow::PidFile(p) if p.to_str() == Some("/run/mcp.pid")));
        assert_eq!(key(&ChaosSpec { notify_args: "[]".into(), ..spec(&["proxy-reset"]) }), "notify_args");
        // 10 sessions at 60 rpm plus a broadcast a second: 11 requests/s over a cap of 10.
        let e = plan_chaos(&spec(&["proxy-reset"]), &options(&[]), None).unwrap_err();
        assert_eq!(e.key, "rpm");
        assert!(e.message.contains("11.0 requests/s exceed the cap of 10 (cap.r)"), "{}", e.message);
        let scoped = ["kill:recovery_time < 5s".to_string()];
        let quiet = ChaosSpec { no_notify: true, ..spec(&["proxy-reset"]) };
        let e = plan_chaos(&quiet, &options(&scoped), None).unwrap_err();
        assert_eq!(e.key, "thresholds");
        assert!(e.message.contains("no scenario named \"kill\""), "{}", e.message);
        let abort = RunOptions { abort_on_fail: true, ..options(&[]) };
        assert!(plan_chaos(&quiet, &abort, None).unwrap().abort_on_fail);
        // The baseline takes request statistics only.
        let e = plan_chaos(&quiet, &options(&["baseline:recovery_time < 5s".to_string()]), None).unwrap_err();
        assert!(e.message.contains("the baseline takes latency and request-rate statistics only"), "{}", e.message);
        let ok = ["baseline:p95 < 1s".to_string()];
        assert_eq!(plan_chaos(&quiet, &options(&ok), None).unwrap().thresholds[0].to_string(), "baseline:p95<1s");
        let defaults = plan_chaos(&quiet, &options(&[]), None).unwrap();
        let defaults: Vec<String> = defaults.thresholds.iter().map(|t| t.to_string()).collect();
        assert_eq!(defaults, ["recovery_time<30s", "baseline:error_rate<1%"]);
    }

    #[test]
    fn a_valid_plan_carries_the_profile_and_the_redis() {
        let s = ChaosSpec { no_notify: true, ..spec(&["redis-pause:1s", "proxy-reset"]) };
        let redis = ChaosRedis { url: "redis://127.0.0.1:6379/0".into(), password: None };
        let run = plan_chaos(&s, &options(&[]), Some(redis)).unwrap();
        assert_eq!((run.profile.as_str(), run.target.as_str()), ("game-day", "lab"));
        assert_eq!(run.scenarios.len(), 2);
        assert_eq!(run.scenarios[0].fault, Duration::from_secs(1));
        assert!(run.redis.is_some() && run.needs_proxy());
        assert_eq!(run.peak_rate(), 10.0);
        assert_eq!(run.thresholds[0].to_string(), "recovery_time<30s");
    }
}
