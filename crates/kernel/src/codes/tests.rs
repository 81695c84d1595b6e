//! The table against the code: every literal code the workspace's sources hand to a code-setting
//! constructor must be in [`CODES`], with a kind (and, where the site names it, a status) that
//! the table allows; every entry must be emitted somewhere.
//!
//! The sources read are `crates/*/src/**/*.rs`, without their `#[cfg(test)]` modules, and
//! without `crates/web`: the pages answer HTML, never a problem document; the problems they
//! hold are the API's, decoded (their fallback `error`, `unavailable`, `not_found` never leave
//! the process).
//!
//! The code-setting sites recognised (a literal in the named position; a variable there is
//! followed to where it is set only through the `let code` and `fn …code` rules):
//!
//! | site | literal | kind |
//! |---|---|---|
//! | `ApiError::new(StatusCode::X, "c", …)`, `Self::new(StatusCode::X, "c", …)` | 2nd | problem, status X |
//! | `ApiError::bad_request("c", …)` | 1st | problem, 400 |
//! | `ApiError::conflict("c", …)` | 1st | problem, 409 |
//! | `unprocessable("c", …)` (cart's `From<CartError>`) | 1st | problem, 422 |
//! | `PaymentError::invalid("c", …)` (422 through `From<PaymentError>`, unless the handler maps it) | 1st | problem |
//! | `refuse("c", …)` (the test provider's refusals, become `ProviderError::Invalid`) | 1st | problem |
//! | `error_response("c", …)`, `finish_failed(_, _, "c", …)`, `compensate(_, _, _, "c", …)` (the checkout saga's stored problems) | as shown | problem |
//! | `"c" => (NNN, …)` arms of `fn error_response` | the arm | problem, status NNN |
//! | `x.code = "c";` (an `ApiError`'s code, `&'static str`) | after `=` | problem |
//! | `code: "c"` in a struct literal or pattern, not followed by `.into()`/`.to_string()` (`ApiError`, `PaymentError::Invalid`, `ProviderError::Invalid`: `&'static str` codes) | after `:` | problem |
//! | `FieldError::new(_, "c", …)` | 2nd | field |
//! | `errs.add(_, "c", …)` (catalogue's `Errors`) | 2nd | field |
//! | `invalid(_, "c", …)`, `bad_query(_, "c", …)` (orders' helpers) | 2nd | field |
//! | `let code = …;` | every `snake_case` literal in value position (not a match arm's pattern, not compared) | either |
//! | `fn …code(…) -> &'static str { … }` | same | either |
//!
//! A `code: "c".into()` is a `String`: the payment providers' decline reasons (they travel in a
//! problem's `detail`) and the catalogue's attribute codes, not problem codes. Literals that a
//! rule above picks up but that no client ever sees as a code are in [`NOT_SENT`], each with why.
//!
//! A new helper that takes a code must be added here: [`helpers_are_known`] fails for any `fn`
//! or closure with a parameter `code: &'static str` (or an untyped closure parameter `code`)
//! whose name is not a site above.

use super::scan::{Source, args, matching, rust_files};
use super::{CODES, Kind};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why the payments service's own refusals below never reach a client as a code: only the
/// checkout saga authorises, captures and voids, and it answers `invalid_payment` or
/// `payment_failed` with the refusal at the start of `detail`.
const SAGA_ONLY: &str =
    "a refusal of an authorisation, capture or void: the saga sends it in `detail`";

/// Literals a rule picks up in `file` (a path prefix) that no client ever receives as a code.
const NOT_SENT: &[(&str, &str, &str)] = &[
    (
        "card_declined",
        "crates/payments/",
        "a provider's decline reason (`ProviderError::Declined`): sent in `detail`",
    ),
    (
        "unknown_payment",
        "crates/payments/",
        "payments' own error for an unknown id: `From<PaymentError>` answers 404 `not_found`",
    ),
    ("not_a_test_card", "crates/payments/", SAGA_ONLY),
    ("method_not_supported", "crates/payments/", SAGA_ONLY),
    ("invalid_payment_method", "crates/payments/", SAGA_ONLY),
    ("invalid_order_ref", "crates/payments/", SAGA_ONLY),
    ("invalid_email", "crates/payments/", SAGA_ONLY),
    ("payment_id_reused", "crates/payments/", SAGA_ONLY),
    ("not_authorized", "crates/payments/", SAGA_ONLY),
    ("not_capturable", "crates/payments/", SAGA_ONLY),
    ("already_captured", "crates/payments/", SAGA_ONLY),
    ("charge_not_capturable", "crates/payments/", SAGA_ONLY),
    ("charge_not_cancelable", "crates/payments/", SAGA_ONLY),
];

fn not_sent(s: &Site) -> bool {
    NOT_SENT
        .iter()
        .any(|(c, f, _)| *c == s.code && s.file.starts_with(f))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Says {
    Problem,
    Field,
    Either,
}

#[derive(Debug, Clone)]
struct Site {
    code: String,
    file: PathBuf,
    line: usize,
    says: Says,
    status: Option<u16>,
}

impl Site {
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

#[derive(Clone, Copy)]
enum Status {
    None,
    Fixed(u16),
    /// From a `StatusCode::X` first argument.
    FirstArg,
}

struct Call {
    needle: &'static str,
    /// The needle must not follow `.` or `:` (a bare helper, not a method of another type).
    bare: bool,
    arg: usize,
    says: Says,
    status: Status,
}

const fn call(needle: &'static str, arg: usize, says: Says, status: Status) -> Call {
    Call {
        needle,
        bare: false,
        arg,
        says,
        status,
    }
}

const fn helper(needle: &'static str, arg: usize, says: Says, status: Status) -> Call {
    Call {
        needle,
        bare: true,
        arg,
        says,
        status,
    }
}

const CALLS: &[Call] = &[
    call("ApiError::new(", 1, Says::Problem, Status::FirstArg),
    call("Self::new(", 1, Says::Problem, Status::FirstArg),
    call(
        "ApiError::bad_request(",
        0,
        Says::Problem,
        Status::Fixed(400),
    ),
    call("ApiError::conflict(", 0, Says::Problem, Status::Fixed(409)),
    helper("unprocessable(", 0, Says::Problem, Status::Fixed(422)),
    call("PaymentError::invalid(", 0, Says::Problem, Status::None),
    helper("refuse(", 0, Says::Problem, Status::None),
    call("error_response(", 0, Says::Problem, Status::None),
    call("finish_failed(", 2, Says::Problem, Status::None),
    call("compensate(", 3, Says::Problem, Status::None),
    call("FieldError::new(", 1, Says::Field, Status::None),
    call("errs.add(", 1, Says::Field, Status::None),
    helper("invalid(", 1, Says::Field, Status::None),
    helper("bad_query(", 1, Says::Field, Status::None),
];

fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn status_of(arg: &str) -> Option<u16> {
    let name = arg.rsplit("StatusCode::").next()?.trim();
    Some(match name {
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "PAYMENT_REQUIRED" => 402,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "METHOD_NOT_ALLOWED" => 405,
        "CONFLICT" => 409,
        "PRECONDITION_FAILED" => 412,
        "PAYLOAD_TOO_LARGE" => 413,
        "UNSUPPORTED_MEDIA_TYPE" => 415,
        "UNPROCESSABLE_ENTITY" => 422,
        "PRECONDITION_REQUIRED" => 428,
        "TOO_MANY_REQUESTS" => 429,
        "INTERNAL_SERVER_ERROR" => 500,
        "BAD_GATEWAY" => 502,
        "SERVICE_UNAVAILABLE" => 503,
        "GATEWAY_TIMEOUT" => 504,
        other => panic!("add StatusCode::{other} to status_of"),
    })
}

fn is_code_like(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every site of one source.
fn sites_in(src: &Source) -> Vec<Site> {
    let m = &src.masked;
    let bytes = m.as_bytes();
    let mut out = Vec::new();
    let site = |code: &str, at: usize, says: Says, status: Option<u16>| Site {
        code: code.to_string(),
        file: src.path.clone(),
        line: src.line(at),
        says,
        status,
    };
    for c in CALLS {
        for (p, _) in m.match_indices(c.needle) {
            if p > 0 {
                let before = bytes[p - 1];
                if ident(before) || (c.bare && (before == b'.' || before == b':')) {
                    continue;
                }
            }
            // a definition (`fn invalid(`), not a call
            if m[..p].trim_end().ends_with("fn") {
                continue;
            }
            let open = p + c.needle.len() - 1;
            let a = args(m, open);
            let Some(&(s, e)) = a.get(c.arg) else {
                continue;
            };
            let status = match c.status {
                Status::None => None,
                Status::Fixed(n) => Some(n),
                Status::FirstArg => {
                    let Some(&(fs, fe)) = a.first() else { continue };
                    if !m[fs..fe].contains("StatusCode::") {
                        continue;
                    }
                    status_of(&m[fs..fe])
                }
            };
            if let Some(code) = src.lit_at(s).filter(|_| src.lit_end(s) == Some(e)) {
                out.push(site(code, s, c.says, status));
            }
        }
    }
    // `x.code = "c";` and `code: "c"`
    for (needle, says) in [(".code = ", Says::Problem), ("code: ", Says::Problem)] {
        for (p, _) in m.match_indices(needle) {
            if needle == "code: " && p > 0 && (ident(bytes[p - 1]) || bytes[p - 1] == b'.') {
                continue;
            }
            let s = p + needle.len();
            if let (Some(code), Some(end)) = (src.lit_at(s), src.lit_end(s)) {
                let next = m[end..].trim_start();
                if next.starts_with('.') {
                    continue; // a `String` code: `"c".into()`
                }
                out.push(site(code, s, says, None));
            }
        }
    }
    // `let code = …;` and `fn …code(…) -> &'static str { … }`
    let mut blocks = Vec::new();
    for (p, _) in m.match_indices("let code = ") {
        if p > 0 && ident(bytes[p - 1]) {
            continue;
        }
        let mut depth = 0i32;
        let mut end = m.len();
        for (i, ch) in m[p..].char_indices() {
            match ch {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ';' if depth == 0 => {
                    end = p + i;
                    break;
                }
                _ => {}
            }
        }
        blocks.push((p, end));
    }
    for (p, _) in m.match_indices("fn ") {
        let name: String = m[p + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.ends_with("code") {
            continue;
        }
        let Some(open_paren) = m[p..].find('(').map(|i| i + p) else {
            continue;
        };
        let Some(close_paren) = matching(m, open_paren) else {
            continue;
        };
        let Some(brace) = m[close_paren..].find('{').map(|i| i + close_paren) else {
            continue;
        };
        if !m[close_paren..brace].contains("&'static str") {
            continue;
        }
        blocks.push((brace, matching(m, brace).unwrap_or(m.len())));
    }
    for (from, to) in blocks {
        for (s, e, v) in src.lits.iter().filter(|l| l.0 >= from && l.1 <= to) {
            let next = m[*e..].trim_start();
            let prev = m[..*s].trim_end();
            let pattern = next.starts_with("=>") || next.starts_with('|');
            let compared = prev.ends_with("==") || prev.ends_with("!=") || next.starts_with("==");
            let index = prev.ends_with('[') && next.starts_with(']');
            if is_code_like(v) && !pattern && !compared && !index {
                out.push(site(v, *s, Says::Either, None));
            }
        }
    }
    // the stored problems' statuses: `"c" => (NNN, …)` in `fn error_response`
    if let Some(p) = m.find("fn error_response(")
        && let Some(brace) = m[p..].find('{').map(|i| i + p)
    {
        let to = matching(m, brace).unwrap_or(m.len());
        for (s, e, v) in src.lits.iter().filter(|l| l.0 > brace && l.1 <= to) {
            let Some(rest) = m[*e..].trim_start().strip_prefix("=>") else {
                continue;
            };
            let Some(tuple) = rest.trim_start().strip_prefix('(') else {
                continue;
            };
            let digits: String = tuple
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                out.push(site(v, *s, Says::Problem, Some(n)));
            }
        }
    }
    out.sort_by_key(|s| s.line);
    out
}

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kernel sits in crates/")
        .to_path_buf()
}

/// The sources read (paths relative to the workspace), without their test modules.
fn sources() -> Vec<Source> {
    let root = crates_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("crates/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir() && !p.ends_with("web"))
        .flat_map(|c| rust_files(&c.join("src")))
        .collect();
    files.sort();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = Vec::new();
    for f in files {
        let mut src = Source::read(&f);
        let dir = match f.file_stem().and_then(|s| s.to_str()) {
            Some("mod" | "lib" | "main") => f.parent().map(Path::to_path_buf),
            Some(stem) => f.parent().map(|d| d.join(stem)),
            None => None,
        };
        for m in src.drop_test_modules() {
            if let Some(d) = &dir {
                test_only.insert(d.join(format!("{m}.rs")));
                test_only.insert(d.join(&m).join("mod.rs"));
            }
        }
        out.push(src);
    }
    out.retain(|s| !test_only.contains(&s.path));
    let workspace = root.parent().unwrap_or(&root).to_path_buf();
    for s in &mut out {
        if let Ok(rel) = s.path.strip_prefix(&workspace) {
            s.path = rel.to_path_buf();
        }
    }
    out
}

fn all_sites() -> Vec<Site> {
    sources().iter().flat_map(sites_in).collect()
}

/// The problems the table has with these sites, one line each.
fn check(sites: &[Site]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in sites {
        if not_sent(s) {
            continue;
        }
        let Some(entry) = super::find(&s.code) else {
            problems.push(format!(
                "{}: `{}` is not in kernel::codes::CODES",
                s.at(),
                s.code
            ));
            continue;
        };
        let kind_ok = match s.says {
            Says::Either => true,
            Says::Problem => entry.kind != Kind::Field,
            Says::Field => entry.kind != Kind::Problem,
        };
        if !kind_ok {
            problems.push(format!(
                "{}: `{}` is used as a {:?} code; the table says {:?}",
                s.at(),
                s.code,
                s.says,
                entry.kind
            ));
        }
        if let Some(st) = s.status
            && !entry.statuses.contains(&st)
        {
            problems.push(format!(
                "{}: `{}` is answered with {st}; the table lists {:?}",
                s.at(),
                s.code,
                entry.statuses
            ));
        }
    }
    let seen: BTreeSet<&str> = sites
        .iter()
        .filter(|s| !not_sent(s))
        .map(|s| s.code.as_str())
        .collect();
    for e in CODES {
        if !seen.contains(e.code) {
            problems.push(format!(
                "`{}` is in the table but no source emits it",
                e.code
            ));
        }
    }
    for (c, f, _) in NOT_SENT {
        if !sites.iter().any(|s| s.code == *c && s.file.starts_with(f)) {
            problems.push(format!("`{c}` is in NOT_SENT but nothing in {f} emits it"));
        }
    }
    problems
}

#[test]
fn every_emitted_code_is_in_the_table_and_every_entry_is_emitted() {
    let sites = all_sites();
    assert!(
        sites.len() > 200,
        "only {} sites found: is the scanner reading the workspace?",
        sites.len()
    );
    let problems = check(&sites);
    assert!(
        problems.is_empty(),
        "the error codes and kernel::codes::CODES disagree:\n{}",
        problems.join("\n")
    );
}

/// The names of the helpers the sites above call.
fn helper_names() -> BTreeSet<&'static str> {
    CALLS
        .iter()
        .map(|c| {
            let name = c.needle.trim_end_matches('(');
            name.rsplit([':', '.']).next().unwrap_or(name)
        })
        .collect()
}

/// `fn`s and closures with a parameter `code: &'static str` (closures: or an untyped `code`),
/// as (name, offset).
fn code_taking_helpers(src: &Source) -> Vec<(String, usize)> {
    let m = &src.masked;
    let takes_code = |params: &str, closure: bool| {
        params.split(',').any(|p| {
            let p = p.trim();
            let (name, ty) = p.split_once(':').unwrap_or((p, ""));
            name.trim() == "code"
                && (ty.replace(' ', "") == "&'staticstr" || (closure && ty.trim().is_empty()))
        })
    };
    let mut out = Vec::new();
    for (p, _) in m.match_indices("fn ") {
        if p > 0 && ident(m.as_bytes()[p - 1]) {
            continue;
        }
        let name: String = m[p + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = m[p..].find('(').map(|i| i + p) else {
            continue;
        };
        let close = matching(m, open).unwrap_or(open + 1);
        if takes_code(&m[open + 1..close - 1], false) {
            out.push((name, p));
        }
    }
    for (p, _) in m.match_indices("let ") {
        let rest = &m[p + 4..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(after) = rest[name.len()..].trim_start().strip_prefix('=') else {
            continue;
        };
        let Some(params) = after.trim_start().strip_prefix('|') else {
            continue;
        };
        let params = params.split('|').next().unwrap_or("");
        if takes_code(params, true) {
            out.push((name, p));
        }
    }
    out
}

/// A new helper that takes a code would hide its callers' codes from the scan: it must be
/// listed in `CALLS`.
#[test]
fn helpers_are_known() {
    let known = helper_names();
    let mut unknown = Vec::new();
    for src in sources() {
        for (name, at) in code_taking_helpers(&src) {
            if !known.contains(name.as_str()) {
                unknown.push(format!(
                    "{}:{}: `{name}` takes a code; add its calls to CALLS in kernel/src/codes/tests.rs",
                    src.path.display(),
                    src.line(at)
                ));
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
}

#[test]
fn codes_are_unique_snake_case_and_have_a_status() {
    let mut seen = BTreeSet::new();
    for e in CODES {
        assert!(seen.insert(e.code), "`{}` is in the table twice", e.code);
        let snake = e.code.starts_with(|c: char| c.is_ascii_lowercase())
            && !e.code.ends_with('_')
            && !e.code.contains("__")
            && is_code_like(e.code);
        assert!(snake, "`{}` is not snake_case", e.code);
        assert!(!e.statuses.is_empty(), "`{}` has no status", e.code);
        assert!(
            e.statuses.iter().all(|s| (400..600).contains(s)),
            "`{}`: {:?} are not all error statuses",
            e.code,
            e.statuses
        );
        assert!(
            e.statuses.windows(2).all(|w| w[0] < w[1]),
            "`{}`: list the statuses once each, in order",
            e.code
        );
        assert!(
            !e.meaning.is_empty() && !e.meaning.contains('\n'),
            "`{}`: one line of meaning",
            e.code
        );
    }
}

fn synthetic(text: &str) -> Vec<Site> {
    sites_in(&Source::parse(PathBuf::from("crates/x/src/lib.rs"), text))
}

/// The check names the file and line of a code the table lacks, and of a wrong status or
/// kind; comments and strings that only look like calls are not sites.
#[test]
fn an_unknown_code_a_wrong_status_or_kind_is_named_with_its_line() {
    let text = r#"fn f() {
    // ApiError::conflict("in_a_comment", "")
    let s = "ApiError::conflict(\"in_a_string\", \"\")";
    ApiError::conflict("brand_new_code", format!("{s}"));
    ApiError::new(StatusCode::NOT_FOUND, "validation_failed", "");
    FieldError::new("f", "rate_limited", '"');
}
"#;
    let problems: Vec<String> = check(&synthetic(text))
        .into_iter()
        .filter(|p| p.starts_with("crates/x/"))
        .collect();
    assert_eq!(
        problems,
        [
            "crates/x/src/lib.rs:4: `brand_new_code` is not in kernel::codes::CODES",
            "crates/x/src/lib.rs:5: `validation_failed` is answered with 404; the table lists [422]",
            "crates/x/src/lib.rs:6: `rate_limited` is used as a Field code; the table says Problem",
        ]
    );
}

/// An entry nobody emits is reported.
#[test]
fn a_dead_entry_is_reported() {
    let problems = check(&synthetic(
        "fn f() { ApiError::conflict(\"concurrent_update\", \"\"); }",
    ));
    assert!(problems.contains(&"`hold_lost` is in the table but no source emits it".to_string()));
    assert!(!problems.iter().any(|p| p.contains("`concurrent_update`")));
}

/// The blocks that compute a code: values count, match patterns and comparisons do not.
#[test]
fn code_blocks_take_values_not_patterns() {
    let text = r#"fn stripe_code(code: &str) -> &'static str {
    match code {
        "resource_missing" => "unknown_charge",
        "a" | "b" => "refused",
        _ => "provider_refused",
    }
}
fn g(msg: &str, err: &Value) {
    let code = if msg.starts_with("unknown field") { "unknown_field" } else if x == "y" { "required" } else { "invalid_type" };
    let code = err["decline_code"].as_str().unwrap_or("card_declined");
}
"#;
    let got: Vec<String> = synthetic(text).into_iter().map(|s| s.code).collect();
    assert_eq!(
        got,
        [
            "unknown_charge",
            "refused",
            "provider_refused",
            "unknown_field",
            "required",
            "invalid_type",
            "card_declined",
        ]
    );
}
