//! `mcp-canary run longevity`: a churning, steady population for a long duration while the
//! target's and this process's memory are snapshotted; the shared run driver (`driver/`, `run/mod.rs`) gives it
//! thresholds, the JSON report, the baseline, metrics and the exit status.

use super::{CommonArgs, Refused, plan_flags};
use crate::driver::{PlanTarget, PlannedRun};
use crate::mcp::ClientConfig;
use crate::profile::longevity;
use crate::spec::{LongevitySpec, ProfileSpec};

/// Flags of `mcp-canary run longevity`.
#[derive(clap::Args, Debug, Clone)]
pub struct LongevityArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub spec: LongevitySpec,
    /// Global cap on the aggregate request rate (per second); larger runs are refused.
    #[arg(long, default_value_t = crate::spec::DEFAULT_MAX_RATE)]
    pub max_rate: f64,
}

/// Validate the flags of a longevity run.
pub fn plan_from_args(args: &LongevityArgs) -> Result<(PlannedRun, ClientConfig), Refused> {
    plan_flags(&args.common, ProfileSpec::Longevity(Box::new(args.spec.clone())), args.max_rate, PlanTarget::default())
}

/// The memory part of the end-of-run table.
pub fn memory_lines(l: &longevity::LongevityResults) -> String {
    let mb = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.1}MB", b as f64 / 1e6));
    let row = |name: &str, m: &longevity::MemorySummary| {
        format!(
            "{name:<7} first {} last {} min {} max {}  growth {}  slope {} ({} samples)\n",
            mb(m.first_bytes),
            mb(m.last_bytes),
            mb(m.min_bytes),
            mb(m.max_bytes),
            m.growth_ratio.map_or("-".to_string(), |g| format!("{:.2}%", g * 100.0)),
            m.slope_bytes_per_hour.map_or("-".to_string(), crate::profile::threshold::format_bytes_per_hour),
            m.samples
        )
    };
    let mut out = format!(
        "sessions ended: {} with DELETE, {} without, {} the server kept none of; memory ({}):\n",
        l.sessions_ended_clean,
        l.sessions_ended_unclean,
        l.sessions_ended_sessionless,
        l.params.memory_source.as_deref().unwrap_or("target not sampled")
    );
    if let Some(t) = &l.target_memory {
        out.push_str(&row("target", t));
    }
    out.push_str(&row("daemon", &l.daemon_memory));
    for (class, n) in &l.sample_errors {
        out.push_str(&format!("target memory samples failed: {class}={n}\n"));
    }
    out
}
