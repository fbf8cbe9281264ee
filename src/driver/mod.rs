//! The profile contract: one driver for every heavy profile, used by the one-shot `run` and by
//! the daemon's schedule. A profile is planned (`plan::plan_run`: its spec against a target,
//! within the caps) into a [`PlannedRun`]; [`execute`] runs it with its telemetry (run metrics,
//! live thresholds and abort, progress lines, cancellation) and returns its [`Report`]. What
//! differs between the callers stays with them: `run` prints, compares with a baseline and exits
//! with a status; the schedule holds locks and budgets and writes reports to `results_dir`.

pub mod plan;

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::chaos::{self, ChaosReport};
use crate::mcp::ClientConfig;
use crate::profile::matrix::{self, MatrixReport};
use crate::profile::report::RunReport;
use crate::profile::{self, Hooks, Population, ProgressLines, longevity, notify};
use crate::telemetry;
use crate::telemetry::chaos::ChaosMetrics;
use crate::telemetry::load::RunMetrics;
use crate::telemetry::longevity::LongevityMetrics;

pub use plan::{PlanTarget, PlannedRun, ScheduledProfile, ScheduledRun, plan_run, plan_scheduled};

/// What a run needs besides its plan.
pub struct Execution {
    pub client: ClientConfig,
    pub http: reqwest::Client,
    /// Ends the run early: it stops issuing, drains and reports what it saw (a matrix is
    /// abandoned: [`execute`] returns `None`).
    pub cancel: CancellationToken,
    /// Unix time the run starts at (its metrics' start time and its files' names).
    pub started: f64,
    /// Progress lines while the run goes (one-shot runs).
    pub progress: Option<ProgressLines>,
    /// Longevity: where one JSON line per memory snapshot is appended.
    pub snapshots: Option<std::fs::File>,
}

/// The report of a finished run, of its profile's kind.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Report {
    /// Load, notify and longevity.
    Run(Box<RunReport>),
    Matrix(Box<MatrixReport>),
    Chaos(Box<ChaosReport>),
}

impl Report {
    /// The run's verdict: thresholds held, something succeeded, nothing broke.
    pub fn passed(&self) -> bool {
        match self {
            Report::Run(r) => r.passed(),
            Report::Matrix(r) => r.passed(),
            Report::Chaos(r) => r.passed(),
        }
    }

    pub fn started_at(&self) -> f64 {
        match self {
            Report::Run(r) => r.started_at,
            Report::Matrix(r) => r.started_at,
            Report::Chaos(r) => r.started_at,
        }
    }
}

/// One line saying what is about to run, for the one-shot command's stdout.
pub fn banner(run: &PlannedRun) -> String {
    let duration = |d: std::time::Duration| humantime::format_duration(std::time::Duration::from_secs(d.as_secs()));
    match run {
        PlannedRun::Load(r) => format!(
            "load run: {} sessions x {} rpm for {} against {} ({} requests planned)",
            r.engine.plan.sessions,
            r.engine.plan.rpm,
            humantime::format_duration(r.engine.plan.duration),
            r.target,
            r.engine.plan.expected_slots()
        ),
        PlannedRun::Notify(r) => format!(
            "notify run: {} sessions, {} batches x {} broadcasts every {} ({} scope) against {} ({} deliveries expected)",
            r.sessions,
            r.batches,
            r.broadcasts,
            humantime::format_duration(r.batch_interval),
            r.trigger_scope.as_str(),
            r.target,
            u64::from(r.sessions) * r.total_broadcasts()
        ),
        PlannedRun::Matrix(r) => format!("capability matrix: {} ({})", r.target, r.client.url),
        PlannedRun::Chaos(r) => format!(
            "chaos run: {} sessions x {} rpm against {}; scenarios {} ({} planned)",
            r.sessions,
            r.rpm,
            r.target,
            r.scenarios.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
            duration(r.planned())
        ),
        PlannedRun::Longevity(r) => format!(
            "longevity run: {} sessions x {} rpm for {} against {}, sessions live {} ({}% end without DELETE), memory: {} every {}",
            r.engine.plan.sessions,
            r.engine.plan.rpm,
            humantime::format_duration(r.engine.plan.duration),
            r.target,
            r.engine.session_lifetime.map_or("for the run".into(), |d| humantime::format_duration(d).to_string()),
            r.engine.unclean_share * 100.0,
            r.memory.as_ref().map_or("this process only".to_string(), |m| m.describe()),
            humantime::format_duration(r.snapshot_interval),
        ),
    }
}

/// Run a planned profile to its end (or `cancel`) with its telemetry; `None` when a matrix was
/// cancelled (it holds nothing worth reporting half-done).
pub async fn execute(run: PlannedRun, x: Execution) -> Option<Report> {
    let (target, profile) = (run.target().to_string(), run.profile().to_string());
    let hooks = |metrics: &Arc<RunMetrics>, progress: Option<ProgressLines>| {
        let (m1, m2) = (Arc::clone(metrics), Arc::clone(metrics));
        Hooks {
            population: Box::new(move |p: Population| m1.population(p.sessions, p.in_flight)),
            progress,
            thresholds: Box::new(move |r| m2.thresholds(r)),
        }
    };
    let report = match run {
        PlannedRun::Load(load) => {
            let operations: Vec<String> = load.mix.iter().map(|e| e.name.clone()).collect();
            let metrics = RunMetrics::start(&target, &profile, &operations, x.started);
            let hooks = hooks(&metrics, x.progress);
            let report = profile::run_load(load, x.client, x.http, metrics.clone(), hooks, x.cancel).await;
            metrics.finished(&report);
            Report::Run(Box::new(report))
        }
        PlannedRun::Notify(run) => {
            let metrics = RunMetrics::start_notify(&target, &profile, x.started);
            let hooks = hooks(&metrics, x.progress);
            let report = notify::run_notify(run, x.client, x.http, metrics.clone(), hooks, x.cancel).await;
            metrics.finished(&report);
            Report::Run(Box::new(report))
        }
        PlannedRun::Longevity(run) => {
            let operations: Vec<String> = run.mix.iter().map(|e| e.name.clone()).collect();
            let metrics = RunMetrics::start(&target, &profile, &operations, x.started);
            let memory = Arc::new(LongevityMetrics::start(&target, &profile, run.memory.is_some()));
            let hooks = hooks(&metrics, x.progress);
            let report =
                longevity::run_longevity(*run, x.client, x.http, metrics.clone(), memory, x.snapshots, hooks, x.cancel)
                    .await;
            metrics.finished(&report);
            Report::Run(Box::new(report))
        }
        PlannedRun::Chaos(run) => {
            let names: Vec<String> = run.scenarios.iter().map(|s| s.name.clone()).collect();
            let metrics = ChaosMetrics::start(&target, &profile, &run.operations(), &names, x.started);
            Report::Chaos(Box::new(chaos::run_chaos(*run, x.client, x.http, metrics, x.cancel).await))
        }
        PlannedRun::Matrix(run) => {
            telemetry::matrix::started(&target, &profile, x.started);
            let report = tokio::select! {
                r = matrix::run_matrix(&run, x.http) => r,
                _ = x.cancel.cancelled() => return None,
            };
            telemetry::matrix::finished(&report, &profile);
            Report::Matrix(Box::new(report))
        }
    };
    Some(report)
}
