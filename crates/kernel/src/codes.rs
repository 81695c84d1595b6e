//! The one table of stable error codes: every `code` a problem document (RFC 9457, rendered by
//! `platform::http::problem`) or one of its field errors can carry, with its HTTP status(es) and
//! what it means for the API user. Clients branch on these codes, never on the text.
//!
//! Why in `kernel`: the codes are vocabulary shared by every service, the web and the docs, and
//! need no IO and no HTTP stack (a status is a plain `u16`). `kernel` is the one crate every
//! other depends on and that depends on no service; `platform` would pull axum, sqlx and the
//! rest into anything that only wants to name a code.
//!
//! The call sites still write their codes as literals; the unit tests in `codes/tests.rs` read
//! the workspace's sources and fail when a site emits a code missing from [`CODES`] (naming
//! `file:line`), uses it with a kind or a status the table does not list, or when an entry is
//! emitted nowhere. The OpenAPI document (`comptoir::docs`) carries [`markdown`] in its
//! description, so the `/api/docs/` page shows this table.
//!
//! Modelled on meilisearch's `meilisearch-types/src/error.rs` (one list of codes with their
//! status and type, from which the documentation is generated).

/// Where a code appears in a problem document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The problem's own `code`.
    Problem,
    /// The `code` of an entry of the problem's `errors` (a field error).
    Field,
    /// Either: a problem code that also names the field at fault in `errors`.
    Both,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Problem => "problem",
            Kind::Field => "field",
            Kind::Both => "problem, field",
        }
    }
}

/// Who answers a code: the sections of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// The layers every service shares: the edge, the policy, the extractors, idempotency.
    Shared,
    /// Field errors of request bodies and query parameters, in every service.
    Fields,
    Identity,
    Catalog,
    Inventory,
    Cart,
    Checkout,
    Payments,
}

impl Area {
    pub const ALL: [Area; 8] = [
        Area::Shared,
        Area::Fields,
        Area::Identity,
        Area::Catalog,
        Area::Inventory,
        Area::Cart,
        Area::Checkout,
        Area::Payments,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Area::Shared => "Every service (edge, permissions, bodies, idempotency)",
            Area::Fields => "Field errors (`errors[].code`) in every service",
            Area::Identity => "Identity: accounts, sessions, staff, API keys",
            Area::Catalog => "Catalogue",
            Area::Inventory => "Stock",
            Area::Cart => "Carts",
            Area::Checkout => "Checkout and orders",
            Area::Payments => "Payments (refunds, cancellations, webhooks)",
        }
    }
}

/// One stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    /// Every HTTP status the code is answered with (for a field code: the statuses of the
    /// problems that carry it).
    pub statuses: &'static [u16],
    pub kind: Kind,
    pub area: Area,
    /// What it tells the API user, in one line.
    pub meaning: &'static str,
}

const fn c(
    name: &'static str,
    statuses: &'static [u16],
    kind: Kind,
    area: Area,
    meaning: &'static str,
) -> Code {
    Code {
        code: name,
        statuses,
        kind,
        area,
        meaning,
    }
}

use Area::*;
use Kind::{Both, Field, Problem};

/// Every stable code, by area.
#[rustfmt::skip]
pub const CODES: &[Code] = &[
    // --- every service
    c("malformed_json", &[400], Problem, Shared, "The body is not valid JSON."),
    c("unreadable_body", &[400], Problem, Shared, "The request body could not be read."),
    c("invalid_body", &[422], Problem, Shared, "The JSON does not fit the operation's schema; `errors` names each field."),
    c("validation_failed", &[422], Problem, Shared, "The request is well-formed but some values break a rule; `errors` names each field."),
    c("invalid_query", &[400], Problem, Shared, "A query parameter does not parse or names nothing; `errors` names it."),
    c("unsupported_media_type", &[415], Problem, Shared, "Send the body as `application/json`."),
    c("payload_too_large", &[413], Problem, Shared, "The body is larger than this server accepts."),
    c("unauthenticated", &[401], Problem, Shared, "The operation needs a credential: `Authorization: Bearer <token or API key>`."),
    c("invalid_token", &[401], Problem, Shared, "The bearer token or API key was sent but does not verify (expired, revoked, wrong issuer...)."),
    c("invalid_internal_call", &[401], Problem, Shared, "An internal route was called without a valid signature of a service of this installation (a deployment error: check auth.internal_secret)."),
    c("invalid_identity", &[401], Problem, Shared, "The identity forwarded by the gateway could not be verified (a deployment error)."),
    c("cross_site_request", &[403], Problem, Shared, "A cookie-authenticated unsafe request came from another site."),
    c("forbidden", &[403], Problem, Shared, "The caller is known but lacks the permission (or the route declares none)."),
    c("rate_limited", &[429], Problem, Shared, "Too many requests from this caller or address; wait `Retry-After` seconds."),
    c("identity_unavailable", &[503], Problem, Shared, "Credentials cannot be verified right now; retry shortly."),
    c("not_found", &[404, 422], Both, Shared, "No such object, or not the caller's (404); as a field code, the id it names does not exist (422)."),
    c("route_not_found", &[404], Problem, Shared, "No such route."),
    c("method_not_allowed", &[405], Problem, Shared, "The route exists, not with this method; `Allow` lists those it takes."),
    c("invalid_idempotency_key", &[400], Problem, Shared, "`Idempotency-Key` must be 1 to 255 printable ASCII characters without spaces."),
    c("idempotency_in_progress", &[409, 422], Problem, Shared, "A request with this `Idempotency-Key` is still running: retry with the same key (409); the payment provider said so of a refund (422)."),
    c("idempotency_key_reused", &[422], Problem, Shared, "This `Idempotency-Key` was used for a different request: use a new key."),
    c("concurrent_update", &[409], Problem, Shared, "The object changed while the request ran: reload and retry."),
    c("request_timeout", &[503], Problem, Shared, "The request took too long and was abandoned; retry."),
    c("unavailable", &[422, 503], Problem, Shared, "A store or service this one needs is not answering: retry later (503); in a cart, the item cannot be sold now (422)."),
    c("upstream_unavailable", &[502, 503], Problem, Shared, "The gateway cannot reach the service (502), no instance of it is available now (503, with `Retry-After`), or a service cannot reach another (503)."),
    c("upstream_timeout", &[504], Problem, Shared, "The service behind the gateway did not answer in time."),
    c("invalid_uri", &[400], Problem, Shared, "The gateway cannot forward this request URI."),
    c("internal", &[500], Problem, Shared, "An internal error; quote `request_id` when reporting it."),
    // --- field errors, every service
    c("required", &[422], Field, Fields, "Missing or empty."),
    c("too_long", &[422], Field, Fields, "Longer than the maximum the message states."),
    c("too_short", &[422], Field, Fields, "Shorter than the minimum (a password under 8 characters)."),
    c("too_many", &[422], Field, Fields, "Too many items in this list (variants, images, attributes...)."),
    c("invalid_format", &[400, 422], Field, Fields, "Not in the expected format (slug, SKU, code, e-mail, cursor...)."),
    c("invalid_length", &[422], Field, Fields, "Wrong length (a SKU has 1 to 64 characters)."),
    c("invalid_characters", &[422], Field, Fields, "Holds control characters."),
    c("invalid_type", &[422], Field, Fields, "The value has the wrong JSON type."),
    c("invalid_value", &[422], Field, Fields, "Not one of the values this field accepts."),
    c("invalid_parameter", &[400], Field, Fields, "This query parameter does not parse or is out of range (under `invalid_query`)."),
    c("unknown_field", &[422], Field, Fields, "The body has a field the operation does not know."),
    c("unknown_value", &[422], Field, Fields, "Not one of the enumeration's values."),
    c("unknown", &[400, 422], Field, Fields, "Names nothing known (a role, a status, a scope, a SKU)."),
    c("out_of_range", &[400, 422], Field, Fields, "Outside the allowed range the message states."),
    c("negative", &[422], Field, Fields, "Must not be negative."),
    c("duplicate", &[422], Field, Fields, "The same value twice in one request (a SKU, a barcode, an attribute code)."),
    c("unknown_currency", &[422], Field, Fields, "Not a currency Comptoir accepts."),
    // --- identity
    c("invalid_credentials", &[401], Problem, Identity, "The e-mail address or the password is wrong."),
    c("invalid_grant", &[401], Problem, Identity, "The refresh token is unknown, expired, or its session has ended: sign in again."),
    c("refresh_token_reused", &[401], Problem, Identity, "A used refresh token was presented again: the whole session has been ended."),
    c("too_many_attempts", &[429], Problem, Identity, "Too many failed sign-ins; wait `Retry-After` seconds."),
    c("email_taken", &[409], Problem, Identity, "An account already uses this e-mail address (field `email`: `taken`)."),
    c("taken", &[409], Field, Identity, "Already in use by another account."),
    c("wrong_password", &[403], Problem, Identity, "The current password is wrong (field `current_password`: `wrong`)."),
    c("wrong", &[403], Field, Identity, "Does not match."),
    c("too_common", &[422], Field, Identity, "The password is among the most common ones."),
    c("invalid_reset_token", &[400], Problem, Identity, "The reset link is unknown, used or expired; ask for a new one."),
    c("no_session", &[400], Problem, Identity, "Only a session token can sign out."),
    c("invalid_request", &[400, 422], Problem, Identity, "Introspection needs `api_key` or `session_id` (400); the payment provider refused a refund request as malformed (422)."),
    c("not_staff", &[422], Field, Identity, "Staff roles only (customers sign up, integrators are API keys)."),
    c("not_allowed", &[422], Field, Identity, "Not a store or organiser the caller may act for."),
    c("self", &[422], Field, Identity, "You cannot disable yourself or change your own role."),
    c("not_yours", &[422], Field, Identity, "An API key can only get scopes its creator holds."),
    // --- catalogue
    c("slug_taken", &[409], Both, Catalog, "Another product, brand or category has this slug."),
    c("sku_taken", &[409], Both, Catalog, "Another variant has this SKU."),
    c("barcode_taken", &[409], Both, Catalog, "Another variant has this barcode."),
    c("invalid_barcode", &[422], Field, Catalog, "Not a GTIN (EAN-8, UPC-A, EAN-13, GTIN-14) with a valid check digit."),
    c("invalid_url", &[422], Field, Catalog, "An `https://` URL or a path on this server, at most 2000 characters."),
    c("currency_mismatch", &[422], Both, Catalog, "All prices of a product, all lines of a cart, and every refund of a payment are in one currency."),
    c("invalid_if_match", &[400], Problem, Catalog, "`If-Match` must be the product's ETag, e.g. `\"v3\"`."),
    c("version_mismatch", &[412], Problem, Catalog, "The product is at another version than `If-Match` says: reload it."),
    c("product_archived", &[409], Problem, Catalog, "An archived product cannot be changed back."),
    c("invalid_cursor", &[400], Problem, Catalog, "The `cursor` is not one of this list: start again without it."),
    // --- stock
    c("invalid_stock_change", &[422], Problem, Inventory, "The stock movement, transfer or threshold is not valid."),
    c("invalid_location", &[422], Problem, Inventory, "A location name has 1 to 100 characters."),
    c("invalid_reason", &[422], Problem, Inventory, "A reason has 1 to 200 characters."),
    c("out_of_stock", &[409], Both, Inventory, "Not enough stock; one `errors` entry per short SKU says what is left."),
    c("hold_lost", &[409], Problem, Inventory, "The stock hold is no longer active (expired or released)."),
    c("unknown_sku", &[422], Both, Inventory, "The catalogue has no such SKU."),
    // --- carts
    c("invalid_quantity", &[422], Problem, Cart, "The quantity is out of range (field `quantity`: `out_of_range`)."),
    c("too_many_lines", &[422], Problem, Cart, "The cart has as many lines as it may."),
    // --- checkout and orders
    c("idempotency_key_required", &[428], Problem, Checkout, "This operation needs an `Idempotency-Key` header (one per attempt, reused on retry)."),
    c("empty_cart", &[422], Problem, Checkout, "The cart is empty."),
    c("price_changed", &[409], Both, Checkout, "Prices or availability changed since the items were added; `errors` names each SKU."),
    c("cart_checkout_in_progress", &[409], Both, Checkout, "Another checkout of this cart is running (field `cart_id`)."),
    c("cart_checked_out", &[409], Both, Checkout, "This cart was already checked out; the detail names the order."),
    c("unknown_store", &[422], Field, Checkout, "Not a click & collect store."),
    c("invalid_address", &[422], Field, Checkout, "A delivery address line is missing or too long."),
    c("invalid_country", &[422], Field, Checkout, "A country is an ISO 3166 two-letter code in upper case."),
    c("invalid_email", &[422], Field, Checkout, "Not an e-mail address."),
    c("amount_too_large", &[422], Both, Checkout, "The total is larger than Comptoir accepts; or a refund is more than the provider holds."),
    c("invalid_amount", &[422], Both, Checkout, "A refund is between 1 and what is left to refund."),
    c("invalid_status", &[400], Field, Checkout, "Not an order status (under `invalid_query`)."),
    c("invalid_state", &[400], Field, Checkout, "Not a checkout saga state (under `invalid_query`)."),
    c("invalid_transition", &[409], Problem, Checkout, "The order's status does not allow this change."),
    c("payment_declined", &[402], Problem, Checkout, "The payment was declined (or not confirmed); nothing was taken; the cart can be checked out again."),
    c("payment_failed", &[402], Problem, Checkout, "The payment could not be completed (the capture was refused); it was cancelled."),
    c("payment_timeout", &[402], Problem, Checkout, "The payment was not confirmed in time; it was cancelled."),
    c("invalid_payment", &[422], Problem, Checkout, "The payment details were refused; `detail` starts with the provider's reason."),
    c("hold_expired", &[409], Problem, Checkout, "The stock reservation expired during the checkout: try again."),
    c("unknown_location", &[422], Problem, Checkout, "The fulfilment location does not exist."),
    c("invalid_order", &[422], Problem, Checkout, "The order is not valid (a SKU or a line was refused)."),
    c("checkout_failed", &[503], Problem, Checkout, "The checkout could not be completed and was undone; retry later."),
    c("checkout_unavailable", &[503], Problem, Checkout, "A service the checkout needs did not answer for too long; everything taken was given back: retry later."),
    // --- payments
    c("payment_provider_unavailable", &[503], Problem, Payments, "The payment provider is not answering; retry later."),
    c("invalid_signature", &[400], Problem, Payments, "A webhook's signature is missing, wrong or stale."),
    c("malformed_event", &[400], Problem, Payments, "A webhook's body is not an event."),
    c("declined", &[422], Problem, Payments, "The provider declined the refund; `detail` gives its reason."),
    c("refused", &[422], Problem, Payments, "The test provider refused the operation."),
    c("provider_refused", &[422], Problem, Payments, "Stripe refused the operation; `detail` gives its message."),
    c("unexpected_state", &[422], Problem, Payments, "The provider's payment is not in a state that allows this."),
    c("unknown_charge", &[422], Problem, Payments, "The provider does not know this payment."),
    c("charge_not_captured", &[422], Problem, Payments, "The provider's payment was never captured: nothing to refund."),
    c("not_captured", &[422], Problem, Payments, "The payment was never captured: nothing to refund."),
    c("invalid_refund_key", &[422], Problem, Payments, "A refund key has 1 to 255 printable characters."),
    c("refund_key_reused", &[422], Problem, Payments, "This refund key was used for another amount."),
    c("refund_exceeds_captured", &[422], Problem, Payments, "The refunds would exceed what was captured."),
    c("refund_refused", &[422], Problem, Payments, "The provider refused the refund."),
    c("payment_refused", &[422], Problem, Payments, "Payments refused the operation with a reason this version does not name; `detail` gives it."),
    c("provider_mismatch", &[422], Problem, Payments, "The payment was made with another provider than this service uses."),
];

/// The entry of `code`.
pub fn find(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// The table as Markdown: one section per area, one row per code. The OpenAPI document's
/// description carries it.
pub fn markdown() -> String {
    let mut out = String::new();
    for area in Area::ALL {
        out.push_str(&format!(
            "\n#### {}\n\n| code | status | in | meaning |\n|---|---|---|---|\n",
            area.title()
        ));
        for e in CODES.iter().filter(|e| e.area == area) {
            let statuses = e
                .statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "| `{}` | {statuses} | {} | {} |\n",
                e.code,
                e.kind.as_str(),
                e.meaning.replace('|', "\\|")
            ));
        }
    }
    out
}

#[cfg(test)]
mod scan;
#[cfg(test)]
mod tests;
