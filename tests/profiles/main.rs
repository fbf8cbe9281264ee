//! The heavy profiles run one-shot (`run load|notify|matrix|longevity|chaos`): their engines,
//! thresholds, verdicts, memory per session and per-replica figures.

#[path = "../common/client_support.rs"]
mod client_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../alerting/promql.rs"]
mod promql;
#[path = "../common/topology.rs"]
mod topology;

mod chaos_profile;
mod load_coordinated_omission;
mod load_profile;
mod load_thresholds;
mod longevity_profile;
mod matrix_profile;
mod memory_per_session;
mod notify_profile;
mod notify_ramp;
mod profile_replicas;
mod report_html;
mod report_junit;
mod report_schema;
mod verdicts;
