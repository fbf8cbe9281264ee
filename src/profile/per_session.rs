//! Memory per 1,000 sessions during a load ramp, and the session keys a run leaves behind.
//!
//! While sessions join (the ramp), a sampler pairs the run's live session count with the
//! target's resident memory (`process_resident_memory_bytes` from its own `/metrics`, per
//! instance when several URLs are given) and Redis `INFO used_memory`; the least-squares slope
//! of memory against sessions, times 1,000, is the figure of the guide's baseline table.
//! After the run, the `mcp:session:<id>` keys of the sessions the run opened are looked up:
//! the run holds none of them any more, so every one still present is orphaned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::RedisSpec;
use crate::inspect::Inspector;
use crate::inspect::memory::{self, MemorySource};
use crate::inspect::redis::RedisInspector;

/// Metric read from each target's `/metrics`.
pub const RESIDENT_MEMORY_METRIC: &str = "process_resident_memory_bytes";
/// Key prefix of session metadata in Redis (the reference target's and the guide's layout).
pub use crate::spec::load::DEFAULT_SESSION_KEY_PREFIX;
/// `replica` value of the sum over every memory URL.
pub const ALL_REPLICAS: &str = "all";
/// Fewest samples a slope is computed from.
pub const MIN_SAMPLES: usize = 3;

/// A least-squares fit of memory against live sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Slope times 1,000: bytes per 1,000 sessions.
    pub per_1000_sessions: f64,
    /// Coefficient of determination (1: memory follows sessions exactly).
    pub r_squared: f64,
}

/// Least-squares slope of `bytes` against `sessions` over `(sessions, bytes)` pairs, per 1,000
/// sessions; `None` with fewer than [`MIN_SAMPLES`] points or when sessions never changed.
pub fn per_1000_sessions(points: &[(f64, f64)]) -> Option<Fit> {
    if points.len() < MIN_SAMPLES {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(x, y), (px, py)| (x + px / n, y + py / n));
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
        syy += (y - my) * (y - my);
    }
    if sxx <= f64::EPSILON {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy <= f64::EPSILON { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    Some(Fit { per_1000_sessions: slope * 1000.0, r_squared })
}

/// One `--memory-url`: a target's `/metrics`, optionally named by its replica.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryUrl {
    pub replica: Option<String>,
    pub url: url::Url,
}

impl MemoryUrl {
    /// `URL` or `NAME=URL`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (replica, url) = match s.split_once('=') {
            Some((name, url)) if !name.contains('/') => (Some(name.trim().to_string()), url.trim()),
            _ => (None, s.trim()),
        };
        if let Some(name) = &replica {
            crate::config::check_replica_name(name).map_err(|e| format!("{name:?}: {e}"))?;
            if name == ALL_REPLICAS {
                return Err(format!("{name:?} is reserved for the sum over every URL"));
            }
        }
        let url = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{url}: must be http or https"));
        }
        Ok(Self { replica, url })
    }
}

/// What to sample during a ramp.
#[derive(Debug, Clone)]
pub struct MemoryProbe {
    /// Targets' `/metrics` endpoints; unnamed URLs are `replica` 0, 1, ... by position.
    pub targets: Vec<MemoryUrl>,
    /// The Redis behind the target (used memory; orphaned session keys after the run).
    pub redis: Option<RedisSpec>,
    pub interval: Duration,
    pub session_key_prefix: String,
}

/// One series' fit and the range it covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeriesFit {
    /// Least-squares slope of bytes against live sessions, per 1,000 sessions; absent with too
    /// few samples or no change in sessions.
    pub bytes_per_1000_sessions: Option<f64>,
    pub r_squared: Option<f64>,
    pub samples: u64,
    /// Failed reads (left out of the fit).
    pub errors: u64,
    pub sessions_first: f64,
    pub sessions_last: f64,
    pub bytes_first: f64,
    pub bytes_last: f64,
}

impl SeriesFit {
    fn of(points: &[(f64, f64)], errors: u64) -> Self {
        let fit = per_1000_sessions(points);
        let first = points.first().copied().unwrap_or_default();
        let last = points.last().copied().unwrap_or_default();
        Self {
            bytes_per_1000_sessions: fit.map(|f| f.per_1000_sessions),
            r_squared: fit.map(|f| f.r_squared),
            samples: points.len() as u64,
            errors,
            sessions_first: first.0,
            sessions_last: last.0,
            bytes_first: first.1,
            bytes_last: last.1,
        }
    }
}

/// The report's `memory` section of a load run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryResults {
    /// Sampling interval, milliseconds.
    pub interval_ms: u64,
    /// Target memory by replica (`all`: the sum over every URL at each sample).
    pub target: BTreeMap<String, SeriesFit>,
    /// Redis `used_memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<SeriesFit>,
    /// Sessions the run opened that issued a session id (the ids looked up in Redis).
    pub session_ids: u64,
    /// Of those, keys still in Redis after the run ended (it holds no session any more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_session_keys: Option<u64>,
}

/// Points of every series while sampling.
#[derive(Default)]
struct Series {
    target: Vec<Vec<(f64, f64)>>,
    target_errors: Vec<u64>,
    all: Vec<(f64, f64)>,
    redis: Vec<(f64, f64)>,
    redis_errors: u64,
}

impl MemoryProbe {
    /// Label of URL `i`.
    pub fn replica_name(&self, i: usize) -> String {
        match &self.targets[i].replica {
            Some(name) => name.clone(),
            None if self.targets.len() == 1 => ALL_REPLICAS.into(),
            None => i.to_string(),
        }
    }

    /// Sample every `interval` until `until` elapsed or `cancel`, pairing `sessions` with memory.
    pub async fn sample_ramp(
        &self,
        http: &reqwest::Client,
        sessions: &AtomicU64,
        until: Duration,
        cancel: &CancellationToken,
    ) -> MemoryResults {
        let mut inspector = self.redis.clone().map(|spec| {
            let spec = RedisSpec { key_patterns: Vec::new(), ..spec };
            RedisInspector::new("memory", spec)
        });
        let mut series = Series {
            target: vec![Vec::new(); self.targets.len()],
            target_errors: vec![0; self.targets.len()],
            ..Default::default()
        };
        let begin = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => break,
            }
            let x = sessions.load(Ordering::Relaxed) as f64;
            self.sample_once(http, inspector.as_mut(), x, &mut series).await;
            if begin.elapsed() >= until {
                break;
            }
        }
        let mut target = BTreeMap::new();
        for (i, points) in series.target.iter().enumerate() {
            target.insert(self.replica_name(i), SeriesFit::of(points, series.target_errors[i]));
        }
        if self.targets.len() > 1 {
            let errors = series.target_errors.iter().sum();
            target.insert(ALL_REPLICAS.into(), SeriesFit::of(&series.all, errors));
        }
        MemoryResults {
            interval_ms: self.interval.as_millis() as u64,
            target,
            redis: self.redis.as_ref().map(|_| SeriesFit::of(&series.redis, series.redis_errors)),
            session_ids: 0,
            orphaned_session_keys: None,
        }
    }

    async fn sample_once(
        &self,
        http: &reqwest::Client,
        inspector: Option<&mut RedisInspector>,
        x: f64,
        series: &mut Series,
    ) {
        let reads = self.targets.iter().map(|t| read_resident_memory(http, &t.url, self.interval));
        let redis = async {
            match inspector {
                Some(i) => Some(i.sample().await.info.and_then(|info| info.used_memory)),
                None => None,
            }
        };
        let (reads, redis) = tokio::join!(futures::future::join_all(reads), redis);
        let mut sum = Some(0.0);
        for (i, read) in reads.into_iter().enumerate() {
            match read {
                Ok(bytes) => {
                    series.target[i].push((x, bytes));
                    sum = sum.map(|s| s + bytes);
                }
                Err(error) => {
                    tracing::debug!(url = %self.targets[i].url, error = %error, "Target memory not read");
                    series.target_errors[i] += 1;
                    sum = None;
                }
            }
        }
        if let Some(sum) = sum.filter(|_| !self.targets.is_empty()) {
            series.all.push((x, sum));
        }
        match redis {
            Some(Some(bytes)) => series.redis.push((x, bytes as f64)),
            Some(None) => series.redis_errors += 1,
            None => {}
        }
    }

    /// Keys `<prefix><id>` among `ids` still present in Redis; `None` without Redis or when it
    /// does not answer.
    pub async fn orphaned_keys(&self, ids: &[String]) -> Option<u64> {
        let spec = self.redis.clone()?;
        let mut inspector = RedisInspector::new("memory", RedisSpec { key_patterns: Vec::new(), ..spec });
        let keys: Vec<String> = ids.iter().map(|id| format!("{}{id}", self.session_key_prefix)).collect();
        match inspector.existing_keys(&keys).await {
            Ok(n) => Some(n),
            Err(error) => {
                tracing::warn!(error = %error, "Orphaned session keys not counted");
                None
            }
        }
    }
}

/// `process_resident_memory_bytes` from one `/metrics` endpoint, bounded by `timeout`: the
/// longevity profile's reader ([`crate::inspect::memory::sample`]), so both profiles read the same
/// figure for the same server (labelled series summed, the body size capped).
pub async fn read_resident_memory(http: &reqwest::Client, url: &url::Url, timeout: Duration) -> Result<f64, String> {
    let source = MemorySource::Prometheus { url: url.clone(), metric: RESIDENT_MEMORY_METRIC.to_string() };
    memory::sample(http, &source, timeout).await.map(|bytes| bytes as f64).map_err(|e| e.to_string())
}

/// Session ids a run opened (bounded: a run never holds more than its session cap).
#[derive(Debug, Default)]
pub struct OpenedSessions {
    ids: std::sync::Mutex<Vec<String>>,
}

impl OpenedSessions {
    /// Most ids remembered; a run beyond it counts orphans among the first ones only.
    pub const MAX: usize = 100_000;

    pub fn record(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.len() < Self::MAX {
            ids.push(id.to_string());
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Shared handle the engine records opened session ids into.
pub type OpenedHandle = Arc<OpenedSessions>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_is_exact() {
        let points: Vec<(f64, f64)> =
            (0..10).map(|i| (f64::from(i) * 10.0, 1e6 + f64::from(i) * 10.0 * 50_000.0)).collect();
        let fit = per_1000_sessions(&points).unwrap();
        assert!((fit.per_1000_sessions - 50e6).abs() < 1.0, "{fit:?}");
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
    }

    #[test]
    fn noise_around_a_flat_line_is_near_zero() {
        let points: Vec<(f64, f64)> =
            (0..20).map(|i| (f64::from(i), 5e6 + if i % 2 == 0 { 4096.0 } else { -4096.0 })).collect();
        let fit = per_1000_sessions(&points).unwrap();
        assert!(fit.per_1000_sessions.abs() < 1_000.0 * 4096.0 / 10.0, "{fit:?}");
        assert!(fit.r_squared < 0.1);
    }

    #[test]
    fn no_slope_without_enough_spread() {
        assert_eq!(per_1000_sessions(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(per_1000_sessions(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]), None);
    }

    #[tokio::test]
    async fn labelled_series_are_summed_as_the_longevity_profile_sums_them() {
        use axum::{Router, routing::get};
        let exposition = "# TYPE process_resident_memory_bytes gauge\n\
            process_resident_memory_bytes_peak 9\n\
            process_resident_memory_bytes{pid=\"1\"} 100\n\
            process_resident_memory_bytes{pid=\"2\"} 50\n";
        let app = Router::new().route("/metrics", get(move || async move { exposition }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/metrics", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let http = reqwest::Client::new();
        assert_eq!(read_resident_memory(&http, &url, Duration::from_secs(2)).await, Ok(150.0));
        let source = MemorySource::Prometheus { url: url.clone(), metric: RESIDENT_MEMORY_METRIC.into() };
        assert_eq!(memory::sample(&http, &source, Duration::from_secs(2)).await, Ok(150));
        server.abort();
    }

    #[test]
    fn memory_urls_take_an_optional_replica_name() {
        let u = MemoryUrl::parse("http://127.0.0.1:1/metrics").unwrap();
        assert_eq!((u.replica, u.url.as_str()), (None, "http://127.0.0.1:1/metrics"));
        let u = MemoryUrl::parse("a=http://127.0.0.1:1/metrics?x=1").unwrap();
        assert_eq!(u.replica.as_deref(), Some("a"));
        assert_eq!(u.url.query(), Some("x=1"));
        assert!(MemoryUrl::parse("all=http://h/metrics").unwrap_err().contains("reserved"));
        assert!(MemoryUrl::parse("ftp://h/metrics").unwrap_err().contains("http"));
    }
}
