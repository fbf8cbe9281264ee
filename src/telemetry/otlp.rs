//! OTLP export: a meter provider fed by the `metrics` bridge and a tracer provider for probe
//! spans, both over gRPC (tonic) or HTTP/protobuf with the same endpoint and headers.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

use super::catalogue::{CATALOGUE, Kind};
use super::otel_bridge::OtelRecorder;
use crate::config::{HistogramAggregation, OtlpConfig, OtlpProtocol, Temporality};

/// Instrumentation scope of every metric and span.
pub const SCOPE: &str = "mcp-canary";

/// The running OTLP pipelines. `shutdown` flushes both.
pub struct Otlp {
    meters: SdkMeterProvider,
    tracer: SdkTracerProvider,
}

impl Otlp {
    /// Build exporters and providers. Call inside the Tokio runtime (the gRPC channel lives there),
    /// off its worker threads (the HTTP client is blocking).
    pub fn build(config: &OtlpConfig) -> anyhow::Result<(Self, OtelRecorder)> {
        let resource = Resource::builder()
            .with_service_name("mcp-canary")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let temporality = match config.temporality {
            Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
            Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
        };
        let base = config.endpoint.as_str().trim_end_matches('/').to_string();
        let (metric_exporter, span_exporter) = match config.protocol {
            OtlpProtocol::Grpc => {
                let metadata = || {
                    let mut map = tonic::metadata::MetadataMap::new();
                    for (k, v) in &config.headers {
                        if let (Ok(k), Ok(v)) = (
                            tonic::metadata::AsciiMetadataKey::from_bytes(k.as_bytes()),
                            tonic::metadata::AsciiMetadataValue::try_from(v.as_str()),
                        ) {
                            map.insert(k, v);
                        }
                    }
                    map
                };
                let metrics = MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(base.clone())
                    .with_timeout(config.timeout)
                    .with_metadata(metadata())
                    .with_temporality(temporality)
                    .build()?;
                let spans = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(base)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata())
                    .build()?;
                (metrics, spans)
            }
            OtlpProtocol::HttpProtobuf => {
                let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
                let metrics = MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/metrics"))
                    .with_timeout(config.timeout)
                    .with_headers(headers.clone())
                    .with_temporality(temporality)
                    .build()?;
                let spans = SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(format!("{base}/v1/traces"))
                    .with_timeout(config.timeout)
                    .with_headers(headers)
                    .build()?;
                (metrics, spans)
            }
        };
        let reader = PeriodicReader::builder(metric_exporter).with_interval(config.interval).build();
        let histograms = config.histograms;
        let meters = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(reader)
            .with_view(move |i: &Instrument| histogram_view(i, histograms))
            .build();
        // Spans go out within 5 s (the SDK default) or the metric interval if shorter.
        let delay = config.interval.min(std::time::Duration::from_secs(5));
        let batch = BatchConfigBuilder::default().with_scheduled_delay(delay).build();
        let processor = BatchSpanProcessor::builder(span_exporter).with_batch_config(batch).build();
        let tracer = SdkTracerProvider::builder().with_resource(resource).with_span_processor(processor).build();
        let recorder = OtelRecorder::new(meters.meter(SCOPE));
        Ok((Self { meters, tracer }, recorder))
    }

    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer
    }

    /// Export what is pending and stop. Blocking: call from a blocking thread.
    pub fn shutdown(&self) {
        if let Err(e) = self.tracer.shutdown() {
            tracing::warn!(error = %e, "OTLP span export did not flush");
        }
        if let Err(e) = self.meters.shutdown() {
            tracing::warn!(error = %e, "OTLP metric export did not flush");
        }
    }
}

/// Catalogue histograms: its explicit buckets (as on `/metrics`) or base-2 exponential.
fn histogram_view(i: &Instrument, aggregation: HistogramAggregation) -> Option<Stream> {
    if i.kind() != InstrumentKind::Histogram {
        return None;
    }
    let def = CATALOGUE.iter().find(|d| d.kind == Kind::Histogram && d.otlp_name() == i.name())?;
    let aggregation = match aggregation {
        HistogramAggregation::Explicit => {
            Aggregation::ExplicitBucketHistogram { boundaries: def.buckets.to_vec(), record_min_max: true }
        }
        HistogramAggregation::Exponential => {
            Aggregation::Base2ExponentialHistogram { max_size: 160, max_scale: 20, record_min_max: true }
        }
    };
    Stream::builder().with_aggregation(aggregation).build().ok()
}
