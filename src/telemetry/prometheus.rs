//! The global recorder: Prometheus (explicit buckets from the catalogue, process metrics on
//! scrape) and, when configured, OTLP behind one fan-out, so every call site records once. Info
//! families bypass the Prometheus registry (see [`super::info`]) so they keep one series per target.

use std::sync::Arc;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::FanoutBuilder;

use super::catalogue::{CATALOGUE, Kind};
use super::info::{InfoRecorder, InfoStore};
use super::otlp::Otlp;
use crate::config::OtlpConfig;

/// Rendering handle for `/metrics`, the process collector refreshed on every scrape, and the
/// OTLP pipelines when export is on.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    info: Arc<InfoStore>,
    process: Arc<metrics_process::Collector>,
    otlp: Option<Arc<Otlp>>,
}

impl Exporter {
    /// Install the global recorder. Call once per process, inside the Tokio runtime.
    pub fn install(otlp: Option<&OtlpConfig>) -> anyhow::Result<Self> {
        let mut builder = PrometheusBuilder::new();
        for def in CATALOGUE.iter().filter(|d| d.kind == Kind::Histogram) {
            builder = builder.set_buckets_for_metric(Matcher::Full(def.name.to_string()), def.buckets)?;
        }
        let prometheus = builder.build_recorder();
        let handle = prometheus.handle();
        let info = Arc::new(InfoStore::default());
        let otlp = match otlp {
            Some(config) => {
                let (otlp, bridge) = Otlp::build(config, Arc::clone(&info))?;
                let fanout = FanoutBuilder::default().add_recorder(prometheus).add_recorder(bridge).build();
                metrics::set_global_recorder(InfoRecorder::new(fanout, Arc::clone(&info)))
                    .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;
                super::spans::install(otlp.tracer_provider());
                tracing::info!(metrics_endpoint = %config.metrics_endpoint, traces_endpoint = %config.traces_endpoint, protocol = ?config.protocol, "OTLP export on");
                Some(Arc::new(otlp))
            }
            None => {
                metrics::set_global_recorder(InfoRecorder::new(prometheus, Arc::clone(&info)))?;
                None
            }
        };
        super::describe_all();
        let process = metrics_process::Collector::default();
        process.describe();
        Ok(Self { handle, info, process: Arc::new(process), otlp })
    }

    /// Flush and stop OTLP export (shutdown path), waiting at most `within` so an unreachable
    /// collector cannot hold the exit; a no-op without OTLP.
    pub async fn shutdown(&self, within: std::time::Duration) {
        if let Some(otlp) = self.otlp.clone() {
            let flush = tokio::task::spawn_blocking(move || otlp.shutdown());
            if tokio::time::timeout(within, flush).await.is_err() {
                tracing::warn!("OTLP flush did not finish in time; pending metrics and spans dropped");
            }
        }
    }

    /// Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.process.collect();
        let mut text = self.handle.render();
        text.push_str(&self.info.render());
        text
    }

    /// Drain histogram buffers; run periodically so memory stays bounded between scrapes. With
    /// OTLP on, also refresh the process metrics, which otherwise update only on a scrape.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
        if self.otlp.is_some() {
            self.process.collect();
        }
    }
}
