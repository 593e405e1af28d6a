//! Spin's Redis trigger: SUBSCRIBE to a channel and run the component's
//! `fermyon:spin/inbound-redis#handle-message` for each message.
//!
//! The subscription speaks RESP2 over its own connection and reads a message only once there is
//! room for its handler, so a burst stays in Redis's output buffer (which Redis bounds,
//! disconnecting a subscriber that falls too far behind) instead of in this process. A quiet
//! connection is pinged, so a server that vanished without closing is noticed; a lost
//! connection is made again with backoff. Redis pub/sub keeps nothing for absent subscribers:
//! messages published while the trigger reconnects are not delivered (as with Spin).

use std::{sync::Arc, time::Duration};

use anyhow::{Context as _, Result, anyhow, bail};
use redis::{ConnectionAddr, IntoConnectionInfo as _};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    sync::watch,
};

use super::{
    TriggerKind,
    delivery::{Backoff, Delivery, stopped},
};
use crate::{allow_list::redact, handler::Handler, runtime::Runtime, trigger::Trigger};

/// The largest message handed to a handler; a larger one ends the connection (and is lost).
const MAX_MESSAGE: usize = 32 << 20;
/// How long the connection may be quiet before it is pinged, and a ping unanswered.
const QUIET: Duration = Duration::from_secs(30);
/// The longest line (a simple string, an error, a length) read from the server: Redis's own
/// errors run to a kilobyte (protected mode's explains itself at length).
const MAX_LINE: u64 = 64 << 10;
/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `trigger` until `stop`.
pub(super) async fn listen(
    runtime: Arc<Runtime>,
    trigger: Trigger,
    mut stop: watch::Receiver<bool>,
) {
    let TriggerKind::Redis { address, channel } = trigger.kind.clone() else {
        return;
    };
    let id = trigger.id.clone();
    let shown = redact(&address);
    let delivery = Delivery::new(runtime.clone(), trigger);
    let mut backoff = Backoff::new();
    loop {
        let connected = tokio::select! {
            connected = tokio::time::timeout(CONNECT_TIMEOUT, Subscription::open(&address, &channel)) => {
                connected.unwrap_or_else(|_| Err(anyhow!("no answer within {CONNECT_TIMEOUT:?}")))
            }
            () = stopped(&mut stop) => break,
        };
        match connected {
            Ok(mut subscription) => {
                runtime.health.set_ready(&id, true);
                backoff.reset();
                tracing::info!(trigger = %id, "subscribed to `{channel}` on {shown}");
                let lost = receive(&delivery, &mut subscription, &mut stop).await;
                runtime.health.set_ready(&id, false);
                match lost {
                    None => break,
                    Some(err) => tracing::warn!(
                        trigger = %id,
                        "lost the subscription to `{channel}` on {shown}: {err:#}; subscribing \
                         again in {:?}",
                        backoff.delay()
                    ),
                }
            }
            Err(err) => tracing::warn!(
                trigger = %id,
                "cannot subscribe to `{channel}` on {shown}: {err:#}; trying again in {:?}",
                backoff.delay()
            ),
        }
        if !backoff.wait(&mut stop).await {
            break;
        }
    }
    delivery.finish().await;
}

/// Hands messages to `delivery` until the connection fails (the error) or `stop` (`None`).
async fn receive(
    delivery: &Delivery,
    subscription: &mut Subscription,
    stop: &mut watch::Receiver<bool>,
) -> Option<anyhow::Error> {
    loop {
        let room = tokio::select! {
            room = delivery.room() => room,
            () = stopped(stop) => return None,
        };
        let payload = tokio::select! {
            message = subscription.next() => match message {
                Ok(payload) => payload,
                Err(err) => return Some(err),
            },
            () = stopped(stop) => return None,
        };
        delivery.start(
            room,
            Box::new(move |store, handler| {
                Box::pin(async move {
                    let Handler::Redis(pre) = handler else {
                        wasmtime::bail!("the component is not a Redis handler");
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let answer = instance
                        .fermyon_spin_inbound_redis()
                        .call_handle_message(&mut *store, &payload)
                        .await?;
                    // Spin counts `error::success` as success, as its SDKs may return it.
                    use crate::handler::redis::fermyon::spin::redis_types::Error;
                    Ok(match answer {
                        Ok(()) | Err(Error::Success) => Ok(()),
                        Err(Error::Error) => Err("error".to_owned()),
                    })
                })
            }),
            |_| {},
        );
    }
}

/// A connection subscribed to one channel.
struct Subscription {
    connection: BufReader<TcpStream>,
    channel: Vec<u8>,
}

/// One RESP2 value, as pub/sub replies use them.
#[derive(Debug, PartialEq)]
enum Value {
    Bulk(Option<Vec<u8>>),
    Integer(i64),
    Simple(String),
    Array(Vec<Value>),
}

impl Subscription {
    /// Connects to `address` (authenticating with its credentials) and subscribes to `channel`.
    async fn open(address: &str, channel: &str) -> Result<Subscription> {
        let info = address
            .into_connection_info()
            .map_err(|_| anyhow!("not a redis:// address"))?;
        let (host, port) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            ConnectionAddr::TcpTls { .. } => {
                bail!("rediss:// (TLS) is not supported for triggers yet")
            }
            _ => bail!("only redis://host:port addresses are supported"),
        };
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("cannot connect to {host}:{port}"))?;
        let mut subscription = Subscription {
            connection: BufReader::new(stream),
            channel: channel.as_bytes().to_vec(),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = settings.username() {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            subscription.send(&auth).await?;
            match subscription.read().await? {
                Value::Simple(ok) if ok == "OK" => {}
                other => bail!("AUTH was refused: {other:?}"),
            }
        }
        subscription
            .send(&[b"SUBSCRIBE", channel.as_bytes()])
            .await?;
        match subscription.read().await? {
            Value::Array(reply)
                if reply.first() == Some(&Value::Bulk(Some(b"subscribe".to_vec()))) => {}
            other => bail!("SUBSCRIBE was refused: {other:?}"),
        }
        Ok(subscription)
    }

    /// The next message's payload; pings a quiet connection.
    async fn next(&mut self) -> Result<Vec<u8>> {
        let mut pinged = false;
        loop {
            let value = match tokio::time::timeout(QUIET, self.read()).await {
                Ok(value) => value?,
                Err(_) if pinged => bail!("the server did not answer a ping within {QUIET:?}"),
                Err(_) => {
                    self.send(&[b"PING"]).await?;
                    pinged = true;
                    continue;
                }
            };
            pinged = false;
            let Value::Array(parts) = value else {
                bail!("unexpected reply {value:?}");
            };
            match parts.as_slice() {
                [
                    Value::Bulk(Some(kind)),
                    Value::Bulk(Some(channel)),
                    Value::Bulk(Some(payload)),
                ] if kind == b"message" && *channel == self.channel => {
                    return Ok(payload.clone());
                }
                [Value::Bulk(Some(kind)), ..] if kind == b"pong" => {}
                _ => bail!("unexpected reply {parts:?}"),
            }
        }
    }

    async fn send(&mut self, parts: &[&[u8]]) -> Result<()> {
        let mut command = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            command.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            command.extend_from_slice(part);
            command.extend_from_slice(b"\r\n");
        }
        self.connection.get_mut().write_all(&command).await?;
        Ok(())
    }

    /// Reads one value; nested arrays are as deep as pub/sub replies go (one level).
    async fn read(&mut self) -> Result<Value> {
        let (kind, line) = self.line().await?;
        match kind {
            b'*' => {
                let count: usize = line.parse().context("a bad array length")?;
                if count > 8 {
                    bail!("an array of {count} values is not a pub/sub reply");
                }
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    let (kind, line) = self.line().await?;
                    values.push(self.scalar(kind, line).await?);
                }
                Ok(Value::Array(values))
            }
            kind => self.scalar(kind, line).await,
        }
    }

    async fn scalar(&mut self, kind: u8, line: String) -> Result<Value> {
        match kind {
            b'$' if line == "-1" => Ok(Value::Bulk(None)),
            b'$' => {
                let length: usize = line.parse().context("a bad bulk length")?;
                if length > MAX_MESSAGE {
                    bail!("a message of {length} bytes is larger than {MAX_MESSAGE} bytes");
                }
                let mut bulk = vec![0; length + 2];
                self.connection.read_exact(&mut bulk).await?;
                if !bulk.ends_with(b"\r\n") {
                    bail!("a bulk string not ended by CRLF");
                }
                bulk.truncate(length);
                Ok(Value::Bulk(Some(bulk)))
            }
            b':' => Ok(Value::Integer(line.parse().context("a bad integer")?)),
            b'+' => Ok(Value::Simple(line)),
            b'-' => bail!("the server answered with an error: {line}"),
            other => bail!("unexpected RESP type byte {other:#04x}"),
        }
    }

    /// One CRLF-ended line: its type byte and the rest.
    async fn line(&mut self) -> Result<(u8, String)> {
        let mut line = Vec::new();
        let read = (&mut self.connection)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        if !line.ends_with(b"\r\n") || line.len() < 3 {
            bail!("a malformed line from the server");
        }
        line.truncate(line.len() - 2);
        let kind = line[0];
        Ok((kind, String::from_utf8_lossy(&line[1..]).into_owned()))
    }
}
