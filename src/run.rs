//! `mcp-canary run load`: one profile run for CI. Progress lines while it runs, a summary table
//! at the end, the JSON report, a baseline comparison, metrics on `--metrics-listen`, and an
//! exit status: 0 pass, 99 threshold breach (as k6), 98 baseline regression, 2 refused.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::mcp::{ClientConfig, ProtocolPreference};
use crate::profile::engine::EngineConfig;
use crate::profile::load::{self, MixEntry, OpKind};
use crate::profile::notify::{NotifyResults, NotifyRun};
use crate::profile::report::{self, RunReport, Tolerance};
use crate::profile::threshold::{Stat, Threshold, format_seconds};
use crate::profile::{self, Hooks, LoadRun, Progress};
use crate::schedule::arrival::ArrivalPlan;
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
    Matrix(Box<crate::run_matrix::MatrixArgs>),
    /// Longevity (soak): a churning steady population while target and daemon memory are snapshotted.
    Longevity(Box<crate::run_longevity::LongevityArgs>),
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
    /// "auto", "2026-07-28", "2025-11-25", "2025-06-18" or "2025-03-26" (default: auto for
    /// load, 2025-11-25 for notify, whose broadcasts travel on the session's GET stream, and for
    /// longevity, whose churn ends sessions).
    #[arg(long)]
    pub protocol: Option<String>,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Progress line interval.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub progress: Duration,
    /// Global cap on sessions; larger runs are refused.
    #[arg(long, default_value_t = 10_000)]
    pub max_sessions: u32,
}

/// Flags of `mcp-canary run load`.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// light (100 clients, 5m, 10 rpm), moderate (1000, 30m, 20) or heavy (10000, 60m, 15);
    /// other flags override its values; its thresholds apply when none is given.
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long)]
    pub clients: Option<u32>,
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Requests per minute per client.
    #[arg(long)]
    pub rpm: Option<f64>,
    /// Ramp-up: sessions join evenly over this span.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ramp: Option<Duration>,
    /// Ramp-down: sessions leave evenly over this span before the end.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub ramp_down: Duration,
    /// Stop after this many requests in total.
    #[arg(long)]
    pub max_requests: Option<u64>,
    /// Requests allowed in flight at once; slots beyond are shed and counted (default: the peak
    /// rate times --timeout, at least 4 per client, at most 100000).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    #[command(flatten)]
    pub mix: MixArgs,
    /// Open the server-to-client stream (GET or listen) in every session.
    #[arg(long)]
    pub stream: bool,
    /// A request sent this much after its intended start counts as late.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    pub late_after: Duration,
    /// Global cap on the aggregate request rate (per second); larger runs are refused.
    #[arg(long, default_value_t = 5_000.0)]
    pub max_rate: f64,
}

/// The weighted operation mix of the load and longevity profiles.
#[derive(clap::Args, Debug, Clone)]
pub struct MixArgs {
    /// Weights by operation, e.g. "fast_tool=50,slow_tool=0" (operations: fast_tool, slow_tool,
    /// resource_read, prompt_get, tools_list, resources_list, prompts_list).
    #[arg(long)]
    pub mix: Option<String>,
    #[arg(long, default_value = "echo")]
    pub fast_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"message":"load"}"#)]
    pub fast_tool_args: String,
    #[arg(long, default_value = "slow")]
    pub slow_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"ms":10}"#)]
    pub slow_tool_args: String,
    #[arg(long, default_value = "canary://static/hello")]
    pub resource: String,
    #[arg(long, default_value = "greeting")]
    pub prompt: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"name":"load"}"#)]
    pub prompt_args: String,
}

/// A parameter problem, reported before anything is sent.
#[derive(Debug, thiserror::Error)]
#[error("refusing to run: {0}")]
pub struct Refused(pub String);

/// The client configuration and the `target` label from the shared flags.
pub fn client_config(args: &CommonArgs, default_protocol: &str) -> Result<(String, ClientConfig), Refused> {
    let url = url::Url::parse(&args.target).map_err(|e| Refused(format!("--target {:?}: {e}", args.target)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!("--target must be http or https, got {}", url.scheme())));
    }
    let name = args.name.clone().unwrap_or_else(|| match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => "target".into(),
    });
    let protocol = match args.protocol.as_deref().unwrap_or(default_protocol) {
        "auto" => ProtocolPreference::Auto,
        v => ProtocolPreference::Pinned(v.to_string()),
    };
    let client = ClientConfig {
        url,
        headers: Default::default(),
        protocol,
        request_timeout: args.timeout,
        max_response_bytes: 8 * 1024 * 1024,
        client_name: crate::runner::canary::CLIENT_NAME.into(),
        client_version: env!("CARGO_PKG_VERSION").into(),
        capabilities: serde_json::json!({}),
        accept: Default::default(),
        server_requests: Default::default(),
    };
    Ok((name, client))
}

fn json_arg(flag: &str, s: &str) -> Result<serde_json::Value, Refused> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|e| Refused(format!("--{flag} is not valid JSON: {e}")))?;
    if v.is_object() { Ok(v) } else { Err(Refused(format!("--{flag} must be a JSON object"))) }
}

/// The default mix with the flags' tools, resource, prompt and weights.
pub fn build_mix(args: &MixArgs) -> Result<Vec<MixEntry>, Refused> {
    let mut mix = load::default_mix();
    for entry in &mut mix {
        entry.kind = match (&entry.kind, entry.name.as_str()) {
            (OpKind::ToolCall { .. }, "fast_tool") => OpKind::ToolCall {
                tool: args.fast_tool.clone(),
                arguments: json_arg("fast-tool-args", &args.fast_tool_args)?,
            },
            (OpKind::ToolCall { .. }, "slow_tool") => OpKind::ToolCall {
                tool: args.slow_tool.clone(),
                arguments: json_arg("slow-tool-args", &args.slow_tool_args)?,
            },
            (OpKind::ResourceRead { .. }, _) => OpKind::ResourceRead { uri: args.resource.clone() },
            (OpKind::PromptGet { .. }, _) => OpKind::PromptGet {
                prompt: args.prompt.clone(),
                arguments: json_arg("prompt-args", &args.prompt_args)?,
            },
            (other, _) => other.clone(),
        };
    }
    if let Some(spec) = &args.mix {
        load::apply_weights(&mut mix, spec).map_err(Refused)?;
    }

    Ok(mix)
}

/// Validate the flags into a run, a client config and the preset's name.
pub fn plan_from_args(args: &LoadArgs) -> Result<(LoadRun, ClientConfig), Refused> {
    let preset = match &args.preset {
        Some(name) => Some(
            load::preset(name)
                .ok_or_else(|| Refused(format!("unknown preset {name:?}; presets: light, moderate, heavy")))?,
        ),
        None => None,
    };
    let clients = args.clients.or(preset.map(|p| p.clients)).unwrap_or(10);
    let duration = args.duration.or(preset.map(|p| p.duration)).unwrap_or(Duration::from_secs(60));
    let rpm = args.rpm.or(preset.map(|p| p.rpm)).unwrap_or(60.0);
    let ramp_up = args.ramp.or(preset.map(|p| p.ramp_up)).unwrap_or(Duration::ZERO);
    if clients == 0 {
        return Err(Refused("--clients must be at least 1".into()));
    }
    if !(rpm.is_finite() && rpm > 0.0) {
        return Err(Refused(format!("--rpm must be a positive number, got {rpm}")));
    }
    if duration.is_zero() {
        return Err(Refused("--duration must be positive".into()));
    }
    if ramp_up + args.ramp_down > duration {
        return Err(Refused(format!(
            "ramp-up {} plus ramp-down {} exceed the duration {}",
            humantime::format_duration(ramp_up),
            humantime::format_duration(args.ramp_down),
            humantime::format_duration(duration)
        )));
    }
    if clients > args.common.max_sessions {
        return Err(Refused(format!(
            "{clients} sessions exceed the cap of {} (--max-sessions)",
            args.common.max_sessions
        )));
    }
    let plan = ArrivalPlan { sessions: clients, rpm, duration, ramp_up, ramp_down: args.ramp_down };
    if plan.peak_rate() > args.max_rate {
        return Err(Refused(format!(
            "{clients} clients x {rpm} rpm = {:.1} requests/s exceed the cap of {} (--max-rate)",
            plan.peak_rate(),
            args.max_rate
        )));
    }

    let mix = build_mix(&args.mix)?;

    let exprs: Vec<String> = if args.common.thresholds.is_empty() {
        preset.map(|p| p.thresholds.iter().map(|s| s.to_string()).collect()).unwrap_or_default()
    } else {
        args.common.thresholds.clone()
    };
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|e| Refused(e.to_string()))?;
        if t.stat == Stat::Delivery {
            return Err(Refused(format!("threshold {e:?}: delivery applies to `run notify` only")));
        }
        if t.stat.is_memory() {
            return Err(Refused(format!("threshold {e:?}: memory thresholds apply to `run longevity` only")));
        }
        profile::scope_indices(&mix, t.scope.as_deref()).map_err(Refused)?;
        thresholds.push(t);
    }

    let (name, client) = client_config(&args.common, "auto")?;
    // Default: what a stalled server accumulates over one request timeout at the peak rate.
    let default_in_flight = (plan.peak_rate() * args.common.timeout.as_secs_f64()).ceil() as usize;
    let max_in_flight = args.max_in_flight.unwrap_or(default_in_flight.max(clients as usize * 4)).clamp(1, 100_000);
    let run = LoadRun {
        profile: "load".into(),
        target: name,
        preset: preset.map(|p| p.name.to_string()),
        engine: EngineConfig {
            plan,
            max_requests: args.max_requests,
            max_in_flight,
            late_after: args.late_after,
            open_stream: args.stream,
            drain: args.common.timeout,
            seed: 0x6d63_705f_6c6f_6164,
            session_lifetime: None,
            unclean_share: 0.0,
        },
        mix,
        thresholds,
        abort_on_fail: args.common.abort_on_fail,
        tick: Duration::from_millis(500).min(args.common.progress),
    };
    Ok((run, client))
}

fn progress_line(p: &Progress) -> String {
    format!(
        "progress elapsed={:.1}s sessions={} in_flight={} {}",
        p.elapsed.as_secs_f64(),
        p.sessions,
        p.in_flight,
        p.detail
    )
}

fn threshold_lines(r: &RunReport) -> String {
    let mut out = String::new();
    for t in &r.thresholds {
        let parsed = Threshold::parse(&t.threshold).ok();
        let observed = parsed.map(|p| p.format_value(t.observed)).unwrap_or_else(|| t.observed.to_string());
        out.push_str(&format!(
            "threshold {:<32} {}  (observed {observed} over {} samples)\n",
            t.threshold,
            if t.passed { "pass" } else { "FAIL" },
            t.samples
        ));
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
    if let Some(l) = &r.longevity {
        out.push_str(&crate::run_longevity::memory_lines(l));
    }
    out.push_str(&threshold_lines(r));
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
    out.push_str(&threshold_lines(r));
    out
}

/// Run the profile; returns the exit status.
pub async fn run(profile: RunProfile, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    match profile {
        RunProfile::Load(args) => run_load(*args, shutdown).await,
        RunProfile::Notify(args) => run_notify(*args, shutdown).await,
        RunProfile::Matrix(args) => crate::run_matrix::run(*args, shutdown).await,
        RunProfile::Longevity(args) => crate::run_longevity::run(*args, shutdown).await,
    }
}

async fn run_load(args: LoadArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let (run, client) = match plan_from_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let operations: Vec<String> = run.mix.iter().map(|e: &MixEntry| e.name.clone()).collect();
    let banner = format!(
        "load run: {} sessions x {} rpm for {} against {} ({} requests planned)",
        run.engine.plan.sessions,
        run.engine.plan.rpm,
        humantime::format_duration(run.engine.plan.duration),
        run.target,
        run.engine.plan.expected_slots()
    );
    let (target, profile) = (run.target.clone(), run.profile.clone());
    let metrics = |started| telemetry::load::RunMetrics::start(&target, &profile, &operations, started);
    drive_cli(&args.common, &banner, &profile, &target, metrics, |metrics, hooks, http| {
        profile::run_load(run, client, http, metrics, hooks, shutdown)
    })
    .await
}

/// The one-shot driver every profile shares: baseline, metrics listener and OTLP, progress
/// lines, the JSON report, the summary table and the exit status.
pub(crate) async fn drive_cli<F, Fut>(
    common: &CommonArgs,
    banner: &str,
    profile_name: &str,
    target: &str,
    start_metrics: impl FnOnce(f64) -> Arc<telemetry::load::RunMetrics>,
    work: F,
) -> anyhow::Result<u8>
where
    F: FnOnce(Arc<telemetry::load::RunMetrics>, Hooks, reqwest::Client) -> Fut,
    Fut: std::future::Future<Output = RunReport>,
{
    let baseline = match &common.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read baseline {}: {e}", path.display()))?;
            let b: RunReport = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("baseline {} is not a run report: {e}", path.display()))?;
            Some(b)
        }
        None => None,
    };

    let surface = RunSurface::start(common.metrics_listen).await?;

    let metrics = start_metrics(unix_now_secs());
    println!("{banner}");
    let every = common.progress;
    let last_print = std::sync::Mutex::new(tokio::time::Instant::now());
    let tty = std::io::stdout().is_terminal();
    let (m1, m2) = (Arc::clone(&metrics), Arc::clone(&metrics));
    let hooks = Hooks {
        progress: Box::new(move |p: &Progress| {
            m1.population(p.sessions, p.in_flight);
            let Ok(mut last) = last_print.lock() else { return };
            if last.elapsed() + Duration::from_millis(50) >= every {
                *last = tokio::time::Instant::now();
                let line = progress_line(p);
                if tty {
                    // A terminal gets one line rewritten in place.
                    print!("\r\x1b[2K{line}");
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                } else {
                    println!("{line}");
                }
            }
        }),
        thresholds: Box::new(move |r| m2.thresholds(r)),
    };
    let http = reqwest::Client::builder().user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION"))).build()?;
    let report = work(Arc::clone(&metrics), hooks, http).await;
    if tty {
        println!();
    }
    metrics.finished(&report);

    let path = write_report(common.report.as_deref(), &common.results_dir, profile_name, report.started_at, &report)?;
    print!("{}", summary_table(&report));
    println!("report: {}", path.display());
    tracing::debug!(target_name = %target, profile = %profile_name, "Report written");

    let mut code = if report.passed() { 0 } else { EXIT_THRESHOLD };
    if let Some(b) = baseline {
        let tol = Tolerance { latency_ratio: common.baseline_tolerance / 100.0, ..Tolerance::default() };
        let regressions = report::compare(&b, &report, tol);
        if regressions.is_empty() {
            println!("baseline: no regression beyond {}%", common.baseline_tolerance);
        } else {
            for r in &regressions {
                println!("baseline regression: {r}");
            }
            if code == 0 {
                code = EXIT_REGRESSION;
            }
        }
    }
    if common.metrics_listen.is_some() && !common.linger.is_zero() {
        tokio::time::sleep(common.linger).await;
    }
    surface.finish().await;
    Ok(code)
}

/// The telemetry of a one-shot run: the recorder (pushing over OTLP when the standard
/// `OTEL_EXPORTER_OTLP_*` variables ask for it), `/metrics` on `listen`, and histogram upkeep.
pub(crate) struct RunSurface {
    pub exporter: telemetry::Exporter,
    stop: tokio_util::sync::CancellationToken,
    upkeep: tokio::task::JoinHandle<()>,
}

impl RunSurface {
    pub(crate) async fn start(listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        let otlp = crate::config::otlp_from_env().map_err(|e| anyhow::anyhow!("invalid OTLP environment:\n{e}"))?;
        let exporter = telemetry::Exporter::install(otlp.as_ref())?;
        let stop = tokio_util::sync::CancellationToken::new();
        if let Some(addr) = listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr()?;
            let app = crate::http::router(exporter.clone(), crate::schedule::Readiness::new(0));
            let stop = stop.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
            });
            println!("mcp-canary metrics listening on http://{local}");
        }
        let upkeep = {
            let exporter = exporter.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! { _ = stop.cancelled() => break, _ = tick.tick() => exporter.run_upkeep() }
                }
            })
        };
        Ok(Self { exporter, stop, upkeep })
    }

    /// Stop serving `/metrics` and flush OTLP.
    pub(crate) async fn finish(self) {
        self.stop.cancel();
        let _ = self.upkeep.await;
        self.exporter.shutdown(Duration::from_secs(5)).await;
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
    /// Sessions holding a server-to-client stream.
    #[arg(long, default_value_t = 1000)]
    pub sessions: u32,
    /// Batches of broadcasts.
    #[arg(long, default_value_t = 10)]
    pub batches: u32,
    /// Broadcasts per batch.
    #[arg(long, default_value_t = 20)]
    pub broadcasts: u32,
    /// From the start of one batch to the start of the next.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub batch_interval: Duration,
    /// Tool that sends `{nonce}` to every session (the reference target's `broadcast`).
    #[arg(long, default_value = "broadcast")]
    pub trigger_tool: String,
    /// Method the broadcasts arrive as; their params.data carries `nonce` and `sent_at_ms`.
    #[arg(long, default_value = "notifications/message")]
    pub method: String,
    /// How long sessions may take to connect and open their streams.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub connect_timeout: Duration,
    /// How long to wait for late deliveries after the last broadcast.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub settle: Duration,
}

/// Thresholds of a notify run when none is given (DESIGN.md section 2).
pub const NOTIFY_DEFAULT_THRESHOLDS: [&str; 2] = ["delivery >= 99%", "p95 < 500ms"];

/// Validate the flags of a notify run.
pub fn notify_plan_from_args(args: &NotifyArgs) -> Result<(NotifyRun, ClientConfig), Refused> {
    let c = &args.common;
    if args.sessions == 0 || args.batches == 0 || args.broadcasts == 0 {
        return Err(Refused("--sessions, --batches and --broadcasts must be at least 1".into()));
    }
    if args.sessions > c.max_sessions {
        return Err(Refused(format!(
            "{} sessions exceed the cap of {} (--max-sessions)",
            args.sessions, c.max_sessions
        )));
    }
    let exprs: Vec<String> = if c.thresholds.is_empty() {
        NOTIFY_DEFAULT_THRESHOLDS.iter().map(|s| s.to_string()).collect()
    } else {
        c.thresholds.clone()
    };
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|e| Refused(e.to_string()))?;
        if t.scope.is_some() {
            return Err(Refused(format!("threshold {e:?}: a notify run has no operations to scope to")));
        }
        if t.stat.is_memory() {
            return Err(Refused(format!("threshold {e:?}: memory thresholds apply to `run longevity` only")));
        }
        thresholds.push(t);
    }
    let (name, client) = client_config(c, "2025-11-25")?;
    let run = NotifyRun {
        profile: "notify".into(),
        target: name,
        sessions: args.sessions,
        batches: args.batches,
        broadcasts: args.broadcasts,
        batch_interval: args.batch_interval,
        trigger_tool: args.trigger_tool.clone(),
        method: args.method.clone(),
        thresholds,
        abort_on_fail: c.abort_on_fail,
        tick: Duration::from_millis(500).min(c.progress),
        connect_timeout: args.connect_timeout,
        settle: args.settle,
    };
    Ok((run, client))
}

async fn run_notify(args: NotifyArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let (run, client) = match notify_plan_from_args(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let banner = format!(
        "notify run: {} sessions, {} batches x {} broadcasts every {} against {} ({} deliveries expected)",
        run.sessions,
        run.batches,
        run.broadcasts,
        humantime::format_duration(run.batch_interval),
        run.target,
        u64::from(run.sessions) * run.total_broadcasts()
    );
    let (target, profile) = (run.target.clone(), run.profile.clone());
    let metrics = |started| telemetry::load::RunMetrics::start_notify(&target, &profile, started);
    drive_cli(&args.common, &banner, &profile, &target, metrics, |metrics, hooks, http| {
        profile::notify::run_notify(run, client, http, metrics, hooks, shutdown)
    })
    .await
}

fn unix_now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
