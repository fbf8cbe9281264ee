//! The Prometheus recorder: explicit buckets from the catalogue, process metrics on scrape.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::catalogue::{CATALOGUE, Kind};

/// Rendering handle for `/metrics`, plus the process collector refreshed on every scrape.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    process: std::sync::Arc<metrics_process::Collector>,
}

impl Exporter {
    /// Install the global recorder. Call once per process.
    pub fn install() -> anyhow::Result<Self> {
        let mut builder = PrometheusBuilder::new();
        for def in CATALOGUE.iter().filter(|d| d.kind == Kind::Histogram) {
            builder = builder.set_buckets_for_metric(Matcher::Full(def.name.to_string()), def.buckets)?;
        }
        let handle = builder.install_recorder()?;
        super::describe_all();
        let process = metrics_process::Collector::default();
        process.describe();
        Ok(Self { handle, process: std::sync::Arc::new(process) })
    }

    /// Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.render()
    }

    /// Drain histogram buffers; run periodically so memory stays bounded between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}
