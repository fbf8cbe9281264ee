//! `[otlp]`: the standard `OTEL_EXPORTER_OTLP_*` environment overlay and validation.

use std::time::Duration;

use url::Url;

use super::raw::RawOtlp;
use super::{ConfigError, ConfigErrors};

/// Wire protocol of the OTLP exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// Aggregation temporality of exported sums and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    Cumulative,
    Delta,
}

/// How histograms are aggregated for OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramAggregation {
    /// The catalogue's buckets (the same as on `/metrics`).
    Explicit,
    /// Base-2 exponential histograms.
    Exponential,
}

/// Validated OTLP export settings; present only when export is enabled.
#[derive(Clone)]
pub struct OtlpConfig {
    /// Where metrics go: the gRPC endpoint, or the full HTTP URL (`<endpoint>/v1/metrics` unless
    /// set per signal).
    pub metrics_endpoint: Url,
    /// Where spans go, as `metrics_endpoint`.
    pub traces_endpoint: Url,
    /// PEM of the CA that signs the collector's certificate; `None`: the system roots.
    pub ca_certificate: Option<Vec<u8>>,
    pub protocol: OtlpProtocol,
    /// Lower-cased names; values are secrets.
    pub headers: Vec<(String, String)>,
    pub interval: Duration,
    pub timeout: Duration,
    pub temporality: Temporality,
    pub histograms: HistogramAggregation,
}

impl std::fmt::Debug for OtlpConfig {
    // Header values are secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("metrics_endpoint", &self.metrics_endpoint.as_str())
            .field("traces_endpoint", &self.traces_endpoint.as_str())
            .field("ca_certificate", &self.ca_certificate.is_some())
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("temporality", &self.temporality)
            .field("histograms", &self.histograms)
            .finish()
    }
}

pub const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const ENV_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
pub const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const ENV_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
pub const ENV_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
pub const ENV_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
pub const ENV_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
pub const ENV_TEMPORALITY: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";

/// Overlay the standard OpenTelemetry variables on `[otlp]` (environment wins over the file, as
/// for `MCP_CANARY_*`). Setting the endpoint variable turns export on.
pub fn apply_otel_env(otlp: &mut RawOtlp, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigErrors> {
    let mut errors = Vec::new();
    let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if let Some(endpoint) = var(ENV_ENDPOINT) {
        otlp.endpoint = Some(endpoint.trim().to_string());
        otlp.enabled = true;
    }
    // A signal-specific endpoint alone also turns export on (the other signal then goes to the
    // default or general endpoint, as the OpenTelemetry specification says).
    if let Some(endpoint) = var(ENV_METRICS_ENDPOINT) {
        otlp.metrics_endpoint = Some(endpoint.trim().to_string());
        otlp.enabled = true;
    }
    if let Some(endpoint) = var(ENV_TRACES_ENDPOINT) {
        otlp.traces_endpoint = Some(endpoint.trim().to_string());
        otlp.enabled = true;
    }
    if let Some(path) = var(ENV_CERTIFICATE) {
        otlp.certificate = Some(path.trim().to_string());
    }
    if let Some(ms) = var(ENV_TIMEOUT) {
        match ms.trim().parse::<u64>() {
            Ok(ms) => otlp.timeout = Duration::from_millis(ms),
            Err(_) => errors.push(ConfigError::new(ENV_TIMEOUT, format!("not a number of milliseconds: {ms:?}"))),
        }
    }
    if let Some(protocol) = var(ENV_PROTOCOL) {
        otlp.protocol = protocol.trim().to_string();
    }
    if let Some(headers) = var(ENV_HEADERS) {
        for pair in headers.split(',').filter(|p| !p.trim().is_empty()) {
            match pair.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    otlp.headers.insert(k.trim().to_string(), v.trim().to_string());
                }
                // Never echo the pair: the value may be a secret.
                _ => errors.push(ConfigError::new(ENV_HEADERS, "expected comma-separated key=value pairs".into())),
            }
        }
    }
    if let Some(ms) = var(ENV_INTERVAL) {
        match ms.trim().parse::<u64>() {
            Ok(ms) => otlp.interval = Duration::from_millis(ms),
            Err(_) => errors.push(ConfigError::new(ENV_INTERVAL, format!("not a number of milliseconds: {ms:?}"))),
        }
    }
    if let Some(t) = var(ENV_TEMPORALITY) {
        otlp.temporality = t.trim().to_ascii_lowercase();
    }
    if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
}

/// Validate `[otlp]`; `None` when export is off.
pub fn validate_otlp(raw: &RawOtlp, errors: &mut Vec<ConfigError>) -> Option<OtlpConfig> {
    if !raw.enabled {
        return None;
    }
    let before = errors.len();
    let mut err = |field: &str, msg: String| errors.push(ConfigError::new(format!("otlp.{field}"), msg));
    let protocol = match raw.protocol.as_str() {
        "grpc" => Some(OtlpProtocol::Grpc),
        "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
        v => {
            err("protocol", format!("unknown protocol {v:?}; expected \"grpc\" or \"http/protobuf\""));
            None
        }
    };
    let default_endpoint = match protocol {
        Some(OtlpProtocol::HttpProtobuf) => "http://localhost:4318",
        _ => "http://localhost:4317",
    };
    let endpoint =
        parse_endpoint(raw.endpoint.as_deref().unwrap_or(default_endpoint)).map_err(|msg| err("endpoint", msg)).ok();
    let signal_endpoint = |key: &str, own: &Option<String>, path: &str| -> Result<Option<Url>, (String, String)> {
        match own {
            Some(url) => parse_endpoint(url).map(Some).map_err(|msg| (key.to_string(), msg)),
            // gRPC: one endpoint serves every signal; HTTP: the signal's path under the base URL.
            None => Ok(endpoint.as_ref().map(|base| match protocol {
                Some(OtlpProtocol::HttpProtobuf) => {
                    let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
                    Url::parse(&joined).unwrap_or_else(|_| base.clone())
                }
                _ => base.clone(),
            })),
        }
    };
    let metrics_endpoint = signal_endpoint("metrics_endpoint", &raw.metrics_endpoint, "v1/metrics")
        .map_err(|(k, msg)| err(&k, msg))
        .ok()
        .flatten();
    let traces_endpoint = signal_endpoint("traces_endpoint", &raw.traces_endpoint, "v1/traces")
        .map_err(|(k, msg)| err(&k, msg))
        .ok()
        .flatten();
    let ca_certificate = match &raw.certificate {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                err("certificate", format!("{path}: no PEM certificate in the file"));
                None
            }
            Err(e) => {
                err("certificate", format!("cannot read {path}: {e}"));
                None
            }
        },
    };
    if raw.interval < Duration::from_millis(100) {
        err("interval", "must be at least 100ms".into());
    }
    if raw.timeout.is_zero() {
        err("timeout", "must be greater than 0".into());
    }
    let temporality = match raw.temporality.as_str() {
        "cumulative" => Some(Temporality::Cumulative),
        "delta" => Some(Temporality::Delta),
        v => {
            err("temporality", format!("unknown temporality {v:?}; expected \"cumulative\" or \"delta\""));
            None
        }
    };
    let histograms = match raw.histograms.as_str() {
        "explicit" => Some(HistogramAggregation::Explicit),
        "exponential" => Some(HistogramAggregation::Exponential),
        v => {
            err("histograms", format!("unknown histogram aggregation {v:?}; expected \"explicit\" or \"exponential\""));
            None
        }
    };
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let lower = name.to_ascii_lowercase();
        if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            err(&format!("headers.{name}"), format!("{name:?} is not a valid header name"));
        } else if reqwest::header::HeaderValue::from_str(value).is_err() {
            err(&format!("headers.{name}"), "value is not a valid header value".into());
        } else {
            headers.push((lower, value.clone()));
        }
    }
    if errors.len() != before {
        return None;
    }
    Some(OtlpConfig {
        metrics_endpoint: metrics_endpoint?,
        traces_endpoint: traces_endpoint?,
        ca_certificate,
        protocol: protocol?,
        headers,
        interval: raw.interval,
        timeout: raw.timeout,
        temporality: temporality?,
        histograms: histograms?,
    })
}

/// An http(s) URL with a host.
fn parse_endpoint(url: &str) -> Result<Url, String> {
    match Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.has_host() => Ok(u),
        Ok(u) => Err(format!("scheme must be http or https, not {:?}", u.scheme())),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn standard_variables_override_the_file_and_enable_export() {
        let mut raw = RawOtlp::default();
        apply_otel_env(
            &mut raw,
            env(&[
                (ENV_ENDPOINT, "http://127.0.0.1:4318"),
                (ENV_PROTOCOL, "http/protobuf"),
                (ENV_HEADERS, "Authorization=Bearer x, x-team=sre"),
                (ENV_INTERVAL, "1500"),
            ]),
        )
        .unwrap();
        assert!(raw.enabled);
        let mut errors = Vec::new();
        let c = validate_otlp(&raw, &mut errors).unwrap();
        assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.interval, Duration::from_millis(1500));
        assert_eq!(c.headers[0], ("authorization".to_string(), "Bearer x".to_string()));
        assert!(!format!("{c:?}").contains("Bearer x"));
    }

    #[test]
    fn errors_name_the_key() {
        let mut raw = RawOtlp { enabled: true, ..Default::default() };
        raw.protocol = "http/json".into();
        raw.temporality = "sometimes".into();
        raw.histograms = "sketch".into();
        raw.endpoint = Some("localhost".into());
        let mut errors = Vec::new();
        assert!(validate_otlp(&raw, &mut errors).is_none());
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["otlp.protocol", "otlp.endpoint", "otlp.temporality", "otlp.histograms"]);
        let e = apply_otel_env(&mut RawOtlp::default(), env(&[(ENV_INTERVAL, "soon")])).unwrap_err();
        assert_eq!(e.0[0].key, ENV_INTERVAL);
    }

    #[test]
    fn signal_endpoints_default_to_the_base_and_override_it() {
        let mut raw = RawOtlp {
            enabled: true,
            endpoint: Some("https://collector.example:4318/otlp/".into()),
            protocol: "http/protobuf".into(),
            ..Default::default()
        };
        apply_otel_env(&mut raw, env(&[(ENV_TRACES_ENDPOINT, "http://127.0.0.1:9999/custom/traces")])).unwrap();
        let mut errors = Vec::new();
        let c = validate_otlp(&raw, &mut errors).unwrap();
        assert_eq!(c.metrics_endpoint.as_str(), "https://collector.example:4318/otlp/v1/metrics");
        assert_eq!(c.traces_endpoint.as_str(), "http://127.0.0.1:9999/custom/traces");

        // gRPC: one endpoint for both signals, nothing appended.
        let mut raw = RawOtlp::default();
        apply_otel_env(&mut raw, env(&[(ENV_METRICS_ENDPOINT, "http://127.0.0.1:4317")])).unwrap();
        assert!(raw.enabled, "a signal endpoint alone turns export on");
        let c = validate_otlp(&raw, &mut errors).unwrap();
        assert_eq!(c.metrics_endpoint.as_str(), "http://127.0.0.1:4317/");
        assert_eq!(c.traces_endpoint.as_str(), "http://localhost:4317/");
        assert!(errors.is_empty());
    }

    #[test]
    fn certificate_and_signal_endpoint_errors_name_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let mut raw = RawOtlp {
            enabled: true,
            traces_endpoint: Some("ftp://x".into()),
            certificate: Some(not_pem.display().to_string()),
            ..Default::default()
        };
        let mut errors = Vec::new();
        assert!(validate_otlp(&raw, &mut errors).is_none());
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["otlp.traces_endpoint", "otlp.certificate"]);
        raw.traces_endpoint = None;
        raw.certificate = Some(dir.path().join("missing.pem").display().to_string());
        errors.clear();
        assert!(validate_otlp(&raw, &mut errors).is_none());
        assert!(errors[0].message.starts_with("cannot read"), "{errors:?}");
        let e = apply_otel_env(&mut RawOtlp::default(), env(&[(ENV_TIMEOUT, "1s")])).unwrap_err();
        assert_eq!(e.0[0].key, ENV_TIMEOUT);
    }

    #[test]
    fn disabled_is_none_without_errors() {
        let mut errors = Vec::new();
        assert!(validate_otlp(&RawOtlp::default(), &mut errors).is_none());
        assert!(errors.is_empty());
    }
}
