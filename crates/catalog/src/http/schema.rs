//! The OpenAPI schemas of the catalogue's domain types that travel on the wire (the publication
//! status, localised texts, attributes): documentation twins of the domain's types (see
//! [`platform::http::schema`]). The tests below fail when a twin and its type drift apart.

#![allow(dead_code)] // the twins are never built: they only carry a schema

use crate::domain::{Attribute, AttributeType, Localized, Status};
use utoipa::ToSchema;

platform::schema_twin!(Status, StatusDoc, "Status");
platform::schema_twin!(Localized, LocalizedDoc, "Localized");
platform::schema_twin!(AttributeType, AttributeTypeDoc, "AttributeType");
platform::schema_twin!(Attribute, AttributeDoc, "Attribute");

/// Publication state of a product.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum StatusDoc {
    /// Visible to the back office only.
    Draft,
    /// Visible to everyone.
    Published,
    /// Withdrawn from sale; kept for orders and history.
    Archived,
}

/// A text in French and English.
#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LocalizedDoc {
    fr: String,
    en: String,
}

/// The type of an attribute's value.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum AttributeTypeDoc {
    Text,
    Integer,
    Boolean,
    List,
}

/// A typed product attribute, e.g. `{"code": "weight_g", "type": "integer", "value": 320}`.
#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AttributeDoc {
    /// Lowercase code, `[a-z][a-z0-9_]*`.
    code: String,
    #[serde(rename = "type")]
    kind: AttributeType,
    /// A string (`text`), an integer (`integer`), a boolean (`boolean`) or an array of strings
    /// (`list`).
    #[schema(value_type = Object)]
    value: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::http::schema::{keys_of, property_names};
    use serde_json::json;
    use utoipa::PartialSchema;

    fn listed<T: PartialSchema>() -> Vec<serde_json::Value> {
        serde_json::to_value(T::schema()).expect("a schema is JSON")["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn the_twins_have_their_types_fields_and_values() {
        let text = Localized {
            fr: "Veste".into(),
            en: "Jacket".into(),
        };
        assert_eq!(property_names::<Localized>(), keys_of(&json!(text)));
        let attribute = Attribute {
            code: "weight_g".into(),
            kind: AttributeType::Integer,
            value: json!(320),
        };
        assert_eq!(property_names::<Attribute>(), keys_of(&json!(attribute)));
        let statuses = [Status::Draft, Status::Published, Status::Archived];
        assert_eq!(
            listed::<Status>(),
            statuses.iter().map(|s| json!(s)).collect::<Vec<_>>()
        );
        let kinds = [
            AttributeType::Text,
            AttributeType::Integer,
            AttributeType::Boolean,
            AttributeType::List,
        ];
        assert_eq!(
            listed::<AttributeType>(),
            kinds.iter().map(|k| json!(k)).collect::<Vec<_>>()
        );
    }
}
