//! The OpenAPI schemas of the domain's types that travel on the wire (`Order`, its lines, the
//! fulfilment and its address, the order and saga statuses). The domain stays free of utoipa:
//! each type here is a documentation twin of the domain's (same fields, same serde attributes,
//! same doc comments, which utoipa turns into descriptions), and the domain type's `ToSchema`
//! is the twin's. The tests below fail when a twin and its type drift apart.

#![allow(dead_code)] // the twins are never built: they only carry a schema

use crate::domain::{Address, Fulfilment, Order, OrderLine, OrderStatus, SagaState};
use kernel::{Currency, OrderId};
use utoipa::ToSchema;

platform::schema_twin!(OrderStatus, OrderStatusDoc, "OrderStatus");
platform::schema_twin!(OrderLine, OrderLineDoc, "OrderLine");
platform::schema_twin!(Address, AddressDoc, "Address");
platform::schema_twin!(Fulfilment, FulfilmentDoc, "Fulfilment");
platform::schema_twin!(Order, OrderDoc, "Order");
platform::schema_twin!(SagaState, SagaStateDoc, "SagaState");

/// Where an order stands.
///
/// ```text
/// pending ──► awaiting_payment ──► paid ──► fulfilled ──► completed
///    │               │              │  ╲        │
///    └──► cancelled ◄┘              │   ╲       └─► partially_refunded / refunded
///                                   └─► cancelled (refunded in full)
/// ```
/// `pending`: placed, stock held, payment authorised; `awaiting_payment`: stock committed,
/// capture under way; `paid`: captured. Fulfilled = shipped, or ready at the store for click &
/// collect; completed = delivered or collected.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum OrderStatusDoc {
    Pending,
    AwaitingPayment,
    Paid,
    Fulfilled,
    Completed,
    Cancelled,
    PartiallyRefunded,
    Refunded,
}

#[derive(serde::Serialize, ToSchema)]
struct OrderLineDoc {
    sku: String,
    name: String,
    quantity: i64,
    /// Minor units of the order's currency.
    unit_price: i64,
    /// `quantity × unit_price`, minor units.
    line_total: i64,
}

#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddressDoc {
    name: String,
    line1: String,
    #[serde(default)]
    line2: Option<String>,
    postcode: String,
    city: String,
    /// ISO 3166-1 alpha-2.
    country: String,
}

/// Home delivery from the logistics centre, or click & collect in a store.
#[derive(serde::Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum FulfilmentDoc {
    Delivery { address: Address },
    Collect { store: String },
}

#[derive(serde::Serialize, ToSchema)]
struct OrderDoc {
    id: OrderId,
    number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    email: String,
    status: OrderStatus,
    /// `delivery` or `collect`.
    fulfilment: String,
    /// The location serving the order: the logistics centre or the collect store.
    location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    /// The currency of every amount of the order.
    currency: Currency,
    /// Minor units.
    subtotal: i64,
    /// The delivery fee, minor units.
    shipping: i64,
    /// What was charged, minor units.
    total: i64,
    /// Given back so far, minor units.
    refunded: i64,
    lines: Vec<OrderLine>,
    created_at: i64,
    updated_at: i64,
}

/// The saga's states. Forward: started → stock_held → payment_authorized → order_confirmed →
/// stock_committed → completed. Backward: compensating → compensated. `failed`: ended before
/// anything was taken (out of stock). `awaiting_authorization`: the provider needs time.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum SagaStateDoc {
    Started,
    StockHeld,
    AwaitingAuthorization,
    PaymentAuthorized,
    OrderConfirmed,
    StockCommitted,
    Completed,
    Compensating,
    Compensated,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::Money;
    use platform::http::schema::keys_of as keys;
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    fn schema_json<T: PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).expect("a schema is JSON")
    }

    /// The property names of an object schema.
    fn properties(schema: &Value) -> Vec<String> {
        let mut p: Vec<String> = schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        p.sort();
        p
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn address() -> Address {
        Address {
            name: "Anne".into(),
            line1: "1 rue de Brest".into(),
            line2: Some("bis".into()),
            postcode: "29000".into(),
            city: "Quimper".into(),
            country: "FR".into(),
        }
    }

    #[test]
    fn every_status_is_in_its_schema_and_nothing_else() {
        let listed = |s: Value| -> Vec<Value> { s["enum"].as_array().cloned().unwrap_or_default() };
        let orders: Vec<Value> = OrderStatus::ALL.iter().map(|s| json!(s)).collect();
        assert_eq!(listed(schema_json::<OrderStatus>()), orders);
        let sagas: Vec<Value> = SagaState::ALL.iter().map(|s| json!(s)).collect();
        assert_eq!(listed(schema_json::<SagaState>()), sagas);
    }

    #[test]
    fn the_objects_have_their_types_fields() {
        let line = OrderLine {
            sku: "A-1".into(),
            name: "a".into(),
            quantity: 1,
            unit_price: eur(2),
            line_total: eur(2),
        };
        assert_eq!(properties(&schema_json::<OrderLine>()), keys(&json!(line)));
        assert_eq!(
            properties(&schema_json::<Address>()),
            keys(&json!(address()))
        );
        let order = Order {
            id: OrderId::new(),
            number: "BZH-1".into(),
            customer: Some("c".into()),
            email: "a@b.c".into(),
            status: OrderStatus::Paid,
            fulfilment: "delivery".into(),
            location: "logistique".into(),
            address: Some(address()),
            currency: Currency::EUR,
            subtotal: eur(2),
            shipping: eur(0),
            total: eur(2),
            refunded: eur(0),
            lines: vec![line],
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(properties(&schema_json::<Order>()), keys(&json!(order)));
    }

    #[test]
    fn each_fulfilment_is_one_of_its_schema() {
        let schema = schema_json::<Fulfilment>();
        let variants = schema["oneOf"].as_array().cloned().unwrap_or_default();
        let delivery = json!(Fulfilment::Delivery { address: address() });
        let collect = json!(Fulfilment::Collect {
            store: "rennes".into()
        });
        assert_eq!(variants.len(), 2);
        for value in [delivery, collect] {
            assert!(
                variants.iter().any(|v| properties(v) == keys(&value)
                    && v["properties"]["type"]["enum"][0] == value["type"]),
                "{value} has no variant in {schema}"
            );
        }
    }
}
