//! Planning: a profile's parameters (`crate::spec`, shared by the one-shot flags and the daemon's
//! `[[profiles]]` tables) validated into a run of `profile/`, one function per profile.

use std::time::Duration;

use serde_json::Value;

use super::engine::EngineConfig;
use super::load::{self, OpKind};
use super::longevity::LongevityRun;
use super::notify::NotifyRun;
use super::per_session::{MemoryProbe, MemoryUrl};
use super::report::ThresholdOrigin;
use super::threshold::{Stat, Threshold};
use super::{LoadRun, scope_indices};
use crate::inspect::memory::MemorySource;
use crate::profile::arrival::ArrivalPlan;
use crate::spec::{LoadSpec, LongevitySpec, MatrixSpec, MixSpec, NotifySpec, ParamError, RunOptions, refuse};

fn json_object(key: &'static str, s: &str) -> Result<Value, ParamError> {
    match serde_json::from_str::<Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => refuse(key, "must be a JSON object"),
        Err(e) => refuse(key, format!("is not valid JSON: {e}")),
    }
}

/// The default mix with the spec's tools, resource, prompt and weights (load and longevity).
pub fn plan_mix(spec: &MixSpec) -> Result<Vec<load::MixEntry>, ParamError> {
    let mut mix = load::default_mix();
    for entry in &mut mix {
        entry.kind = match (&entry.kind, entry.name.as_str()) {
            (OpKind::ToolCall { .. }, "fast_tool") => OpKind::ToolCall {
                tool: spec.fast_tool.clone(),
                arguments: json_object("fast_tool_args", &spec.fast_tool_args)?,
            },
            (OpKind::ToolCall { .. }, "slow_tool") => OpKind::ToolCall {
                tool: spec.slow_tool.clone(),
                arguments: json_object("slow_tool_args", &spec.slow_tool_args)?,
            },
            (OpKind::ResourceRead { .. }, _) => OpKind::ResourceRead { uri: spec.resource.clone() },
            (OpKind::PromptGet { .. }, _) => OpKind::PromptGet {
                prompt: spec.prompt.clone(),
                arguments: json_object("prompt_args", &spec.prompt_args)?,
            },
            (other, _) => other.clone(),
        };
    }
    if let Some(weights) = &spec.mix {
        load::apply_weights(&mut mix, weights).map_err(|message| ParamError { key: "mix", message })?;
    }
    Ok(mix)
}

/// Thresholds of a load run when neither `--threshold` nor a preset gives any.
pub const LOAD_DEFAULT_THRESHOLDS: [&str; 1] = ["error_rate < 1%"];

/// A run's threshold expressions: the given ones, else the preset's, else the profile's defaults.
pub fn threshold_exprs(given: &[String], preset: Option<&[&str]>, defaults: &[&str]) -> (Vec<String>, ThresholdOrigin) {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    match preset {
        _ if !given.is_empty() => (given.to_vec(), ThresholdOrigin::Given),
        Some(p) => (owned(p), ThresholdOrigin::Preset),
        None => (owned(defaults), ThresholdOrigin::Default),
    }
}

/// Validate load parameters into a run.
pub fn plan_load(spec: &LoadSpec, o: &RunOptions<'_>) -> Result<LoadRun, ParamError> {
    let preset = match &spec.preset {
        Some(name) => Some(load::preset(name).ok_or_else(|| ParamError {
            key: "preset",
            message: format!("unknown preset {name:?}; presets: light, moderate, heavy"),
        })?),
        None => None,
    };
    let clients = spec.clients.or(preset.map(|p| p.clients)).unwrap_or(10);
    let duration = spec.duration.or(preset.map(|p| p.duration)).unwrap_or(Duration::from_secs(60));
    let rpm = spec.rpm.or(preset.map(|p| p.rpm)).unwrap_or(60.0);
    let ramp_up = spec.ramp.or(preset.map(|p| p.ramp_up)).unwrap_or(Duration::ZERO);
    o.caps.check_sessions("clients", clients)?;
    if !(rpm.is_finite() && rpm > 0.0) {
        return refuse("rpm", format!("must be a positive number, got {rpm}"));
    }
    if duration.is_zero() {
        return refuse("duration", "must be positive");
    }
    if ramp_up + spec.ramp_down > duration {
        return refuse(
            "ramp",
            format!(
                "ramp-up {} plus ramp-down {} exceed the duration {}",
                humantime::format_duration(ramp_up),
                humantime::format_duration(spec.ramp_down),
                humantime::format_duration(duration)
            ),
        );
    }
    let plan = ArrivalPlan { sessions: clients, rpm, duration, ramp_up, ramp_down: spec.ramp_down };
    if plan.peak_rate() > o.caps.max_rate {
        return refuse(
            "rpm",
            format!(
                "{clients} clients x {rpm} rpm = {:.1} requests/s exceed the cap of {} ({})",
                plan.peak_rate(),
                o.caps.max_rate,
                o.caps.rate_name
            ),
        );
    }

    let mix = plan_mix(&spec.workload)?;

    let (exprs, thresholds_origin) =
        threshold_exprs(o.thresholds, preset.map(|p| p.thresholds), &LOAD_DEFAULT_THRESHOLDS);
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|err| ParamError { key: "thresholds", message: err.to_string() })?;
        if t.stat == Stat::Delivery {
            return refuse(
                "thresholds",
                format!("{e:?}: delivery applies to `run notify` only (profile = \"notify\" in the daemon)"),
            );
        }
        if t.stat.is_chaos() {
            return refuse("thresholds", format!("{e:?}: {} applies to `run chaos` only", t.stat_name()));
        }
        if t.stat.is_memory() {
            return refuse("thresholds", format!("{e:?}: memory thresholds apply to `run longevity` only"));
        }
        scope_indices(&mix, t.scope.as_deref()).map_err(|message| ParamError { key: "thresholds", message })?;
        thresholds.push(t);
    }

    // Default: what a stalled server accumulates over one request timeout at the peak rate.
    let default_in_flight = (plan.peak_rate() * o.timeout.as_secs_f64()).ceil() as usize;
    let max_in_flight = spec.max_in_flight.unwrap_or(default_in_flight.max(clients as usize * 4)).clamp(1, 100_000);
    Ok(LoadRun {
        profile: o.profile.into(),
        target: o.target.into(),
        preset: preset.map(|p| p.name.to_string()),
        engine: EngineConfig {
            plan,
            max_requests: spec.max_requests,
            max_in_flight,
            late_after: spec.late_after,
            open_stream: spec.stream,
            drain: o.timeout,
            seed: 0x6d63_705f_6c6f_6164,
            replicas: None,
            session_lifetime: None,
            unclean_share: 0.0,
            delete_sessions: !spec.no_delete,
            opened: None,
        },
        mix,
        thresholds,
        thresholds_origin,
        abort_on_fail: o.abort_on_fail,
        tick: o.tick,
        memory: None,
    })
}

/// Where a daemon target's memory can be read besides the spec's own URLs (`run load` has neither).
#[derive(Debug, Clone, Default)]
pub struct TargetMemory {
    /// The target's instances by name and MCP URL (`memory_from_instances`).
    pub instances: Vec<(String, url::Url)>,
    /// The target's Redis, sampled when the run samples target memory and names no `redis`.
    pub redis: Option<crate::config::RedisSpec>,
}

/// The memory sampler of a load run (`memory_urls`, `memory_from_instances`, `redis`); `None`
/// when it samples nothing. `ramp` is the planned ramp-up: memory is regressed on sessions as
/// they join, so target memory needs one.
pub fn plan_memory(spec: &LoadSpec, ramp: Duration, target: &TargetMemory) -> Result<Option<MemoryProbe>, ParamError> {
    let mut urls = Vec::new();
    if spec.memory_from_instances {
        if !spec.memory_urls.is_empty() {
            return refuse("memory_from_instances", "set either memory_urls or memory_from_instances, not both");
        }
        if target.instances.is_empty() {
            return refuse("memory_from_instances", "the target lists no instances (name its /metrics in memory_urls)");
        }
        for (name, mcp) in &target.instances {
            urls.push(MemoryUrl { replica: Some(name.clone()), url: metrics_url(mcp) });
        }
    }
    if spec.memory_urls.len() > crate::config::MAX_INSTANCES {
        return refuse("memory_urls", format!("at most {} URLs", crate::config::MAX_INSTANCES));
    }
    for raw in &spec.memory_urls {
        let m = MemoryUrl::parse(raw).map_err(|message| ParamError { key: "memory_urls", message })?;
        if m.replica.is_some() && urls.iter().any(|u: &MemoryUrl| u.replica == m.replica) {
            return refuse("memory_urls", format!("replica {:?} is named twice", m.replica.unwrap_or_default()));
        }
        urls.push(m);
    }
    let redis = match &spec.redis {
        Some(raw) => Some(redis_spec(raw)?),
        None if !urls.is_empty() => target.redis.clone(),
        None => None,
    };
    if urls.is_empty() && redis.is_none() {
        return Ok(None);
    }
    if !urls.is_empty() && ramp.is_zero() {
        let key = if spec.memory_from_instances { "memory_from_instances" } else { "memory_urls" };
        return refuse(key, "needs a ramp: memory is regressed on sessions as they join");
    }
    if spec.memory_interval < Duration::from_millis(50) {
        return refuse("memory_interval", "must be at least 50ms");
    }
    Ok(Some(MemoryProbe {
        targets: urls,
        redis,
        interval: spec.memory_interval,
        session_key_prefix: spec.session_key_prefix.clone(),
    }))
}

/// `/metrics` on the origin of an MCP URL (where the reference target and most servers export
/// `process_resident_memory_bytes`).
pub fn metrics_url(mcp: &url::Url) -> url::Url {
    let mut url = mcp.clone();
    url.set_path("/metrics");
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A Redis URL as an inspector spec: the password moves out of the URL (never logged).
fn redis_spec(raw: &str) -> Result<crate::config::RedisSpec, ParamError> {
    // Never echo the URL: it may hold a password.
    let mut url = url::Url::parse(raw).map_err(|e| ParamError { key: "redis", message: format!("not a URL ({e})") })?;
    if url.scheme() != "redis" || url.host_str().is_none_or(str::is_empty) {
        return refuse("redis", "must be redis://[:password@]host:port[/db]");
    }
    let password = url.password().map(str::to_string);
    let _ = url.set_password(None);
    Ok(crate::config::RedisSpec {
        url,
        password: password.map(crate::config::Secret::new),
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        key_patterns: Vec::new(),
        scan_budget: 1,
    })
}

/// Thresholds of a notify run when none is given (DESIGN.md section 2).
pub const NOTIFY_DEFAULT_THRESHOLDS: [&str; 2] = ["delivery >= 99%", "p95 < 500ms"];

/// Validate notify parameters into a run.
pub fn plan_notify(spec: &NotifySpec, o: &RunOptions<'_>) -> Result<NotifyRun, ParamError> {
    for (key, v) in
        [("batches", spec.batches), ("broadcasts", spec.broadcasts), ("connect_concurrency", spec.connect_concurrency)]
    {
        if v == 0 {
            return refuse(key, "must be at least 1");
        }
    }
    o.caps.check_sessions("sessions", spec.sessions)?;
    let (exprs, thresholds_origin) = threshold_exprs(o.thresholds, None, &NOTIFY_DEFAULT_THRESHOLDS);
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|err| ParamError { key: "thresholds", message: err.to_string() })?;
        if t.scope.is_some() {
            return refuse("thresholds", format!("{e:?}: a notify run has no operations to scope to"));
        }
        if t.stat.is_chaos() {
            return refuse("thresholds", format!("{e:?}: {} applies to `run chaos` only", t.stat_name()));
        }
        if t.stat.is_memory() {
            return refuse("thresholds", format!("{e:?}: memory thresholds apply to `run longevity` only"));
        }
        thresholds.push(t);
    }
    Ok(NotifyRun {
        profile: o.profile.into(),
        target: o.target.into(),
        sessions: spec.sessions,
        batches: spec.batches,
        broadcasts: spec.broadcasts,
        batch_interval: spec.batch_interval,
        trigger_tool: spec.trigger_tool.clone(),
        trigger_arguments: json_object("trigger_args", &spec.trigger_args)?,
        trigger_scope: spec.trigger_scope,
        method: spec.method.clone(),
        thresholds,
        thresholds_origin,
        abort_on_fail: o.abort_on_fail,
        tick: o.tick,
        connect_timeout: spec.connect_timeout,
        connect_concurrency: spec.connect_concurrency,
        settle: spec.settle,
        replicas: None,
    })
}

/// Thresholds of a longevity run when none is given (DESIGN.md section 2); the memory threshold
/// applies only with a source of the target's memory.
pub const LONGEVITY_DEFAULT_THRESHOLDS: [&str; 2] = ["error_rate < 1%", "memory_growth < 50%"];

/// Where a longevity run reads the target's memory; `None` samples only this process.
fn memory_source(spec: &LongevitySpec) -> Result<Option<MemorySource>, ParamError> {
    match (&spec.memory_url, spec.memory_pid) {
        (Some(_), Some(_)) => refuse("memory_pid", "cannot be used with memory_url (one source of target memory)"),
        (Some(u), None) => {
            let url =
                url::Url::parse(u).map_err(|e| ParamError { key: "memory_url", message: format!("{u:?}: {e}") })?;
            if !matches!(url.scheme(), "http" | "https") {
                return refuse("memory_url", format!("must be http or https, got {}", url.scheme()));
            }
            let m = &spec.memory_metric;
            if m.is_empty() || !m.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':') {
                return refuse("memory_metric", format!("{m:?} is not a metric name"));
            }
            Ok(Some(MemorySource::Prometheus { url, metric: m.clone() }))
        }
        (None, Some(pid)) => Ok(Some(MemorySource::Proc { pid })),
        (None, None) => Ok(None),
    }
}

/// Validate longevity parameters into a run.
pub fn plan_longevity(spec: &LongevitySpec, o: &RunOptions<'_>) -> Result<LongevityRun, ParamError> {
    o.caps.check_sessions("clients", spec.clients)?;
    if !(spec.rpm.is_finite() && spec.rpm > 0.0) {
        return refuse("rpm", format!("must be a positive number, got {}", spec.rpm));
    }
    for (key, d) in [
        ("duration", spec.duration),
        ("session_lifetime", spec.session_lifetime),
        ("snapshot_interval", spec.snapshot_interval),
    ] {
        if d.is_zero() {
            return refuse(key, "must be positive");
        }
    }
    if !(0.0..=1.0).contains(&spec.churn) {
        return refuse("churn", format!("must be within 0..=1, got {}", spec.churn));
    }
    let fmt = humantime::format_duration;
    if spec.slope_window < spec.snapshot_interval * 2 {
        return refuse(
            "slope_window",
            format!(
                "{} must hold at least two snapshots (snapshot interval {})",
                fmt(spec.slope_window),
                fmt(spec.snapshot_interval)
            ),
        );
    }
    if spec.warmup >= spec.duration {
        return refuse(
            "warmup",
            format!("{} leaves nothing of the duration {} to measure", fmt(spec.warmup), fmt(spec.duration)),
        );
    }
    let plan = ArrivalPlan {
        sessions: spec.clients,
        rpm: spec.rpm,
        duration: spec.duration,
        ramp_up: Duration::ZERO,
        ramp_down: Duration::ZERO,
    };
    if plan.peak_rate() > o.caps.max_rate {
        return refuse(
            "rpm",
            format!(
                "{} clients x {} rpm = {:.1} requests/s exceed the cap of {} ({})",
                spec.clients,
                spec.rpm,
                plan.peak_rate(),
                o.caps.max_rate,
                o.caps.rate_name
            ),
        );
    }
    let memory = memory_source(spec)?;
    let mix = plan_mix(&spec.workload)?;
    let defaults: &[&str] =
        if memory.is_some() { &LONGEVITY_DEFAULT_THRESHOLDS } else { &LONGEVITY_DEFAULT_THRESHOLDS[..1] };
    let (exprs, thresholds_origin) = threshold_exprs(o.thresholds, None, defaults);
    let mut thresholds = Vec::new();
    for e in &exprs {
        let t = Threshold::parse(e).map_err(|err| ParamError { key: "thresholds", message: err.to_string() })?;
        if t.stat == Stat::Delivery {
            return refuse("thresholds", format!("{e:?}: delivery applies to the notify profile only"));
        }
        if t.stat.is_chaos() {
            return refuse("thresholds", format!("{e:?}: {} applies to the chaos profile only", t.stat_name()));
        }
        if t.stat.is_memory() {
            if t.scope.is_some() {
                return refuse("thresholds", format!("{e:?}: memory thresholds take no operation scope"));
            }
            if memory.is_none() {
                return refuse(
                    "thresholds",
                    format!("{e:?}: memory thresholds need a source of the target's memory (a memory URL or PID)"),
                );
            }
        } else {
            scope_indices(&mix, t.scope.as_deref()).map_err(|message| ParamError { key: "thresholds", message })?;
        }
        thresholds.push(t);
    }
    let default_in_flight = (plan.peak_rate() * o.timeout.as_secs_f64()).ceil() as usize;
    Ok(LongevityRun {
        profile: o.profile.into(),
        target: o.target.into(),
        engine: EngineConfig {
            replicas: None,
            // Churn decides how sessions end; the ones alive at the end get their DELETE.
            delete_sessions: true,
            opened: None,
            plan,
            max_requests: None,
            max_in_flight: default_in_flight.max(spec.clients as usize * 4).clamp(1, 100_000),
            late_after: Duration::from_millis(10),
            open_stream: false,
            drain: o.timeout,
            seed: 0x6d63_705f_6c6f_6e67,
            session_lifetime: Some(spec.session_lifetime),
            unclean_share: spec.churn,
        },
        mix,
        thresholds,
        thresholds_origin,
        abort_on_fail: o.abort_on_fail,
        tick: o.tick,
        memory,
        snapshot_interval: spec.snapshot_interval,
        slope_window: spec.slope_window,
        warmup: spec.warmup,
        sample_timeout: spec.snapshot_interval.min(o.timeout),
        snapshots: spec.snapshots.clone(),
    })
}

/// Validate matrix parameters: the tool to call in every cell, if one is named.
pub fn plan_matrix_tool(spec: &MatrixSpec) -> Result<Option<(String, Value)>, ParamError> {
    if spec.concurrency == 0 || spec.concurrency > 64 {
        return refuse("concurrency", "must be between 1 and 64");
    }
    match &spec.tool {
        Some(t) => Ok(Some((t.clone(), json_object("tool_args", &spec.tool_args)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::spec::Caps;

    #[derive(Parser)]
    struct Flags<T: clap::Args> {
        #[command(flatten)]
        spec: T,
    }

    #[test]
    fn flag_defaults_equal_config_defaults() {
        assert_eq!(Flags::<LoadSpec>::try_parse_from(["x"]).unwrap().spec, LoadSpec::default());
        assert_eq!(Flags::<MixSpec>::try_parse_from(["x"]).unwrap().spec, MixSpec::default());
        assert_eq!(Flags::<NotifySpec>::try_parse_from(["x"]).unwrap().spec, NotifySpec::default());
        assert_eq!(Flags::<MatrixSpec>::try_parse_from(["x"]).unwrap().spec, MatrixSpec::default());
        assert_eq!(Flags::<LongevitySpec>::try_parse_from(["x"]).unwrap().spec, LongevitySpec::default());
    }

    #[test]
    fn mix_keys_sit_beside_the_load_keys_and_unknown_keys_are_refused() {
        let spec: LoadSpec = toml::from_str("clients = 3\nfast_tool = \"ping\"\nmix = \"fast_tool=1\"").unwrap();
        assert_eq!((spec.clients, spec.workload.fast_tool.as_str()), (Some(3), "ping"));
        assert_eq!(spec.workload.mix.as_deref(), Some("fast_tool=1"));
        assert_eq!(spec.workload.slow_tool, "slow");
        let e = toml::from_str::<LoadSpec>("fast_tol = \"ping\"").unwrap_err().to_string();
        assert!(e.contains("unknown field `fast_tol`"), "{e}");
        let e = toml::from_str::<LoadSpec>("fast_tool = 3").unwrap_err().to_string();
        assert!(e.contains("key `fast_tool`: invalid type"), "{e}");
    }

    fn options(thresholds: &[String]) -> RunOptions<'_> {
        RunOptions {
            profile: "p",
            target: "t",
            thresholds,
            abort_on_fail: false,
            timeout: Duration::from_secs(10),
            tick: Duration::from_millis(500),
            caps: Caps {
                max_sessions: 100,
                max_rate: 10.0,
                sessions_name: "cap.s",
                rate_name: "cap.r",
                descriptors: u64::MAX,
            },
        }
    }

    #[test]
    fn caps_name_the_key_and_the_cap() {
        let spec = LoadSpec { clients: Some(101), ..Default::default() };
        let e = plan_load(&spec, &options(&[])).unwrap_err();
        assert_eq!((e.key, e.message.as_str()), ("clients", "101 sessions exceed the cap of 100 (cap.s)"));
        let spec = LoadSpec { clients: Some(20), rpm: Some(60.0), ..Default::default() };
        let e = plan_load(&spec, &options(&[])).unwrap_err();
        assert_eq!(e.key, "rpm");
        assert!(e.message.contains("20.0 requests/s exceed the cap of 10 (cap.r)"), "{}", e.message);
        let spec = NotifySpec::default();
        assert_eq!(plan_notify(&spec, &options(&[])).unwrap_err().key, "sessions");
    }

    #[test]
    fn notify_ramp_bound_is_at_least_one() {
        let spec: NotifySpec = toml::from_str("sessions = 10\nconnect_concurrency = 0").unwrap();
        let e = plan_notify(&spec, &options(&[])).unwrap_err();
        assert_eq!((e.key, e.message.as_str()), ("connect_concurrency", "must be at least 1"));
        let spec = NotifySpec { sessions: 10, connect_concurrency: 3, ..Default::default() };
        assert_eq!(plan_notify(&spec, &options(&[])).unwrap().connect_concurrency, 3);
    }

    #[test]
    fn thresholds_are_checked_against_the_profile() {
        let bad = vec!["p95 <".to_string()];
        let spec = LoadSpec { clients: Some(1), ..Default::default() };
        assert_eq!(plan_load(&spec, &options(&bad)).unwrap_err().key, "thresholds");
        let delivery = vec!["delivery >= 99%".to_string()];
        assert_eq!(plan_load(&spec, &options(&delivery)).unwrap_err().key, "thresholds");
        let ok = vec!["tools/call:p95 < 50ms".to_string()];
        assert_eq!(plan_load(&spec, &options(&ok)).unwrap().thresholds.len(), 1);
    }
}
