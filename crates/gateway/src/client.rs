//! The gateway's HTTP/1.1 client to its instances: kept-alive connections per instance, each
//! driven by the task of the request that uses it.
//!
//! A general client (hyper-util's) runs every connection in a task of its own: a request is
//! handed to that task through a channel and its answer comes back through another, two
//! cross-task wake-ups per request on top of the socket's own. A proxy has no use for that: the
//! request's task can write the request, read the answer and relay its body itself, the way an
//! event-loop proxy does. So here a connection is taken from the instance's idle list, driven
//! by whoever holds it ([`Driven`], the answer's body, polls the connection while it is read),
//! and put back once the answer's body has been read to its end. A connection whose answer was
//! not read to the end (the client went away) is closed, never reused.

use axum::body::Bytes;
use axum::http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type Conn = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A connection to an instance: the sending half and the connection itself, polled by whoever
/// holds it.
struct Pooled {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<Conn>>,
    idle_since: Instant,
}

impl Pooled {
    /// Polls the connection once: `false` when it has ended (closed by the instance, broken).
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        self.conn.as_mut().poll(cx).is_pending()
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made: the request was not sent.
    Connect(String),
    /// The request may have been sent (the connection broke, or the answer did not parse).
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "cannot connect: {e}"),
            SendError::Failed(e) => f.write_str(e),
        }
    }
}

/// Kept-alive connections, by instance (`host:port`).
pub struct UpstreamClient {
    idle: Mutex<HashMap<String, Vec<Pooled>>>,
    max_idle_per_instance: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Default for UpstreamClient {
    fn default() -> Self {
        UpstreamClient::new(256, Duration::from_secs(20), Duration::from_secs(3))
    }
}

impl UpstreamClient {
    pub fn new(
        max_idle_per_instance: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> UpstreamClient {
        UpstreamClient {
            idle: Mutex::new(HashMap::new()),
            max_idle_per_instance,
            idle_timeout,
            connect_timeout,
        }
    }

    /// Connections kept for `authority` now.
    pub fn idle_count(&self, authority: &str) -> usize {
        self.lock().get(authority).map_or(0, Vec::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Pooled>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self, authority: &str) -> Option<Pooled> {
        let mut idle = self.lock();
        let list = idle.get_mut(authority)?;
        let now = Instant::now();
        while let Some(p) = list.pop() {
            if now.saturating_duration_since(p.idle_since) < self.idle_timeout {
                return Some(p);
            }
        }
        None
    }

    fn put(&self, authority: &str, mut p: Pooled) {
        p.idle_since = Instant::now();
        let mut idle = self.lock();
        let list = match idle.get_mut(authority) {
            Some(l) => l,
            None => idle.entry(authority.to_string()).or_default(),
        };
        if list.len() < self.max_idle_per_instance {
            list.push(p);
        }
    }

    async fn connect(&self, authority: &str) -> Result<Pooled, SendError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| {
                SendError::Connect(format!("no connection within {:?}", self.connect_timeout))
            })?
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        Ok(Pooled {
            sender,
            conn: Box::pin(conn),
            idle_since: Instant::now(),
        })
    }

    /// A kept connection of `authority` that is ready for a request, or a new one.
    async fn ready(&self, authority: &str) -> Result<(Pooled, bool), SendError> {
        while let Some(mut p) = self.take(authority) {
            // the instance may have closed it while it was idle: driving it once tells
            let ready = std::future::poll_fn(|cx| {
                if !p.drive(cx) {
                    return Poll::Ready(false);
                }
                p.sender.poll_ready(cx).map(|r| r.is_ok())
            })
            .await;
            if ready {
                return Ok((p, false));
            }
        }
        Ok((self.connect(authority).await?, true))
    }

    /// Sends `req` (origin-form URI, its `Host` set) to `authority`; the answer's body drives
    /// the connection while it is read and gives it back at its end.
    pub async fn send(
        self: &Arc<Self>,
        authority: &str,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<Driven>, SendError> {
        loop {
            let (mut p, fresh) = self.ready(authority).await?;
            let mut answer = Box::pin(p.sender.try_send_request(req));
            let outcome = std::future::poll_fn(|cx| {
                let alive = p.drive(cx);
                match answer.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(Some(r)),
                    Poll::Pending if alive => Poll::Pending,
                    // the connection ended and the answer will not come
                    Poll::Pending => Poll::Ready(None),
                }
            })
            .await;
            match outcome {
                Some(Ok(res)) => {
                    let (parts, body) = res.into_parts();
                    let mut conn = Some(p);
                    if body.is_end_stream() {
                        // nothing to read: the connection is free now
                        if let Some(p) = conn.take() {
                            self.put(authority, p);
                        }
                    }
                    let driven = Driven {
                        body,
                        conn,
                        client: self.clone(),
                        authority: authority.to_string(),
                    };
                    return Ok(Response::from_parts(parts, driven));
                }
                Some(Err(mut e)) => match e.take_message() {
                    // it never left: the kept connection was closed; another one
                    Some(r) if !fresh => req = r,
                    _ => return Err(SendError::Failed(e.into_error().to_string())),
                },
                None => {
                    return Err(SendError::Failed(
                        "the connection ended before the answer".into(),
                    ));
                }
            }
        }
    }
}

/// An instance's answer body; reading it drives its connection, which goes back to the idle
/// list once the body has ended.
pub struct Driven {
    body: Incoming,
    conn: Option<Pooled>,
    client: Arc<UpstreamClient>,
    authority: String,
}

impl HttpBody for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let me = &mut *self;
        if let Some(p) = me.conn.as_mut()
            && !p.drive(cx)
        {
            // ended: what it delivered is still read below, then the body ends
            me.conn = None;
        }
        let frame = Pin::new(&mut me.body).poll_frame(cx);
        // at the end (a server stops reading once `is_end_stream` says so, without asking
        // for the `None`): the connection is free for the next request
        let ended = match &frame {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => me.body.is_end_stream(),
            _ => false,
        };
        if ended && let Some(p) = me.conn.take() {
            me.client.put(&me.authority, p);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
