//! Telemetry: the metric catalogue, the events that emit them, the Prometheus exporter and,
//! behind the same `metrics` facade, OTLP export of metrics and probe spans.

pub mod catalogue;
pub mod chaos;
pub mod events;
pub mod info;
pub mod instances;
pub mod labels;
pub mod load;
pub mod longevity;
pub mod matrix;
pub mod native;
pub mod otel_bridge;
pub mod otlp;
pub mod probe;
pub mod prometheus;
pub mod protobuf;
pub mod scheduled;
pub mod semconv;
pub mod spans;

pub use prometheus::Exporter;

/// Register help text for every catalogue metric with the installed recorder.
pub fn describe_all() {
    use catalogue::{CATALOGUE, Kind};
    for def in CATALOGUE {
        match def.kind {
            Kind::Counter => metrics::describe_counter!(def.name, def.help),
            Kind::Gauge => metrics::describe_gauge!(def.name, def.help),
            Kind::Histogram => metrics::describe_histogram!(def.name, metrics::Unit::Seconds, def.help),
        }
    }
}
