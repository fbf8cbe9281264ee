//! Fault windows: the scenario driver opens and closes each scenario's fault (the fault proxy,
//! a kill and a start command, a Redis pause, the reference target's admin endpoints) and marks
//! the phase boundaries the operations are attributed to.

use super::*;

/// Everything the scenario driver needs to inject faults.
pub(super) struct Injectors {
    pub(super) proxy: Option<FaultProxy>,
    pub(super) redis: Option<RedisPauser>,
    pub(super) admin_http: reqwest::Client,
    /// The target's MCP URL (admin endpoints live next to it, never behind the proxy).
    pub(super) admin_url: url::Url,
    /// The `error_rate` knob to restore after a restart.
    pub(super) restore_error_rate: Mutex<Option<f64>>,
}

/// Open a scenario's fault; errors are reported, never fatal to the run.
pub(super) async fn begin_fault(ctx: &Ctx, inj: &Injectors, s: &Scenario) -> Result<(), String> {
    let t = ctx.run.command_timeout;
    if let Some(f) = s.kind.net_fault() {
        let proxy = inj.proxy.as_ref().ok_or("no fault proxy on the path")?;
        proxy.set(f);
        return Ok(());
    }
    match &s.kind {
        ScenarioKind::Kill => match ctx.run.kill.as_ref().map(|k| &k.kill) {
            Some(KillHow::Command(argv)) => inject::run_command(argv, t).await,
            Some(KillHow::Pid(pid)) => inject::kill_pid(*pid),
            Some(KillHow::PidFile(path)) => inject::read_pid_file(path).and_then(inject::kill_pid),
            None => Err("kill needs --kill-command, --kill-pid or --kill-pid-file".into()),
        },
        ScenarioKind::RedisPause { duration } => match &inj.redis {
            Some(r) => r.pause(*duration, t).await,
            None => Err("redis-pause needs the target's Redis".into()),
        },
        ScenarioKind::ExpireSessions => inject::expire_sessions(&inj.admin_http, &inj.admin_url, t).await,
        ScenarioKind::Restart => {
            let previous = inject::begin_restart(&inj.admin_http, &inj.admin_url, t).await?;
            if let Ok(mut r) = inj.restore_error_rate.lock() {
                *r = Some(previous);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Close a scenario's fault.
pub(super) async fn end_fault(ctx: &Ctx, inj: &Injectors, s: &Scenario) -> Result<(), String> {
    if s.kind.net_fault().is_some() {
        if let Some(p) = &inj.proxy {
            p.set(NetFault::None);
        }
        return Ok(());
    }
    match (&s.kind, ctx.run.kill.as_ref().and_then(|k| k.start.as_ref())) {
        (ScenarioKind::Kill, Some(argv)) => inject::run_command(argv, ctx.run.command_timeout).await,
        (ScenarioKind::Restart, _) => {
            let previous = inj.restore_error_rate.lock().ok().and_then(|mut r| r.take());
            match previous {
                Some(p) => inject::end_restart(&inj.admin_http, &inj.admin_url, p, ctx.run.command_timeout).await,
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Attribute stream counters since the last sample to `phase`.
pub(super) fn sample_streams(ctx: &Ctx, phase: usize, last: &mut (u64, u64)) {
    let now = ctx.stream_totals();
    let (dr, dres) = (now.0.saturating_sub(last.0), now.1.saturating_sub(last.1));
    *last = now;
    if let Some(p) = ctx.phases.get(phase) {
        p.reconnected.fetch_add(dr, Ordering::Relaxed);
        p.resumed.fetch_add(dres, Ordering::Relaxed);
    }
    if let Some(s) = ctx.scenario_of(phase) {
        ctx.observer.streams(&s.name, dr, dres);
    }
}

/// Sleep until `at` or cancellation; false when cancelled.
pub(super) async fn wait_until(at: Instant, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep_until(at) => true,
    }
}

/// Phase boundaries and the results of the injections.
pub(super) struct Timeline {
    pub(super) bounds: Vec<Instant>,
    pub(super) injection_errors: Vec<Vec<String>>,
    pub(super) rss_after_warmup: Option<u64>,
    pub(super) rss_peak: Option<u64>,
}

pub(super) async fn drive_scenarios(ctx: &Ctx, inj: &Injectors, cancel: &CancellationToken) -> Timeline {
    let mut t = Timeline {
        bounds: vec![ctx.start],
        injection_errors: vec![Vec::new(); ctx.run.scenarios.len()],
        rss_after_warmup: None,
        rss_peak: resident_memory_bytes(),
    };
    let mut streams = ctx.stream_totals();
    let peak = |t: &mut Timeline| {
        let now = resident_memory_bytes();
        t.rss_peak = t.rss_peak.max(now);
        now
    };
    if !wait_until(ctx.start + ctx.run.warmup, cancel).await {
        return t;
    }
    t.rss_after_warmup = peak(&mut t);
    for (i, s) in ctx.run.scenarios.iter().enumerate() {
        let fault_phase = 2 * i + 1;
        sample_streams(ctx, fault_phase - 1, &mut streams);
        let start = Instant::now();
        t.bounds.push(start);
        if let Ok(mut d) = ctx.detectors.lock() {
            if let Some(prev) = i.checked_sub(1).and_then(|p| d.get_mut(p)) {
                prev.closed = true;
            }
            if let Some(cur) = d.get_mut(i) {
                cur.fault_start = Some(start);
            }
        }
        ctx.phase.store(fault_phase, Ordering::Relaxed);
        ctx.scenario.store(i, Ordering::Relaxed);
        ctx.observer.fault(&s.name, true);
        tracing::info!(scenario = %s.name, window = ?s.fault, "Chaos fault window opened");
        if let Err(e) = begin_fault(ctx, inj, s).await {
            tracing::warn!(scenario = %s.name, error = %e, "Fault not injected");
            t.injection_errors[i].push(e);
        }
        let ok = wait_until(start + s.fault, cancel).await;
        sample_streams(ctx, fault_phase, &mut streams);
        let end = Instant::now();
        t.bounds.push(end);
        if let Ok(mut d) = ctx.detectors.lock()
            && let Some(cur) = d.get_mut(i)
        {
            cur.fault_end = Some(end);
        }
        ctx.phase.store(fault_phase + 1, Ordering::Relaxed);
        ctx.observer.fault(&s.name, false);
        if let Err(e) = end_fault(ctx, inj, s).await {
            tracing::warn!(scenario = %s.name, error = %e, "Fault not reverted");
            t.injection_errors[i].push(e);
        }
        peak(&mut t);
        tracing::info!(scenario = %s.name, window = ?s.recovery, "Chaos recovery window opened");
        if !ok || !wait_until(end + s.recovery, cancel).await {
            break;
        }
    }
    sample_streams(ctx, ctx.phase(), &mut streams);
    t.bounds.push(Instant::now());
    if let Ok(mut d) = ctx.detectors.lock() {
        d.iter_mut().for_each(|d| d.closed = true);
    }
    peak(&mut t);
    t
}

/// Start the fault proxy in front of the target and point the client at it: an IP host is
/// rewritten to the proxy; a DNS name keeps its URL (Host, TLS name) and resolves to the proxy.
pub(super) async fn start_proxy(
    client: &mut ClientConfig,
    http: &reqwest::Client,
) -> Result<(FaultProxy, reqwest::Client), String> {
    let url = client.url.clone();
    let host = url.host_str().ok_or("target URL has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("target URL has no port")?;
    let upstream = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let proxy = FaultProxy::start(upstream).await.map_err(|e| format!("fault proxy: {e}"))?;
    let addr = proxy.local_addr();
    let http = match url.host() {
        Some(url::Host::Domain(d)) => reqwest::Client::builder()
            .user_agent(concat!("mcp-canary/", env!("CARGO_PKG_VERSION")))
            .resolve(d, addr)
            .redirect(crate::mcp::transport::redirect_policy())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?,
        _ => {
            let mut u = url.clone();
            let _ = u.set_ip_host(addr.ip());
            let _ = u.set_port(Some(addr.port()));
            client.url = u;
            http.clone()
        }
    };
    tracing::info!(proxy = %addr, upstream = %upstream, "Chaos fault proxy on the path");
    Ok((proxy, http))
}
