//! The global recorder: Prometheus (explicit buckets from the catalogue, process metrics on
//! scrape) and, when configured, OTLP behind one fan-out, so every call site records once. Info
//! families bypass the Prometheus registry (see [`super::info`]) so they keep one series per target.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

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
    /// Targets removed by a reload: their series are left out of every scrape.
    retired: Arc<RwLock<BTreeSet<String>>>,
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
        Ok(Self { handle, info, process: Arc::new(process), otlp, retired: Default::default() })
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

    /// Prometheus text exposition of every series (but a retired target's).
    pub fn render(&self) -> String {
        self.process.collect();
        let mut text = self.handle.render();
        let retired = self.retired.read().unwrap_or_else(PoisonError::into_inner);
        if !retired.is_empty() {
            text = without_targets(&text, &retired);
        }
        text.push_str(&self.info.render());
        text
    }

    /// Leave `target`'s series out of every scrape from now on (a reload removed it). The
    /// Prometheus recorder cannot delete a series, so they stay in memory, unchanging, until the
    /// target comes back or the daemon restarts; info series are dropped for real.
    pub fn retire_target(&self, target: &str) {
        self.retired.write().unwrap_or_else(PoisonError::into_inner).insert(target.to_string());
        self.info.remove_target(target);
    }

    /// Show `target`'s series again (a reload added it back under the same name).
    pub fn revive_target(&self, target: &str) {
        self.retired.write().unwrap_or_else(PoisonError::into_inner).remove(target);
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

/// `text` without the sample lines whose `target` label is one of `retired` (target names are
/// `[A-Za-z0-9._-]`, so the label needs no unescaping).
fn without_targets(text: &str, retired: &BTreeSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let labels = line.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(labels, _)| labels);
        let retired_sample = !line.starts_with('#')
            && labels.is_some_and(|labels| {
                labels
                    .split(',')
                    .filter_map(|l| l.strip_prefix("target=\"")?.strip_suffix('"'))
                    .any(|t| retired.contains(t))
            });
        if !retired_sample {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_targets_samples_are_left_out() {
        let text = "# HELP up x\n# TYPE up gauge\nup{target=\"a\"} 1\nup{target=\"ab\"} 1\n\
                    up{x=\"1\",target=\"a\"} 0\nbuild 1\nm_bucket{target=\"b\",le=\"0.1\"} 3\n";
        let retired = BTreeSet::from(["a".to_string(), "b".to_string()]);
        assert_eq!(without_targets(text, &retired), "# HELP up x\n# TYPE up gauge\nup{target=\"ab\"} 1\nbuild 1\n");
    }
}
