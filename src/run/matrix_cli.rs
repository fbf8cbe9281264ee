//! `mcp-canary run matrix`: the capability matrix once, for CI. A table on stdout, the JSON
//! report, metrics on `--metrics-listen`, and an exit status: 0 when no cell is broken, 99
//! otherwise, 2 refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{EXIT_REFUSED, EXIT_THRESHOLD, Refused, RunSurface, write_report};
use crate::mcp::ClientConfig;
use crate::profile::matrix::{self, CellResult, MatrixReport, MatrixRun};
use crate::profile::params::plan_matrix_tool;
use crate::spec::MatrixSpec;
use crate::telemetry;

/// Flags of `mcp-canary run matrix`.
#[derive(clap::Args, Debug, Clone)]
pub struct MatrixArgs {
    /// The MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
    #[arg(long)]
    pub target: String,
    /// `target` label of the metrics and the report (default: host:port of the URL).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub spec: MatrixSpec,
    /// Per-request timeout.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Write the JSON matrix report here (default: a timestamped file in --results-dir).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Serve /metrics here during and after the run (see --linger).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Keep serving /metrics this long after the run (for a last scrape).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub linger: Duration,
}

/// Validate the flags into a matrix run.
pub fn plan_from_args(args: &MatrixArgs) -> Result<MatrixRun, Refused> {
    let (target, url) = super::target_flag(&args.target, args.name.as_deref())?;
    let tool =
        plan_matrix_tool(&args.spec).map_err(|e| Refused(format!("--{}: {}", e.key.replace('_', "-"), e.message)))?;
    let client = ClientConfig { request_timeout: args.timeout, ..ClientConfig::new(url) };
    Ok(MatrixRun {
        target,
        client,
        tool,
        triggers: matrix::default_triggers(),
        settle: args.spec.settle,
        concurrency: args.spec.concurrency,
    })
}

/// The readable table: one row per cell, then versions and the summary.
pub fn matrix_table(r: &MatrixReport) -> String {
    let mut out = format!(
        "\ncapability matrix of {} ({} {}): {}\n\n",
        r.target,
        r.server_name,
        r.server_version,
        r.verdict.to_uppercase()
    );
    for v in &r.versions {
        let state = if v.supported { "supported".to_string() } else { format!("not supported ({})", v.detail) };
        out.push_str(&format!("protocol {:<11} {}\n", v.version, crate::mcp::protocol::snippet(&state, 100)));
    }
    out.push_str(&format!("\n{:<11} {:<10} {:<12} {:<9}  notes\n", "version", "mode", "capabilities", "result"));
    for c in &r.cells {
        let notes: Vec<String> = c
            .checks
            .iter()
            .filter(|k| k.result != CellResult::Works)
            .map(|k| format!("{}: {}", k.feature, crate::mcp::protocol::snippet(&k.detail, 80)))
            .collect();
        let requests: Vec<&str> = c.server_requests.iter().map(|s| s.method.as_str()).collect();
        let mut notes = notes.join("; ");
        if !requests.is_empty() {
            notes =
                format!("{notes}{}server requests: {}", if notes.is_empty() { "" } else { "; " }, requests.join(","));
        }
        out.push_str(&format!(
            "{:<11} {:<10} {:<12} {:<9}  {}\n",
            c.protocol_version,
            c.response_mode.as_str(),
            c.capabilities.as_str(),
            c.result.as_str(),
            notes
        ));
    }
    let count = |k: &str| r.summary.get(k).copied().unwrap_or(0);
    out.push_str(&format!(
        "\ncells: {} works, {} degraded, {} broken\n",
        count("works"),
        count("degraded"),
        count("broken")
    ));
    out
}

/// Run the matrix once; returns the exit status.
pub async fn run(args: MatrixArgs, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<u8> {
    let plan = match plan_from_args(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_REFUSED);
        }
    };
    let surface = RunSurface::start(args.metrics_listen).await?;
    let started_at = crate::clock::unix_seconds();
    telemetry::matrix::started(&plan.target, matrix::PROFILE, started_at);
    println!("capability matrix: {} ({})", plan.target, plan.client.url);
    let http = crate::mcp::transport::http_client()?;
    let report = tokio::select! {
        r = matrix::run_matrix(&plan, http) => r,
        _ = shutdown.cancelled() => {
            surface.finish().await;
            anyhow::bail!("interrupted");
        }
    };
    telemetry::matrix::finished(&report, matrix::PROFILE);
    surface.upkeep();

    let path = write_report(args.report.as_deref(), &args.results_dir, "matrix", report.started_at, &report)?;
    print!("{}", matrix_table(&report));
    println!("report: {}", path.display());
    if args.metrics_listen.is_some() && !args.linger.is_zero() {
        tokio::select! { _ = tokio::time::sleep(args.linger) => {}, _ = shutdown.cancelled() => {} }
    }
    surface.finish().await;
    Ok(if report.passed() { 0 } else { EXIT_THRESHOLD })
}
