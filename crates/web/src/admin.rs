//! The back office (staff): dashboard, products, stock, orders, staff and API keys.

use crate::WebState;
use axum::Router;

pub fn routes() -> Router<WebState> {
    Router::new()
}
