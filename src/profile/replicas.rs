//! Which replica of a balanced target served a profile's requests and held its streams, from a
//! served-by response header, with names bounded by the caller (`--replicas`): an imbalance in the
//! balancer shows in the run's per-replica counts.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};

use super::stats::RequestResult;
use crate::config::UNKNOWN_REPLICA;
use crate::mcp::McpClient;

/// The served-by header and the replica names allowed as labels.
#[derive(Debug, Clone)]
pub struct ReplicaTagging {
    pub header: HeaderName,
    pub names: Vec<String>,
}

impl ReplicaTagging {
    /// Make `client` keep the served-by header of its responses.
    pub fn watch(&self, client: &McpClient) {
        client.capture_response_headers(vec![self.header.clone()]);
    }

    /// The replica named by the client's latest response: a known name, else `unknown`. With
    /// overlapping requests on one session this is whichever answered last.
    pub fn served_by(&self, client: &McpClient) -> String {
        let headers = client.last_response_headers();
        let value = headers.get(&self.header).and_then(|v| v.to_str().ok());
        value.and_then(|v| self.names.iter().find(|n| *n == v)).cloned().unwrap_or_else(|| UNKNOWN_REPLICA.into())
    }

    /// The replica that answered a request that ended with `result`: `unknown` when no response
    /// came back (connect, timeout, TLS, reset, cancelled), else as `served_by`.
    pub fn answered_by(&self, client: &McpClient, result: RequestResult) -> String {
        use crate::mcp::ErrorType::*;
        match result {
            RequestResult::Failed(Connect | Timeout | Tls | Reset | Cancelled) => UNKNOWN_REPLICA.into(),
            _ => self.served_by(client),
        }
    }
}

/// Requests one replica served in a load run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplicaRequests {
    pub requests: u64,
    pub failures: u64,
}

/// Per-replica request counts of a run.
#[derive(Debug, Default)]
pub struct ReplicaCounts(Mutex<BTreeMap<String, ReplicaRequests>>);

impl ReplicaCounts {
    pub fn record(&self, replica: &str, result: RequestResult) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(replica.to_string()).or_default();
        entry.requests += 1;
        entry.failures += u64::from(matches!(result, RequestResult::Failed(_)));
    }

    pub fn snapshot(&self) -> BTreeMap<String, ReplicaRequests> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Deliveries to the sessions whose stream one replica held in a notify run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReplicaDelivery {
    /// Sessions whose stream this replica held.
    pub sessions: u64,
    /// Those sessions times broadcasts.
    pub expected: u64,
    pub received: u64,
    /// received / expected (1 when nothing was expected).
    pub delivery_ratio: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_failures_per_replica() {
        let c = ReplicaCounts::default();
        c.record("a", RequestResult::Success);
        c.record("a", RequestResult::Failed(crate::mcp::ErrorType::Timeout));
        c.record("unknown", RequestResult::Success);
        let s = c.snapshot();
        assert_eq!(s["a"], ReplicaRequests { requests: 2, failures: 1 });
        assert_eq!(s["unknown"].requests, 1);
    }
}
