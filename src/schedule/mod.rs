//! The scheduler owns the loop: a task per target, a random start offset, jittered intervals,
//! one cycle in flight, overruns counted, and a graceful stop. `arrival` holds the open-model
//! arrival maths of heavy profiles.

pub mod lease;
pub mod profiles;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::inspect::Inspector;
use crate::runner::CanaryProbe;
use crate::telemetry::{events, instances, spans};

/// Probe loops (`target` or `target/replica`) that have not yet completed their first cycle;
/// ready when none is left. A loop is expected before it starts, and a target removed by a
/// reload is forgotten, so neither makes the daemon ready early nor keeps it unready.
#[derive(Debug, Default)]
pub struct Readiness {
    pending: Mutex<BTreeSet<String>>,
}

impl Readiness {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A loop that must complete a cycle before the daemon is ready.
    pub fn expect(&self, probe_loop: &str) {
        self.pending().insert(probe_loop.to_string());
    }

    pub fn is_ready(&self) -> bool {
        self.pending().is_empty()
    }

    fn first_cycle_done(&self, probe_loop: &str) {
        self.pending().remove(probe_loop);
    }

    /// Stop waiting for `target`'s loops (a reload removed or replaced it).
    pub fn forget_target(&self, target: &str) {
        self.pending().retain(|l| l != target && l.strip_prefix(target).is_none_or(|rest| !rest.starts_with('/')));
    }
}

/// The readiness key of a probe loop.
pub fn loop_key(target: &str, replica: Option<&str>) -> String {
    match replica {
        Some(r) => format!("{target}/{r}"),
        None => target.to_string(),
    }
}

/// The delay before the next cycle: the interval moved by up to ±jitter/2 of itself.
pub fn jittered(interval: Duration, jitter: f64, unit: f64) -> Duration {
    let offset = (unit - 0.5) * jitter * interval.as_secs_f64();
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.0))
}

/// The runtime the canary's probe loops run on (`server.probe_threads`, default 1), apart from
/// the HTTP surface, the scrapes and the scheduled heavy profiles: a load run or a large scrape
/// keeps the main runtime's threads busy without delaying the canary's timings.
pub struct ProbeRuntime(Option<tokio::runtime::Runtime>);

impl ProbeRuntime {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("mcp-canary-probe")
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    /// Where probe loops are spawned.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the probe runtime lives until dropped").handle()
    }
}

impl Drop for ProbeRuntime {
    /// Without waiting: the daemon has drained its probe loops by then, and a runtime dropped
    /// from async code must not block.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Probe one target (or one replica of it) until `shutdown`; then let the cycle in flight finish
/// within `grace` and close the warm session.
pub async fn run_target(mut probe: CanaryProbe, shutdown: CancellationToken, grace: Duration, ready: Arc<Readiness>) {
    let name = probe.target().name.clone();
    let interval = probe.target().interval;
    let jitter = probe.target().jitter;
    let replica = probe.replica().map(str::to_string);
    let key = loop_key(&name, replica.as_deref());
    let mut series = events::TargetSeries::new(&name);
    match &replica {
        None => {
            events::target_registered(&name);
            events::target_endpoint(&name, &probe.target().url);
        }
        Some(r) => instances::replica_registered(&name, r),
    }
    if probe.target().instances.is_some() {
        instances::checks_registered(&name);
    }

    // Spread targets over the first part of the interval so they do not fire together.
    let first = Duration::from_secs_f64(rand::rng().random::<f64>() * jitter * interval.as_secs_f64());
    let mut next = Instant::now() + first;
    let mut first_done = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        // The target's own cycles get a probe span whose context their requests carry (OTLP
        // only); a replica's probe reports under its own families, without spans.
        let span = replica.is_none().then(|| spans::begin_probe(&name)).flatten();
        let cycle = probe.run_cycle_traced(span.as_ref().map(spans::ProbeSpan::context));
        tokio::pin!(cycle);
        let outcome = tokio::select! {
            outcome = &mut cycle => Some(outcome),
            _ = shutdown.cancelled() => tokio::time::timeout(grace, &mut cycle).await.ok(),
        };
        let Some(outcome) = outcome else {
            tracing::warn!(target_name = %name, "Probe cycle cancelled at shutdown");
            break;
        };
        if let Some(r) = &replica {
            // A replica's probe has its own families; the target's series stay the balancer's.
            instances::replica_probe_completed(&name, r, &outcome);
        } else {
            events::probe_completed(&mut series, &outcome, span);
        }
        if !first_done {
            first_done = true;
            ready.first_cycle_done(&key);
        }
        let elapsed = started.elapsed();
        next = started + jittered(interval, jitter, rand::rng().random::<f64>());
        if elapsed > interval {
            // Replica loops have no overrun series of their own; the target's is the balancer's.
            if replica.is_none() {
                events::probe_overrun(&name, elapsed);
            }
            next = Instant::now();
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    if let Ok(Some(outcome)) = tokio::time::timeout(grace, probe.shutdown()).await
        && replica.is_none()
    {
        events::sessions_observed(&mut series, &outcome);
    }
}

/// Sample one inspector every `interval` (first sample at a random offset within it) until
/// `shutdown`; a sample in flight at shutdown is abandoned (it holds nothing to close). `record`
/// hands each observation to the telemetry layer.
pub async fn run_inspector<I: Inspector>(
    mut inspector: I,
    shutdown: CancellationToken,
    mut record: impl FnMut(&str, &I::Observation) + Send,
) {
    let interval = inspector.interval();
    let first = Duration::from_secs_f64(rand::rng().random::<f64>() * 0.1 * interval.as_secs_f64());
    let mut next = Instant::now() + first;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = Instant::now();
        let observation = tokio::select! {
            o = inspector.sample() => o,
            _ = shutdown.cancelled() => break,
        };
        record(inspector.target(), &observation);
        next = started + jittered(interval, 0.1, rand::rng().random::<f64>());
    }
    tracing::debug!(target_name = %inspector.target(), "Inspector stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_the_fraction() {
        let i = Duration::from_secs(10);
        assert_eq!(jittered(i, 0.0, 0.9), i);
        assert_eq!(jittered(i, 0.2, 0.0), Duration::from_secs(9));
        assert_eq!(jittered(i, 0.2, 1.0), Duration::from_secs(11));
        assert_eq!(jittered(i, 0.2, 0.5), i);
    }

    #[test]
    fn readiness_waits_for_every_expected_loop() {
        let r = Readiness::new();
        r.expect("a");
        r.expect(&loop_key("a", Some("r1")));
        r.expect("b");
        r.first_cycle_done("a");
        r.first_cycle_done("a");
        assert!(!r.is_ready(), "a's replica and b are still pending");
        r.first_cycle_done("a/r1");
        assert!(!r.is_ready());
        r.forget_target("ab");
        assert!(!r.is_ready(), "forgetting another target keeps b");
        r.forget_target("b");
        assert!(r.is_ready());
        r.expect("c/r");
        r.forget_target("c");
        assert!(r.is_ready(), "a removed target's replicas are forgotten with it");
    }
}
