//! `serve`: load config, start the HTTP surface and a probe loop per target, reload the config
//! on demand (SIGHUP, `POST /-/reload`, `--watch-config`), stop gracefully.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigErrors, TargetConfig};
use crate::http::serve as http;
use crate::http::{ReloadRequest, ReloadSender};
use crate::inspect::redis::RedisInspector;
use crate::runner::CanaryProbe;
use crate::schedule::{self, Readiness, loop_key};
use crate::telemetry::{Exporter, events};

/// Reads and validates the config again (the file and the environment, scheduled profiles
/// planned), for a reload.
pub type ConfigLoader = Arc<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>;

/// How the daemon reloads its config: the requests (signals, `/-/reload`, the file watch) and
/// where the new config comes from.
pub struct Reloads {
    tx: ReloadSender,
    rx: mpsc::Receiver<ReloadRequest>,
    load: ConfigLoader,
    /// The config file polled for changes, and how often (`--watch-config`).
    watch: Option<(PathBuf, Duration)>,
}

impl Reloads {
    pub fn new(load: ConfigLoader, watch: Option<(PathBuf, Duration)>) -> Self {
        // Requests queue while a reload is applied; a burst beyond this waits its turn.
        let (tx, rx) = mpsc::channel(8);
        Self { tx, rx, load, watch }
    }

    /// Where SIGHUP handlers and the HTTP surface send reload requests.
    pub fn sender(&self) -> ReloadSender {
        self.tx.clone()
    }
}

/// Run the daemon until `shutdown` is cancelled. `listener` overrides `server.listen` (demo,
/// tests); without `reloads` the config never changes (the demo).
pub async fn run(
    config: Config,
    exporter: Exporter,
    listener: Option<TcpListener>,
    reloads: Option<Reloads>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?,
    };
    let addr = listener.local_addr()?;
    let secured = crate::http::Secured::new(&config.server.security)
        .map_err(|e| anyhow::anyhow!("invalid config: {}: {}", e.key, e.message))?;
    // A stable line on stdout so scripts and tests can find the port when it was 0.
    println!("mcp-canary listening on {}://{addr}", secured.scheme());
    tracing::info!(%addr, targets = config.targets.len(), "Daemon started");

    events::daemon_started(config.targets.len());
    let ready = Readiness::new();
    let probe = crate::http::probe::ProbeState::new(config.probe.clone())?;
    let mut fleet = Fleet {
        loaded: false,
        probe: Arc::clone(&probe),
        exporter: exporter.clone(),
        http: crate::mcp::transport::http_client()?,
        probes: schedule::ProbeRuntime::new(config.server.probe_threads)
            .map_err(|e| anyhow::anyhow!("cannot start the probe runtime: {e}"))?,
        ready: Arc::clone(&ready),
        shutdown: shutdown.clone(),
        targets: BTreeMap::new(),
        profiles: None,
        draining: JoinSet::new(),
        grace: config.server.shutdown_grace,
        server: config.server.clone(),
        otlp: config.otlp.is_some(),
        coordination: config.coordination.as_ref().map(|c| (c.redis.to_string(), c.lease_key.clone())),
        lease: config.coordination.clone().map(|spec| crate::schedule::lease::spawn(spec, shutdown.clone())),
    };
    // Every first-start loop is expected before /readyz can answer.
    fleet.apply(config)?;
    let endpoints =
        crate::http::DaemonEndpoints { reload: reloads.as_ref().map(Reloads::sender), probe: Some(probe), secured };
    let surface = crate::http::Surface::start(exporter.clone(), Some(listener), ready, endpoints);

    match reloads {
        Some(reloads) => fleet.serve_reloads(reloads).await,
        None => shutdown.cancelled().await,
    }
    tracing::info!("Shutting down: finishing probes in flight and closing sessions");
    // One deadline for probe loops, profiles and inspectors (all cancelled together): the stop
    // takes at most `shutdown_grace` + `http::SHUTDOWN_BOUND` whatever targets and HTTP clients do.
    let grace = fleet.grace;
    fleet.stop(tokio::time::Instant::now() + grace + http::PROBE_DRAIN_SLACK).await;
    // Stops accepting, lets answers in flight finish within `http::DRAIN_TIMEOUT`, closes the rest.
    surface.stop().await;
    // Push the last cycles' metrics and spans before exiting, within a fixed bound of its own
    // (not the grace: the SDK bounds its own flush today, but that is its choice, not ours).
    exporter.shutdown(grace.min(http::OTLP_FLUSH_TIMEOUT)).await;
    tracing::info!("Daemon stopped");
    Ok(())
}

/// One target's probe loops (itself and its replicas) and its Redis inspector.
struct RunningTarget {
    config: TargetConfig,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// The scheduled heavy profiles of one config.
struct RunningProfiles {
    /// The profile tables and every target they run against, as planned.
    revision: u64,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What runs now: a loop set per target and the profile scheduler, changed in place by a reload.
struct Fleet {
    exporter: Exporter,
    /// A config was applied (the next one is a reload).
    loaded: bool,
    /// `/probe`'s config, replaced by a reload.
    probe: Arc<crate::http::probe::ProbeState>,
    http: reqwest::Client,
    /// The runtime probe loops run on (`server.probe_threads`).
    probes: schedule::ProbeRuntime,
    ready: Arc<Readiness>,
    shutdown: CancellationToken,
    targets: BTreeMap<String, RunningTarget>,
    profiles: Option<RunningProfiles>,
    /// Loops of removed or replaced targets finishing their cycle and closing their sessions.
    draining: JoinSet<()>,
    grace: Duration,
    /// Settings that only a restart changes.
    server: crate::config::ServerConfig,
    otlp: bool,
    /// `[coordination]`'s Redis and key, as started.
    coordination: Option<(String, String)>,
    /// The `[coordination]` lease, held for the daemon's life (a reload keeps it).
    lease: Option<(Arc<crate::schedule::lease::Leadership>, JoinHandle<()>)>,
}

impl Fleet {
    /// Take reload requests (and poll the file when watched) until shutdown.
    async fn serve_reloads(&mut self, mut reloads: Reloads) {
        let mut watched = reloads.watch.as_ref().and_then(|(path, _)| file_hash(path));
        let mut tick = tokio::time::interval(reloads.watch.as_ref().map_or(Duration::from_secs(3600), |w| w.1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let request = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = reloads.rx.recv() => match r {
                    Some(r) => r,
                    None => return,
                },
                _ = tick.tick(), if reloads.watch.is_some() => {
                    let Some((path, _)) = &reloads.watch else { continue };
                    let now = file_hash(path);
                    if now == watched {
                        continue;
                    }
                    watched = now;
                    ReloadRequest { cause: "watch", reply: None }
                }
            };
            // Reap loops that finished draining so the set does not grow over many reloads.
            while self.draining.try_join_next().is_some() {}
            let outcome = self.reload(&reloads.load, request.cause).await;
            if let Some(reply) = request.reply {
                let _ = reply.send(outcome);
            }
        }
    }

    async fn reload(&mut self, load: &ConfigLoader, cause: &'static str) -> Result<String, String> {
        let load = Arc::clone(load);
        let loaded = tokio::task::spawn_blocking(move || load())
            .await
            .unwrap_or_else(|e| Err(ConfigErrors(vec![crate::config::ConfigError::new("<file>", e.to_string())])));
        let config = match loaded {
            Ok(config) => config,
            Err(errors) => {
                events::config_reload_failed();
                for e in &errors.0 {
                    tracing::error!(cause, key = %e.key, message = %e.message, "Config reload refused; the previous config keeps running");
                }
                return Err(errors.to_string());
            }
        };
        let summary = self.apply(config).map_err(|e| {
            events::config_reload_failed();
            tracing::error!(cause, error = %e, "Config reload refused; the previous config keeps running");
            e.to_string()
        })?;
        tracing::info!(cause, %summary, "Config reloaded");
        Ok(summary)
    }

    /// Make the running set match `config`: unchanged targets keep their loops, sessions and
    /// tokens; changed ones restart; removed ones stop (closing their sessions) and their series
    /// leave `/metrics`; the profile scheduler restarts only when its tables or targets changed.
    fn apply(&mut self, config: Config) -> anyhow::Result<String> {
        let first = !self.loaded;
        self.loaded = true;
        let mut changes = Changes::default();
        let restart_only = self.restart_only_changes(&config);
        let mut next: BTreeMap<String, TargetConfig> =
            config.targets.iter().map(|t| (t.name.clone(), t.clone())).collect();
        // Keep the running config (and its token source) of every unchanged target.
        for (name, running) in &self.targets {
            if let Some(t) = next.get_mut(name)
                && t.revision == running.config.revision
            {
                *t = running.config.clone();
            }
        }
        let effective = Config { targets: config.targets.iter().map(|t| next[&t.name].clone()).collect(), ..config };
        let profiles_revision = profiles_revision(&effective);
        let planned = match &self.profiles {
            Some(p) if p.revision == profiles_revision => None,
            _ => Some(crate::driver::plan_scheduled(&effective).map_err(|e| anyhow::anyhow!("{e}"))?),
        };

        let names: Vec<String> = self.targets.keys().cloned().collect();
        for name in names {
            match next.get(&name) {
                None => {
                    self.stop_target(&name);
                    self.exporter.retire_target(&name);
                    changes.removed.push(name);
                }
                Some(t) if t.revision != self.targets[&name].config.revision => {
                    self.stop_target(&name);
                    changes.changed.push(name);
                }
                Some(_) => changes.unchanged += 1,
            }
        }
        for target in &effective.targets {
            if !self.targets.contains_key(&target.name) {
                if !first && !changes.changed.contains(&target.name) {
                    changes.added.push(target.name.clone());
                }
                self.exporter.revive_target(&target.name);
                self.start_target(target.clone());
            }
        }
        if let Some(planned) = planned {
            if let Some(old) = self.profiles.take() {
                old.stop.cancel();
                let deadline = self.grace + http::PROBE_DRAIN_SLACK;
                self.draining.spawn(async move {
                    let mut task = old.task;
                    if tokio::time::timeout(deadline, &mut task).await.is_err() {
                        task.abort();
                    }
                });
                changes.profiles_restarted = true;
            }
            if !planned.is_empty() {
                tracing::info!(profiles = planned.len(), "Scheduling heavy profiles");
            }
            let stop = self.shutdown.child_token();
            let task = tokio::spawn(schedule::profiles::run(
                planned,
                effective.heavy.clone(),
                self.http.clone(),
                stop.clone(),
                self.grace,
                self.lease.as_ref().map(|(l, _)| Arc::clone(l)),
            ));
            self.profiles = Some(RunningProfiles { revision: profiles_revision, stop, task });
        }
        self.grace = effective.server.shutdown_grace;
        if !first {
            self.probe.replace(effective.probe.clone());
        }
        events::config_loaded(self.targets.len(), !first);
        Ok(changes.summary(self.targets.len(), &restart_only))
    }

    /// Keys that changed but take effect only at a restart (logged, reported, not applied).
    fn restart_only_changes(&self, config: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if config.server.listen != self.server.listen {
            keys.push("server.listen");
        }
        // The certificate files themselves are followed by the surface (`http::tls`).
        if config.server.probe_threads != self.server.probe_threads {
            keys.push("server.probe_threads");
        }
        if config.server.security.tls != self.server.security.tls {
            keys.push("server.tls");
        }
        if config.server.security.auth != self.server.security.auth {
            keys.push("server.basic_auth_users/bearer_token_file");
        }
        if config.otlp.is_some() != self.otlp {
            keys.push("otlp");
        }
        if config.coordination.as_ref().map(|c| (c.redis.to_string(), c.lease_key.clone())) != self.coordination {
            keys.push("coordination");
        }
        for key in &keys {
            tracing::warn!(key, "Config key changed; it takes effect at the next restart");
        }
        keys
    }

    fn start_target(&mut self, target: TargetConfig) {
        let stop = self.shutdown.child_token();
        let mut tasks = JoinSet::new();
        if let Some(at) = target.credential_expiry {
            events::credential_expiry(&target.name, "bearer_token", at);
        }
        if let Some(spec) = target.redis.clone() {
            events::redis_inspector_registered(&target.name);
            tracing::info!(target_name = %target.name, redis = %spec.url, "Inspecting Redis");
            let inspector = RedisInspector::new(&target.name, spec);
            let mut policy = None;
            tasks.spawn(schedule::run_inspector(inspector, stop.clone(), move |t, obs| {
                events::redis_sampled(t, obs, &mut policy)
            }));
        }
        let grace = self.grace;
        for replica in target.instances.iter().flat_map(|i| &i.replicas) {
            self.ready.expect(&loop_key(&target.name, Some(&replica.name)));
            let probe = CanaryProbe::for_replica(&target, replica, self.http.clone());
            tasks.spawn_on(
                schedule::run_target(probe, stop.clone(), grace, Arc::clone(&self.ready)),
                self.probes.handle(),
            );
        }
        self.ready.expect(&target.name);
        let probe = CanaryProbe::new(Arc::new(target.clone()), self.http.clone());
        tasks.spawn_on(schedule::run_target(probe, stop.clone(), grace, Arc::clone(&self.ready)), self.probes.handle());
        self.targets.insert(target.name.clone(), RunningTarget { config: target, stop, tasks });
    }

    /// Cancel a target's loops; they finish their cycle and close their sessions in the background.
    fn stop_target(&mut self, name: &str) {
        let Some(mut running) = self.targets.remove(name) else { return };
        running.stop.cancel();
        self.ready.forget_target(name);
        let deadline = self.grace + http::PROBE_DRAIN_SLACK;
        self.draining.spawn(async move {
            if tokio::time::timeout(deadline, async { while running.tasks.join_next().await.is_some() {} })
                .await
                .is_err()
            {
                running.tasks.abort_all();
            }
        });
    }

    /// Stop everything by `deadline` (probe loops, inspectors, profile runs, draining loops).
    async fn stop(mut self, deadline: tokio::time::Instant) {
        let mut all = JoinSet::new();
        for (_, mut running) in std::mem::take(&mut self.targets) {
            running.stop.cancel();
            all.spawn(async move { while running.tasks.join_next().await.is_some() {} });
        }
        if let Some(p) = self.profiles.take() {
            p.stop.cancel();
            all.spawn(async move {
                let _ = p.task.await;
            });
        }
        // Cancelled with the shutdown: it releases the key so another replica takes over at once.
        if let Some((_, lease)) = self.lease.take() {
            all.spawn(async move {
                let _ = lease.await;
            });
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while all.join_next().await.is_some() {}
            while self.draining.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("Some probe loops or profile runs did not stop within the grace period");
            all.abort_all();
            self.draining.abort_all();
        }
    }
}

/// What a reload changed, for the log and the `/-/reload` answer.
#[derive(Debug, Default)]
struct Changes {
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
    unchanged: usize,
    profiles_restarted: bool,
}

impl Changes {
    fn summary(&self, targets: usize, restart_only: &[&str]) -> String {
        let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        let mut s = format!(
            "{targets} targets: added {}; changed (restarted) {}; removed {}; {} unchanged",
            list(&self.added),
            list(&self.changed),
            list(&self.removed),
            self.unchanged
        );
        if self.profiles_restarted {
            s.push_str("; scheduled profiles restarted");
        }
        if !restart_only.is_empty() {
            s.push_str(&format!("; changed but applied only at the next restart: {}", restart_only.join(", ")));
        }
        s
    }
}

/// The profile tables' revision with that of every target they name: a profile restarts when
/// either changes.
fn profiles_revision(config: &Config) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    config.profiles_revision.hash(&mut hasher);
    for p in &config.profiles {
        for name in &p.targets {
            config.targets.iter().find(|t| &t.name == name).map(|t| t.revision).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// A hash of the file's bytes (`None` when unreadable), to notice a change however it was written
/// (a ConfigMap swaps a symlink, an editor renames, a tool truncates and writes).
fn file_hash(path: &std::path::Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// Exit status of a process stopped at once by a second SIGINT or SIGTERM (128 + SIGINT).
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// Cancel `token` on SIGINT or SIGTERM (a graceful stop); a second one exits at once with
/// [`EXIT_SECOND_SIGNAL`], whatever the stop is waiting for. SIGHUP asks `reload` for a config
/// reload; without one it is logged and ignored (it must never kill a process without its
/// DELETEs and flush).
pub fn cancel_on_signals(token: CancellationToken, reload: Option<ReloadSender>) {
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
                        match &reload {
                            Some(reload) => {
                                tracing::info!("SIGHUP: reloading the config");
                                if reload.try_send(ReloadRequest { cause: "signal", reply: None }).is_err() {
                                    tracing::warn!("SIGHUP: reloads already queued; this one is dropped");
                                }
                            }
                            None => tracing::warn!("SIGHUP ignored: this command has no config to reload"),
                        }
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
