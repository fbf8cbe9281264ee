//! `[heavy_profiles]` and `[[profiles]]`: scheduled heavy runs, checked as data here (names,
//! schedules, targets and their permissions, one parameter table of the entry's kind); planning
//! each entry against its targets is `driver::plan_scheduled`, which `serve` and `check-config`
//! run before anything starts.

use std::path::PathBuf;

use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::ConfigError;
use super::raw::{RawConfig, RawHeavyProfiles, RawProfile};
use crate::spec::{ProfileKind, ProfileSpec};

/// Global caps of heavy profiles.
#[derive(Debug, Clone)]
pub struct HeavyLimits {
    pub max_sessions: u32,
    /// Aggregate requests per second.
    pub max_request_rate: f64,
    /// A JSON report per run is written here.
    pub results_dir: PathBuf,
    /// An HTML report beside each JSON one.
    pub html: bool,
    /// Runs of each profile and target kept in `results_dir`; older files are deleted.
    pub keep_runs: u32,
}

/// One validated `[[profiles]]` entry, not yet planned against its targets.
#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// The `profile` label of its runs.
    pub name: String,
    pub kind: ProfileKind,
    /// Fire times (UTC).
    pub schedule: Cron,
    /// The parameters of its kind (the entry's table, or the kind's defaults).
    pub spec: ProfileSpec,
    pub thresholds: Vec<String>,
    pub abort_on_fail: bool,
    /// Names of valid targets, each allowed this kind, in the order given.
    pub targets: Vec<String>,
}

pub(super) fn validate_limits(raw: &RawHeavyProfiles, errors: &mut Vec<ConfigError>) -> Option<HeavyLimits> {
    let before = errors.len();
    if raw.max_sessions == 0 {
        errors.push(ConfigError::new("heavy_profiles.max_sessions", "must be at least 1".into()));
    }
    if !(raw.max_request_rate.is_finite() && raw.max_request_rate > 0.0) {
        errors.push(ConfigError::new("heavy_profiles.max_request_rate", "must be a positive number".into()));
    }
    if raw.results_dir.is_empty() {
        errors.push(ConfigError::new("heavy_profiles.results_dir", "must not be empty".into()));
    }
    if raw.keep_runs == 0 || raw.keep_runs > super::raw::MAX_KEEP_RUNS {
        errors.push(ConfigError::new(
            "heavy_profiles.keep_runs",
            format!("must be between 1 and {} (runs of each profile and target kept)", super::raw::MAX_KEEP_RUNS),
        ));
    }
    (errors.len() == before).then(|| HeavyLimits {
        max_sessions: raw.max_sessions,
        max_request_rate: raw.max_request_rate,
        results_dir: PathBuf::from(&raw.results_dir),
        html: raw.html,
        keep_runs: raw.keep_runs,
    })
}

/// Cron with an optional leading seconds field (6 fields) besides the classic 5.
pub fn parse_schedule(text: &str) -> Result<Cron, String> {
    CronParser::builder().seconds(Seconds::Optional).build().parse(text).map_err(|e| e.to_string())
}

pub(super) fn validate_profiles(raw: &RawConfig, errors: &mut Vec<ConfigError>) -> Vec<ProfileConfig> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, p) in raw.profiles.iter().enumerate() {
        let path = format!("profiles[{i}]");
        if !names.insert(p.name.as_str()) {
            errors.push(ConfigError::new(format!("{path}.name"), format!("duplicate profile name {:?}", p.name)));
        }
        if let Some(c) = validate_profile(&path, p, raw, errors) {
            out.push(c);
        }
    }
    out
}

fn validate_profile(
    path: &str,
    p: &RawProfile,
    raw: &RawConfig,
    errors: &mut Vec<ConfigError>,
) -> Option<ProfileConfig> {
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("{path}.{field}"), msg));
    if p.name.is_empty() || p.name.len() > 64 || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        err("name", "must be 1-64 characters of [A-Za-z0-9._-] (it becomes the `profile` label)".into());
    }
    let kind = ProfileKind::parse(&p.profile);
    if kind.is_none() {
        err(
            "profile",
            format!(
                "unknown profile {:?}; expected \"load\", \"notify\", \"matrix\", \"chaos\" or \"longevity\"",
                p.profile
            ),
        );
    }
    let tables = [
        ("load", p.load.is_some()),
        ("notify", p.notify.is_some()),
        ("matrix", p.matrix.is_some()),
        ("chaos", p.chaos.is_some()),
        ("longevity", p.longevity.is_some()),
    ];
    for (table, present) in tables {
        if present && kind.is_some_and(|k| k.as_str() != table) {
            err(table, format!("parameters of the {table} profile, but profile = {:?}", p.profile));
        }
    }
    let schedule = parse_schedule(&p.schedule)
        .map_err(|e| err("schedule", format!("not a cron expression ({:?}): {e}", p.schedule)))
        .ok();
    if p.targets.is_empty() {
        err("targets", "must name at least one target".into());
    }
    // Chaos breaks its targets on purpose: it needs allow_chaos, and not allow_heavy (a lab
    // target may take faults without being fit for load).
    let is_chaos = kind.is_some_and(ProfileKind::needs_allow_chaos);
    let mut seen = std::collections::HashSet::new();
    for name in &p.targets {
        match raw.targets.iter().find(|t| &t.name == name) {
            None => err("targets", format!("unknown target {name:?}")),
            Some(t) if is_chaos && !t.allow_chaos => {
                err("targets", format!("target {name:?} does not set allow_chaos = true"))
            }
            Some(t) if !is_chaos && !t.allow_heavy => {
                err("targets", format!("target {name:?} does not set allow_heavy = true"))
            }
            Some(_) if !seen.insert(name.as_str()) => err("targets", format!("target {name:?} is named twice")),
            Some(_) => {}
        }
    }
    if kind.is_some_and(|k| !k.has_thresholds()) && (!p.thresholds.is_empty() || p.abort_on_fail) {
        err("thresholds", "the matrix profile has no thresholds (it fails when a cell is broken)".into());
    }
    let chaos_spec = p.chaos.clone().unwrap_or_default();
    if is_chaos && chaos_spec.names_kind("kill") && p.targets.len() > 1 {
        err(
            "targets",
            format!(
                "scenario kill runs one kill command (or PID) for every target; a chaos profile with kill names one \
                 target, not {}",
                p.targets.len()
            ),
        );
    }
    let longevity_spec = p.longevity.clone().unwrap_or_default();
    if kind == Some(ProfileKind::Longevity) && longevity_spec.snapshots.is_some() && p.targets.len() > 1 {
        err(
            "longevity.snapshots",
            format!(
                "one snapshots file for {} targets would mix their lines; leave it unset (each run writes its own \
                 beside its report) or name one target",
                p.targets.len()
            ),
        );
    }
    let (kind, schedule) = (kind?, schedule?);
    if errors.len() != before {
        return None;
    }
    let spec = match kind {
        ProfileKind::Load => ProfileSpec::Load(Box::new(p.load.clone().unwrap_or_default())),
        ProfileKind::Notify => ProfileSpec::Notify(p.notify.clone().unwrap_or_default()),
        ProfileKind::Matrix => ProfileSpec::Matrix(p.matrix.clone().unwrap_or_default()),
        ProfileKind::Chaos => ProfileSpec::Chaos(Box::new(chaos_spec)),
        ProfileKind::Longevity => ProfileSpec::Longevity(Box::new(longevity_spec)),
    };
    Some(ProfileConfig {
        name: p.name.clone(),
        kind,
        schedule,
        spec,
        thresholds: p.thresholds.clone(),
        abort_on_fail: p.abort_on_fail,
        targets: p.targets.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_take_an_optional_seconds_field() {
        assert!(parse_schedule("0 3 * * *").is_ok());
        assert!(parse_schedule("*/5 * * * * *").is_ok());
        assert!(parse_schedule("61 * * * *").is_err());
        assert!(parse_schedule("@nightly-ish").is_err());
    }
}
