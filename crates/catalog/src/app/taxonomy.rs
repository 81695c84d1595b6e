//! Brands and categories, and the category tree.

use super::{Error, derive_slug, ensure_free, invalid};
use crate::domain::{self, Errors};
use crate::http::wire::*;
use crate::store::{self, Unique};
use chrono::{DateTime, Utc};
use platform::db::Tx;
use uuid::Uuid;

/// Creates a brand; its slug is derived from the name unless given.
pub async fn create_brand(
    tx: &mut Tx,
    input: &NewBrand,
    now: DateTime<Utc>,
) -> Result<Brand, Error> {
    let mut errs = Errors::default();
    domain::check_text(&mut errs, "name", &input.name, domain::MAX_NAME, true);
    let slug = derive_slug(input.slug.as_deref(), &input.name);
    domain::check_slug(&mut errs, "slug", &slug);
    errs.into_result()?;
    ensure_free(tx, Unique::BrandSlug, &slug, "slug").await?;
    let b = Brand {
        id: Uuid::now_v7(),
        slug,
        name: input.name.clone(),
    };
    store::insert_brand(tx.conn(), &b, now).await?;
    Ok(b)
}

/// Creates a category under `parent_id` (or at the top).
pub async fn create_category(
    tx: &mut Tx,
    input: &NewCategory,
    now: DateTime<Utc>,
) -> Result<Category, Error> {
    let mut errs = Errors::default();
    domain::check_localized(&mut errs, "name", &input.name, domain::MAX_NAME, true);
    let slug = derive_slug(input.slug.as_deref(), &input.name.fr);
    domain::check_slug(&mut errs, "slug", &slug);
    if !(0..=100_000).contains(&input.position) {
        errs.add("position", "out_of_range", "between 0 and 100000");
    }
    errs.into_result()?;
    if let Some(parent) = input.parent_id
        && store::get_category(tx.conn(), parent).await?.is_none()
    {
        return Err(invalid("parent_id", "not_found", "no such category"));
    }
    ensure_free(tx, Unique::CategorySlug, &slug, "slug").await?;
    let k = Category {
        id: Uuid::now_v7(),
        parent_id: input.parent_id,
        slug,
        name: input.name.clone(),
        position: input.position,
    };
    store::insert_category(tx.conn(), &k, now).await?;
    Ok(k)
}

/// Builds the category tree from the flat list.
pub fn category_tree(all: Vec<Category>) -> Vec<CategoryNode> {
    fn children(all: &[Category], parent: Option<Uuid>, depth: usize) -> Vec<CategoryNode> {
        if depth > 16 {
            return Vec::new();
        }
        all.iter()
            .filter(|c| c.parent_id == parent)
            .map(|c| CategoryNode {
                category: c.clone(),
                children: children(all, Some(c.id), depth + 1),
            })
            .collect()
    }
    children(&all, None, 0)
}
