//! Domain types stay free of utoipa: each `http` room declares a documentation twin of a domain
//! type that travels on the wire (same fields, same serde attributes, same doc comments, which
//! utoipa turns into descriptions), and [`schema_twin!`](crate::schema_twin) makes the twin's
//! schema the domain type's. Each use comes with a test that the twin and its type have the
//! same fields.

/// `impl ToSchema for $domain` as its twin `$doc`'s, under the name `$name`.
#[macro_export]
macro_rules! schema_twin {
    ($domain:ty, $doc:ty, $name:literal) => {
        impl utoipa::PartialSchema for $domain {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$doc as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $domain {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                <$doc as utoipa::ToSchema>::schemas(schemas)
            }
        }
    };
}

/// The property names of `T`'s object schema, sorted: what a twin test compares with
/// [`keys_of`] a serialised value.
pub fn property_names<T: utoipa::PartialSchema>() -> Vec<String> {
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    let mut p: Vec<String> = schema["properties"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    p.sort();
    p
}

/// The keys of a JSON object, sorted (empty for anything else).
pub fn keys_of(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}
