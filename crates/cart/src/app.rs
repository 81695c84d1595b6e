//! The cart use cases. Every change is read → check → compare-and-set, retried (boundedly) when
//! another request changed the cart meanwhile; every change pushes the expiry back.
//!
//! A change made under an `Idempotency-Key` ([`Keyed`]) stores its answer with the cart, in the
//! same save; a keyed write that finds nothing to change records its answer on its own.

use crate::domain::{
    Cart, Line, MAX_LINES, MAX_QUANTITY, MAX_SKU, PriceChange, PriceInfo, price_in_range, valid_sku,
};
use crate::keyed::Keyed;
use crate::store::{CartStore, Commit, Purged, StoreError};
use kernel::CartId;
use kernel::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use contracts::catalog::PriceBook;

/// Describes the metrics of carts and starts them at 0 (a process with carts calls this once).
pub fn describe_metrics() {
    metrics::describe_counter!("comptoir_carts_created_total", "Carts created");
    metrics::describe_counter!(
        "comptoir_carts_abandoned_total",
        "Carts that expired while they still had lines (counted by the purge, once)"
    );
    metrics::counter!("comptoir_carts_created_total").increment(0);
    metrics::counter!("comptoir_carts_abandoned_total").increment(0);
}

/// Lifetimes and limits of carts.
#[derive(Debug, Clone)]
pub struct CartSettings {
    /// How long a guest cart lives after its last change.
    pub guest_ttl: Duration,
    /// How long a customer's cart lives after its last change.
    pub customer_ttl: Duration,
    /// Attempts of a change that keeps meeting concurrent changes, then 409.
    pub max_attempts: u32,
    /// The currency of a cart created without one.
    pub default_currency: kernel::Currency,
}

impl Default for CartSettings {
    fn default() -> Self {
        CartSettings {
            guest_ttl: Duration::from_secs(2 * 24 * 3600),
            customer_ttl: Duration::from_secs(7 * 24 * 3600),
            max_attempts: 10,
            default_currency: kernel::Currency::EUR,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CartError {
    /// No such cart, expired, or not the caller's.
    #[error("cart not found")]
    NotFound,
    #[error("this SKU is not in the cart")]
    LineNotFound,
    #[error("quantity must be {min} to {MAX_QUANTITY}")]
    InvalidQuantity { min: i64 },
    #[error("a cart holds at most {MAX_LINES} lines")]
    TooManyLines,
    #[error("unknown SKU {0}")]
    UnknownSku(String),
    #[error("{0} is not sold at the moment")]
    Unavailable(String),
    #[error("the cart is in {cart}; this is priced in {other}")]
    CurrencyMismatch {
        cart: kernel::Currency,
        other: kernel::Currency,
    },
    #[error("unknown currency")]
    InvalidCurrency,
    #[error("the cart kept changing; retry")]
    Conflict,
    #[error("the catalogue cannot be asked for prices: {0}")]
    PricesUnavailable(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CartError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => CartError::Conflict,
            e => CartError::Store(e),
        }
    }
}

pub type CartResult<T> = Result<T, CartError>;

/// The cart service.
pub struct Carts {
    store: Arc<dyn CartStore>,
    prices: Arc<dyn PriceBook>,
    clock: Arc<dyn Clock>,
    settings: CartSettings,
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Carts {
    pub fn new(
        store: Arc<dyn CartStore>,
        prices: Arc<dyn PriceBook>,
        clock: Arc<dyn Clock>,
        settings: CartSettings,
    ) -> Self {
        Carts {
            store,
            prices,
            clock,
            settings,
        }
    }

    pub fn store(&self) -> &Arc<dyn CartStore> {
        &self.store
    }

    pub fn settings(&self) -> &CartSettings {
        &self.settings
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn ttl_ms(&self, owner: Option<&str>) -> i64 {
        duration_ms(match owner {
            Some(_) => self.settings.customer_ttl,
            None => self.settings.guest_ttl,
        })
    }

    /// The next version of a changed cart: +1, touched now, expiry pushed back.
    fn stamp(&self, cart: &mut Cart) {
        let now = self.now_ms();
        cart.version += 1;
        cart.updated_at = now;
        cart.expires_at = now.saturating_add(self.ttl_ms(cart.owner.as_deref()));
    }

    /// Saves `cart` with the answer of `keyed` (`created`: the save creates it) and what else
    /// `replaces` names, in one write.
    async fn save(
        &self,
        cart: &Cart,
        keyed: Option<&Keyed<'_>>,
        created: bool,
        replaces: Option<CartId>,
    ) -> Result<(), StoreError> {
        let answer = keyed
            .map(|k| (k.answer)(cart, created).map(|a| (k.claim, a)))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("the answer of cart {}: {e}", cart.id)))?;
        let with = Commit {
            answer: answer.as_ref().map(|(c, a)| (*c, a)),
            replaces,
        };
        self.store.save(cart, with).await
    }

    /// Records the answer of `keyed` when the write leaves `cart` as it found it.
    async fn unchanged(&self, cart: &Cart, keyed: Option<&Keyed<'_>>) -> CartResult<()> {
        if let Some(k) = keyed {
            let answer = (k.answer)(cart, false)?;
            self.store.record(k.claim, &answer).await?;
        }
        Ok(())
    }

    /// A new cart; for a customer (`owner`), their existing cart if they have one. Returns the
    /// cart and whether it was created.
    pub async fn create(
        &self,
        owner: Option<&str>,
        currency: Option<&str>,
        keyed: Option<&Keyed<'_>>,
    ) -> CartResult<(Cart, bool)> {
        let currency = match currency {
            Some(c) => kernel::Currency::parse(c).map_err(|_| CartError::InvalidCurrency)?,
            None => self.settings.default_currency,
        };
        for _ in 0..self.settings.max_attempts {
            if let Some(o) = owner
                && let Some(existing) = self.find_for(o).await?
            {
                self.unchanged(&existing, keyed).await?;
                return Ok((existing, false));
            }
            let now = self.now_ms();
            let cart = Cart {
                id: CartId::new(),
                owner: owner.map(str::to_string),
                currency,
                lines: Vec::new(),
                version: 1,
                created_at: now,
                updated_at: now,
                expires_at: now.saturating_add(self.ttl_ms(owner)),
            };
            match self.save(&cart, keyed, true, None).await {
                Ok(()) => {
                    metrics::counter!("comptoir_carts_created_total").increment(1);
                    return Ok((cart, true));
                }
                // the customer's cart was created meanwhile: take it on the next turn
                Err(StoreError::Conflict) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CartError::Conflict)
    }

    /// The customer's cart, if they have one.
    pub async fn find_for(&self, owner: &str) -> CartResult<Option<Cart>> {
        let Some(id) = self.store.find_by_owner(owner).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .load(id)
            .await?
            .filter(|c| c.owner.as_deref() == Some(owner)))
    }

    /// The cart, if `viewer` may see it (see [`Cart::visible_to`]); otherwise `NotFound`.
    pub async fn get(&self, id: CartId, viewer: Option<&str>) -> CartResult<Cart> {
        self.store
            .load(id)
            .await?
            .filter(|c| c.visible_to(viewer))
            .ok_or(CartError::NotFound)
    }

    /// Applies `f` to the current cart and saves it, retrying on concurrent changes. `f`
    /// returns whether it changed anything (nothing changed: nothing saved).
    async fn mutate<F>(
        &self,
        id: CartId,
        viewer: Option<&str>,
        keyed: Option<&Keyed<'_>>,
        mut f: F,
    ) -> CartResult<Cart>
    where
        F: FnMut(&mut Cart) -> CartResult<bool>,
    {
        for _ in 0..self.settings.max_attempts {
            let cart = self.get(id, viewer).await?;
            let mut next = cart.clone();
            if !f(&mut next)? {
                self.unchanged(&cart, keyed).await?;
                return Ok(cart);
            }
            self.stamp(&mut next);
            match self.save(&next, keyed, false, None).await {
                Ok(()) => return Ok(next),
                Err(StoreError::Conflict) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CartError::Conflict)
    }

    async fn price_of(&self, sku: &str) -> CartResult<PriceInfo> {
        let skus = [sku.to_string()];
        let mut map = self
            .prices
            .prices(&skus)
            .await
            .map_err(CartError::PricesUnavailable)?;
        let info = map
            .remove(sku)
            .ok_or_else(|| CartError::UnknownSku(sku.to_string()))?;
        if !info.active || !price_in_range(info.unit_price) {
            return Err(CartError::Unavailable(sku.to_string()));
        }
        Ok(info)
    }

    /// Adds `quantity` (1 to 99) of `sku` at the catalogue's current price; to the line of the
    /// same SKU if there is one (whose price snapshot is then refreshed), as long as it stays
    /// within 99.
    pub async fn add_line(
        &self,
        id: CartId,
        viewer: Option<&str>,
        sku: &str,
        quantity: i64,
        keyed: Option<&Keyed<'_>>,
    ) -> CartResult<Cart> {
        if !(1..=MAX_QUANTITY).contains(&quantity) {
            return Err(CartError::InvalidQuantity { min: 1 });
        }
        if !valid_sku(sku) {
            return Err(CartError::UnknownSku(sku.chars().take(MAX_SKU).collect()));
        }
        // the cart first: someone else's cart is a 404 whatever the SKU
        self.get(id, viewer).await?;
        let info = self.price_of(sku).await?;
        self.mutate(id, viewer, keyed, |cart| {
            if info.unit_price.currency() != cart.currency {
                return Err(CartError::CurrencyMismatch {
                    cart: cart.currency,
                    other: info.unit_price.currency(),
                });
            }
            if let Some(line) = cart.lines.iter_mut().find(|l| l.sku == sku) {
                let total = line.quantity.saturating_add(quantity);
                if total > MAX_QUANTITY {
                    return Err(CartError::InvalidQuantity { min: 1 });
                }
                line.quantity = total;
                line.unit_price = info.unit_price;
                line.name = info.name.clone();
            } else {
                if cart.lines.len() >= MAX_LINES {
                    return Err(CartError::TooManyLines);
                }
                cart.lines.push(Line {
                    sku: sku.to_string(),
                    name: info.name.clone(),
                    quantity,
                    unit_price: info.unit_price,
                });
            }
            Ok(true)
        })
        .await
    }

    /// Sets the quantity of a line (0 to 99; 0 removes it).
    pub async fn set_quantity(
        &self,
        id: CartId,
        viewer: Option<&str>,
        sku: &str,
        quantity: i64,
        keyed: Option<&Keyed<'_>>,
    ) -> CartResult<Cart> {
        if !(0..=MAX_QUANTITY).contains(&quantity) {
            return Err(CartError::InvalidQuantity { min: 0 });
        }
        self.mutate(id, viewer, keyed, |cart| {
            let i = cart
                .lines
                .iter()
                .position(|l| l.sku == sku)
                .ok_or(CartError::LineNotFound)?;
            if quantity == 0 {
                cart.lines.remove(i);
                return Ok(true);
            }
            let changed = cart.lines[i].quantity != quantity;
            cart.lines[i].quantity = quantity;
            Ok(changed)
        })
        .await
    }

    /// Removes a line.
    pub async fn remove_line(
        &self,
        id: CartId,
        viewer: Option<&str>,
        sku: &str,
        keyed: Option<&Keyed<'_>>,
    ) -> CartResult<Cart> {
        self.mutate(id, viewer, keyed, |cart| {
            let i = cart
                .lines
                .iter()
                .position(|l| l.sku == sku)
                .ok_or(CartError::LineNotFound)?;
            cart.lines.remove(i);
            Ok(true)
        })
        .await
    }

    /// At sign-in: moves the guest cart's lines into `customer`'s cart (quantities of the same
    /// SKU summed, capped at 99) and deletes the guest cart, in one save; a customer without a
    /// cart gets the guest cart itself. A cart that is already theirs is returned as it is;
    /// another customer's is `NotFound`.
    pub async fn merge(
        &self,
        guest_id: CartId,
        customer: &str,
        keyed: Option<&Keyed<'_>>,
    ) -> CartResult<Cart> {
        for _ in 0..self.settings.max_attempts {
            let guest = self
                .store
                .load(guest_id)
                .await?
                .ok_or(CartError::NotFound)?;
            match guest.owner.as_deref() {
                Some(o) if o == customer => {
                    self.unchanged(&guest, keyed).await?;
                    return Ok(guest);
                }
                Some(_) => return Err(CartError::NotFound),
                None => {}
            }
            let (mut next, replaces) = match self.find_for(customer).await? {
                None => {
                    let mut c = guest.clone();
                    c.owner = Some(customer.to_string());
                    (c, None)
                }
                Some(target) => {
                    let mut c = target;
                    merge_lines(&mut c, &guest)?;
                    (c, Some(guest.id))
                }
            };
            self.stamp(&mut next);
            match self.save(&next, keyed, false, replaces).await {
                Ok(()) => return Ok(next),
                Err(StoreError::Conflict) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CartError::Conflict)
    }

    /// Checks the price snapshots against the catalogue (at checkout): returns the cart with the
    /// current prices, without the lines that can no longer be bought, and what changed.
    /// Nothing is saved.
    pub async fn reprice(&self, cart: &Cart) -> CartResult<(Cart, Vec<PriceChange>)> {
        let skus: Vec<String> = cart.lines.iter().map(|l| l.sku.clone()).collect();
        if skus.is_empty() {
            return Ok((cart.clone(), Vec::new()));
        }
        let map = self
            .prices
            .prices(&skus)
            .await
            .map_err(CartError::PricesUnavailable)?;
        Ok(apply_prices(cart, &map, &skus))
    }

    /// [`Carts::reprice`], and saves the repriced cart when something changed, so that the
    /// customer sees what they would pay.
    pub async fn refresh_prices(
        &self,
        id: CartId,
        viewer: Option<&str>,
    ) -> CartResult<(Cart, Vec<PriceChange>)> {
        let current = self.get(id, viewer).await?;
        let skus: Vec<String> = current.lines.iter().map(|l| l.sku.clone()).collect();
        if skus.is_empty() {
            return Ok((current, Vec::new()));
        }
        let map = self
            .prices
            .prices(&skus)
            .await
            .map_err(CartError::PricesUnavailable)?;
        let mut changes = Vec::new();
        let saved = self
            .mutate(id, viewer, None, |cart| {
                let (repriced, c) = apply_prices(cart, &map, &skus);
                *cart = repriced;
                changes = c;
                Ok(!changes.is_empty())
            })
            .await?;
        Ok((saved, changes))
    }

    /// The order was placed: the cart is gone.
    pub async fn checked_out(&self, id: CartId) -> CartResult<()> {
        Ok(self.store.delete(id).await?)
    }

    /// Removes expired carts now (SQL backend; Redis expires them itself) and counts those
    /// that still had lines (`comptoir_carts_abandoned_total`).
    pub async fn purge_expired(&self) -> CartResult<Purged> {
        let purged = self.store.purge_expired(self.now_ms()).await?;
        metrics::counter!("comptoir_carts_abandoned_total").increment(purged.abandoned);
        Ok(purged)
    }
}

/// Adds the guest's lines to `target`.
fn merge_lines(target: &mut Cart, guest: &Cart) -> CartResult<()> {
    if guest.lines.is_empty() {
        return Ok(());
    }
    if target.currency != guest.currency {
        if !target.lines.is_empty() {
            return Err(CartError::CurrencyMismatch {
                cart: target.currency,
                other: guest.currency,
            });
        }
        target.currency = guest.currency;
    }
    for g in &guest.lines {
        if let Some(line) = target.lines.iter_mut().find(|l| l.sku == g.sku) {
            line.quantity = line.quantity.saturating_add(g.quantity).min(MAX_QUANTITY);
        } else {
            if target.lines.len() >= MAX_LINES {
                return Err(CartError::TooManyLines);
            }
            target.lines.push(g.clone());
        }
    }
    Ok(())
}

/// The cart at the prices of `map`, and the lines that differ. Only the lines of the `asked`
/// SKUs are checked (a line added after the lookup is left as it is).
fn apply_prices(
    cart: &Cart,
    map: &HashMap<String, PriceInfo>,
    asked: &[String],
) -> (Cart, Vec<PriceChange>) {
    let mut out = cart.clone();
    let mut changes = Vec::new();
    out.lines.retain_mut(|line| match map.get(&line.sku) {
        _ if !asked.contains(&line.sku) => true,
        Some(info)
            if info.active
                && info.unit_price.currency() == cart.currency
                && price_in_range(info.unit_price) =>
        {
            if info.unit_price != line.unit_price {
                changes.push(PriceChange::Changed {
                    sku: line.sku.clone(),
                    old: line.unit_price.minor(),
                    new: info.unit_price.minor(),
                });
                line.unit_price = info.unit_price;
            }
            line.name = info.name.clone();
            true
        }
        _ => {
            changes.push(PriceChange::Unavailable {
                sku: line.sku.clone(),
            });
            false
        }
    });
    (out, changes)
}
