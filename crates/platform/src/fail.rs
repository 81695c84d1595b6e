//! Fail points for crash tests (RELIABILITY.md F1, F2): `COMPTOIR_FAILPOINTS=a,b` makes the
//! process abort — like `kill -9`, no destructor, no flush — the first time it reaches one of
//! the named points. Unset (always, in production), a point costs one relaxed load.

use std::sync::OnceLock;

pub const ENV: &str = "COMPTOIR_FAILPOINTS";

fn armed() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var(ENV)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Aborts the process here if `name` is armed.
pub fn point(name: &str) {
    if armed().iter().any(|p| p == name) {
        eprintln!("fail point `{name}` reached: aborting the process");
        std::process::abort();
    }
}
