//! `mcp-canary run longevity`: a churning, steady population for a long duration while the
//! target's and this process's memory are snapshotted; the shared run driver of `run.rs` gives it
//! thresholds, the JSON report, the baseline, metrics and the exit status.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::inspect::memory::MemorySource;
use crate::mcp::ClientConfig;
use crate::profile::engine::EngineConfig;
use crate::profile::longevity::{self, LongevityRun};
use crate::profile::params::MixSpec;
use crate::profile::threshold::Threshold;
use crate::run::{CommonArgs, EXIT_REFUSED, Refused, build_mix, client_config, drive_cli};
use crate::schedule::arrival::ArrivalPlan;
use crate::telemetry;

/// Threshold of a longevity run with a target memory source when none is given (DESIGN.md section 2).
pub const LONGEVITY_DEFAULT_THRESHOLDS: [&str; 1] = ["memory_growth < 50%"];

/// Flags of `mcp-canary run longevity`.
#[derive(clap::Args, Debug, Clone)]
pub struct LongevityArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Sessions in the steady population.
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub duration: Duration,
    /// Requests per minute per session.
    #[arg(long, default_value_t = 10.0)]
    pub rpm: f64,
    /// Share (0..=1) of ending sessions dropped without DELETE, as crashed or disconnected clients.
    #[arg(long, default_value_t = 0.1)]
    pub churn: f64,
    /// Each session ends this long after it connected and a new one replaces it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    pub session_lifetime: Duration,
    /// The target's Prometheus endpoint, e.g. http://10.0.0.5:9100/metrics.
    #[arg(long, conflicts_with = "memory_pid")]
    pub memory_url: Option<String>,
    /// Metric read from --memory-url (summed over its series).
    #[arg(long, default_value = "process_resident_memory_bytes")]
    pub memory_metric: String,
    /// The target's process id when it runs on this host (VmRSS from /proc/PID/status).
    #[arg(long)]
    pub memory_pid: Option<u32>,
    /// Time between memory snapshots.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m")]
    pub snapshot_interval: Duration,
    /// Sliding window of the least-squares memory slope.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub slope_window: Duration,
    /// Leave the snapshots of this first stretch out of growth and slope (they are still
    /// exported and written): a freshly started target warms up its allocator and caches.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Append one JSON line per snapshot to this file.
    #[arg(long)]
    pub snapshots: Option<PathBuf>,
    /// Global cap on the aggregate request rate (per second); larger runs are refused.
    #[arg(long, default_value_t = 5_000.0)]
    pub max_rate: f64,
    #[command(flatten)]
    pub mix: MixSpec,
}

/// Validate the flags of a longevity run.
pub fn plan_from_args(args: &LongevityArgs) -> Result<(LongevityRun, ClientConfig), Refused> {
    let c = &args.common;
    if args.clients == 0 {
        return Err(Refused("--clients must be at least 1".into()));
    }
    if args.clients > c.max_sessions {
        return Err(Refused(format!(
            "{} sessions exceed the cap of {} (--max-sessions)",
            args.clients, c.max_sessions
        )));
    }
    if !(args.rpm.is_finite() && args.rpm > 0.0) {
        return Err(Refused(format!("--rpm must be a positive number, got {}", args.rpm)));
    }
    if args.duration.is_zero() || args.session_lifetime.is_zero() || args.snapshot_interval.is_zero() {
        return Err(Refused("--duration, --session-lifetime and --snapshot-interval must be positive".into()));
    }
    if !(0.0..=1.0).contains(&args.churn) {
        return Err(Refused(format!("--churn must be within 0..=1, got {}", args.churn)));
    }
    if args.slope_window < args.snapshot_interval * 2 {
        return Err(Refused(format!(
            "--slope-window {} must hold at least two snapshots (--snapshot-interval {})",
            humantime::format_duration(args.slope_window),
            humantime::format_duration(args.snapshot_interval)
        )));
    }
    if args.warmup >= args.duration {
        return Err(Refused(format!(
            "--warmup {} leaves nothing of the --duration {} to measure",
            humantime::format_duration(args.warmup),
            humantime::format_duration(args.duration)
        )));
    }
    let plan = ArrivalPlan {
        sessions: args.clients,
        rpm: args.rpm,
        duration: args.duration,
        ramp_up: Duration::ZERO,
        ramp_down: Duration::ZERO,
    };
    if plan.peak_rate() > args.max_rate {
        return Err(Refused(format!(
            "{} clients x {} rpm = {:.1} requests/s exceed the cap of {} (--max-rate)",
            args.clients,
            args.rpm,
            plan.peak_rate(),
            args.max_rate
        )));
    }
    let memory = match (&args.memory_url, args.memory_pid) {
        (Some(u), _) => {
            let url = url::Url::parse(u).map_err(|e| Refused(format!("--memory-url {u:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Refused(format!("--memory-url must be http or https, got {}", url.scheme())));
            }
            if args.memory_metric.is_empty()
                || !args.memory_metric.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
            {
                return Err(Refused(format!("--memory-metric {:?} is not a metric name", args.memory_metric)));
            }
            Some(MemorySource::Prometheus { url, metric: args.memory_metric.clone() })
        }
        (None, Some(pid)) => Some(MemorySource::Proc { pid }),
        (None, None) => None,
    };
    let mix = build_mix(&args.mix)?;
    let exprs: Vec<String> = match (c.thresholds.is_empty(), &memory) {
        (false, _) => c.thresholds.clone(),
        (true, Some(_)) => LONGEVITY_DEFAULT_THRESHOLDS.iter().map(|s| s.to_string()).collect(),
        (true, None) => Vec::new(),
    };
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|e| Refused(e.to_string()))?;
        if t.stat == crate::profile::threshold::Stat::Delivery {
            return Err(Refused(format!("threshold {e:?}: delivery applies to `run notify` only")));
        }
        if t.stat.is_memory() {
            if t.scope.is_some() {
                return Err(Refused(format!("threshold {e:?}: memory thresholds take no operation scope")));
            }
            if memory.is_none() {
                return Err(Refused(format!(
                    "threshold {e:?}: memory thresholds need the target's memory (--memory-url or --memory-pid)"
                )));
            }
        } else {
            crate::profile::scope_indices(&mix, t.scope.as_deref()).map_err(Refused)?;
        }
        thresholds.push(t);
    }
    // Sessions must exist for churn to mean anything: the session revision by default.
    let (name, client) = client_config(c, "2025-11-25")?;
    let default_in_flight = (plan.peak_rate() * c.timeout.as_secs_f64()).ceil() as usize;
    let run = LongevityRun {
        profile: "longevity".into(),
        target: name,
        engine: EngineConfig {
            replicas: None,
            // Churn decides how sessions end; the ones alive at the end get their DELETE.
            delete_sessions: true,
            opened: None,
            plan,
            max_requests: None,
            max_in_flight: default_in_flight.max(args.clients as usize * 4).clamp(1, 100_000),
            late_after: Duration::from_millis(10),
            open_stream: false,
            drain: c.timeout,
            seed: 0x6d63_705f_6c6f_6e67,
            session_lifetime: Some(args.session_lifetime),
            unclean_share: args.churn,
        },
        mix,
        thresholds,
        abort_on_fail: c.abort_on_fail,
        tick: Duration::from_millis(500).min(c.progress),
        memory,
        snapshot_interval: args.snapshot_interval,
        slope_window: args.slope_window,
        warmup: args.warmup,
        sample_timeout: args.snapshot_interval.min(c.timeout),
    };
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
    let snapshots = match &args.snapshots {
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
        humantime::format_duration(args.session_lifetime),
        args.churn * 100.0,
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
        "sessions ended: {} with DELETE, {} without; memory ({}):\n",
        l.sessions_ended_clean,
        l.sessions_ended_unclean,
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
