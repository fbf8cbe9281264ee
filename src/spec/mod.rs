//! Profile parameters: what the one-shot CLI (`run <kind>` flags) and the daemon's `[[profiles]]`
//! entries (TOML tables) ask of a heavy profile, before it is planned against a target. A leaf
//! below `config`: plain data, defaults and the registry of profile kinds; planning a spec into a
//! run belongs to the profiles themselves (`profile/`, `chaos/`), driven by `driver/`.

pub mod chaos;
pub mod load;
pub mod longevity;
pub mod matrix;
pub mod notify;

use std::time::Duration;

pub use chaos::ChaosSpec;
pub use load::{LoadSpec, MixSpec};
pub use longevity::LongevitySpec;
pub use matrix::MatrixSpec;
pub use notify::{NotifySpec, TriggerScope};

/// A parameter problem: `key` is the flag (`--key`) or TOML key (`profiles[i].load.key`) it is
/// about; `thresholds` and `abort_on_fail` sit beside the profile's table in the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ParamError {
    pub key: &'static str,
    pub message: String,
}

/// `Err` of a [`ParamError`] about `key`.
pub fn refuse<T>(key: &'static str, message: impl Into<String>) -> Result<T, ParamError> {
    Err(ParamError { key, message: message.into() })
}

/// Global caps a run must fit in; the names say where each cap is set (a flag or a config key).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub max_sessions: u32,
    /// Aggregate requests per second.
    pub max_rate: f64,
    pub sessions_name: &'static str,
    pub rate_name: &'static str,
    /// Files this process may open (the soft `RLIMIT_NOFILE`); every session holds at least one
    /// connection. `u64::MAX` where the limit is not checked.
    pub descriptors: u64,
}

/// Descriptors a run keeps for itself beside one per session: listeners, the trigger session,
/// kept connections, DNS, logs and reports.
pub const RESERVED_DESCRIPTORS: u64 = 256;

impl Caps {
    /// A population of `n` sessions (the parameter `key`): at least one, within the cap.
    pub fn check_sessions(&self, key: &'static str, n: u32) -> Result<(), ParamError> {
        if n == 0 {
            return refuse(key, "must be at least 1");
        }
        if n > self.max_sessions {
            return refuse(
                key,
                format!("{n} sessions exceed the cap of {} ({})", self.max_sessions, self.sessions_name),
            );
        }
        let needed = u64::from(n) + RESERVED_DESCRIPTORS;
        if needed > self.descriptors {
            return refuse(
                key,
                format!(
                    "{n} sessions need about {needed} file descriptors, but this process may open {} (the soft \
                     RLIMIT_NOFILE, already raised to the hard limit; raise it with ulimit -n or LimitNOFILE=)",
                    self.descriptors
                ),
            );
        }
        Ok(())
    }
}

/// Default of `server.probe_threads`: one thread carries a thousand targets at 15 s with a few
/// per cent of its time (docs/benchmarks.md).
pub const DEFAULT_PROBE_THREADS: usize = 1;

/// Default of `--max-sessions` and `heavy_profiles.max_sessions`.
pub const DEFAULT_MAX_SESSIONS: u32 = 10_000;
/// Default of `--max-rate` and `heavy_profiles.max_request_rate` (requests/s).
pub const DEFAULT_MAX_RATE: f64 = 5_000.0;

/// What a run is asked for besides its profile's parameters.
#[derive(Debug, Clone)]
pub struct RunOptions<'a> {
    /// The `profile` label (the kind for one-shot runs, the entry name in the daemon).
    pub profile: &'a str,
    /// The `target` label.
    pub target: &'a str,
    pub thresholds: &'a [String],
    pub abort_on_fail: bool,
    /// Per-request timeout (bounds the drain and sizes the default in-flight bound).
    pub timeout: Duration,
    /// Threshold evaluation and progress interval.
    pub tick: Duration,
    pub caps: Caps,
}

/// The registry of heavy profile kinds: the `profile` key of `[[profiles]]`, the `run`
/// subcommand and the `profile` label of one-shot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    Load,
    Notify,
    Matrix,
    Chaos,
    Longevity,
}

impl ProfileKind {
    /// Every kind, in the order documentation lists them.
    pub const ALL: [ProfileKind; 5] =
        [ProfileKind::Load, ProfileKind::Notify, ProfileKind::Matrix, ProfileKind::Chaos, ProfileKind::Longevity];

    /// Its name: the config value, the subcommand and the one-shot `profile` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileKind::Load => "load",
            ProfileKind::Notify => "notify",
            ProfileKind::Matrix => "matrix",
            ProfileKind::Chaos => "chaos",
            ProfileKind::Longevity => "longevity",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Chaos breaks its targets on purpose: it needs `allow_chaos`, not `allow_heavy` (a lab
    /// target may take faults without being fit for load).
    pub fn needs_allow_chaos(self) -> bool {
        self == ProfileKind::Chaos
    }

    /// Whether runs of this kind are judged by thresholds (the matrix fails on a broken cell).
    pub fn has_thresholds(self) -> bool {
        self != ProfileKind::Matrix
    }
}

impl std::fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parameters of one profile run, of its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileSpec {
    Load(Box<LoadSpec>),
    Notify(NotifySpec),
    Matrix(MatrixSpec),
    Chaos(Box<ChaosSpec>),
    Longevity(Box<LongevitySpec>),
}

impl ProfileSpec {
    pub fn kind(&self) -> ProfileKind {
        match self {
            ProfileSpec::Load(_) => ProfileKind::Load,
            ProfileSpec::Notify(_) => ProfileKind::Notify,
            ProfileSpec::Matrix(_) => ProfileKind::Matrix,
            ProfileSpec::Chaos(_) => ProfileKind::Chaos,
            ProfileSpec::Longevity(_) => ProfileKind::Longevity,
        }
    }

    /// The defaults of a kind (a `[[profiles]]` entry without its table).
    pub fn default_of(kind: ProfileKind) -> Self {
        match kind {
            ProfileKind::Load => ProfileSpec::Load(Box::default()),
            ProfileKind::Notify => ProfileSpec::Notify(NotifySpec::default()),
            ProfileKind::Matrix => ProfileSpec::Matrix(MatrixSpec::default()),
            ProfileKind::Chaos => ProfileSpec::Chaos(Box::default()),
            ProfileKind::Longevity => ProfileSpec::Longevity(Box::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_back_from_their_names() {
        for kind in ProfileKind::ALL {
            assert_eq!(ProfileKind::parse(kind.as_str()), Some(kind));
            assert_eq!(ProfileSpec::default_of(kind).kind(), kind);
        }
        assert_eq!(ProfileKind::parse("capability_matrix"), None);
        assert!(ProfileKind::Chaos.needs_allow_chaos() && !ProfileKind::Load.needs_allow_chaos());
        assert!(!ProfileKind::Matrix.has_thresholds() && ProfileKind::Longevity.has_thresholds());
    }
}
