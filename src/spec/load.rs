//! Parameters of the load profile, and the operation mix it shares with longevity and chaos.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Key prefix of session metadata in a target's Redis (the key is the prefix and the session id).
pub const DEFAULT_SESSION_KEY_PREFIX: &str = "mcp:session:";

/// The weighted operation mix of the load and longevity profiles: flags of `run load` and
/// `run longevity`, keys of `[profiles.load]` and `[profiles.longevity]` (flattened into both).
/// No `deny_unknown_fields` here: serde cannot combine it with `flatten`; the enclosing spec
/// denies unknown keys instead. Each key names itself in its errors (see [`keyed`]).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct MixSpec {
    /// Weights by operation, e.g. "fast_tool=50,resource_read=10": the named operations make the
    /// whole mix, the others get weight 0 (operations: fast_tool, slow_tool, resource_read,
    /// prompt_get, tools_list, resources_list, prompts_list; default 40/10/20/15/5/5/5).
    #[arg(long)]
    #[serde(deserialize_with = "keyed::mix")]
    pub mix: Option<String>,
    #[arg(long, default_value = "echo")]
    #[serde(deserialize_with = "keyed::fast_tool")]
    pub fast_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"message":"load"}"#)]
    #[serde(deserialize_with = "keyed::fast_tool_args")]
    pub fast_tool_args: String,
    #[arg(long, default_value = "slow")]
    #[serde(deserialize_with = "keyed::slow_tool")]
    pub slow_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"ms":10}"#)]
    #[serde(deserialize_with = "keyed::slow_tool_args")]
    pub slow_tool_args: String,
    #[arg(long, default_value = "canary://static/hello")]
    #[serde(deserialize_with = "keyed::resource")]
    pub resource: String,
    #[arg(long, default_value = "greeting")]
    #[serde(deserialize_with = "keyed::prompt")]
    pub prompt: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"name":"load"}"#)]
    #[serde(deserialize_with = "keyed::prompt_args")]
    pub prompt_args: String,
}

/// Deserializers of flattened keys: serde reports an error inside a flattened table without its
/// key, so each of these prefixes its own (`key `fast_tool`: invalid type ...`), and the config
/// loader moves that prefix into the key path.
pub mod keyed {
    use serde::{Deserialize, Deserializer, de::Error};

    /// Start of a message that names its key; the key follows, closed by "`: ".
    pub const PREFIX: &str = "key `";

    fn named<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D, key: &str) -> Result<T, D::Error> {
        T::deserialize(d).map_err(|e| D::Error::custom(format!("{PREFIX}{key}`: {e}")))
    }

    macro_rules! keyed {
        ($($key:ident),*) => {$(
            pub fn $key<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
                named(d, stringify!($key))
            }
        )*};
    }
    keyed!(mix, fast_tool, fast_tool_args, slow_tool, slow_tool_args, resource, prompt, prompt_args);
}

impl Default for MixSpec {
    fn default() -> Self {
        Self {
            mix: None,
            fast_tool: "echo".into(),
            fast_tool_args: r#"{"message":"load"}"#.into(),
            slow_tool: "slow".into(),
            slow_tool_args: r#"{"ms":10}"#.into(),
            resource: "canary://static/hello".into(),
            prompt: "greeting".into(),
            prompt_args: r#"{"name":"load"}"#.into(),
        }
    }
}

/// Parameters of the load profile (`run load` flags, `[profiles.load]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    /// light (100 clients, 5m, 10 rpm), moderate (1000, 30m, 20) or heavy (10000, 60m, 15);
    /// other flags override its values; its thresholds apply when none is given.
    #[arg(long)]
    pub preset: Option<String>,
    /// Sessions (default 10, or the preset's).
    #[arg(long)]
    pub clients: Option<u32>,
    /// Run length (default 60s, or the preset's).
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Requests per minute per client (default 60, or the preset's).
    #[arg(long)]
    pub rpm: Option<f64>,
    /// Ramp-up: sessions join evenly over this span.
    #[arg(long, value_parser = humantime::parse_duration)]
    #[serde(with = "humantime_serde")]
    pub ramp: Option<Duration>,
    /// Ramp-down: sessions leave evenly over this span before the end.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    #[serde(with = "humantime_serde")]
    pub ramp_down: Duration,
    /// Stop after this many requests in total.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Requests allowed in flight at once; slots beyond are shed and counted (default: the peak
    /// rate times the request timeout, at least 4 per client, at most 100000).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// The operation mix (its keys sit beside the others in `[profiles.load]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub workload: MixSpec,
    /// Open the server-to-client stream (GET or listen) in every session.
    #[arg(long)]
    pub stream: bool,
    /// A request sent this much after its intended start counts as late.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    #[serde(with = "humantime_serde")]
    pub late_after: Duration,
    /// A target's Prometheus endpoint exporting `process_resident_memory_bytes`, sampled during
    /// the ramp for memory per 1,000 sessions; `NAME=URL` names the replica (repeatable, one per
    /// instance). Needs --ramp.
    #[arg(long = "memory-url", value_name = "[NAME=]URL")]
    pub memory_urls: Vec<String>,
    /// Daemon only: sample `/metrics` on the origin of each of the target's `instances` (named
    /// as their replica), as `memory_urls` would.
    #[arg(skip)]
    pub memory_from_instances: bool,
    /// The target's Redis (redis://[:password@]host:port/db): `used_memory` sampled during the
    /// ramp, and after the run the session keys it left behind (orphaned session keys). Not a
    /// config key: the daemon samples the target's own `redis`, with its password.
    #[arg(long)]
    #[serde(skip)]
    pub redis: Option<String>,
    /// Sampling interval of --memory-url and --redis during the ramp.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "500ms")]
    #[serde(with = "humantime_serde")]
    pub memory_interval: Duration,
    /// Key prefix of session metadata in --redis (the key is the prefix and the session id).
    #[arg(long, default_value = DEFAULT_SESSION_KEY_PREFIX)]
    pub session_key_prefix: String,
    /// End the run without DELETE: sessions are left to the server's idle expiry, as clients
    /// that vanish would leave them (a churn that finds leaks and orphaned session keys).
    #[arg(long)]
    pub no_delete: bool,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            preset: None,
            clients: None,
            duration: None,
            rpm: None,
            ramp: None,
            ramp_down: Duration::ZERO,
            max_requests: None,
            max_in_flight: None,
            workload: MixSpec::default(),
            stream: false,
            late_after: Duration::from_millis(10),
            memory_urls: Vec::new(),
            memory_from_instances: false,
            redis: None,
            memory_interval: Duration::from_millis(500),
            session_key_prefix: DEFAULT_SESSION_KEY_PREFIX.into(),
            no_delete: false,
        }
    }
}
