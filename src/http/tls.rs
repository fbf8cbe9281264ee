//! TLS on the surface's port (`[server.tls]`): the acceptor each new connection handshakes
//! with, rebuilt when a certificate, key or CA file changes (cert-manager and Kubernetes rotate
//! them in place), so a rotation needs no restart and no reload.
//!
//! A new connection looks at the files' metadata (modification time, size, inode: a Kubernetes
//! secret volume swaps a symlink) at most once per [`CHECK_INTERVAL`]; a change reads them all
//! again. A set that does not load (a key written before its certificate) is logged and the
//! previous certificate kept until the next change.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, TlsSettings};

/// How often a new connection may look at the certificate files: a rotated certificate is in
/// use by the first connection after at most this long.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// What identifies a file's content without reading it.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The surface's TLS acceptor, following its files.
pub struct Tls {
    settings: TlsSettings,
    check_interval: Duration,
    state: Mutex<State>,
}

struct State {
    acceptor: TlsAcceptor,
    stamps: Vec<Stamp>,
    checked: Instant,
}

impl Tls {
    /// Load the files now (the daemon does not start when they do not load).
    pub fn new(settings: TlsSettings) -> Result<Self, ConfigError> {
        Self::with_check_interval(settings, CHECK_INTERVAL)
    }

    /// [`Tls::new`] with another interval between looks at the files (tests).
    pub fn with_check_interval(settings: TlsSettings, check_interval: Duration) -> Result<Self, ConfigError> {
        let stamps = stamps(&settings);
        let acceptor = TlsAcceptor::from(settings.load()?);
        let state = Mutex::new(State { acceptor, stamps, checked: Instant::now() });
        Ok(Self { settings, check_interval, state })
    }

    /// The acceptor for a new connection: the current certificate, reloaded first when its files
    /// changed (checked at most once per interval).
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= self.check_interval {
            state.checked = Instant::now();
            let now = stamps(&self.settings);
            if now != state.stamps {
                state.stamps = now;
                match self.settings.load() {
                    Ok(config) => {
                        tracing::info!("TLS certificate files changed; new connections use them");
                        state.acceptor = TlsAcceptor::from(config);
                    }
                    Err(e) => tracing::warn!(
                        key = %e.key,
                        error = %e.message,
                        "TLS certificate files changed but do not load; keeping the previous certificate"
                    ),
                }
            }
        }
        state.acceptor.clone()
    }
}

fn stamps(settings: &TlsSettings) -> Vec<Stamp> {
    use std::os::unix::fs::MetadataExt;
    settings
        .files()
        .into_iter()
        .map(|path| std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len(), m.ino()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::net::{TcpListener, TcpStream};

    /// A CA, and a server certificate for 127.0.0.1 it signs with the given serial number.
    fn issue(ca: &rcgen::Issuer<'_, rcgen::KeyPair>, serial: u64) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.serial_number = Some(serial.into());
        (params.signed_by(&key, ca).unwrap().pem(), key.serialize_pem())
    }

    /// The certificate (DER) a handshake with `addr` presents.
    async fn served_certificate(addr: std::net::SocketAddr, roots: &rustls::RootCertStore) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    /// A certificate and key replaced on disk are what the next connection after the check
    /// interval is served; files that do not load keep the previous certificate.
    #[tokio::test]
    async fn rotated_files_are_served_to_new_connections() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let write = |(cert, key): (String, String)| {
            std::fs::write(&cert_file, cert).unwrap();
            std::fs::write(&key_file, key).unwrap();
        };
        let first = issue(&ca, 1);
        write(first.clone());
        let settings = TlsSettings {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca: None,
            min_version: crate::config::TlsVersion::V12,
        };
        let tls = Arc::new(Tls::with_check_interval(settings, Duration::from_millis(50)).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn({
            let tls = Arc::clone(&tls);
            async move {
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    // Hold each connection until the client is done with it.
                    if let Ok(stream) = tls.acceptor().accept(tcp).await {
                        tokio::spawn(async move {
                            let _stream = stream;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        });
                    }
                }
            }
        });
        let pem_der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec();
        assert_eq!(served_certificate(addr, &roots).await, pem_der(&first.0));

        let second = issue(&ca, 2);
        write(second.clone());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served_certificate(addr, &roots).await, pem_der(&second.0), "the rotated certificate");

        // A key that does not match (half a rotation): the previous certificate stays.
        std::fs::write(&key_file, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(served_certificate(addr, &roots).await, pem_der(&second.0), "kept on a bad set");
        server.abort();
    }
}
