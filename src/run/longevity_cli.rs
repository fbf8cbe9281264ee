//! `mcp-canary run longevity`: a churning, steady population for a long duration while the
//! target's and this process's memory are snapshotted; the shared run driver of `run.rs` gives it
//! thresholds, the JSON report, the baseline, metrics and the exit status.

use std::sync::Arc;

use super::{CommonArgs, EXIT_REFUSED, Refused, client_config, drive_cli, refused_flag, run_options};
use crate::inspect::memory::MemorySource;
use crate::mcp::ClientConfig;
use crate::profile::longevity::{self, LongevityRun};
use crate::profile::params;
use crate::spec::LongevitySpec;
use crate::telemetry;

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
pub fn plan_from_args(args: &LongevityArgs) -> Result<(LongevityRun, ClientConfig), Refused> {
    // Sessions must exist for churn to mean anything: the session revision by default.
    let (name, client) = client_config(&args.common, "2025-11-25")?;
    let run = params::plan_longevity(&args.spec, &run_options(&args.common, "longevity", &name, args.max_rate))
        .map_err(refused_flag)?;
    Ok((run, client))
}

/// Run the profile; returns the exit status.
pub async fn run(args: LongevityArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let (run, client) = match plan_from_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let snapshots = match &run.snapshots {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open snapshots file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let banner = format!(
        "longevity run: {} sessions x {} rpm for {} against {}, sessions live {} ({}% end without DELETE), memory: {} every {}",
        run.engine.plan.sessions,
        run.engine.plan.rpm,
        humantime::format_duration(run.engine.plan.duration),
        run.target,
        humantime::format_duration(args.spec.session_lifetime),
        args.spec.churn * 100.0,
        run.memory.as_ref().map_or("this process only".to_string(), MemorySource::describe),
        humantime::format_duration(run.snapshot_interval),
    );
    let operations: Vec<String> = run.mix.iter().map(|e| e.name.clone()).collect();
    let (target, profile) = (run.target.clone(), run.profile.clone());
    let samples_target = run.memory.is_some();
    let metrics = |started| telemetry::load::RunMetrics::start(&target, &profile, &operations, started);
    drive_cli(&args.common, &banner, &profile, &target, metrics, |metrics, hooks, http| {
        let memory_metrics =
            Arc::new(telemetry::longevity::LongevityMetrics::start(&run.target, &run.profile, samples_target));
        longevity::run_longevity(run, client, http, metrics, memory_metrics, snapshots, hooks, shutdown)
    })
    .await
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
