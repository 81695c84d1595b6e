//! The OpenAPI description of the domain types the API sends and receives. `domain` stays free
//! of `utoipa`: each type here is described by a private twin that derives the schema (same
//! name, fields and doc comments), and a test holds every twin to its type's JSON.

use crate::domain::{Location, Mismatch, Movement, MovementKind, StockLevel};
use std::borrow::Cow;
use utoipa::openapi::{RefOr, schema::Schema};
use uuid::Uuid;

/// `impl ToSchema for $ty` as the schema of `$twin`.
macro_rules! described_by {
    ($($ty:ty => $twin:ty),* $(,)?) => {$(
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                <$twin as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                <$twin as utoipa::ToSchema>::name()
            }
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                <$twin as utoipa::ToSchema>::schemas(out)
            }
        }
    )*};
}

described_by!(
    MovementKind => MovementKindSchema,
    Location => LocationSchema,
    StockLevel => StockLevelSchema,
    Movement => MovementSchema,
    Mismatch => MismatchSchema,
);

/// Kinds of movement, as stored.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = MovementKind)]
#[serde(rename_all = "snake_case")]
enum MovementKindSchema {
    Receipt,
    Sale,
    Return,
    Hold,
    Release,
    Adjustment,
    TransferOut,
    TransferIn,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = Location)]
struct LocationSchema {
    code: String,
    name: String,
    /// `head_office`, `store` or `warehouse`.
    kind: String,
    /// Ships parcels (online orders are served from here).
    ships: bool,
    click_and_collect: bool,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = StockLevel)]
struct StockLevelSchema {
    location: String,
    sku: String,
    on_hand: i64,
    held: i64,
    available: i64,
    low_threshold: i64,
    /// Available stock is at or under a (non-zero) threshold, now: computed from the counters,
    /// so a new threshold or a checkout's hold shows at once.
    low: bool,
}

#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = Movement)]
struct MovementSchema {
    id: Uuid,
    location: String,
    sku: String,
    kind: String,
    on_hand_delta: i64,
    held_delta: i64,
    reference: String,
    actor: String,
    created_at: i64,
}

/// A counter that disagrees with its ledger or with the active holds.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(as = Mismatch)]
struct MismatchSchema {
    location: String,
    sku: String,
    what: String,
    counter: i64,
    expected: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use utoipa::ToSchema;

    fn schema<T: ToSchema>() -> Value {
        serde_json::to_value(T::schema()).expect("a schema serialises")
    }

    /// The property names of `T`'s schema, and that each is required.
    fn properties<T: ToSchema>() -> (Vec<String>, Vec<String>) {
        let s = schema::<T>();
        let mut props: Vec<String> = s["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect();
        let mut required: Vec<String> = s["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .map(|v| v.as_str().expect("a name").to_string())
            .collect();
        props.sort();
        required.sort();
        (props, required)
    }

    fn keys(v: impl serde::Serialize) -> Vec<String> {
        let mut k: Vec<String> = serde_json::to_value(v)
            .expect("serialises")
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    #[track_caller]
    fn same<T: ToSchema>(name: &str, value: impl serde::Serialize) {
        assert_eq!(T::name(), name);
        let (props, required) = properties::<T>();
        let sent = keys(value);
        assert_eq!(props, sent, "{name}: the schema names what the API sends");
        assert_eq!(required, sent, "{name}: every field is always sent");
    }

    #[test]
    fn every_twin_describes_the_json_of_its_type() {
        same::<Location>(
            "Location",
            Location {
                code: "rennes".into(),
                name: "Rennes".into(),
                kind: "store".into(),
                ships: false,
                click_and_collect: true,
            },
        );
        same::<StockLevel>(
            "StockLevel",
            StockLevel {
                location: "rennes".into(),
                sku: "A".into(),
                on_hand: 3,
                held: 1,
                available: 2,
                low_threshold: 2,
                low: true,
            },
        );
        same::<Movement>(
            "Movement",
            Movement {
                id: Uuid::nil(),
                location: "rennes".into(),
                sku: "A".into(),
                kind: "receipt".into(),
                on_hand_delta: 3,
                held_delta: 0,
                reference: "r".into(),
                actor: "a".into(),
                created_at: 0,
            },
        );
        same::<Mismatch>(
            "Mismatch",
            Mismatch {
                location: "rennes".into(),
                sku: "A".into(),
                what: "w".into(),
                counter: 1,
                expected: 2,
            },
        );
        let kinds: Vec<Value> = MovementKind::ALL
            .iter()
            .map(|k| serde_json::to_value(k).expect("serialises"))
            .collect();
        assert_eq!(MovementKind::name(), "MovementKind");
        assert_eq!(schema::<MovementKind>()["enum"], json!(kinds));
    }
}
