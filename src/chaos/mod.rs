//! The chaos profile: a steady population of sessions (open streams, a constant request rate,
//! periodic broadcasts) runs while scenarios inject faults one at a time, each with a fault
//! window and a recovery window. Per scenario it measures time to detect, time to recover,
//! failures by error class, sessions lost and re-established, streams reconnected and resumed,
//! and notifications lost. Chaos runs only against targets that allow it (`allow_chaos`).
//!
//! `proxy.rs` is the in-crate fault proxy (network faults on the prober's own path),
//! `inject.rs` the other injectors (kill/start commands, SIGKILL, Redis `CLIENT PAUSE`, the
//! reference target's session expiry and restart), `runner.rs` the run itself, `report.rs` its JSON report.

pub mod inject;
pub mod params;
pub mod proxy;
pub mod report;
pub mod runner;

use std::time::Duration;

pub use params::plan_chaos;
pub use proxy::{FaultProxy, NetFault};
pub use report::{ChaosReport, PhaseSummary, ScenarioReport};
pub use runner::{BroadcastTrigger, ChaosObserver, ChaosRedis, ChaosRun, KillSpec, NoChaosObserver, run_chaos};

/// The profile name (the `profile` label and the report's).
pub const PROFILE: &str = "chaos";

/// What one scenario breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum ScenarioKind {
    /// Added latency (and jitter) on the prober's path, through the fault proxy.
    ProxyLatency { delay: Duration, jitter: Duration },
    /// Connection resets on the prober's path.
    ProxyReset,
    /// Nothing passes on the prober's path.
    ProxyBlackhole,
    /// A slow link on the prober's path.
    ProxyBandwidth { bytes_per_s: u64 },
    /// Kill the target (kill command or SIGKILL of a PID) at the start of the window; start it
    /// again (start command) at its end.
    Kill,
    /// `CLIENT PAUSE` of the target's Redis for this long (the fault window).
    RedisPause { duration: Duration },
    /// The reference target's `/admin/expire-sessions`: every session is dropped, as on a restart.
    ExpireSessions,
    /// A restart through the reference target's admin endpoints: every session expired and every
    /// MCP POST answered 500 (knob `error_rate = 1`) for the fault window, then the knob restored.
    Restart,
}

impl ScenarioKind {
    /// The kind's name as written on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScenarioKind::ProxyLatency { .. } => "proxy-latency",
            ScenarioKind::ProxyReset => "proxy-reset",
            ScenarioKind::ProxyBlackhole => "proxy-blackhole",
            ScenarioKind::ProxyBandwidth { .. } => "proxy-bandwidth",
            ScenarioKind::Kill => "kill",
            ScenarioKind::RedisPause { .. } => "redis-pause",
            ScenarioKind::ExpireSessions => "expire-sessions",
            ScenarioKind::Restart => "restart",
        }
    }

    /// The proxy fault this kind switches on, if it is a network fault.
    pub fn net_fault(&self) -> Option<NetFault> {
        match *self {
            ScenarioKind::ProxyLatency { delay, jitter } => Some(NetFault::Latency { delay, jitter }),
            ScenarioKind::ProxyReset => Some(NetFault::Reset),
            ScenarioKind::ProxyBlackhole => Some(NetFault::Blackhole),
            ScenarioKind::ProxyBandwidth { bytes_per_s } => Some(NetFault::Bandwidth { bytes_per_s }),
            _ => None,
        }
    }
}

/// One scenario: what breaks and for how long, then how long recovery may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Unique within the run; the `scenario` label (the kind, suffixed `-2`, `-3` when repeated).
    pub name: String,
    /// As given, e.g. `proxy-latency:200ms,50ms`.
    pub spec: String,
    pub kind: ScenarioKind,
    pub fault: Duration,
    pub recovery: Duration,
}

/// Parse `KIND[:ARGS]` (see `ScenarioKind`); `fault` is the default fault window.
pub fn parse_scenario(spec: &str) -> Result<ScenarioKind, String> {
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k.trim(), Some(a.trim())),
        None => (spec.trim(), None),
    };
    let dur = |s: &str| humantime::parse_duration(s.trim()).map_err(|e| format!("scenario {spec:?}: {s:?}: {e}"));
    let no_arg = |k: ScenarioKind| match arg {
        None => Ok(k),
        Some(_) => Err(format!("scenario {spec:?}: {} takes no argument", k.as_str())),
    };
    match kind {
        "proxy-latency" => {
            let (delay, jitter) = match arg {
                None => (Duration::from_millis(200), Duration::ZERO),
                Some(a) => match a.split_once(',') {
                    Some((d, j)) => (dur(d)?, dur(j)?),
                    None => (dur(a)?, Duration::ZERO),
                },
            };
            Ok(ScenarioKind::ProxyLatency { delay, jitter })
        }
        "proxy-reset" => no_arg(ScenarioKind::ProxyReset),
        "proxy-blackhole" => no_arg(ScenarioKind::ProxyBlackhole),
        "proxy-bandwidth" => {
            let a = arg.ok_or_else(|| format!("scenario {spec:?}: proxy-bandwidth needs BYTES_PER_S"))?;
            let bytes_per_s: u64 =
                a.parse().map_err(|_| format!("scenario {spec:?}: {a:?} is not a whole number of bytes per second"))?;
            if bytes_per_s == 0 {
                return Err(format!("scenario {spec:?}: bandwidth must be at least 1 byte per second"));
            }
            Ok(ScenarioKind::ProxyBandwidth { bytes_per_s })
        }
        "kill" => no_arg(ScenarioKind::Kill),
        "redis-pause" => {
            let d = match arg {
                Some(a) => dur(a)?,
                None => Duration::from_secs(2),
            };
            if d.is_zero() {
                return Err(format!("scenario {spec:?}: the pause must be longer than 0"));
            }
            Ok(ScenarioKind::RedisPause { duration: d })
        }
        "expire-sessions" => no_arg(ScenarioKind::ExpireSessions),
        "restart" => no_arg(ScenarioKind::Restart),
        other => Err(format!(
            "unknown scenario kind {other:?}; kinds: proxy-latency[:DELAY[,JITTER]], proxy-reset, proxy-blackhole, \
             proxy-bandwidth:BYTES_PER_S, kill, redis-pause[:DURATION], expire-sessions, restart"
        )),
    }
}

/// Build the scenarios of a run from their specs: unique names, windows (a Redis pause's fault
/// window is the pause itself).
pub fn scenarios(specs: &[String], fault: Duration, recovery: Duration) -> Result<Vec<Scenario>, String> {
    let mut out: Vec<Scenario> = Vec::new();
    for spec in specs {
        let kind = parse_scenario(spec)?;
        let base = kind.as_str();
        let seen = out.iter().filter(|s| s.kind.as_str() == base).count();
        let name = if seen == 0 { base.to_string() } else { format!("{base}-{}", seen + 1) };
        let fault = match kind {
            ScenarioKind::RedisPause { duration } => duration,
            _ => fault,
        };
        out.push(Scenario { name, spec: spec.clone(), kind, fault, recovery });
    }
    Ok(out)
}

/// Refuse chaos against a target that does not allow it (`allow_chaos`, separate from
/// `allow_heavy`); the message names the setting.
pub fn check_allowed(target: &str, allow_chaos: bool) -> Result<(), String> {
    if allow_chaos {
        Ok(())
    } else {
        Err(format!(
            "chaos is not allowed against {target}: it kills instances, pauses Redis and breaks the network path; \
             allow it with --allow-chaos (one-shot) or allow_chaos = true on the target (daemon)"
        ))
    }
}

/// Resident memory of this process in bytes (Linux), for the prober's own health.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let ms = Duration::from_millis;
        assert_eq!(
            parse_scenario("proxy-latency:200ms,50ms").unwrap(),
            ScenarioKind::ProxyLatency { delay: ms(200), jitter: ms(50) }
        );
        assert_eq!(
            parse_scenario("proxy-latency:1s").unwrap(),
            ScenarioKind::ProxyLatency { delay: ms(1000), jitter: ms(0) }
        );
        assert_eq!(parse_scenario("proxy-reset").unwrap(), ScenarioKind::ProxyReset);
        assert_eq!(parse_scenario("proxy-blackhole").unwrap(), ScenarioKind::ProxyBlackhole);
        assert_eq!(parse_scenario("proxy-bandwidth:1000").unwrap(), ScenarioKind::ProxyBandwidth { bytes_per_s: 1000 });
        assert_eq!(parse_scenario("kill").unwrap(), ScenarioKind::Kill);
        assert_eq!(parse_scenario("redis-pause:2s").unwrap(), ScenarioKind::RedisPause { duration: ms(2000) });
        assert_eq!(parse_scenario("expire-sessions").unwrap(), ScenarioKind::ExpireSessions);
        assert_eq!(parse_scenario("restart").unwrap(), ScenarioKind::Restart);
    }

    #[test]
    fn errors_name_the_scenario() {
        for (spec, want) in [
            ("nope", "unknown scenario kind"),
            ("proxy-reset:5", "takes no argument"),
            ("proxy-bandwidth", "needs BYTES_PER_S"),
            ("proxy-bandwidth:x", "whole number"),
            ("proxy-latency:fast", "proxy-latency:fast"),
            ("redis-pause:0s", "longer than 0"),
        ] {
            let e = parse_scenario(spec).unwrap_err();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn names_are_unique_and_redis_pause_sets_its_window() {
        let specs: Vec<String> = ["proxy-reset", "proxy-reset", "redis-pause:3s"].map(String::from).to_vec();
        let s = scenarios(&specs, Duration::from_secs(5), Duration::from_secs(10)).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["proxy-reset", "proxy-reset-2", "redis-pause"]);
        assert_eq!(s[2].fault, Duration::from_secs(3));
        assert_eq!(s[0].fault, Duration::from_secs(5));
    }

    #[test]
    fn refusal_names_the_setting() {
        let e = check_allowed("prod", false).unwrap_err();
        assert!(e.contains("allow_chaos") && e.contains("--allow-chaos") && e.contains("prod"), "{e}");
        assert!(check_allowed("lab", true).is_ok());
    }
}
