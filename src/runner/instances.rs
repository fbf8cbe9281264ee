//! Checks of a balanced target's replicas (`instances` in config), run after the balancer's probe
//! script: session affinity through the balancer and cross-instance notification delivery.
//! Both need sessions, so they speak a 2025 session revision whatever the target negotiates.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::canary::substitute_nonce;
use crate::config::{InstancesSpec, NotificationSpec, TargetConfig};
use crate::mcp::{ClientConfig, LogLevel, McpClient, McpError, ProtocolPreference};

/// Notifications a delivery receiver keeps per cycle (other probes' broadcasts also arrive).
const RECEIVED_CAP: usize = 10_000;
/// Time for freshly opened GET streams to be registered by the server before the first trigger.
const STREAM_SETTLE: Duration = Duration::from_millis(200);

/// `route` label of a delivery: did the stream live on the instance the trigger went through?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    SameInstance,
    CrossInstance,
}

impl Route {
    pub const ALL: [Route; 2] = [Route::SameInstance, Route::CrossInstance];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::SameInstance => "same_instance",
            Route::CrossInstance => "cross_instance",
        }
    }
}

/// One request of the affinity check, by the replica that served it.
#[derive(Debug, Clone)]
pub struct AffinityRequest {
    /// Configured replica name, or `unknown`.
    pub replica: String,
    /// `None` on success; else the `error_type` label (`session_lost` for a live session the
    /// serving replica did not know).
    pub error_type: Option<&'static str>,
    pub detail: String,
}

/// The affinity check: one session through the balancer, several sequential requests.
#[derive(Debug, Clone, Default)]
pub struct AffinityOutcome {
    pub requests: Vec<AffinityRequest>,
}

impl AffinityOutcome {
    /// Every request (the handshake included) succeeded.
    pub fn passed(&self) -> bool {
        !self.requests.is_empty() && self.requests.iter().all(|r| r.error_type.is_none())
    }
}

/// One expected delivery of one trigger to one instance's stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub sender: String,
    pub receiver: String,
    /// Trigger start to arrival (monotonic, one process); `None`: not received in time.
    pub latency: Option<Duration>,
}

impl Delivery {
    pub fn route(&self) -> Route {
        if self.sender == self.receiver { Route::SameInstance } else { Route::CrossInstance }
    }
}

/// A trigger call, by the replica it went through.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub replica: String,
    /// `None` on success, else the `error_type` label.
    pub error_type: Option<&'static str>,
}

/// The cross-instance delivery check of one cycle.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOutcome {
    pub triggers: Vec<Trigger>,
    pub deliveries: Vec<Delivery>,
    /// Replicas whose receiving session or stream could not be opened.
    pub receivers_failed: Vec<String>,
}

/// What the replica checks of one cycle observed.
#[derive(Debug, Clone, Default)]
pub struct InstancesOutcome {
    /// `None`: off (affinity_requests = 0).
    pub affinity: Option<AffinityOutcome>,
    /// `None`: off (delivery_broadcasts = 0 or no notification trigger).
    pub delivery: Option<DeliveryOutcome>,
}

/// State of the replica checks across cycles.
pub struct InstanceChecks {
    target: Arc<TargetConfig>,
    http: reqwest::Client,
    /// Index of the replica the next trigger goes through (rotates every trigger).
    next_sender: usize,
}

/// A session revision: the pinned one when the target pins one, else the newest.
fn session_protocol(target: &TargetConfig) -> ProtocolPreference {
    match &target.protocol {
        ProtocolPreference::Pinned(v) if crate::mcp::SESSION_PROTOCOLS.contains(&v.as_str()) => {
            ProtocolPreference::Pinned(v.clone())
        }
        _ => ProtocolPreference::Pinned(crate::mcp::SESSION_PROTOCOLS[0].to_string()),
    }
}

/// Failures that come without any HTTP response.
fn no_answer(e: &McpError) -> bool {
    use crate::mcp::ErrorType::*;
    matches!(e.error_type(), Connect | Timeout | Tls | Reset | Cancelled)
}

fn error_label(e: &McpError) -> &'static str {
    match e {
        McpError::SessionExpired { .. } => "session_lost",
        e => e.error_type().as_str(),
    }
}

impl InstanceChecks {
    pub fn new(target: Arc<TargetConfig>, http: reqwest::Client) -> Self {
        Self { target, http, next_sender: 0 }
    }

    fn spec(&self) -> Option<&InstancesSpec> {
        self.target.instances.as_ref()
    }

    fn client(&self, url: &Url) -> McpClient {
        let t = &self.target;
        let client = McpClient::new(
            ClientConfig {
                url: url.clone(),
                protocol: session_protocol(t),
                log_level: t.notification.as_ref().and_then(|n| LogLevel::to_receive(&n.method)),
                ..t.client_config()
            },
            self.http.clone(),
        );
        if let Some(spec) = self.spec() {
            client.capture_response_headers(vec![spec.header.clone()]);
        }
        client
    }

    /// The replica named by the latest response's served-by header.
    fn served_by(&self, client: &McpClient) -> String {
        let Some(spec) = self.spec() else { return crate::config::UNKNOWN_REPLICA.into() };
        let headers = client.last_response_headers();
        spec.replica_label(headers.get(&spec.header).and_then(|v| v.to_str().ok())).to_string()
    }

    /// Run the checks the config turns on.
    pub async fn run(&mut self) -> InstancesOutcome {
        let Some(spec) = self.spec().cloned() else { return InstancesOutcome::default() };
        let affinity =
            if spec.affinity_requests > 0 { Some(self.affinity(spec.affinity_requests).await) } else { None };
        let delivery = match &self.target.notification {
            Some(n) if spec.delivery_broadcasts > 0 => Some(self.delivery(&spec, &n.clone()).await),
            _ => None,
        };
        InstancesOutcome { affinity, delivery }
    }

    /// One session through the balancer, `n` sequential pings on it; the session is never closed
    /// in between, so "not found" means a replica did not know a live session.
    async fn affinity(&self, n: u32) -> AffinityOutcome {
        let client = self.client(&self.target.url);
        let mut out = AffinityOutcome::default();
        let mut push = |client: &McpClient, result: Result<(), McpError>| {
            let (error_type, detail) = match &result {
                Ok(()) => (None, String::new()),
                Err(e) => (Some(error_label(e)), e.to_string()),
            };
            // A request that got no answer was served by no replica (the captured header would be
            // an earlier response's).
            let answered = result.as_ref().err().is_none_or(|e| !no_answer(e));
            let replica = if answered { self.served_by(client) } else { crate::config::UNKNOWN_REPLICA.into() };
            out.requests.push(AffinityRequest { replica, error_type, detail });
        };
        // The handshake is two requests; `notifications/initialized` may already land elsewhere.
        let connected = client.connect().await;
        let ok = connected.is_ok();
        push(&client, connected.map(|_| ()));
        if ok {
            for _ in 0..n {
                let r = client.ping().await;
                push(&client, r);
            }
        }
        let _ = client.close().await;
        out
    }

    /// A session with its GET stream on every replica directly; each trigger goes through the
    /// next replica in turn and must reach every stream.
    async fn delivery(&mut self, spec: &InstancesSpec, n: &NotificationSpec) -> DeliveryOutcome {
        let mut out = DeliveryOutcome::default();
        let mut receivers = Vec::new();
        let opened = futures::future::join_all(spec.replicas.iter().map(|r| self.open_receiver(&r.url, n))).await;
        for (replica, opened) in spec.replicas.iter().zip(opened) {
            match opened {
                Some(rx) => receivers.push((replica.name.clone(), rx)),
                None => out.receivers_failed.push(replica.name.clone()),
            }
        }
        if receivers.is_empty() {
            return out;
        }
        tokio::time::sleep(STREAM_SETTLE).await;
        let mut expected = Vec::new();
        for _ in 0..spec.delivery_broadcasts {
            let (sender, receiver) = &receivers[self.next_sender % receivers.len()];
            self.next_sender = self.next_sender.wrapping_add(1);
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let sent = Instant::now();
            let called = receiver.client.call_tool(&n.tool, substitute_nonce(&n.arguments, &nonce), None).await;
            let error_type = match called {
                Ok(r) if r.is_error => Some(crate::mcp::ErrorType::ToolError.as_str()),
                Ok(_) => None,
                Err(e) => Some(error_label(&e)),
            };
            out.triggers.push(Trigger { replica: sender.clone(), error_type });
            if error_type.is_none() {
                expected.push((sender.clone(), nonce, sent));
            }
        }
        let deadline = tokio::time::Instant::now() + n.timeout;
        let all_in =
            || expected.iter().all(|(_, nonce, _)| receivers.iter().all(|(_, rx)| rx.arrival(nonce).is_some()));
        while !all_in() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (sender, nonce, sent) in &expected {
            for (name, rx) in &receivers {
                let latency = rx.arrival(nonce).map(|at| at.saturating_duration_since(*sent));
                out.deliveries.push(Delivery { sender: sender.clone(), receiver: name.clone(), latency });
            }
        }
        for (_, rx) in receivers {
            rx.close().await;
        }
        out
    }

    async fn open_receiver(&self, url: &Url, n: &NotificationSpec) -> Option<Receiver> {
        let client = self.client(url);
        if let Err(e) = client.connect().await {
            tracing::debug!(target_name = %self.target.name, error = %e, "Delivery receiver not connected");
            return None;
        }
        match client.open_stream().await {
            Ok(true) => {}
            other => {
                tracing::debug!(target_name = %self.target.name, result = ?other, "Delivery stream not opened");
                let _ = client.close().await;
                return None;
            }
        }
        let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let mut notifications = client.notifications();
        let method = n.method.clone();
        let sink = Arc::clone(&seen);
        let collector = tokio::spawn(async move {
            while let Ok(note) = notifications.recv().await {
                if note.method != method {
                    continue;
                }
                let mut seen = sink.lock().unwrap_or_else(|e| e.into_inner());
                if seen.len() < RECEIVED_CAP {
                    seen.push((note.params.to_string(), note.received_at));
                }
            }
        });
        Some(Receiver { client, seen, collector })
    }
}

/// One replica's receiving session: its client and the notifications its stream delivered.
struct Receiver {
    client: McpClient,
    /// (params as JSON text, arrival) of notifications of the expected method.
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    collector: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// When the first notification carrying `nonce` arrived.
    fn arrival(&self, nonce: &str) -> Option<Instant> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().find(|(params, _)| params.contains(nonce)).map(|(_, at)| *at)
    }

    async fn close(self) {
        let _ = self.client.close().await;
        self.collector.abort();
    }
}

/// Deliveries by route: (expected, received).
pub fn tally(deliveries: &[Delivery]) -> std::collections::HashMap<Route, (u64, u64)> {
    let mut out = std::collections::HashMap::new();
    for d in deliveries {
        let e = out.entry(d.route()).or_insert((0, 0));
        e.0 += 1;
        e.1 += u64::from(d.latency.is_some());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(sender: &str, receiver: &str, got: bool) -> Delivery {
        Delivery { sender: sender.into(), receiver: receiver.into(), latency: got.then_some(Duration::from_millis(5)) }
    }

    #[test]
    fn routes_follow_sender_and_receiver() {
        let t = tally(&[d("a", "a", true), d("a", "b", true), d("a", "c", false)]);
        assert_eq!(t[&Route::SameInstance], (1, 1));
        assert_eq!(t[&Route::CrossInstance], (2, 1));
    }

    #[test]
    fn affinity_passes_only_when_every_request_did() {
        let ok = AffinityRequest { replica: "a".into(), error_type: None, detail: String::new() };
        let lost = AffinityRequest { replica: "b".into(), error_type: Some("session_lost"), detail: String::new() };
        assert!(AffinityOutcome { requests: vec![ok.clone()] }.passed());
        assert!(!AffinityOutcome { requests: vec![ok, lost] }.passed());
        assert!(!AffinityOutcome::default().passed());
    }
}
