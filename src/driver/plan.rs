//! Planning: a profile's parameters (`crate::spec`) against one target, into a run its profile
//! can execute. One function for both callers: `run <kind>` (flags) and the daemon's
//! `[[profiles]]` entries, which `check-config` and `serve` plan before anything starts.

use std::sync::Arc;

use croner::Cron;

use crate::chaos::{self, ChaosRedis, ChaosRun};
use crate::config::{Config, ConfigError, ConfigErrors, ProfileConfig, TargetConfig};
use crate::mcp::{ClientConfig, ProtocolPreference};
use crate::profile::LoadRun;
use crate::profile::longevity::LongevityRun;
use crate::profile::matrix::{self, MatrixRun};
use crate::profile::notify::NotifyRun;
use crate::profile::params::{self, TargetMemory};
use crate::profile::replicas::ReplicaTagging;
use crate::spec::{Caps, ParamError, ProfileKind, ProfileSpec, RunOptions, TriggerScope};

/// The revision pinned on `protocol = auto` for runs whose sessions must hold a GET stream or
/// be ended (broadcast notify, chaos, longevity churn).
pub const SESSION_ERA: &str = "2025-11-25";

/// What a target offers a run besides its URL: where its replicas, memory and Redis are.
#[derive(Debug, Clone, Default)]
pub struct PlanTarget {
    /// Requests and deliveries are also counted by the replica that served them.
    pub replicas: Option<Arc<ReplicaTagging>>,
    /// Where the load profile samples the target's memory.
    pub memory: TargetMemory,
    /// The Redis `redis-pause` pauses.
    pub chaos_redis: Option<ChaosRedis>,
}

impl PlanTarget {
    /// A configured target's replicas, memory endpoints and Redis.
    pub fn from_config(target: &TargetConfig) -> Self {
        Self {
            replicas: target.instances.as_ref().map(|i| {
                Arc::new(ReplicaTagging {
                    header: i.header.clone(),
                    names: i.replicas.iter().map(|r| r.name.clone()).collect(),
                })
            }),
            memory: TargetMemory {
                instances: target
                    .instances
                    .iter()
                    .flat_map(|i| &i.replicas)
                    .map(|r| (r.name.clone(), r.url.clone()))
                    .collect(),
                redis: target.redis.clone(),
            },
            chaos_redis: target
                .redis
                .as_ref()
                .map(|r| ChaosRedis { url: r.url.to_string(), password: r.password.clone() }),
        }
    }
}

/// A run fully planned against one target, of its profile's kind.
#[derive(Debug, Clone)]
pub enum PlannedRun {
    Load(LoadRun),
    Notify(NotifyRun),
    Matrix(MatrixRun),
    Chaos(Box<ChaosRun>),
    Longevity(Box<LongevityRun>),
}

impl PlannedRun {
    pub fn kind(&self) -> ProfileKind {
        match self {
            PlannedRun::Load(_) => ProfileKind::Load,
            PlannedRun::Notify(_) => ProfileKind::Notify,
            PlannedRun::Matrix(_) => ProfileKind::Matrix,
            PlannedRun::Chaos(_) => ProfileKind::Chaos,
            PlannedRun::Longevity(_) => ProfileKind::Longevity,
        }
    }

    /// The `target` label.
    pub fn target(&self) -> &str {
        match self {
            PlannedRun::Load(r) => &r.target,
            PlannedRun::Notify(r) => &r.target,
            PlannedRun::Matrix(r) => &r.target,
            PlannedRun::Chaos(r) => &r.target,
            PlannedRun::Longevity(r) => &r.target,
        }
    }

    /// The `profile` label: the kind for one-shot runs, the entry's name in the daemon.
    pub fn profile(&self) -> &str {
        match self {
            PlannedRun::Load(r) => &r.profile,
            PlannedRun::Notify(r) => &r.profile,
            PlannedRun::Matrix(r) => &r.profile,
            PlannedRun::Chaos(r) => &r.profile,
            PlannedRun::Longevity(r) => &r.profile,
        }
    }

    /// Sessions the run holds at its peak (counted against `max_sessions` across runs).
    pub fn sessions(&self) -> u32 {
        match self {
            PlannedRun::Load(r) => r.engine.plan.sessions,
            PlannedRun::Notify(r) => r.sessions,
            PlannedRun::Matrix(r) => r.concurrency as u32,
            PlannedRun::Chaos(r) => r.sessions,
            PlannedRun::Longevity(r) => r.engine.plan.sessions,
        }
    }

    /// Requests per second at its peak (counted against `max_request_rate` across runs).
    pub fn peak_rate(&self) -> f64 {
        match self {
            PlannedRun::Load(r) => r.engine.plan.peak_rate(),
            // A notify run sends one trigger per broadcast; a matrix cell a handful of requests.
            PlannedRun::Notify(r) => f64::from(r.broadcasts) / r.batch_interval.as_secs_f64().max(0.001),
            PlannedRun::Matrix(r) => r.concurrency as f64,
            PlannedRun::Chaos(r) => r.peak_rate(),
            PlannedRun::Longevity(r) => r.engine.plan.peak_rate(),
        }
    }
}

/// Plan `spec` against a target reached with `client`: the one planning path of every profile.
/// On `protocol = auto` the session era is pinned where the run needs sessions that hold a GET
/// stream or end (broadcast notify, chaos, longevity); a pinned protocol is kept.
pub fn plan_run(
    spec: &ProfileSpec,
    options: &RunOptions<'_>,
    mut client: ClientConfig,
    target: PlanTarget,
) -> Result<(PlannedRun, ClientConfig), ParamError> {
    let needs_sessions = match spec {
        ProfileSpec::Notify(n) => n.trigger_scope == TriggerScope::Broadcast,
        ProfileSpec::Chaos(_) | ProfileSpec::Longevity(_) => true,
        ProfileSpec::Load(_) | ProfileSpec::Matrix(_) => false,
    };
    if needs_sessions && client.protocol == ProtocolPreference::Auto {
        client.protocol = ProtocolPreference::Pinned(SESSION_ERA.into());
    }
    let run = match spec {
        ProfileSpec::Load(spec) => {
            let mut run = params::plan_load(spec, options)?;
            run.memory = params::plan_memory(spec, run.engine.plan.ramp_up, &target.memory)?;
            run.engine.replicas = target.replicas;
            PlannedRun::Load(run)
        }
        ProfileSpec::Notify(spec) => {
            PlannedRun::Notify(NotifyRun { replicas: target.replicas, ..params::plan_notify(spec, options)? })
        }
        ProfileSpec::Longevity(spec) => PlannedRun::Longevity(Box::new(params::plan_longevity(spec, options)?)),
        ProfileSpec::Chaos(spec) => PlannedRun::Chaos(Box::new(chaos::plan_chaos(spec, options, target.chaos_redis)?)),
        ProfileSpec::Matrix(spec) => PlannedRun::Matrix(MatrixRun {
            profile: options.profile.to_string(),
            target: options.target.to_string(),
            client: client.clone(),
            tool: params::plan_matrix_tool(spec)?,
            triggers: matrix::default_triggers(),
            settle: spec.settle,
            concurrency: spec.concurrency,
        }),
    };
    Ok((run, client))
}

/// A `[[profiles]]` entry planned against each of its targets.
#[derive(Debug, Clone)]
pub struct ScheduledProfile {
    /// The `profile` label of its runs.
    pub name: String,
    pub kind: ProfileKind,
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
    pub plan: PlannedRun,
}

/// Plan every `[[profiles]]` entry of a validated config; problems name their config key.
pub fn plan_scheduled(config: &Config) -> Result<Vec<ScheduledProfile>, ConfigErrors> {
    let mut errors = Vec::new();
    let planned: Vec<ScheduledProfile> = config
        .profiles
        .iter()
        .enumerate()
        .filter_map(|(i, p)| plan_entry(&format!("profiles[{i}]"), p, config, &mut errors))
        .collect();
    if errors.is_empty() { Ok(planned) } else { Err(ConfigErrors(errors)) }
}

fn plan_entry(
    path: &str,
    p: &ProfileConfig,
    config: &Config,
    errors: &mut Vec<ConfigError>,
) -> Option<ScheduledProfile> {
    let limits = &config.heavy;
    let caps = Caps {
        max_sessions: limits.max_sessions,
        max_rate: limits.max_request_rate,
        sessions_name: "heavy_profiles.max_sessions",
        rate_name: "heavy_profiles.max_request_rate",
        // Validation stays pure (check-config may run on another host).
        descriptors: u64::MAX,
    };
    let key = |e: &ParamError| {
        let field = match e.key {
            "thresholds" | "abort_on_fail" => e.key.to_string(),
            _ => format!("{}.{}", p.kind, e.key),
        };
        ConfigError::new(format!("{path}.{field}"), e.message.clone())
    };
    let mut runs = Vec::new();
    for name in &p.targets {
        let target = config.targets.iter().find(|t| &t.name == name)?;
        let options = RunOptions {
            profile: &p.name,
            target: &target.name,
            thresholds: &p.thresholds,
            abort_on_fail: p.abort_on_fail,
            timeout: target.timeout,
            tick: std::time::Duration::from_millis(500),
            caps,
        };
        match plan_run(&p.spec, &options, target.client_config(), PlanTarget::from_config(target)) {
            Ok((plan, client)) => runs.push(ScheduledRun { target: target.name.clone(), client, plan }),
            Err(e) if p.kind == ProfileKind::Chaos && e.key == "redis" => {
                errors.push(ConfigError::new(
                    format!("{path}.targets"),
                    format!("target {name:?} does not set redis (scenario redis-pause pauses the target's Redis)"),
                ));
                return None;
            }
            Err(e) => {
                // The same parameters fail the same way for every target: report once.
                errors.push(key(&e));
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
    Some(ScheduledProfile { name: p.name.clone(), kind: p.kind, schedule: p.schedule.clone(), runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    /// The config validated and its entries planned, as `check-config` and `serve` do.
    fn validate(raw: &RawConfig) -> Result<Planned, ConfigErrors> {
        let config = crate::config::validate(raw)?;
        let profiles = plan_scheduled(&config)?;
        Ok(Planned { targets: config.targets, profiles })
    }

    #[derive(Debug)]
    struct Planned {
        targets: Vec<TargetConfig>,
        profiles: Vec<ScheduledProfile>,
    }

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
        let c = validate(&raw).unwrap();
        assert!(c.targets[0].allow_chaos && !c.targets[1].allow_chaos);
        let load = &c.profiles[0];
        assert_eq!((load.name.as_str(), load.kind, load.runs.len()), ("nightly", ProfileKind::Load, 2));
        let PlannedRun::Load(run) = &load.runs[0].plan else { panic!("a load plan") };
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
        let c = validate(&raw).unwrap();
        let fanout = &c.profiles[1];
        assert_eq!(fanout.runs[0].client.protocol, ProtocolPreference::Auto);
        assert_eq!(fanout.runs[1].client.protocol, ProtocolPreference::Pinned("2025-06-18".into()));
        let PlannedRun::Notify(run) = &fanout.runs[0].plan else { panic!("a notify plan") };
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
        validate(&raw).unwrap_err().0.iter().map(|e| format!("{}: {}", e.key, e.message)).collect()
    }

    #[test]
    fn chaos_needs_allow_chaos_not_allow_heavy() {
        let raw: RawConfig = toml::from_str(CHAOS).unwrap();
        let c = validate(&raw).unwrap();
        let PlannedRun::Chaos(run) = &c.profiles[0].runs[0].plan else { panic!("a chaos plan") };
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
        let c = validate(&toml::from_str::<RawConfig>(&abort).unwrap()).expect("abort_on_fail applies");
        let PlannedRun::Chaos(run) = &c.profiles[0].runs[0].plan else { panic!("a chaos plan") };
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
        let c = validate(&raw).unwrap();
        let PlannedRun::Load(run) = &c.profiles[0].runs[0].plan else { panic!("a load plan") };
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
        let c = validate(&toml::from_str(&none).unwrap()).unwrap();
        let PlannedRun::Load(run) = &c.profiles[0].runs[0].plan else { panic!("a load plan") };
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
        match validate(&raw) {
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
        let c = validate(&raw).unwrap();
        let soak = &c.profiles[0];
        assert_eq!((soak.kind, soak.runs.len()), (ProfileKind::Longevity, 1));
        let PlannedRun::Longevity(run) = &soak.runs[0].plan else { panic!("a longevity plan") };
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
}
