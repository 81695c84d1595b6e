//! TLS to the backing services, with rustls and the ring provider (like every TLS of the build).
//!
//! One trust store for the whole process: Mozilla's roots (the `webpki-root-certs` crate, compiled
//! in: nothing is read from the system or downloaded) plus the optional private CA bundle of
//! `tls.ca_file` (PEM). [`TlsClient`] holds it, builds the one rustls `ClientConfig` that the
//! HTTPS clients use (Stripe, an OIDC provider's JWKS, peers), and hands the same CA to the
//! drivers that build their own rustls configuration (sqlx for PostgreSQL, redis, lapin).
//!
//! A URL that asks for TLS (`sslmode=require|verify-ca|verify-full`, `rediss://`, `amqps://`,
//! `https://`) never falls back to clear text, and a server whose certificate does not verify is
//! refused with a message that names the setting ([`refused`]).

use crate::config::ConfigError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The setting of the private CA bundle.
pub const CA_FILE_SETTING: &str = "tls.ca_file";

/// The trust store and the client configuration built from it. Cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    ca_file: Option<PathBuf>,
    /// The bundle's certificates, as read (PEM), for the drivers that take PEM.
    ca_pem: Option<Arc<str>>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's rustls provider (for the libraries that ask rustls for the default
/// one). Idempotent; the build links no other provider.
pub fn install_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one first: that one is ring as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Reads a PEM bundle: its text and its certificates. An unreadable file, a file with no
/// certificate, or a certificate that does not parse is an error.
pub fn read_ca_file(path: &Path) -> Result<(String, Vec<CertificateDer<'static>>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
            path.display()
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    for c in &certs {
        store.add(c.clone()).map_err(|e| {
            format!(
                "{}: a certificate cannot be used as a CA: {e}",
                path.display()
            )
        })?;
    }
    Ok((text, certs))
}

impl TlsClient {
    /// Mozilla's roots only.
    pub fn public_roots() -> TlsClient {
        TlsClient::build(None, None, &[])
    }

    /// Mozilla's roots plus the bundle at `path`.
    pub fn with_ca_file(path: &Path) -> Result<TlsClient, String> {
        let (pem, certs) = read_ca_file(path)?;
        Ok(TlsClient::build(
            Some(path.to_path_buf()),
            Some(pem),
            &certs,
        ))
    }

    /// From `tls.ca_file` (empty: public roots only); errors name the setting.
    pub fn from_settings(s: &crate::config::TlsSettings) -> Result<TlsClient, ConfigError> {
        if s.ca_file.is_empty() {
            return Ok(TlsClient::public_roots());
        }
        TlsClient::with_ca_file(Path::new(&s.ca_file))
            .map_err(|m| ConfigError::new(CA_FILE_SETTING, m))
    }

    fn build(
        ca_file: Option<PathBuf>,
        ca_pem: Option<String>,
        extra: &[CertificateDer<'static>],
    ) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        roots.add_parsable_certificates(extra.iter().cloned());
        // The ring provider supports the safe default versions: this cannot fail.
        let config = match rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
        {
            Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
            Err(_) => unreachable_config(),
        };
        TlsClient {
            ca_file,
            ca_pem: ca_pem.map(Arc::from),
            config: Arc::new(config),
        }
    }

    /// The private CA bundle, when one is configured.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The rustls client configuration (ring, Mozilla's roots + the bundle, no client auth).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// A reqwest builder that speaks TLS with this configuration. `https://` is TLS or an
    /// error, never clear text.
    pub fn reqwest_builder(&self) -> reqwest::ClientBuilder {
        // reqwest asks rustls for the process's provider for what it builds itself
        install_provider();
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        reqwest::Client::builder().tls_backend_preconfigured(config)
    }

    /// The TLS configuration lapin takes: the bundle, added to Mozilla's roots.
    pub fn amqp_config(&self) -> lapin::tcp::OwnedTLSConfig {
        lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca_pem.as_deref().map(str::to_string),
        }
    }

    /// A Redis client for `url` (`redis://` or `rediss://`); `setting` names the URL in errors.
    /// `rediss://` verifies the server against Mozilla's roots and the bundle; the redis crate's
    /// `#insecure` (no verification) is refused.
    pub fn redis_client(&self, url: &str, setting: &str) -> Result<redis::Client, String> {
        let tls = url.starts_with("rediss://");
        if tls && url.contains('#') {
            return Err(format!(
                "{setting}: a rediss:// URL with a #fragment (#insecure turns verification \
                 off) is refused; trust the server's CA with {CA_FILE_SETTING} instead"
            ));
        }
        let client = match (&self.ca_pem, tls) {
            (Some(pem), true) => {
                // The crate replaces its roots with the ones given: give Mozilla's and ours.
                let mut bundle = String::with_capacity(pem.len() + 300_000);
                bundle.push_str(pem);
                bundle.push('\n');
                for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                    bundle.push_str(&pem_of(c));
                }
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(bundle.into_bytes()),
                    },
                )
            }
            _ => redis::Client::open(url),
        };
        client.map_err(|e| format!("{setting}: {e}"))
    }
}

fn pem_of(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cold]
fn unreachable_config() -> rustls::ClientConfig {
    // Not reached (ring supports TLS 1.2 and 1.3); an empty store refuses every server.
    #[allow(clippy::expect_used)]
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

static CURRENT: OnceLock<TlsClient> = OnceLock::new();

/// Makes `tls` the process's trust store (called once at start, after the settings are read).
/// Later calls keep the first one.
pub fn install(tls: TlsClient) {
    install_provider();
    let _ = CURRENT.set(tls);
}

/// The process's trust store: the installed one, or Mozilla's roots alone.
pub fn current() -> TlsClient {
    install_provider();
    CURRENT.get_or_init(TlsClient::public_roots).clone()
}

/// True when the error (or one of its causes) says the peer's certificate was refused or the
/// TLS handshake failed.
pub fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some()
            || err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        let text = err.to_string();
        if text.contains("certificate")
            || text.contains("InvalidCertificate")
            || text.contains("UnknownIssuer")
            || text.contains("handshake")
            || text.contains("corrupt message")
            || text.contains("does not support TLS")
            || text.contains("tls")
            || text.contains("TLS")
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The message naming `setting` when connecting to a `rediss://` URL failed in TLS.
pub fn redis_tls_failure(setting: &str, url: &str, e: &redis::RedisError) -> Option<String> {
    (url.starts_with("rediss://") && is_tls_failure(e)).then(|| refused(setting, chain(e)))
}

/// The message for a TLS failure reaching a backing service: names the setting and says how to
/// trust the server.
pub fn refused(setting: &str, detail: impl std::fmt::Display) -> String {
    format!(
        "{setting}: TLS with the server failed ({detail}); its certificate must verify against \
         Mozilla's roots or the CA bundle of {CA_FILE_SETTING} (for PostgreSQL also the URL's \
         sslrootcert), and the server must speak TLS on that port"
    )
}

/// The whole chain of an error, `: `-separated (rustls' reason is usually a few causes down).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}
