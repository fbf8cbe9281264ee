//! Parameters of the chaos profile.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MixSpec;

/// Parameters of the chaos profile (`run chaos` flags, `[profiles.chaos]` keys).
#[derive(clap::Args, Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosSpec {
    /// A fault, run one at a time in the order given (repeatable): proxy-latency[:DELAY[,JITTER]],
    /// proxy-reset, proxy-blackhole, proxy-bandwidth:BYTES_PER_S, kill, redis-pause[:DURATION],
    /// expire-sessions, restart (the last two through the reference target's admin endpoints).
    #[arg(long = "scenario", value_name = "KIND[:ARGS]", required = true)]
    pub scenarios: Vec<String>,
    /// Fault window of each scenario (a Redis pause lasts its own DURATION).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    #[serde(with = "humantime_serde")]
    pub fault: Duration,
    /// Recovery window after each fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "humantime_serde")]
    pub recovery: Duration,
    /// Baseline before the first fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
    /// Sessions of the steady population.
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Requests per minute per session.
    #[arg(long, default_value_t = 60.0)]
    pub rpm: f64,
    /// The load mix the population runs, with its tools, resource and prompt (`--mix`,
    /// `--fast-tool`, `--resource`, ...; its keys sit beside the others in `[profiles.chaos]`).
    #[command(flatten)]
    #[serde(flatten)]
    pub workload: MixSpec,
    /// Kill the target: a command, split into argv and run without a shell.
    #[arg(long, value_name = "COMMAND")]
    pub kill_command: Option<String>,
    /// Kill the target: SIGKILL this local process (one kill scenario: a restarted target has
    /// another PID; use --kill-pid-file for more).
    #[arg(long, value_name = "PID", conflicts_with = "kill_command")]
    pub kill_pid: Option<u32>,
    /// Kill the target: SIGKILL the PID this file holds, read again at every kill (the start
    /// command writes the new process's PID there, as a pidfile-managed daemon does).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["kill_command", "kill_pid"])]
    pub kill_pid_file: Option<std::path::PathBuf>,
    /// Start the target again at the end of a kill's fault window (argv, no shell; it must exit).
    #[arg(long, value_name = "COMMAND")]
    pub start_command: Option<String>,
    /// Bound on every kill/start command, Redis command and admin call.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// The target's Redis (redis-pause), e.g. redis://127.0.0.1:6379/0. Not a config key: the
    /// daemon pauses the target's own `redis`, with its password.
    #[arg(long, value_name = "URL")]
    #[serde(skip)]
    pub redis: Option<String>,
    /// Tool that triggers a broadcast; called with the JSON of --notify-args plus `nonce`.
    #[arg(long, default_value = "notify")]
    pub notify_tool: String,
    #[arg(long, value_name = "JSON", default_value = r#"{"route":"broadcast"}"#)]
    pub notify_args: String,
    /// Method the broadcasts arrive as; their params.data carries `nonce`.
    #[arg(long, default_value = "notifications/message")]
    pub notify_method: String,
    /// Interval between broadcasts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    #[serde(with = "humantime_serde")]
    pub notify_every: Duration,
    /// No broadcasts and no streams (a server without notifications).
    #[arg(long)]
    pub no_notify: bool,
    /// An operation slower than this (from its intended start) counts as degraded.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    #[serde(with = "humantime_serde")]
    pub slow_after: Duration,
    /// Consecutive good operations after a fault that make a recovery.
    #[arg(long, default_value_t = 5)]
    pub sustain: u32,
    /// Wait for late notifications after the last recovery window.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
}

impl Default for ChaosSpec {
    fn default() -> Self {
        Self {
            scenarios: Vec::new(),
            fault: Duration::from_secs(5),
            recovery: Duration::from_secs(10),
            warmup: Duration::from_secs(3),
            clients: 10,
            rpm: 60.0,
            workload: MixSpec::default(),
            kill_command: None,
            kill_pid: None,
            kill_pid_file: None,
            start_command: None,
            command_timeout: Duration::from_secs(10),
            redis: None,
            notify_tool: "notify".into(),
            notify_args: r#"{"route":"broadcast"}"#.into(),
            notify_method: "notifications/message".into(),
            notify_every: Duration::from_secs(1),
            no_notify: false,
            slow_after: Duration::from_secs(1),
            sustain: 5,
            settle: Duration::from_secs(2),
        }
    }
}

impl ChaosSpec {
    /// Whether a scenario of this kind is named (by its spec's prefix, before parsing).
    pub fn names_kind(&self, kind: &str) -> bool {
        self.scenarios.iter().any(|s| s.split(':').next().is_some_and(|k| k.trim() == kind))
    }
}
