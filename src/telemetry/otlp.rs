//! OTLP export: a meter provider fed by the `metrics` bridge and a tracer provider for probe
//! spans, both over gRPC (tonic) or HTTP/protobuf with the same endpoint and headers.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::SpanData;

use super::catalogue::{CATALOGUE, Kind, MetricDef, OPERATION_DURATION, OTLP_EXPORTS};
use super::info::InfoStore;
use super::otel_bridge::OtelRecorder;
use super::semconv;
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
    pub fn build(config: &OtlpConfig, info: Arc<InfoStore>) -> anyhow::Result<(Self, OtelRecorder)> {
        let resource = Resource::builder()
            .with_service_name("mcp-canary")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let temporality = match config.temporality {
            Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
            Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
        };
        let metrics_url = config.metrics_endpoint.as_str().to_string();
        let traces_url = config.traces_endpoint.as_str().to_string();
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
                let mut metrics = MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(metrics_url)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata());
                if config.metrics_endpoint.scheme() == "https" {
                    metrics = metrics.with_tls_config(grpc_tls(config));
                }
                let mut spans = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(traces_url)
                    .with_timeout(config.timeout)
                    .with_metadata(metadata());
                if config.traces_endpoint.scheme() == "https" {
                    spans = spans.with_tls_config(grpc_tls(config));
                }
                (metrics.with_temporality(temporality).build()?, spans.build()?)
            }
            OtlpProtocol::HttpProtobuf => {
                let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
                let client = http_client(config)?;
                let metrics = MetricExporter::builder()
                    .with_http()
                    .with_http_client(client.clone())
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(metrics_url)
                    .with_timeout(config.timeout)
                    .with_headers(headers.clone())
                    .with_temporality(temporality)
                    .build()?;
                let spans = SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(traces_url)
                    .with_timeout(config.timeout)
                    .with_headers(headers)
                    .build()?;
                (metrics, spans)
            }
        };
        let metric_exporter = Counted { inner: metric_exporter, signal: "metrics" };
        let span_exporter = Counted { inner: span_exporter, signal: "traces" };
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
        let tracer = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_span_processor(processor)
            .with_id_generator(super::spans::StepIds::default())
            .build();
        let recorder = OtelRecorder::new(meters.meter(SCOPE), info);
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

/// TLS for a gRPC https endpoint: the system roots plus the configured CA, if any.
fn grpc_tls(config: &OtlpConfig) -> tonic::transport::ClientTlsConfig {
    let tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
    match &config.ca_certificate {
        Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        None => tls,
    }
}

/// The blocking HTTP client of the HTTP/protobuf exporters, trusting the configured CA. Built on
/// a thread of its own: reqwest's blocking client owns a runtime, which may not be created (or
/// dropped) inside Tokio's.
fn http_client(config: &OtlpConfig) -> anyhow::Result<reqwest::blocking::Client> {
    let timeout = config.timeout;
    let ca = config.ca_certificate.clone();
    let build = move || -> anyhow::Result<reqwest::blocking::Client> {
        // It carries the configured headers (often a collector's API key): no redirect to
        // another origin.
        let mut builder =
            reqwest::blocking::Client::builder().timeout(timeout).redirect(crate::mcp::transport::redirect_policy());
        if let Some(pem) = ca {
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(builder.build()?)
    };
    std::thread::spawn(build).join().map_err(|_| anyhow::anyhow!("building the OTLP HTTP client panicked"))?
}

/// An exporter that counts its exports by outcome, so a collector that refuses or cannot be
/// reached shows on `/metrics` (the SDK itself only logs).
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    signal: &'static str,
}

impl<E> Counted<E> {
    fn count(&self, result: &OTelSdkResult) {
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!(OTLP_EXPORTS.name, "signal" => self.signal, "outcome" => outcome).increment(1);
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        self.count(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.inner.temporality()
    }
}

impl<E: opentelemetry_sdk::trace::SpanExporter> opentelemetry_sdk::trace::SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        self.count(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// Explicit boundaries of a catalogue histogram over OTLP: for `mcp.client.operation.duration`
/// the ones the MCP conventions advise, merged with the SLO thresholds; else its catalogue
/// buckets (as on `/metrics`).
pub fn otlp_boundaries(def: &MetricDef) -> Vec<f64> {
    if def.name == OPERATION_DURATION.name { semconv::operation_boundaries() } else { def.buckets.to_vec() }
}

/// Catalogue histograms: explicit buckets ([`otlp_boundaries`]) or base-2 exponential.
fn histogram_view(i: &Instrument, aggregation: HistogramAggregation) -> Option<Stream> {
    if i.kind() != InstrumentKind::Histogram {
        return None;
    }
    let def = CATALOGUE.iter().find(|d| d.kind == Kind::Histogram && d.otlp_name() == i.name())?;
    let aggregation = match aggregation {
        HistogramAggregation::Explicit => {
            Aggregation::ExplicitBucketHistogram { boundaries: otlp_boundaries(def), record_min_max: true }
        }
        HistogramAggregation::Exponential => {
            Aggregation::Base2ExponentialHistogram { max_size: 160, max_scale: 20, record_min_max: true }
        }
    };
    Stream::builder().with_aggregation(aggregation).build().ok()
}
