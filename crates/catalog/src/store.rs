//! Catalogue persistence: one SQL text per query, run on SQLite or PostgreSQL.

use crate::domain::{Attribute, Localized, Status};
use crate::http::wire::*;
use chrono::{DateTime, Utc};
use kernel::{Currency, Money, VatRate};
use platform::db::{Conn, Db, Param, SqlBuilder};
use platform::{conn_run, db_run};
use sqlx::types::Json;
use uuid::Uuid;

mod writes;
pub use writes::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, StoreError>;

const PRODUCT_COLUMNS: &str = "p.id, p.slug, p.status, p.name_fr, p.name_en, \
    b.id AS brand_id, b.slug AS brand_slug, b.name AS brand_name, \
    c.id AS category_id, c.slug AS category_slug, c.name_fr AS category_name_fr, c.name_en AS category_name_en, \
    p.currency, p.min_price_minor, p.max_price_minor";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    slug: String,
    status: String,
    name_fr: String,
    name_en: String,
    brand_id: Option<Uuid>,
    brand_slug: Option<String>,
    brand_name: Option<String>,
    category_id: Option<Uuid>,
    category_slug: Option<String>,
    category_name_fr: Option<String>,
    category_name_en: Option<String>,
    currency: String,
    min_price_minor: i64,
    max_price_minor: i64,
    image_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: Uuid,
    slug: String,
    status: String,
    name_fr: String,
    name_en: String,
    brand_id: Option<Uuid>,
    brand_slug: Option<String>,
    brand_name: Option<String>,
    category_id: Option<Uuid>,
    category_slug: Option<String>,
    category_name_fr: Option<String>,
    category_name_en: Option<String>,
    currency: String,
    min_price_minor: i64,
    max_price_minor: i64,
    description_fr: String,
    description_en: String,
    attributes: Json<Vec<Attribute>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct VariantRow {
    id: Uuid,
    sku: String,
    barcode: Option<String>,
    size: Option<String>,
    colour: Option<String>,
    price_minor: i64,
    vat_rate_bp: i32,
    active: bool,
}

#[derive(sqlx::FromRow)]
struct ImageRow {
    id: Uuid,
    url: Option<String>,
    alt_fr: String,
    alt_en: String,
}

#[derive(sqlx::FromRow)]
struct CategoryRow {
    id: Uuid,
    parent_id: Option<Uuid>,
    slug: String,
    name_fr: String,
    name_en: String,
    position: i32,
}

fn currency(code: &str) -> Result<Currency> {
    Currency::parse(code).map_err(|e| StoreError::Corrupt(e.to_string()))
}
fn status(s: &str) -> Result<Status> {
    Status::parse(s).ok_or_else(|| StoreError::Corrupt(format!("status {s}")))
}
fn money(amount: i64, c: Currency) -> Money {
    Money {
        amount_minor: amount,
        currency: c,
    }
}

pub fn image_url(id: Uuid) -> String {
    format!("/api/catalog/images/{id}")
}

fn brand_of(id: Option<Uuid>, slug: Option<String>, name: Option<String>) -> Option<Brand> {
    match (id, slug, name) {
        (Some(id), Some(slug), Some(name)) => Some(Brand { id, slug, name }),
        _ => None,
    }
}

fn category_of(
    id: Option<Uuid>,
    slug: Option<String>,
    fr: Option<String>,
    en: Option<String>,
) -> Option<CategoryRef> {
    match (id, slug, fr, en) {
        (Some(id), Some(slug), Some(fr), Some(en)) => Some(CategoryRef {
            id,
            slug,
            name: Localized { fr, en },
        }),
        _ => None,
    }
}

impl SummaryRow {
    fn into_summary(self) -> Result<ProductSummary> {
        let c = currency(&self.currency)?;
        Ok(ProductSummary {
            id: self.id,
            slug: self.slug,
            status: status(&self.status)?,
            name: Localized {
                fr: self.name_fr,
                en: self.name_en,
            },
            brand: brand_of(self.brand_id, self.brand_slug, self.brand_name),
            category: category_of(
                self.category_id,
                self.category_slug,
                self.category_name_fr,
                self.category_name_en,
            ),
            price_range: PriceRange {
                min: money(self.min_price_minor, c),
                max: money(self.max_price_minor, c),
            },
            image_url: self.image_id.map(image_url),
        })
    }
}

/// How to find one product.
pub enum ProductKey<'a> {
    Id(Uuid),
    Slug(&'a str),
}

/// Loads a whole product (variants and images too).
pub async fn load_product(conn: Conn<'_>, key: ProductKey<'_>) -> Result<Option<Product>> {
    conn_run!(conn, |c| {
        let base = "SELECT p.id, p.slug, p.status, p.name_fr, p.name_en, \
            b.id AS brand_id, b.slug AS brand_slug, b.name AS brand_name, \
            c.id AS category_id, c.slug AS category_slug, c.name_fr AS category_name_fr, \
            c.name_en AS category_name_en, p.currency, p.min_price_minor, p.max_price_minor, \
            p.description_fr, p.description_en, p.attributes, p.version, p.created_at, \
            p.updated_at, p.published_at \
            FROM products p LEFT JOIN brands b ON b.id = p.brand_id \
            LEFT JOIN categories c ON c.id = p.category_id ";
        let row: Option<ProductRow> = match key {
            ProductKey::Id(id) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{base} WHERE p.id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?
            }
            ProductKey::Slug(slug) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{base} WHERE p.slug = $1")))
                    .bind(slug)
                    .fetch_optional(&mut *c)
                    .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let variants: Vec<VariantRow> = sqlx::query_as(
            "SELECT id, sku, barcode, size, colour, price_minor, vat_rate_bp, active \
             FROM variants WHERE product_id = $1 ORDER BY position, id",
        )
        .bind(row.id)
        .fetch_all(&mut *c)
        .await?;
        let images: Vec<ImageRow> = sqlx::query_as(
            "SELECT id, url, alt_fr, alt_en FROM product_images \
             WHERE product_id = $1 ORDER BY position, id",
        )
        .bind(row.id)
        .fetch_all(&mut *c)
        .await?;
        assemble(row, variants, images).map(Some)
    })
}

fn assemble(row: ProductRow, variants: Vec<VariantRow>, images: Vec<ImageRow>) -> Result<Product> {
    let c = currency(&row.currency)?;
    let variants = variants
        .into_iter()
        .map(|v| {
            let vat = VatRate::from_basis_points(v.vat_rate_bp)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Variant {
                id: v.id,
                sku: v.sku,
                barcode: v.barcode,
                size: v.size,
                colour: v.colour,
                price: money(v.price_minor, c),
                vat_included_minor: vat.included_tax(v.price_minor),
                vat_rate: vat,
                active: v.active,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let images = images
        .into_iter()
        .map(|i| Image {
            url: i.url.unwrap_or_else(|| image_url(i.id)),
            id: i.id,
            alt: Localized {
                fr: i.alt_fr,
                en: i.alt_en,
            },
        })
        .collect();
    Ok(Product {
        id: row.id,
        slug: row.slug,
        status: status(&row.status)?,
        name: Localized {
            fr: row.name_fr,
            en: row.name_en,
        },
        description: Localized {
            fr: row.description_fr,
            en: row.description_en,
        },
        brand: brand_of(row.brand_id, row.brand_slug, row.brand_name),
        category: category_of(
            row.category_id,
            row.category_slug,
            row.category_name_fr,
            row.category_name_en,
        ),
        attributes: row.attributes.0,
        price_range: PriceRange {
            min: money(row.min_price_minor, c),
            max: money(row.max_price_minor, c),
        },
        variants,
        images,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        published_at: row.published_at,
    })
}

/// A decoded list cursor: the sort key of the last item shown and its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// sort the cursor was made for
    pub s: String,
    /// integer sort key (price)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<i64>,
    /// text sort key (name)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).unwrap_or_default())
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        use base64::Engine;
        if s.len() > 1024 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

pub fn sort_name(s: Sort) -> &'static str {
    match s {
        Sort::Newest => "newest",
        Sort::PriceAsc => "price",
        Sort::PriceDesc => "-price",
        Sort::NameAsc => "name",
        Sort::NameDesc => "-name",
    }
}

/// A resolved list request (ids resolved, limits checked).
#[derive(Debug, Clone)]
pub struct ListSpec {
    pub category: Option<Uuid>,
    pub brand: Option<Uuid>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// folded words ([`kernel::SearchQuery`]), all of which must match
    pub words: Vec<String>,
    /// a text query with no word at all (only punctuation): nothing matches
    pub match_nothing: bool,
    /// None: any status
    pub status: Option<Status>,
    pub sort: Sort,
    pub lang: Lang,
    pub limit: u32,
    pub after: Option<Cursor>,
}

pub async fn list_products(db: &Db, spec: &ListSpec) -> Result<ProductPage> {
    let mut q = SqlBuilder::new("");
    if let Some(cat) = spec.category {
        q.push("WITH RECURSIVE sub(id) AS (SELECT id FROM categories WHERE id = ");
        q.bind(Param::Uuid(cat));
        q.push(" UNION ALL SELECT k.id FROM categories k JOIN sub ON k.parent_id = sub.id) ");
    }
    q.push("SELECT ");
    q.push(PRODUCT_COLUMNS);
    q.push(
        ", (SELECT i.id FROM product_images i WHERE i.product_id = p.id \
         ORDER BY i.position, i.id LIMIT 1) AS image_id \
         FROM products p LEFT JOIN brands b ON b.id = p.brand_id \
         LEFT JOIN categories c ON c.id = p.category_id WHERE 1 = 1",
    );
    if let Some(s) = spec.status {
        q.push(" AND p.status = ")
            .bind(Param::Text(s.as_str().into()));
    }
    if spec.category.is_some() {
        q.push(" AND p.category_id IN (SELECT id FROM sub)");
    }
    if let Some(b) = spec.brand {
        q.push(" AND p.brand_id = ").bind(Param::Uuid(b));
    }
    // a product matches a price range when one of its prices could fall in it
    if let Some(min) = spec.min_price {
        q.push(" AND p.max_price_minor >= ").bind(Param::I64(min));
    }
    if let Some(max) = spec.max_price {
        q.push(" AND p.min_price_minor <= ").bind(Param::I64(max));
    }
    if spec.match_nothing {
        q.push(" AND 1 = 0");
    }
    for w in &spec.words {
        // words hold letters and digits only (kernel::SearchQuery): no LIKE wildcard can
        // reach the pattern, and the value is bound
        q.push(" AND p.search_text LIKE ")
            .bind(Param::Text(format!("%{w}%")));
    }
    let name_col: &'static str = match spec.lang {
        Lang::Fr => "p.name_fr",
        Lang::En => "p.name_en",
    };
    if let Some(cur) = &spec.after {
        let id = Param::Uuid(cur.id);
        match spec.sort {
            Sort::Newest => {
                q.push(" AND p.id < ").bind(id);
            }
            Sort::PriceAsc | Sort::PriceDesc => {
                let n = cur.n.unwrap_or(0);
                let (cmp, eq_cmp) = if spec.sort == Sort::PriceAsc {
                    (" > ", " AND p.id > ")
                } else {
                    (" < ", " AND p.id < ")
                };
                q.push(" AND (p.min_price_minor")
                    .push(cmp)
                    .bind(Param::I64(n));
                q.push(" OR (p.min_price_minor = ").bind(Param::I64(n));
                q.push(eq_cmp).bind(id).push("))");
            }
            Sort::NameAsc | Sort::NameDesc => {
                let t = cur.t.clone().unwrap_or_default();
                let (cmp, eq_cmp) = if spec.sort == Sort::NameAsc {
                    (" > ", " AND p.id > ")
                } else {
                    (" < ", " AND p.id < ")
                };
                q.push(" AND (")
                    .push(name_col)
                    .push(cmp)
                    .bind(Param::Text(t.clone()));
                q.push(" OR (")
                    .push(name_col)
                    .push(" = ")
                    .bind(Param::Text(t));
                q.push(eq_cmp).bind(id).push("))");
            }
        }
    }
    q.push(match (spec.sort, spec.lang) {
        (Sort::Newest, _) => " ORDER BY p.id DESC",
        (Sort::PriceAsc, _) => " ORDER BY p.min_price_minor ASC, p.id ASC",
        (Sort::PriceDesc, _) => " ORDER BY p.min_price_minor DESC, p.id DESC",
        (Sort::NameAsc, Lang::Fr) => " ORDER BY p.name_fr ASC, p.id ASC",
        (Sort::NameAsc, Lang::En) => " ORDER BY p.name_en ASC, p.id ASC",
        (Sort::NameDesc, Lang::Fr) => " ORDER BY p.name_fr DESC, p.id DESC",
        (Sort::NameDesc, Lang::En) => " ORDER BY p.name_en DESC, p.id DESC",
    });
    q.push(" LIMIT ")
        .bind(Param::I64(i64::from(spec.limit) + 1));

    let rows: Vec<SummaryRow> = q.fetch_all(db).await?;
    let more = rows.len() > spec.limit as usize;
    let mut items = rows
        .into_iter()
        .take(spec.limit as usize)
        .map(SummaryRow::into_summary)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if more {
        items.last().map(|last| {
            let mut c = Cursor {
                s: sort_name(spec.sort).into(),
                n: None,
                t: None,
                id: last.id,
            };
            match spec.sort {
                Sort::Newest => {}
                Sort::PriceAsc | Sort::PriceDesc => c.n = Some(last.price_range.min.amount_minor),
                Sort::NameAsc | Sort::NameDesc => {
                    c.t = Some(match spec.lang {
                        Lang::Fr => last.name.fr.clone(),
                        Lang::En => last.name.en.clone(),
                    })
                }
            }
            c.encode()
        })
    } else {
        None
    };
    items.shrink_to_fit();
    Ok(ProductPage { items, next_cursor })
}

pub async fn list_brands(db: &Db) -> Result<Vec<Brand>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        slug: String,
        name: String,
    }
    let rows: Vec<Row> = platform::db_run!(db, |p| sqlx::query_as(
        "SELECT id, slug, name FROM brands ORDER BY name, id"
    )
    .fetch_all(p)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|r| Brand {
            id: r.id,
            slug: r.slug,
            name: r.name,
        })
        .collect())
}

pub async fn list_categories(db: &Db) -> Result<Vec<Category>> {
    let rows: Vec<CategoryRow> = platform::db_run!(db, |p| sqlx::query_as(
        "SELECT id, parent_id, slug, name_fr, name_en, position FROM categories \
         ORDER BY position, slug"
    )
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(category_from_row).collect())
}

fn category_from_row(r: CategoryRow) -> Category {
    Category {
        id: r.id,
        parent_id: r.parent_id,
        slug: r.slug,
        name: Localized {
            fr: r.name_fr,
            en: r.name_en,
        },
        position: r.position,
    }
}

/// Finds a category id by id or slug.
pub async fn resolve_category(db: &Db, key: &str) -> Result<Option<Uuid>> {
    resolve(db, "categories", key).await
}

/// Finds a brand id by id or slug.
pub async fn resolve_brand(db: &Db, key: &str) -> Result<Option<Uuid>> {
    resolve(db, "brands", key).await
}

async fn resolve(db: &Db, table: &'static str, key: &str) -> Result<Option<Uuid>> {
    let sql: &'static str = match table {
        "brands" => "SELECT id FROM brands WHERE id = $1 OR slug = $2",
        _ => "SELECT id FROM categories WHERE id = $1 OR slug = $2",
    };
    let as_id = Uuid::parse_str(key).unwrap_or(Uuid::nil());
    Ok(platform::db_run!(db, |p| sqlx::query_scalar(sql)
        .bind(as_id)
        .bind(key)
        .fetch_optional(p)
        .await)?)
}

pub async fn get_brand(conn: Conn<'_>, id: Uuid) -> Result<Option<Brand>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        slug: String,
        name: String,
    }
    let r: Option<Row> = conn_run!(conn, |c| sqlx::query_as(
        "SELECT id, slug, name FROM brands WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(r.map(|r| Brand {
        id: r.id,
        slug: r.slug,
        name: r.name,
    }))
}

pub async fn get_category(conn: Conn<'_>, id: Uuid) -> Result<Option<Category>> {
    let r: Option<CategoryRow> = conn_run!(conn, |c| sqlx::query_as(
        "SELECT id, parent_id, slug, name_fr, name_en, position FROM categories WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(r.map(category_from_row))
}

/// Whether a value is already used in a unique column.
pub async fn exists(conn: Conn<'_>, what: Unique, value: &str) -> Result<bool> {
    let sql: &'static str = match what {
        Unique::ProductSlug => "SELECT COUNT(*) FROM products WHERE slug = $1",
        Unique::Sku => "SELECT COUNT(*) FROM variants WHERE sku = $1",
        Unique::Barcode => "SELECT COUNT(*) FROM variants WHERE barcode = $1",
        Unique::BrandSlug => "SELECT COUNT(*) FROM brands WHERE slug = $1",
        Unique::CategorySlug => "SELECT COUNT(*) FROM categories WHERE slug = $1",
    };
    let n: i64 = conn_run!(conn, |c| sqlx::query_scalar(sql)
        .bind(value)
        .fetch_one(&mut *c)
        .await)?;
    Ok(n > 0)
}

#[derive(Debug, Clone, Copy)]
pub enum Unique {
    ProductSlug,
    Sku,
    Barcode,
    BrandSlug,
    CategorySlug,
}

/// Id, SKU and price of the active variants of a product (for its price range and search text).
pub async fn variant_rows(conn: Conn<'_>, product_id: Uuid) -> Result<Vec<(Uuid, String, i64)>> {
    conn_run!(conn, |c| sqlx::query_as::<_, (Uuid, String, i64)>(
        "SELECT id, sku, price_minor FROM variants WHERE product_id = $1 AND active = TRUE"
    )
    .bind(product_id)
    .fetch_all(&mut *c)
    .await)
    .map_err(Into::into)
}

pub async fn count_products(db: &Db) -> Result<i64> {
    Ok(platform::db_run!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM products"
    )
    .fetch_one(p)
    .await)?)
}

/// Current price of SKUs, for carts and checkout: (sku, product name, size, colour, price,
/// currency, sellable = variant active and product published).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SkuPrice {
    pub sku: String,
    pub name_fr: String,
    pub size: Option<String>,
    pub colour: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub sellable: bool,
}

pub async fn prices_by_sku(db: &Db, skus: &[String]) -> Result<Vec<SkuPrice>> {
    let mut out = Vec::with_capacity(skus.len());
    let mut conn = db.acquire().await?;
    for sku in skus.iter().take(200) {
        let row: Option<SkuPrice> = conn_run!(conn.conn(), |c| sqlx::query_as(
            "SELECT v.sku, p.name_fr, v.size, v.colour, v.price_minor, p.currency, \
             (v.active AND p.status = 'published') AS sellable \
             FROM variants v JOIN products p ON p.id = v.product_id WHERE v.sku = $1"
        )
        .bind(sku)
        .fetch_optional(&mut *c)
        .await)?;
        out.extend(row);
    }
    Ok(out)
}

/// Every SKU (demo stock seeding).
pub async fn all_skus(db: &Db) -> Result<Vec<String>> {
    platform::db_run!(db, |p| sqlx::query_scalar(
        "SELECT sku FROM variants ORDER BY sku"
    )
    .fetch_all(p)
    .await)
    .map_err(StoreError::from)
}

/// Every published product, whole (variants and pictures), in three queries: what a read
/// model (the storefront's in-memory catalogue) loads and refreshes.
pub async fn load_published(db: &Db) -> Result<Vec<Product>> {
    db_run!(db, |p| {
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT p.id, p.slug, p.status, p.name_fr, p.name_en, \
             b.id AS brand_id, b.slug AS brand_slug, b.name AS brand_name, \
             c.id AS category_id, c.slug AS category_slug, c.name_fr AS category_name_fr, \
             c.name_en AS category_name_en, p.currency, p.min_price_minor, p.max_price_minor, \
             p.description_fr, p.description_en, p.attributes, p.version, p.created_at, \
             p.updated_at, p.published_at \
             FROM products p LEFT JOIN brands b ON b.id = p.brand_id \
             LEFT JOIN categories c ON c.id = p.category_id \
             WHERE p.status = 'published' ORDER BY p.published_at DESC, p.id",
        )
        .fetch_all(p)
        .await?;
        let variants: Vec<(Uuid, VariantRow)> = sqlx::query_as::<_, VariantWithProduct>(
            "SELECT v.product_id, v.id, v.sku, v.barcode, v.size, v.colour, v.price_minor, \
             v.vat_rate_bp, v.active FROM variants v JOIN products p ON p.id = v.product_id \
             WHERE p.status = 'published' ORDER BY v.product_id, v.position, v.id",
        )
        .fetch_all(p)
        .await?
        .into_iter()
        .map(|v| (v.product_id, v.row))
        .collect();
        let images: Vec<(Uuid, ImageRow)> = sqlx::query_as::<_, ImageWithProduct>(
            "SELECT i.product_id, i.id, i.url, i.alt_fr, i.alt_en FROM product_images i \
             JOIN products p ON p.id = i.product_id WHERE p.status = 'published' \
             ORDER BY i.product_id, i.position, i.id",
        )
        .fetch_all(p)
        .await?
        .into_iter()
        .map(|i| (i.product_id, i.row))
        .collect();
        let mut vs: std::collections::HashMap<Uuid, Vec<VariantRow>> = Default::default();
        for (pid, v) in variants {
            vs.entry(pid).or_default().push(v);
        }
        let mut is: std::collections::HashMap<Uuid, Vec<ImageRow>> = Default::default();
        for (pid, i) in images {
            is.entry(pid).or_default().push(i);
        }
        rows.into_iter()
            .map(|r| {
                let id = r.id;
                assemble(
                    r,
                    vs.remove(&id).unwrap_or_default(),
                    is.remove(&id).unwrap_or_default(),
                )
            })
            .collect::<Result<Vec<_>>>()
    })
}

#[derive(sqlx::FromRow)]
struct VariantWithProduct {
    product_id: Uuid,
    #[sqlx(flatten)]
    row: VariantRow,
}

#[derive(sqlx::FromRow)]
struct ImageWithProduct {
    product_id: Uuid,
    #[sqlx(flatten)]
    row: ImageRow,
}
