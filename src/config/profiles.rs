//! `[heavy_profiles]` and `[[profiles]]`: scheduled heavy runs, validated into one planned run
//! per (profile, target) so that the scheduler only clones what validation built.

use std::path::PathBuf;
use std::sync::Arc;

use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::ConfigError;
use super::raw::{RawConfig, RawHeavyProfiles, RawProfile};
use super::validate::TargetConfig;
use crate::chaos::{self, ChaosRedis, ChaosRun};
use crate::mcp::{ClientConfig, ProtocolPreference};
use crate::profile::LoadRun;
use crate::profile::longevity::LongevityRun;
use crate::profile::matrix::{self, MatrixRun};
use crate::profile::notify::{NotifyRun, TriggerScope};
use crate::profile::params::{self, Caps, ParamError, RunOptions, TargetMemory};
use crate::profile::replicas::ReplicaTagging;

/// Global caps of heavy profiles.
#[derive(Debug, Clone)]
pub struct HeavyLimits {
    pub max_sessions: u32,
    /// Aggregate requests per second.
    pub max_request_rate: f64,
    /// A JSON report per run is written here.
    pub results_dir: PathBuf,
}

/// One validated `[[profiles]]` entry.
#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// The `profile` label of its runs.
    pub name: String,
    /// "load", "notify", "matrix", "chaos" or "longevity".
    pub kind: &'static str,
    /// Fire times (UTC).
    pub schedule: Cron,
    /// One planned run per target, in the order of `targets`.
    pub runs: Vec<ScheduledRun>,
}

/// A run fully planned against one target.
#[derive(Debug, Clone)]
pub struct ScheduledRun {
    pub target: String,
    pub client: ClientConfig,
    pub plan: ProfilePlan,
}

/// The profile-specific part of a planned run.
#[derive(Debug, Clone)]
pub enum ProfilePlan {
    Load(LoadRun),
    Notify(NotifyRun),
    Matrix(MatrixRun),
    Chaos(Box<ChaosRun>),
    Longevity(Box<LongevityRun>),
}

impl ProfilePlan {
    /// Sessions the run holds at its peak (counted against `max_sessions` across runs).
    pub fn sessions(&self) -> u32 {
        match self {
            ProfilePlan::Load(r) => r.engine.plan.sessions,
            ProfilePlan::Notify(r) => r.sessions,
            ProfilePlan::Matrix(r) => r.concurrency as u32,
            ProfilePlan::Chaos(r) => r.sessions,
            ProfilePlan::Longevity(r) => r.engine.plan.sessions,
        }
    }

    /// Requests per second at its peak (counted against `max_request_rate` across runs).
    pub fn peak_rate(&self) -> f64 {
        match self {
            ProfilePlan::Load(r) => r.engine.plan.peak_rate(),
            // A notify run sends one trigger per broadcast; a matrix cell a handful of requests.
            ProfilePlan::Notify(r) => f64::from(r.broadcasts) / r.batch_interval.as_secs_f64().max(0.001),
            ProfilePlan::Matrix(r) => r.concurrency as f64,
            ProfilePlan::Chaos(r) => r.peak_rate(),
            ProfilePlan::Longevity(r) => r.engine.plan.peak_rate(),
        }
    }
}

/// Profile kinds `[[profiles]]` accepts.
pub const PROFILE_KINDS: [&str; 5] = ["load", "notify", "matrix", "chaos", "longevity"];

pub(super) fn validate_limits(raw: &RawHeavyProfiles, errors: &mut Vec<ConfigError>) -> Option<HeavyLimits> {
    let before = errors.len();
    if raw.max_sessions == 0 {
        errors.push(ConfigError::new("heavy_profiles.max_sessions", "must be at least 1".into()));
    }
    if !(raw.max_request_rate.is_finite() && raw.max_request_rate > 0.0) {
        errors.push(ConfigError::new("heavy_profiles.max_request_rate", "must be a positive number".into()));
    }
    if raw.results_dir.is_empty() {
        errors.push(ConfigError::new("heavy_profiles.results_dir", "must not be empty".into()));
    }
    (errors.len() == before).then(|| HeavyLimits {
        max_sessions: raw.max_sessions,
        max_request_rate: raw.max_request_rate,
        results_dir: PathBuf::from(&raw.results_dir),
    })
}

/// Cron with an optional leading seconds field (6 fields) besides the classic 5.
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    CronParser::builder().seconds(Seconds::Optional).build().parse(text).map_err(|e| e.to_string())
}

pub(super) fn validate_profiles(
    raw: &RawConfig,
    targets: &[TargetConfig],
    limits: &HeavyLimits,
    errors: &mut Vec<ConfigError>,
) -> Vec<ProfileConfig> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, p) in raw.profiles.iter().enumerate() {
        let path = format!("profiles[{i}]");
        if !names.insert(p.name.as_str()) {
            errors.push(ConfigError::new(format!("{path}.name"), format!("duplicate profile name {:?}", p.name)));
        }
        if let Some(c) = validate_profile(&path, p, raw, targets, limits, errors) {
            out.push(c);
        }
    }
    out
}

fn validate_profile(
    path: &str,
    p: &RawProfile,
    raw: &RawConfig,
    targets: &[TargetConfig],
    limits: &HeavyLimits,
    errors: &mut Vec<ConfigError>,
) -> Option<ProfileConfig> {
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("{path}.{field}"), msg));
    if p.name.is_empty() || p.name.len() > 64 || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        err("name", "must be 1-64 characters of [A-Za-z0-9._-] (it becomes the `profile` label)".into());
    }
    let kind = PROFILE_KINDS.iter().copied().find(|k| *k == p.profile);
    if kind.is_none() {
        err(
            "profile",
            format!(
                "unknown profile {:?}; expected \"load\", \"notify\", \"matrix\", \"chaos\" or \"longevity\"",
                p.profile
            ),
        );
    }
    let tables = [
        ("load", p.load.is_some()),
        ("notify", p.notify.is_some()),
        ("matrix", p.matrix.is_some()),
        ("chaos", p.chaos.is_some()),
        ("longevity", p.longevity.is_some()),
    ];
    for (table, present) in tables {
        if present && kind.is_some_and(|k| k != table) {
            err(table, format!("parameters of the {table} profile, but profile = {:?}", p.profile));
        }
    }
    let schedule = parse_schedule(&p.schedule)
        .map_err(|e| err("schedule", format!("not a cron expression ({:?}): {e}", p.schedule)))
        .ok();
    if p.targets.is_empty() {
        err("targets", "must name at least one target".into());
    }
    // Chaos breaks its targets on purpose: it needs allow_chaos, and not allow_heavy (a lab
    // target may take faults without being fit for load).
    let is_chaos = kind == Some("chaos");
    let mut seen = std::collections::HashSet::new();
    for name in &p.targets {
        match raw.targets.iter().find(|t| &t.name == name) {
            None => err("targets", format!("unknown target {name:?}")),
            Some(t) if is_chaos && !t.allow_chaos => {
                err("targets", format!("target {name:?} does not set allow_chaos = true"))
            }
            Some(t) if !is_chaos && !t.allow_heavy => {
                err("targets", format!("target {name:?} does not set allow_heavy = true"))
            }
            Some(_) if !seen.insert(name.as_str()) => err("targets", format!("target {name:?} is named twice")),
            Some(_) => {}
        }
    }
    if kind == Some("matrix") && (!p.thresholds.is_empty() || p.abort_on_fail) {
        err("thresholds", "the matrix profile has no thresholds (it fails when a cell is broken)".into());
    }
    let chaos_spec = p.chaos.clone().unwrap_or_default();
    if is_chaos && chaos_spec.names_kind("kill") && p.targets.len() > 1 {
        err(
            "targets",
            format!(
                "scenario kill runs one kill command (or PID) for every target; a chaos profile with kill names one \
                 target, not {}",
                p.targets.len()
            ),
        );
    }
    let longevity_spec = p.longevity.clone().unwrap_or_default();
    if kind == Some("longevity") && longevity_spec.snapshots.is_some() && p.targets.len() > 1 {
        err(
            "longevity.snapshots",
            format!(
                "one snapshots file for {} targets would mix their lines; leave it unset (each run writes its own \
                 beside its report) or name one target",
                p.targets.len()
            ),
        );
    }
    let (kind, schedule) = (kind?, schedule?);
    if errors.len() != before {
        return None;
    }

    let caps = Caps {
        max_sessions: limits.max_sessions,
        max_rate: limits.max_request_rate,
        sessions_name: "heavy_profiles.max_sessions",
        rate_name: "heavy_profiles.max_request_rate",
        // Validation stays pure (check-config may run on another host).
        descriptors: u64::MAX,
    };
    let key = |e: ParamError| {
        let field = match e.key {
            "thresholds" | "abort_on_fail" => e.key.to_string(),
            _ => format!("{kind}.{}", e.key),
        };
        ConfigError::new(format!("{path}.{field}"), e.message)
    };
    let mut runs = Vec::new();
    for name in &p.targets {
        // A target that failed its own validation has its errors reported already.
        let target = targets.iter().find(|t| &t.name == name)?;
        let options = RunOptions {
            profile: &p.name,
            target: &target.name,
            thresholds: &p.thresholds,
            abort_on_fail: p.abort_on_fail,
            timeout: target.timeout,
            tick: std::time::Duration::from_millis(500),
            caps,
        };
        let mut client = target.client_config();
        // Requests and deliveries are also counted by the replica that served them.
        let replicas = target.instances.as_ref().map(|i| {
            Arc::new(ReplicaTagging {
                header: i.header.clone(),
                names: i.replicas.iter().map(|r| r.name.clone()).collect(),
            })
        });
        let plan = match kind {
            "load" => {
                let spec = p.load.clone().unwrap_or_default();
                let memory = TargetMemory {
                    instances: target
                        .instances
                        .iter()
                        .flat_map(|i| &i.replicas)
                        .map(|r| (r.name.clone(), r.url.clone()))
                        .collect(),
                    redis: target.redis.clone(),
                };
                params::plan_load(&spec, &options).and_then(|mut run| {
                    run.memory = params::plan_memory(&spec, run.engine.plan.ramp_up, &memory)?;
                    run.engine.replicas = replicas;
                    Ok(ProfilePlan::Load(run))
                })
            }
            "notify" => {
                // Broadcasts travel on the session's GET stream: pin the 2025 session era on auto
                // (in session scope each session's trigger answers on its own POST: any era).
                let spec = p.notify.clone().unwrap_or_default();
                if client.protocol == ProtocolPreference::Auto && spec.trigger_scope == TriggerScope::Broadcast {
                    client.protocol = ProtocolPreference::Pinned("2025-11-25".into());
                }
                params::plan_notify(&spec, &options).map(|run| ProfilePlan::Notify(NotifyRun { replicas, ..run }))
            }
            "longevity" => {
                // Churn ends sessions: pin the session era on auto, as `run longevity` does.
                if client.protocol == ProtocolPreference::Auto {
                    client.protocol = ProtocolPreference::Pinned("2025-11-25".into());
                }
                params::plan_longevity(&longevity_spec, &options).map(|r| ProfilePlan::Longevity(Box::new(r)))
            }
            "chaos" => {
                // Sessions hold their GET stream for the broadcasts, as in notify.
                if client.protocol == ProtocolPreference::Auto {
                    client.protocol = ProtocolPreference::Pinned("2025-11-25".into());
                }
                // redis-pause pauses the target's own Redis, with its password.
                let redis =
                    target.redis.as_ref().map(|r| ChaosRedis { url: r.url.to_string(), password: r.password.clone() });
                match chaos::plan_chaos(&chaos_spec, &options, redis) {
                    Err(e) if e.key == "redis" => {
                        errors.push(ConfigError::new(
                            format!("{path}.targets"),
                            format!(
                                "target {name:?} does not set redis (scenario redis-pause pauses the target's Redis)"
                            ),
                        ));
                        return None;
                    }
                    planned => planned.map(|r| ProfilePlan::Chaos(Box::new(r))),
                }
            }
            _ => {
                let spec = p.matrix.clone().unwrap_or_default();
                params::plan_matrix_tool(&spec).map(|tool| {
                    ProfilePlan::Matrix(MatrixRun {
                        target: target.name.clone(),
                        client: client.clone(),
                        tool,
                        triggers: matrix::default_triggers(),
                        settle: spec.settle,
                        concurrency: spec.concurrency,
                    })
                })
            }
        };
        match plan {
            Ok(plan) => runs.push(ScheduledRun { target: target.name.clone(), client, plan }),
            Err(e) => {
                // The same parameters fail the same way for every target: report once.
                errors.push(key(e));
                return None;
            }
        }
    }
    // An entry's targets run at once: together they must fit, or every fire would skip some.
    let sessions: u64 = runs.iter().map(|r| u64::from(r.plan.sessions())).sum();
    let rate: f64 = runs.iter().map(|r| r.plan.peak_rate()).sum();
    if runs.len() > 1 && sessions > u64::from(limits.max_sessions) {
        errors.push(ConfigError::new(
            format!("{path}.targets"),
            format!(
                "{} targets run at once and hold {sessions} sessions together, over the cap of {} (heavy_profiles.max_sessions)",
                runs.len(),
                limits.max_sessions
            ),
        ));
        return None;
    }
    if runs.len() > 1 && rate > limits.max_request_rate * (1.0 + 1e-9) {
        errors.push(ConfigError::new(
            format!("{path}.targets"),
            format!(
                "{} targets run at once and send {rate:.1} requests/s together, over the cap of {} (heavy_profiles.max_request_rate)",
                runs.len(),
                limits.max_request_rate
            ),
        ));
        return None;
    }
    Some(ProfileConfig { name: p.name.clone(), kind, schedule, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[targets]]
name = "a"
url = "http://127.0.0.1:8080/mcp"
timeout = "3s"
allow_heavy = true
allow_chaos = true
[[targets]]
name = "b"
url = "http://127.0.0.1:8081/mcp"
protocol = "2025-06-18"
allow_heavy = true

[[profiles]]
name = "nightly"
profile = "load"
targets = ["a", "b"]
schedule = "*/10 * * * * *"
[profiles.load]
preset = "light"

[[profiles]]
name = "fanout"
profile = "notify"
targets = ["a", "b"]
schedule = "0 * * * *"
"#;

    #[test]
    fn entries_are_planned_per_target_with_the_targets_settings() {
        let raw: RawConfig = toml::from_str(CONFIG).unwrap();
        let c = super::super::validate(&raw).unwrap();
        assert!(c.targets[0].allow_chaos && !c.targets[1].allow_chaos);
        let load = &c.profiles[0];
        assert_eq!((load.name.as_str(), load.kind, load.runs.len()), ("nightly", "load", 2));
        let ProfilePlan::Load(run) = &load.runs[0].plan else { panic!("a load plan") };
        // The preset's shape and thresholds, the entry's name as `profile`, the target's timeout.
        assert_eq!((run.engine.plan.sessions, run.engine.plan.rpm), (100, 10.0));
        assert_eq!(run.thresholds.len(), 2);
        assert_eq!((run.profile.as_str(), run.target.as_str()), ("nightly", "a"));
        assert_eq!(run.engine.drain, std::time::Duration::from_secs(3));
        assert_eq!(load.runs[1].client.url.port(), Some(8081));
        // Notify pins the session era on auto, and keeps a pinned protocol.
        let fanout = &c.profiles[1];
        assert_eq!(fanout.runs[0].client.protocol, ProtocolPreference::Pinned("2025-11-25".into()));
        assert_eq!(fanout.runs[1].client.protocol, ProtocolPreference::Pinned("2025-06-18".into()));
        assert_eq!(fanout.runs[0].plan.sessions(), 1000);
    }

    #[test]
    fn notify_in_session_scope_keeps_auto() {
        let config = format!("{CONFIG}[profiles.notify]\ntrigger_scope = \"session\"\ntrigger_tool = \"notify\"\n");
        let raw: RawConfig = toml::from_str(&config).unwrap();
        let c = super::super::validate(&raw).unwrap();
        let fanout = &c.profiles[1];
        assert_eq!(fanout.runs[0].client.protocol, ProtocolPreference::Auto);
        assert_eq!(fanout.runs[1].client.protocol, ProtocolPreference::Pinned("2025-06-18".into()));
        let ProfilePlan::Notify(run) = &fanout.runs[0].plan else { panic!("a notify plan") };
        assert_eq!((run.trigger_scope, run.trigger_tool.as_str()), (TriggerScope::Session, "notify"));
    }

    const CHAOS: &str = r#"
[[targets]]
name = "lab"
url = "http://127.0.0.1:8080/mcp"
redis = "redis://:pw@127.0.0.1:6379/0"
allow_chaos = true
[[targets]]
name = "staging"
url = "http://127.0.0.1:8081/mcp"
allow_heavy = true
allow_chaos = true
[[targets]]
name = "heavy-only"
url = "http://127.0.0.1:8082/mcp"
allow_heavy = true

[[profiles]]
name = "game-day"
profile = "chaos"
targets = ["lab"]
schedule = "0 4 * * 1"
thresholds = ["redis-pause:recovery_time < 5s"]
[profiles.chaos]
scenarios = ["redis-pause:1s", "kill"]
kill_command = "systemctl kill -s KILL 'mcp@1'"
clients = 3
"#;

    fn errors(text: &str) -> Vec<String> {
        let raw: RawConfig = toml::from_str(text).unwrap();
        super::super::validate(&raw).unwrap_err().0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
    }

    #[test]
    fn chaos_needs_allow_chaos_not_allow_heavy() {
        let raw: RawConfig = toml::from_str(CHAOS).unwrap();
        let c = super::super::validate(&raw).unwrap();
        let ProfilePlan::Chaos(run) = &c.profiles[0].runs[0].plan else { panic!("a chaos plan") };
        assert_eq!((run.profile.as_str(), run.target.as_str(), run.sessions), ("game-day", "lab", 3));
        // The target's Redis, its password apart; the session era pinned for the streams.
        let redis = run.redis.as_ref().unwrap();
        assert_eq!(redis.url, "redis://127.0.0.1:6379/0");
        assert_eq!(redis.password.as_ref().map(|p| p.expose()), Some("pw"));
        assert_eq!(c.profiles[0].runs[0].client.protocol, ProtocolPreference::Pinned("2025-11-25".into()));
        assert!(
            matches!(run.kill.as_ref().unwrap().kill, crate::chaos::runner::KillHow::Command(ref a) if a.len() == 5 && a[4] == "mcp@1")
        );

        let heavy_only = CHAOS.replace(r#"targets = ["lab"]"#, r#"targets = ["heavy-only"]"#);
        assert_eq!(
            errors(&heavy_only),
            [r#"profiles[0].targets: target "heavy-only" does not set allow_chaos = true"#]
        );
        let no_redis = CHAOS.replace(r#"targets = ["lab"]"#, r#"targets = ["staging"]"#);
        assert_eq!(
            errors(&no_redis),
            [
                r#"profiles[0].targets: target "staging" does not set redis (scenario redis-pause pauses the target's Redis)"#
            ]
        );
        let two = CHAOS.replace(r#"targets = ["lab"]"#, r#"targets = ["lab", "staging"]"#);
        assert!(
            errors(&two)[0].starts_with("profiles[0].targets: scenario kill runs one kill command"),
            "{:?}",
            errors(&two)
        );
        let no_kill = CHAOS.replace("kill_command = ", "start_command = ");
        assert!(errors(&no_kill)[0].starts_with("profiles[0].chaos.kill_command: scenario kill needs"));
        let abort = CHAOS.replace("[profiles.chaos]", "abort_on_fail = true\n[profiles.chaos]");
        let c = super::super::validate(&toml::from_str::<RawConfig>(&abort).unwrap()).expect("abort_on_fail applies");
        let ProfilePlan::Chaos(run) = &c.profiles[0].runs[0].plan else { panic!("a chaos plan") };
        assert!(run.abort_on_fail);
        let redis_key = CHAOS.replace("clients = 3", "redis = \"redis://x\"");
        assert!(toml::from_str::<RawConfig>(&redis_key).unwrap_err().to_string().contains("unknown field `redis`"));
    }

    const MEMORY: &str = r#"
[[targets]]
name = "lb"
url = "http://127.0.0.1:8080/mcp"
redis = "redis://:pw@127.0.0.1:6379/0"
allow_heavy = true
instances = [{ name = "a", url = "http://127.0.0.1:8081/mcp" }, { name = "b", url = "http://127.0.0.1:8082/x/mcp?k=v" }]

[[profiles]]
name = "mem"
profile = "load"
targets = ["lb"]
schedule = "0 3 * * *"
[profiles.load]
clients = 10
ramp = "5s"
memory_from_instances = true
"#;

    #[test]
    fn load_samples_instance_memory_and_the_targets_redis() {
        let raw: RawConfig = toml::from_str(MEMORY).unwrap();
        let c = super::super::validate(&raw).unwrap();
        let ProfilePlan::Load(run) = &c.profiles[0].runs[0].plan else { panic!("a load plan") };
        let memory = run.memory.as_ref().expect("a memory sampler");
        let urls: Vec<(String, &str)> =
            (0..memory.targets.len()).map(|i| (memory.replica_name(i), memory.targets[i].url.as_str())).collect();
        assert_eq!(
            urls,
            [("a".into(), "http://127.0.0.1:8081/metrics"), ("b".into(), "http://127.0.0.1:8082/metrics")]
        );
        let redis = memory.redis.as_ref().expect("the target's Redis");
        assert_eq!(
            (redis.url.as_str(), redis.password.as_ref().map(|p| p.expose())),
            ("redis://127.0.0.1:6379/0", Some("pw"))
        );
        assert_eq!(run.engine.replicas.as_ref().map(|r| r.names.clone()), Some(vec!["a".into(), "b".into()]));

        // The same refusals as `run load`, named by key.
        let no_ramp = MEMORY.replace("ramp = \"5s\"", "");
        assert_eq!(
            errors(&no_ramp),
            ["profiles[0].load.memory_from_instances: needs a ramp: memory is regressed on sessions as they join"]
        );
        let both = MEMORY
            .replace("memory_from_instances = true", "memory_from_instances = true\nmemory_urls = [\"http://h/m\"]");
        assert!(
            errors(&both)[0].starts_with("profiles[0].load.memory_from_instances: set either"),
            "{:?}",
            errors(&both)
        );
        let single = MEMORY.replace("instances = [", "# [");
        assert!(errors(&single)[0].contains("the target lists no instances"), "{:?}", errors(&single));
        let bad_url = MEMORY.replace("memory_from_instances = true", "memory_urls = [\"ftp://h/m\"]");
        assert!(errors(&bad_url)[0].starts_with("profiles[0].load.memory_urls: "), "{:?}", errors(&bad_url));
        let fast = MEMORY.replace("ramp = ", "memory_interval = \"10ms\"\nramp = ");
        assert_eq!(errors(&fast), ["profiles[0].load.memory_interval: must be at least 50ms"]);
        // Without memory sampling the Redis is left alone; `redis` is the target's, not a key.
        let none = MEMORY.replace("memory_from_instances = true", "no_delete = true");
        let c = super::super::validate(&toml::from_str(&none).unwrap()).unwrap();
        let ProfilePlan::Load(run) = &c.profiles[0].runs[0].plan else { panic!("a load plan") };
        assert!(run.memory.is_none() && !run.engine.delete_sessions);
        let redis_key = MEMORY.replace("clients = 10", "redis = \"redis://x\"");
        assert!(toml::from_str::<RawConfig>(&redis_key).unwrap_err().to_string().contains("unknown field `redis`"));
    }

    const LONGEVITY: &str = r#"
[[targets]]
name = "a"
url = "http://127.0.0.1:8080/mcp"
timeout = "3s"
allow_heavy = true
[[targets]]
name = "b"
url = "http://127.0.0.1:8081/mcp"
allow_heavy = true

[[profiles]]
name = "soak"
profile = "longevity"
targets = ["a"]
schedule = "0 1 * * *"
thresholds = ["memory_slope < 10MB/h"]
[profiles.longevity]
clients = 20
duration = "6h"
churn = 0.2
memory_url = "http://127.0.0.1:9100/metrics"
fast_tool = "ping"
"#;

    /// `text` validates when `want` is empty, else its first error starts with `want`.
    fn check(text: &str, want: &str) {
        let raw: RawConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match super::super::validate(&raw) {
            Ok(_) => assert!(want.is_empty(), "{text}: accepted, wanted {want}"),
            Err(e) => {
                let got: Vec<String> = e.0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect();
                assert!(!want.is_empty() && got[0].starts_with(want), "{text}: {got:?}");
            }
        }
    }

    #[test]
    fn longevity_is_planned_like_run_longevity_and_refused_naming_the_key() {
        let raw: RawConfig = toml::from_str(LONGEVITY).unwrap();
        let c = super::super::validate(&raw).unwrap();
        let soak = &c.profiles[0];
        assert_eq!((soak.kind, soak.runs.len()), ("longevity", 1));
        let ProfilePlan::Longevity(run) = &soak.runs[0].plan else { panic!("a longevity plan") };
        assert_eq!((run.profile.as_str(), run.target.as_str()), ("soak", "a"));
        assert_eq!((run.engine.plan.sessions, run.engine.unclean_share), (20, 0.2));
        assert_eq!(run.engine.session_lifetime, Some(std::time::Duration::from_secs(300)));
        assert_eq!(
            run.mix[0].kind,
            crate::profile::load::OpKind::ToolCall {
                tool: "ping".into(),
                arguments: serde_json::json!({"message": "load"})
            }
        );
        assert_eq!(run.thresholds.len(), 1);
        assert!(run.memory.is_some() && run.snapshots.is_none());
        assert_eq!(soak.runs[0].client.protocol, ProtocolPreference::Pinned("2025-11-25".into()));
        assert_eq!(soak.runs[0].plan.sessions(), 20);

        let cases = [
            ("churn = 0.2", "churn = 2.0", "profiles[0].longevity.churn: must be within 0..=1, got 2"),
            (
                "memory_url = \"http://127.0.0.1:9100/metrics\"",
                "memory_pid = 1",
                "", // a PID is a source too: no error
            ),
            (
                "memory_url = \"http://127.0.0.1:9100/metrics\"",
                "",
                "profiles[0].thresholds: \"memory_slope < 10MB/h\": memory thresholds need a source",
            ),
            ("clients = 20", "clients = 20000", "profiles[0].longevity.clients: 20000 sessions exceed the cap"),
            ("duration = \"6h\"", "duration = \"6h\"\nwarmup = \"6h\"", "profiles[0].longevity.warmup: 6h leaves"),
            (
                "duration = \"6h\"",
                "duration = \"6h\"\nslope_window = \"1m\"",
                "profiles[0].longevity.slope_window: 1m must hold at least two snapshots",
            ),
            (
                "fast_tool = \"ping\"",
                "snapshots = \"s.jsonl\"",
                "", // one target may name its file
            ),
        ];
        for (from, to, want) in cases {
            let text = LONGEVITY.replace(from, to);
            check(&text, want);
        }
        let two = LONGEVITY.replace(r#"targets = ["a"]"#, r#"targets = ["a", "b"]"#);
        check(&two, "");
        check(
            &two.replace("fast_tool = \"ping\"", "snapshots = \"s.jsonl\""),
            "profiles[0].longevity.snapshots: one snapshots file for 2 targets",
        );
        let load_table =
            LONGEVITY.replace("[profiles.longevity]", "[profiles.load]\nclients = 3\n[profiles.longevity]");
        check(&load_table, "profiles[0].load: parameters of the load profile");
    }

    #[test]
    fn schedules_take_an_optional_seconds_field() {
        assert!(parse_schedule("0 3 * * *").is_ok());
        assert!(parse_schedule("*/5 * * * * *").is_ok());
        assert!(parse_schedule("61 * * * *").is_err());
        assert!(parse_schedule("@nightly-ish").is_err());
    }
}
