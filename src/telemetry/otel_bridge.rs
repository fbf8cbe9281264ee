//! A `metrics` recorder that forwards every measurement to OpenTelemetry instruments. Installed
//! next to the Prometheus recorder behind a fan-out, so each call site records once.
//!
//! Names, units and label keys come from the catalogue: semantic-convention names where they
//! exist (`mcp.client.operation.duration`, `mcp.method.name`), empty label values dropped
//! (`error.type` only on failures).
//!
//! Two OTLP-only additions, both bounded: the endpoint attributes of a target (`server.address`,
//! `server.port`, `network.*`), registered once when the target starts ([`target_endpoint`]),
//! and `mcp.client.operation.duration`, which the bridge does not take from the facade: its
//! points are recorded by [`record_operation`] with the attributes the MCP conventions ask for
//! and the Prometheus labels lack (`error.type` as the JSON-RPC code, `rpc.response.status_code`,
//! `gen_ai.operation.name`), per target, method, configured tool and code.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder};
use metrics::{SharedString, Unit};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;

use super::catalogue::{OPERATION_DURATION, SESSION_DURATION, find, otel_attribute};
use super::info::{INFO, InfoStore};
use super::semconv;

/// Facade histograms the bridge does not forward: their OTLP points come from
/// [`record_operation`], with attributes no Prometheus label carries.
const RECORDED_DIRECTLY: [&str; 1] = [OPERATION_DURATION.name];

/// Facade histograms that get the target's endpoint attributes over OTLP.
const WITH_ENDPOINT: [&str; 1] = [SESSION_DURATION.name];

/// The operation histogram of the installed bridge (the first one built in this process).
static OPERATIONS: OnceLock<opentelemetry::metrics::Histogram<f64>> = OnceLock::new();

/// Endpoint attributes by target name (one entry per configured target).
static ENDPOINTS: RwLock<BTreeMap<String, Arc<[KeyValue]>>> = RwLock::new(BTreeMap::new());

/// Register (or replace, after a reload) the endpoint attributes of `target`.
pub fn target_endpoint(target: &str, url: &url::Url) {
    let attrs: Arc<[KeyValue]> = semconv::endpoint_attributes(url).into();
    ENDPOINTS.write().unwrap_or_else(PoisonError::into_inner).insert(target.to_string(), attrs);
}

/// The endpoint attributes of `target`; empty when it was never registered.
pub fn endpoint(target: &str) -> Arc<[KeyValue]> {
    ENDPOINTS.read().unwrap_or_else(PoisonError::into_inner).get(target).cloned().unwrap_or_else(|| Arc::new([]))
}

/// Record one MCP operation on `mcp.client.operation.duration` over OTLP (a no-op without OTLP).
pub fn record_operation(op: &semconv::Operation<'_>, seconds: f64) {
    if let Some(histogram) = OPERATIONS.get() {
        histogram.record(seconds, &operation_attributes(op));
    }
}

/// The operation's attributes and its target's endpoint attributes.
pub fn operation_attributes(op: &semconv::Operation<'_>) -> Vec<KeyValue> {
    let mut attrs = op.attributes();
    attrs.extend(endpoint(op.target).iter().cloned());
    attrs
}

/// The bridge recorder; one per meter provider.
pub struct OtelRecorder {
    meter: Meter,
    state: Mutex<State>,
    /// The info families, observed from the store at each export (only live series are sent).
    _info: Vec<opentelemetry::metrics::ObservableGauge<f64>>,
}

#[derive(Default)]
struct State {
    counters: HashMap<Key, Arc<OtelCounter>>,
    gauges: HashMap<Key, Arc<OtelGauge>>,
    histograms: HashMap<Key, Arc<OtelHistogram>>,
    counter_instruments: HashMap<String, opentelemetry::metrics::Counter<u64>>,
    gauge_instruments: HashMap<String, opentelemetry::metrics::Gauge<f64>>,
    histogram_instruments: HashMap<String, opentelemetry::metrics::Histogram<f64>>,
}

impl OtelRecorder {
    pub fn new(meter: Meter, store: Arc<InfoStore>) -> Self {
        let info = INFO
            .iter()
            .map(|def| {
                let (name, unit, help) = describe(def.name);
                let store = Arc::clone(&store);
                let family = def.name;
                meter
                    .f64_observable_gauge(name)
                    .with_unit(unit)
                    .with_description(help)
                    .with_callback(move |observer| {
                        for (labels, value) in store.series(family) {
                            let attributes: Vec<KeyValue> = labels
                                .into_iter()
                                .filter(|(_, v)| !v.is_empty())
                                .map(|(k, v)| KeyValue::new(otel_attribute(&k).to_string(), v))
                                .collect();
                            observer.observe(value, &attributes);
                        }
                    })
                    .build()
            })
            .collect();
        let (name, unit, help) = describe(OPERATION_DURATION.name);
        let _ = OPERATIONS.set(meter.f64_histogram(name).with_unit(unit).with_description(help).build());
        Self { meter, state: Mutex::new(State::default()), _info: info }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// OTLP name, unit and description of a facade name.
fn describe(name: &str) -> (String, &'static str, &'static str) {
    match find(name) {
        Some(def) => (def.otlp_name().to_string(), def.otlp_unit(), def.help),
        None => (name.to_string(), "", ""),
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .filter(|l| !l.value().is_empty())
        .map(|l| KeyValue::new(otel_attribute(l.key()).to_string(), l.value().to_string()))
        .collect()
}

struct OtelCounter {
    instrument: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    absolute: AtomicU64,
}

impl CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.instrument.add(value, &self.attributes);
    }

    fn absolute(&self, value: u64) {
        let before = self.absolute.fetch_max(value, Ordering::AcqRel);
        self.instrument.add(value.saturating_sub(before), &self.attributes);
    }
}

struct OtelGauge {
    instrument: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    /// f64 bits of the current value, so increments have something to add to.
    value: AtomicU64,
}

impl OtelGauge {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let mut current = self.value.load(Ordering::Acquire);
        loop {
            let next = f(f64::from_bits(current));
            match self.value.compare_exchange_weak(current, next.to_bits(), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return self.instrument.record(next, &self.attributes),
                Err(seen) => current = seen,
            }
        }
    }
}

impl GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct OtelHistogram {
    instrument: opentelemetry::metrics::Histogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.instrument.record(value, &self.attributes);
    }
}

impl Recorder for OtelRecorder {
    // Descriptions and units come from the catalogue when the instrument is created.
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut state = self.state();
        if let Some(c) = state.counters.get(key) {
            return Counter::from_arc(Arc::clone(c));
        }
        let (name, unit, help) = describe(key.name());
        let instrument = state
            .counter_instruments
            .entry(name.clone())
            .or_insert_with(|| self.meter.u64_counter(name).with_unit(unit).with_description(help).build())
            .clone();
        let handle = Arc::new(OtelCounter { instrument, attributes: attributes(key), absolute: AtomicU64::new(0) });
        state.counters.insert(key.clone(), Arc::clone(&handle));
        Counter::from_arc(handle)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut state = self.state();
        if let Some(g) = state.gauges.get(key) {
            return Gauge::from_arc(Arc::clone(g));
        }
        let (name, unit, help) = describe(key.name());
        let instrument = state
            .gauge_instruments
            .entry(name.clone())
            .or_insert_with(|| self.meter.f64_gauge(name).with_unit(unit).with_description(help).build())
            .clone();
        let handle = Arc::new(OtelGauge { instrument, attributes: attributes(key), value: AtomicU64::new(0) });
        state.gauges.insert(key.clone(), Arc::clone(&handle));
        Gauge::from_arc(handle)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut state = self.state();
        if let Some(h) = state.histograms.get(key) {
            return Histogram::from_arc(Arc::clone(h));
        }
        if RECORDED_DIRECTLY.contains(&key.name()) {
            return Histogram::noop();
        }
        let mut attributes = attributes(key);
        if WITH_ENDPOINT.contains(&key.name())
            && let Some(target) = key.labels().find(|l| l.key() == "target")
        {
            attributes.extend(endpoint(target.value()).iter().cloned());
        }
        let (name, unit, help) = describe(key.name());
        let instrument = state
            .histogram_instruments
            .entry(name.clone())
            .or_insert_with(|| self.meter.f64_histogram(name).with_unit(unit).with_description(help).build())
            .clone();
        let handle = Arc::new(OtelHistogram { instrument, attributes });
        state.histograms.insert(key.clone(), Arc::clone(&handle));
        Histogram::from_arc(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_use_semconv_keys_and_drop_empty_values() {
        let key = Key::from_parts(
            "mcp_client_operation_duration_seconds",
            vec![
                metrics::Label::new("target", "t"),
                metrics::Label::new("mcp_method_name", "tools/call"),
                metrics::Label::new("error_type", ""),
            ],
        );
        let attrs = attributes(&key);
        let keys: Vec<_> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["target", "mcp.method.name"]);
        assert_eq!(describe(key.name()).0, "mcp.client.operation.duration");
        assert_eq!(describe(key.name()).1, "s");
    }
}
