//! The boundary between services: for each service, a trait of what the others may ask of it,
//! the types that cross the boundary, and an HTTP client that implements the trait against the
//! service's `/internal/...` routes. This crate depends on no service.
//!
//! - [`catalog`]: prices and known SKUs ([`catalog::PriceBook`], [`catalog::SkuCatalog`])
//! - [`inventory`]: stock holds and their commit, release and restock ([`inventory::StockApi`])
//! - [`payments`]: authorise, capture, void, refund ([`payments::PaymentsApi`])
//! - [`carts`]: a cart as checkout sees it, and its end ([`carts::CartsApi`])
//! - [`orders`]: what the storefront asks beyond the public API ([`orders::OrdersApi`])
//! - [`rpc`]: the wire protocol of `/internal/...` calls: signed calls, answers, the client
//!   ([`rpc::Peer`]) with timeouts, bounded retries with jitter, request ids and metrics
//!
//! Each trait has two implementations: the service itself (in its crate, `contract.rs`), used
//! when both run in one process, and the client here. The binary's wiring is the only place
//! that picks one; a service holding an `Arc<dyn StockApi>` never knows which it got.

pub mod carts;
pub mod catalog;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod rpc;

pub use rpc::{Peer, PeerSettings, WireError};
