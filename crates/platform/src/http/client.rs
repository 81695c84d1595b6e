//! A small JSON-over-HTTP client for calls to identity providers and peers (JWKS, OpenID
//! discovery, token introspection). `http://` and `https://`: HTTPS with the process's trust
//! store ([`crate::tls`]), never downgraded to clear text; a certificate that does not verify is
//! an error naming the setting the URL came from.

use crate::tls::TlsClient;
use std::time::Duration;

const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct JsonClient {
    client: reqwest::Client,
    timeout: Duration,
    /// The setting the URLs come from, named in TLS errors.
    setting: &'static str,
}

impl JsonClient {
    /// With the process's trust store ([`crate::tls::current`]); `setting` is where the URLs
    /// come from, named when a server's certificate is refused.
    pub fn new(timeout: Duration, setting: &'static str) -> Self {
        JsonClient::with_tls(timeout, &crate::tls::current(), setting)
    }

    /// With the given trust store; `setting` is named when a server's certificate is refused.
    pub fn with_tls(timeout: Duration, tls: &TlsClient, setting: &'static str) -> Self {
        let client = tls
            .reqwest_builder()
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build the HTTPS client; using the defaults");
                reqwest::Client::new()
            });
        JsonClient {
            client,
            timeout,
            setting,
        }
    }

    pub async fn get(&self, url: &str) -> Result<serde_json::Value, String> {
        self.send(reqwest::Method::GET, url, None, None).await
    }

    /// POSTs `body`, with one more header when `header` is given (a credential).
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        header: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, String> {
        self.send(reqwest::Method::POST, url, Some(body), header)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        extra: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "{url}: only http:// and https:// URLs are supported"
            ));
        }
        let mut req = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some((name, value)) = extra {
            let v = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("invalid {name} header"))?;
            req = req.header(name, v);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).map_err(|e| e.to_string())?);
        }
        let res = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
            .map_err(|e| {
                if url.starts_with("https://") && e.is_connect() && crate::tls::is_tls_failure(&e) {
                    crate::tls::refused(self.setting, format!("{url}: {}", crate::tls::chain(&e)))
                } else {
                    format!("{url}: {}", crate::tls::chain(&e))
                }
            })?;
        let status = res.status();
        let bytes = tokio::time::timeout(self.timeout, read_limited(res))
            .await
            .map_err(|_| format!("{url}: body not received in time"))?
            .map_err(|e| format!("{url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{url}: answered {status}"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

async fn read_limited(mut res: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(format!("body larger than {MAX_BODY} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
