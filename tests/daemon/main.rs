//! The daemon (`serve`) and the one-process commands (`check`, `demo`): probes, scheduled
//! profiles, replicas, fault classification, OTLP export, shutdown and the metric catalogue.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/oidc.rs"]
mod oidc;
#[path = "../alerting/promql.rs"]
mod promql;
#[path = "../common/tls.rs"]
mod tls;
#[path = "../common/topology.rs"]
mod topology;

mod check_cli;
mod daemon_chaos;
mod daemon_connections;
mod daemon_everything;
mod daemon_ha;
mod daemon_instances;
mod daemon_longevity;
mod daemon_notification_missed;
mod daemon_oauth;
mod daemon_profiles;
mod daemon_reference;
mod daemon_reload;
mod daemon_tls;
mod demo;
mod fault_classification;
mod metrics_doc;
mod otlp_export;
mod probe_endpoint;
mod shutdown;
