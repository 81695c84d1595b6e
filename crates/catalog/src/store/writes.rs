//! The catalogue's writes: brands, categories, products, variants and pictures (each inside the
//! caller's transaction), and the read of a picture's bytes.

use super::*;

pub async fn insert_brand(conn: Conn<'_>, b: &Brand, now: DateTime<Utc>) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO brands (id, slug, name, created_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(b.id)
    .bind(&b.slug)
    .bind(&b.name)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    Ok(())
}

pub async fn insert_category(conn: Conn<'_>, k: &Category, now: DateTime<Utc>) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO categories (id, parent_id, slug, name_fr, name_en, position, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )
    .bind(k.id)
    .bind(k.parent_id)
    .bind(&k.slug)
    .bind(&k.name.fr)
    .bind(&k.name.en)
    .bind(k.position)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// The columns of a product row as written.
pub struct ProductWrite<'a> {
    pub id: Uuid,
    pub slug: &'a str,
    pub status: Status,
    pub name: &'a Localized,
    pub description: &'a Localized,
    pub brand_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    pub attributes: &'a [Attribute],
    pub currency: Currency,
    pub min_price: i64,
    pub max_price: i64,
    pub search_text: &'a str,
    pub published_at: Option<DateTime<Utc>>,
}

pub async fn insert_product(
    conn: Conn<'_>,
    p: &ProductWrite<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn_run!(conn, |c| {
        sqlx::query(
        "INSERT INTO products (id, slug, status, name_fr, name_en, description_fr, description_en, \
         brand_id, category_id, attributes, currency, min_price_minor, max_price_minor, search_text, \
         version, created_at, updated_at, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $15, $16)"
    )
    .bind(p.id)
    .bind(p.slug)
    .bind(p.status.as_str())
    .bind(&p.name.fr)
    .bind(&p.name.en)
    .bind(&p.description.fr)
    .bind(&p.description.en)
    .bind(p.brand_id)
    .bind(p.category_id)
    .bind(Json(p.attributes))
    .bind(p.currency.code())
    .bind(p.min_price)
    .bind(p.max_price)
    .bind(p.search_text)
    .bind(now)
    .bind(p.published_at)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })?;
    Ok(())
}

/// Rewrites a product row if its version is still `expected_version`; false otherwise.
pub async fn update_product(
    conn: Conn<'_>,
    p: &ProductWrite<'_>,
    expected_version: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = conn_run!(conn, |c| sqlx::query(
        "UPDATE products SET slug = $2, status = $3, name_fr = $4, name_en = $5, \
         description_fr = $6, description_en = $7, brand_id = $8, category_id = $9, \
         attributes = $10, currency = $11, min_price_minor = $12, max_price_minor = $13, \
         search_text = $14, published_at = $15, version = version + 1, updated_at = $16 \
         WHERE id = $1 AND version = $17"
    )
    .bind(p.id)
    .bind(p.slug)
    .bind(p.status.as_str())
    .bind(&p.name.fr)
    .bind(&p.name.en)
    .bind(&p.description.fr)
    .bind(&p.description.en)
    .bind(p.brand_id)
    .bind(p.category_id)
    .bind(Json(p.attributes))
    .bind(p.currency.code())
    .bind(p.min_price)
    .bind(p.max_price)
    .bind(p.search_text)
    .bind(p.published_at)
    .bind(now)
    .bind(expected_version)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub struct VariantWrite<'a> {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku: &'a str,
    pub barcode: Option<&'a str>,
    pub size: Option<&'a str>,
    pub colour: Option<&'a str>,
    pub price_minor: i64,
    pub vat_rate_bp: i32,
    pub position: i32,
    pub active: bool,
}

pub async fn insert_variant(
    conn: Conn<'_>,
    v: &VariantWrite<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "INSERT INTO variants (id, product_id, sku, barcode, size, colour, price_minor, \
         vat_rate_bp, position, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)"
    )
    .bind(v.id)
    .bind(v.product_id)
    .bind(v.sku)
    .bind(v.barcode)
    .bind(v.size)
    .bind(v.colour)
    .bind(v.price_minor)
    .bind(v.vat_rate_bp)
    .bind(v.position)
    .bind(v.active)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    Ok(())
}

pub async fn update_variant(
    conn: Conn<'_>,
    v: &VariantWrite<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn_run!(conn, |c| sqlx::query(
        "UPDATE variants SET barcode = $2, size = $3, colour = $4, price_minor = $5, \
         vat_rate_bp = $6, active = $7, updated_at = $8 WHERE id = $1"
    )
    .bind(v.id)
    .bind(v.barcode)
    .bind(v.size)
    .bind(v.colour)
    .bind(v.price_minor)
    .bind(v.vat_rate_bp)
    .bind(v.active)
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|_| ()))?;
    Ok(())
}

pub struct ImageWrite<'a> {
    pub id: Uuid,
    pub product_id: Uuid,
    pub position: i32,
    pub alt: &'a Localized,
    pub content_type: Option<&'a str>,
    pub data: Option<&'a [u8]>,
    pub url: Option<&'a str>,
}

pub async fn insert_image(conn: Conn<'_>, i: &ImageWrite<'_>) -> Result<()> {
    conn_run!(conn, |c| {
        sqlx::query(
        "INSERT INTO product_images (id, product_id, position, alt_fr, alt_en, content_type, data, url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(i.id)
    .bind(i.product_id)
    .bind(i.position)
    .bind(&i.alt.fr)
    .bind(&i.alt.en)
    .bind(i.content_type)
    .bind(i.data)
    .bind(i.url)
    .execute(&mut *c)
    .await
    .map(|_| ())
    })?;
    Ok(())
}

/// A stored image's bytes, if the image is stored here and its product is visible.
pub async fn image_data(
    db: &Db,
    id: Uuid,
    include_unpublished: bool,
) -> Result<Option<(String, Vec<u8>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        content_type: Option<String>,
        data: Option<Vec<u8>>,
        status: String,
    }
    let r: Option<Row> = platform::db_run!(db, |p| sqlx::query_as(
        "SELECT i.content_type, i.data, p.status FROM product_images i \
         JOIN products p ON p.id = i.product_id WHERE i.id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?;
    Ok(r.and_then(|r| {
        if !include_unpublished && r.status != "published" {
            return None;
        }
        match (r.content_type, r.data) {
            (Some(ct), Some(d)) => Some((ct, d)),
            _ => None,
        }
    }))
}
