//! Authorisation: who may do what. One module that every service uses.
//!
//! - A [`Principal`] is a verified identity: a user (with one [`Role`], scoped to a store or an
//!   organiser where the role says so) or an API key (role `integrator`, explicit scopes, often
//!   bound to one store).
//! - Permissions are strings `resource:action` ([`perm`]). A role grants a fixed set; an API
//!   key has only the scopes it was given, and only scopes an integrator may hold.
//! - Every route declares its [`Access`] in a [`RoutePolicy`]; [`enforce`] refuses a request to
//!   a route that declares nothing (fail closed: an empty declaration is never "allow all").
//! - Object-level checks stay in the handlers: [`Principal::may_act_for_store`] and
//!   [`Principal::is_subject`] answer "is this object theirs?", and a "no" is answered 404 so
//!   that ids of other people's objects are not confirmed.

use crate::http::problem::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The permissions. Later services add theirs here, so that the role table stays in one place.
pub mod perm {
    /// Read and change one's own account (profile, password, sessions).
    pub const ACCOUNT: &str = "account";
    /// Create and change products, categories, brands; read unpublished products.
    pub const CATALOG_WRITE: &str = "catalog:write";
    /// List and read staff accounts (a store manager: their store's only).
    pub const STAFF_READ: &str = "staff:read";
    /// Create, disable and re-role staff accounts (a store manager: their store's clerks).
    pub const STAFF_MANAGE: &str = "staff:manage";
    /// Create, list and revoke API keys (a store manager: keys bound to their store).
    pub const API_KEYS_MANAGE: &str = "api-keys:manage";
    /// Rotate the token signing keys.
    pub const SIGNING_KEYS_ROTATE: &str = "signing-keys:rotate";
    /// Read stock levels and movements.
    pub const INVENTORY_READ: &str = "inventory:read";
    /// Receive, adjust and transfer stock.
    pub const INVENTORY_WRITE: &str = "inventory:write";
    /// Read orders.
    pub const ORDERS_READ: &str = "orders:read";
    /// Cancel, refund and fulfil orders.
    pub const ORDERS_WRITE: &str = "orders:write";
    /// Ring up sales at a till.
    pub const POS_SELL: &str = "pos:sell";
    /// Create and run events, sell and scan tickets.
    pub const EVENTS_MANAGE: &str = "events:manage";

    /// Every permission, for head office and for checks.
    pub const ALL: &[&str] = &[
        ACCOUNT,
        CATALOG_WRITE,
        STAFF_READ,
        STAFF_MANAGE,
        API_KEYS_MANAGE,
        SIGNING_KEYS_ROTATE,
        INVENTORY_READ,
        INVENTORY_WRITE,
        ORDERS_READ,
        ORDERS_WRITE,
        POS_SELL,
        EVENTS_MANAGE,
    ];

    /// The scopes an API key may be given. Managing people, keys and signing keys is never
    /// delegated to a key.
    pub const KEY_SCOPES: &[&str] = &[
        CATALOG_WRITE,
        INVENTORY_READ,
        INVENTORY_WRITE,
        ORDERS_READ,
        ORDERS_WRITE,
        POS_SELL,
        EVENTS_MANAGE,
    ];
}

/// A role. Store-scoped roles act only for their store; `organiser` only for its organiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Clerk,
    StoreManager,
    Warehouse,
    HeadOffice,
    Organiser,
    Integrator,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::Customer,
        Role::Clerk,
        Role::StoreManager,
        Role::Warehouse,
        Role::HeadOffice,
        Role::Organiser,
        Role::Integrator,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Clerk => "clerk",
            Role::StoreManager => "store_manager",
            Role::Warehouse => "warehouse",
            Role::HeadOffice => "head_office",
            Role::Organiser => "organiser",
            Role::Integrator => "integrator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// Roles that must name a store (`warehouse` names the logistics centre).
    pub fn needs_store(&self) -> bool {
        matches!(self, Role::Clerk | Role::StoreManager | Role::Warehouse)
    }

    pub fn needs_organiser(&self) -> bool {
        matches!(self, Role::Organiser)
    }

    /// Staff roles (created by head office, never by sign-up).
    pub fn is_staff(&self) -> bool {
        !matches!(self, Role::Customer | Role::Integrator)
    }

    /// What the role grants. `integrator` grants nothing by itself: a key has its scopes.
    pub fn permissions(&self) -> &'static [&'static str] {
        use perm::*;
        match self {
            Role::Customer => &[ACCOUNT],
            Role::Clerk => &[ACCOUNT, POS_SELL, INVENTORY_READ, ORDERS_READ],
            Role::StoreManager => &[
                ACCOUNT,
                POS_SELL,
                INVENTORY_READ,
                INVENTORY_WRITE,
                ORDERS_READ,
                ORDERS_WRITE,
                STAFF_READ,
                STAFF_MANAGE,
                API_KEYS_MANAGE,
            ],
            Role::Warehouse => &[
                ACCOUNT,
                INVENTORY_READ,
                INVENTORY_WRITE,
                ORDERS_READ,
                ORDERS_WRITE,
            ],
            Role::HeadOffice => ALL,
            Role::Organiser => &[ACCOUNT, EVENTS_MANAGE],
            Role::Integrator => &[],
        }
    }

    /// How privileged, for picking one role out of several (external tokens carry lists).
    pub fn rank(&self) -> u8 {
        match self {
            Role::HeadOffice => 6,
            Role::StoreManager => 5,
            Role::Warehouse => 4,
            Role::Organiser => 3,
            Role::Clerk => 2,
            Role::Integrator => 1,
            Role::Customer => 0,
        }
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A Comptoir account, with an access token of ours (or the web session cookie).
    User,
    /// An account of an external OpenID Connect provider (Keycloak...), with its token.
    External,
    /// An API key.
    ApiKey,
}

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user's id, the external subject (`<issuer>#<sub>`), or the API key's id.
    pub subject: String,
    pub kind: PrincipalKind,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organiser: Option<String>,
    /// An API key's scopes (empty for users: their role says what they may do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The session (refresh-token family) of a user's access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl Principal {
    /// Whether this principal holds the permission.
    pub fn has(&self, permission: &str) -> bool {
        match self.kind {
            PrincipalKind::ApiKey => {
                perm::KEY_SCOPES.contains(&permission)
                    && self.scopes.iter().any(|s| s == permission)
            }
            PrincipalKind::User | PrincipalKind::External => {
                self.role.permissions().contains(&permission)
            }
        }
    }

    pub fn is_head_office(&self) -> bool {
        self.role == Role::HeadOffice && self.kind != PrincipalKind::ApiKey
    }

    /// Whether this principal may see or change objects of `store`: head office everywhere,
    /// store staff and store-bound keys only in their own store.
    pub fn may_act_for_store(&self, store: &str) -> bool {
        if self.is_head_office() {
            return true;
        }
        self.store.as_deref() == Some(store)
    }

    /// Whether this principal may see or change objects of `organiser`.
    pub fn may_act_for_organiser(&self, organiser: &str) -> bool {
        self.is_head_office() || self.organiser.as_deref() == Some(organiser)
    }

    /// Whether the object belongs to this principal (a customer's own cart, order, account).
    pub fn is_subject(&self, owner: &str) -> bool {
        self.subject == owner
    }

    /// Scopes idempotency keys and rate limits: one caller's keys never meet another's.
    pub fn scope_key(&self) -> String {
        match self.kind {
            PrincipalKind::ApiKey => format!("key:{}", self.subject),
            _ => format!("user:{}", self.subject),
        }
    }
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (the handler may still show more to some callers).
    Public,
    /// Any verified principal.
    Authenticated,
    /// A principal holding this permission.
    Permission(&'static str),
}

/// The access of every route of a service, by method and route pattern (as written in the
/// router, e.g. `/api/catalog/products/{key}`).
#[derive(Debug, Default, Clone)]
pub struct RoutePolicy {
    routes: HashMap<(Method, &'static str), Access>,
}

impl RoutePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a route. Declaring one twice is a programming error caught by the tests.
    pub fn route(mut self, method: Method, path: &'static str, access: Access) -> Self {
        let previous = self.routes.insert((method.clone(), path), access);
        debug_assert!(previous.is_none(), "{method} {path} declared twice");
        self
    }

    pub fn merge(mut self, other: RoutePolicy) -> Self {
        self.routes.extend(other.routes);
        self
    }

    /// The declared access, `None` when the route declares nothing.
    pub fn access(&self, method: &Method, path: &str) -> Option<Access> {
        // HEAD is answered by GET routes
        let m = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.routes.get(&(m.clone(), path)).copied()
    }

    /// The methods declared for a path (for `405` and its `Allow` header).
    pub fn methods_for(&self, path: &str) -> Vec<Method> {
        let mut v: Vec<Method> = self
            .routes
            .keys()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| m.clone())
            .collect();
        v.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        v
    }

    /// Every declared route, for the tests that compare the policy with the OpenAPI document.
    pub fn declared(&self) -> Vec<(Method, &'static str, Access)> {
        let mut v: Vec<_> = self
            .routes
            .iter()
            .map(|((m, p), a)| (m.clone(), *p, *a))
            .collect();
        v.sort_by(|a, b| (a.1, a.0.as_str()).cmp(&(b.1, b.0.as_str())));
        v
    }
}

/// The decision for one request.
pub fn decide(access: Option<Access>, principal: Option<&Principal>) -> Result<(), ApiError> {
    match access {
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route declares no permission, so nobody may use it",
        )),
        Some(Access::Public) => Ok(()),
        Some(Access::Authenticated) => match principal {
            Some(_) => Ok(()),
            None => Err(unauthenticated()),
        },
        Some(Access::Permission(p)) => match principal {
            None => Err(unauthenticated()),
            Some(pr) if pr.has(p) => Ok(()),
            Some(_) => Err(forbidden(p)),
        },
    }
}

pub fn unauthenticated() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "sign in first: send `Authorization: Bearer <access token or API key>`",
    )
}

pub fn forbidden(permission: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this needs the `{permission}` permission"),
    )
}

/// Middleware (use with `Router::route_layer`) that applies the route policy. A matched route
/// missing from the policy is refused and logged: the fail-closed rule.
pub async fn enforce(policy: Arc<RoutePolicy>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let access = path.as_deref().and_then(|p| policy.access(req.method(), p));
    if access.is_none()
        && let Some(p) = path.as_deref()
    {
        let allowed = policy.methods_for(p);
        if !allowed.is_empty() {
            // a known path, another method: 405, and the handler (if any) never runs
            tracing::warn!(method = %req.method(), route = p, "method not declared for this route");
            let mut res = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this route",
            )
            .into_response();
            let list = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = axum::http::HeaderValue::from_str(&list) {
                res.headers_mut().insert(axum::http::header::ALLOW, v);
            }
            return res;
        }
    }
    if access.is_none() {
        tracing::error!(
            method = %req.method(),
            route = path.as_deref().unwrap_or("?"),
            "route has no declared permission: refused"
        );
    }
    match decide(access, req.extensions().get::<Principal>()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, store: Option<&str>) -> Principal {
        Principal {
            subject: "u1".into(),
            kind: PrincipalKind::User,
            role,
            store: store.map(str::to_string),
            organiser: None,
            scopes: vec![],
            session: None,
        }
    }

    #[test]
    fn an_undeclared_route_is_refused_even_for_head_office() {
        let ho = user(Role::HeadOffice, None);
        let e = decide(None, Some(&ho)).expect_err("fail closed");
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let policy = RoutePolicy::new().route(Method::GET, "/a", Access::Public);
        assert_eq!(policy.access(&Method::POST, "/a"), None);
        assert_eq!(policy.access(&Method::GET, "/b"), None);
        assert_eq!(policy.access(&Method::HEAD, "/a"), Some(Access::Public));
    }

    #[test]
    fn roles_grant_what_the_table_says() {
        assert!(user(Role::HeadOffice, None).has(perm::CATALOG_WRITE));
        assert!(!user(Role::StoreManager, Some("rennes")).has(perm::CATALOG_WRITE));
        assert!(!user(Role::Customer, None).has(perm::STAFF_READ));
        assert!(user(Role::Customer, None).has(perm::ACCOUNT));
        // every role's permissions are known permissions
        for r in Role::ALL {
            for p in r.permissions() {
                assert!(perm::ALL.contains(p), "{p}");
            }
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
        let e = decide(
            Some(Access::Permission(perm::CATALOG_WRITE)),
            Some(&user(Role::Customer, None)),
        )
        .expect_err("customer");
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = decide(Some(Access::Authenticated), None).expect_err("anonymous");
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn keys_hold_only_their_scopes_and_never_admin_ones() {
        let mut k = user(Role::Integrator, Some("rennes"));
        k.kind = PrincipalKind::ApiKey;
        k.scopes = vec![perm::POS_SELL.into(), perm::STAFF_MANAGE.into()];
        assert!(k.has(perm::POS_SELL));
        assert!(!k.has(perm::INVENTORY_WRITE));
        assert!(!k.has(perm::STAFF_MANAGE), "not a key scope");
        assert!(k.may_act_for_store("rennes"));
        assert!(!k.may_act_for_store("brest"));
        // a key whose role somehow says head office is still only its scopes
        k.role = Role::HeadOffice;
        assert!(!k.is_head_office());
        assert!(!k.may_act_for_store("brest"));
    }

    #[test]
    fn store_staff_act_only_for_their_store() {
        let m = user(Role::StoreManager, Some("rennes"));
        assert!(m.may_act_for_store("rennes"));
        assert!(!m.may_act_for_store("brest"));
        assert!(user(Role::HeadOffice, None).may_act_for_store("brest"));
        assert!(!user(Role::Customer, None).may_act_for_store("rennes"));
    }
}
