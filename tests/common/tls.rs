//! A throwaway PKI for the daemon's TLS (rcgen): a CA, a server certificate for 127.0.0.1 and a
//! client certificate it signs, as PEM files in a temporary folder, and reqwest clients that
//! trust the CA (with or without the client certificate).
#![allow(dead_code)]

use std::time::Duration;

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
}

impl Pki {
    /// Writes `ca.pem`, `server.pem`, `server-key.pem`, `client.pem`, `client-key.pem`, and
    /// `other-ca.pem` (a CA that signed nothing here).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            (cert.pem(), rcgen::Issuer::new(params, key))
        };
        let (ca_pem, issuer) = ca("mcp-canary test CA");
        let (other_ca_pem, _) = ca("another CA");
        let leaf = |sans: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(sans).unwrap();
            params.extended_key_usages = vec![usage];
            (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
        };
        let (server, server_key) =
            leaf(vec!["127.0.0.1".into(), "localhost".into()], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client, client_key) = leaf(vec!["prometheus".into()], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        for (name, text) in [
            ("ca.pem", &ca_pem),
            ("other-ca.pem", &other_ca_pem),
            ("server.pem", &server),
            ("server-key.pem", &server_key),
            ("client.pem", &client),
            ("client-key.pem", &client_key),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Self { dir, ca_pem }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A `[server.tls]` table with the server certificate, plus `extra` lines.
    pub fn server_tls(&self, extra: &str) -> String {
        format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{extra}",
            self.path("server.pem"),
            self.path("server-key.pem")
        )
    }

    /// A client trusting only the test CA; presenting the client certificate when `identity`.
    pub fn client(&self, identity: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(10));
        if identity {
            let pem = std::fs::read_to_string(self.path("client.pem")).unwrap()
                + &std::fs::read_to_string(self.path("client-key.pem")).unwrap();
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }
}
