//! The node's one pub/sub link to Redis: one subscription per channel with local subscribers
//! (counted: the hub watches once per local subscriber), (un)subscribes batched into one
//! pipeline, reconnection with backoff and re-subscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cerebrum_server_core::Text;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, oneshot};

use super::{Inner, channel_key};
use crate::broker::{BrokerError, BrokerEvent, Delivery};

/// Subscriptions per pipeline when (re)subscribing many channels at once.
const BATCH: usize = 512;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A request to the pub/sub task.
#[derive(Debug)]
pub(crate) enum Ctl {
    /// Start receiving a channel; the sender hears when the subscription is confirmed.
    Watch(String, oneshot::Sender<Result<(), BrokerError>>),
    /// Stop receiving a channel.
    Unwatch(String),
}

/// Runs the pub/sub link until the broker is dropped.
pub(crate) async fn run(
    inner: Arc<Inner>,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
    deliveries: mpsc::UnboundedSender<BrokerEvent>,
) {
    // Local subscribers per watched channel.
    let mut watched: HashMap<String, usize> = HashMap::new();
    let mut backoff = MIN_BACKOFF;
    let mut was_up = false;
    let mut ever_up = false;
    loop {
        let (push_tx, mut push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = AsyncConnectionConfig::new()
            .set_push_sender(push_tx)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let connected = inner
            .pubsub_client
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(err) => {
                inner.pubsub_up.store(false, Ordering::Relaxed);
                if was_up || backoff == MIN_BACKOFF {
                    tracing::warn!(%err, retry_in = ?backoff, "Redis pub/sub link down; retrying");
                }
                was_up = false;
                if !wait_or_refuse(&mut ctl, &mut watched, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let all: Vec<String> = watched.keys().cloned().collect();
        if let Err(err) = subscribe(&mut conn, inner.sharded, &all, true).await {
            tracing::warn!(%err, "could not re-subscribe to Redis channels; reconnecting");
            if !wait_or_refuse(&mut ctl, &mut watched, backoff).await {
                return;
            }
            continue;
        }
        inner.pubsub_up.store(true, Ordering::Relaxed);
        if !was_up {
            tracing::info!(channels = all.len(), "Redis pub/sub link up");
        }
        if ever_up {
            let _ = deliveries.send(BrokerEvent::Resubscribed);
        }
        was_up = true;
        ever_up = true;
        backoff = MIN_BACKOFF;
        // Serve requests and messages until the link breaks.
        loop {
            tokio::select! {
                request = ctl.recv() => {
                    let Some(first) = request else { return };
                    let mut batch = vec![first];
                    while let Ok(more) = ctl.try_recv() {
                        batch.push(more);
                    }
                    if !apply(&mut conn, inner.sharded, &mut watched, batch).await {
                        break;
                    }
                }
                push = push_rx.recv() => {
                    let Some(push) = push else { break };
                    match push.kind {
                        PushKind::Disconnection => break,
                        PushKind::Message | PushKind::SMessage => {
                            if let Some(delivery) = parse(&push.data) {
                                let _ = deliveries.send(BrokerEvent::Publication(delivery));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        inner.pubsub_up.store(false, Ordering::Relaxed);
        tracing::warn!("Redis pub/sub link lost; reconnecting");
    }
}

/// While the link is down: waits `delay`, refusing watch requests with `Unavailable` (the hub
/// then does not count them) and counting unwatches. `false` when the broker is gone.
async fn wait_or_refuse(
    ctl: &mut mpsc::UnboundedReceiver<Ctl>,
    watched: &mut HashMap<String, usize>,
    delay: Duration,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            request = ctl.recv() => match request {
                None => return false,
                Some(Ctl::Watch(_, done)) => {
                    let _ = done.send(Err(BrokerError::Unavailable));
                }
                Some(Ctl::Unwatch(channel)) => {
                    release(watched, &channel);
                }
            },
        }
    }
}

/// One local subscriber fewer; `true` when it was the channel's last.
fn release(watched: &mut HashMap<String, usize>, channel: &str) -> bool {
    match watched.get_mut(channel) {
        Some(count) if *count > 1 => {
            *count -= 1;
            false
        }
        Some(_) => {
            watched.remove(channel);
            true
        }
        None => false,
    }
}

/// Applies a batch of requests with one pipeline per direction; `false` when the link broke.
async fn apply(
    conn: &mut MultiplexedConnection,
    sharded: bool,
    watched: &mut HashMap<String, usize>,
    batch: Vec<Ctl>,
) -> bool {
    // Whether each touched channel was subscribed before the batch.
    let mut touched: HashMap<String, bool> = HashMap::new();
    let mut waiting = Vec::new();
    for request in batch {
        match request {
            Ctl::Watch(channel, done) => {
                touched
                    .entry(channel.clone())
                    .or_insert_with(|| watched.contains_key(&channel));
                *watched.entry(channel.clone()).or_insert(0) += 1;
                waiting.push((channel, done));
            }
            Ctl::Unwatch(channel) => {
                touched
                    .entry(channel.clone())
                    .or_insert_with(|| watched.contains_key(&channel));
                release(watched, &channel);
            }
        }
    }
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (channel, was) in touched {
        match (was, watched.contains_key(&channel)) {
            (false, true) => added.push(channel),
            (true, false) => removed.push(channel),
            _ => {}
        }
    }
    let result = match subscribe(conn, sharded, &removed, false).await {
        Ok(()) => subscribe(conn, sharded, &added, true).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => {
            for (_, done) in waiting {
                let _ = done.send(Ok(()));
            }
            true
        }
        Err(err) => {
            tracing::warn!(%err, "Redis (un)subscribe failed; reconnecting");
            // The refused watches are not counted; the link is rebuilt from what remains.
            for (channel, done) in waiting {
                release(watched, &channel);
                let _ = done.send(Err(BrokerError::Unavailable));
            }
            false
        }
    }
}

/// (Un)subscribes `channels`: a pipeline of one-channel commands, so that each gets exactly
/// one confirmation.
async fn subscribe(
    conn: &mut MultiplexedConnection,
    sharded: bool,
    channels: &[String],
    on: bool,
) -> redis::RedisResult<()> {
    let command = match (sharded, on) {
        (true, true) => "SSUBSCRIBE",
        (true, false) => "SUNSUBSCRIBE",
        (false, true) => "SUBSCRIBE",
        (false, false) => "UNSUBSCRIBE",
    };
    for chunk in channels.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for channel in chunk {
            pipe.cmd(command).arg(channel_key(channel));
        }
        let _: Vec<Value> = pipe.query_async(conn).await?;
    }
    Ok(())
}

/// A `message`/`smessage` push: `[channel, "EPOCH OFFSET FRAME"]`.
fn parse(data: &[Value]) -> Option<Delivery> {
    let [Value::BulkString(channel), Value::BulkString(message)] = data else {
        return None;
    };
    let channel = std::str::from_utf8(channel).ok()?;
    let channel = channel.strip_prefix("cerebrum:{")?.strip_suffix('}')?;
    let message = std::str::from_utf8(message).ok()?;
    let (epoch, rest) = message.split_once(' ')?;
    let (offset, frame) = rest.split_once(' ')?;
    Some(Delivery {
        channel: channel.to_owned(),
        epoch: Arc::from(epoch),
        offset: offset.parse().ok()?,
        text: Text::from(frame.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_push_becomes_a_delivery() {
        let data = vec![
            Value::BulkString(b"cerebrum:{chat:1}".to_vec()),
            Value::BulkString(br#"e1 7 {"type":"x","payload":1}"#.to_vec()),
        ];
        let delivery = parse(&data).unwrap();
        assert_eq!(delivery.channel, "chat:1");
        assert_eq!(&*delivery.epoch, "e1");
        assert_eq!(delivery.offset, 7);
        assert_eq!(delivery.text.as_str(), r#"{"type":"x","payload":1}"#);
        assert!(parse(&data[..1]).is_none());
        let foreign = vec![
            Value::BulkString(b"other".to_vec()),
            Value::BulkString(b"e 1 {}".to_vec()),
        ];
        assert!(parse(&foreign).is_none());
    }
}
