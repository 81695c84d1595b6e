//! A list request (filters, search, sort, cursor) checked and resolved into a `ListSpec`.

use super::Error;
use crate::domain::Status;
use crate::http::wire::{ListQuery, StatusFilter};
use crate::store;

/// Checks and resolves a list request.
pub async fn list_spec(
    db: &platform::db::Db,
    q: &ListQuery,
    back_office: bool,
) -> Result<store::ListSpec, Error> {
    let bad = |field: &'static str, message: &'static str| Error::BadQuery { field, message };
    let limit = q.limit.unwrap_or(24);
    if !(1..=100).contains(&limit) {
        return Err(bad("limit", "between 1 and 100"));
    }
    for (f, v) in [("min_price", q.min_price), ("max_price", q.max_price)] {
        if let Some(v) = v
            && !(0..=kernel::MAX_AMOUNT_MINOR).contains(&v)
        {
            return Err(bad(f, "a price in minor units, not negative"));
        }
    }
    if let (Some(a), Some(b)) = (q.min_price, q.max_price)
        && a > b
    {
        return Err(bad("min_price", "must not be above max_price"));
    }
    // the kernel's one search rule, the shop's too: punctuation only separates words, and a
    // query of nothing but punctuation matches nothing
    let mut words = Vec::new();
    let mut match_nothing = false;
    if let Some(text) = &q.q {
        if text.chars().count() > 200 {
            return Err(bad("q", "at most 200 characters"));
        }
        let search = kernel::SearchQuery::parse(text);
        if search.words().len() > 10 {
            return Err(bad("q", "at most 10 words"));
        }
        match_nothing = search.matches_nothing();
        words = search.words().to_vec();
    }
    let status_filter = match (q.status, q.published) {
        (Some(s), _) => Some(s),
        (None, Some(true)) => Some(StatusFilter::Published),
        (None, Some(false)) => Some(StatusFilter::Draft),
        (None, None) => None,
    };
    let status = if back_office {
        match status_filter.unwrap_or(StatusFilter::Any) {
            StatusFilter::Any => None,
            StatusFilter::Draft => Some(Status::Draft),
            StatusFilter::Published => Some(Status::Published),
            StatusFilter::Archived => Some(Status::Archived),
        }
    } else {
        match status_filter {
            None | Some(StatusFilter::Published) => Some(Status::Published),
            Some(_) => {
                return Err(Error::Unpublished);
            }
        }
    };
    let category = match &q.category {
        Some(k) => Some(
            store::resolve_category(db, k)
                .await?
                .ok_or_else(|| bad("category", "no such category"))?,
        ),
        None => None,
    };
    let brand = match &q.brand {
        Some(k) => Some(
            store::resolve_brand(db, k)
                .await?
                .ok_or_else(|| bad("brand", "no such brand"))?,
        ),
        None => None,
    };
    let sort = q.sort.unwrap_or_default();
    let after = match &q.cursor {
        Some(c) => {
            let cur = store::Cursor::decode(c)
                .filter(|cur| cur.s == store::sort_name(sort))
                .ok_or(Error::BadCursor)?;
            Some(cur)
        }
        None => None,
    };
    Ok(store::ListSpec {
        category,
        brand,
        min_price: q.min_price,
        max_price: q.max_price,
        words,
        match_nothing,
        status,
        sort,
        lang: q.lang.unwrap_or_default(),
        limit,
        after,
    })
}
