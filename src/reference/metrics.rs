//! The target's own `/metrics`, hand-formatted in the Prometheus text format.
//!
//! The target never installs a global `metrics` recorder: in `demo` the daemon and the target
//! share one process and the daemon owns the global recorder.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::http::Method;

use crate::telemetry::catalogue::{self, MetricDef};

pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const LIVE_SESSIONS: &str = catalogue::TARGET_LIVE_SESSIONS.name;
pub const REQUESTS_TOTAL: &str = catalogue::TARGET_REQUESTS.name;
pub const FAULTS_INJECTED_TOTAL: &str = catalogue::TARGET_FAULTS_INJECTED.name;

/// HTTP method of an MCP request (closed label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMethod {
    Post,
    Get,
    Delete,
    Other,
}

impl RequestMethod {
    pub const ALL: [RequestMethod; 4] = [Self::Post, Self::Get, Self::Delete, Self::Other];

    pub fn from_http(method: &Method) -> Self {
        match *method {
            Method::POST => Self::Post,
            Method::GET => Self::Get,
            Method::DELETE => Self::Delete,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
            Self::Delete => "DELETE",
            Self::Other => "other",
        }
    }
}

/// Kind of injected fault (closed label set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `error_rate`: an HTML 500.
    HttpError,
    /// `latency_ms`: a delayed request.
    Latency,
    /// `stall`: a request held until the knob is cleared.
    Stall,
    /// `tool_error`: `echo` answered `isError`.
    ToolError,
    /// `notify_drop_rate`: a broadcast delivery to one session dropped.
    NotifyDrop,
    /// `echo_jsonrpc_error`: `echo` answered with a JSON-RPC error.
    JsonrpcError,
}

impl Fault {
    pub const ALL: [Fault; 6] =
        [Self::HttpError, Self::Latency, Self::Stall, Self::ToolError, Self::NotifyDrop, Self::JsonrpcError];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpError => "http_error",
            Self::Latency => "latency",
            Self::Stall => "stall",
            Self::ToolError => "tool_error",
            Self::NotifyDrop => "notify_drop",
            Self::JsonrpcError => "jsonrpc_error",
        }
    }
}

/// Gauges read when `/metrics` is rendered.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub live_sessions: usize,
    pub resident_memory: Option<u64>,
    /// `None` without `--redis`.
    pub redis_up: Option<bool>,
    pub leaked_bytes: u64,
}

/// Counters of the target.
#[derive(Debug, Default)]
pub struct TargetMetrics {
    requests: [AtomicU64; 4],
    faults: [AtomicU64; Fault::ALL.len()],
    /// Pub/sub notify deliveries: [delivered, dropped].
    pubsub: [AtomicU64; 2],
    unclean_sessions: AtomicU64,
}

impl TargetMetrics {
    pub fn count_request(&self, method: RequestMethod) {
        self.requests[method as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_fault(&self, fault: Fault) {
        self.faults[fault as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A pub/sub notify message received: delivered to local streams, or dropped by the knob.
    pub fn count_pubsub(&self, delivered: bool) {
        self.pubsub[usize::from(!delivered)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_unclean_session(&self) {
        self.unclean_sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, method: RequestMethod) -> u64 {
        self.requests[method as usize].load(Ordering::Relaxed)
    }

    pub fn faults(&self, fault: Fault) -> u64 {
        self.faults[fault as usize].load(Ordering::Relaxed)
    }

    /// Render the exposition text.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut out = String::with_capacity(1024);
        let live_sessions = snapshot.live_sessions;
        if let Some(bytes) = snapshot.resident_memory {
            header(&mut out, RESIDENT_MEMORY, "Resident memory size in bytes.", "gauge");
            let _ = writeln!(out, "{RESIDENT_MEMORY} {bytes}");
        }
        describe(&mut out, &catalogue::TARGET_LIVE_SESSIONS);
        let _ = writeln!(out, "{LIVE_SESSIONS} {live_sessions}");
        describe(&mut out, &catalogue::TARGET_REQUESTS);
        for method in RequestMethod::ALL {
            let _ = writeln!(out, "{REQUESTS_TOTAL}{{method=\"{}\"}} {}", method.as_str(), self.requests(method));
        }
        describe(&mut out, &catalogue::TARGET_FAULTS_INJECTED);
        for fault in Fault::ALL {
            let _ = writeln!(out, "{FAULTS_INJECTED_TOTAL}{{kind=\"{}\"}} {}", fault.as_str(), self.faults(fault));
        }
        if let Some(up) = snapshot.redis_up {
            describe(&mut out, &catalogue::TARGET_REDIS_UP);
            let _ = writeln!(out, "{} {}", catalogue::TARGET_REDIS_UP.name, u8::from(up));
            describe(&mut out, &catalogue::TARGET_PUBSUB_MESSAGES);
            for (i, outcome) in ["delivered", "dropped"].into_iter().enumerate() {
                let n = self.pubsub[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "{}{{outcome=\"{outcome}\"}} {n}", catalogue::TARGET_PUBSUB_MESSAGES.name);
            }
        }
        describe(&mut out, &catalogue::TARGET_UNCLEAN_SESSIONS);
        let _ = writeln!(
            out,
            "{} {}",
            catalogue::TARGET_UNCLEAN_SESSIONS.name,
            self.unclean_sessions.load(Ordering::Relaxed)
        );
        describe(&mut out, &catalogue::TARGET_LEAKED_BYTES);
        let _ = writeln!(out, "{} {}", catalogue::TARGET_LEAKED_BYTES.name, snapshot.leaked_bytes);
        out
    }
}

fn describe(out: &mut String, def: &MetricDef) {
    let kind = match def.kind {
        catalogue::Kind::Counter => "counter",
        catalogue::Kind::Gauge => "gauge",
        catalogue::Kind::Histogram => "histogram",
    };
    header(out, def.name, def.help, kind);
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Resident memory of this process, without touching any global recorder.
pub fn resident_memory_bytes() -> Option<u64> {
    metrics_process::collector::collect().resident_memory_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let metrics = TargetMetrics::default();
        metrics.count_request(RequestMethod::Post);
        metrics.count_request(RequestMethod::Post);
        metrics.count_fault(Fault::Stall);
        metrics.count_pubsub(false);
        let text = metrics.render(&Snapshot {
            live_sessions: 3,
            resident_memory: Some(4096),
            redis_up: Some(true),
            leaked_bytes: 7,
        });
        assert!(text.contains("mcp_canary_target_redis_up 1\n"), "{text}");
        assert!(text.contains("mcp_canary_target_pubsub_messages_total{outcome=\"dropped\"} 1\n"), "{text}");
        assert!(text.contains("mcp_canary_target_leaked_bytes 7\n"), "{text}");
        assert!(text.contains("process_resident_memory_bytes 4096\n"), "{text}");
        assert!(text.contains("mcp_canary_target_live_sessions 3\n"), "{text}");
        assert!(text.contains("mcp_canary_target_requests_total{method=\"POST\"} 2\n"), "{text}");
        assert!(text.contains("mcp_canary_target_faults_injected_total{kind=\"stall\"} 1\n"), "{text}");
        assert!(text.contains("mcp_canary_target_faults_injected_total{kind=\"latency\"} 0\n"), "{text}");
    }

    #[test]
    fn resident_memory_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|b| b > 0));
        }
    }
}
