//! Distributed mode of the reference target (`--redis URL --instance NAME`): session metadata in
//! Redis (`mcp:session:<id>`, TTL refreshed on use) through rmcp's [`SessionStore`], so any
//! instance can restore and serve any session; notification fan-out over Redis pub/sub (a
//! per-session channel `mcp:stream:<id>`, a broadcast channel and a control channel that
//! propagates DELETEs). Redis outages are survived: local sessions keep working, `redis_up`
//! drops to 0, and both the command connection and the subscription reconnect by themselves.

// Fan-out sends `notifications/message`, deprecated by SEP-2577 but what the 2025 revisions and
// the probes use (see server.rs).
#![allow(deprecated)]

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rmcp::{
    Peer, RoleServer,
    model::{LoggingLevel, LoggingMessageNotificationParam},
    transport::streamable_http_server::session::{SessionManager, SessionState, SessionStore, SessionStoreError},
};
use serde::{Deserialize, Serialize};

use super::{KnobsHandle, Shared};

pub const SESSION_KEY_PREFIX: &str = "mcp:session:";
pub const STREAM_CHANNEL_PREFIX: &str = "mcp:stream:";
pub const BROADCAST_CHANNEL: &str = "mcp:broadcast";
pub const CONTROL_CHANNEL: &str = "mcp:control";
const LOGGER: &str = "mcp-canary-target";
/// Timeout of one Redis connect or command: an unreachable Redis never stalls a request long.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
const PING_INTERVAL: Duration = Duration::from_secs(1);
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// Where a triggered notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The GET stream of one session, wherever it is held.
    Session(String),
    /// Every session on every instance.
    Broadcast,
}

impl Route {
    fn channel(&self) -> String {
        match self {
            Route::Session(id) => format!("{STREAM_CHANNEL_PREFIX}{id}"),
            Route::Broadcast => BROADCAST_CHANNEL.to_string(),
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Route::Session(_) => "session",
            Route::Broadcast => "broadcast",
        }
    }
}

/// A pub/sub message between instances.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Envelope {
    Notify { origin: String, nonce: String, sent_at_ms: u64 },
    Closed { origin: String, session: String },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis: timed out")]
    Timeout,
}

/// The Redis side of one instance: a reconnecting command connection and health flags.
pub struct RedisLink {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    commands_up: AtomicBool,
    subscribed: AtomicBool,
    ttl_secs: u64,
}

impl RedisLink {
    pub fn new(url: &str, ttl: Duration) -> Result<Self, DistError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: tokio::sync::Mutex::new(None),
            commands_up: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            ttl_secs: ttl.as_secs().max(1),
        })
    }

    /// Commands answer and the subscription is live.
    pub fn is_up(&self) -> bool {
        self.commands_up.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }

    /// The shared connection; the first successful connect is kept and reconnects by itself.
    async fn conn(&self) -> Result<ConnectionManager, DistError> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(RECONNECT_DELAY);
        let conn = tokio::time::timeout(REDIS_TIMEOUT * 2, self.client.get_connection_manager_with_config(config))
            .await
            .map_err(|_| DistError::Timeout)??;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, DistError> {
        let mut conn = self.conn().await?;
        let result =
            tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async(&mut conn)).await.map_err(|_| DistError::Timeout);
        let result = match result {
            Ok(inner) => inner.map_err(DistError::from),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.commands_up.store(false, Ordering::Relaxed);
        }
        result
    }

    fn key(id: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{id}")
    }

    /// Refresh the TTL of a session key.
    pub async fn touch(&self, id: &str) -> Result<(), DistError> {
        self.query::<i64>(redis::cmd("EXPIRE").arg(Self::key(id)).arg(self.ttl_secs)).await.map(|_| ())
    }

    async fn publish(&self, channel: &str, envelope: &Envelope) -> Result<(), DistError> {
        let payload = serde_json::to_string(envelope).unwrap_or_default();
        self.query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload)).await.map(|_| ())
    }

    async fn ping(&self) {
        let ok = self.query::<String>(&redis::cmd("PING")).await.is_ok();
        let was = self.commands_up.swap(ok, Ordering::Relaxed);
        if was != ok {
            tracing::info!(up = ok, "Redis command connection changed state");
        }
    }
}

/// rmcp's external session store on Redis; a no-op while the `local_only` knob is set.
pub struct RedisSessionStore {
    pub link: Arc<RedisLink>,
    pub knobs: KnobsHandle,
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        if self.knobs.get().local_only {
            return Ok(None);
        }
        let cmd = redis::cmd("GETEX").arg(RedisLink::key(session_id)).arg("EX").arg(self.link.ttl_secs).clone();
        let value: Option<String> = self.link.query(&cmd).await?;
        Ok(value.map(|v| serde_json::from_str(&v)).transpose()?)
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        if self.knobs.get().local_only {
            return Ok(());
        }
        let json = serde_json::to_string(state)?;
        let cmd = redis::cmd("SET").arg(RedisLink::key(session_id)).arg(json).arg("EX").arg(self.link.ttl_secs).clone();
        self.link.query::<()>(&cmd).await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        if self.knobs.get().local_only {
            return Ok(());
        }
        self.link.query::<i64>(redis::cmd("DEL").arg(RedisLink::key(session_id))).await?;
        Ok(())
    }
}

impl Shared {
    fn redis_active(&self) -> Option<&Arc<RedisLink>> {
        self.redis.as_ref().filter(|_| !self.knobs.get().local_only)
    }

    /// Remember the peer of an initialised (or restored) session for notification delivery.
    pub(crate) fn register_peer(&self, session: String, peer: Peer<RoleServer>) {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).insert(session, peer);
    }

    /// The session opened a GET stream here.
    pub(crate) fn stream_opened(&self, session: String) {
        self.streamed.lock().unwrap_or_else(|e| e.into_inner()).insert(session);
    }

    /// Refresh the session's TTL in Redis, in the background.
    pub(crate) fn touch_session(self: &Arc<Self>, id: &str) {
        if self.redis_active().is_none() {
            return;
        }
        let (shared, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            if let Some(link) = shared.redis_active()
                && let Err(error) = link.touch(&id).await
            {
                tracing::debug!(error = %error, "Session TTL not refreshed");
            }
        });
    }

    /// A DELETE ended the session here: a clean end; tell the other instances.
    pub(crate) async fn session_deleted(&self, id: &str) {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned());
        if let Some(link) = self.redis_active() {
            let envelope = Envelope::Closed { origin: self.instance.clone(), session: id.to_owned() };
            if let Err(error) = link.publish(CONTROL_CHANNEL, &envelope).await {
                tracing::debug!(error = %error, "Session close not published");
            }
        }
    }

    /// Trigger a `notifications/message` on `route`: published over Redis (returns true) or, without
    /// Redis, delivered to this instance's sessions (returns false).
    pub(crate) async fn fan_out(self: &Arc<Self>, route: Route, nonce: &str) -> Result<bool, DistError> {
        let envelope = Envelope::Notify {
            origin: self.instance.clone(),
            nonce: nonce.to_owned(),
            sent_at_ms: crate::clock::unix_millis(),
        };
        match self.redis_active() {
            Some(link) => {
                link.publish(&route.channel(), &envelope).await?;
                Ok(true)
            }
            None => {
                self.deliver(&route, envelope);
                Ok(false)
            }
        }
    }

    /// Send a notify envelope to the local peers `route` selects that stream here.
    fn deliver(self: &Arc<Self>, route: &Route, envelope: Envelope) {
        let Envelope::Notify { origin, nonce, sent_at_ms } = envelope else { return };
        let peers: Vec<Peer<RoleServer>> = {
            let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            let streamed = self.streamed.lock().unwrap_or_else(|e| e.into_inner());
            match route {
                Route::Session(id) => peers.get(id).filter(|_| streamed.contains(id)).cloned().into_iter().collect(),
                Route::Broadcast => {
                    peers.iter().filter(|(id, _)| streamed.contains(*id)).map(|(_, peer)| peer.clone()).collect()
                }
            }
        };
        let data = serde_json::json!({
            "nonce": nonce,
            "sent_at_ms": sent_at_ms,
            "instance": origin,
            "delivered_by": self.instance,
            "route": route.as_str(),
        });
        for peer in peers.into_iter().filter(|p| !p.is_transport_closed()) {
            let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, data.clone()).with_logger(LOGGER);
            tokio::spawn(async move {
                if let Err(error) = peer.notify_logging_message(param).await {
                    tracing::debug!(error = %error, "Fan-out notification not sent");
                }
            });
        }
    }

    /// Handle one pub/sub message.
    async fn on_pubsub(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let knobs = self.knobs.get();
        if knobs.local_only {
            return;
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
            tracing::debug!(channel, "Unparsable pub/sub message ignored");
            return;
        };
        match envelope {
            Envelope::Closed { origin, session } => {
                if origin == self.instance {
                    return;
                }
                self.deleted.lock().unwrap_or_else(|e| e.into_inner()).insert(session.clone());
                if self.sessions.has_session(&session.clone().into()).await.unwrap_or(false) {
                    let _ = self.sessions.close_session(&session.into()).await;
                }
            }
            notify @ Envelope::Notify { .. } => {
                if knobs.pubsub_drop_rate > 0.0 && rand::random::<f64>() < knobs.pubsub_drop_rate {
                    self.metrics.count_pubsub(false);
                    return;
                }
                self.metrics.count_pubsub(true);
                let route = match channel.strip_prefix(STREAM_CHANNEL_PREFIX) {
                    Some(id) => Route::Session(id.to_owned()),
                    None => Route::Broadcast,
                };
                self.deliver(&route, notify);
            }
        }
    }

    /// Forget peers of sessions that ended; leak memory for those that ended without DELETE.
    async fn sweep(&self) {
        let live: HashSet<String> = self.sessions.sessions.read().await.keys().map(|id| id.to_string()).collect();
        let gone: Vec<String> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            let gone = peers.keys().filter(|id| !live.contains(*id)).cloned().collect::<Vec<_>>();
            peers.retain(|id, _| live.contains(id));
            gone
        };
        self.streamed.lock().unwrap_or_else(|e| e.into_inner()).retain(|id| live.contains(id));
        if gone.is_empty() {
            return;
        }
        let leak = self.knobs.get().leak_per_unclean_session_bytes as usize;
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        let mut leaked = self.leaked.lock().unwrap_or_else(|e| e.into_inner());
        for id in gone {
            if deleted.remove(&id) {
                continue;
            }
            self.metrics.count_unclean_session();
            if leak > 0 {
                // Touch every page so the leak shows in RSS.
                leaked.push(vec![0xA5u8; leak]);
            }
        }
        // Ids of sessions deleted elsewhere but never held here would pile up: keep it bounded.
        if deleted.len() > 100_000 {
            deleted.clear();
        }
    }

    /// Bytes held by the `leak_per_unclean_session_bytes` knob.
    pub(crate) fn leaked_bytes(&self) -> u64 {
        self.leaked.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|v| v.len() as u64).sum()
    }
}

/// Background tasks of distributed mode: the pub/sub subscriber, the Redis health ping and the
/// session sweeper; all stop on `shutdown`.
pub(crate) fn spawn_tasks(shared: Arc<Shared>, shutdown: tokio_util::sync::CancellationToken) {
    let sweeper = shared.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => sweeper.sweep().await,
                _ = stop.cancelled() => return,
            }
        }
    });
    let Some(link) = shared.redis.clone() else { return };
    let pinger = link.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PING_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => pinger.ping().await,
                _ = stop.cancelled() => return,
            }
        }
    });
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            subscribe_once(&shared, &link, &shutdown).await;
            if link.subscribed.swap(false, Ordering::Relaxed) {
                tracing::warn!("Redis subscription lost; reconnecting");
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONNECT_DELAY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    });
}

/// One subscription: connect, subscribe, dispatch until the connection ends.
async fn subscribe_once(shared: &Arc<Shared>, link: &RedisLink, shutdown: &tokio_util::sync::CancellationToken) {
    let connect = async {
        let mut pubsub = link.client.get_async_pubsub().await?;
        pubsub.psubscribe(format!("{STREAM_CHANNEL_PREFIX}*")).await?;
        pubsub.subscribe(&[BROADCAST_CHANNEL, CONTROL_CHANNEL]).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = match tokio::time::timeout(REDIS_TIMEOUT * 2, connect).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(error)) => {
            tracing::debug!(error = %error, "Redis subscription failed");
            return;
        }
        Err(_) => return,
    };
    link.subscribed.store(true, Ordering::Relaxed);
    tracing::info!("Redis subscription established");
    let mut messages = pubsub.into_on_message();
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => shared.on_pubsub(message.get_channel_name(), message.get_payload_bytes()).await,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_channels() {
        assert_eq!(Route::Session("abc".into()).channel(), "mcp:stream:abc");
        assert_eq!(Route::Broadcast.channel(), "mcp:broadcast");
    }

    #[test]
    fn envelopes_round_trip() {
        let env = Envelope::Notify { origin: "a".into(), nonce: "n".into(), sent_at_ms: 5 };
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains("\"kind\":\"notify\""), "{json}");
        assert!(matches!(serde_json::from_str(&json).unwrap(), Envelope::Notify { sent_at_ms: 5, .. }));
    }
}
