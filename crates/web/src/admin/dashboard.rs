//! The dashboard: today's orders and revenue, low-stock alerts, and revenue per day over the
//! last 14 days as a hand-drawn SVG bar chart. Everything comes from the API as the visitor,
//! so a store's staff see their store only.

use super::orders::{OrderRow, StatusLabel};
use super::text::{self, A};
use super::{chrome, gate, get_or_default};
use crate::WebState;
use crate::i18n::Lang;
use crate::pages::{Chrome, render};
use crate::session::Visitor;
use crate::shop::L;
use askama::Template;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use platform::authz::perm;
use serde::Deserialize;

const DAY_MS: i64 = 86_400_000;
const DAYS: usize = 14;
/// Pages of 200 orders read at most for the chart (beyond that the chart would be partial).
const MAX_PAGES: usize = 25;

// the chart's geometry (SVG user units)
const CHART_W: i64 = 560;
const LEFT: i64 = 64;
const TOP: i64 = 16;
const PLOT_H: i64 = 164;
const SLOT: i64 = 35;
const BAR_W: i64 = 25;

#[derive(Deserialize, Default, Clone)]
pub(crate) struct Level {
    pub location: String,
    pub sku: String,
    pub on_hand: i64,
    pub held: i64,
    pub available: i64,
    pub low_threshold: i64,
    pub low: bool,
}

/// Low-stock alerts shown on the dashboard (the rest are on the stock pages).
const LOW_SHOWN: usize = 20;
const LOW_READ: usize = 1000;

pub(crate) struct LowRow {
    pub url: String,
    pub location: String,
    pub sku: String,
    pub available: i64,
    pub threshold: i64,
}

pub(crate) struct Bar {
    pub x: i64,
    pub y: i64,
    pub h: i64,
    pub cx: i64,
    pub label: String,
    pub value: String,
}

pub(crate) struct Grid {
    pub y: i64,
    pub ty: i64,
    pub label: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Page {
    c: Chrome,
    a: &'static A,
    scope: String,
    today_orders: usize,
    today_revenue: String,
    low: Vec<LowRow>,
    low_count: String,
    low_more: Option<String>,
    can_stock: bool,
    can_orders: bool,
    bars: Vec<Bar>,
    grid: Vec<Grid>,
    chart_w: i64,
    bar_w: i64,
    base_y: i64,
    chart_desc: String,
    latest: Vec<(String, String, String, StatusLabel, String)>,
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1000: ten euros), for the axis.
pub(crate) fn nice_ceil(v: i64) -> i64 {
    let mut step = 1000i64;
    loop {
        for m in [1, 2, 5] {
            let n = step.saturating_mul(m);
            if n >= v {
                return n;
            }
        }
        if step > i64::MAX / 10 {
            return i64::MAX;
        }
        step *= 10;
    }
}

/// The height of a bar of `v` on an axis of `max` drawn `h` high: proportional, rounded, and
/// at least 1 for any positive value so that a small day is still visible.
pub(crate) fn bar_height(v: i64, max: i64, h: i64) -> i64 {
    if v <= 0 || max <= 0 {
        return 0;
    }
    let scaled = (i128::from(v) * i128::from(h) + i128::from(max) / 2) / i128::from(max);
    (scaled as i64).clamp(1, h)
}

/// The bars and grid lines of a chart of `values` (cents per day, oldest first).
pub(crate) fn chart(l: Lang, values: &[i64], labels: &[String]) -> (Vec<Bar>, Vec<Grid>) {
    let max = nice_ceil(values.iter().copied().max().unwrap_or(0));
    let base = TOP + PLOT_H;
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let h = bar_height(v, max, PLOT_H);
            let x = LEFT + (i as i64) * SLOT + (SLOT - BAR_W) / 2;
            Bar {
                x,
                y: base - h,
                h,
                cx: x + BAR_W / 2,
                label: labels.get(i).cloned().unwrap_or_default(),
                value: l.money(v, "EUR"),
            }
        })
        .collect();
    let grid = [0, max / 2, max]
        .iter()
        .map(|&g| {
            let y = base - bar_height(g, max, PLOT_H);
            Grid {
                y,
                ty: y + 4,
                label: whole_euros(l, g),
            }
        })
        .collect();
    (bars, grid)
}

/// An axis label: euros without cents.
fn whole_euros(l: Lang, minor: i64) -> String {
    let s = l.money(minor - minor % 100, "EUR");
    match l {
        Lang::Fr => s.replace(",00", ""),
        Lang::En => s.replace(".00", ""),
    }
}

/// Orders created since `from` (ms) that the visitor may see, newest first.
async fn orders_since(st: &WebState, v: &Visitor, from: i64) -> Vec<OrderRow> {
    let mut out: Vec<OrderRow> = Vec::new();
    let mut before: Option<i64> = None;
    for _ in 0..MAX_PAGES {
        let path = match before {
            Some(b) => format!("/api/orders?limit=200&before={b}"),
            None => "/api/orders?limit=200".to_string(),
        };
        let page: Vec<OrderRow> = match st.api.call(v, Method::GET, &path, None::<&()>, None).await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(code = %e.code, "dashboard: orders unavailable");
                break;
            }
        };
        let n = page.len();
        let oldest = page.last().map(|o| o.created_at);
        out.extend(page.into_iter().filter(|o| o.created_at >= from));
        match oldest {
            Some(t) if n == 200 && t >= from => before = Some(t),
            _ => break,
        }
    }
    out
}

fn counts_as_sale(status: &str) -> bool {
    matches!(
        status,
        "paid" | "fulfilled" | "completed" | "partially_refunded" | "refunded"
    )
}

pub(crate) async fn page(State(st): State<WebState>, L(l): L, v: Visitor, uri: Uri) -> Response {
    let p = match gate(&st, l, &v, &uri) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let a = text::a(l);
    let can_orders = p.has(perm::ORDERS_READ);
    let can_stock = p.has(perm::INVENTORY_READ);
    let now = chrono::Utc::now().timestamp_millis();
    let today = now - now.rem_euclid(DAY_MS);
    let from = today - (DAYS as i64 - 1) * DAY_MS;
    let orders = if can_orders {
        orders_since(&st, &v, from).await
    } else {
        vec![]
    };
    let mut per_day = [0i64; DAYS];
    let mut today_orders = 0usize;
    for o in &orders {
        let idx = ((o.created_at - from) / DAY_MS) as usize;
        if idx >= DAYS || !counts_as_sale(&o.status) {
            continue;
        }
        per_day[idx] += (o.total - o.refunded).max(0);
        if idx == DAYS - 1 {
            today_orders += 1;
        }
    }
    let labels: Vec<String> = (0..DAYS)
        .map(|i| {
            chrono::DateTime::from_timestamp_millis(from + i as i64 * DAY_MS)
                .map(|d| match l {
                    Lang::Fr => d.format("%d/%m").to_string(),
                    Lang::En => d.format("%m-%d").to_string(),
                })
                .unwrap_or_default()
        })
        .collect();
    let (bars, grid) = chart(l, &per_day, &labels);
    let total: i64 = per_day.iter().sum();
    let chart_desc = format!("{} {}", a.chart_total, l.money(total, "EUR"));
    let levels: Vec<Level> = if can_stock {
        get_or_default(
            &st,
            &v,
            &format!("/api/inventory/stock?low=true&limit={LOW_READ}"),
        )
        .await
    } else {
        vec![]
    };
    let low_count = if levels.len() >= LOW_READ {
        format!("{LOW_READ}+")
    } else {
        levels.len().to_string()
    };
    let locs = super::locations(&st, &v).await;
    let low = levels
        .iter()
        .take(LOW_SHOWN)
        .map(|x| LowRow {
            url: format!(
                "/{}/admin/stock/{}?sku={}",
                l.code(),
                crate::api::enc(&x.location),
                crate::api::enc(&x.sku)
            ),
            location: locs
                .iter()
                .find(|k| k.code == x.location)
                .map(|k| k.name.clone())
                .unwrap_or_else(|| x.location.clone()),
            sku: x.sku.clone(),
            available: x.available,
            threshold: x.low_threshold,
        })
        .collect();
    let low_more = (levels.len() > LOW_SHOWN).then(|| match &p.store {
        Some(s) if !p.is_head_office() => {
            format!("/{}/admin/stock/{}?low=1", l.code(), crate::api::enc(s))
        }
        _ => format!("/{}/admin/stock", l.code()),
    });
    let latest = orders
        .iter()
        .take(5)
        .map(|o| {
            (
                format!("/{}/admin/orders/{}", l.code(), o.id),
                o.number.clone(),
                l.datetime(o.created_at),
                StatusLabel::of(a, &o.status),
                l.money(o.total, &o.currency),
            )
        })
        .collect();
    let scope = match &p.store {
        Some(s) if !p.is_head_office() => format!("{} {s}", a.scope_store),
        _ => a.scope_all.to_string(),
    };
    let c = chrome(&st, l, &v, &uri, &p, "dashboard", a.dashboard);
    render(
        &Page {
            c,
            a,
            scope,
            today_orders,
            today_revenue: l.money(per_day[DAYS - 1], "EUR"),
            low,
            low_count,
            low_more,
            can_stock,
            can_orders,
            bars,
            grid,
            chart_w: CHART_W,
            bar_w: BAR_W,
            base_y: TOP + PLOT_H,
            chart_desc,
            latest,
        },
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_rounds_up_to_a_nice_number() {
        assert_eq!(nice_ceil(0), 1_000);
        assert_eq!(nice_ceil(1_000), 1_000);
        assert_eq!(nice_ceil(1_001), 2_000);
        assert_eq!(nice_ceil(4_999), 5_000);
        assert_eq!(nice_ceil(5_001), 10_000);
        assert_eq!(nice_ceil(123_456), 200_000);
    }

    #[test]
    fn bars_scale_to_the_axis() {
        assert_eq!(bar_height(0, 1000, 160), 0);
        assert_eq!(bar_height(1000, 1000, 160), 160);
        assert_eq!(bar_height(500, 1000, 160), 80);
        assert_eq!(
            bar_height(1, 1_000_000, 160),
            1,
            "a small day stays visible"
        );
        assert_eq!(bar_height(2000, 1000, 160), 160, "never above the plot");
        assert_eq!(bar_height(-5, 1000, 160), 0);
    }

    #[test]
    fn chart_puts_the_biggest_day_at_the_top() {
        let labels: Vec<String> = (0..3).map(|i| format!("d{i}")).collect();
        let (bars, grid) = chart(Lang::Fr, &[0, 5_000, 10_000], &labels);
        assert_eq!(bars.len(), 3);
        assert_eq!(bars[0].h, 0);
        assert_eq!(bars[2].h, PLOT_H);
        assert_eq!(bars[2].y, TOP);
        assert_eq!(bars[1].h, PLOT_H / 2);
        assert!(bars[1].x > bars[0].x);
        assert_eq!(grid.len(), 3);
        assert_eq!(grid[2].label, "100\u{a0}€");
        assert!(bars.iter().all(|b| b.x + BAR_W <= CHART_W));
    }
}
