//! The observer that runs inside the driver task: callbacks, subscriptions, watches, store.

use std::sync::Arc;

use cerebrum_core::{
    CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, ClientCore, Event, Outgoing, ServerLevel, Status,
};
use cerebrum_e2ee::ChannelCrypto;
use cerebrum_protocol::{
    Ack, Envelope, Notification, Payload, decode, is_server_message, is_server_type,
};
use cerebrum_tokio::{FollowUp, Observer};
use tokio::sync::watch;

use crate::ClientError;
use crate::client::ClientState;
use crate::store::{DashboardState, StoreEvent};
use crate::subscription::{Key, SharedRegistry, lock};

/// Callback types of the builder.
pub(crate) type ConnectCallback = Arc<dyn Fn() + Send + Sync>;
pub(crate) type DisconnectCallback = Arc<dyn Fn(&str) + Send + Sync>;
pub(crate) type ErrorCallback = Arc<dyn Fn(&ClientError) + Send + Sync>;
pub(crate) type MessageCallback = Arc<dyn Fn(&Envelope) + Send + Sync>;

/// The origin's callbacks.
#[derive(Clone, Default)]
pub(crate) struct Callbacks {
    pub(crate) on_connect: Option<ConnectCallback>,
    pub(crate) on_disconnect: Option<DisconnectCallback>,
    pub(crate) on_error: Option<ErrorCallback>,
    pub(crate) on_message: Option<MessageCallback>,
}

pub(crate) struct Dispatcher {
    pub(crate) status: watch::Sender<Status>,
    pub(crate) state: watch::Sender<ClientState>,
    pub(crate) store: watch::Sender<DashboardState>,
    pub(crate) registry: SharedRegistry,
    pub(crate) callbacks: Callbacks,
    pub(crate) debug: bool,
    pub(crate) auto_ack_notifications: bool,
    pub(crate) v1: bool,
    /// Opens publications of end-to-end encrypted channels before anyone sees them.
    pub(crate) crypto: Option<ChannelCrypto>,
}

impl Dispatcher {
    fn error(&self, error: ClientError) {
        if self.debug {
            tracing::warn!(target: "cerebrum_realtime", error = %error, "client error");
        }
        if let Some(on_error) = &self.callbacks.on_error {
            on_error(&error);
        }
        lock(&self.registry).dispatch_error(&error);
    }

    fn store(&self, event: StoreEvent) {
        self.store.send_modify(|state| state.apply(&event));
    }

    /// Opens a publication of an encrypted channel; `None` (after reporting the typed error)
    /// when it does not open, so that it reaches no subscriber, callback or store.
    fn open(&self, envelope: Envelope) -> Option<Envelope> {
        let Some(crypto) = &self.crypto else {
            return Some(envelope);
        };
        let channel = match envelope.channel() {
            Some(channel) if crypto.is_encrypted(channel) => channel.to_owned(),
            _ => return Some(envelope),
        };
        let message_id = envelope.message_id().cloned();
        let offset = envelope.offset();
        match crypto.open(envelope) {
            Ok(opened) => Some(opened),
            Err(reason) => {
                self.error(ClientError::Decrypt {
                    channel,
                    message_id,
                    offset,
                    reason,
                });
                None
            }
        }
    }

    fn message(&mut self, envelope: Envelope, follow_up: &mut FollowUp) {
        let Some(envelope) = self.open(envelope) else {
            return;
        };
        if let Some(on_message) = &self.callbacks.on_message {
            on_message(&envelope);
        }
        // A server type that arrives from a channel where only apps publish is app data of
        // that channel, never the server's own message (PROTOCOL.md section 7).
        let forged = is_server_type(envelope.kind()) && !is_server_message(&envelope);
        if !forged && let Some(event) = StoreEvent::from_envelope(&envelope) {
            self.store(event);
        }
        if !forged
            && self.auto_ack_notifications
            && self.v1
            && envelope.kind() == Notification::TYPE
            && let Some(id) = envelope.message_id()
        {
            // Tell the server the notification arrived, so it is not re-sent on every
            // connection (PROTOCOL.md section 4).
            let ack = Ack {
                message_id: id.clone(),
            };
            if let Ok(message) = Outgoing::payload(&ack) {
                follow_up.send(message.volatile());
            }
        }
        let mut registry = lock(&self.registry);
        if let Some(channel) = envelope.channel() {
            registry.dispatch(&Key::Channel(channel.to_owned()), &envelope);
        }
        if !forged {
            registry.dispatch(&Key::Type(envelope.kind().to_owned()), &envelope);
        }
        registry.dispatch(&Key::Messages, &envelope);
    }
}

impl Observer for Dispatcher {
    fn on_event(&mut self, event: Event, follow_up: &mut FollowUp) {
        match event {
            Event::StatusChanged { from, to, reason } => {
                if self.debug {
                    tracing::info!(target: "cerebrum_realtime", %from, %to, %reason, "status");
                }
                self.store(StoreEvent::Status(to));
                if to != Status::Reconnecting {
                    self.state
                        .send_if_modified(|state| state.next_attempt.take().is_some());
                }
            }
            Event::ReconnectScheduled { delay, .. } => {
                let at = tokio::time::Instant::now().into_std() + delay;
                self.state
                    .send_modify(|state| state.next_attempt = Some(at));
            }
            Event::Connected => {
                if let Some(on_connect) = &self.callbacks.on_connect {
                    on_connect();
                }
            }
            Event::ServerLevel(level) => {
                self.v1 = matches!(level, ServerLevel::V1 { .. });
            }
            Event::Disconnected { code, reason, .. } => {
                if let Some(on_disconnect) = &self.callbacks.on_disconnect {
                    on_disconnect(&reason);
                }
                if let Some(code @ (CLOSE_UNAUTHORIZED | CLOSE_FORBIDDEN)) = code {
                    self.error(ClientError::Refused { code, reason });
                }
            }
            Event::Message(envelope) => self.message(envelope, follow_up),
            Event::Latency(sample) => self.store(StoreEvent::Latency(sample)),
            Event::Error { reason } => self.error(ClientError::Transport(reason)),
            Event::ProtocolViolation(err) => self.error(ClientError::Protocol(err)),
            Event::ServerError(payload) => self.error(ClientError::Server(payload)),
            Event::GaveUp { attempts } => self.error(ClientError::GaveUp { attempts }),
            Event::SubscribeFailed { channel, error } => {
                self.error(ClientError::Subscribe { channel, error });
            }
            Event::SendFailed { message_id, error } => {
                self.error(ClientError::SendFailed { message_id, error });
            }
            Event::QueueOverflow { dropped } => self.error(ClientError::QueueOverflow { dropped }),
            _ => {}
        }
    }

    fn on_frame(&mut self, frame: &str) {
        let mut registry = lock(&self.registry);
        if registry.wants(&Key::Frames)
            && let Ok(envelope) = decode(frame)
        {
            registry.dispatch(&Key::Frames, &envelope);
        }
    }

    fn on_state(&mut self, core: &ClientCore) {
        let status = core.status();
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
        let mut queued_changed = false;
        self.state.send_if_modified(|state| {
            let mut changed = false;
            if state.status != status {
                state.status = status;
                changed = true;
            }
            let latency = core.latency();
            if state.latency != latency {
                state.latency = latency;
                changed = true;
            }
            let same_queue = state.queued.len() == core.queued().len()
                && state
                    .queued
                    .iter()
                    .zip(core.queued())
                    .all(|(a, b)| a.message_id() == b.message_id());
            if !same_queue {
                state.queued = core.queued().cloned().collect();
                queued_changed = true;
                changed = true;
            }
            let in_flight = core.in_flight().count();
            if state.in_flight != in_flight {
                state.in_flight = in_flight;
                changed = true;
            }
            let level = core.server_level();
            if state.server_level != level {
                state.server_level = level;
                changed = true;
            }
            if state.attempts != core.attempts() {
                state.attempts = core.attempts();
                changed = true;
            }
            changed
        });
        if queued_changed {
            let count = core.queued().len();
            self.store(StoreEvent::Queued(count));
        }
    }
}
