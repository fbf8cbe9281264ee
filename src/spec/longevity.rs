//! Parameters of the longevity (soak) profile.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MixSpec;

/// Parameters of the longevity profile (`run longevity` flags, `[profiles.longevity]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongevitySpec {
    /// Sessions in the steady population.
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Requests per minute per session.
    #[arg(long, default_value_t = 10.0)]
    pub rpm: f64,
    /// Share (0..=1) of ending sessions dropped without DELETE, as crashed or disconnected clients.
    #[arg(long, default_value_t = 0.1)]
    pub churn: f64,
    /// Each session ends this long after it connected and a new one replaces it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    /// The target's Prometheus endpoint, e.g. http://10.0.0.5:9100/metrics.
    #[arg(long, conflicts_with = "memory_pid")]
    pub memory_url: Option<String>,
    /// Metric read from the memory URL (summed over its series).
    #[arg(long, default_value = "process_resident_memory_bytes")]
    pub memory_metric: String,
    /// The target's process id when it runs on this host (VmRSS from /proc/PID/status).
    #[arg(long)]
    pub memory_pid: Option<u32>,
    /// Time between memory snapshots.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// Sliding window of the least-squares memory slope.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    #[serde(with = "humantime_serde")]
    pub slope_window: Duration,
    /// Leave the snapshots of this first stretch out of growth and slope (they are still
    /// exported and written): a freshly started target warms up its allocator and caches.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Append one JSON line per snapshot to this file (the daemon's default: beside the run's
    /// report in the results directory).
    #[arg(long)]
    pub snapshots: Option<std::path::PathBuf>,
    /// The operation mix (its keys sit beside the others in `[profiles.longevity]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub workload: MixSpec,
}

impl Default for LongevitySpec {
    fn default() -> Self {
        Self {
            clients: 100,
            duration: Duration::from_secs(24 * 3600),
            rpm: 10.0,
            churn: 0.1,
            session_lifetime: Duration::from_secs(300),
            memory_url: None,
            memory_metric: "process_resident_memory_bytes".into(),
            memory_pid: None,
            snapshot_interval: Duration::from_secs(60),
            slope_window: Duration::from_secs(3600),
            warmup: Duration::ZERO,
            snapshots: None,
            workload: MixSpec::default(),
        }
    }
}
