//! The SKU rule every service applies: `1..=64` characters of `A-Z`, `0-9`, `-`, `_` and `.`.
//! Nothing is normalised silently: a SKU with a space, in lower case or with markup is refused,
//! never trimmed or upper-cased into another SKU.

pub const MAX_LEN: usize = 64;

/// Why a string is not a SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuError {
    /// Empty, or longer than [`MAX_LEN`].
    Length,
    /// A character outside `A-Z 0-9 - _ .` (spaces included).
    Characters,
}

impl SkuError {
    /// The stable field-error code.
    pub fn code(self) -> &'static str {
        match self {
            SkuError::Length => "invalid_length",
            SkuError::Characters => "invalid_format",
        }
    }
    pub fn message(self) -> String {
        match self {
            SkuError::Length => format!("1 to {MAX_LEN} characters"),
            SkuError::Characters => "uppercase letters, digits, `-`, `_` and `.` only".into(),
        }
    }
}

pub fn check(s: &str) -> Result<(), SkuError> {
    if s.is_empty() || s.len() > MAX_LEN {
        return Err(SkuError::Length);
    }
    let ok = s.bytes().all(|b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
    });
    if ok {
        Ok(())
    } else {
        Err(SkuError::Characters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_skus_pass() {
        assert_eq!(check("KER-42-BLEU"), Ok(()));
        assert_eq!(check("A.B_C-1"), Ok(()));
        assert_eq!(check(""), Err(SkuError::Length));
        assert_eq!(check(&"A".repeat(65)), Err(SkuError::Length));
        for bad in [
            " ", "KER-42 ", " KER-42", "ker-42", "<b>X</b>", "A\u{0}", "É",
        ] {
            assert_eq!(check(bad), Err(SkuError::Characters), "{bad:?}");
        }
    }
}
