//! Longevity runs as metrics: memory of the target and of this process at every snapshot (bytes,
//! growth since the first snapshot, least-squares slope), failed samples, and the churn counters.

use metrics::{Gauge, counter, gauge};

use super::catalogue as m;
use crate::profile::longevity::{MemoryObserver, MemorySnapshot};

/// Gauges of one process (`target` or `daemon`).
struct ProcessGauges {
    bytes: Gauge,
    growth: Gauge,
    slope: Gauge,
}

/// The memory side of a longevity run's metrics (the request side is `load::RunMetrics`).
pub struct LongevityMetrics {
    target: String,
    profile: String,
    target_gauges: Option<ProcessGauges>,
    daemon_gauges: ProcessGauges,
}

impl LongevityMetrics {
    /// Register the run's series; `samples_target` is false when no target memory source is set.
    pub fn start(target: &str, profile: &str, samples_target: bool) -> Self {
        let (t, p) = (target.to_string(), profile.to_string());
        let gauges = |process: &'static str| ProcessGauges {
            bytes: gauge!(m::PROFILE_MEMORY.name, "target" => t.clone(), "profile" => p.clone(), "process" => process),
            growth: gauge!(m::PROFILE_MEMORY_GROWTH.name, "target" => t.clone(), "profile" => p.clone(),
                "process" => process),
            slope: gauge!(m::PROFILE_MEMORY_SLOPE.name, "target" => t.clone(), "profile" => p.clone(),
                "process" => process),
        };
        if samples_target {
            for class in crate::inspect::memory::MemoryError::CLASSES {
                counter!(m::PROFILE_MEMORY_SAMPLE_ERRORS.name, "target" => t.clone(), "profile" => p.clone(),
                    "process" => "target", "error_type" => class)
                .increment(0);
            }
        }
        for end in ["clean", "unclean"] {
            counter!(m::PROFILE_SESSIONS_ENDED.name, "target" => t.clone(), "profile" => p.clone(), "end" => end)
                .increment(0);
        }
        Self {
            target_gauges: samples_target.then(|| gauges("target")),
            daemon_gauges: gauges("daemon"),
            target: t,
            profile: p,
        }
    }
}

fn set(g: &ProcessGauges, bytes: Option<u64>, growth: Option<f64>, slope_per_hour: Option<f64>) {
    if let Some(b) = bytes {
        g.bytes.set(b as f64);
    }
    if let Some(r) = growth {
        g.growth.set(r);
    }
    if let Some(s) = slope_per_hour {
        g.slope.set(s / 3600.0);
    }
}

impl MemoryObserver for LongevityMetrics {
    fn snapshot(&self, s: &MemorySnapshot) {
        if let Some(g) = &self.target_gauges {
            set(g, s.target_bytes, s.target_growth_ratio, s.target_slope_bytes_per_hour);
        }
        set(&self.daemon_gauges, s.daemon_bytes, s.daemon_growth_ratio, s.daemon_slope_bytes_per_hour);
        if let Some(error_type) = &s.target_error {
            counter!(m::PROFILE_MEMORY_SAMPLE_ERRORS.name, "target" => self.target.clone(),
                "profile" => self.profile.clone(), "process" => "target", "error_type" => error_type.clone())
            .increment(1);
        }
        tracing::debug!(target_name = %self.target, target_bytes = ?s.target_bytes, daemon_bytes = ?s.daemon_bytes,
            slope_bytes_per_hour = ?s.target_slope_bytes_per_hour, "Memory snapshot");
    }
}
