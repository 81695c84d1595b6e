//! Catalogue use cases: validation, then the writes of one transaction. HTTP handlers and the
//! demo seeder both go through here. They fail with [`Error`], never an HTTP type: `http` holds
//! the one mapping of these errors to problem documents.
//!
//! - `products`: create, change, archive a product; add and change its variants
//! - `taxonomy`: brands, categories and the category tree
//! - `listing`: a list request checked and resolved into the store's `ListSpec`

mod listing;
mod products;
mod taxonomy;

pub use listing::list_spec;
pub use products::{add_variant, archive_product, create_product, update_product, update_variant};
pub use taxonomy::{category_tree, create_brand, create_category};

use crate::domain::{self, Errors, Localized, Violation};
use crate::store::{self, StoreError, Unique};
use platform::db::Tx;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fields that break the rules, all of them.
    #[error("{} fields are invalid", .0.len())]
    Invalid(Vec<Violation>),
    /// A list request's parameter that parses but is refused (or names nothing).
    #[error("query parameter {field}: {message}")]
    BadQuery {
        field: &'static str,
        message: &'static str,
    },
    /// A cursor that is not one of this list (another sort, or not a cursor at all).
    #[error("query parameter cursor: not a cursor of this list; start again without it")]
    BadCursor,
    /// Only the back office lists unpublished products.
    #[error("only the back office sees unpublished products")]
    Unpublished,
    /// A slug, SKU or barcode already used.
    #[error("{field} `{value}` is already used")]
    Taken {
        what: Unique,
        field: String,
        value: String,
    },
    /// No such product or variant (`.0` names which).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// `If-Match` names another version than the stored one.
    #[error("the product is at version {current}, not {given}; reload it and retry")]
    VersionMismatch { current: i64, given: i64 },
    /// Someone else changed the product inside this request's read and write.
    #[error("the product changed while this request ran; reload it and retry")]
    ConcurrentUpdate,
    /// An archived product stays archived.
    #[error("an archived product cannot be changed back")]
    Archived,
    /// What this transaction wrote cannot be read back: a bug, not the client's doing.
    #[error("a product written in this transaction is missing")]
    Lost,
    /// The database failed, or holds a row this code cannot read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(StoreError::Sql(e))
    }
}

impl From<Vec<Violation>> for Error {
    fn from(v: Vec<Violation>) -> Self {
        Error::Invalid(v)
    }
}

/// One field that breaks a rule found in the database (a reference to nothing).
fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    let mut errs = Errors::default();
    errs.add(field, code, message);
    Error::Invalid(errs.0)
}

fn derive_slug(given: Option<&str>, from: &str) -> String {
    match given {
        Some(s) => s.to_string(),
        None => {
            let mut s = kernel::slugify(from);
            s.truncate(domain::MAX_SLUG);
            s.trim_end_matches('-').to_string()
        }
    }
}

fn check_image_url(errs: &mut Errors, field: &str, url: &str) {
    let ok = url.len() <= 2000
        && ((url.starts_with("https://") && url.len() > 8)
            || (url.starts_with('/') && !url.starts_with("//")))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errs.add(
            field,
            "invalid_url",
            "an https:// URL or a path on this server, at most 2000 characters",
        );
    }
}

fn check_option(errs: &mut Errors, field: &str, v: Option<&str>) {
    if let Some(v) = v {
        domain::check_text(errs, field, v, domain::MAX_OPTION, true);
    }
}

/// Fails with [`Error::Taken`] when `value` is already used as `what`.
async fn ensure_free(tx: &mut Tx, what: Unique, value: &str, field: &str) -> Result<(), Error> {
    if store::exists(tx.conn(), what, value).await? {
        return Err(Error::Taken {
            what,
            field: field.to_string(),
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Localized helper for the seeder.
pub fn loc(fr: &str, en: &str) -> Localized {
    Localized {
        fr: fr.into(),
        en: en.into(),
    }
}
