//! Prometheus rules, Alertmanager routes and Grafana dashboards against the real promtool,
//! Prometheus and Alertmanager, and the Redis inspector whose metrics they use.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/oidc.rs"]
mod oidc;
mod promql;
mod stack;
#[path = "../common/tls.rs"]
mod tls;
#[path = "../common/topology.rs"]
mod topology;

mod alert_rules;
mod alerting_end_to_end;
mod dashboards_fleet;
mod dashboards_layout;
mod dashboards_profiles;
mod dashboards_replicas;
mod deploy_ci;
mod deploy_manifests;
mod native_histograms;
mod probe_prometheus;
mod prometheus_config;
mod prometheus_tls;
mod redis_inspector;
