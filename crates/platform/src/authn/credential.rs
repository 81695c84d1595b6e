//! Where a request carries its credential.

use super::{AuthError, SESSION_COOKIE};
use axum::http::{HeaderMap, header};

/// A credential found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Token(String),
    ApiKey(String),
    Cookie(String),
}

impl Credential {
    /// Reads `Authorization: Bearer`, `X-Api-Key`, then the session cookie. A malformed
    /// `Authorization` header is an error, never anonymous.
    pub fn from_headers(h: &HeaderMap) -> Result<Option<Credential>, AuthError> {
        if let Some(v) = h.get(header::AUTHORIZATION) {
            let v = v
                .to_str()
                .map_err(|_| AuthError::Invalid("unreadable Authorization header"))?;
            let (scheme, value) = v
                .split_once(' ')
                .ok_or(AuthError::Invalid("Authorization must be `Bearer <token>`"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Invalid("Authorization must be `Bearer <token>`"));
            }
            let value = value.trim();
            if value.is_empty() {
                return Err(AuthError::Invalid("empty bearer token"));
            }
            return Ok(Some(if value.starts_with("ck_") {
                Credential::ApiKey(value.to_string())
            } else {
                Credential::Token(value.to_string())
            }));
        }
        if let Some(v) = h.get("x-api-key") {
            let v = v
                .to_str()
                .map_err(|_| AuthError::Invalid("unreadable X-Api-Key header"))?;
            return Ok(Some(Credential::ApiKey(v.trim().to_string())));
        }
        for c in h.get_all(header::COOKIE) {
            let Ok(c) = c.to_str() else { continue };
            for pair in c.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=')
                    && k == SESSION_COOKIE
                    && !v.is_empty()
                {
                    return Ok(Some(Credential::Cookie(v.to_string())));
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credentials_are_read_from_the_expected_places() {
        let mut h = HeaderMap::new();
        assert_eq!(Credential::from_headers(&h).ok().flatten(), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; __Host-comptoir-session=tok"),
        );
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::Cookie("tok".into()))
        );
        h.insert("x-api-key", HeaderValue::from_static("ck_x_y"));
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::ApiKey("ck_x_y".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(
            Credential::from_headers(&h).ok().flatten(),
            Some(Credential::Token("abc".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(
            Credential::from_headers(&h).is_err(),
            "never silently anonymous"
        );
    }
}
