//! Parameters of the chaos profile, shared by `mcp-canary run chaos` (flags) and the daemon's
//! `[profiles.chaos]` tables (TOML): one struct, the same defaults, one planning function.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::runner::{ChaosRedis, KillHow};
use super::{BroadcastTrigger, ChaosRun, KillSpec, inject};
use crate::profile::params::{MixSpec, ParamError, RunOptions, plan_mix};
use crate::profile::threshold::{Stat, Threshold};

/// Parameters of the chaos profile (`run chaos` flags, `[profiles.chaos]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSpec {
    /// A fault, run one at a time in the order given (repeatable): proxy-latency[:DELAY[,JITTER]],
    /// proxy-reset, proxy-blackhole, proxy-bandwidth:BYTES_PER_S, kill, redis-pause[:DURATION],
    /// expire-sessions, restart (the last two through the reference target's admin endpoints).
    #[arg(long = "scenario", value_name = "KIND[:ARGS]", required = true)]
    pub scenarios: Vec<String>,
    /// Fault window of each scenario (a Redis pause lasts its own DURATION).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    #[serde(with = "humantime_serde")]
    pub fault: Duration,
    /// Recovery window after each fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "humantime_serde")]
    pub recovery: Duration,
    /// Baseline before the first fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Sessions of the steady population.
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Requests per minute per session.
    #[arg(long, default_value_t = 60.0)]
    pub rpm: f64,
    /// The load mix the population runs, with its tools, resource and prompt (`--mix`,
    /// `--fast-tool`, `--resource`, ...; its keys sit beside the others in `[profiles.chaos]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub workload: MixSpec,
    /// Kill the target: a command, split into argv and run without a shell.
    #[arg(long, value_name = "COMMAND")]
    pub kill_command: Option<String>,
    /// Kill the target: SIGKILL this local process (one kill scenario: a restarted target has
    /// another PID; use --kill-pid-file for more).
    #[arg(long, value_name = "PID", conflicts_with = "kill_command")]
    pub kill_pid: Option<u32>,
    /// Kill the target: SIGKILL the PID this file holds, read again at every kill (the start
    /// command writes the new process's PID there, as a pidfile-managed daemon does).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["kill_command", "kill_pid"])]
    pub kill_pid_file: Option<std::path::PathBuf>,
    /// Start the target again at the end of a kill's fault window (argv, no shell; it must exit).
    #[arg(long, value_name = "COMMAND")]
    pub start_command: Option<String>,
    /// Bound on every kill/start command, Redis command and admin call.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// The target's Redis (redis-pause), e.g. redis://127.0.0.1:6379/0. Not a config key: the
    /// daemon pauses the target's own `redis`, with its password.
    #[arg(long, value_name = "URL")]
    #[serde(skip)]
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
    #[serde(with = "humantime_serde")]
    pub notify_every: Duration,
    /// No broadcasts and no streams (a server without notifications).
    #[arg(long)]
    pub no_notify: bool,
    /// An operation slower than this (from its intended start) counts as degraded.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    #[serde(with = "humantime_serde")]
    pub slow_after: Duration,
    /// Consecutive good operations after a fault that make a recovery.
    #[arg(long, default_value_t = 5)]
    pub sustain: u32,
    /// Wait for late notifications after the last recovery window.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
}

impl Default for ChaosSpec {
    fn default() -> Self {
        Self {
            scenarios: Vec::new(),
            fault: Duration::from_secs(5),
            recovery: Duration::from_secs(10),
            warmup: Duration::from_secs(3),
            clients: 10,
            rpm: 60.0,
            workload: MixSpec::default(),
            kill_command: None,
            kill_pid: None,
            kill_pid_file: None,
            start_command: None,
            command_timeout: Duration::from_secs(10),
            redis: None,
            notify_tool: "notify".into(),
            notify_args: r#"{"route":"broadcast"}"#.into(),
            notify_method: "notifications/message".into(),
            notify_every: Duration::from_secs(1),
            no_notify: false,
            slow_after: Duration::from_secs(1),
            sustain: 5,
            settle: Duration::from_secs(2),
        }
    }
}

impl ChaosSpec {
    /// Whether a scenario of this kind is named (by its spec's prefix, before parsing).
    pub fn names_kind(&self, kind: &str) -> bool {
        self.scenarios.iter().any(|s| s.split(':').next().is_some_and(|k| k.trim() == kind))
    }
}

/// Thresholds of a chaos run when none is given: every scenario recovers, and the target was
/// healthy before the first fault (its fault windows fail requests on purpose, so no run-wide
/// error rate).
pub const CHAOS_DEFAULT_THRESHOLDS: [&str; 2] = ["recovery_time < 30s", "baseline:error_rate < 1%"];

/// The threshold scope of the warm-up before the first fault (latency and request rates only).
pub const BASELINE: &str = "baseline";

/// Highest request rate per session.
const MAX_RPM: f64 = 6000.0;

fn refuse<T>(key: &'static str, message: impl Into<String>) -> Result<T, ParamError> {
    Err(ParamError { key, message: message.into() })
}

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
    use crate::profile::params::Caps;

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
