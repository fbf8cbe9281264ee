//! `[server.tls]`, `[server.basic_auth_users]` and `server.bearer_token_file`: TLS and
//! credentials on the daemon's own port, in the spirit of the Prometheus exporter-toolkit's
//! `web-config.yml` (`tls_server_config`, `basic_auth_users` with bcrypt hashes).
//!
//! Validation reads the certificate, key and CA files and builds the TLS config once, so a bad
//! file stops `serve` and `check-config` naming its key; the HTTP surface builds it again from
//! the same [`TlsSettings`] when a file changes (`http/tls.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::raw::RawServer;
use crate::mcp::Secret;

/// Highest bcrypt cost accepted in `basic_auth_users`: a cost-12 check takes about 0.25 s of a
/// core; every step above doubles it, and a wrong password is never cached.
pub const MAX_BCRYPT_COST: u32 = 12;

/// `[server.tls]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    pub cert_file: String,
    pub key_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

fn default_min_version() -> String {
    "1.2".into()
}

/// TLS and credentials of the daemon's own port; the default is plain HTTP, open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSecurity {
    pub tls: Option<TlsSettings>,
    pub auth: HttpAuth,
}

/// Credentials every request needs, except `/healthz` and `/readyz`; none configured: open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAuth {
    /// User name -> bcrypt hash (a secret all the same: it can be attacked offline).
    pub basic_users: BTreeMap<String, Secret>,
    /// From `bearer_token_file`, trimmed.
    pub bearer_token: Option<Secret>,
}

impl HttpAuth {
    pub fn is_enabled(&self) -> bool {
        !self.basic_users.is_empty() || self.bearer_token.is_some()
    }
}

/// Whether client certificates are asked for (`client_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client without a certificate signed by `client_ca_file` is refused in the handshake.
    Require,
    /// A client may send none; one it sends must verify.
    VerifyIfGiven,
}

/// The lowest TLS version offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V12,
    V13,
}

/// Validated `[server.tls]`: the files are read again by [`TlsSettings::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca: Option<(PathBuf, ClientAuth)>,
    pub min_version: TlsVersion,
}

impl TlsSettings {
    /// The files a change of which calls for [`TlsSettings::load`] again.
    pub fn files(&self) -> Vec<&Path> {
        let mut files = vec![self.cert_file.as_path(), self.key_file.as_path()];
        files.extend(self.client_ca.as_ref().map(|(ca, _)| ca.as_path()));
        files
    }

    /// Read the certificate chain, key and client CA and build the server's TLS config, or the
    /// error naming the key of the file at fault. Offers HTTP/1.1 only (the surface's protocol).
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
        let err = |key: &str, msg: String| ConfigError::new(format!("server.tls.{key}"), msg);
        let certs = read_certs(&self.cert_file).map_err(|m| err("cert_file", m))?;
        let key = std::fs::read(&self.key_file)
            .map_err(|e| format!("cannot read {}: {e}", self.key_file.display()))
            .and_then(|pem| {
                PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| format!("no PEM private key in {}: {e}", self.key_file.display()))
            })
            .map_err(|m| err("key_file", m))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::V12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V13 => &[&rustls::version::TLS13],
        };
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| err("min_version", e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some((ca_file, mode)) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in read_certs(ca_file).map_err(|m| err("client_ca_file", m))? {
                    roots.add(ca).map_err(|e| err("client_ca_file", format!("not a CA certificate: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = match mode {
                    ClientAuth::Require => verifier,
                    ClientAuth::VerifyIfGiven => verifier.allow_unauthenticated(),
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| err("client_ca_file", format!("cannot verify clients with it: {e}")))?,
                )
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => err("key_file", "does not match the certificate in cert_file".into()),
            e => err("key_file", format!("unusable with the certificate in cert_file: {e}")),
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

/// Validate the security keys of `[server]`, pushing every error (naming its key, never a
/// secret) onto `errors`.
pub fn validate_security(raw: &RawServer, errors: &mut Vec<ConfigError>) -> ServerSecurity {
    let tls = raw.tls.as_ref().and_then(|t| validate_tls(t, errors));
    let mut basic_users = BTreeMap::new();
    for (name, hash) in &raw.basic_auth_users {
        let key = format!("server.basic_auth_users.{name}");
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            errors.push(ConfigError::new(key, "a user name is not empty and holds no ':' or control character".into()));
            continue;
        }
        match bcrypt::HashParts::from_str(hash) {
            Err(_) => {
                errors.push(ConfigError::new(key, "not a bcrypt hash (\"$2b$...\", e.g. from htpasswd -nbB)".into()))
            }
            Ok(parts) if parts.get_cost() > MAX_BCRYPT_COST => errors.push(ConfigError::new(
                key,
                format!(
                    "bcrypt cost {} is above {MAX_BCRYPT_COST}: every check would cost too much CPU",
                    parts.get_cost()
                ),
            )),
            Ok(_) => {
                basic_users.insert(name.clone(), Secret::new(hash.clone()));
            }
        }
    }
    let bearer_token = raw.bearer_token_file.as_ref().and_then(|path| {
        let key = "server.bearer_token_file";
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(ConfigError::new(key, format!("cannot read {path}: {e}"))),
            Ok(text) if text.trim().is_empty() => errors.push(ConfigError::new(key, format!("{path} is empty"))),
            Ok(text) => return Some(Secret::new(text.trim().to_string())),
        }
        None
    });
    ServerSecurity { tls, auth: HttpAuth { basic_users, bearer_token } }
}

fn validate_tls(t: &RawServerTls, errors: &mut Vec<ConfigError>) -> Option<TlsSettings> {
    let before = errors.len();
    let mut err = |key: &str, msg: String| errors.push(ConfigError::new(format!("server.tls.{key}"), msg));
    let min_version = match t.min_version.as_str() {
        "1.2" => TlsVersion::V12,
        "1.3" => TlsVersion::V13,
        other => {
            err("min_version", format!("{other:?} is not \"1.2\" or \"1.3\""));
            TlsVersion::V12
        }
    };
    let client_auth = match t.client_auth.as_deref() {
        None | Some("require") => ClientAuth::Require,
        Some("verify_if_given") => ClientAuth::VerifyIfGiven,
        Some(other) => {
            err("client_auth", format!("{other:?} is not \"require\" or \"verify_if_given\""));
            ClientAuth::Require
        }
    };
    if t.client_auth.is_some() && t.client_ca_file.is_none() {
        err("client_auth", "needs client_ca_file (the CA that signs client certificates)".into());
    }
    for (key, value) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
        if value.is_empty() {
            err(key, "must name a PEM file".into());
        }
    }
    if errors.len() > before {
        return None;
    }
    let settings = TlsSettings {
        cert_file: t.cert_file.clone().into(),
        key_file: t.key_file.clone().into(),
        client_ca: t.client_ca_file.as_ref().map(|ca| (PathBuf::from(ca), client_auth)),
        min_version,
    };
    match settings.load() {
        Ok(_) => Some(settings),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA-signed server certificate and key, a CA, and a key of another pair, as PEM files.
    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key).unwrap();
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert =
                rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
            let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
            write("ca.pem", ca.pem());
            write("cert.pem", cert.pem());
            write("key.pem", key.serialize_pem());
            write("other-key.pem", rcgen::KeyPair::generate().unwrap().serialize_pem());
            write("junk.pem", "not pem".into());
            write("token", "  s3cret-token \n".into());
            write("empty", "\n".into());
            Self { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        /// `[server]` with `extra` (TOML lines, `{dir}` replaced by the files' folder).
        fn server(&self, extra: &str) -> RawServer {
            let text = format!("listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n{extra}")
                .replace("{dir}", &self.dir.path().display().to_string());
            toml::from_str(&text).unwrap()
        }
    }

    fn check(raw: &RawServer) -> (ServerSecurity, Vec<String>) {
        let mut errors = Vec::new();
        let security = validate_security(raw, &mut errors);
        (security, errors.iter().map(|e| format!("{}: {}", e.key, e.message)).collect())
    }

    const TLS: &str = "[tls]\ncert_file = \"{dir}/cert.pem\"\nkey_file = \"{dir}/key.pem\"\n";

    #[test]
    fn default_is_plain_and_open() {
        let files = Files::new();
        let (security, errors) = check(&files.server(""));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(security, ServerSecurity::default());
        assert!(!security.auth.is_enabled());
    }

    #[test]
    fn tls_with_and_without_client_certificates() {
        let files = Files::new();
        let (security, errors) = check(&files.server(TLS));
        assert!(errors.is_empty(), "{errors:?}");
        let tls = security.tls.unwrap();
        assert_eq!((tls.min_version, tls.client_ca.as_ref()), (TlsVersion::V12, None));
        assert_eq!(tls.load().unwrap().alpn_protocols, [b"http/1.1".to_vec()]);

        let mtls = format!("{TLS}client_ca_file = \"{{dir}}/ca.pem\"\nmin_version = \"1.3\"\n");
        let tls = check(&files.server(&mtls)).0.tls.unwrap();
        assert_eq!(
            tls.client_ca,
            Some((PathBuf::from(files.path("ca.pem")), ClientAuth::Require)),
            "require by default"
        );
        assert_eq!(tls.min_version, TlsVersion::V13);
        let optional = format!("{mtls}client_auth = \"verify_if_given\"\n");
        assert_eq!(check(&files.server(&optional)).0.tls.unwrap().client_ca.unwrap().1, ClientAuth::VerifyIfGiven);
        assert_eq!(tls.files().len(), 3);
    }

    #[test]
    fn bad_tls_keys_are_named() {
        let files = Files::new();
        let cases = [
            (TLS.replace("cert.pem", "missing.pem"), "server.tls.cert_file: cannot read"),
            (TLS.replace("cert.pem", "junk.pem"), "server.tls.cert_file: no PEM certificate"),
            (TLS.replace("key.pem", "missing.pem"), "server.tls.key_file: cannot read"),
            (TLS.replace("key.pem", "cert.pem"), "server.tls.key_file: no PEM private key"),
            (TLS.replace("key.pem", "other-key.pem"), "server.tls.key_file: does not match the certificate"),
            (format!("{TLS}client_ca_file = \"{{dir}}/junk.pem\"\n"), "server.tls.client_ca_file: no PEM certificate"),
            (format!("{TLS}client_auth = \"require\"\n"), "server.tls.client_auth: needs client_ca_file"),
            (
                format!("{TLS}client_ca_file = \"{{dir}}/ca.pem\"\nclient_auth = \"always\"\n"),
                "server.tls.client_auth: \"always\" is not",
            ),
            (format!("{TLS}min_version = \"1.1\"\n"), "server.tls.min_version: \"1.1\" is not"),
        ];
        for (extra, expected) in cases {
            let (security, errors) = check(&files.server(&extra));
            assert!(security.tls.is_none(), "{extra}");
            assert!(errors.len() == 1 && errors[0].starts_with(expected), "{extra}\n{errors:?}");
        }
        let unknown =
            toml::from_str::<RawServer>(&format!("listen = \"x\"\nshutdown_grace = \"1s\"\n{TLS}ciphers = []\n"));
        assert!(unknown.unwrap_err().to_string().contains("unknown field `ciphers`"));
    }

    #[test]
    fn basic_auth_users_need_bounded_bcrypt_hashes() {
        let files = Files::new();
        let good = bcrypt::hash("pw", 4).unwrap();
        let costly = bcrypt::hash_with_salt("pw", 13, [7; 16]).unwrap().to_string();
        let raw = files.server(&format!(
            "[basic_auth_users]\nprometheus = \"{good}\"\nplain = \"hunter2\"\ncostly = \"{costly}\"\n\"a:b\" = \"{good}\"\n"
        ));
        let (security, errors) = check(&raw);
        assert_eq!(security.auth.basic_users.keys().collect::<Vec<_>>(), ["prometheus"]);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("server.basic_auth_users.plain: not a bcrypt hash")));
        assert!(errors.iter().any(|e| e.starts_with("server.basic_auth_users.costly: bcrypt cost 13 is above 12")));
        assert!(errors.iter().any(|e| e.starts_with("server.basic_auth_users.a:b: a user name")));
        assert!(!errors.join(" ").contains("hunter2"), "an error quotes the secret");
        assert!(!format!("{security:?}").contains(&good), "Debug shows a hash");
    }

    #[test]
    fn bearer_token_file_is_read_trimmed_and_not_empty() {
        let files = Files::new();
        let (security, errors) = check(&files.server("bearer_token_file = \"{dir}/token\"\n"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(security.auth.bearer_token.as_ref().map(Secret::expose), Some("s3cret-token"));
        assert!(security.auth.is_enabled());
        for (file, expected) in [("empty", "is empty"), ("missing", "cannot read")] {
            let (security, errors) = check(&files.server(&format!("bearer_token_file = \"{{dir}}/{file}\"\n")));
            assert!(security.auth.bearer_token.is_none());
            assert!(errors.len() == 1 && errors[0].starts_with("server.bearer_token_file: "), "{errors:?}");
            assert!(errors[0].contains(expected), "{errors:?}");
        }
    }
}
