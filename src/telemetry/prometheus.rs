//! The global recorder: Prometheus (explicit buckets from the catalogue, process metrics on
//! scrape) and, when configured, OTLP behind one fan-out, so every call site records once. Info
//! families bypass the Prometheus registry (see [`super::info`]) so they keep one series per target.
//! Histograms live in a registry of their own and are kept as native histograms too (see
//! [`super::native`]): the text exposition is both registries' text, the same lines as one
//! registry's; the protobuf one (for a scraper that asks) is the scalars plus native histograms.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::layers::FanoutBuilder;

use super::catalogue::{CATALOGUE, Kind};
use super::info::{InfoRecorder, InfoStore};
use super::native::{NativeStore, catalogue_buckets};
use super::otlp::Otlp;
use crate::config::OtlpConfig;

/// Rendering handle for `/metrics`, the process collector refreshed on every scrape, and the
/// OTLP pipelines when export is on.
#[derive(Clone)]
pub struct Exporter {
    /// Counters and gauges.
    handle: PrometheusHandle,
    /// Classic histograms (the catalogue's buckets).
    histograms: PrometheusHandle,
    native: Arc<NativeStore>,
    /// Bytes of the last text exposition (the next one's buffer is sized from it).
    last_size: Arc<std::sync::atomic::AtomicUsize>,
    info: Arc<InfoStore>,
    process: Arc<metrics_process::Collector>,
    otlp: Option<Arc<Otlp>>,
    /// Targets removed by a reload: their series are left out of every scrape.
    retired: Arc<RwLock<BTreeSet<String>>>,
}

impl Exporter {
    /// Install the global recorder. Call once per process, inside the Tokio runtime.
    pub fn install(otlp: Option<&OtlpConfig>) -> anyhow::Result<Self> {
        let prometheus = Split::new()?;
        let (handle, histograms, native) =
            (prometheus.scalars.handle(), prometheus.histograms.handle(), Arc::clone(&prometheus.native));
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
        Ok(Self {
            handle,
            histograms,
            native,
            last_size: Default::default(),
            info,
            process: Arc::new(process),
            otlp,
            retired: Default::default(),
        })
    }

    /// An exporter and the recorder that feeds it, not installed globally: record through
    /// `metrics::with_local_recorder` (tests).
    #[cfg(test)]
    pub(crate) fn unregistered() -> (Self, impl Recorder) {
        let split = Split::new().expect("the catalogue's buckets");
        let exporter = Self {
            handle: split.scalars.handle(),
            histograms: split.histograms.handle(),
            native: Arc::clone(&split.native),
            last_size: Default::default(),
            info: Default::default(),
            process: Arc::new(metrics_process::Collector::default()),
            otlp: None,
            retired: Default::default(),
        };
        (exporter, split)
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

    /// Prometheus text exposition of every series (but a retired target's), in one string: the
    /// chunks of [`Self::render_chunks`] joined.
    pub fn render(&self) -> String {
        let expected = self.last_size.load(std::sync::atomic::Ordering::Relaxed);
        let mut text = String::with_capacity(expected + expected / 16);
        self.render_chunks(TEXT_CHUNK, |chunk| {
            text.push_str(&chunk);
            true
        });
        self.last_size.store(text.len(), std::sync::atomic::Ordering::Relaxed);
        text
    }

    /// The text exposition of [`Self::render`], byte for byte, handed to `emit` in pieces of
    /// whole lines: the counters and gauges as the exporter renders them (one piece), the
    /// catalogue's histograms in pieces of about `chunk` bytes, then any other histogram and
    /// the info families. `/metrics` streams them, so a fleet's 30 MB of classic buckets is
    /// never in memory at once. Stops when `emit` returns false (the scraper is gone).
    pub fn render_chunks(&self, chunk: usize, mut emit: impl FnMut(String) -> bool) {
        self.process.collect();
        // A copy: a slow scraper must not hold off a reload's retire_target.
        let retired = self.retired.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut filtered = |text: String| {
            let text = if retired.is_empty() { text } else { without_targets(&text, &retired) };
            text.is_empty() || emit(text)
        };
        let sent = filtered(self.handle.render())
            && self.native.render_text_chunks(chunk, &mut filtered)
            && filtered(self.histograms.render());
        // Info series of a retired target are gone already.
        let info = self.info.render();
        if sent && !info.is_empty() {
            emit(info);
        }
    }

    /// Delimited protobuf exposition (see [`super::protobuf`]): the counters and gauges of
    /// [`Self::render`] (retired targets left out, info families included) and every catalogue
    /// histogram as a native histogram; the classic buckets are not rendered at all.
    pub fn render_protobuf(&self) -> Vec<u8> {
        self.process.collect();
        let mut text = self.handle.render();
        text.push_str(&self.histograms.render());
        let retired = self.retired.read().unwrap_or_else(PoisonError::into_inner);
        if !retired.is_empty() {
            text = without_targets(&text, &retired);
        }
        text.push_str(&self.info.render());
        super::protobuf::encode(&text, &self.native, &retired)
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
        self.histograms.run_upkeep();
        if self.otlp.is_some() {
            self.process.collect();
        }
    }
}

/// The text exposition's pieces are about this size (see [`Exporter::render_chunks`]).
pub const TEXT_CHUNK: usize = 256 * 1024;

/// The text of the counters and gauges, then of the histograms, as one registry renders them.
#[cfg(test)]
fn exposition(scalars: &PrometheusHandle, histograms: &PrometheusHandle, native: &NativeStore) -> String {
    let mut text = scalars.render();
    native.render_text(&mut text);
    text.push_str(&histograms.render());
    text
}

/// The Prometheus recorder: counters and gauges in the exporter's registry, the catalogue's
/// histograms in the [`NativeStore`] (classic buckets and native), any other histogram in a
/// registry of its own (none exists: every metric is in the catalogue).
struct Split {
    scalars: PrometheusRecorder,
    histograms: PrometheusRecorder,
    native: Arc<NativeStore>,
}

impl Split {
    fn new() -> anyhow::Result<Self> {
        let mut builder = PrometheusBuilder::new();
        for def in CATALOGUE.iter().filter(|d| d.kind == Kind::Histogram) {
            builder = builder.set_buckets_for_metric(Matcher::Full(def.name.to_string()), def.buckets)?;
        }
        Ok(Self {
            scalars: PrometheusBuilder::new().build_recorder(),
            histograms: builder.build_recorder(),
            native: Arc::default(),
        })
    }
}

impl Recorder for Split {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.scalars.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.scalars.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.histograms.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.scalars.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.scalars.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match catalogue_buckets(key.name()) {
            Some(bounds) => Histogram::from_arc(self.native.series(key, bounds)),
            None => self.histograms.register_histogram(key, metadata),
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

    /// Record the same counters, gauges and histograms (catalogue names and an unknown one).
    fn record_some() {
        use super::super::catalogue as m;
        for t in ["a", "b\"c"] {
            for (method, v) in [("tools/call", 0.004), ("tools/call", 0.07), ("prompts/get", 0.3)] {
                metrics::histogram!(m::OPERATION_DURATION.name, "target" => t, "mcp_method_name" => method).record(v);
            }
            metrics::counter!(m::PROBES.name, "target" => t, "outcome" => "success").increment(2);
            metrics::gauge!(m::PROBE_SUCCESS.name, "target" => t).set(1.0);
            metrics::histogram!(m::PROBE_DURATION.name, "target" => t).record(0.02);
        }
        metrics::histogram!("not_in_the_catalogue_seconds").record(1.5);
    }

    fn sorted_lines(text: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines
    }

    /// A scraper that does not ask for protobuf gets what one registry with the catalogue's
    /// buckets renders: the same lines (families come in hash order either way).
    #[test]
    fn text_exposition_is_one_registrys() {
        let split = Split::new().unwrap();
        let (scalars, histograms) = (split.scalars.handle(), split.histograms.handle());
        let mut builder = PrometheusBuilder::new();
        for def in CATALOGUE.iter().filter(|d| d.kind == Kind::Histogram) {
            builder = builder.set_buckets_for_metric(Matcher::Full(def.name.to_string()), def.buckets).unwrap();
        }
        let one = builder.build_recorder();
        let reference = one.handle();
        for recorder in [&split as &dyn Recorder, &one] {
            metrics::with_local_recorder(recorder, || {
                super::super::describe_all();
                record_some();
            });
        }
        let text = exposition(&scalars, &histograms, &split.native);
        assert!(text.contains("mcp_client_operation_duration_seconds_bucket{target=\"a\",mcp_method_name=\"tools/call\",le=\"0.1\"} 2\n"), "{text}");
        assert_eq!(sorted_lines(&text), sorted_lines(&reference.render()));
        // And every histogram series is in the native store too.
        let native = split.native.snapshot();
        assert_eq!(native["mcp_client_operation_duration_seconds"].len(), 4);
        assert_eq!(native["mcp_client_operation_duration_seconds"][0].1.count, 1);
        assert!(!native.contains_key("not_in_the_catalogue_seconds"), "kept by the exporter");
        assert!(text.contains("not_in_the_catalogue_seconds{quantile=\"0.5\"} 1.5"), "{text}");
    }

    /// The pieces `/metrics` streams are whole lines and join into the one-buffer text, at any
    /// piece size, with retired targets left out alike; a scraper gone stops the rendering. The
    /// histograms' text (ours) is byte for byte the same; the exporter's counters and gauges
    /// come in hash order, which may differ between two renders, so those compare as lines.
    #[test]
    fn chunked_text_is_the_one_buffer_text() {
        let (exporter, recorder) = Exporter::unregistered();
        metrics::with_local_recorder(&recorder, || {
            super::super::describe_all();
            record_some();
        });
        let mut histograms = String::new();
        exporter.native.render_text(&mut histograms);
        let one = exposition(&exporter.handle, &exporter.histograms, &exporter.native);
        assert!(one.contains(&histograms) && histograms.contains("_bucket{"), "{one}");
        for chunk in [1, 200, TEXT_CHUNK] {
            let mut pieces = Vec::new();
            assert!(exporter.native.render_text_chunks(chunk, |piece| {
                pieces.push(piece);
                true
            }));
            assert_eq!(pieces.concat(), histograms, "pieces of {chunk} bytes");
            if chunk == 1 {
                assert!(pieces.len() >= 6, "one piece per histogram series: {}", pieces.len());
            }
            let mut pieces = Vec::new();
            exporter.render_chunks(chunk, |piece| {
                pieces.push(piece);
                true
            });
            assert!(pieces.iter().all(|p| p.ends_with('\n')), "{pieces:?}");
            let text = pieces.concat();
            assert!(text.contains(&histograms));
            assert_eq!(sorted_lines(&text), sorted_lines(&one), "pieces of {chunk} bytes");
        }
        assert_eq!(sorted_lines(&exporter.render()), sorted_lines(&one));

        exporter.retire_target("a");
        let retired = BTreeSet::from(["a".to_string()]);
        let mut text = String::new();
        exporter.render_chunks(1, |piece| {
            text.push_str(&piece);
            true
        });
        assert_eq!(sorted_lines(&text), sorted_lines(&without_targets(&one, &retired)));
        assert!(!text.contains("target=\"a\"") && text.contains("target=\"b\\\"c\""), "{text}");

        let mut asked = 0;
        exporter.render_chunks(1, |_| {
            asked += 1;
            false
        });
        assert_eq!(asked, 1, "nothing rendered after the scraper left");
    }

    #[test]
    fn retired_targets_samples_are_left_out() {
        let text = "# HELP up x\n# TYPE up gauge\nup{target=\"a\"} 1\nup{target=\"ab\"} 1\n\
                    up{x=\"1\",target=\"a\"} 0\nbuild 1\nm_bucket{target=\"b\",le=\"0.1\"} 3\n";
        let retired = BTreeSet::from(["a".to_string(), "b".to_string()]);
        assert_eq!(without_targets(text, &retired), "# HELP up x\n# TYPE up gauge\nup{target=\"ab\"} 1\nbuild 1\n");
    }
}
