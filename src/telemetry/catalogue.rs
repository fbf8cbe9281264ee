//! Every metric the daemon exports: name, kind, unit, help, label keys, buckets. No name literal elsewhere.

/// Kind of a metric, as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// Explicit buckets (histograms only).
    pub buckets: &'static [f64],
    /// Name over OTLP where the OpenTelemetry semantic conventions define one; else `name`.
    pub otel_name: Option<&'static str>,
}

impl MetricDef {
    /// The name this metric carries over OTLP.
    pub fn otlp_name(&self) -> &'static str {
        self.otel_name.unwrap_or(self.name)
    }

    /// UCUM unit over OTLP (every histogram of the catalogue is in seconds).
    pub fn otlp_unit(&self) -> &'static str {
        if self.kind == Kind::Histogram { "s" } else { "" }
    }
}

/// Latency buckets in seconds; they hold the SLO thresholds 0.05, 0.1, 0.2 and 0.5 exactly.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Session lifetimes in seconds: from one cold cycle to days of a warm session.
pub const SESSION_BUCKETS: &[f64] =
    &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0];

macro_rules! metric {
    ($id:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        metric!($id, $name, $kind, [$($label),*], $help, &[]);
    };
    ($id:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal, $buckets:expr) => {
        #[doc = $help]
        pub const $id: MetricDef = MetricDef {
            name: $name,
            kind: Kind::$kind,
            help: $help,
            labels: &[$($label),*],
            buckets: $buckets,
            otel_name: None,
        };
    };
    ($id:ident, $name:literal, otel = $otel:literal, $kind:ident, [$($label:literal),*], $help:literal, $buckets:expr) => {
        #[doc = $help]
        pub const $id: MetricDef = MetricDef {
            name: $name,
            kind: Kind::$kind,
            help: $help,
            labels: &[$($label),*],
            buckets: $buckets,
            otel_name: Some($otel),
        };
    };
}

// OpenTelemetry MCP semantic conventions.
metric!(
    OPERATION_DURATION,
    "mcp_client_operation_duration_seconds",
    otel = "mcp.client.operation.duration",
    Histogram,
    ["target", "mcp_method_name", "gen_ai_tool_name", "error_type", "mcp_protocol_version"],
    "Duration of MCP client operations (requests), failed ones included; error_type is empty on success; gen_ai_tool_name is the configured tool, (read-only) for a tool the probe picked from the server's list, empty for other methods.",
    LATENCY_BUCKETS
);
metric!(
    SESSION_DURATION,
    "mcp_client_session_duration_seconds",
    otel = "mcp.client.session.duration",
    Histogram,
    ["target"],
    "Duration of MCP client sessions, from connect to close or loss.",
    SESSION_BUCKETS
);

// OAuth token health of protected targets.
metric!(
    AUTH_TOKEN_EXPIRY,
    "mcp_canary_auth_token_expiry_timestamp_seconds",
    Gauge,
    ["target"],
    "Unix time the canary's current OAuth access token for the target expires at (absent before the first token, or when the token endpoint gives no expires_in)."
);
metric!(
    AUTH_CREDENTIAL_EXPIRY,
    "mcp_canary_auth_credential_expiry_timestamp_seconds",
    Gauge,
    ["target", "credential"],
    "Unix time a long-lived credential of the target expires at (credential=bearer_token: the exp of a static bearer token that is a JWT); absent when the credential does not say."
);
metric!(
    AUTH_TOKEN_REQUESTS,
    "mcp_canary_auth_token_requests_total",
    Counter,
    ["target", "outcome"],
    "OAuth access tokens the canary asked for, by outcome (success, failure: discovery, token endpoint refusal, a token for another server)."
);

// The prober's own metrics.
metric!(
    PROBE_SUCCESS,
    "mcp_canary_probe_success",
    Gauge,
    ["target"],
    "1 when every required step of the last probe cycle passed and its notification round trip (when configured) was not missed, else 0."
);
metric!(
    PROBE_DURATION,
    "mcp_canary_probe_duration_seconds",
    Histogram,
    ["target"],
    "Wall time of a whole probe cycle.",
    LATENCY_BUCKETS
);
metric!(
    PROBES,
    "mcp_canary_probes_total",
    Counter,
    ["target", "outcome"],
    "Probe cycles by outcome (success, failure)."
);
metric!(
    OPERATIONS,
    "mcp_canary_operations_total",
    Counter,
    ["target", "mcp_method_name", "outcome", "error_type"],
    "Probe steps by outcome (success, failure, skipped) and error class."
);
metric!(
    JSONRPC_ERRORS,
    "mcp_canary_jsonrpc_errors_total",
    Counter,
    ["target", "mcp_method_name", "rpc_response_status_code"],
    "JSON-RPC error responses by code (known codes, else `other`)."
);
metric!(
    NOTIFICATION_LATENCY,
    "mcp_canary_notification_latency_seconds",
    Histogram,
    ["target"],
    "Time from sending a notification trigger to receiving the matching notification.",
    LATENCY_BUCKETS
);
metric!(
    NOTIFICATIONS_EXPECTED,
    "mcp_canary_notifications_expected_total",
    Counter,
    ["target"],
    "Notifications the probe triggered and waited for."
);
metric!(
    NOTIFICATIONS_RECEIVED,
    "mcp_canary_notifications_received_total",
    Counter,
    ["target"],
    "Triggered notifications that arrived within the notification timeout."
);
metric!(
    PROBE_OVERRUNS,
    "mcp_canary_probe_overruns_total",
    Counter,
    ["target"],
    "Probe cycles that took longer than the interval."
);
metric!(
    SESSIONS_REINITIALIZED,
    "mcp_canary_sessions_reinitialized_total",
    Counter,
    ["target"],
    "Sessions re-initialised after the server declared the session expired."
);
metric!(
    STREAM_RECONNECTS,
    "mcp_canary_stream_reconnects_total",
    Counter,
    ["target"],
    "SSE streams reconnected after the server ended them early."
);
metric!(
    STREAM_RESUMPTIONS,
    "mcp_canary_stream_resumptions_total",
    Counter,
    ["target"],
    "SSE reconnects that resumed with Last-Event-ID."
);
metric!(
    STREAM_DUPLICATES,
    "mcp_canary_stream_duplicates_total",
    Counter,
    ["target"],
    "Replayed SSE events dropped as duplicates."
);
metric!(
    SERVER_INFO,
    "mcp_canary_server_info",
    Gauge,
    ["target", "server_name", "server_version", "mcp_protocol_version"],
    "1 for the server identity and protocol version seen by the last successful connect; one series per target, replaced when the identity changes; server_name and server_version bounded (128 characters, control characters as ?), mcp_protocol_version a known revision or other."
);
metric!(
    SERVER_CAPABILITY,
    "mcp_canary_server_capability",
    Gauge,
    ["target", "capability"],
    "1 when the server advertises the capability, else 0."
);
metric!(
    SERVER_ITEMS,
    "mcp_canary_server_items",
    Gauge,
    ["target", "kind"],
    "Tools, resources and prompts the server lists: the true count over every page read, although only the first 1,000 items are kept."
);
metric!(
    TOOLS_SCHEMA_CHANGES,
    "mcp_canary_tools_schema_changes_total",
    Counter,
    ["target"],
    "Times the hash of the tools' contracts changed between listings (drift): a tool added, removed or renamed, or its title, description, input or output schema or annotations changed."
);
// Balanced targets (`instances` in config): each replica probed directly, and the replica checks.
metric!(
    REPLICA_PROBE_SUCCESS,
    "mcp_canary_replica_probe_success",
    Gauge,
    ["target", "replica"],
    "1 when every required step of the last probe cycle against the replica's own URL passed and its notification round trip (when configured) was not missed, else 0."
);
metric!(
    REPLICA_PROBES,
    "mcp_canary_replica_probes_total",
    Counter,
    ["target", "replica", "outcome"],
    "Probe cycles against a replica's own URL by outcome (success, failure)."
);
metric!(
    REPLICA_OPERATION_DURATION,
    "mcp_canary_replica_operation_duration_seconds",
    Histogram,
    ["target", "replica", "mcp_method_name", "error_type"],
    "Duration of the probe's MCP operations against a replica's own URL, failed ones included; error_type is empty on success.",
    LATENCY_BUCKETS
);
metric!(
    REPLICA_OPERATIONS,
    "mcp_canary_replica_operations_total",
    Counter,
    ["target", "replica", "mcp_method_name", "outcome", "error_type"],
    "Probe steps against a replica's own URL by outcome (success, failure, skipped) and error class."
);
metric!(
    AFFINITY_SUCCESS,
    "mcp_canary_affinity_success",
    Gauge,
    ["target"],
    "1 when every request of the last session affinity check (one session through the balancer, sequential requests) succeeded, else 0."
);
metric!(
    AFFINITY_REQUESTS,
    "mcp_canary_affinity_requests_total",
    Counter,
    ["target", "replica", "outcome", "error_type"],
    "Requests of the session affinity check by serving replica (from the served-by header; `unknown` when absent or not configured), outcome and error class; session_lost: a replica did not know the live session."
);
metric!(
    INSTANCE_DELIVERY_EXPECTED,
    "mcp_canary_instance_delivery_expected_total",
    Counter,
    ["target", "route"],
    "Cross-instance delivery check: deliveries expected (triggers times replica streams), by route (same_instance, cross_instance)."
);
metric!(
    INSTANCE_DELIVERY_RECEIVED,
    "mcp_canary_instance_delivery_received_total",
    Counter,
    ["target", "route"],
    "Cross-instance delivery check: expected deliveries that arrived within the notification timeout, by route."
);
metric!(
    INSTANCE_DELIVERY_LATENCY,
    "mcp_canary_instance_delivery_latency_seconds",
    Histogram,
    ["target", "route"],
    "Cross-instance delivery check: time from the trigger call to the notification's arrival on a replica's stream, by route.",
    LATENCY_BUCKETS
);
metric!(
    INSTANCE_DELIVERY_TRIGGERS,
    "mcp_canary_instance_delivery_triggers_total",
    Counter,
    ["target", "replica", "outcome", "error_type"],
    "Cross-instance delivery check: trigger calls by the replica they went through, outcome and error class."
);
metric!(
    INSTANCE_DELIVERY_RECEIVERS_FAILED,
    "mcp_canary_instance_delivery_receivers_failed_total",
    Counter,
    ["target", "replica"],
    "Cross-instance delivery check: replicas on which the receiving session or its GET stream could not be opened."
);
metric!(TARGETS, "mcp_canary_targets", Gauge, [], "Targets in the loaded config.");
metric!(BUILD_INFO, "mcp_canary_build_info", Gauge, ["version"], "1, labelled with the daemon version.");
metric!(
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    "mcp_canary_config_last_reload_successful",
    Gauge,
    [],
    "1 when the last config reload (or the start) succeeded, 0 when the last reload was refused and the previous config is still running."
);
metric!(
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    "mcp_canary_config_last_reload_success_timestamp_seconds",
    Gauge,
    [],
    "Unix time of the last successful config load (the start or a reload)."
);
metric!(
    CONFIG_RELOADS,
    "mcp_canary_config_reloads_total",
    Counter,
    ["outcome"],
    "Config reload attempts by outcome (success, failure)."
);
metric!(
    OTLP_EXPORTS,
    "mcp_canary_otlp_exports_total",
    Counter,
    ["signal", "outcome"],
    "OTLP export attempts by signal (metrics, traces) and outcome (success, failure)."
);
metric!(
    HTTP_CONNECTIONS_CLOSED,
    "mcp_canary_http_connections_closed_total",
    Counter,
    ["reason"],
    "Connections to the daemon's own HTTP port it closed on a client: displaced (over the connection cap), header_timeout (no complete request head in time, idle keep-alive included), request_timeout (a request over its time), tls_handshake (a failed TLS handshake: plain HTTP, a missing or unknown client certificate)."
);
metric!(
    HTTP_REQUESTS_REFUSED,
    "mcp_canary_http_requests_refused_total",
    Counter,
    ["reason"],
    "Requests to the daemon's own HTTP port answered 401 when server.basic_auth_users or server.bearer_token_file is set: no_credentials (none, or another scheme), bad_credentials (a wrong user, password or token)."
);
metric!(
    PROBE_REQUESTS,
    "mcp_canary_probe_requests_total",
    Counter,
    ["outcome"],
    "Requests to /probe: ok (a probe ran, whatever its result), refused (the endpoint is off, or the target is outside probe.allowed_targets), busy (probe.max_concurrent probes in flight), bad_request (no or a bad target, an unknown module, a bad scrape timeout header)."
);

// The answer of one /probe request (blackbox_exporter's names): rendered per request from that
// cycle's outcome, never registered in the global registry.
metric!(
    PROBE_ENDPOINT_SUCCESS,
    "probe_success",
    Gauge,
    [],
    "1 when the probe passed (connected, no step failed, the notification arrived when one was asked for), else 0."
);
metric!(PROBE_ENDPOINT_DURATION, "probe_duration_seconds", Gauge, [], "How long the probe took, in seconds.");
metric!(
    PROBE_ENDPOINT_STEP_DURATION,
    "probe_step_duration_seconds",
    Gauge,
    ["step"],
    "Time each step that ran took, in seconds; step is the MCP method (initialize or server/discover, tools/list, tools/call, resources/list, resources/read, prompts/list, prompts/get, ping, session/delete), summed when it ran more than once."
);
metric!(
    PROBE_ENDPOINT_ERROR,
    "probe_error_info",
    Gauge,
    ["step", "error_type"],
    "1 for each step that failed, with its error class; step=\"notification\" error_type=\"timeout\" for a notification that did not arrive, step=\"deadline\" error_type=\"timeout\" for a probe that ran out of time (its steps are then unknown)."
);
metric!(
    PROBE_ENDPOINT_NOTIFICATION_LATENCY,
    "probe_notification_latency_seconds",
    Gauge,
    [],
    "From the trigger call to the notification carrying its nonce, in seconds; present when the module asks for a notification and it arrived."
);
metric!(
    PROBE_ENDPOINT_MCP_INFO,
    "probe_mcp_info",
    Gauge,
    ["mcp_protocol_version"],
    "1, labelled with the negotiated protocol revision (a known one, else other); absent when no connection was made."
);

// Heavy profiles (load): live series during a run, and the last run's results.
metric!(
    LOAD_REQUEST_DURATION,
    "mcp_canary_load_request_duration_seconds",
    Histogram,
    ["target", "profile", "operation", "error_type"],
    "Latency of profile requests from their intended start (open model, no coordinated omission), failures included; error_type is empty on success.",
    LATENCY_BUCKETS
);
metric!(
    LOAD_REQUESTS,
    "mcp_canary_load_requests_total",
    Counter,
    ["target", "profile", "operation", "outcome", "error_type"],
    "Profile requests completed, by operation, outcome (success, failure) and error class."
);
metric!(
    LOAD_SLOTS,
    "mcp_canary_load_slots_total",
    Counter,
    ["target", "profile", "slot"],
    "Arrival-schedule slots: issued (sent), late (sent after the lateness tolerance; part of issued), skipped (generator a whole period behind), shed (in-flight bound reached)."
);
metric!(
    LOAD_SESSIONS,
    "mcp_canary_load_sessions",
    Gauge,
    ["target", "profile"],
    "Simulated MCP sessions currently in the run's population."
);
metric!(
    LOAD_IN_FLIGHT,
    "mcp_canary_load_in_flight",
    Gauge,
    ["target", "profile"],
    "Profile requests currently awaiting an answer."
);
metric!(
    LOAD_REPLICA_REQUESTS,
    "mcp_canary_load_replica_requests_total",
    Counter,
    ["target", "profile", "replica", "outcome"],
    "Profile requests by the replica that served them (runs with --replicas, or daemon runs against a target with instances; `unknown` for a served-by header naming none) and outcome (success, failure)."
);
// Heavy profiles (notify): live delivery series during a run.
metric!(
    NOTIFY_DELIVERY_LATENCY,
    "mcp_canary_notify_delivery_latency_seconds",
    Histogram,
    ["target", "profile"],
    "Send-to-receive latency of broadcast notifications (target's wall-clock send stamp to this process's wall clock).",
    LATENCY_BUCKETS
);
metric!(
    NOTIFY_EXPECTED,
    "mcp_canary_notify_expected_total",
    Counter,
    ["target", "profile"],
    "Broadcast deliveries expected: sessions times broadcasts triggered."
);
metric!(
    NOTIFY_RECEIVED,
    "mcp_canary_notify_received_total",
    Counter,
    ["target", "profile"],
    "Distinct broadcast deliveries received, summed over sessions (duplicates excluded)."
);
metric!(
    NOTIFY_DUPLICATES,
    "mcp_canary_notify_duplicates_total",
    Counter,
    ["target", "profile"],
    "Broadcasts a session received more than once (each repeat counted)."
);
metric!(
    NOTIFY_OUT_OF_ORDER,
    "mcp_canary_notify_out_of_order_total",
    Counter,
    ["target", "profile"],
    "Broadcasts a session received after a later-triggered one."
);
metric!(
    RUN_RUNNING,
    "mcp_canary_run_running",
    Gauge,
    ["target", "profile"],
    "1 while a profile run is in progress, else 0 (for dashboard annotations)."
);
metric!(
    RUN_START,
    "mcp_canary_run_start_timestamp_seconds",
    Gauge,
    ["target", "profile"],
    "Unix time the last profile run started."
);
metric!(
    RUN_END,
    "mcp_canary_run_end_timestamp_seconds",
    Gauge,
    ["target", "profile"],
    "Unix time the last profile run ended."
);
metric!(
    RUN_LATENCY,
    "mcp_canary_run_latency_seconds",
    Gauge,
    ["target", "profile", "operation", "stat"],
    "Last run's exact latency (HdrHistogram) by operation and stat (avg, p50, p95, p99, max): from intended start for load operations (`all` for the run), send-to-receive for `notification` (notify runs)."
);
metric!(
    RUN_REQUESTS,
    "mcp_canary_run_requests",
    Gauge,
    ["target", "profile", "operation"],
    "Requests completed in the last run, by operation (`all` for the run)."
);
metric!(
    RUN_SUCCESS_RATIO,
    "mcp_canary_run_success_ratio",
    Gauge,
    ["target", "profile", "operation"],
    "Last run's successful share of requests, by operation (`all` counts shed slots as failures)."
);
metric!(
    RUN_DELIVERY_RATIO,
    "mcp_canary_run_delivery_ratio",
    Gauge,
    ["target", "profile"],
    "Last notify run's delivery ratio: distinct deliveries received / (sessions x broadcasts)."
);
metric!(
    RUN_REPLICA_REQUESTS,
    "mcp_canary_run_replica_requests",
    Gauge,
    ["target", "profile", "replica"],
    "Requests of the last load run served by each replica (runs with --replicas or against a target with instances)."
);
metric!(
    RUN_REPLICA_SESSIONS,
    "mcp_canary_run_replica_sessions",
    Gauge,
    ["target", "profile", "replica"],
    "Sessions of the last notify run whose stream each replica held (runs with --replicas or against a target with instances)."
);
metric!(
    RUN_REPLICA_DELIVERY_RATIO,
    "mcp_canary_run_replica_delivery_ratio",
    Gauge,
    ["target", "profile", "replica"],
    "Last notify run's delivery ratio to the sessions whose stream each replica held (runs with --replicas or against a target with instances)."
);
metric!(
    RUN_TARGET_MEMORY_PER_1000_SESSIONS,
    "mcp_canary_run_target_memory_per_1000_sessions_bytes",
    Gauge,
    ["target", "profile", "replica"],
    "Last load run's least-squares slope of the target's resident memory against live sessions during the ramp, per 1,000 sessions (--memory-url, memory_urls or memory_from_instances; replica `all` sums every URL)."
);
metric!(
    RUN_REDIS_MEMORY_PER_1000_SESSIONS,
    "mcp_canary_run_redis_memory_per_1000_sessions_bytes",
    Gauge,
    ["target", "profile"],
    "Last load run's least-squares slope of Redis used_memory against live sessions during the ramp, per 1,000 sessions (--redis, or the daemon target's redis)."
);
metric!(
    REDIS_ORPHANED_SESSION_KEYS,
    "mcp_canary_redis_orphaned_session_keys",
    Gauge,
    ["target", "profile"],
    "Session keys the last load run left in Redis: keys of sessions it opened, still present after it ended and held none (--redis, or the daemon target's redis)."
);
metric!(
    RUN_SESSIONS_MISSING,
    "mcp_canary_run_sessions_missing",
    Gauge,
    ["target", "profile"],
    "Sessions of the last notify run that missed at least one broadcast."
);
metric!(
    RUN_THRESHOLD_PASSED,
    "mcp_canary_run_threshold_passed",
    Gauge,
    ["target", "profile", "threshold"],
    "1 while a threshold holds (during the run) and for the last run's verdict, else 0 (a breach, or no data: zero samples never pass); threshold is the normalized expression."
);
metric!(
    RUN_PASSED,
    "mcp_canary_run_passed",
    Gauge,
    ["target", "profile"],
    "1 when every threshold of the last run passed, it was not aborted and something succeeded, else 0."
);
// Heavy profiles (longevity): memory snapshots and session churn.
metric!(
    PROFILE_MEMORY,
    "mcp_canary_profile_memory_bytes",
    Gauge,
    ["target", "profile", "process"],
    "Resident memory at the last longevity snapshot: process is `target` (its Prometheus endpoint or /proc/PID) or `daemon` (the run's own process)."
);
metric!(
    PROFILE_MEMORY_GROWTH,
    "mcp_canary_profile_memory_growth_ratio",
    Gauge,
    ["target", "profile", "process"],
    "Memory growth since the run's first snapshot, (last - first) / first (0.5 = 50 %)."
);
metric!(
    PROFILE_MEMORY_SLOPE,
    "mcp_canary_profile_memory_slope_bytes_per_second",
    Gauge,
    ["target", "profile", "process"],
    "Least-squares slope of memory over the run's sliding window (--slope-window), in bytes per second (x 3600 for bytes per hour); a leak is a sustained positive slope."
);
metric!(
    PROFILE_MEMORY_SAMPLE_ERRORS,
    "mcp_canary_profile_memory_sample_errors_total",
    Counter,
    ["target", "profile", "process", "error_type"],
    "Memory snapshots that could not be taken, by class (connect, timeout, http_4xx, http_5xx, missing_metric, invalid_response, proc, redirect)."
);
metric!(
    PROFILE_SESSIONS_ENDED,
    "mcp_canary_profile_sessions_ended_total",
    Counter,
    ["target", "profile", "end"],
    "Sessions a churning profile ended: end is `clean` (DELETE sent), `unclean` (dropped without DELETE, as a crashed client) or `sessionless` (the server kept no session: stateless, or no session id)."
);

// Heavy profiles scheduled by the daemon (`[[profiles]]`).
metric!(
    PROFILE_RUNS_STARTED,
    "mcp_canary_profile_runs_started_total",
    Counter,
    ["target", "profile"],
    "Scheduled profile runs started."
);
metric!(
    PROFILE_RUNS_COMPLETED,
    "mcp_canary_profile_runs_completed_total",
    Counter,
    ["target", "profile", "verdict"],
    "Scheduled profile runs completed, by verdict (pass, fail, cancelled: stopped by shutdown)."
);
metric!(
    PROFILE_RUNS_SKIPPED,
    "mcp_canary_profile_runs_skipped_total",
    Counter,
    ["target", "profile", "reason"],
    "Scheduled profile runs not started: overlap (its previous run still going at the fire time), target_busy (another profile's run holds the target), over_caps (runs in progress leave too little of heavy_profiles.max_sessions or max_request_rate), not_leader (another replica holds the [coordination] lease and runs it)."
);
metric!(
    COORDINATION_LEADER,
    "mcp_canary_coordination_leader",
    Gauge,
    [],
    "1 while this replica holds the [coordination] lease and runs the scheduled profiles, else 0 (only with [coordination])."
);
metric!(
    COORDINATION_LEASE_ACQUIRED,
    "mcp_canary_coordination_lease_acquired_total",
    Counter,
    [],
    "Times this replica took the [coordination] lease."
);
metric!(
    COORDINATION_LEASE_ERRORS,
    "mcp_canary_coordination_lease_errors_total",
    Counter,
    [],
    "Round trips to the lease's Redis that failed or did not answer within a third of the lease."
);
metric!(
    PROFILE_NEXT_RUN,
    "mcp_canary_profile_next_run_timestamp_seconds",
    Gauge,
    ["target", "profile"],
    "Unix time of the next scheduled fire of a profile against a target."
);
metric!(
    PROFILE_REPORT_ERRORS,
    "mcp_canary_profile_report_errors_total",
    Counter,
    ["target", "profile"],
    "Run reports that could not be written to heavy_profiles.results_dir."
);

// The Redis inspector (a target's `redis` key), one sample every `redis_interval`.
metric!(
    REDIS_UP,
    "mcp_canary_redis_up",
    Gauge,
    ["target"],
    "1 when the target's Redis answered the last sample's PING, else 0."
);
metric!(
    REDIS_PING_DURATION,
    "mcp_canary_redis_ping_duration_seconds",
    Histogram,
    ["target"],
    "Round trip of the inspector's PING to the target's Redis.",
    LATENCY_BUCKETS
);
metric!(REDIS_MEMORY_USED, "mcp_canary_redis_memory_used_bytes", Gauge, ["target"], "Redis INFO used_memory.");
metric!(REDIS_MEMORY_PEAK, "mcp_canary_redis_memory_peak_bytes", Gauge, ["target"], "Redis INFO used_memory_peak.");
metric!(
    REDIS_MEMORY_FRAGMENTATION,
    "mcp_canary_redis_memory_fragmentation_ratio",
    Gauge,
    ["target"],
    "Redis INFO mem_fragmentation_ratio (resident over used memory)."
);
metric!(
    REDIS_MEMORY_MAX,
    "mcp_canary_redis_memory_max_bytes",
    Gauge,
    ["target"],
    "Redis INFO maxmemory; 0 means no limit."
);
metric!(
    REDIS_MAXMEMORY_POLICY,
    "mcp_canary_redis_maxmemory_policy",
    Gauge,
    ["target", "policy"],
    "1 for the Redis maxmemory_policy in force (a known policy name, else `other`), 0 for a replaced one."
);
metric!(
    REDIS_CONNECTED_CLIENTS,
    "mcp_canary_redis_connected_clients",
    Gauge,
    ["target"],
    "Redis INFO connected_clients."
);
metric!(
    REDIS_EVICTED_KEYS,
    "mcp_canary_redis_evicted_keys_total",
    Counter,
    ["target"],
    "Keys Redis evicted, from the growth of INFO evicted_keys between samples (counted from the inspector's first sample)."
);
metric!(
    REDIS_EXPIRED_KEYS,
    "mcp_canary_redis_expired_keys_total",
    Counter,
    ["target"],
    "Keys Redis expired, from the growth of INFO expired_keys between samples (counted from the inspector's first sample)."
);
metric!(
    REDIS_PUBSUB_CHANNELS,
    "mcp_canary_redis_pubsub_channels",
    Gauge,
    ["target"],
    "Redis pub/sub channels with at least one subscriber (INFO pubsub_channels)."
);
metric!(
    REDIS_PUBSUB_PATTERNS,
    "mcp_canary_redis_pubsub_patterns",
    Gauge,
    ["target"],
    "Redis pub/sub pattern subscriptions (PUBSUB NUMPAT)."
);
metric!(
    REDIS_KEYS,
    "mcp_canary_redis_keys",
    Gauge,
    ["target", "pattern"],
    "Keys matching a configured pattern, counted with SCAN within redis_scan_budget (a lower bound when not exact)."
);
metric!(
    REDIS_KEYS_EXACT,
    "mcp_canary_redis_keys_exact",
    Gauge,
    ["target", "pattern"],
    "1 when the last key count scanned the whole keyspace, 0 when redis_scan_budget cut it short."
);
metric!(
    REDIS_PATTERN_CHANNELS,
    "mcp_canary_redis_pattern_channels",
    Gauge,
    ["target", "pattern"],
    "Active pub/sub channels matching a configured pattern (PUBSUB CHANNELS)."
);
metric!(
    REDIS_PATTERN_SUBSCRIBERS,
    "mcp_canary_redis_pattern_subscribers",
    Gauge,
    ["target", "pattern"],
    "PUBSUB NUMSUB summed over the channels matching a configured pattern (at most redis_scan_budget channels)."
);
metric!(
    REDIS_ERRORS,
    "mcp_canary_redis_errors_total",
    Counter,
    ["target", "error_type"],
    "Redis inspector failures by class (connect, timeout, auth, protocol, server)."
);
metric!(
    MATRIX_CELL,
    "mcp_canary_matrix_cell",
    Gauge,
    ["target", "profile", "capabilities", "response_mode", "mcp_protocol_version"],
    "Last capability-matrix result per cell: 1 works, 0.75 not exercised (a declared client capability the server never used), 0.5 degraded gracefully, 0 broken; capabilities is the declared client profile (none, roots, sampling, elicitation, all), response_mode sse or json_only."
);
metric!(
    MATRIX_CELLS,
    "mcp_canary_matrix_cells",
    Gauge,
    ["target", "profile", "result"],
    "Cells of the last capability-matrix run by result (works, not_exercised, degraded, broken)."
);
metric!(
    MATRIX_PROTOCOL_SUPPORTED,
    "mcp_canary_matrix_protocol_supported",
    Gauge,
    ["target", "profile", "mcp_protocol_version"],
    "1 when the last capability-matrix run found the target speaking this protocol version, else 0."
);

metric!(
    CHAOS_FAULT_ACTIVE,
    "mcp_canary_chaos_fault_active",
    Gauge,
    ["target", "profile", "scenario"],
    "1 while a chaos scenario's fault window is open, else 0 (for dashboard annotations); scenario is the kind as configured (proxy-latency, proxy-reset, proxy-blackhole, proxy-bandwidth, kill, redis-pause, expire-sessions, restart), suffixed -2, -3 when repeated."
);
metric!(
    CHAOS_DETECT,
    "mcp_canary_chaos_detect_seconds",
    Gauge,
    ["target", "profile", "scenario"],
    "Last chaos run: from the fault's start to the first failed or slow operation (NaN when that run did not detect the fault)."
);
metric!(
    CHAOS_RECOVERY,
    "mcp_canary_chaos_recovery_seconds",
    Gauge,
    ["target", "profile", "scenario"],
    "Last chaos run: from the fault's end to the first of a sustained run of good operations (NaN when that run did not recover)."
);
metric!(
    CHAOS_RECOVERED,
    "mcp_canary_chaos_recovered",
    Gauge,
    ["target", "profile", "scenario"],
    "Last chaos run: 1 when the scenario recovered within its recovery window, else 0."
);
metric!(
    CHAOS_FAILED_REQUESTS,
    "mcp_canary_chaos_failed_requests_total",
    Counter,
    ["target", "profile", "scenario", "error_type"],
    "Operations that failed in a chaos scenario's fault or recovery window, by error class."
);
metric!(
    CHAOS_SESSIONS_LOST,
    "mcp_canary_chaos_sessions_lost_total",
    Counter,
    ["target", "profile", "scenario"],
    "Sessions the server no longer knew (session_expired) during a chaos scenario's windows."
);
metric!(
    CHAOS_SESSIONS_REESTABLISHED,
    "mcp_canary_chaos_sessions_reestablished_total",
    Counter,
    ["target", "profile", "scenario"],
    "Lost sessions negotiated again during a chaos scenario's windows."
);
metric!(
    CHAOS_STREAMS_RECONNECTED,
    "mcp_canary_chaos_streams_reconnected_total",
    Counter,
    ["target", "profile", "scenario"],
    "Server-to-client streams reconnected (or reopened on a new session) during a chaos scenario's windows."
);
metric!(
    CHAOS_STREAMS_RESUMED,
    "mcp_canary_chaos_streams_resumed_total",
    Counter,
    ["target", "profile", "scenario"],
    "Stream reconnects that resumed with Last-Event-ID during a chaos scenario's windows."
);
metric!(
    CHAOS_NOTIFICATIONS_LOST,
    "mcp_canary_chaos_notifications_lost_total",
    Counter,
    ["target", "profile", "scenario"],
    "Broadcast deliveries lost: sessions x broadcasts triggered in a chaos scenario's windows, minus those received (counted at the end of the run)."
);

// The reference target's own /metrics (`mcp-canary target`), hand-rendered by the target.
metric!(
    TARGET_LIVE_SESSIONS,
    "mcp_canary_target_live_sessions",
    Gauge,
    [],
    "MCP sessions currently held by the reference target."
);
metric!(
    TARGET_REQUESTS,
    "mcp_canary_target_requests_total",
    Counter,
    ["method"],
    "HTTP requests to the reference target's MCP endpoint, by HTTP method."
);
metric!(
    TARGET_FAULTS_INJECTED,
    "mcp_canary_target_faults_injected_total",
    Counter,
    ["kind"],
    "Faults injected by the reference target's knobs, by kind."
);

metric!(
    TARGET_REDIS_UP,
    "mcp_canary_target_redis_up",
    Gauge,
    [],
    "Distributed mode only: 1 when the target's Redis answers commands and its pub/sub subscription is live, else 0."
);
metric!(
    TARGET_PUBSUB_MESSAGES,
    "mcp_canary_target_pubsub_messages_total",
    Counter,
    ["outcome"],
    "Distributed mode only: notification messages received over Redis pub/sub, by outcome (delivered, dropped by the pubsub_drop_rate knob)."
);
metric!(
    TARGET_UNCLEAN_SESSIONS,
    "mcp_canary_target_unclean_sessions_total",
    Counter,
    [],
    "Sessions that ended without a DELETE (idle expiry, admin expiry)."
);
metric!(
    TARGET_LEAKED_BYTES,
    "mcp_canary_target_leaked_bytes",
    Gauge,
    [],
    "Memory leaked on purpose for sessions that ended without a DELETE (knob leak_per_unclean_session_bytes)."
);

/// What the reference target exports besides `process_resident_memory_bytes`.
pub const TARGET_CATALOGUE: &[MetricDef] = &[
    TARGET_LIVE_SESSIONS,
    TARGET_REQUESTS,
    TARGET_FAULTS_INJECTED,
    TARGET_REDIS_UP,
    TARGET_PUBSUB_MESSAGES,
    TARGET_UNCLEAN_SESSIONS,
    TARGET_LEAKED_BYTES,
];

/// The answer of `/probe` (Prometheus names of blackbox_exporter; gauges only), in answer order.
pub const PROBE_ENDPOINT_CATALOGUE: &[MetricDef] = &[
    PROBE_ENDPOINT_SUCCESS,
    PROBE_ENDPOINT_DURATION,
    PROBE_ENDPOINT_STEP_DURATION,
    PROBE_ENDPOINT_ERROR,
    PROBE_ENDPOINT_NOTIFICATION_LATENCY,
    PROBE_ENDPOINT_MCP_INFO,
];

/// Everything the daemon registers itself.
pub const CATALOGUE: &[MetricDef] = &[
    OPERATION_DURATION,
    SESSION_DURATION,
    AUTH_TOKEN_EXPIRY,
    AUTH_CREDENTIAL_EXPIRY,
    AUTH_TOKEN_REQUESTS,
    PROBE_SUCCESS,
    PROBE_DURATION,
    PROBES,
    OPERATIONS,
    JSONRPC_ERRORS,
    NOTIFICATION_LATENCY,
    NOTIFICATIONS_EXPECTED,
    NOTIFICATIONS_RECEIVED,
    PROBE_OVERRUNS,
    SESSIONS_REINITIALIZED,
    STREAM_RECONNECTS,
    STREAM_RESUMPTIONS,
    STREAM_DUPLICATES,
    SERVER_INFO,
    SERVER_CAPABILITY,
    SERVER_ITEMS,
    TOOLS_SCHEMA_CHANGES,
    REPLICA_PROBE_SUCCESS,
    REPLICA_PROBES,
    REPLICA_OPERATION_DURATION,
    REPLICA_OPERATIONS,
    AFFINITY_SUCCESS,
    AFFINITY_REQUESTS,
    INSTANCE_DELIVERY_EXPECTED,
    INSTANCE_DELIVERY_RECEIVED,
    INSTANCE_DELIVERY_LATENCY,
    INSTANCE_DELIVERY_TRIGGERS,
    INSTANCE_DELIVERY_RECEIVERS_FAILED,
    TARGETS,
    BUILD_INFO,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    CONFIG_RELOADS,
    OTLP_EXPORTS,
    HTTP_CONNECTIONS_CLOSED,
    PROBE_REQUESTS,
    HTTP_REQUESTS_REFUSED,
    LOAD_REQUEST_DURATION,
    LOAD_REQUESTS,
    LOAD_SLOTS,
    LOAD_SESSIONS,
    LOAD_IN_FLIGHT,
    LOAD_REPLICA_REQUESTS,
    NOTIFY_DELIVERY_LATENCY,
    NOTIFY_EXPECTED,
    NOTIFY_RECEIVED,
    NOTIFY_DUPLICATES,
    NOTIFY_OUT_OF_ORDER,
    RUN_RUNNING,
    RUN_START,
    RUN_END,
    RUN_LATENCY,
    RUN_REQUESTS,
    RUN_SUCCESS_RATIO,
    RUN_DELIVERY_RATIO,
    RUN_REPLICA_REQUESTS,
    RUN_REPLICA_SESSIONS,
    RUN_REPLICA_DELIVERY_RATIO,
    RUN_SESSIONS_MISSING,
    RUN_TARGET_MEMORY_PER_1000_SESSIONS,
    RUN_REDIS_MEMORY_PER_1000_SESSIONS,
    REDIS_ORPHANED_SESSION_KEYS,
    RUN_THRESHOLD_PASSED,
    RUN_PASSED,
    PROFILE_RUNS_STARTED,
    PROFILE_RUNS_COMPLETED,
    PROFILE_RUNS_SKIPPED,
    COORDINATION_LEADER,
    COORDINATION_LEASE_ACQUIRED,
    COORDINATION_LEASE_ERRORS,
    PROFILE_NEXT_RUN,
    PROFILE_REPORT_ERRORS,
    PROFILE_MEMORY,
    PROFILE_MEMORY_GROWTH,
    PROFILE_MEMORY_SLOPE,
    PROFILE_MEMORY_SAMPLE_ERRORS,
    PROFILE_SESSIONS_ENDED,
    REDIS_UP,
    REDIS_PING_DURATION,
    REDIS_MEMORY_USED,
    REDIS_MEMORY_PEAK,
    REDIS_MEMORY_FRAGMENTATION,
    REDIS_MEMORY_MAX,
    REDIS_MAXMEMORY_POLICY,
    REDIS_CONNECTED_CLIENTS,
    REDIS_EVICTED_KEYS,
    REDIS_EXPIRED_KEYS,
    REDIS_PUBSUB_CHANNELS,
    REDIS_PUBSUB_PATTERNS,
    REDIS_KEYS,
    REDIS_KEYS_EXACT,
    REDIS_PATTERN_CHANNELS,
    REDIS_PATTERN_SUBSCRIBERS,
    REDIS_ERRORS,
    MATRIX_CELL,
    MATRIX_CELLS,
    MATRIX_PROTOCOL_SUPPORTED,
    CHAOS_FAULT_ACTIVE,
    CHAOS_DETECT,
    CHAOS_RECOVERY,
    CHAOS_RECOVERED,
    CHAOS_FAILED_REQUESTS,
    CHAOS_SESSIONS_LOST,
    CHAOS_SESSIONS_REESTABLISHED,
    CHAOS_STREAMS_RECONNECTED,
    CHAOS_STREAMS_RESUMED,
    CHAOS_NOTIFICATIONS_LOST,
];

/// The catalogue entry for a Prometheus name.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|d| d.name == name)
}

/// OTLP attribute key of a label: the semantic-convention name where one exists.
pub fn otel_attribute(label: &str) -> &str {
    match label {
        "mcp_method_name" => "mcp.method.name",
        "gen_ai_tool_name" => "gen_ai.tool.name",
        "error_type" => "error.type",
        "mcp_protocol_version" => "mcp.protocol.version",
        "rpc_response_status_code" => "rpc.response.status_code",
        other => other,
    }
}

/// Process metrics exported for the daemon itself by the metrics-process collector.
pub const PROCESS_METRICS: &[&str] = &[
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in CATALOGUE.iter().chain(TARGET_CATALOGUE) {
            assert!(seen.insert(m.name), "duplicate {}", m.name);
            assert!(m.name.starts_with("mcp_canary_") || m.name.starts_with("mcp_client_"), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Kind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                Kind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            assert_eq!(m.kind == Kind::Histogram, !m.buckets.is_empty(), "{}", m.name);
            let daemon_wide = [
                BUILD_INFO.name,
                TARGETS.name,
                OTLP_EXPORTS.name,
                HTTP_CONNECTIONS_CLOSED.name,
                HTTP_REQUESTS_REFUSED.name,
                PROBE_REQUESTS.name,
            ]
            .contains(&m.name)
                || m.name.starts_with("mcp_canary_config_")
                || m.name.starts_with("mcp_canary_coordination_");
            if !daemon_wide && !m.name.starts_with("mcp_canary_target_") {
                assert_eq!(m.labels.first(), Some(&"target"), "{} must carry target", m.name);
            }
        }
    }

    /// The /probe answer: blackbox's `probe_` names, gauges without `target` (the scrape's
    /// relabelling names the target), none of them in the global registry.
    #[test]
    fn probe_endpoint_names_are_blackbox_style_gauges() {
        for m in PROBE_ENDPOINT_CATALOGUE {
            assert!(m.name.starts_with("probe_") && m.kind == Kind::Gauge, "{}", m.name);
            assert!(!m.name.ends_with("_total") && !m.labels.contains(&"target"), "{}", m.name);
            assert!(CATALOGUE.iter().chain(TARGET_CATALOGUE).all(|d| d.name != m.name), "{}", m.name);
        }
    }

    #[test]
    fn latency_buckets_hold_slo_thresholds() {
        for slo in [0.05, 0.1, 0.2, 0.5] {
            assert!(LATENCY_BUCKETS.contains(&slo), "{slo}");
        }
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
