//! Capability-matrix runs as metrics: a gauge per cell (1 works, 0.75 not exercised, 0.5 degraded, 0 broken), cells
//! by result, protocol versions found, and the shared run gauges (running, start, end, passed).

use metrics::gauge;

use super::catalogue as m;
use crate::mcp::{LATEST_PROTOCOL, SESSION_PROTOCOLS};
use crate::profile::matrix::{CellResult, MatrixReport};

/// Mark a matrix run as started; `profile` is the label (`matrix` one-shot, the entry name in
/// the daemon).
pub fn started(target: &str, profile: &str, started_at: f64) {
    let (t, p) = (target.to_string(), profile.to_string());
    gauge!(m::RUN_RUNNING.name, "target" => t.clone(), "profile" => p.clone()).set(1.0);
    gauge!(m::RUN_START.name, "target" => t, "profile" => p).set(started_at);
    tracing::info!(target_name = %target, profile, "Profile run started");
}

/// Export the last run's matrix; the run is no longer running.
pub fn finished(report: &MatrixReport, profile: &str) {
    let t = report.target.clone();
    let p = profile.to_string();
    for c in &report.cells {
        gauge!(m::MATRIX_CELL.name, "target" => t.clone(), "profile" => p.clone(),
            "capabilities" => c.capabilities.as_str(), "response_mode" => c.response_mode.as_str(),
            "mcp_protocol_version" => c.protocol_version.clone())
        .set(c.result.score());
    }
    for r in CellResult::ALL {
        let n = report.summary.get(r.as_str()).copied().unwrap_or(0);
        gauge!(m::MATRIX_CELLS.name, "target" => t.clone(), "profile" => p.clone(), "result" => r.as_str())
            .set(n as f64);
    }
    for v in std::iter::once(LATEST_PROTOCOL).chain(SESSION_PROTOCOLS) {
        let supported = report.versions.iter().any(|p| p.version == v && p.supported);
        gauge!(m::MATRIX_PROTOCOL_SUPPORTED.name, "target" => t.clone(), "profile" => p.clone(),
            "mcp_protocol_version" => v)
        .set(if supported { 1.0 } else { 0.0 });
    }
    gauge!(m::RUN_PASSED.name, "target" => t.clone(), "profile" => p.clone()).set(if report.passed() {
        1.0
    } else {
        0.0
    });
    gauge!(m::RUN_END.name, "target" => t.clone(), "profile" => p.clone()).set(report.ended_at);
    gauge!(m::RUN_RUNNING.name, "target" => t, "profile" => p.clone()).set(0.0);
    tracing::info!(target_name = %report.target, profile, verdict = %report.verdict,
        cells = report.cells.len(), "Profile run finished");
}
