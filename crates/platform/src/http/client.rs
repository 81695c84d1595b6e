//! A small JSON-over-HTTP client for service-to-service calls (JWKS, OpenID discovery, token
//! introspection). Plain `http://` only for now: these calls stay inside the installation's
//! network (see the README on TLS).

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct JsonClient {
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

impl JsonClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        JsonClient {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
            timeout,
        }
    }

    pub async fn get(&self, url: &str) -> Result<serde_json::Value, String> {
        self.send(Method::GET, url, None, None).await
    }

    /// POSTs `body`, with one more header when `header` is given (a credential).
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        header: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, String> {
        self.send(Method::POST, url, Some(body), header).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        extra: Option<(&str, &str)>,
    ) -> Result<serde_json::Value, String> {
        if !url.starts_with("http://") {
            return Err(format!("{url}: only http:// URLs are supported here"));
        }
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "application/json");
        if let Some((name, value)) = extra {
            let v = HeaderValue::from_str(value).map_err(|_| format!("invalid {name} header"))?;
            req = req.header(name, v);
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    serde_json::to_vec(b).map_err(|e| e.to_string())?,
                )),
            None => req.body(Body::empty()),
        }
        .map_err(|e| format!("{url}: {e}"))?;
        let res = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| format!("{url}: no answer within {:?}", self.timeout))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status();
        let limited = http_body_util::Limited::new(res.into_body(), MAX_BODY);
        let bytes = tokio::time::timeout(self.timeout, limited.collect())
            .await
            .map_err(|_| format!("{url}: body not received in time"))?
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{url}: answered {status}"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}
