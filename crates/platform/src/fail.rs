//! Fail points for crash and fault tests (RELIABILITY.md F1, F2): `COMPTOIR_FAILPOINTS=a,b`
//! makes the process abort — like `kill -9`, no destructor, no flush — the first time it
//! reaches one of the named points; `name=delay(ms)` makes [`delay`] of that name wait instead
//! (`http.request=delay(150)`: a slow instance). Unset (always, in production), a point costs
//! one relaxed load.

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

/// How long the point `name` is armed to wait (`name=delay(ms)`), if it is.
pub fn delay_of(name: &str) -> Option<std::time::Duration> {
    armed().iter().find_map(|p| {
        let ms = p
            .strip_prefix(name)?
            .strip_prefix("=delay(")?
            .strip_suffix(')')?;
        ms.parse().ok().map(std::time::Duration::from_millis)
    })
}

/// Waits here as long as `name` is armed to (nothing when it is not).
pub async fn delay(name: &str) {
    if let Some(d) = delay_of(name) {
        tokio::time::sleep(d).await;
    }
}
