//! One probe cycle on demand (the `/probe` endpoint): a fresh [`CanaryProbe`] runs the script
//! once within a deadline, and no session outlives it.

use std::sync::Arc;
use std::time::Duration;

use super::canary::CanaryProbe;
use super::outcome::ProbeOutcome;
use crate::config::TargetConfig;

/// How long a warm session (a module with `session = "persistent"`) may take to close after the
/// answer: the DELETE runs in the background, so it never delays the answer.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What one on-demand cycle observed.
#[derive(Debug, Clone, Default)]
pub struct OnceOutcome {
    /// The cycle's outcome; when the deadline passed, only its duration.
    pub outcome: ProbeOutcome,
    /// The cycle did not finish within its deadline (its steps are lost).
    pub deadline_exceeded: bool,
}

impl OnceOutcome {
    pub fn success(&self) -> bool {
        !self.deadline_exceeded && self.outcome.success()
    }
}

/// Run the probe script once against `target` within `deadline`.
pub async fn run_once(target: TargetConfig, http: reqwest::Client, deadline: Duration) -> OnceOutcome {
    let started = tokio::time::Instant::now();
    let mut probe = CanaryProbe::new(Arc::new(target), http);
    match tokio::time::timeout(deadline, probe.run_cycle()).await {
        Ok(outcome) => {
            // Only a persistent module keeps a session after the cycle: close it now.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CLOSE_GRACE, probe.shutdown()).await;
            });
            OnceOutcome { outcome, deadline_exceeded: false }
        }
        Err(_) => OnceOutcome {
            outcome: ProbeOutcome { duration: started.elapsed(), ..Default::default() },
            deadline_exceeded: true,
        },
    }
}
