//! The principals a test acts as, one constructor per role, shaped as the edge builds them
//! (a user of ours unless said otherwise; the store or organiser the role needs).
//!
//! ```text
//! use testkit::principal::{self, PrincipalExt};
//! let manager = principal::store_manager("rennes");
//! let alice = principal::customer("alice");
//! let key = principal::integrator("rennes", &["inventory:read"]);
//! let ho = principal::head_office().with_subject("direction");
//! ```

use platform::authz::{Principal, PrincipalKind, Role};

/// A user of `role`, with no store or organiser; the subject is the role's name.
pub fn user(role: Role) -> Principal {
    Principal {
        subject: role.as_str().to_string(),
        kind: PrincipalKind::User,
        role,
        store: None,
        organiser: None,
        scopes: vec![],
        session: None,
    }
}

/// A customer whose account id is `subject` (what carts and orders record as their owner).
pub fn customer(subject: &str) -> Principal {
    user(Role::Customer).with_subject(subject)
}

/// A clerk of `store`.
pub fn clerk(store: &str) -> Principal {
    user(Role::Clerk).with_store(store)
}

/// The manager of `store`.
pub fn store_manager(store: &str) -> Principal {
    user(Role::StoreManager).with_store(store)
}

/// Someone of the warehouse at `location`.
pub fn warehouse(location: &str) -> Principal {
    user(Role::Warehouse).with_store(location)
}

/// Head office: every store, every permission of the back office.
pub fn head_office() -> Principal {
    user(Role::HeadOffice)
}

/// An event organiser.
pub fn organiser(organiser: &str) -> Principal {
    let mut p = user(Role::Organiser);
    p.organiser = Some(organiser.to_string());
    p
}

/// An integrator's API key for `store`, limited to `scopes`.
pub fn integrator(store: &str, scopes: &[&str]) -> Principal {
    let mut p = user(Role::Integrator).with_store(store);
    p.kind = PrincipalKind::ApiKey;
    p.scopes = scopes.iter().map(|s| s.to_string()).collect();
    p
}

/// A principal from the `role[:store]` shorthand (`"head_office"`, `"clerk:rennes"`).
/// Panics on an unknown role: a typo in a test.
pub fn parse(s: &str) -> Principal {
    let (role, store) = match s.split_once(':') {
        Some((r, st)) => (r, Some(st)),
        None => (s, None),
    };
    let role = Role::parse(role).unwrap_or_else(|| panic!("unknown role in {s:?}"));
    let p = user(role);
    match store {
        Some(st) => p.with_store(st),
        None => p,
    }
}

/// Adjustments on top of the constructors.
pub trait PrincipalExt {
    fn with_subject(self, subject: &str) -> Self;
    fn with_store(self, store: &str) -> Self;
    fn with_session(self, session: &str) -> Self;
}

impl PrincipalExt for Principal {
    fn with_subject(mut self, subject: &str) -> Self {
        self.subject = subject.to_string();
        self
    }
    fn with_store(mut self, store: &str) -> Self {
        self.store = Some(store.to_string());
        self
    }
    fn with_session(mut self, session: &str) -> Self {
        self.session = Some(session.to_string());
        self
    }
}
