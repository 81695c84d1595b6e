//! Products and their variants: create, change, archive; add and change a variant.

use super::{Error, check_image_url, check_option, derive_slug, ensure_free, invalid};
use crate::domain::{self, Errors, Status};
use crate::http::wire::*;
use crate::store::{self, ProductKey, ProductWrite, Unique, VariantWrite};
use chrono::{DateTime, Utc};
use kernel::Currency;
use platform::db::Tx;
use std::collections::HashSet;
use uuid::Uuid;

/// Creates a product with its variants and images.
pub async fn create_product(
    tx: &mut Tx,
    input: &NewProduct,
    now: DateTime<Utc>,
) -> Result<Product, Error> {
    let mut errs = Errors::default();
    domain::check_localized(&mut errs, "name", &input.name, domain::MAX_NAME, true);
    domain::check_localized(
        &mut errs,
        "description",
        &input.description,
        domain::MAX_DESCRIPTION,
        false,
    );
    let slug = derive_slug(input.slug.as_deref(), &input.name.fr);
    domain::check_slug(&mut errs, "slug", &slug);
    domain::check_attributes(&mut errs, &input.attributes);
    let status = input.status.unwrap_or(Status::Draft);
    if status == Status::Archived {
        errs.add(
            "status",
            "invalid_value",
            "a new product is `draft` or `published`",
        );
    }
    if input.variants.is_empty() {
        errs.add(
            "variants",
            "required",
            "a product needs at least one variant",
        );
    } else if input.variants.len() > domain::MAX_VARIANTS {
        errs.add(
            "variants",
            "too_many",
            format!("at most {} variants", domain::MAX_VARIANTS),
        );
    }
    if input.images.len() > domain::MAX_IMAGES {
        errs.add(
            "images",
            "too_many",
            format!("at most {} images", domain::MAX_IMAGES),
        );
    }
    let currency = input
        .variants
        .first()
        .map(|v| v.price.currency)
        .unwrap_or(Currency::EUR);
    let mut skus = HashSet::new();
    let mut barcodes = HashSet::new();
    for (i, v) in input.variants.iter().enumerate().take(domain::MAX_VARIANTS) {
        let f = |s: &str| format!("variants[{i}].{s}");
        domain::check_sku(&mut errs, &f("sku"), &v.sku);
        if !skus.insert(v.sku.as_str()) {
            errs.add(f("sku"), "duplicate", "each SKU once");
        }
        if let Some(b) = &v.barcode {
            domain::check_barcode(&mut errs, &f("barcode"), b);
            if !barcodes.insert(b.as_str()) {
                errs.add(f("barcode"), "duplicate", "each barcode once");
            }
        }
        check_option(&mut errs, &f("size"), v.size.as_deref());
        check_option(&mut errs, &f("colour"), v.colour.as_deref());
        domain::check_price(
            &mut errs,
            &f("price.amount_minor"),
            v.price.amount_minor,
            v.price.currency,
        );
        if v.price.currency != currency {
            errs.add(
                f("price.currency"),
                "currency_mismatch",
                format!("all variants of a product are priced in one currency ({currency})"),
            );
        }
        domain::check_vat(&mut errs, &f("vat_rate"), v.vat_rate);
    }
    for (i, img) in input.images.iter().enumerate().take(domain::MAX_IMAGES) {
        check_image_url(&mut errs, &format!("images[{i}].url"), &img.url);
        domain::check_localized(
            &mut errs,
            &format!("images[{i}].alt"),
            &img.alt,
            domain::MAX_NAME,
            false,
        );
    }
    errs.into_result()?;

    // references and uniqueness, inside the transaction
    let brand = match input.brand_id {
        Some(id) => Some(
            store::get_brand(tx.conn(), id)
                .await?
                .ok_or_else(|| invalid("brand_id", "not_found", "no such brand"))?,
        ),
        None => None,
    };
    let category = match input.category_id {
        Some(id) => Some(
            store::get_category(tx.conn(), id)
                .await?
                .ok_or_else(|| invalid("category_id", "not_found", "no such category"))?,
        ),
        None => None,
    };
    ensure_free(tx, Unique::ProductSlug, &slug, "slug").await?;
    for (i, v) in input.variants.iter().enumerate() {
        ensure_free(tx, Unique::Sku, &v.sku, &format!("variants[{i}].sku")).await?;
        if let Some(b) = &v.barcode {
            ensure_free(tx, Unique::Barcode, b, &format!("variants[{i}].barcode")).await?;
        }
    }

    let id = Uuid::now_v7();
    let prices: Vec<i64> = input
        .variants
        .iter()
        .map(|v| v.price.amount_minor)
        .collect();
    let sku_refs: Vec<&str> = input.variants.iter().map(|v| v.sku.as_str()).collect();
    let search = domain::search_text(
        &input.name,
        brand.as_ref().map(|b| b.name.as_str()),
        category.as_ref().map(|c| &c.name),
        &sku_refs,
    );
    let row = ProductWrite {
        id,
        slug: &slug,
        status,
        name: &input.name,
        description: &input.description,
        brand_id: brand.as_ref().map(|b| b.id),
        category_id: category.as_ref().map(|c| c.id),
        attributes: &input.attributes,
        currency,
        min_price: prices.iter().copied().min().unwrap_or(0),
        max_price: prices.iter().copied().max().unwrap_or(0),
        search_text: &search,
        published_at: (status == Status::Published).then_some(now),
    };
    store::insert_product(tx.conn(), &row, now).await?;
    for (i, v) in input.variants.iter().enumerate() {
        store::insert_variant(
            tx.conn(),
            &VariantWrite {
                id: Uuid::now_v7(),
                product_id: id,
                sku: &v.sku,
                barcode: v.barcode.as_deref(),
                size: v.size.as_deref(),
                colour: v.colour.as_deref(),
                price_minor: v.price.amount_minor,
                vat_rate_bp: v.vat_rate,
                position: i as i32,
                active: true,
            },
            now,
        )
        .await?;
    }
    for (i, img) in input.images.iter().enumerate() {
        store::insert_image(
            tx.conn(),
            &store::ImageWrite {
                id: Uuid::now_v7(),
                product_id: id,
                position: i as i32,
                alt: &img.alt,
                content_type: None,
                data: None,
                url: Some(&img.url),
            },
        )
        .await?;
    }
    load(tx, id).await
}

async fn load(tx: &mut Tx, id: Uuid) -> Result<Product, Error> {
    store::load_product(tx.conn(), ProductKey::Id(id))
        .await?
        .ok_or(Error::Lost)
}

/// Loads a product for change, checking `If-Match` when given.
async fn load_for_change(tx: &mut Tx, id: Uuid, if_match: Option<i64>) -> Result<Product, Error> {
    let p = store::load_product(tx.conn(), ProductKey::Id(id))
        .await?
        .ok_or(Error::NotFound("product"))?;
    if let Some(v) = if_match
        && v != p.version
    {
        return Err(Error::VersionMismatch {
            current: p.version,
            given: v,
        });
    }
    Ok(p)
}

/// Writes `p` back (with recomputed price range and search text) if nobody changed it since.
async fn write_back(tx: &mut Tx, p: &Product, now: DateTime<Utc>) -> Result<Product, Error> {
    let active = store::variant_rows(tx.conn(), p.id).await?;
    let (min, max) = if active.is_empty() {
        let all: Vec<i64> = p.variants.iter().map(|v| v.price.amount_minor).collect();
        (
            all.iter().copied().min().unwrap_or(0),
            all.iter().copied().max().unwrap_or(0),
        )
    } else {
        (
            active.iter().map(|a| a.2).min().unwrap_or(0),
            active.iter().map(|a| a.2).max().unwrap_or(0),
        )
    };
    let skus: Vec<&str> = p.variants.iter().map(|v| v.sku.as_str()).collect();
    let search = domain::search_text(
        &p.name,
        p.brand.as_ref().map(|b| b.name.as_str()),
        p.category.as_ref().map(|c| &c.name),
        &skus,
    );
    let row = ProductWrite {
        id: p.id,
        slug: &p.slug,
        status: p.status,
        name: &p.name,
        description: &p.description,
        brand_id: p.brand.as_ref().map(|b| b.id),
        category_id: p.category.as_ref().map(|c| c.id),
        attributes: &p.attributes,
        currency: p.price_range.min.currency,
        min_price: min,
        max_price: max,
        search_text: &search,
        published_at: p.published_at,
    };
    if !store::update_product(tx.conn(), &row, p.version, now).await? {
        return Err(Error::ConcurrentUpdate);
    }
    load(tx, p.id).await
}

/// Changes the given fields of a product.
pub async fn update_product(
    tx: &mut Tx,
    id: Uuid,
    patch: &ProductPatch,
    if_match: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Product, Error> {
    let mut p = load_for_change(tx, id, if_match).await?;
    let mut errs = Errors::default();
    if let Some(n) = &patch.name {
        domain::check_localized(&mut errs, "name", n, domain::MAX_NAME, true);
    }
    if let Some(d) = &patch.description {
        domain::check_localized(&mut errs, "description", d, domain::MAX_DESCRIPTION, false);
    }
    if let Some(s) = &patch.slug {
        domain::check_slug(&mut errs, "slug", s);
    }
    if let Some(a) = &patch.attributes {
        domain::check_attributes(&mut errs, a);
    }
    if patch.status == Some(Status::Archived) {
        errs.add(
            "status",
            "invalid_value",
            "archive a product with POST .../archive",
        );
    }
    errs.into_result()?;

    if let Some(s) = &patch.slug
        && *s != p.slug
    {
        ensure_free(tx, Unique::ProductSlug, s, "slug").await?;
        p.slug = s.clone();
    }
    if let Some(n) = &patch.name {
        p.name = n.clone();
    }
    if let Some(d) = &patch.description {
        p.description = d.clone();
    }
    if let Some(a) = &patch.attributes {
        p.attributes = a.clone();
    }
    if let Some(b) = patch.brand_id {
        p.brand = match b {
            Some(id) => Some(
                store::get_brand(tx.conn(), id)
                    .await?
                    .ok_or_else(|| invalid("brand_id", "not_found", "no such brand"))?,
            ),
            None => None,
        };
    }
    if let Some(c) = patch.category_id {
        p.category = match c {
            Some(id) => {
                let k = store::get_category(tx.conn(), id)
                    .await?
                    .ok_or_else(|| invalid("category_id", "not_found", "no such category"))?;
                Some(CategoryRef {
                    id: k.id,
                    slug: k.slug,
                    name: k.name,
                })
            }
            None => None,
        };
    }
    if let Some(s) = patch.status {
        if p.status == Status::Archived {
            return Err(Error::Archived);
        }
        if s == Status::Published && p.published_at.is_none() {
            p.published_at = Some(now);
        }
        p.status = s;
    }
    write_back(tx, &p, now).await
}

/// Withdraws a product from sale. Archiving twice is not an error.
pub async fn archive_product(
    tx: &mut Tx,
    id: Uuid,
    if_match: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Product, Error> {
    let mut p = load_for_change(tx, id, if_match).await?;
    if p.status == Status::Archived {
        return Ok(p);
    }
    p.status = Status::Archived;
    write_back(tx, &p, now).await
}

/// Adds a variant to a product.
pub async fn add_variant(
    tx: &mut Tx,
    product_id: Uuid,
    v: &NewVariant,
    now: DateTime<Utc>,
) -> Result<Product, Error> {
    let p = load_for_change(tx, product_id, None).await?;
    let mut errs = Errors::default();
    domain::check_sku(&mut errs, "sku", &v.sku);
    if let Some(b) = &v.barcode {
        domain::check_barcode(&mut errs, "barcode", b);
    }
    check_option(&mut errs, "size", v.size.as_deref());
    check_option(&mut errs, "colour", v.colour.as_deref());
    domain::check_price(
        &mut errs,
        "price.amount_minor",
        v.price.amount_minor,
        v.price.currency,
    );
    let currency = p.price_range.min.currency;
    if v.price.currency != currency {
        errs.add(
            "price.currency",
            "currency_mismatch",
            format!("this product is priced in {currency}"),
        );
    }
    domain::check_vat(&mut errs, "vat_rate", v.vat_rate);
    if p.variants.len() >= domain::MAX_VARIANTS {
        errs.add(
            "sku",
            "too_many",
            format!("at most {} variants", domain::MAX_VARIANTS),
        );
    }
    errs.into_result()?;
    ensure_free(tx, Unique::Sku, &v.sku, "sku").await?;
    if let Some(b) = &v.barcode {
        ensure_free(tx, Unique::Barcode, b, "barcode").await?;
    }
    store::insert_variant(
        tx.conn(),
        &VariantWrite {
            id: Uuid::now_v7(),
            product_id,
            sku: &v.sku,
            barcode: v.barcode.as_deref(),
            size: v.size.as_deref(),
            colour: v.colour.as_deref(),
            price_minor: v.price.amount_minor,
            vat_rate_bp: v.vat_rate,
            position: p.variants.len() as i32,
            active: true,
        },
        now,
    )
    .await?;
    let p = load(tx, product_id).await?;
    write_back(tx, &p, now).await
}

/// Changes a variant (price, barcode, options, active).
pub async fn update_variant(
    tx: &mut Tx,
    product_id: Uuid,
    variant_id: Uuid,
    patch: &VariantPatch,
    now: DateTime<Utc>,
) -> Result<Product, Error> {
    let p = load_for_change(tx, product_id, None).await?;
    let v = p
        .variants
        .iter()
        .find(|v| v.id == variant_id)
        .ok_or(Error::NotFound("variant"))?
        .clone();
    let mut errs = Errors::default();
    if let Some(Some(b)) = &patch.barcode {
        domain::check_barcode(&mut errs, "barcode", b);
    }
    if let Some(s) = &patch.size {
        check_option(&mut errs, "size", s.as_deref());
    }
    if let Some(c) = &patch.colour {
        check_option(&mut errs, "colour", c.as_deref());
    }
    if let Some(pr) = &patch.price {
        domain::check_price(
            &mut errs,
            "price.amount_minor",
            pr.amount_minor,
            pr.currency,
        );
        if pr.currency != p.price_range.min.currency {
            errs.add(
                "price.currency",
                "currency_mismatch",
                format!("this product is priced in {}", p.price_range.min.currency),
            );
        }
    }
    if let Some(vr) = patch.vat_rate {
        domain::check_vat(&mut errs, "vat_rate", vr);
    }
    errs.into_result()?;
    let barcode = match &patch.barcode {
        Some(b) => b.clone(),
        None => v.barcode.clone(),
    };
    if let Some(b) = &barcode
        && Some(b) != v.barcode.as_ref()
    {
        ensure_free(tx, Unique::Barcode, b, "barcode").await?;
    }
    let size = patch.size.clone().unwrap_or(v.size.clone());
    let colour = patch.colour.clone().unwrap_or(v.colour.clone());
    store::update_variant(
        tx.conn(),
        &VariantWrite {
            id: v.id,
            product_id,
            sku: &v.sku,
            barcode: barcode.as_deref(),
            size: size.as_deref(),
            colour: colour.as_deref(),
            price_minor: patch
                .price
                .as_ref()
                .map(|p| p.amount_minor)
                .unwrap_or(v.price.amount_minor),
            vat_rate_bp: patch.vat_rate.unwrap_or(v.vat_rate.basis_points()),
            position: 0,
            active: patch.active.unwrap_or(v.active),
        },
        now,
    )
    .await?;
    let p = load(tx, product_id).await?;
    write_back(tx, &p, now).await
}
