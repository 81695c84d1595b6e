//! What the orders service does with other services' events. Each handler records the event id
//! in `processed_events` in the transaction of its effect: a redelivery changes nothing.

use crate::Orders;
use crate::store;
use kernel::{Currency, Money, OrderId};
use platform::bus::{self, Event, EventBus, topic};
use std::sync::Arc;

/// Consumer group that keeps orders in step with refunds made at the provider.
pub const REFUNDS_GROUP: &str = "orders";
/// Consumer group of the mail sink.
pub const NOTIFICATIONS_GROUP: &str = "notifications";

/// Topics the notifications sink writes a message for.
pub const NOTIFIED: &[&str] = &[
    topic::ORDER_PLACED,
    topic::ORDER_PAID,
    topic::ORDER_CANCELLED,
    topic::PAYMENT_REFUNDED,
    topic::STOCK_LOW,
    topic::PASSWORD_RESET_REQUESTED,
];

/// Subscribes both consumers on the bus.
pub async fn subscribe(orders: &Orders, bus: &Arc<dyn EventBus>) -> Result<(), bus::BusError> {
    let o = orders.clone();
    bus.subscribe(
        REFUNDS_GROUP,
        &[topic::PAYMENT_REFUNDED],
        bus::handler(move |e| {
            let o = o.clone();
            async move { o.on_refund(e).await.map_err(|e| e.to_string()) }
        }),
    )
    .await?;
    let o = orders.clone();
    bus.subscribe(
        NOTIFICATIONS_GROUP,
        NOTIFIED,
        bus::handler(move |e| {
            let o = o.clone();
            async move { o.notify(e).await.map_err(|e| e.to_string()) }
        }),
    )
    .await
}

fn s(v: &serde_json::Value, k: &str) -> String {
    match v.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    }
}

/// The amount `k` of an event, written by its currency's exponent (`49.90 EUR`, `1500 JPY`).
fn money(v: &serde_json::Value, k: &str, currency: &str) -> String {
    let minor = v.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    match Currency::parse(currency) {
        Ok(c) => Money::new(minor, c).to_string(),
        Err(_) => format!("{minor} {currency}"),
    }
}

impl Orders {
    /// `payment.refunded`: raise the order's refunded amount (a refund made in the provider's
    /// dashboard reaches the order this way; one made through us is already there).
    pub async fn on_refund(&self, e: Event) -> Result<(), sqlx::Error> {
        let v = e.json().unwrap_or_default();
        let now = self.clock.now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        if !bus::first_delivery(tx.conn(), REFUNDS_GROUP, e.id, now).await? {
            return tx.rollback().await;
        }
        // a checkout's payment has the order's id
        let order_id = v
            .get("payment_id")
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse::<OrderId>().ok());
        let currency = v
            .get("currency")
            .and_then(|x| x.as_str())
            .and_then(|c| Currency::parse(c).ok());
        let total = v.get("refunded_total").and_then(|x| x.as_i64());
        if let (Some(id), Some(currency), Some(total)) = (order_id, currency, total) {
            store::set_refunded(&mut tx, id, Money::new(total, currency), "payments", now).await?;
        }
        tx.commit().await
    }

    /// The notifications sink: one message per event, recorded in `notifications` (a real
    /// deployment would hand them to a mailer from there).
    pub async fn notify(&self, e: Event) -> Result<(), sqlx::Error> {
        let v = e.json().unwrap_or_default();
        let now = self.clock.now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        if !bus::first_delivery(tx.conn(), NOTIFICATIONS_GROUP, e.id, now).await? {
            return tx.rollback().await;
        }
        let cur = s(&v, "currency");
        let (kind, to, subject, body) = match e.topic.as_str() {
            topic::ORDER_PLACED => (
                "order_received",
                s(&v, "email"),
                format!("Commande {} reçue", s(&v, "number")),
                format!(
                    "Nous avons reçu votre commande de {}.",
                    money(&v, "total", &cur)
                ),
            ),
            topic::ORDER_PAID => (
                "order_confirmation",
                s(&v, "email"),
                format!("Commande {} confirmée", s(&v, "number")),
                format!("Paiement de {} reçu. Merci !", money(&v, "total", &cur)),
            ),
            topic::ORDER_CANCELLED => (
                "order_cancelled",
                s(&v, "email"),
                format!("Commande {} annulée", s(&v, "number")),
                format!("Votre commande a été annulée ({}).", s(&v, "reason")),
            ),
            topic::PAYMENT_REFUNDED => (
                "refund",
                s(&v, "order_ref"),
                format!("Remboursement {}", s(&v, "order_ref")),
                format!("{} remboursés.", money(&v, "amount", &cur)),
            ),
            topic::STOCK_LOW => (
                "stock_alert",
                format!("gerant.{}@breizhsport.example", s(&v, "location")),
                format!("Stock bas : {} à {}", s(&v, "sku"), s(&v, "location")),
                format!("Plus que {} disponible(s).", s(&v, "available")),
            ),
            topic::PASSWORD_RESET_REQUESTED => (
                "password_reset",
                s(&v, "email"),
                "Réinitialisation du mot de passe".to_string(),
                // the link holds a secret: it goes into the message, never into logs
                format!("Lien (valable 30 min) : {}", s(&v, "reset_url")),
            ),
            _ => return tx.commit().await,
        };
        store::insert_notification(&mut tx, e.id, kind, &to, &subject, &body, now).await?;
        tx.commit().await?;
        metrics::counter!("comptoir_notifications_total", "kind" => kind).increment(1);
        Ok(())
    }
}
