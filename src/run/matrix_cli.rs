//! `mcp-canary run matrix`: the capability matrix once, for CI. A table on stdout, the JSON
//! report, metrics on `--metrics-listen`, and an exit status: 0 when no cell is broken, 99
//! otherwise, 2 refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Outputs, Refused};
use crate::driver::{self, PlanTarget, PlannedRun};
use crate::mcp::ClientConfig;
use crate::profile::matrix::{CellResult, MatrixReport};
use crate::spec::{Caps, MatrixSpec, ProfileKind, ProfileSpec, RunOptions};

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
    /// OAuth for a protected target: the flags of `check` (`--oauth-client-id`, ...).
    #[command(flatten)]
    pub oauth: crate::config::OAuthFlags,
    /// `--html`, `--junit`, `--summary-md`.
    #[command(flatten)]
    pub outputs: crate::report::OutputArgs,
}

/// Validate the flags into a matrix run (no thresholds: a broken cell fails it).
pub fn plan_from_args(args: &MatrixArgs) -> Result<(PlannedRun, ClientConfig), Refused> {
    let (target, url) = super::target_flag(&args.target, args.name.as_deref())?;
    let auth = match args.oauth.raw() {
        Some(oauth) => Some(super::oauth_source(&url, oauth)?),
        None => None,
    };
    let client = ClientConfig { request_timeout: args.timeout, auth, ..ClientConfig::new(url) };
    let options = RunOptions {
        profile: ProfileKind::Matrix.as_str(),
        target: &target,
        thresholds: &[],
        abort_on_fail: false,
        timeout: args.timeout,
        tick: Duration::from_millis(500),
        caps: Caps {
            max_sessions: crate::spec::DEFAULT_MAX_SESSIONS,
            max_rate: crate::spec::DEFAULT_MAX_RATE,
            sessions_name: "--max-sessions",
            rate_name: "--max-rate",
            descriptors: crate::process::descriptor_limit(),
        },
    };
    driver::plan_run(&ProfileSpec::Matrix(args.spec.clone()), &options, client, PlanTarget::default())
        .map_err(super::refused_flag)
}

/// Where the matrix's results go.
pub(crate) fn outputs(args: &MatrixArgs) -> Outputs<'_> {
    Outputs {
        report: args.report.as_deref(),
        results_dir: &args.results_dir,
        baseline: None,
        baseline_tolerance: 0.0,
        metrics_listen: args.metrics_listen,
        linger: args.linger,
        progress: Duration::from_secs(5),
        readable: &args.outputs,
    }
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
