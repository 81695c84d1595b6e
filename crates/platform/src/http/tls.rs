//! HTTPS termination with rustls (the ring provider, like every TLS of the build), when a
//! process is given a certificate chain and its key (`server.tls_cert_file`,
//! `server.tls_key_file`, PEM). The files are read again when they change (checked every
//! `server.tls_reload_seconds`), so that a renewed certificate (cert-manager, certbot) is
//! served without a restart; a new pair that does not load is refused and the old one kept.
//!
//! [`TlsListener`] is an [`axum::serve::Listener`]: handshakes run in their own tasks (a client
//! that stalls its handshake delays nobody else) and are bounded in time.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads the pair into a server configuration (HTTP/1.1 and HTTP/2 by ALPN).
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("{}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and the key do not go together: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Accepts TLS connections on a TCP listener.
pub struct TlsListener {
    local: SocketAddr,
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Loads the pair (an error names the file) and starts accepting.
    pub fn new(tcp: TcpListener, files: TlsFiles, reload: Duration) -> Result<TlsListener, String> {
        let current = Arc::new(RwLock::new(load(&files)?));
        let local = tcp.local_addr().map_err(|e| e.to_string())?;
        // a new pair when the files change
        {
            let current = current.clone();
            tokio::spawn(async move {
                let mut seen = (modified(&files.cert), modified(&files.key));
                let mut tick = tokio::time::interval(reload.max(Duration::from_millis(100)));
                loop {
                    tick.tick().await;
                    let now = (modified(&files.cert), modified(&files.key));
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    match load(&files) {
                        Ok(cfg) => {
                            if let Ok(mut c) = current.write() {
                                *c = cfg;
                            }
                            tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the new TLS certificate does not load; the previous one is kept")
                        }
                    }
                }
            });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // out of file descriptors and the like: wait a little, as axum does
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let cfg = match current.read() {
                    Ok(c) => c.clone(),
                    Err(_) => continue,
                };
                if tx.is_closed() {
                    break;
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let acceptor = TlsAcceptor::from(cfg);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local, rx })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // the accepting task ended: nothing will ever come
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
