//! Info metrics keep one live series per target. The Prometheus recorder cannot delete a series,
//! so a server whose identity changes every connect would add a series per cycle, never removed.
//! [`InfoRecorder`] wraps the Prometheus recorder and keeps the families listed in [`INFO`] out
//! of its registry: each is held here, keyed by `(metric, target)`, and every `set` replaces the
//! target's series (old label set gone from the next scrape). [`InfoStore::render`] appends them
//! to the exposition; with OTLP on, the bridge exports them as observable gauges, so only the live
//! series are sent there too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::formatting::{sanitize_label_value, write_help_line, write_type_line};

use super::catalogue::{self as m, MetricDef};

/// The info families: at most one series per target, the last one set.
pub const INFO: [&MetricDef; 1] = [&m::SERVER_INFO];

/// One series: its labels (in call order) and value.
type Series = (Vec<(String, String)>, f64);

/// Live series of the info families.
#[derive(Debug, Default)]
pub struct InfoStore {
    series: Mutex<BTreeMap<(&'static str, String), Series>>,
}

impl InfoStore {
    fn set(&self, name: &'static str, key: &Key, value: f64) {
        let labels: Vec<(String, String)> =
            key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
        let target = labels.iter().find(|(k, _)| k == "target").map(|(_, v)| v.clone()).unwrap_or_default();
        self.lock().insert((name, target), (labels, value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(&'static str, String), Series>> {
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drop every series of `target` (a reload removed it).
    pub fn remove_target(&self, target: &str) {
        self.lock().retain(|(_, t), _| t != target);
    }

    /// Live series of `name`: labels and value.
    pub fn series(&self, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
        self.lock().iter().filter(|((n, _), _)| *n == name).map(|(_, s)| s.clone()).collect()
    }

    /// Number of live series of `name` (for tests).
    pub fn len(&self, name: &str) -> usize {
        self.lock().keys().filter(|(n, _)| *n == name).count()
    }

    /// Prometheus text of every info family that has a series.
    pub fn render(&self) -> String {
        let series = self.lock();
        let mut out = String::new();
        for def in INFO {
            let mut family = series.iter().filter(|((n, _), _)| *n == def.name).peekable();
            if family.peek().is_none() {
                continue;
            }
            write_help_line(&mut out, def.name, None, None, def.help);
            write_type_line(&mut out, def.name, None, None, "gauge");
            for (_, (labels, value)) in family {
                let labels: Vec<String> =
                    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", sanitize_label_value(v))).collect();
                out.push_str(&format!("{}{{{}}} {value}\n", def.name, labels.join(",")));
            }
        }
        out
    }
}

/// A gauge of an info family: `set` replaces the target's series.
struct InfoGauge {
    name: &'static str,
    key: Key,
    store: Arc<InfoStore>,
}

impl GaugeFn for InfoGauge {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.store.set(self.name, &self.key, value);
    }
}

/// Wraps a recorder; gauges of the [`INFO`] families go to the store instead.
pub struct InfoRecorder<R> {
    inner: R,
    store: Arc<InfoStore>,
}

impl<R> InfoRecorder<R> {
    /// Wrap `inner`; the info families go to `store` (which OTLP observes, see `otel_bridge`).
    pub fn new(inner: R, store: Arc<InfoStore>) -> Self {
        Self { inner, store }
    }
}

fn info_family(name: &str) -> Option<&'static str> {
    INFO.iter().map(|d| d.name).find(|n| *n == name)
}

impl<R: Recorder> Recorder for InfoRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        if info_family(key.as_str()).is_none() {
            self.inner.describe_gauge(key, unit, description);
        }
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match info_family(key.name()) {
            Some(name) => {
                Gauge::from_arc(Arc::new(InfoGauge { name, key: key.clone(), store: Arc::clone(&self.store) }))
            }
            None => self.inner.register_gauge(key, metadata),
        }
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner.register_histogram(key, metadata)
    }
}

#[cfg(test)]
mod tests {
    use metrics::Label;

    use super::*;

    fn key(target: &str, version: &str) -> Key {
        Key::from_parts(
            m::SERVER_INFO.name,
            vec![Label::new("target", target.to_string()), Label::new("server_version", version.to_string())],
        )
    }

    #[test]
    fn a_new_label_set_replaces_the_targets_series() {
        let store = Arc::new(InfoStore::default());
        let recorder = InfoRecorder { inner: metrics::NoopRecorder, store: Arc::clone(&store) };
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        for v in 0..41 {
            recorder.register_gauge(&key("a", &v.to_string()), &meta).set(1.0);
        }
        recorder.register_gauge(&key("b", "x\"y"), &meta).set(1.0);
        assert_eq!(store.len(m::SERVER_INFO.name), 2);
        let text = store.render();
        assert!(text.contains("mcp_canary_server_info{target=\"a\",server_version=\"40\"} 1\n"), "{text}");
        assert!(text.contains("mcp_canary_server_info{target=\"b\",server_version=\"x\\\"y\"} 1\n"), "{text}");
        assert!(!text.contains("server_version=\"39\""));
        assert_eq!(text.matches("# TYPE").count(), 1);
    }
}
