//! Raw config as written in TOML: every key optional where a default exists, unknown keys rejected.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Top-level file layout.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub otlp: RawOtlp,
    #[serde(default)]
    pub heavy_profiles: RawHeavyProfiles,
    #[serde(default)]
    pub profiles: Vec<RawProfile>,
    /// Replicas of one daemon share the scheduled heavy profiles through a lease in Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<RawCoordination>,
    /// `[probe]`: the blackbox-style `/probe` endpoint; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<RawProbeEndpoint>,
    /// `[modules.NAME]`: probe settings `/probe?module=NAME` applies to the requested URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modules: BTreeMap<String, RawModule>,
}

/// `[coordination]`: the lease that lets one replica of several run `[[profiles]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCoordination {
    /// `redis://host:port/db` shared by every replica.
    pub redis: String,
    #[serde(default)]
    pub redis_password_env: Option<String>,
    #[serde(default)]
    pub redis_password_file: Option<String>,
    /// How long a lease lasts without renewal (a dead holder's is taken over after this).
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
    /// The Redis key of the lease: replicas that share it share the profiles.
    #[serde(default = "default_lease_key")]
    pub lease_key: String,
    /// This replica's name in the lease (default: the host name and process id).
    #[serde(default)]
    pub holder: Option<String>,
}

fn default_lease() -> Duration {
    Duration::from_secs(15)
}

fn default_lease_key() -> String {
    "mcp-canary:profiles-leader".into()
}

/// `[probe]`: who `/probe` may probe and how many at once.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbeEndpoint {
    /// Glob patterns of the URLs `/probe` may connect to (required: the endpoint carries the
    /// modules' credentials).
    pub allowed_targets: Vec<String>,
    #[serde(default = "default_probe_max_concurrent")]
    pub max_concurrent: usize,
    /// Taken off Prometheus's scrape timeout so the answer arrives before it gives up.
    #[serde(default = "default_scrape_timeout_offset", with = "humantime_serde")]
    pub scrape_timeout_offset: Duration,
}

/// `[modules.NAME]`: the probe settings of a target, without its name, URL and schedule (the
/// URL comes with each `/probe` request).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModule {
    #[serde(flatten)]
    pub settings: RawProbeSettings,
}

impl RawModule {
    /// The module's keys as a target's (the rest at a target's defaults), for the target
    /// validation both share.
    pub fn to_target(&self, name: &str, url: &str) -> RawTarget {
        RawTarget { settings: self.settings.clone(), ..RawTarget::new(name, url) }
    }
}

/// The keys a `[[targets]]` entry and a `[modules.NAME]` share (how one probe talks to a
/// server), flattened into both so a new probe setting is declared once. A flattened table
/// reaches serde without its keys, so each key names itself in its errors ([`keyed`]); the
/// enclosing table denies unknown keys (serde cannot do it here).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RawProbeSettings {
    /// Each request's and the whole probe's deadline. Default: the smaller of 10 s and a
    /// target's interval (a module's: 10 s).
    #[serde(default, deserialize_with = "keyed::timeout", serialize_with = "humantime_serde::option::serialize")]
    pub timeout: Option<Duration>,
    #[serde(default = "default_protocol", deserialize_with = "keyed::protocol")]
    pub protocol: String,
    #[serde(default = "default_session", deserialize_with = "keyed::session")]
    pub session: String,
    #[serde(default = "default_max_response_bytes", deserialize_with = "keyed::max_response_bytes")]
    pub max_response_bytes: u64,
    #[serde(default, deserialize_with = "keyed::headers")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "keyed::headers_from_env")]
    pub headers_from_env: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "keyed::bearer_token")]
    pub bearer_token: Option<String>,
    #[serde(default, deserialize_with = "keyed::bearer_token_env")]
    pub bearer_token_env: Option<String>,
    #[serde(default, deserialize_with = "keyed::bearer_token_file")]
    pub bearer_token_file: Option<String>,
    /// OAuth client of a protected server (instead of a static bearer token).
    #[serde(default, deserialize_with = "keyed::oauth", skip_serializing_if = "Option::is_none")]
    pub oauth: Option<RawOAuth>,
    #[serde(default, deserialize_with = "keyed::probe")]
    pub probe: RawProbe,
    #[serde(default, deserialize_with = "keyed::notification")]
    pub notification: Option<RawNotification>,
}

impl Default for RawProbeSettings {
    fn default() -> Self {
        Self {
            timeout: None,
            protocol: default_protocol(),
            session: default_session(),
            max_response_bytes: default_max_response_bytes(),
            headers: Default::default(),
            headers_from_env: Default::default(),
            bearer_token: None,
            bearer_token_env: None,
            bearer_token_file: None,
            oauth: None,
            probe: Default::default(),
            notification: None,
        }
    }
}

/// Deserializers of [`RawProbeSettings`]' keys that prefix their key to an error, as
/// [`crate::spec::load::keyed`] does for the load mix; the config loader moves it into the path.
mod keyed {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    use crate::spec::load::keyed::PREFIX;

    fn named<'de, D: Deserializer<'de>, T>(
        d: D,
        key: &str,
        de: impl FnOnce(D) -> Result<T, D::Error>,
    ) -> Result<T, D::Error> {
        de(d).map_err(|e| D::Error::custom(format!("{PREFIX}{key}`: {e}")))
    }

    pub fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        named(d, "timeout", humantime_serde::option::deserialize)
    }

    macro_rules! keyed {
        ($($key:ident),*) => {$(
            pub fn $key<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
                named(d, stringify!($key), T::deserialize)
            }
        )*};
    }
    keyed!(
        protocol,
        session,
        max_response_bytes,
        headers,
        headers_from_env,
        bearer_token,
        bearer_token_env,
        bearer_token_file,
        oauth,
        probe,
        notification
    );
}

/// `[heavy_profiles]`: global caps every scheduled heavy run must fit in, and where reports go.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHeavyProfiles {
    pub max_sessions: u32,
    /// Aggregate requests per second.
    pub max_request_rate: f64,
    pub results_dir: String,
    /// Also write each run's HTML report beside its JSON one.
    pub html: bool,
    /// Runs of each profile and target whose files are kept; older ones are deleted.
    pub keep_runs: u32,
}

impl Default for RawHeavyProfiles {
    fn default() -> Self {
        Self {
            max_sessions: crate::spec::DEFAULT_MAX_SESSIONS,
            max_request_rate: crate::spec::DEFAULT_MAX_RATE,
            results_dir: "results".into(),
            html: true,
            keep_runs: DEFAULT_KEEP_RUNS,
        }
    }
}

/// Default `[heavy_profiles] keep_runs`.
pub const DEFAULT_KEEP_RUNS: u32 = 100;
/// Most `[heavy_profiles] keep_runs`.
pub const MAX_KEEP_RUNS: u32 = 100_000;

/// `[[profiles]]`: a heavy profile run on a cron schedule against some targets. The table named
/// like the profile (`[profiles.load]`, ...) holds its parameters, the flags of `run <profile>`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub name: String,
    pub profile: String,
    pub targets: Vec<String>,
    pub schedule: String,
    #[serde(default)]
    pub thresholds: Vec<String>,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default)]
    pub load: Option<crate::spec::LoadSpec>,
    #[serde(default)]
    pub notify: Option<crate::spec::NotifySpec>,
    #[serde(default)]
    pub matrix: Option<crate::spec::MatrixSpec>,
    #[serde(default)]
    pub chaos: Option<crate::spec::ChaosSpec>,
    #[serde(default)]
    pub longevity: Option<crate::spec::LongevitySpec>,
}

/// `[server]`: the daemon's own HTTP surface and lifecycle.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// `[server.tls]`: serve HTTPS (see `config/server.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::server::RawServerTls>,
    /// `[server.basic_auth_users]`: user name -> bcrypt hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub basic_auth_users: BTreeMap<String, String>,
    /// A file holding the token scrapers send as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// Threads of the runtime the canary probes run on (apart from the HTTP surface and the
    /// heavy profiles).
    #[serde(default = "default_probe_threads")]
    pub probe_threads: usize,
}

fn default_probe_threads() -> usize {
    crate::spec::DEFAULT_PROBE_THREADS
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            basic_auth_users: BTreeMap::new(),
            bearer_token_file: None,
            probe_threads: default_probe_threads(),
        }
    }
}

/// `[otlp]`: push metrics and spans over OTLP. The standard `OTEL_EXPORTER_OTLP_*` variables
/// override these keys (see `config::apply_otel_env`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOtlp {
    pub enabled: bool,
    /// Base URL of the collector; `None`: the protocol's default port on localhost.
    pub endpoint: Option<String>,
    /// Full URL for metrics only (used as is, no `/v1/metrics` appended); `None`: from `endpoint`.
    pub metrics_endpoint: Option<String>,
    /// Full URL for traces only (used as is, no `/v1/traces` appended); `None`: from `endpoint`.
    pub traces_endpoint: Option<String>,
    /// PEM file of the CA that signs the collector's certificate (https endpoints); `None`: the
    /// system roots.
    pub certificate: Option<String>,
    pub protocol: String,
    /// Sent with every export (gRPC metadata or HTTP headers). Secrets.
    pub headers: BTreeMap<String, String>,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub temporality: String,
    pub histograms: String,
}

impl Default for RawOtlp {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            metrics_endpoint: None,
            traces_endpoint: None,
            certificate: None,
            protocol: "grpc".into(),
            headers: BTreeMap::new(),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            temporality: "cumulative".into(),
            histograms: "explicit".into(),
        }
    }
}

/// `[[targets]]`: one MCP server to probe.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: String,
    pub url: String,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_jitter")]
    pub jitter: f64,
    /// The keys a `/probe` module shares.
    #[serde(flatten)]
    pub settings: RawProbeSettings,
    /// Redis behind this target, inspected on its own interval (`redis://host:port/db`).
    #[serde(default)]
    pub redis: Option<String>,
    #[serde(default)]
    pub redis_password_env: Option<String>,
    #[serde(default)]
    pub redis_password_file: Option<String>,
    #[serde(default = "default_redis_interval", with = "humantime_serde")]
    pub redis_interval: Duration,
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub redis_timeout: Duration,
    #[serde(default = "default_redis_key_patterns")]
    pub redis_key_patterns: Vec<String>,
    #[serde(default = "default_redis_scan_budget")]
    pub redis_scan_budget: u64,
    /// Heavy profiles (`[[profiles]]`) may run against this target.
    #[serde(default)]
    pub allow_heavy: bool,
    /// The chaos profile may inject faults into this target.
    #[serde(default)]
    pub allow_chaos: bool,
    /// The replicas behind `url` (a balancer), each probed directly as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<RawInstance>,
    /// Response header naming the replica that served a request.
    #[serde(default = "default_instance_header")]
    pub instance_header: String,
    /// Sequential requests of the session affinity check through `url`; 0 turns it off.
    #[serde(default = "default_affinity_requests")]
    pub affinity_requests: u32,
    /// Notification triggers per cycle of the cross-instance delivery check; 0 turns it off.
    #[serde(default = "default_delivery_broadcasts")]
    pub delivery_broadcasts: u32,
}

/// `[targets.oauth]`: how the canary gets access tokens for a protected server (client
/// credentials; the secret from the environment or a file only).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    /// The client's id (a pre-registered one, or the URL of its client ID metadata document when
    /// the server supports them); empty with `grant = "refresh_token"`: `auth login` registers a
    /// client dynamically.
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    /// Scopes to ask for; empty: the server's challenge, else its `scopes_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The authorization server's issuer URL, instead of discovering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<String>,
    /// A PEM private key that signs client assertions (`private_key_jwt`) instead of a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
    /// `RS256` or `ES256`: the algorithm of `private_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// The `kid` of the client assertions' header, as the client's JWKS names the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `client_credentials` (default) or `refresh_token` (a token stored by `auth login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Where the refresh token lives (the `refresh_token` grant): written by `auth login`,
    /// rotated by the daemon, mode 0600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// `client_secret_basic` or `client_secret_post`, as the client was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
}

/// The OAuth flags `check` and `run` share: the `[targets.oauth]` keys of a one-off target.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OAuthFlags {
    /// OAuth client of a protected server (client credentials): its client id. The
    /// authorization server is discovered from the server's protected resource metadata.
    #[arg(long = "oauth-client-id", value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the OAuth client secret from this environment variable.
    #[arg(long = "oauth-client-secret-env", value_name = "VAR", requires = "client_id")]
    pub client_secret_env: Option<String>,
    /// Read the OAuth client secret from this file.
    #[arg(long = "oauth-client-secret-file", value_name = "FILE", requires = "client_id")]
    pub client_secret_file: Option<String>,
    /// Sign client assertions with this PEM private key (`private_key_jwt`) instead of a secret.
    #[arg(long = "oauth-private-key-file", value_name = "FILE", requires = "client_id")]
    pub private_key_file: Option<String>,
    /// `RS256` (default) or `ES256`: the algorithm of --oauth-private-key-file.
    #[arg(long = "oauth-signing-alg", value_name = "ALG", requires = "private_key_file")]
    pub signing_alg: Option<String>,
    /// The `kid` of the client assertions, as the client's registered JWKS names the key.
    #[arg(long = "oauth-key-id", value_name = "KID", requires = "private_key_file")]
    pub key_id: Option<String>,
    /// Use the refresh token stored in this file (written by `mcp-canary auth login`; rotated
    /// in place) instead of client credentials.
    #[arg(long = "oauth-token-file", value_name = "FILE", requires = "client_id")]
    pub token_file: Option<String>,
    /// OAuth scope to ask for (repeatable; default: the server's challenge, else its
    /// `scopes_supported`).
    #[arg(long = "oauth-scope", value_name = "SCOPE", requires = "client_id")]
    pub scopes: Vec<String>,
    /// The authorization server's issuer URL, instead of discovering it.
    #[arg(long = "oauth-authorization-server", value_name = "URL", requires = "client_id")]
    pub authorization_server: Option<String>,
    /// `client_secret_basic` or `client_secret_post`, as the client was registered (default:
    /// basic when the authorization server lists it, else post).
    #[arg(long = "oauth-auth-method", value_name = "METHOD", requires = "client_id")]
    pub auth_method: Option<String>,
}

impl OAuthFlags {
    /// The `[targets.oauth]` table these flags make; `None` without `--oauth-client-id`.
    pub fn raw(&self) -> Option<RawOAuth> {
        self.client_id.as_ref().map(|client_id| RawOAuth {
            client_id: client_id.clone(),
            client_secret_env: self.client_secret_env.clone(),
            client_secret_file: self.client_secret_file.clone(),
            scopes: self.scopes.clone(),
            authorization_server: self.authorization_server.clone(),
            token_endpoint_auth_method: self.auth_method.clone(),
            private_key_file: self.private_key_file.clone(),
            grant: self.token_file.as_ref().map(|_| "refresh_token".to_string()),
            token_file: self.token_file.clone(),
            signing_alg: self.signing_alg.clone(),
            key_id: self.key_id.clone(),
        })
    }
}

/// `instances = [{ name = "a", url = "..." }]`: one replica of a balanced target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    pub name: String,
    pub url: String,
}

impl RawTarget {
    /// A target with every optional key at the default a config file would get.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            interval: default_interval(),
            jitter: default_jitter(),
            settings: RawProbeSettings::default(),
            redis: None,
            redis_password_env: None,
            redis_password_file: None,
            redis_interval: default_redis_interval(),
            redis_timeout: default_redis_timeout(),
            redis_key_patterns: default_redis_key_patterns(),
            redis_scan_budget: default_redis_scan_budget(),
            allow_heavy: false,
            allow_chaos: false,
            instances: Vec::new(),
            instance_header: default_instance_header(),
            affinity_requests: default_affinity_requests(),
            delivery_broadcasts: default_delivery_broadcasts(),
        }
    }
}

/// `[targets.probe]`: what the default script calls.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub tool: Option<String>,
    #[serde(default)]
    pub tool_arguments: Option<toml::Table>,
    pub resource: Option<String>,
    pub prompt: Option<String>,
    #[serde(default)]
    pub prompt_arguments: Option<toml::Table>,
}

/// `[targets.notification]`: the round-trip trigger.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotification {
    pub tool: String,
    #[serde(default)]
    pub arguments: Option<toml::Table>,
    pub method: String,
    #[serde(default = "default_notification_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_jitter() -> f64 {
    0.1
}
fn default_protocol() -> String {
    "auto".into()
}
fn default_session() -> String {
    "fresh".into()
}
fn default_max_response_bytes() -> u64 {
    crate::mcp::DEFAULT_MAX_RESPONSE_BYTES as u64
}
fn default_probe_max_concurrent() -> usize {
    16
}
fn default_scrape_timeout_offset() -> Duration {
    Duration::from_millis(500)
}
fn default_notification_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_redis_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_redis_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_redis_key_patterns() -> Vec<String> {
    vec!["mcp:session:*".into(), "mcp:stream:*".into()]
}
fn default_redis_scan_budget() -> u64 {
    10_000
}
fn default_instance_header() -> String {
    "Mcp-Canary-Instance".into()
}
fn default_affinity_requests() -> u32 {
    10
}
fn default_delivery_broadcasts() -> u32 {
    1
}
