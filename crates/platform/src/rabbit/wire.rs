//! How an [`Event`] travels as an AMQP message: its id as `message_id`, its source, topic and
//! creation time as headers, its payload as the body; and back.

use super::{HEADER_CREATED_AT, HEADER_SOURCE, HEADER_TOPIC};
use crate::bus::Event;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use uuid::Uuid;

fn header_str<'a>(h: &'a FieldTable, key: &str) -> Option<&'a [u8]> {
    match h.inner().get(key)? {
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        _ => None,
    }
}

/// Rebuilds the published [`Event`] from a delivery.
pub(super) fn decode(d: &lapin::message::Delivery) -> Result<Event, String> {
    let props = &d.properties;
    let id = props
        .message_id()
        .as_ref()
        .and_then(|m| Uuid::parse_str(m.as_str()).ok())
        .ok_or("no event id (message_id)")?;
    let headers = props.headers().as_ref().ok_or("no headers")?;
    let source = header_str(headers, HEADER_SOURCE)
        .and_then(|s| std::str::from_utf8(s).ok())
        .ok_or("no source header")?
        .to_string();
    let created_at = match headers.inner().get(HEADER_CREATED_AT) {
        Some(AMQPValue::LongLongInt(v)) => *v,
        _ => return Err("no created_at header".into()),
    };
    let topic = match header_str(headers, HEADER_TOPIC) {
        Some(t) => std::str::from_utf8(t)
            .map_err(|_| "topic is not UTF-8")?
            .to_string(),
        None => d.routing_key.as_str().to_string(),
    };
    let payload = String::from_utf8(d.data.clone()).map_err(|_| "payload is not UTF-8")?;
    Ok(Event {
        id,
        topic,
        source,
        payload,
        created_at,
    })
}

pub(super) fn properties(e: &Event) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        HEADER_SOURCE.into(),
        AMQPValue::LongString(LongString::from(e.source.as_str())),
    );
    headers.insert(
        HEADER_CREATED_AT.into(),
        AMQPValue::LongLongInt(e.created_at),
    );
    headers.insert(
        HEADER_TOPIC.into(),
        AMQPValue::LongString(LongString::from(e.topic.as_str())),
    );
    let mut p = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(e.id.to_string().into())
        .with_content_type("application/json".into())
        .with_timestamp(u64::try_from(e.created_at / 1000).unwrap_or(0))
        .with_headers(headers);
    if let Ok(app) = ShortString::try_new(e.source.as_str()) {
        p = p.with_app_id(app);
    }
    p
}
