//! Heavy profiles on cron schedules: a task per `[[profiles]]` entry sleeps until its next fire
//! time, then starts a run against each of its targets. At most one heavy run holds a target at
//! a time (a lock per target, shared by every entry); a fire that finds the entry's previous run
//! still going, the target held by another entry, or too little of the global caps left is
//! skipped and counted, never queued. On shutdown runs are cancelled and wind down within the grace.

use crate::clock::unix_seconds;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::HeavyLimits;
use crate::driver::{self, Execution, PlannedRun, ScheduledProfile, ScheduledRun};
use crate::telemetry::scheduled::{self as events, RunSkipReason, Verdict};

/// Longest single sleep before the wall clock is read again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Sessions and request rate held by runs in progress, against the global caps.
#[derive(Debug)]
struct Budget {
    limits: (u32, f64),
    used: Mutex<(u32, f64)>,
}

/// A share of the budget, returned when the run ends.
struct Reservation {
    budget: Arc<Budget>,
    sessions: u32,
    rate: f64,
}

impl Budget {
    fn reserve(self: &Arc<Self>, sessions: u32, rate: f64) -> Option<Reservation> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.0 + sessions > self.limits.0 || used.1 + rate > self.limits.1 * (1.0 + 1e-9) {
            return None;
        }
        used.0 += sessions;
        used.1 += rate;
        Some(Reservation { budget: Arc::clone(self), sessions, rate })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        used.0 -= self.sessions;
        used.1 = (used.1 - self.rate).max(0.0);
    }
}

/// What every run of the scheduler shares.
struct Shared {
    http: reqwest::Client,
    results_dir: PathBuf,
    /// An HTML report beside each JSON one.
    html: bool,
    /// Runs of each profile and target whose files are kept.
    keep_runs: u32,
    budget: Arc<Budget>,
    /// One lock per target: held for the whole of a heavy run.
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// The `[coordination]` lease; `None`: this daemon runs every fire.
    leadership: Option<Arc<super::lease::Leadership>>,
}

/// The next fire time strictly after both `now` and the last one fired (a timer that wakes a
/// hair early must not fire the same slot twice).
pub fn next_fire(schedule: &croner::Cron, now: DateTime<Utc>, last: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let from = last.map_or(now, |l| l.max(now));
    schedule.find_next_occurrence(&from, false).ok()
}

/// Run every profile on its schedule until `shutdown`; then cancel the runs in progress and wait
/// up to `grace` for them to write their reports.
pub async fn run(
    profiles: Vec<ScheduledProfile>,
    limits: HeavyLimits,
    http: reqwest::Client,
    shutdown: CancellationToken,
    grace: Duration,
    leadership: Option<Arc<super::lease::Leadership>>,
) {
    let mut locks = HashMap::new();
    for p in &profiles {
        for r in &p.runs {
            locks.entry(r.target.clone()).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())));
            events::registered(&r.target, &p.name);
        }
    }
    let shared = Arc::new(Shared {
        http,
        results_dir: limits.results_dir.clone(),
        html: limits.html,
        keep_runs: limits.keep_runs,
        budget: Arc::new(Budget { limits: (limits.max_sessions, limits.max_request_rate), used: Mutex::new((0, 0.0)) }),
        locks,
        leadership,
    });
    let mut entries = tokio::task::JoinSet::new();
    for p in profiles {
        tracing::info!(profile = %p.name, kind = p.kind.as_str(), schedule = p.schedule.as_str(), runs = p.runs.len(),
            "Profile scheduled");
        entries.spawn(run_entry(p, Arc::clone(&shared), shutdown.clone(), grace));
    }
    while entries.join_next().await.is_some() {}
}

async fn run_entry(p: ScheduledProfile, shared: Arc<Shared>, shutdown: CancellationToken, grace: Duration) {
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut last = None;
    loop {
        let now = Utc::now();
        let Some(next) = next_fire(&p.schedule, now, last) else {
            tracing::warn!(profile = %p.name, "Schedule has no further fire time");
            break;
        };
        for run in &p.runs {
            events::next_fire(&run.target, &p.name, next.timestamp_millis() as f64 / 1000.0);
        }
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
        }
        if wait > MAX_SLEEP {
            // Re-read the wall clock: it may have been stepped (NTP, suspend) while asleep.
            continue;
        }
        last = Some(next);
        // With [coordination], only the lease holder runs; its runs stop if it loses the lease.
        let term = match &shared.leadership {
            None => None,
            Some(l) => match l.term() {
                Some(term) => Some(term),
                None => {
                    for run in &p.runs {
                        events::run_skipped(&run.target, &p.name, RunSkipReason::NotLeader);
                    }
                    continue;
                }
            },
        };
        for run in &p.runs {
            if running.get(&run.target).is_some_and(|h| !h.is_finished()) {
                events::run_skipped(&run.target, &p.name, RunSkipReason::Overlap);
                continue;
            }
            let Ok(guard) = Arc::clone(&shared.locks[&run.target]).try_lock_owned() else {
                events::run_skipped(&run.target, &p.name, RunSkipReason::TargetBusy);
                continue;
            };
            let Some(reservation) = shared.budget.reserve(run.plan.sessions(), run.plan.peak_rate()) else {
                events::run_skipped(&run.target, &p.name, RunSkipReason::OverCaps);
                continue;
            };
            let cancel = shutdown.child_token();
            if let Some(term) = term.clone() {
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = term.cancelled() => cancel.cancel(),
                        _ = cancel.cancelled() => {}
                    }
                });
            }
            let task = execute(p.name.clone(), run.clone(), Arc::clone(&shared), cancel.clone());
            running.insert(
                run.target.clone(),
                tokio::spawn(async move {
                    task.await;
                    // Ends the lease watcher above with the run.
                    cancel.cancel();
                    drop((guard, reservation));
                }),
            );
        }
    }
    // Runs were cancelled with `shutdown`; they stop issuing at once and drain their requests.
    let drain = futures::future::join_all(running.values_mut());
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(profile = %p.name, "Profile runs did not stop within the grace period");
        for h in running.values() {
            h.abort();
        }
    }
}

/// One run against one target: the same driver and telemetry as the one-shot `run`, a JSON
/// report in the results directory, and the scheduler's counters.
async fn execute(profile: String, run: ScheduledRun, shared: Arc<Shared>, cancel: CancellationToken) {
    let target = run.target.clone();
    events::run_started(&target, &profile);
    let started = unix_seconds();
    let snapshots = match &run.plan {
        PlannedRun::Longevity(plan) => {
            // Without a file of its own, a run writes its snapshots beside its report.
            let path = plan
                .snapshots
                .clone()
                .unwrap_or_else(|| run_file(&shared.results_dir, &profile, &target, started, "snapshots.jsonl"));
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                .and_then(|()| std::fs::OpenOptions::new().create(true).append(true).open(&path))
                .map_err(|error| {
                    tracing::warn!(target_name = %target, profile, path = %path.display(), error = %error,
                        "Snapshots file not opened; the run goes on without it");
                })
                .ok()
        }
        _ => None,
    };
    let execution = Execution {
        client: run.client,
        http: shared.http.clone(),
        cancel: cancel.clone(),
        started,
        progress: None,
        snapshots,
    };
    let Some(report) = driver::execute(run.plan, execution).await else {
        events::run_completed(&target, &profile, Verdict::Cancelled);
        return;
    };
    let verdict = verdict_of(report.passed(), &cancel);
    events::run_completed(&target, &profile, verdict);
    let written = serde_json::to_value(&report)
        .map_err(|e| e.to_string())
        .and_then(|r| write_report(&shared.results_dir, &profile, &target, started, &r).map_err(|e| e.to_string()));
    match written {
        Ok(path) => tracing::info!(target_name = %target, profile, verdict = verdict.as_str(),
            report = %path.display(), "Scheduled profile run finished"),
        Err(e) => events::report_failed(&target, &profile, &e),
    }
    if shared.html {
        let rendering =
            crate::report::Rendering { report: &report, baseline: None, report_path: None, html_path: None };
        let path = run_file(&shared.results_dir, &profile, &target, started, "html");
        if let Err(e) = std::fs::write(&path, crate::report::html::render(&rendering)) {
            events::report_failed(&target, &profile, &format!("{}: {e}", path.display()));
        }
    }
    let removed = prune_runs(&shared.results_dir, &profile, &target, shared.keep_runs as usize);
    if removed > 0 {
        tracing::debug!(target_name = %target, profile, removed, "Older run files removed");
    }
}

/// Delete the files of all but the newest `keep` runs of `profile` against `target` in `dir`
/// (every `<profile>-<target>-<start ms>.<ext>`), so a daemon running for months keeps a bounded
/// results directory. Returns the files removed.
fn prune_runs(dir: &Path, profile: &str, target: &str, keep: usize) -> usize {
    let prefix = format!("{profile}-{target}-");
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut runs: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let rest = name.strip_prefix(&prefix)?;
            // The start time alone, up to the extension: another target whose name begins with
            // this one's (`a` and `a-b`) leaves a non-number here.
            let (ms, _ext) = rest.split_once('.')?;
            let ms = ms.parse::<u64>().ok().filter(|_| ms.bytes().all(|b| b.is_ascii_digit()))?;
            Some((ms, e.path()))
        })
        .collect();
    let mut starts: Vec<u64> = runs.iter().map(|(ms, _)| *ms).collect();
    starts.sort_unstable();
    starts.dedup();
    let Some(&oldest_kept) = starts.len().checked_sub(keep).and_then(|i| starts.get(i)) else { return 0 };
    runs.retain(|(ms, _)| *ms < oldest_kept);
    runs.iter().filter(|(_, path)| std::fs::remove_file(path).is_ok()).count()
}

fn verdict_of(passed: bool, cancel: &CancellationToken) -> Verdict {
    match (cancel.is_cancelled(), passed) {
        (true, _) => Verdict::Cancelled,
        (false, true) => Verdict::Pass,
        (false, false) => Verdict::Fail,
    }
}

/// `<dir>/<profile>-<target>-<start ms>.<ext>`: a run's files.
fn run_file(dir: &Path, profile: &str, target: &str, started: f64, ext: &str) -> PathBuf {
    dir.join(format!("{profile}-{target}-{}.{ext}", (started * 1000.0) as u64))
}

/// `<dir>/<profile>-<target>-<start ms>.json`.
fn write_report(
    dir: &Path,
    profile: &str,
    target: &str,
    started: f64,
    report: &serde_json::Value,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = run_file(dir, profile, target, started, "json");
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&path, text)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_fire_never_repeats_a_slot() {
        let every_5s = crate::config::parse_schedule("*/5 * * * * *").unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let first = next_fire(&every_5s, t("2026-01-01T00:00:03Z"), None).unwrap();
        assert_eq!(first, t("2026-01-01T00:00:05Z"));
        // Woken 1 ms early: still the slot after the one just fired.
        let second = next_fire(&every_5s, t("2026-01-01T00:00:04.999Z"), Some(first)).unwrap();
        assert_eq!(second, t("2026-01-01T00:00:10Z"));
        let daily = crate::config::parse_schedule("0 3 * * *").unwrap();
        assert_eq!(next_fire(&daily, t("2026-01-01T04:00:00Z"), None).unwrap(), t("2026-01-02T03:00:00Z"));
    }

    #[test]
    fn prune_keeps_the_newest_runs_of_one_profile_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |name: &str| std::fs::write(dir.path().join(name), b"x").unwrap();
        for ms in [1000, 2000, 3000] {
            touch(&format!("load-a-{ms}.json"));
            touch(&format!("load-a-{ms}.html"));
        }
        touch("longevity-a-1500.snapshots.jsonl");
        touch("load-a-b-500.json");
        touch("load-a-notes.txt");
        assert_eq!(prune_runs(dir.path(), "load", "a", 2), 2, "run 1000's JSON and HTML");
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(
            left,
            [
                "load-a-2000.html",
                "load-a-2000.json",
                "load-a-3000.html",
                "load-a-3000.json",
                "load-a-b-500.json",
                "load-a-notes.txt",
                "longevity-a-1500.snapshots.jsonl"
            ]
        );
        assert_eq!(prune_runs(dir.path(), "load", "a", 5), 0, "fewer runs than kept");
        assert_eq!(prune_runs(dir.path(), "longevity", "a", 1), 0);
    }

    #[test]
    fn budget_refuses_beyond_the_caps_and_returns_on_drop() {
        let b = Arc::new(Budget { limits: (100, 50.0), used: Mutex::new((0, 0.0)) });
        let a = b.reserve(60, 30.0).expect("fits");
        assert!(b.reserve(50, 1.0).is_none(), "sessions over the cap");
        assert!(b.reserve(10, 25.0).is_none(), "rate over the cap");
        let c = b.reserve(40, 20.0).expect("exactly at the caps");
        drop((a, c));
        assert!(b.reserve(100, 50.0).is_some());
    }
}
