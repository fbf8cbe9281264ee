//! `mcp-canary run load`: one profile run for CI. Progress lines while it runs, a summary table
//! at the end, the JSON report, a baseline comparison, metrics on `--metrics-listen`, and an
//! exit status: 0 pass, 99 threshold breach (as k6), 98 baseline regression, 2 refused.

pub mod chaos_cli;
pub mod longevity_cli;
pub mod matrix_cli;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::driver::{self, Execution, PlanTarget, PlannedRun, Report};
use crate::mcp::{ClientConfig, ProtocolPreference};
use crate::profile::notify::NotifyResults;
use crate::profile::per_session::MemoryResults;
use crate::profile::replicas::ReplicaTagging;
use crate::profile::report::{self, RunReport, ThresholdOrigin, ThresholdResult, ThresholdStatus, Tolerance};
use crate::profile::threshold::{Threshold, format_seconds};
use crate::profile::{self, Progress, ProgressLines};
use crate::spec::{Caps, LoadSpec, NotifySpec, ParamError, ProfileSpec, RunOptions};
use crate::telemetry;

/// Exit status of a run whose thresholds failed (k6 uses 99 too).
pub const EXIT_THRESHOLD: u8 = 99;
/// Exit status of a run that regressed against `--baseline`.
pub const EXIT_REGRESSION: u8 = 98;
/// Exit status of a run refused before it started (caps, bad parameters).
pub const EXIT_REFUSED: u8 = 2;

/// Which profile to run.
#[derive(clap::Subcommand, Debug)]
pub enum RunProfile {
    /// Mixed workload: N sessions, each at R requests/min, a weighted mix of operations.
    Load(Box<LoadArgs>),
    /// Notification stress: N sessions hold streams; B batches of K broadcasts; delivery measured.
    Notify(Box<NotifyArgs>),
    /// Capability matrix: capability profiles x response modes x protocol versions; exit 99 when a cell is broken.
    Matrix(Box<matrix_cli::MatrixArgs>),
    /// Chaos: faults one at a time (proxy latency/resets/blackhole/bandwidth, kill, Redis pause)
    /// against a steady population; detect and recovery times. Refused without --allow-chaos.
    Chaos(Box<chaos_cli::ChaosArgs>),
    /// Longevity (soak): a churning steady population while target and daemon memory are snapshotted.
    Longevity(Box<longevity_cli::LongevityArgs>),
}

/// Flags every profile shares: the target, thresholds, outputs and caps (the run driver's).
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
    #[arg(long)]
    pub target: String,
    /// `target` label of the metrics and the report (default: host:port of the URL).
    #[arg(long)]
    pub name: Option<String>,
    /// k6-style threshold, e.g. "p95 < 50ms", "error_rate < 0.1%", "tools/call:p99 <= 1s" (repeatable).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Stop the run as soon as a threshold fails (over at least 20 requests; memory thresholds
    /// over half a slope window of snapshots).
    #[arg(long)]
    pub abort_on_fail: bool,
    /// Write the JSON run report here (default: a timestamped file in --results-dir).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Compare with a saved report; exit 98 on a regression beyond --baseline-tolerance.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Relative increase tolerated against the baseline, in percent (latency; for longevity
    /// also the memory slope and growth, beyond 10 MB/h and 5 points of slack).
    #[arg(long, default_value_t = 20.0)]
    pub baseline_tolerance: f64,
    /// Serve /metrics here during the run.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Keep serving /metrics this long after the run (for a last scrape).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub linger: Duration,
    /// "auto" (the default), "2026-07-28", "2025-11-25", "2025-06-18" or "2025-03-26". On auto,
    /// runs whose sessions hold a GET stream or are ended (notify's broadcasts, chaos, longevity's
    /// churn) use 2025-11-25, the newest revision with sessions.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Progress line interval.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub progress: Duration,
    /// Global cap on sessions; larger runs are refused.
    #[arg(long, default_value_t = crate::spec::DEFAULT_MAX_SESSIONS)]
    pub max_sessions: u32,
    /// Replicas behind a balancing --target, by the names their --replica-header carries
    /// (comma-separated, at most 16): requests (load) and deliveries (notify) are also counted by
    /// the replica that served them; any other value counts as `unknown`.
    #[arg(long, value_delimiter = ',')]
    pub replicas: Vec<String>,
    /// Response header naming the replica that served a request.
    #[arg(long, default_value = "Mcp-Canary-Instance")]
    pub replica_header: String,
    /// OAuth for a protected target: the flags of `check` (`--oauth-client-id`, ...).
    #[command(flatten)]
    pub oauth: crate::config::OAuthFlags,
    /// `--html`, `--junit`, `--summary-md`.
    #[command(flatten)]
    pub outputs: crate::report::OutputArgs,
}

/// Replica tagging from `--replicas` / `--replica-header`; `None` without `--replicas`.
fn replica_tagging(c: &CommonArgs) -> Result<Option<Arc<ReplicaTagging>>, Refused> {
    if c.replicas.is_empty() {
        return Ok(None);
    }
    if c.replicas.len() > crate::config::MAX_INSTANCES {
        return Err(Refused(format!("--replicas: at most {} names", crate::config::MAX_INSTANCES)));
    }
    let mut seen = std::collections::HashSet::new();
    for name in &c.replicas {
        crate::config::check_replica_name(name).map_err(|e| Refused(format!("--replicas {name:?}: {e}")))?;
        if !seen.insert(name) {
            return Err(Refused(format!("--replicas: {name:?} is listed twice")));
        }
    }
    let header = reqwest::header::HeaderName::from_bytes(c.replica_header.as_bytes())
        .map_err(|_| Refused(format!("--replica-header {:?} is not a header name", c.replica_header)))?;
    Ok(Some(Arc::new(ReplicaTagging { header, names: c.replicas.clone() })))
}

/// Flags of `mcp-canary run load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub spec: LoadSpec,
    /// Global cap on the aggregate request rate (per second); larger runs are refused.
    #[arg(long, default_value_t = crate::spec::DEFAULT_MAX_RATE)]
    pub max_rate: f64,
}

/// A parameter problem, reported before anything is sent.
#[derive(Debug, thiserror::Error)]
#[error("refusing to run: {0}")]
pub struct Refused(pub String);

/// The client configuration and the `target` label from the shared flags.
pub fn client_config(args: &CommonArgs) -> Result<(String, ClientConfig), Refused> {
    let (name, url) = target_flag(&args.target, args.name.as_deref())?;
    let protocol = match args.protocol.as_deref().unwrap_or("auto") {
        "auto" => ProtocolPreference::Auto,
        v => ProtocolPreference::Pinned(v.to_string()),
    };
    let auth = match args.oauth.raw() {
        Some(oauth) => Some(oauth_source(&url, oauth)?),
        None => None,
    };
    Ok((name, ClientConfig { protocol, request_timeout: args.timeout, auth, ..ClientConfig::new(url) }))
}

/// The token source of `--oauth-*`, validated as a `[targets.oauth]` table is (the same
/// checks, named by flag).
pub(crate) fn oauth_source(
    url: &url::Url,
    oauth: crate::config::RawOAuth,
) -> Result<Arc<crate::mcp::auth::TokenSource>, Refused> {
    let settings = crate::config::RawProbeSettings { oauth: Some(oauth), ..Default::default() };
    let raw_target = crate::config::RawTarget { settings, ..crate::config::RawTarget::new("run", url.as_str()) };
    let raw = crate::config::RawConfig { targets: vec![raw_target], ..Default::default() };
    let flag = |key: &str| {
        let field = key.rsplit('.').next().unwrap_or(key);
        match field {
            "scopes" => "--oauth-scope".to_string(),
            "token_endpoint_auth_method" => "--oauth-auth-method".to_string(),
            "grant" | "token_file" => "--oauth-token-file".to_string(),
            f => format!("--oauth-{}", f.replace('_', "-")),
        }
    };
    match crate::config::validate(&raw) {
        Ok(mut config) => {
            config.targets.remove(0).auth.ok_or_else(|| Refused("--oauth-client-id: no token source".into()))
        }
        Err(errors) => Err(Refused(
            errors.0.iter().map(|e| format!("{}: {}", flag(&e.key), e.message)).collect::<Vec<_>>().join("; "),
        )),
    }
}

/// `--target` (an http or https URL; its user-info never echoed) and the `target` label:
/// `--name`, else `host:port`.
pub fn target_flag(target: &str, name: Option<&str>) -> Result<(String, url::Url), Refused> {
    let url = url::Url::parse(target)
        .map_err(|e| Refused(format!("--target {:?}: {e}", crate::config::redact_userinfo(target))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!("--target must be http or https, got {}", url.scheme())));
    }
    let name = name.map(str::to_string).unwrap_or_else(|| match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => "target".into(),
    });
    Ok((name, url))
}

/// A parameter problem as the one-shot CLI reports it: named by its flag.
pub(crate) fn refused_flag(e: ParamError) -> Refused {
    let flag = match e.key {
        "thresholds" => "threshold".to_string(),
        "scenarios" => "scenario".to_string(),
        "memory_urls" => "memory-url".to_string(),
        key => key.replace('_', "-"),
    };
    Refused(format!("--{flag}: {}", e.message))
}

pub(crate) fn run_options<'a>(
    common: &'a CommonArgs,
    profile: &'a str,
    target: &'a str,
    max_rate: f64,
) -> RunOptions<'a> {
    RunOptions {
        profile,
        target,
        thresholds: &common.thresholds,
        abort_on_fail: common.abort_on_fail,
        timeout: common.timeout,
        tick: Duration::from_millis(500).min(common.progress),
        caps: Caps {
            max_sessions: common.max_sessions,
            max_rate,
            sessions_name: "--max-sessions",
            rate_name: "--max-rate",
            descriptors: crate::process::descriptor_limit(),
        },
    }
}

// A run's reserved descriptors cover its `/metrics` listener's connections.
const _: () = assert!(
    (crate::http::serve::MAX_CONNECTIONS as u64) < crate::spec::RESERVED_DESCRIPTORS / 2,
    "the HTTP surface's connections must fit in the descriptors a run reserves"
);

/// Plan a one-shot run of `spec` from the shared flags: the same planning as the daemon's
/// `[[profiles]]`, with the caps of `--max-sessions` and `max_rate`, problems named by flag.
pub(crate) fn plan_flags(
    common: &CommonArgs,
    spec: ProfileSpec,
    max_rate: f64,
    target: PlanTarget,
) -> Result<(PlannedRun, ClientConfig), Refused> {
    let (name, client) = client_config(common)?;
    let options = run_options(common, spec.kind().as_str(), &name, max_rate);
    driver::plan_run(&spec, &options, client, target).map_err(refused_flag)
}

/// Validate the flags of a load run.
pub fn plan_from_args(args: &LoadArgs) -> Result<(PlannedRun, ClientConfig), Refused> {
    let target = PlanTarget { replicas: replica_tagging(&args.common)?, ..PlanTarget::default() };
    plan_flags(&args.common, ProfileSpec::Load(Box::new(args.spec.clone())), args.max_rate, target)
}

fn progress_line(p: &Progress) -> String {
    format!(
        "progress elapsed={:.1}s sessions={} in_flight={} {}",
        p.elapsed.as_secs_f64(),
        p.population.sessions,
        p.population.in_flight,
        p.detail
    )
}

fn threshold_lines(r: &RunReport) -> String {
    verdict_lines(&r.thresholds, r.thresholds_origin, r.verdict_reason.as_deref())
}

/// The thresholds of a run, one line each (their origin named when they are defaults), and the
/// reason of a failed verdict no threshold explains.
pub(crate) fn verdict_lines(
    thresholds: &[ThresholdResult],
    origin: ThresholdOrigin,
    verdict_reason: Option<&str>,
) -> String {
    let mut out = String::new();
    if origin != ThresholdOrigin::Given && !thresholds.is_empty() {
        out.push_str(&format!("thresholds: the {} ones (--threshold replaces them)\n", origin.as_str()));
    }
    for t in thresholds {
        // Chaos results are scoped to a scenario: `kill:recovery_time<30s`.
        let parsed = Threshold::parse(&t.threshold).ok();
        let observed = parsed.map(|p| p.format_value(t.observed)).unwrap_or_else(|| format!("{:.3}", t.observed));
        let line = match t.status {
            ThresholdStatus::NoData => {
                format!("threshold {:<32} NO DATA  (no samples: nothing to judge)\n", t.threshold)
            }
            status => format!(
                "threshold {:<32} {}  (observed {observed} over {} samples)\n",
                t.threshold,
                if status == ThresholdStatus::Pass { "pass" } else { "FAIL" },
                t.samples
            ),
        };
        out.push_str(&line);
    }
    if let Some(reason) = verdict_reason {
        out.push_str(&format!("verdict: FAIL: {reason}\n"));
    }
    out
}

fn aborted_note(r: &RunReport) -> String {
    if r.aborted { format!(", ABORTED: {}", r.abort_reason.as_deref().unwrap_or("")) } else { String::new() }
}

/// The end-of-run table.
pub fn summary_table(r: &RunReport) -> String {
    if let Some(n) = &r.notify {
        return notify_table(r, n);
    }
    let Some(load) = &r.load else { return threshold_lines(r) };
    let mut out = format!(
        "\n{} run against {} ({}): {:.1}s, {} sessions at {} rpm{}\n\n",
        r.profile,
        r.target,
        r.verdict.to_uppercase(),
        r.elapsed_s,
        load.params.clients,
        load.params.rpm,
        aborted_note(r)
    );
    out.push_str(&format!(
        "{:<16} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  errors by class\n",
        "operation", "count", "errors", "avg", "p50", "p95", "p99", "max", "closed p99"
    ));
    let row = |name: &str, s: &profile::stats::OpSummary| {
        let ms = |v: f64| format_seconds(v / 1000.0);
        let classes: Vec<String> = s.errors_by_type.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{:<16} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}\n",
            name,
            s.count,
            s.errors,
            ms(s.latency.avg_ms),
            ms(s.latency.p50_ms),
            ms(s.latency.p95_ms),
            ms(s.latency.p99_ms),
            ms(s.latency.max_ms),
            ms(s.closed_loop.p99_ms),
            classes.join(" ")
        )
    };
    for (name, s) in &load.operations {
        out.push_str(&row(name, s));
    }
    out.push_str(&row("connect", &load.connect));
    out.push_str(&row("ALL", &load.total));
    out.push_str(&format!(
        "\nslots: planned {} issued {} late {} skipped {} shed {}; error rate {:.3}%\n",
        load.slots.planned,
        load.slots.issued,
        load.slots.late,
        load.slots.skipped,
        load.slots.shed,
        load.total.error_rate * 100.0
    ));
    for (replica, c) in &load.replicas {
        out.push_str(&format!("replica {replica}: {} requests, {} failed\n", c.requests, c.failures));
    }
    if let Some(l) = &r.longevity {
        out.push_str(&longevity_cli::memory_lines(l));
    }
    if let Some(m) = &load.memory {
        out.push_str(&memory_lines(m));
    }
    out.push_str(&threshold_lines(r));
    out
}

/// Memory per 1,000 sessions and orphaned session keys, one line each.
fn memory_lines(m: &MemoryResults) -> String {
    let line = |what: &str, f: &crate::profile::per_session::SeriesFit| {
        let figure = match f.bytes_per_1000_sessions {
            Some(b) => format!("{:.2} MB per 1,000 sessions (r2 {:.2})", b / 1e6, f.r_squared.unwrap_or(0.0)),
            None => "no slope (too few samples or no sessions joined)".into(),
        };
        format!(
            "{what}: {figure}; {} samples, {:.0} -> {:.0} sessions, {:.1} -> {:.1} MB, {} failed reads\n",
            f.samples,
            f.sessions_first,
            f.sessions_last,
            f.bytes_first / 1e6,
            f.bytes_last / 1e6,
            f.errors
        )
    };
    let mut out = String::new();
    for (replica, f) in &m.target {
        out.push_str(&line(&format!("target memory [{replica}]"), f));
    }
    if let Some(f) = &m.redis {
        out.push_str(&line("redis memory", f));
    }
    if let Some(n) = m.orphaned_session_keys {
        out.push_str(&format!("orphaned session keys: {n} of the {} sessions the run opened\n", m.session_ids));
    }
    out
}

fn notify_table(r: &RunReport, n: &NotifyResults) -> String {
    let ms = |v: f64| format_seconds(v / 1000.0);
    let mut out = format!(
        "\nnotify run against {} ({}): {:.1}s, {} sessions ({} ready), {} batches x {} broadcasts{}\n\n",
        r.target,
        r.verdict.to_uppercase(),
        r.elapsed_s,
        n.params.sessions,
        n.sessions_ready,
        n.params.batches,
        n.params.broadcasts_per_batch,
        aborted_note(r)
    );
    out.push_str(&format!(
        "delivery {:.3}% ({} of {} expected; {} broadcasts, {} trigger errors)\n",
        n.delivery_ratio * 100.0,
        n.received,
        n.expected,
        n.broadcasts,
        n.trigger_errors
    ));
    out.push_str(&format!(
        "sessions missing any {}  duplicates {}  out of order {}\n",
        n.sessions_missing_any, n.duplicates, n.out_of_order
    ));
    out.push_str(&format!(
        "send->receive avg {} p50 {} p95 {} p99 {} max {}\n\n",
        ms(n.latency.avg_ms),
        ms(n.latency.p50_ms),
        ms(n.latency.p95_ms),
        ms(n.latency.p99_ms),
        ms(n.latency.max_ms)
    ));
    if n.delivery_ratio < 1.0 {
        // What came instead, so the trigger, its arguments or --method can be fixed.
        let arrived = if n.arrived.is_empty() {
            "nothing".to_string()
        } else {
            n.arrived.iter().map(|(m, c)| format!("{m} x{c}")).collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "notifications arrived (expected {} carrying the nonce): {arrived}\n\n",
            n.params.method
        ));
    }
    for (replica, d) in &n.replicas {
        out.push_str(&format!(
            "replica {replica}: {} streams, delivery {:.3}% ({} of {})\n",
            d.sessions,
            d.delivery_ratio * 100.0,
            d.received,
            d.expected
        ));
    }
    out.push_str(&threshold_lines(r));
    out
}

/// Run the profile; returns the exit status.
pub async fn run(profile: RunProfile, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let (planned, outputs) = match &profile {
        RunProfile::Load(args) => (plan_from_args(args), Outputs::of(&args.common)),
        RunProfile::Notify(args) => (notify_plan_from_args(args), Outputs::of(&args.common)),
        RunProfile::Matrix(args) => (matrix_cli::plan_from_args(args), matrix_cli::outputs(args)),
        RunProfile::Chaos(args) => (chaos_cli::plan_from_args(args), Outputs::of(&args.common)),
        RunProfile::Longevity(args) => (longevity_cli::plan_from_args(args), Outputs::of(&args.common)),
    };
    let (plan, client) = match planned {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    drive(&outputs, plan, client, shutdown).await
}

/// Where a one-shot run's results go (the flags every profile shares).
pub(crate) struct Outputs<'a> {
    pub report: Option<&'a std::path::Path>,
    pub results_dir: &'a std::path::Path,
    pub baseline: Option<&'a std::path::Path>,
    pub baseline_tolerance: f64,
    pub metrics_listen: Option<SocketAddr>,
    pub linger: Duration,
    pub progress: Duration,
    /// `--html`, `--junit`, `--summary-md`.
    pub readable: &'a crate::report::OutputArgs,
}

impl<'a> Outputs<'a> {
    fn of(c: &'a CommonArgs) -> Self {
        Self {
            report: c.report.as_deref(),
            results_dir: &c.results_dir,
            baseline: c.baseline.as_deref(),
            baseline_tolerance: c.baseline_tolerance,
            metrics_listen: c.metrics_listen,
            linger: c.linger,
            progress: c.progress,
            readable: &c.outputs,
        }
    }
}

/// The one-shot side of the driver every profile shares: baseline, metrics listener and OTLP,
/// progress lines, the JSON report, the summary table and the exit status.
async fn drive(
    out: &Outputs<'_>,
    plan: PlannedRun,
    client: ClientConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<u8> {
    let baseline = match out.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read baseline {}: {e}", path.display()))?;
            let b: RunReport = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("baseline {} is not a run report: {e}", path.display()))?;
            Some(b)
        }
        None => None,
    };
    let snapshots = match &plan {
        PlannedRun::Longevity(run) => match &run.snapshots {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("cannot open snapshots file {}: {e}", path.display()))?,
            ),
            None => None,
        },
        _ => None,
    };

    let surface = RunSurface::start(out.metrics_listen).await?;
    println!("{}", driver::banner(&plan));
    let tty = std::io::stdout().is_terminal();
    let print = move |p: &Progress| {
        let line = progress_line(p);
        if tty {
            // A terminal gets one line rewritten in place.
            print!("\r\x1b[2K{line}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        } else {
            println!("{line}");
        }
    };
    let shows_progress = matches!(plan, PlannedRun::Load(_) | PlannedRun::Notify(_) | PlannedRun::Longevity(_));
    let (target, profile_name) = (plan.target().to_string(), plan.profile().to_string());
    let execution = Execution {
        client,
        http: crate::mcp::transport::http_client()?,
        cancel: shutdown.clone(),
        started: crate::clock::unix_seconds(),
        progress: Some(ProgressLines { every: out.progress, print: Box::new(print) }),
        snapshots,
    };
    let report = driver::execute(plan, execution).await;
    if tty && shows_progress {
        println!();
    }
    let Some(report) = report else {
        surface.finish().await;
        anyhow::bail!("interrupted");
    };
    surface.upkeep();

    let path = write_report(out.report, out.results_dir, &profile_name, report.started_at(), &report)?;
    print!("{}", summary(&report));
    println!("report: {}", path.display());
    let rendering = crate::report::Rendering {
        report: &report,
        baseline: baseline.as_ref(),
        report_path: Some(&path),
        html_path: out.readable.html.as_deref(),
    };
    for written in crate::report::write(out.readable, &rendering)? {
        println!("wrote {}", written.display());
    }
    tracing::debug!(target_name = %target, profile = %profile_name, "Report written");

    let mut code = if report.passed() { 0 } else { EXIT_THRESHOLD };
    if let (Some(b), Report::Run(report)) = (baseline, &report) {
        let tol = Tolerance { latency_ratio: out.baseline_tolerance / 100.0, ..Tolerance::default() };
        let regressions = report::compare(&b, report, tol);
        if regressions.is_empty() {
            println!("baseline: no regression beyond {}%", out.baseline_tolerance);
        } else {
            for r in &regressions {
                println!("baseline regression: {r}");
            }
            if code == 0 {
                code = EXIT_REGRESSION;
            }
        }
    }
    if out.metrics_listen.is_some() && !out.linger.is_zero() {
        tokio::select! { _ = tokio::time::sleep(out.linger) => {}, _ = shutdown.cancelled() => {} }
    }
    surface.finish().await;
    Ok(code)
}

/// The end-of-run table of any profile's report.
pub fn summary(report: &Report) -> String {
    match report {
        Report::Run(r) => summary_table(r),
        Report::Matrix(r) => matrix_cli::matrix_table(r),
        Report::Chaos(r) => chaos_cli::chaos_table(r),
    }
}

/// The telemetry of a one-shot run: the recorder, `/metrics` on `--metrics-listen`, OTLP push
/// when the standard `OTEL_EXPORTER_OTLP_*` variables ask for it, and histogram upkeep. With
/// neither a listener nor OTLP nothing could read a metric, so no recorder is installed: the
/// `metrics` calls are no-ops, and the process skips the recorder's start-up (a clock
/// calibration) and the per-request recording.
pub(crate) struct RunSurface {
    /// The recorder and its surface (upkeep, and `/metrics` on `--metrics-listen`); `None` when
    /// nothing could read a metric.
    exported: Option<(telemetry::Exporter, crate::http::Surface)>,
}

impl RunSurface {
    pub(crate) async fn start(listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        let otlp = crate::config::otlp_from_env().map_err(|e| anyhow::anyhow!("invalid OTLP environment:\n{e}"))?;
        if listen.is_none() && otlp.is_none() {
            return Ok(Self { exported: None });
        }
        let exporter = telemetry::Exporter::install(otlp.as_ref())?;
        let mut listener = None;
        if let Some(addr) = listen {
            let bound = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            println!("mcp-canary metrics listening on http://{}", bound.local_addr()?);
            listener = Some(bound);
        }
        let surface = crate::http::Surface::start(
            exporter.clone(),
            listener,
            crate::schedule::Readiness::new(),
            Default::default(),
        );
        Ok(Self { exported: Some((exporter, surface)) })
    }

    /// Fold buffered histogram samples into the series now (a run's last results, before a
    /// lingering scrape or the final OTLP push).
    pub(crate) fn upkeep(&self) {
        if let Some((exporter, _)) = &self.exported {
            exporter.run_upkeep();
        }
    }

    /// Stop serving `/metrics` and flush OTLP.
    pub(crate) async fn finish(self) {
        if let Some((exporter, surface)) = self.exported {
            surface.stop().await;
            exporter.shutdown(crate::http::serve::OTLP_FLUSH_TIMEOUT).await;
        }
    }
}

/// Write a run report to `explicit`, or to `<dir>/<profile>-<start>.json`; returns the path.
pub(crate) fn write_report<T: serde::Serialize>(
    explicit: Option<&std::path::Path>,
    dir: &std::path::Path,
    profile: &str,
    started_at: f64,
    report: &T,
) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            dir.join(format!("{profile}-{}.json", started_at as u64))
        }
    };
    std::fs::write(&path, serde_json::to_string_pretty(report)?)
        .map_err(|e| anyhow::anyhow!("cannot write report {}: {e}", path.display()))?;
    Ok(path)
}

/// Flags of `mcp-canary run notify`.
#[derive(clap::Args, Debug, Clone)]
pub struct NotifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub spec: NotifySpec,
}

/// Validate the flags of a notify run.
pub fn notify_plan_from_args(args: &NotifyArgs) -> Result<(PlannedRun, ClientConfig), Refused> {
    let target = PlanTarget { replicas: replica_tagging(&args.common)?, ..PlanTarget::default() };
    // A notify run sends one trigger per broadcast: no request-rate cap applies.
    plan_flags(&args.common, ProfileSpec::Notify(args.spec.clone()), f64::INFINITY, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_target_flag_never_echoes_its_password() {
        for bad in ["http://user:hunter2@[::1", "ftp://user:hunter2@127.0.0.1/mcp"] {
            let Refused(message) = target_flag(bad, None).unwrap_err();
            assert!(message.starts_with("--target") && !message.contains("hunter2"), "{message}");
        }
        let (name, url) = target_flag("http://127.0.0.1:8080/mcp", None).unwrap();
        assert_eq!((name.as_str(), url.path()), ("127.0.0.1:8080", "/mcp"));
        assert_eq!(target_flag("http://127.0.0.1:8080/mcp", Some("edge")).unwrap().0, "edge");
    }
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn plan(extra: &[&str]) -> Result<crate::profile::LoadRun, Refused> {
        let mut argv = vec!["run-load", "--target", "http://127.0.0.1:1/mcp"];
        argv.extend_from_slice(extra);
        match plan_from_args(&Cli::try_parse_from(argv).unwrap().load)? {
            (PlannedRun::Load(run), _) => Ok(run),
            (other, _) => panic!("a load plan, got {:?}", other.kind()),
        }
    }

    #[test]
    fn memory_flags_are_validated() {
        assert!(plan(&[]).unwrap().memory.is_none());
        let e = plan(&["--memory-url", "http://127.0.0.1:2/metrics"]).unwrap_err();
        assert!(e.0.contains("--memory-url: needs a ramp"), "{e}");
        let e = plan(&["--ramp", "5s", "--memory-url", "a=http://h/m", "--memory-url", "a=http://i/m"]).unwrap_err();
        assert!(e.0.contains("named twice"), "{e}");
        let e = plan(&["--redis", "http://127.0.0.1:6379"]).unwrap_err();
        assert!(e.0.contains("--redis: must be redis://"), "{e}");
        let e = plan(&["--redis", "redis://:hunter2@"]).unwrap_err();
        assert!(!e.0.contains("hunter2"), "{e}");

        let run =
            plan(&["--ramp", "5s", "--memory-url", "http://h/m", "--redis", "redis://:pw@127.0.0.1:6379/0"]).unwrap();
        let memory = run.memory.unwrap();
        assert_eq!(memory.replica_name(0), "all");
        let redis = memory.redis.unwrap();
        assert_eq!(
            (redis.url.as_str(), redis.password.map(|p| p.expose().to_string())),
            ("redis://127.0.0.1:6379/0", Some("pw".into()))
        );
        assert!(run.engine.delete_sessions);
        assert!(!plan(&["--no-delete"]).unwrap().engine.delete_sessions);
    }

    #[derive(Parser)]
    struct NotifyCli {
        #[command(flatten)]
        notify: NotifyArgs,
    }

    #[test]
    fn notify_protocol_defaults_follow_the_trigger_scope() {
        use crate::spec::TriggerScope;
        let protocol = |extra: &[&str]| {
            let mut argv = vec!["run-notify", "--target", "http://127.0.0.1:1/mcp", "--sessions", "2"];
            argv.extend_from_slice(extra);
            let (PlannedRun::Notify(run), client) =
                notify_plan_from_args(&NotifyCli::try_parse_from(argv).unwrap().notify).unwrap()
            else {
                panic!("a notify plan")
            };
            (run.trigger_scope, client.protocol)
        };
        let pinned = ProtocolPreference::Pinned("2025-11-25".into());
        assert_eq!(protocol(&[]), (TriggerScope::Broadcast, pinned.clone()));
        assert_eq!(protocol(&["--trigger-scope", "session"]), (TriggerScope::Session, ProtocolPreference::Auto));
        assert_eq!(protocol(&["--trigger-scope", "session", "--protocol", "2025-11-25"]).1, pinned);
        assert!(NotifyCli::try_parse_from(["x", "--target", "http://h/mcp", "--trigger-scope", "all"]).is_err());
    }
}
