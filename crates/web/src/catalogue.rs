//! The storefront's read model: every published product, whole, in memory, with stock per
//! location beside it. Listing, filters (category, brand, size, colour, price, in stock),
//! sorting, text search and suggestions are answered from here without a query, which is what
//! lets a catalogue page cost a template render.
//!
//! Freshness: products are reloaded (three queries) when older than `products_ttl`, or at once
//! after a write made through the back office; stock levels (one query) when older than
//! `stock_ttl`. A stale snapshot is served while one request reloads it. The API stays the
//! source of truth: a checkout re-checks prices and stock whatever a page showed.

use catalog::contract::Published;
use catalog::model::{Brand, Category, Product};
use contracts::inventory::StockApi;
use platform::db::Db;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const PAGE_SIZE: usize = 24;

/// One product with what filtering needs precomputed.
pub struct Entry {
    pub product: Product,
    /// Name (both languages), brand, category, SKUs and colours, folded by the kernel's search
    /// rule ([`kernel::search_haystack`]), as the API folds its search text.
    haystack: String,
    pub sizes: BTreeSet<String>,
    pub colours: BTreeSet<String>,
    pub min_price: i64,
    pub max_price: i64,
    /// Category and its ancestors.
    pub category_path: Vec<uuid::Uuid>,
}

pub struct Snapshot {
    pub entries: Vec<Entry>,
    by_slug: HashMap<String, usize>,
    pub categories: Vec<Category>,
    pub brands: Vec<Brand>,
    loaded: Instant,
}

/// Available units per SKU, per location.
pub struct Stock {
    pub by_sku: HashMap<String, Vec<(String, i64)>>,
    /// The locations (stores first for the product page's list), read with the levels.
    pub locations: Vec<contracts::inventory::LocationInfo>,
    loaded: Instant,
}

impl Stock {
    pub fn total(&self, sku: &str) -> i64 {
        self.by_sku
            .get(sku)
            .map(|v| v.iter().map(|(_, a)| (*a).max(0)).sum())
            .unwrap_or(0)
    }
    pub fn at(&self, sku: &str, location: &str) -> i64 {
        self.by_sku
            .get(sku)
            .and_then(|v| v.iter().find(|(l, _)| l == location).map(|(_, a)| *a))
            .unwrap_or(0)
            .max(0)
    }
}

/// Where the published catalogue is read from.
pub enum Source {
    /// The catalogue's database, in this process.
    Local(Db),
    /// The catalogue in another process (`/internal/catalog/published`).
    Remote(contracts::Peer),
}

impl Source {
    async fn load(&self) -> Result<Published, platform::ApiError> {
        match self {
            Source::Local(db) => Ok(Published::load(db).await?),
            Source::Remote(peer) => Published::fetch(peer).await.map_err(|e| {
                tracing::warn!(error = %e, "catalogue unavailable for the storefront");
                platform::ApiError::unavailable("the catalogue is not answering; retry later")
            }),
        }
    }
}

pub struct Catalogue {
    /// Whole public pages for anonymous visitors, cleared with the read model.
    pub pages: crate::pagecache::PageCache,
    source: Source,
    inventory: Option<Arc<dyn StockApi>>,
    products_ttl: Duration,
    stock_ttl: Duration,
    snap: RwLock<Option<Arc<Snapshot>>>,
    stock: RwLock<Option<Arc<Stock>>>,
    reload: tokio::sync::Mutex<()>,
    reload_stock: tokio::sync::Mutex<()>,
}

/// Folded as the kernel's search rule folds (lower case, accents stripped, punctuation to
/// spaces): for sorting by name.
pub fn fold(s: &str) -> String {
    kernel::fold_for_search(s)
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub category: Option<uuid::Uuid>,
    pub brand: Option<String>,
    pub size: Option<String>,
    pub colour: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    pub text: Option<String>,
    pub sort: Sort,
    pub page: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

impl Sort {
    pub fn parse(s: &str) -> Sort {
        match s {
            "price" => Sort::PriceAsc,
            "-price" => Sort::PriceDesc,
            "name" => Sort::Name,
            _ => Sort::Newest,
        }
    }
    pub fn code(&self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::PriceAsc => "price",
            Sort::PriceDesc => "-price",
            Sort::Name => "name",
        }
    }
}

/// A page of results with the choices the filters offer for them.
pub struct Listing<'a> {
    pub items: Vec<&'a Entry>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub brands: Vec<(String, String)>,
    pub sizes: Vec<String>,
    pub colours: Vec<String>,
}

impl Snapshot {
    fn build(products: Vec<Product>, categories: Vec<Category>, brands: Vec<Brand>) -> Snapshot {
        let parent: HashMap<uuid::Uuid, Option<uuid::Uuid>> =
            categories.iter().map(|c| (c.id, c.parent_id)).collect();
        let mut entries = Vec::with_capacity(products.len());
        for p in products {
            let active: Vec<_> = p.variants.iter().filter(|v| v.active).collect();
            if active.is_empty() {
                continue;
            }
            let mut hay = format!("{} {}", p.name.fr, p.name.en);
            if let Some(b) = &p.brand {
                hay.push(' ');
                hay.push_str(&b.name);
            }
            if let Some(c) = &p.category {
                hay.push(' ');
                hay.push_str(&c.name.fr);
                hay.push(' ');
                hay.push_str(&c.name.en);
            }
            for v in &active {
                hay.push(' ');
                hay.push_str(&v.sku);
                if let Some(c) = &v.colour {
                    hay.push(' ');
                    hay.push_str(c);
                }
            }
            let mut category_path = Vec::new();
            let mut cur = p.category.as_ref().map(|c| c.id);
            while let Some(c) = cur {
                if category_path.contains(&c) {
                    break;
                }
                category_path.push(c);
                cur = parent.get(&c).copied().flatten();
            }
            entries.push(Entry {
                haystack: kernel::search_haystack([hay.as_str()]),
                sizes: active.iter().filter_map(|v| v.size.clone()).collect(),
                colours: active.iter().filter_map(|v| v.colour.clone()).collect(),
                min_price: active
                    .iter()
                    .map(|v| v.price.amount_minor)
                    .min()
                    .unwrap_or(0),
                max_price: active
                    .iter()
                    .map(|v| v.price.amount_minor)
                    .max()
                    .unwrap_or(0),
                category_path,
                product: p,
            });
        }
        let by_slug = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.product.slug.clone(), i))
            .collect();
        Snapshot {
            entries,
            by_slug,
            categories,
            brands,
            loaded: Instant::now(),
        }
    }

    pub fn product(&self, slug: &str) -> Option<&Entry> {
        self.by_slug.get(slug).map(|i| &self.entries[*i])
    }

    pub fn category(&self, slug: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.slug == slug)
    }

    pub fn top_categories(&self) -> Vec<&Category> {
        let mut v: Vec<&Category> = self
            .categories
            .iter()
            .filter(|c| c.parent_id.is_none())
            .collect();
        v.sort_by_key(|c| (c.position, c.slug.clone()));
        v
    }

    pub fn children(&self, id: uuid::Uuid) -> Vec<&Category> {
        let mut v: Vec<&Category> = self
            .categories
            .iter()
            .filter(|c| c.parent_id == Some(id))
            .collect();
        v.sort_by_key(|c| (c.position, c.slug.clone()));
        v
    }

    /// Filters, sorts and pages.
    pub fn list<'a>(&'a self, q: &Query, stock: &Stock) -> Listing<'a> {
        // the kernel's one search rule, the API's too
        let search = kernel::SearchQuery::parse(q.text.as_deref().unwrap_or(""));
        // the scope: category and text; the facets are computed on it
        let scope: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| q.category.is_none_or(|c| e.category_path.contains(&c)))
            .filter(|e| search.matches(&e.haystack))
            .collect();
        let mut brands: Vec<(String, String)> = scope
            .iter()
            .filter_map(|e| e.product.brand.as_ref())
            .map(|b| (b.slug.clone(), b.name.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        brands.sort_by(|a, b| a.1.cmp(&b.1));
        let sizes: BTreeSet<String> = scope.iter().flat_map(|e| e.sizes.iter().cloned()).collect();
        let colours: BTreeSet<String> = scope
            .iter()
            .flat_map(|e| e.colours.iter().cloned())
            .collect();
        let mut items: Vec<&Entry> = scope
            .into_iter()
            .filter(|e| {
                q.brand
                    .as_deref()
                    .is_none_or(|b| e.product.brand.as_ref().is_some_and(|x| x.slug == b))
            })
            .filter(|e| {
                let vs = e.product.variants.iter().filter(|v| v.active).filter(|v| {
                    q.size
                        .as_deref()
                        .is_none_or(|s| v.size.as_deref() == Some(s))
                        && q.colour
                            .as_deref()
                            .is_none_or(|c| v.colour.as_deref() == Some(c))
                        && q.min_price.is_none_or(|m| v.price.amount_minor >= m)
                        && q.max_price.is_none_or(|m| v.price.amount_minor <= m)
                        && (!q.in_stock || stock.total(&v.sku) > 0)
                });
                vs.count() > 0
            })
            .collect();
        match q.sort {
            Sort::Newest => {}
            Sort::PriceAsc => items.sort_by_key(|e| (e.min_price, e.product.slug.clone())),
            Sort::PriceDesc => items.sort_by_key(|e| (-e.max_price, e.product.slug.clone())),
            Sort::Name => items.sort_by_key(|e| fold(&e.product.name.fr)),
        }
        let total = items.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = q.page.clamp(1, pages);
        let items = items
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        Listing {
            items,
            total,
            page,
            pages,
            brands,
            sizes: sort_sizes(sizes),
            colours: colours.into_iter().collect(),
        }
    }

    /// Up to `n` products whose name matches every word typed so far (the last one as a
    /// prefix of a word).
    pub fn suggest(&self, text: &str, n: usize) -> Vec<&Entry> {
        let search = kernel::SearchQuery::parse(text);
        if search.words().is_empty() {
            return vec![];
        }
        self.entries
            .iter()
            .filter(|e| search.matches(&e.haystack))
            .take(n)
            .collect()
    }
}

/// Sizes in a shopper's order: numbers by value, then letter sizes XS..XXL, then the rest.
fn sort_sizes(s: BTreeSet<String>) -> Vec<String> {
    const LETTERS: [&str; 7] = ["XS", "S", "M", "L", "XL", "XXL", "XXXL"];
    let mut v: Vec<String> = s.into_iter().collect();
    v.sort_by_key(|x| {
        if let Ok(n) = x.parse::<u32>() {
            (0, n, String::new())
        } else if let Some(i) = LETTERS.iter().position(|l| l == x) {
            (1, i as u32, String::new())
        } else {
            (2, 0, x.clone())
        }
    });
    v
}

impl Catalogue {
    pub fn new(
        source: Source,
        inventory: Option<Arc<dyn StockApi>>,
        products_ttl: Duration,
    ) -> Self {
        Catalogue {
            pages: Default::default(),
            source,
            inventory,
            products_ttl,
            stock_ttl: Duration::from_secs(3),
            snap: RwLock::new(None),
            stock: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
            reload_stock: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snap.read().ok().and_then(|g| g.clone())
    }

    /// The products, reloaded first if stale (one request reloads, the others keep the
    /// previous snapshot; the very first load is awaited by all).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, platform::ApiError> {
        if let Some(s) = self.current()
            && s.loaded.elapsed() < self.products_ttl
        {
            return Ok(s);
        }
        let stale = self.current();
        let guard = match (&stale, self.reload.try_lock()) {
            (_, Ok(g)) => g,
            (Some(s), Err(_)) => return Ok(s.clone()),
            (None, Err(_)) => self.reload.lock().await,
        };
        if let Some(s) = self.current()
            && s.loaded.elapsed() < self.products_ttl
        {
            return Ok(s);
        }
        let p = self.source.load().await?;
        let snap = Arc::new(Snapshot::build(p.products, p.categories, p.brands));
        if let Ok(mut w) = self.snap.write() {
            *w = Some(snap.clone());
        }
        drop(guard);
        Ok(snap)
    }

    /// Drops the snapshot: the next page reloads (after a back-office write).
    pub fn invalidate(&self) {
        self.pages.clear();
        if let Ok(mut w) = self.snap.write() {
            *w = None;
        }
        if let Ok(mut w) = self.stock.write() {
            *w = None;
        }
    }

    /// Drops the stock levels (after a stock change made through the back office).
    pub fn invalidate_stock(&self) {
        self.pages.clear();
        if let Ok(mut w) = self.stock.write() {
            *w = None;
        }
    }

    pub async fn stock(&self) -> Arc<Stock> {
        let cur = self.stock.read().ok().and_then(|g| g.clone());
        if let Some(s) = &cur
            && s.loaded.elapsed() < self.stock_ttl
        {
            return s.clone();
        }
        let guard = match (&cur, self.reload_stock.try_lock()) {
            (_, Ok(g)) => g,
            (Some(s), Err(_)) => return s.clone(),
            (None, Err(_)) => self.reload_stock.lock().await,
        };
        let mut by_sku: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        let mut locations = Vec::new();
        if let Some(inv) = &self.inventory {
            match inv.locations().await {
                Ok(l) => locations = l,
                Err(e) => tracing::warn!(error = %e, "locations unavailable for the storefront"),
            }
            match inv.available().await {
                Ok(levels) => {
                    for l in levels {
                        by_sku
                            .entry(l.sku)
                            .or_default()
                            .push((l.location, l.available));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stock levels unavailable for the storefront");
                    if let Some(s) = cur {
                        return s;
                    }
                }
            }
        }
        let s = Arc::new(Stock {
            by_sku,
            locations,
            loaded: Instant::now(),
        });
        if let Ok(mut w) = self.stock.write() {
            *w = Some(s.clone());
        }
        drop(guard);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_finds_words_with_or_without_accents() {
        assert_eq!(fold("Vélo Électrique Forêt"), "velo electrique foret");
        let hay = kernel::search_haystack(["Vélo Électrique Forêt"]);
        assert!(kernel::SearchQuery::parse("ÉLECTRIQUE velo").matches(&hay));
    }

    #[test]
    fn sizes_sort_like_a_shop() {
        let s: BTreeSet<String> = ["XL", "S", "42", "40", "M", "20L"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(sort_sizes(s), vec!["40", "42", "S", "M", "XL", "20L"]);
    }
}
