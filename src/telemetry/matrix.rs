//! Capability-matrix runs as metrics: a gauge per cell (1 works, 0.5 degraded, 0 broken), cells
//! by result, protocol versions found, and the shared run gauges (running, start, end, passed).

use metrics::gauge;

use super::catalogue as m;
use crate::mcp::{LATEST_PROTOCOL, SESSION_PROTOCOLS};
use crate::profile::matrix::{CellResult, MatrixReport, PROFILE};

/// Mark a matrix run as started.
pub fn started(target: &str, started_at: f64) {
    let t = target.to_string();
    gauge!(m::RUN_RUNNING.name, "target" => t.clone(), "profile" => PROFILE).set(1.0);
    gauge!(m::RUN_START.name, "target" => t, "profile" => PROFILE).set(started_at);
    tracing::info!(target_name = %target, profile = PROFILE, "Profile run started");
}

/// Export the last run's matrix; the run is no longer running.
pub fn finished(report: &MatrixReport) {
    let t = report.target.clone();
    for c in &report.cells {
        gauge!(m::MATRIX_CELL.name, "target" => t.clone(), "profile" => PROFILE,
            "capabilities" => c.capabilities.as_str(), "response_mode" => c.response_mode.as_str(),
            "mcp_protocol_version" => c.protocol_version.clone())
        .set(c.result.score());
    }
    for r in CellResult::ALL {
        let n = report.summary.get(r.as_str()).copied().unwrap_or(0);
        gauge!(m::MATRIX_CELLS.name, "target" => t.clone(), "profile" => PROFILE, "result" => r.as_str()).set(n as f64);
    }
    for v in std::iter::once(LATEST_PROTOCOL).chain(SESSION_PROTOCOLS) {
        let supported = report.versions.iter().any(|p| p.version == v && p.supported);
        gauge!(m::MATRIX_PROTOCOL_SUPPORTED.name, "target" => t.clone(), "profile" => PROFILE,
            "mcp_protocol_version" => v)
        .set(if supported { 1.0 } else { 0.0 });
    }
    gauge!(m::RUN_PASSED.name, "target" => t.clone(), "profile" => PROFILE).set(if report.passed() {
        1.0
    } else {
        0.0
    });
    gauge!(m::RUN_END.name, "target" => t.clone(), "profile" => PROFILE).set(report.ended_at);
    gauge!(m::RUN_RUNNING.name, "target" => t, "profile" => PROFILE).set(0.0);
    tracing::info!(target_name = %report.target, profile = PROFILE, verdict = %report.verdict,
        cells = report.cells.len(), "Profile run finished");
}
