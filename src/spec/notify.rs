//! Parameters of the notification-stress profile.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who calls the trigger tool.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TriggerScope {
    /// One trigger session calls it once per broadcast; every session expects the notification
    /// on its server-to-client stream.
    #[default]
    Broadcast,
    /// Every session calls it itself once per broadcast round and expects its own notification,
    /// on the POST response's stream or on its own stream.
    Session,
}

impl TriggerScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerScope::Broadcast => "broadcast",
            TriggerScope::Session => "session",
        }
    }
}

/// Parameters of the notify profile (`run notify` flags, `[profiles.notify]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifySpec {
    /// Sessions holding a server-to-client stream.
    #[arg(long, default_value_t = 1000)]
    pub sessions: u32,
    /// Batches of broadcasts.
    #[arg(long, default_value_t = 10)]
    pub batches: u32,
    /// Broadcasts per batch.
    #[arg(long, default_value_t = 20)]
    pub broadcasts: u32,
    /// From the start of one batch to the start of the next.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    #[serde(with = "humantime_serde")]
    pub batch_interval: Duration,
    /// Tool that sends `{nonce}` to every session (the reference target's `broadcast`).
    #[arg(long, default_value = "broadcast")]
    pub trigger_tool: String,
    /// Arguments of the trigger tool; "{nonce}" in any string becomes the broadcast's nonce
    /// (e.g. '{"nonce":"{nonce}","route":"broadcast"}' for the reference target's `notify`,
    /// which reaches every instance of a distributed target).
    #[arg(long, value_name = "JSON", default_value = r#"{"nonce":"{nonce}"}"#)]
    pub trigger_args: String,
    /// Who calls the trigger tool: `broadcast`, one trigger session per broadcast, every session
    /// expecting it on its server-to-client stream (GET stream: protocol 2025-11-25 by default);
    /// `session`, every session calls it itself with its own nonce per round and expects its own
    /// notification on the POST response's stream or its own stream (protocol auto by default).
    #[arg(long, value_enum, default_value_t = TriggerScope::Broadcast)]
    pub trigger_scope: TriggerScope,
    /// Method the broadcasts arrive as; one matches when the nonce appears in any string of its
    /// params (the nonce is also sent as the call's progress token). A `sent_at_ms` in
    /// params.data (the reference target's) times broadcasts from the target's send.
    #[arg(long, default_value = "notifications/message")]
    pub method: String,
    /// How long sessions may take to connect and open their streams.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Sessions connecting (handshake and stream) at once during the ramp: bounds the burst of
    /// connections the target accepts and the client's memory for handshakes in flight.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: u32,
    /// How long to wait for late deliveries after the last broadcast.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
}

impl Default for NotifySpec {
    fn default() -> Self {
        Self {
            sessions: 1000,
            batches: 10,
            broadcasts: 20,
            batch_interval: Duration::from_secs(1),
            trigger_tool: "broadcast".into(),
            trigger_args: r#"{"nonce":"{nonce}"}"#.into(),
            trigger_scope: TriggerScope::Broadcast,
            method: "notifications/message".into(),
            connect_timeout: Duration::from_secs(30),
            connect_concurrency: 256,
            settle: Duration::from_secs(2),
        }
    }
}
