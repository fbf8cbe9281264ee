//! The Redis inspector: over ONE multiplexed, self-reconnecting connection (the `redis` crate's
//! `ConnectionManager`), sample PING latency, `INFO` (memory, clients, evictions, expirations,
//! pub/sub), `PUBSUB NUMPAT`, and per configured pattern the keys counted with `SCAN` within a
//! budget (never `KEYS`), the matching pub/sub channels and their `PUBSUB NUMSUB` subscribers.
//!
//! Every command runs under `redis_timeout` and the whole sample under `redis_interval`; a Redis
//! that refuses, times out or answers garbage yields `up = false` and a classified error.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError};
use tokio::time::Instant;

use super::Inspector;
use crate::config::RedisSpec;

/// Closed set of inspector error classes (the `error_type` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisErrorClass {
    /// TCP connect refused or the connection dropped.
    Connect,
    /// A command or the connect did not finish within `redis_timeout` (or the sample overran).
    Timeout,
    /// Wrong or missing password (`WRONGPASS`, `NOAUTH`, `NOPERM`).
    Auth,
    /// The answer was not what the command returns (garbage, wrong type, unparsable INFO).
    Protocol,
    /// Redis answered with an error reply (e.g. a renamed or disabled command).
    Server,
}

impl RedisErrorClass {
    pub const ALL: [RedisErrorClass; 5] = [Self::Connect, Self::Timeout, Self::Auth, Self::Protocol, Self::Server];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Auth => "auth",
            Self::Protocol => "protocol",
            Self::Server => "server",
        }
    }

    /// Classify a client-library error.
    pub fn of(e: &RedisError) -> Self {
        if e.kind() == ErrorKind::AuthenticationFailed || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM")) {
            Self::Auth
        } else if e.is_timeout() {
            Self::Timeout
        } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
            Self::Connect
        } else if e.code().is_some() {
            Self::Server
        } else {
            Self::Protocol
        }
    }
}

/// Fields of `INFO` the inspector exports; `None` when the server did not report one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisInfo {
    pub used_memory: Option<u64>,
    pub used_memory_peak: Option<u64>,
    pub mem_fragmentation_ratio: Option<f64>,
    /// 0: no limit.
    pub maxmemory: Option<u64>,
    pub maxmemory_policy: Option<String>,
    pub connected_clients: Option<u64>,
    /// Cumulative since the server started.
    pub evicted_keys: Option<u64>,
    /// Cumulative since the server started.
    pub expired_keys: Option<u64>,
    pub pubsub_channels: Option<u64>,
    pub pubsub_patterns: Option<u64>,
}

/// Parse the text of `INFO`. `None` when it is not INFO output at all (no `used_memory`).
pub fn parse_info(text: &str) -> Option<RedisInfo> {
    let mut info = RedisInfo::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let int = || value.parse::<u64>().ok();
        match key {
            "used_memory" => info.used_memory = int(),
            "used_memory_peak" => info.used_memory_peak = int(),
            "mem_fragmentation_ratio" => {
                info.mem_fragmentation_ratio = value.parse::<f64>().ok().filter(|v| v.is_finite())
            }
            "maxmemory" => info.maxmemory = int(),
            "maxmemory_policy" => info.maxmemory_policy = Some(value.to_string()),
            "connected_clients" => info.connected_clients = int(),
            "evicted_keys" => info.evicted_keys = int(),
            "expired_keys" => info.expired_keys = int(),
            "pubsub_channels" => info.pubsub_channels = int(),
            "pubsub_patterns" => info.pubsub_patterns = int(),
            _ => {}
        }
    }
    info.used_memory.is_some().then_some(info)
}

/// `maxmemory_policy` as a bounded label value: the policies Redis knows, else `other`.
pub fn policy_label(policy: &str) -> &'static str {
    match policy {
        "noeviction" => "noeviction",
        "allkeys-lru" => "allkeys-lru",
        "allkeys-lfu" => "allkeys-lfu",
        "allkeys-random" => "allkeys-random",
        "volatile-lru" => "volatile-lru",
        "volatile-lfu" => "volatile-lfu",
        "volatile-random" => "volatile-random",
        "volatile-ttl" => "volatile-ttl",
        _ => "other",
    }
}

/// What one pattern matched in one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternObservation {
    pub pattern: String,
    /// Keys matching the pattern among those `SCAN` examined.
    pub keys: u64,
    /// True when the scan completed (the count is exact), false when the budget cut it short.
    pub keys_exact: bool,
    /// Active pub/sub channels matching the pattern (`PUBSUB CHANNELS pattern`).
    pub channels: u64,
    /// `PUBSUB NUMSUB` summed over at most `redis_scan_budget` of those channels.
    pub subscribers: u64,
}

/// One sample of one Redis.
#[derive(Debug, Clone, Default)]
pub struct RedisObservation {
    /// PING answered PONG within the timeout.
    pub up: bool,
    pub ping: Option<Duration>,
    pub info: Option<RedisInfo>,
    /// Growth of the server's cumulative counters since the previous sample (0 on the first).
    pub evicted_keys_delta: Option<u64>,
    pub expired_keys_delta: Option<u64>,
    /// `PUBSUB NUMPAT`.
    pub pubsub_patterns: Option<u64>,
    pub patterns: Vec<PatternObservation>,
    /// Every failure of the sample, classified (at most one per command).
    pub errors: Vec<RedisErrorClass>,
    /// Description of the first failure, secrets removed (for the log only, never a label).
    pub detail: Option<String>,
}

/// Largest `COUNT` hint of one `SCAN` call.
const SCAN_CHUNK: u64 = 1000;
/// Most channels per `PUBSUB NUMSUB` call.
const NUMSUB_CHUNK: usize = 500;
/// Most keys per `EXISTS` call.
const EXISTS_CHUNK: usize = 500;

/// Samples one target's Redis.
pub struct RedisInspector {
    target: String,
    spec: RedisSpec,
    client: Option<Client>,
    conn: Option<ConnectionManager>,
    last_evicted: Option<u64>,
    last_expired: Option<u64>,
}

impl RedisInspector {
    pub fn new(target: &str, spec: RedisSpec) -> Self {
        let client = build_client(&spec);
        Self { target: target.to_string(), spec, client, conn: None, last_evicted: None, last_expired: None }
    }

    pub fn spec(&self) -> &RedisSpec {
        &self.spec
    }

    /// Remove the password from text that is about to be logged.
    fn scrub(&self, text: String) -> String {
        match &self.spec.password {
            Some(p) if !p.expose().is_empty() => text.replace(p.expose(), "<redacted>"),
            _ => text,
        }
    }

    async fn connection(&mut self, deadline: Instant) -> Result<ConnectionManager, (RedisErrorClass, String)> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let Some(client) = self.client.clone() else {
            return Err((RedisErrorClass::Protocol, "the redis URL was not accepted by the client".into()));
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.spec.timeout))
            .set_response_timeout(Some(self.spec.timeout))
            // One attempt per reconnect: retries would hide an auth failure behind a timeout,
            // and the next sample retries anyway (a new manager after a connect-class failure).
            .set_number_of_retries(0);
        let conn = bounded(self.spec.timeout, deadline, ConnectionManager::new_with_config(client, config)).await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    async fn run_sample(&mut self, obs: &mut RedisObservation) -> Result<(), (RedisErrorClass, String)> {
        let deadline = Instant::now() + self.spec.interval;
        let timeout = self.spec.timeout;
        let mut conn = self.connection(deadline).await?;

        let started = Instant::now();
        let pong: String = query(timeout, deadline, &mut conn, redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err((RedisErrorClass::Protocol, "PING was not answered with PONG".into()));
        }
        obs.ping = Some(started.elapsed());
        obs.up = true;

        // Failures past PING are recorded and the sample goes on: Redis is up.
        let soft = |obs: &mut RedisObservation, (class, detail): (RedisErrorClass, String)| {
            obs.errors.push(class);
            obs.detail.get_or_insert(detail);
        };

        match query::<String>(timeout, deadline, &mut conn, redis::cmd("INFO")).await {
            Ok(text) => match parse_info(&text) {
                Some(info) => {
                    obs.evicted_keys_delta = info.evicted_keys.map(|v| delta(&mut self.last_evicted, v));
                    obs.expired_keys_delta = info.expired_keys.map(|v| delta(&mut self.last_expired, v));
                    obs.info = Some(info);
                }
                None => soft(obs, (RedisErrorClass::Protocol, "INFO answer is not INFO output".into())),
            },
            Err(e) => soft(obs, e),
        }
        match query::<u64>(timeout, deadline, &mut conn, redis::cmd("PUBSUB").arg("NUMPAT").clone()).await {
            Ok(n) => obs.pubsub_patterns = Some(n),
            Err(e) => soft(obs, e),
        }
        for pattern in self.spec.key_patterns.clone() {
            match self.sample_pattern(&mut conn, &pattern, deadline).await {
                Ok(p) => obs.patterns.push(p),
                Err(e) => soft(obs, e),
            }
        }
        Ok(())
    }

    async fn sample_pattern(
        &self,
        conn: &mut ConnectionManager,
        pattern: &str,
        deadline: Instant,
    ) -> Result<PatternObservation, (RedisErrorClass, String)> {
        let timeout = self.spec.timeout;
        let budget = self.spec.scan_budget;
        let (mut cursor, mut examined, mut keys) = (0u64, 0u64, 0u64);
        let keys_exact = loop {
            let count = SCAN_CHUNK.min(budget - examined).max(1);
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
            let (next, batch): (u64, Vec<redis::Value>) = query(timeout, deadline, conn, cmd).await?;
            keys += batch.len() as u64;
            examined += count;
            cursor = next;
            if cursor == 0 {
                break true;
            }
            if examined >= budget {
                break false;
            }
        };
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("CHANNELS").arg(pattern);
        let channels: Vec<Vec<u8>> = query(timeout, deadline, conn, cmd).await?;
        let mut subscribers = 0u64;
        let bounded_channels = &channels[..channels.len().min(budget as usize)];
        for chunk in bounded_channels.chunks(NUMSUB_CHUNK) {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg("NUMSUB").arg(chunk);
            let pairs: Vec<(Vec<u8>, u64)> = query(timeout, deadline, conn, cmd).await?;
            subscribers += pairs.iter().map(|(_, n)| n).sum::<u64>();
        }
        Ok(PatternObservation {
            pattern: pattern.to_string(),
            keys,
            keys_exact,
            channels: channels.len() as u64,
            subscribers,
        })
    }
}

impl RedisInspector {
    /// How many of `keys` exist (`EXISTS` in chunks, each under `redis_timeout`): the orphaned
    /// session keys a run left behind, given the keys of the sessions it no longer holds.
    pub async fn existing_keys(&mut self, keys: &[String]) -> Result<u64, String> {
        let timeout = self.spec.timeout;
        let deadline = Instant::now() + timeout * (keys.len().div_ceil(EXISTS_CHUNK) as u32 + 1);
        let mut conn = self.connection(deadline).await.map_err(|(_, d)| self.scrub(d))?;
        let mut found = 0u64;
        for chunk in keys.chunks(EXISTS_CHUNK) {
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(chunk);
            found += query::<u64>(timeout, deadline, &mut conn, cmd).await.map_err(|(_, d)| self.scrub(d))?;
        }
        Ok(found)
    }
}

impl Inspector for RedisInspector {
    type Observation = RedisObservation;

    fn target(&self) -> &str {
        &self.target
    }

    fn interval(&self) -> Duration {
        self.spec.interval
    }

    async fn sample(&mut self) -> RedisObservation {
        let mut obs = RedisObservation::default();
        if let Err((class, detail)) = self.run_sample(&mut obs).await {
            obs.up = false;
            obs.errors.push(class);
            obs.detail = Some(self.scrub(detail));
            // Start over with a fresh connection next time unless Redis merely refused a command:
            // the manager reconnects by itself, but a dead manager must not be reused forever.
            if matches!(class, RedisErrorClass::Connect | RedisErrorClass::Timeout | RedisErrorClass::Auth) {
                self.conn = None;
            }
        }
        obs.detail = obs.detail.take().map(|d| self.scrub(d));
        obs
    }
}

/// The client for `spec`, with the password applied outside the URL.
fn build_client(spec: &RedisSpec) -> Option<Client> {
    redis_client(&spec.url, spec.password.as_ref())
}

/// A client for `url` (without a password in it), with `password` applied outside the URL so
/// it never appears where the URL is logged.
pub fn redis_client(url: &url::Url, password: Option<&crate::config::Secret>) -> Option<Client> {
    let mut info = url.as_str().into_connection_info().ok()?;
    if let Some(password) = password {
        let settings = info.redis_settings().clone().set_password(password.expose());
        info = info.set_redis_settings(settings);
    }
    Client::open(info).ok()
}

/// Growth of a cumulative server counter; a drop means the server restarted, so its whole new
/// value is growth.
fn delta(last: &mut Option<u64>, now: u64) -> u64 {
    let d = match *last {
        None => 0,
        Some(prev) if now >= prev => now - prev,
        Some(_) => now,
    };
    *last = Some(now);
    d
}

/// Await `fut` under the per-command timeout, cut short by the sample deadline.
async fn bounded<T>(
    timeout: Duration,
    deadline: Instant,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, (RedisErrorClass, String)> {
    let limit = timeout.min(deadline.saturating_duration_since(Instant::now()));
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((RedisErrorClass::of(&e), e.to_string())),
        Err(_) => Err((RedisErrorClass::Timeout, format!("no answer within {}", humantime::format_duration(limit)))),
    }
}

async fn query<T: FromRedisValue>(
    timeout: Duration,
    deadline: Instant,
    conn: &mut ConnectionManager,
    cmd: redis::Cmd,
) -> Result<T, (RedisErrorClass, String)> {
    bounded(timeout, deadline, cmd.query_async::<T>(conn)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\n\r\n# Clients\r\nconnected_clients:3\r\n\r\n\
        # Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_peak:2097152\r\n\
        maxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\nmem_fragmentation_ratio:1.52\r\n\r\n\
        # Stats\r\nexpired_keys:12\r\nevicted_keys:4\r\npubsub_channels:2\r\npubsub_patterns:1\r\n";

    #[test]
    fn parses_the_fields_it_exports() {
        let info = parse_info(INFO).unwrap();
        assert_eq!(info.used_memory, Some(1_048_576));
        assert_eq!(info.used_memory_peak, Some(2_097_152));
        assert_eq!(info.mem_fragmentation_ratio, Some(1.52));
        assert_eq!(info.maxmemory, Some(0));
        assert_eq!(info.maxmemory_policy.as_deref(), Some("allkeys-lru"));
        assert_eq!(info.connected_clients, Some(3));
        assert_eq!((info.evicted_keys, info.expired_keys), (Some(4), Some(12)));
        assert_eq!((info.pubsub_channels, info.pubsub_patterns), (Some(2), Some(1)));
    }

    #[test]
    fn garbage_is_not_info() {
        assert_eq!(parse_info(""), None);
        assert_eq!(parse_info("+OK\r\n"), None);
        assert_eq!(parse_info("hello:world\nused_memory_human:1M"), None);
    }

    #[test]
    fn bad_values_are_dropped_not_guessed() {
        let info = parse_info("used_memory:12\nmem_fragmentation_ratio:nan\nconnected_clients:-1\n").unwrap();
        assert_eq!(info.used_memory, Some(12));
        assert_eq!(info.mem_fragmentation_ratio, None);
        assert_eq!(info.connected_clients, None);
    }

    #[test]
    fn policies_are_a_closed_set() {
        assert_eq!(policy_label("allkeys-lru"), "allkeys-lru");
        assert_eq!(policy_label("volatile-ttl"), "volatile-ttl");
        assert_eq!(policy_label("{injected}"), "other");
    }

    #[test]
    fn deltas_survive_a_server_restart() {
        let mut last = None;
        assert_eq!(delta(&mut last, 10), 0);
        assert_eq!(delta(&mut last, 15), 5);
        assert_eq!(delta(&mut last, 3), 3);
        assert_eq!(delta(&mut last, 3), 0);
    }

    #[test]
    fn error_classes_are_stable_label_values() {
        let names: Vec<_> = RedisErrorClass::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, ["connect", "timeout", "auth", "protocol", "server"]);
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(RedisErrorClass::of(&refused), RedisErrorClass::Connect);
        let timed_out = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(RedisErrorClass::of(&timed_out), RedisErrorClass::Timeout);
    }
}
