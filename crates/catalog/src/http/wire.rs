//! What the catalogue API sends and receives.

use crate::domain::{Attribute, Localized, Status};
use chrono::{DateTime, Utc};
use kernel::{Currency, Money, VatRate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Brand {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Category {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub slug: String,
    pub name: Localized,
    pub position: i32,
}

/// A category with its sub-categories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CategoryNode {
    #[serde(flatten)]
    pub category: Category,
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CategoryRef {
    pub id: Uuid,
    pub slug: String,
    pub name: Localized,
}

/// A sellable unit: one size and colour of a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Variant {
    pub id: Uuid,
    pub sku: String,
    pub barcode: Option<String>,
    pub size: Option<String>,
    pub colour: Option<String>,
    /// Price including VAT.
    pub price: Money,
    pub vat_rate: VatRate,
    /// The VAT included in `price`, in minor units.
    pub vat_included_minor: i64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Image {
    pub id: Uuid,
    pub url: String,
    pub alt: Localized,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceRange {
    pub min: Money,
    pub max: Money,
}

/// A product with everything a product page needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub slug: String,
    pub status: Status,
    pub name: Localized,
    pub description: Localized,
    pub brand: Option<Brand>,
    pub category: Option<CategoryRef>,
    pub attributes: Vec<Attribute>,
    pub price_range: PriceRange,
    pub variants: Vec<Variant>,
    pub images: Vec<Image>,
    /// Increases on every change; send it back in `If-Match` to avoid lost updates.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// A product in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductSummary {
    pub id: Uuid,
    pub slug: String,
    pub status: Status,
    pub name: Localized,
    pub brand: Option<Brand>,
    pub category: Option<CategoryRef>,
    pub price_range: PriceRange,
    pub image_url: Option<String>,
}

/// A page of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Sort orders of the product list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    #[serde(rename = "newest")]
    Newest,
    #[serde(rename = "price")]
    PriceAsc,
    #[serde(rename = "-price")]
    PriceDesc,
    #[serde(rename = "name")]
    NameAsc,
    #[serde(rename = "-name")]
    NameDesc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

/// Which products a list shows, by publication state (back office only; the public sees
/// published products).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    Draft,
    Published,
    Archived,
    Any,
}

/// Filters, sort and page of the product list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Category slug or id; sub-categories are included.
    pub category: Option<String>,
    /// Brand slug or id.
    pub brand: Option<String>,
    /// Lowest price, minor units (inclusive).
    pub min_price: Option<i64>,
    /// Highest price, minor units (inclusive).
    pub max_price: Option<i64>,
    /// Words to find in names, brand, category and SKUs (accents and case ignored).
    pub q: Option<String>,
    /// Back office only: publication state (default `any` for the back office).
    pub status: Option<StatusFilter>,
    /// Shorthand for `status=published` (`true`) or `status=draft` (`false`).
    pub published: Option<bool>,
    pub sort: Option<Sort>,
    /// Language of the name sort.
    pub lang: Option<Lang>,
    /// 1 to 100, default 24.
    pub limit: Option<u32>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A price as sent by a client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    /// Minor units, VAT included.
    pub amount_minor: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVariant {
    pub sku: String,
    pub barcode: Option<String>,
    pub size: Option<String>,
    pub colour: Option<String>,
    pub price: PriceInput,
    /// Basis points: 2000 = 20 %.
    pub vat_rate: i32,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    /// An absolute `https://` URL or a path on this server.
    pub url: String,
    #[serde(default)]
    pub alt: Localized,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// Derived from the French name when absent.
    pub slug: Option<String>,
    pub name: Localized,
    #[serde(default)]
    pub description: Localized,
    pub brand_id: Option<Uuid>,
    pub category_id: Option<Uuid>,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// `draft` (default) or `published`.
    pub status: Option<Status>,
    pub variants: Vec<NewVariant>,
    #[serde(default)]
    pub images: Vec<NewImage>,
}

/// Fields to change; absent fields are left as they are. `null` clears `brand_id` and
/// `category_id`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub slug: Option<String>,
    pub name: Option<Localized>,
    pub description: Option<Localized>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub brand_id: Option<Option<Uuid>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    pub attributes: Option<Vec<Attribute>>,
    /// `draft` or `published`; archive with the archive action.
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantPatch {
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub barcode: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub size: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub colour: Option<Option<String>>,
    pub price: Option<PriceInput>,
    pub vat_rate: Option<i32>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBrand {
    pub slug: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    pub slug: Option<String>,
    pub name: Localized,
    pub parent_id: Option<Uuid>,
    #[serde(default)]
    pub position: i32,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}
