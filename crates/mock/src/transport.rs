//! The mock transport: the client's driver loop against a [`MockPeer`] instead of a socket.

use std::future::Future;
use std::time::Duration;

use cerebrum_core::TransportEvent;
use cerebrum_protocol::MAX_FRAME_BYTES;
use cerebrum_tokio::{Closing, OpenRequest, Transport, TransportError, now, unix_ms};

use crate::{MockConfig, MockPeer, PeerOutput};

/// A [`Transport`] whose "server" is a simulated [`MockPeer`], on tokio's clock: it sleeps until
/// the peer's next deadline, then takes the peer's outputs. No socket is ever opened, so mock
/// mode runs exactly the production driver loop; under `tokio::time::pause` a minute of
/// simulated traffic takes no real time.
///
/// ```
/// use cerebrum_core::{Config, Event};
/// use cerebrum_mock::{MockConfig, MockTransport};
/// use cerebrum_tokio::{Driver, FollowUp, Observer};
///
/// struct Print;
/// impl Observer for Print {
///     fn on_event(&mut self, event: Event, _: &mut FollowUp) {
///         if let Event::Message(envelope) = event {
///             assert!(!envelope.kind().is_empty());
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cerebrum_core::ConfigError> {
/// let transport = MockTransport::new(MockConfig::default());
/// let (handle, _task) = Driver::start(Config::new("ws://mock/ws"), transport, Print)?;
/// handle.connect().ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MockTransport {
    peer: MockPeer,
    active: bool,
}

impl MockTransport {
    /// A simulated server created now, on tokio's clock and the system's wall clock.
    #[must_use]
    pub fn new(config: MockConfig) -> Self {
        Self::with_unix_ms(config, unix_ms())
    }

    /// A simulated server whose wall clock reads `unix_ms` now (fixed timestamps, for tests
    /// and snapshots).
    #[must_use]
    pub fn with_unix_ms(config: MockConfig, unix_ms: u64) -> Self {
        Self {
            peer: MockPeer::new(config, now(), unix_ms),
            active: false,
        }
    }

    /// The simulated server.
    #[must_use]
    pub fn peer(&self) -> &MockPeer {
        &self.peer
    }

    async fn next_event(&mut self) -> TransportEvent {
        loop {
            let now = now();
            while let Some(output) = self.peer.poll_output(now) {
                if !self.active {
                    continue;
                }
                return match output {
                    PeerOutput::Opened => TransportEvent::Opened,
                    PeerOutput::Frame(frame) => TransportEvent::Frame(frame),
                    PeerOutput::Closed { code, reason } => {
                        self.active = false;
                        TransportEvent::Closed {
                            // 1006 is never sent in a close frame: it means "no close frame".
                            code: (code != 1006).then_some(code),
                            reason,
                        }
                    }
                };
            }
            match self.peer.poll_timeout() {
                // Never spin on a deadline the peer has already passed.
                Some(at) => {
                    let at = at.max(now + Duration::from_millis(1));
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    }
}

impl Transport for MockTransport {
    fn open(&mut self, _request: OpenRequest) {
        self.peer.connect(now());
        self.active = true;
    }

    fn send(&mut self, frame: String) -> Result<(), TransportError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(TransportError::FrameTooLarge {
                size: frame.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        if !self.active {
            return Err(TransportError::NotOpen);
        }
        self.peer.receive(&frame, now());
        Ok(())
    }

    fn close(&mut self, code: u16, _reason: String) -> Closing {
        let now = now();
        self.peer.close(now, code);
        self.active = false;
        // The peer answers the close at once; nothing more is reported from this connection.
        while self.peer.poll_output(now).is_some() {}
        Closing::done()
    }

    fn next(&mut self) -> impl Future<Output = TransportEvent> + Send + '_ {
        self.next_event()
    }
}
