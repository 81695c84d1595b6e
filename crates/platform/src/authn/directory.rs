//! The directory: what the edge asks the identity service (signing keys, API keys, sessions),
//! and its remote implementation over HTTP.

use crate::authz::Principal;
use crate::caller::{CALL_HEADER, InternalKey};
use crate::http::client::JsonClient;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type DirFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// What the edge needs from the identity service: its public keys, API keys, sessions.
/// In one process it reads the identity database; otherwise it asks the identity service.
pub trait Directory: Send + Sync {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet>;
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>>;
    fn session_active<'a>(&'a self, session: &'a str) -> DirFuture<'a, bool>;
}

/// The answer of the identity service's introspection endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
}

/// The directory of an identity service in another process. Its introspection calls are
/// signed like every internal call ([`InternalKey::sign_call`]).
pub struct RemoteDirectory {
    base: String,
    key: InternalKey,
    caller: String,
    client: JsonClient,
}

/// The identity service's introspection route.
const INTROSPECT: &str = "/internal/identity/introspect";

impl RemoteDirectory {
    /// `caller` names this process in the signed calls (its targets).
    pub fn new(base_url: &str, key: InternalKey, caller: impl Into<String>) -> Self {
        RemoteDirectory {
            base: base_url.trim_end_matches('/').to_string(),
            key,
            caller: caller.into(),
            client: JsonClient::new(Duration::from_secs(5), "peers.identity_url"),
        }
    }

    async fn introspect(&self, body: serde_json::Value) -> Result<Introspection, String> {
        let signed = self.key.sign_call(
            &self.caller,
            "POST",
            INTROSPECT,
            chrono::Utc::now().timestamp(),
        );
        let v = self
            .client
            .post(
                &format!("{}{INTROSPECT}", self.base),
                &body,
                Some((CALL_HEADER, &signed)),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| format!("introspection answer: {e}"))
    }
}

impl Directory for RemoteDirectory {
    fn signing_keys(&self) -> DirFuture<'_, JwkSet> {
        Box::pin(async move {
            let v = self
                .client
                .get(&format!("{}/.well-known/jwks.json", self.base))
                .await?;
            serde_json::from_value(v).map_err(|e| format!("JWKS: {e}"))
        })
    }
    fn api_key<'a>(&'a self, presented: &'a str) -> DirFuture<'a, Option<Principal>> {
        Box::pin(async move {
            let r = self
                .introspect(serde_json::json!({ "api_key": presented }))
                .await?;
            Ok(if r.active { r.principal } else { None })
        })
    }
    fn session_active<'a>(&'a self, session: &'a str) -> DirFuture<'a, bool> {
        Box::pin(async move {
            let r = self
                .introspect(serde_json::json!({ "session_id": session }))
                .await?;
            Ok(r.active)
        })
    }
}
