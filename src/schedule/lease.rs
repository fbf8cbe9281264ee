//! The lease that lets one of several replicas run the scheduled heavy profiles (`[coordination]`).
//! Every replica probes every target (its own view of the fleet), but a load test run twice is a
//! doubled load: the replica holding a key in Redis runs `[[profiles]]`, the others skip their
//! fires as `not_leader`. The holder renews the key every third of the lease; a holder that stops
//! (crash, partition) is replaced once the key expires, and it stops its own runs before that
//! moment by its own clock, so two replicas never run profiles at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::CoordinationSpec;
use crate::telemetry::scheduled as events;

/// Take the key when it is free, renew it when it is ours; 1 when we hold it afterwards.
const ACQUIRE_OR_RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Give the key up if it is still ours (a clean stop hands over at once).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Whether this replica holds the lease now.
#[derive(Debug, Default)]
pub struct Leadership {
    term: Mutex<Option<CancellationToken>>,
}

impl Leadership {
    /// While this replica holds the lease: a token cancelled the moment it stops holding it (runs
    /// started under it stop with it). `None` when another replica holds it or Redis cannot say.
    pub fn term(&self) -> Option<CancellationToken> {
        self.lock().clone().filter(|t| !t.is_cancelled())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        self.term.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keep trying to hold the lease until `shutdown`, then release it.
pub fn spawn(spec: CoordinationSpec, shutdown: CancellationToken) -> (Arc<Leadership>, JoinHandle<()>) {
    let leadership = Arc::new(Leadership::default());
    let task = tokio::spawn(hold(spec, Arc::clone(&leadership), shutdown));
    (leadership, task)
}

async fn hold(spec: CoordinationSpec, leadership: Arc<Leadership>, shutdown: CancellationToken) {
    let every = spec.lease / 3;
    // One round trip may take at most this long: an answer later than that could arrive after
    // the key expired.
    let bound = every.min(Duration::from_secs(5));
    let client = crate::inspect::redis::redis_client(&spec.redis, spec.password.as_ref());
    let mut conn: Option<MultiplexedConnection> = None;
    // Until when the key is ours by our own clock (measured from before the renewal was sent).
    let mut valid_until: Option<Instant> = None;
    let script = redis::Script::new(ACQUIRE_OR_RENEW);
    events::leader(false);
    tracing::info!(redis = %spec.redis, key = %spec.lease_key, holder = %spec.holder, lease = ?spec.lease,
        "Scheduled profiles run on the replica holding the lease");
    loop {
        let sent = Instant::now();
        let held = tokio::time::timeout(bound, async {
            let c = match &conn {
                Some(c) => c.clone(),
                None => {
                    let client = client.clone().ok_or_else(|| "the redis URL was not accepted".to_string())?;
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(bound))
                        .set_response_timeout(Some(bound));
                    let c = client.get_multiplexed_async_connection_with_config(&config).await.map_err(scrub)?;
                    conn = Some(c.clone());
                    c
                }
            };
            let mut c = c;
            let held: i64 = script
                .key(&spec.lease_key)
                .arg(&spec.holder)
                .arg(spec.lease.as_millis() as u64)
                .invoke_async(&mut c)
                .await
                .map_err(scrub)?;
            Ok::<bool, String>(held == 1)
        })
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()));
        match held {
            Ok(true) => {
                valid_until = Some(sent + spec.lease);
                let mut term = leadership.lock();
                if term.as_ref().is_none_or(CancellationToken::is_cancelled) {
                    *term = Some(shutdown.child_token());
                    events::lease_acquired();
                    tracing::info!(holder = %spec.holder, "Lease acquired: this replica runs the scheduled profiles");
                }
            }
            Ok(false) => {
                valid_until = None;
                step_down(&leadership, "another replica holds the lease");
            }
            Err(e) => {
                conn = None;
                events::lease_error();
                tracing::warn!(error = %e, "Lease not renewed");
                // Still ours until the key would expire; give it up one renewal before that.
                if valid_until.is_none_or(|until| Instant::now() + every >= until) {
                    valid_until = None;
                    step_down(&leadership, "the lease could not be renewed in time");
                }
            }
        }
        events::leader(leadership.term().is_some());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(sent + every) => {}
        }
    }
    let held = leadership.lock().take().is_some();
    events::leader(false);
    if held && let (Some(conn), Some(_)) = (conn, valid_until) {
        let mut conn = conn;
        let released = tokio::time::timeout(
            bound,
            redis::Script::new(RELEASE).key(&spec.lease_key).arg(&spec.holder).invoke_async::<i64>(&mut conn),
        )
        .await;
        match released {
            Ok(Ok(1)) => tracing::info!("Lease released"),
            _ => tracing::warn!("Lease not released; another replica takes it when it expires"),
        }
    }
}

fn step_down(leadership: &Leadership, why: &str) {
    if let Some(term) = leadership.lock().take() {
        term.cancel();
        tracing::warn!(reason = why, "Lease lost: scheduled profile runs on this replica stop");
    }
}

/// A Redis error as text for the log: its kind and the server's detail, cut and with control
/// characters replaced (the URL, which could hold a password, is never part of it).
fn scrub(e: redis::RedisError) -> String {
    format!("{:?}: {}", e.kind(), crate::mcp::protocol::printable(e.detail().unwrap_or(""), 200))
}
