//! `serve`: load config, start the HTTP surface and a probe loop per target, stop gracefully.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::serve as http;
use crate::inspect::redis::RedisInspector;
use crate::runner::CanaryProbe;
use crate::schedule::{self, Readiness};
use crate::telemetry::{Exporter, events};

/// Run the daemon until `shutdown` is cancelled. `listener` overrides `server.listen` (demo, tests).
pub async fn run(
    config: Config,
    exporter: Exporter,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?,
    };
    let addr = listener.local_addr()?;
    // A stable line on stdout so scripts and tests can find the port when it was 0.
    println!("mcp-canary listening on http://{addr}");
    tracing::info!(%addr, targets = config.targets.len(), "Daemon started");

    events::daemon_started(config.targets.len());
    // Ready once every probe loop (targets and their replicas) has completed a cycle.
    let loops_total: usize =
        config.targets.iter().map(|t| 1 + t.instances.as_ref().map_or(0, |i| i.replicas.len())).sum();
    let ready = Readiness::new(loops_total);
    let probe = crate::http::probe::ProbeState::new(config.probe.clone())?;
    let surface = crate::http::Surface::start(exporter.clone(), Some(listener), Arc::clone(&ready), Some(probe));

    let http = crate::mcp::transport::http_client()?;
    let grace = config.server.shutdown_grace;
    let planned = crate::driver::plan_scheduled(&config).map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?;
    let profiles = (!planned.is_empty()).then(|| {
        tracing::info!(profiles = planned.len(), "Scheduling heavy profiles");
        tokio::spawn(schedule::profiles::run(planned, config.heavy, http.clone(), shutdown.clone(), grace))
    });
    let mut loops = tokio::task::JoinSet::new();
    let mut inspectors = tokio::task::JoinSet::new();
    for target in config.targets {
        if let Some(at) = target.credential_expiry {
            events::credential_expiry(&target.name, "bearer_token", at);
        }
        if let Some(spec) = target.redis.clone() {
            events::redis_inspector_registered(&target.name);
            tracing::info!(target_name = %target.name, redis = %spec.url, "Inspecting Redis");
            let inspector = RedisInspector::new(&target.name, spec);
            let mut policy = None;
            inspectors.spawn(schedule::run_inspector(inspector, shutdown.clone(), move |t, obs| {
                events::redis_sampled(t, obs, &mut policy)
            }));
        }
        for replica in target.instances.iter().flat_map(|i| &i.replicas) {
            let probe = CanaryProbe::for_replica(&target, replica, http.clone());
            loops.spawn(schedule::run_target(probe, shutdown.clone(), grace, Arc::clone(&ready)));
        }
        let probe = CanaryProbe::new(Arc::new(target), http.clone());
        loops.spawn(schedule::run_target(probe, shutdown.clone(), grace, Arc::clone(&ready)));
    }

    shutdown.cancelled().await;
    tracing::info!("Shutting down: finishing probes in flight and closing sessions");
    // One deadline for probe loops, profiles and inspectors (all cancelled together): the stop
    // takes at most `shutdown_grace` + `http::SHUTDOWN_BOUND` whatever targets and HTTP clients do.
    let deadline = tokio::time::Instant::now() + grace + http::PROBE_DRAIN_SLACK;
    let drained = tokio::time::timeout_at(deadline, async { while loops.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("Some probe loops did not stop within the grace period");
        loops.abort_all();
    }
    // Profile runs were cancelled too; each waits for its own within the grace.
    if let Some(mut profiles) = profiles
        && tokio::time::timeout_at(deadline, &mut profiles).await.is_err()
    {
        profiles.abort();
    }
    // Inspectors abandon their sample in flight on cancel; this wait is only a backstop.
    if tokio::time::timeout_at(deadline, async { while inspectors.join_next().await.is_some() {} }).await.is_err() {
        inspectors.abort_all();
    }
    // Stops accepting, lets answers in flight finish within `http::DRAIN_TIMEOUT`, closes the rest.
    surface.stop().await;
    // Push the last cycles' metrics and spans before exiting, within a fixed bound of its own
    // (not the grace: the SDK bounds its own flush today, but that is its choice, not ours).
    exporter.shutdown(grace.min(http::OTLP_FLUSH_TIMEOUT)).await;
    tracing::info!("Daemon stopped");
    Ok(())
}

/// Exit status of a process stopped at once by a second SIGINT or SIGTERM (128 + SIGINT).
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// Cancel `token` on SIGINT or SIGTERM (a graceful stop); a second one exits at once with
/// [`EXIT_SECOND_SIGNAL`], whatever the stop is waiting for. SIGHUP is logged and ignored (no
/// reload yet: it must not kill the daemon without its DELETEs and flush).
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (term, int, hup) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()));
            let (mut term, mut int, mut hup) = match (term, int, hup) {
                (Ok(t), Ok(i), Ok(h)) => (t, i, h),
                (t, i, h) => {
                    let e = [t.err(), i.err(), h.err()].into_iter().flatten().next();
                    tracing::error!(error = ?e, "Cannot install signal handlers; stopping on Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    token.cancel();
                    return;
                }
            };
            let mut stops = 0;
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                    _ = hup.recv() => {
                        tracing::warn!("SIGHUP ignored: the config is not reloaded yet; restart to change it");
                        continue;
                    }
                }
                stops += 1;
                if stops > 1 {
                    tracing::warn!("Second stop signal: exiting now");
                    std::process::exit(EXIT_SECOND_SIGNAL);
                }
                tracing::info!("Stopping; a second SIGTERM or SIGINT exits at once");
                token.cancel();
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        }
    });
}
