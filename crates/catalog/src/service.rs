//! Catalogue use cases: validation, then the writes of one transaction. HTTP handlers and the
//! demo seeder both go through here.

use crate::domain::{self, Errors, Localized, Status};
use crate::model::*;
use crate::store::{self, ProductKey, ProductWrite, Unique, VariantWrite};
use chrono::{DateTime, Utc};
use kernel::Currency;
use platform::db::Tx;
use platform::{ApiError, FieldError};
use std::collections::HashSet;
use uuid::Uuid;

fn validation(errors: Vec<FieldError>) -> ApiError {
    ApiError::validation(errors)
}

async fn ensure_free(tx: &mut Tx, what: Unique, value: &str, field: &str) -> Result<(), ApiError> {
    if store::exists(tx.conn(), what, value).await? {
        let code = match what {
            Unique::ProductSlug | Unique::BrandSlug | Unique::CategorySlug => "slug_taken",
            Unique::Sku => "sku_taken",
            Unique::Barcode => "barcode_taken",
        };
        return Err(
            ApiError::conflict(code, format!("{field} `{value}` is already used"))
                .with_field(FieldError::new(field, code, "already used")),
        );
    }
    Ok(())
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

/// Creates a product with its variants and images.
pub async fn create_product(
    tx: &mut Tx,
    input: &NewProduct,
    now: DateTime<Utc>,
) -> Result<Product, ApiError> {
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
    errs.into_result().map_err(validation)?;

    // references and uniqueness, inside the transaction
    let brand = match input.brand_id {
        Some(id) => Some(store::get_brand(tx.conn(), id).await?.ok_or_else(|| {
            validation(vec![FieldError::new(
                "brand_id",
                "not_found",
                "no such brand",
            )])
        })?),
        None => None,
    };
    let category = match input.category_id {
        Some(id) => Some(store::get_category(tx.conn(), id).await?.ok_or_else(|| {
            validation(vec![FieldError::new(
                "category_id",
                "not_found",
                "no such category",
            )])
        })?),
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

async fn load(tx: &mut Tx, id: Uuid) -> Result<Product, ApiError> {
    store::load_product(tx.conn(), ProductKey::Id(id))
        .await?
        .ok_or_else(|| ApiError::internal("a product written in this transaction is missing"))
}

/// Loads a product for change, checking `If-Match` when given.
async fn load_for_change(
    tx: &mut Tx,
    id: Uuid,
    if_match: Option<i64>,
) -> Result<Product, ApiError> {
    let p = store::load_product(tx.conn(), ProductKey::Id(id))
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    if let Some(v) = if_match
        && v != p.version
    {
        return Err(ApiError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            format!(
                "the product is at version {}, not {v}; reload it and retry",
                p.version
            ),
        ));
    }
    Ok(p)
}

/// Writes `p` back (with recomputed price range and search text) if nobody changed it since.
async fn write_back(tx: &mut Tx, p: &Product, now: DateTime<Utc>) -> Result<Product, ApiError> {
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
        return Err(ApiError::conflict(
            "concurrent_update",
            "the product changed while this request ran; reload it and retry",
        ));
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
) -> Result<Product, ApiError> {
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
    errs.into_result().map_err(validation)?;

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
            Some(id) => Some(store::get_brand(tx.conn(), id).await?.ok_or_else(|| {
                validation(vec![FieldError::new(
                    "brand_id",
                    "not_found",
                    "no such brand",
                )])
            })?),
            None => None,
        };
    }
    if let Some(c) = patch.category_id {
        p.category = match c {
            Some(id) => {
                let k = store::get_category(tx.conn(), id).await?.ok_or_else(|| {
                    validation(vec![FieldError::new(
                        "category_id",
                        "not_found",
                        "no such category",
                    )])
                })?;
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
            return Err(ApiError::conflict(
                "product_archived",
                "an archived product cannot be changed back",
            ));
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
) -> Result<Product, ApiError> {
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
) -> Result<Product, ApiError> {
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
    errs.into_result().map_err(validation)?;
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
) -> Result<Product, ApiError> {
    let p = load_for_change(tx, product_id, None).await?;
    let v = p
        .variants
        .iter()
        .find(|v| v.id == variant_id)
        .ok_or_else(|| ApiError::not_found("variant"))?
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
    errs.into_result().map_err(validation)?;
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

pub async fn create_brand(
    tx: &mut Tx,
    input: &NewBrand,
    now: DateTime<Utc>,
) -> Result<Brand, ApiError> {
    let mut errs = Errors::default();
    domain::check_text(&mut errs, "name", &input.name, domain::MAX_NAME, true);
    let slug = derive_slug(input.slug.as_deref(), &input.name);
    domain::check_slug(&mut errs, "slug", &slug);
    errs.into_result().map_err(validation)?;
    ensure_free(tx, Unique::BrandSlug, &slug, "slug").await?;
    let b = Brand {
        id: Uuid::now_v7(),
        slug,
        name: input.name.clone(),
    };
    store::insert_brand(tx.conn(), &b, now).await?;
    Ok(b)
}

pub async fn create_category(
    tx: &mut Tx,
    input: &NewCategory,
    now: DateTime<Utc>,
) -> Result<Category, ApiError> {
    let mut errs = Errors::default();
    domain::check_localized(&mut errs, "name", &input.name, domain::MAX_NAME, true);
    let slug = derive_slug(input.slug.as_deref(), &input.name.fr);
    domain::check_slug(&mut errs, "slug", &slug);
    if !(0..=100_000).contains(&input.position) {
        errs.add("position", "out_of_range", "between 0 and 100000");
    }
    errs.into_result().map_err(validation)?;
    if let Some(parent) = input.parent_id
        && store::get_category(tx.conn(), parent).await?.is_none()
    {
        return Err(validation(vec![FieldError::new(
            "parent_id",
            "not_found",
            "no such category",
        )]));
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

/// Checks and resolves a list request.
pub async fn list_spec(
    db: &platform::db::Db,
    q: &ListQuery,
    back_office: bool,
) -> Result<store::ListSpec, ApiError> {
    let bad = |field: &str, msg: &str| {
        let mut e = ApiError::validation(vec![FieldError::new(field, "invalid_parameter", msg)]);
        e.status = axum::http::StatusCode::BAD_REQUEST;
        e.code = "invalid_query";
        e.detail = format!("query parameter {field}: {msg}");
        e
    };
    let limit = q.limit.unwrap_or(24);
    if !(1..=100).contains(&limit) {
        return Err(bad("limit", "between 1 and 100"));
    }
    for (f, v) in [("min_price", q.min_price), ("max_price", q.max_price)] {
        if let Some(v) = v
            && !(0..=kernel::MAX_AMOUNT_MINOR).contains(&v)
        {
            return Err(bad(f, "a price in minor units, not negative"));
        }
    }
    if let (Some(a), Some(b)) = (q.min_price, q.max_price)
        && a > b
    {
        return Err(bad("min_price", "must not be above max_price"));
    }
    // the kernel's one search rule, the shop's too: punctuation only separates words, and a
    // query of nothing but punctuation matches nothing
    let mut words = Vec::new();
    let mut match_nothing = false;
    if let Some(text) = &q.q {
        if text.chars().count() > 200 {
            return Err(bad("q", "at most 200 characters"));
        }
        let search = kernel::SearchQuery::parse(text);
        if search.words().len() > 10 {
            return Err(bad("q", "at most 10 words"));
        }
        match_nothing = search.matches_nothing();
        words = search.words().to_vec();
    }
    let status_filter = match (q.status, q.published) {
        (Some(s), _) => Some(s),
        (None, Some(true)) => Some(StatusFilter::Published),
        (None, Some(false)) => Some(StatusFilter::Draft),
        (None, None) => None,
    };
    let status = if back_office {
        match status_filter.unwrap_or(StatusFilter::Any) {
            StatusFilter::Any => None,
            StatusFilter::Draft => Some(Status::Draft),
            StatusFilter::Published => Some(Status::Published),
            StatusFilter::Archived => Some(Status::Archived),
        }
    } else {
        match status_filter {
            None | Some(StatusFilter::Published) => Some(Status::Published),
            Some(_) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    "only the back office sees unpublished products",
                ));
            }
        }
    };
    let category = match &q.category {
        Some(k) => Some(
            store::resolve_category(db, k)
                .await?
                .ok_or_else(|| bad("category", "no such category"))?,
        ),
        None => None,
    };
    let brand = match &q.brand {
        Some(k) => Some(
            store::resolve_brand(db, k)
                .await?
                .ok_or_else(|| bad("brand", "no such brand"))?,
        ),
        None => None,
    };
    let sort = q.sort.unwrap_or_default();
    let after = match &q.cursor {
        Some(c) => {
            let cur = store::Cursor::decode(c)
                .filter(|cur| cur.s == store::sort_name(sort))
                .ok_or_else(|| {
                    let mut e = bad(
                        "cursor",
                        "not a cursor of this list; start again without it",
                    );
                    e.code = "invalid_cursor";
                    e
                })?;
            Some(cur)
        }
        None => None,
    };
    Ok(store::ListSpec {
        category,
        brand,
        min_price: q.min_price,
        max_price: q.max_price,
        words,
        match_nothing,
        status,
        sort,
        lang: q.lang.unwrap_or_default(),
        limit,
        after,
    })
}

/// Localized helper for the seeder.
pub fn loc(fr: &str, en: &str) -> Localized {
    Localized {
        fr: fr.into(),
        en: en.into(),
    }
}
