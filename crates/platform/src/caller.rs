//! How a verified identity reaches a service.
//!
//! The edge (the gateway, or the edge layer of the one-process mode) authenticates every
//! request and puts the [`Principal`] and the client's address into the request's extensions.
//! When the service runs in another process, the gateway sends both in the
//! `x-comptoir-identity` header, signed with HMAC-SHA256 under the shared internal secret and
//! stamped with the time; [`accept_internal_identity`] verifies it (a forged, stale or unsigned
//! header is refused). Clients can never set it: the edge removes it from every request.
//!
//! The client's address is the TCP peer's, unless that peer is one of the
//! `server.trusted_proxies` ([`TrustedProxies`]): then `X-Forwarded-For` names it.

use crate::authz::Principal;
use crate::http::problem::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub const IDENTITY_HEADER: &str = "x-comptoir-identity";

/// How long a signed identity header stays valid (clock skew between processes included).
const HEADER_MAX_AGE_SECS: i64 = 60;

/// The client's address as the edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn from_parts(parts: &Parts) -> ClientIp {
        if let Some(ip) = parts.extensions.get::<ClientIp>() {
            return *ip;
        }
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return ClientIp(addr.ip());
        }
        ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::from_parts(parts))
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`): addresses and
/// CIDR blocks. Empty, the default: the TCP peer is the client, whatever the header says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDR blocks: `"10.0.0.0/8, 192.0.2.7, fd00::/8"`.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or a CIDR block"))?;
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("`{item}`: the prefix length must be 0 to {max}"))?,
            };
            if masked(ip, len) != ip {
                return Err(format!(
                    "`{item}` has bits set past its prefix (did you mean {}/{len}?)",
                    masked(ip, len)
                ));
            }
            nets.push((ip, len));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0
            .iter()
            .any(|(net, len)| net.is_ipv4() == ip.is_ipv4() && masked(ip, *len) == *net)
    }

    /// The client of a request from `peer`: `peer` itself unless it is a trusted proxy; then
    /// the right-most address of `X-Forwarded-For` that is not a trusted proxy (each proxy
    /// appends the peer it saw, so what stands left of the first untrusted hop was written by
    /// the client and proves nothing). When every hop is trusted, or one is not an address,
    /// the last good hop.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .map(str::trim)
            .collect();
        for hop in hops.into_iter().rev() {
            let Some(ip) = forwarded_addr(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// `ip` with the bits past its first `len` cleared.
fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// One hop of `X-Forwarded-For`: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets.
fn forwarded_addr(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or("")
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

/// The caller of a request: a verified principal, or anonymous. Never fails: routes that need
/// someone declare it in their [`crate::authz::RoutePolicy`].
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Principal>);

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        self.0.as_ref()
    }
    pub fn has(&self, permission: &str) -> bool {
        self.0.as_ref().is_some_and(|p| p.has(permission))
    }
    /// The principal, or 401 (for handlers behind `Access::Authenticated`).
    pub fn require(&self) -> Result<&Principal, ApiError> {
        self.0.as_ref().ok_or_else(crate::authz::unauthenticated)
    }
    /// A short stable name that scopes idempotency keys.
    pub fn scope(&self) -> String {
        match &self.0 {
            Some(p) => p.scope_key(),
            None => "anonymous".to_string(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller(parts.extensions.get::<Principal>().cloned()))
    }
}

/// The secret shared by the gateway and the services of one installation.
#[derive(Clone)]
pub struct InternalKey(Arc<Vec<u8>>);

impl std::fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalKey(********)")
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Principal>,
}

impl InternalKey {
    pub fn new(secret: &[u8]) -> Self {
        InternalKey(Arc::new(secret.to_vec()))
    }

    /// A random key, for a process that runs the edge and the services together.
    pub fn random() -> Self {
        Self::new(crate::random_hex(32).as_bytes())
    }

    fn mac(&self, msg: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length
        #[allow(clippy::expect_used)]
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("any key length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }

    /// `v1.<unix seconds>.<payload>.<mac>`.
    pub fn sign(&self, ip: IpAddr, principal: Option<&Principal>, now_unix: i64) -> HeaderValue {
        let payload = serde_json::to_vec(&Envelope {
            ip,
            p: principal.cloned(),
        })
        .unwrap_or_default();
        let body = format!("v1.{now_unix}.{}", B64.encode(payload));
        let mac = B64.encode(self.mac(body.as_bytes()));
        HeaderValue::from_str(&format!("{body}.{mac}"))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// The identity in a header this key signed less than a minute ago.
    pub fn verify(&self, value: &str, now_unix: i64) -> Option<(IpAddr, Option<Principal>)> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = self.mac(body.as_bytes());
        let presented = B64.decode(mac).ok()?;
        if presented.len() != expected.len()
            || presented
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return None;
        }
        let mut parts = body.splitn(3, '.');
        if parts.next()? != "v1" {
            return None;
        }
        let ts: i64 = parts.next()?.parse().ok()?;
        if (now_unix - ts).abs() > HEADER_MAX_AGE_SECS {
            return None;
        }
        let env: Envelope = serde_json::from_slice(&B64.decode(parts.next()?).ok()?).ok()?;
        Some((env.ip, env.p))
    }
}

/// The header of a call from one service to another's `/internal/...` routes.
pub const CALL_HEADER: &str = "x-comptoir-call";

impl InternalKey {
    /// `v1.<unix seconds>.<caller>.<mac>`, the MAC over the method, the path (with its query),
    /// the time and the caller's name: a captured header opens no other route and expires.
    pub fn sign_call(&self, caller: &str, method: &str, path: &str, now_unix: i64) -> String {
        let body = format!("v1.{now_unix}.{caller}");
        let mac = B64.encode(self.mac(format!("{body}\n{method}\n{path}").as_bytes()));
        format!("{body}.{mac}")
    }

    /// The caller named by a call header this key signed for this method and path less than a
    /// minute ago.
    pub fn verify_call(
        &self,
        value: &str,
        method: &str,
        path: &str,
        now_unix: i64,
    ) -> Option<String> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = self.mac(format!("{body}\n{method}\n{path}").as_bytes());
        let presented = B64.decode(mac).ok()?;
        if presented.len() != expected.len()
            || presented
                .iter()
                .zip(&expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0
        {
            return None;
        }
        let mut parts = body.splitn(3, '.');
        if parts.next()? != "v1" {
            return None;
        }
        let ts: i64 = parts.next()?.parse().ok()?;
        if (now_unix - ts).abs() > HEADER_MAX_AGE_SECS {
            return None;
        }
        Some(parts.next()?.to_string())
    }
}

/// Service-side guard of `/internal/...` routes: only a call signed by a service of this
/// installation passes ([`InternalKey::sign_call`]); anything else is 401 `invalid_internal_call`.
pub async fn internal_calls_only(key: InternalKey, req: Request, next: Next) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let ok = req
        .headers()
        .get(CALL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            key.verify_call(
                v,
                req.method().as_str(),
                &path,
                chrono::Utc::now().timestamp(),
            )
        });
    if ok.is_none() {
        tracing::warn!(path = %req.uri().path(), "an internal call failed verification: check auth.internal_secret");
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_internal_call",
            "internal routes answer only calls signed by a service of this installation",
        )
        .into_response();
    }
    next.run(req).await
}

/// Service-side middleware: takes the identity the edge put in the extensions (one process) or
/// verifies the signed header (the gateway in another process). A header that does not verify
/// is answered 401: it means a misconfigured secret or a forgery, never a client mistake.
pub async fn accept_internal_identity(
    key: Option<InternalKey>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req.headers_mut().remove(IDENTITY_HEADER);
    if req.extensions().get::<EdgeVerified>().is_some() {
        return next.run(req).await;
    }
    if let Some(value) = header {
        let verified = key.as_ref().and_then(|k| {
            value
                .to_str()
                .ok()
                .and_then(|v| k.verify(v, chrono::Utc::now().timestamp()))
        });
        match verified {
            Some((ip, principal)) => {
                req.extensions_mut().insert(ClientIp(ip));
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
            }
            None => {
                tracing::warn!(
                    "an identity header failed verification: check auth.internal_secret"
                );
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_identity",
                    "the identity forwarded by the gateway could not be verified",
                )
                .into_response();
            }
        }
    } else {
        // no edge in front: nobody is signed in
        req.extensions_mut().remove::<Principal>();
    }
    next.run(req).await
}

/// Marks a request whose extensions were filled by the edge in this same process.
#[derive(Debug, Clone, Copy)]
pub struct EdgeVerified;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{PrincipalKind, Role};

    #[test]
    fn the_identity_header_resists_tampering_and_age() {
        let k = InternalKey::new(b"secret-one");
        let p = Principal {
            subject: "u".into(),
            kind: PrincipalKind::User,
            role: Role::Customer,
            store: None,
            organiser: None,
            scopes: vec![],
            session: None,
        };
        let ip: IpAddr = "10.0.0.7".parse().expect("ip");
        let h = k.sign(ip, Some(&p), 1_000);
        let v = h.to_str().expect("ascii");
        assert_eq!(k.verify(v, 1_010), Some((ip, Some(p.clone()))));
        assert_eq!(k.verify(v, 1_100), None, "too old");
        assert_eq!(InternalKey::new(b"other").verify(v, 1_010), None);
        // swap the payload for one claiming head office, keep the MAC
        let mut forged = p.clone();
        forged.role = Role::HeadOffice;
        let other = k.sign(ip, Some(&forged), 1_000);
        let (_, mac) = v.rsplit_once('.').expect("mac");
        let (body, _) = other
            .to_str()
            .expect("ascii")
            .rsplit_once('.')
            .expect("mac");
        assert_eq!(k.verify(&format!("{body}.{mac}"), 1_010), None);
    }

    #[test]
    fn trusted_proxies_are_addresses_and_cidr_blocks() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8,").expect("parse");
        for ip in ["10.1.2.3", "192.0.2.7", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(t.contains(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["11.0.0.1", "192.0.2.8", "fe80::1", "::ffff:192.0.2.8"] {
            assert!(!t.contains(ip.parse().expect("ip")), "{ip}");
        }
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .expect("all")
                .contains([1, 2, 3, 4].into())
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "localhost",
            "10.0.0.0/x",
            "fd00::/129",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_forwarded_hop_may_carry_a_port() {
        for (hop, ip) in [
            ("192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:4711", "192.0.2.1"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
        ] {
            assert_eq!(forwarded_addr(hop), Some(ip.parse().expect("ip")), "{hop}");
        }
        assert_eq!(forwarded_addr("unknown"), None);
        assert_eq!(forwarded_addr(""), None);
    }

    #[test]
    fn a_call_header_opens_one_route_for_a_minute() {
        let k = InternalKey::new(b"secret-one");
        let h = k.sign_call(
            "orders",
            "POST",
            "/internal/inventory/holds/1/commit",
            1_000,
        );
        assert_eq!(
            k.verify_call(&h, "POST", "/internal/inventory/holds/1/commit", 1_030),
            Some("orders".to_string())
        );
        assert_eq!(
            k.verify_call(&h, "POST", "/internal/inventory/holds/2/commit", 1_030),
            None
        );
        assert_eq!(
            k.verify_call(&h, "GET", "/internal/inventory/holds/1/commit", 1_030),
            None
        );
        assert_eq!(
            k.verify_call(&h, "POST", "/internal/inventory/holds/1/commit", 1_100),
            None
        );
        let other = InternalKey::new(b"secret-two");
        assert_eq!(
            other.verify_call(&h, "POST", "/internal/inventory/holds/1/commit", 1_030),
            None
        );
        // the caller's name is under the MAC too
        let forged = h.replacen("orders", "gateway", 1);
        assert_eq!(
            k.verify_call(&forged, "POST", "/internal/inventory/holds/1/commit", 1_030),
            None
        );
    }
}
