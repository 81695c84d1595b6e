//! Demo accounts for Breizhsport: one per role, for each store and organiser. Passwords are
//! generated at first start, shown once, stored hashed. An API key for a legacy till of the
//! Rennes store, too.

use crate::app::{Identity, generate_password};
use crate::domain::email_key;
use crate::http::wire::{NewApiKey, NewStaff, Registration};
use crate::store;
use platform::authz::{Principal, PrincipalKind, Role, perm};

/// Breizhsport's shops (store codes used across services).
pub const STORES: &[(&str, &str)] = &[
    ("rennes", "Rennes"),
    ("brest", "Brest"),
    ("quimper", "Quimper"),
    ("vannes", "Vannes"),
    ("saint-malo", "Saint-Malo"),
];
/// The logistics centre (what `warehouse` accounts are scoped to).
pub const LOGISTICS_CENTRE: &str = "logistique";
/// Event organisers of the demo.
pub const ORGANISERS: &[(&str, &str)] = &[
    ("trail-des-abers", "Trail des Abers"),
    ("fest-noz-kemper", "Fest-noz Kemper"),
];

/// One created demo credential, printed once at first start.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub email: String,
    pub role: &'static str,
    pub scope: String,
    pub secret: String,
}

/// Seeds the accounts into an empty identity database; `None` if it already has users.
pub async fn seed(id: &Identity) -> Result<Option<Vec<DemoAccount>>, crate::app::Error> {
    if store::count_users(&id.db).await? > 0 {
        return Ok(None);
    }
    // e-mail, name, role, store, organiser
    type Wanted = (String, String, Role, Option<String>, Option<String>);
    let mut wanted: Vec<Wanted> = vec![(
        "direction@breizhsport.example".into(),
        "Direction Breizhsport".into(),
        Role::HeadOffice,
        None,
        None,
    )];
    for (code, name) in STORES {
        wanted.push((
            format!("gerant.{code}@breizhsport.example"),
            format!("Gérant·e {name}"),
            Role::StoreManager,
            Some((*code).to_string()),
            None,
        ));
        wanted.push((
            format!("vendeur.{code}@breizhsport.example"),
            format!("Vendeur·se {name}"),
            Role::Clerk,
            Some((*code).to_string()),
            None,
        ));
    }
    wanted.push((
        "entrepot@breizhsport.example".into(),
        "Centre logistique".into(),
        Role::Warehouse,
        Some(LOGISTICS_CENTRE.into()),
        None,
    ));
    for (code, name) in ORGANISERS {
        wanted.push((
            format!("{code}@organisateurs.example"),
            (*name).to_string(),
            Role::Organiser,
            None,
            Some((*code).to_string()),
        ));
    }
    // the head office acting for the seed
    let seeder = Principal {
        subject: "demo-seed".into(),
        kind: PrincipalKind::User,
        role: Role::HeadOffice,
        store: None,
        organiser: None,
        scopes: vec![],
        session: None,
    };
    let mut out = Vec::new();
    for (email, name, role, store, organiser) in wanted {
        let created = id
            .create_staff(
                &seeder,
                &NewStaff {
                    email: email.clone(),
                    name,
                    role,
                    store: store.clone(),
                    organiser: organiser.clone(),
                    password: None,
                },
            )
            .await?;
        out.push(DemoAccount {
            email,
            role: role.as_str(),
            scope: store.or(organiser).unwrap_or_else(|| "network".into()),
            secret: created.initial_password.unwrap_or_default(),
        });
    }
    let customer_pw = generate_password();
    id.register(&Registration {
        email: "client@example.org".into(),
        password: customer_pw.clone(),
        name: "Client de démonstration".into(),
    })
    .await?;
    out.push(DemoAccount {
        email: "client@example.org".into(),
        role: Role::Customer.as_str(),
        scope: "own data".into(),
        secret: customer_pw,
    });
    let key = id
        .create_api_key(
            &seeder,
            &NewApiKey {
                name: "Caisse historique Rennes".into(),
                scopes: vec![
                    perm::POS_SELL.into(),
                    perm::INVENTORY_READ.into(),
                    perm::ORDERS_READ.into(),
                ],
                store: Some("rennes".into()),
                expires_in_days: None,
            },
        )
        .await?;
    out.push(DemoAccount {
        email: format!("API key {}", key.api_key.prefix),
        role: Role::Integrator.as_str(),
        scope: "rennes".into(),
        secret: key.key,
    });
    debug_assert!(
        out.iter()
            .all(|a| !a.email.is_empty() && email_key(&a.email) == a.email.to_lowercase())
    );
    Ok(Some(out))
}
