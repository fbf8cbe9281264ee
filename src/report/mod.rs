//! Results people read: a self-contained HTML report with charts (`html`), JUnit XML for CI
//! systems (`junit`) and a Markdown summary (`summary`, also appended to
//! `$GITHUB_STEP_SUMMARY`). `mcp-canary run <profile>` writes them at the end of a run from the
//! flags in [`OutputArgs`]; `mcp-canary report REPORT.json` renders a saved report the same way.

pub mod html;
pub mod junit;
pub mod schema;
pub mod summary;

use std::path::{Path, PathBuf};

use crate::driver::Report;
use crate::profile::report::RunReport;

/// The readable outputs of a run or a saved report (flags shared by `run` and `report`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write a self-contained HTML report with charts here (no network fetch when opened).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write JUnit XML here: a test case per threshold (per matrix cell, per chaos scenario).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when that is set).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// `mcp-canary report`: render a saved report.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// A JSON report written by `mcp-canary run` (or by the daemon's scheduled profiles).
    pub report: PathBuf,
    /// A report of an earlier run of the same profile, overlaid on the charts.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// What the outputs are rendered from.
pub struct Rendering<'a> {
    pub report: &'a Report,
    /// The baseline run, when one was given (load, notify and longevity reports).
    pub baseline: Option<&'a RunReport>,
    /// Where the JSON report was written (the summary names it).
    pub report_path: Option<&'a Path>,
    /// Where the HTML report goes (the summary links it).
    pub html_path: Option<&'a Path>,
}

/// Read a saved report of any profile.
pub fn load(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{} is not an mcp-canary report: {e}", path.display()))
}

/// A report of any profile from its JSON: a matrix has `cells`, a chaos run `scenarios`.
pub fn parse(text: &str) -> Result<Report, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    Ok(if value.get("cells").is_some() {
        Report::Matrix(Box::new(serde_json::from_value(value)?))
    } else if value.get("scenarios").is_some() {
        Report::Chaos(Box::new(serde_json::from_value(value)?))
    } else {
        Report::Run(Box::new(serde_json::from_value(value)?))
    })
}

/// Write every output `args` asks for; returns the files written.
pub fn write(args: &OutputArgs, r: &Rendering<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |path: &Path, text: String| -> anyhow::Result<()> {
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        written.push(path.to_path_buf());
        Ok(())
    };
    if let Some(path) = &args.html {
        put(path, html::render(r))?;
    }
    if let Some(path) = &args.junit {
        put(path, junit::render(r.report))?;
    }
    let markdown = summary::render(r);
    if let Some(path) = &args.summary_md {
        put(path, markdown.clone())?;
    }
    if let Some(step) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        append(Path::new(&step), &markdown)?;
    }
    Ok(written)
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open GITHUB_STEP_SUMMARY {}: {e}", path.display()))?;
    writeln!(f, "{text}").map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", path.display()))
}

/// Which run profile wrote a report (its `profile` may be a scheduled entry's name).
fn kind(r: &RunReport) -> &'static str {
    if r.notify.is_some() {
        "notify"
    } else if r.longevity.is_some() {
        "longevity"
    } else {
        "load"
    }
}

/// `mcp-canary report`: exit 0 when every output was written (the report's verdict is not the
/// exit status: the run already gave it).
pub fn command(args: &ReportArgs) -> anyhow::Result<u8> {
    let report = load(&args.report)?;
    let baseline = match &args.baseline {
        Some(path) => match (load(path)?, &report) {
            (Report::Run(b), Report::Run(r)) if kind(&b) == kind(r) => Some(*b),
            (Report::Run(b), Report::Run(r)) => anyhow::bail!(
                "--baseline {} is a {} report and {} a {} report: compare runs of the same profile",
                path.display(),
                kind(&b),
                args.report.display(),
                kind(r)
            ),
            _ => {
                anyhow::bail!("--baseline {}: only load, notify and longevity reports have a baseline", path.display())
            }
        },
        None => None,
    };
    if args.outputs.html.is_none() && args.outputs.junit.is_none() && args.outputs.summary_md.is_none() {
        anyhow::bail!("nothing to write: give --html, --junit or --summary-md");
    }
    let rendering = Rendering {
        report: &report,
        baseline: baseline.as_ref(),
        report_path: Some(&args.report),
        html_path: args.outputs.html.as_deref(),
    };
    for path in write(&args.outputs, &rendering)? {
        println!("wrote {}", path.display());
    }
    Ok(0)
}
