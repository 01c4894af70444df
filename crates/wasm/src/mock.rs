//! [`WasmMockPeer`]: `cerebrum-mock`'s sans-IO simulated server, for the browser package's mock
//! mode. The JavaScript mock transport drives it like a socket, on the same clock as the client.

use std::time::Duration;

use cerebrum_mock::{DataGenerator, MockConfig, MockMessage, MockPeer, PeerOutput};
use cerebrum_protocol::{Envelope, MessageIdGenerator, encode};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::BindingError;
use crate::time::{Clock, duration_ms};

/// Mock options from JavaScript (JSON), all optional; defaults are [`MockConfig::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MockOptions {
    seed: Option<u64>,
    user_id: Option<String>,
    data_interval: Option<f64>,
    connect_delay: Option<f64>,
    latency_ms: Option<(u64, u64)>,
    heartbeat_interval: Option<f64>,
}

impl MockOptions {
    fn into_config(self) -> Result<MockConfig, BindingError> {
        let mut config = MockConfig::default();
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        if let Some(user_id) = self.user_id {
            config.user_id = user_id;
        }
        let set = |target: &mut Duration, field: &str, value: Option<f64>| {
            if let Some(ms) = value {
                *target = duration_ms(field, ms)?;
            }
            Ok::<(), BindingError>(())
        };
        set(
            &mut config.data_interval,
            "dataInterval",
            self.data_interval,
        )?;
        set(
            &mut config.connect_delay,
            "connectDelay",
            self.connect_delay,
        )?;
        set(
            &mut config.heartbeat_interval,
            "heartbeatInterval",
            self.heartbeat_interval,
        )?;
        if config.data_interval.is_zero() {
            return Err(BindingError::Options(
                "dataInterval must be above 0".to_owned(),
            ));
        }
        if let Some(latency) = self.latency_ms {
            config.latency_ms = latency;
        }
        Ok(config)
    }
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum JsOutput {
    Opened,
    Frame { frame: String },
    Closed { code: u16, reason: String },
}

/// The simulated server of mock mode, driven from JavaScript with the driver's clock (ms).
///
/// Not `Debug`, like `WasmClient`: nothing JavaScript could use.
#[wasm_bindgen]
#[allow(missing_debug_implementations)]
pub struct WasmMockPeer {
    peer: MockPeer,
    clock: Clock,
}

impl WasmMockPeer {
    /// [`WasmMockPeer::new`] with a Rust error.
    pub fn try_new(options_json: &str, now_ms: f64, unix_ms: f64) -> Result<Self, BindingError> {
        let options: MockOptions = serde_json::from_str(options_json)
            .map_err(|err| BindingError::Options(err.to_string()))?;
        let config = options.into_config()?;
        let clock = Clock::new();
        let peer = MockPeer::new(config, clock.at(now_ms), whole_ms(unix_ms));
        Ok(Self { peer, clock })
    }
}

fn whole_ms(ms: f64) -> u64 {
    if ms.is_finite() && ms >= 0.0 {
        // Truncation is the intent: whole milliseconds.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = ms as u64;
        whole
    } else {
        0
    }
}

#[wasm_bindgen]
impl WasmMockPeer {
    /// A simulated server (options: `seed`, `userId`, `dataInterval`, `connectDelay`,
    /// `latencyMs: [low, high]`, `heartbeatInterval`) created at `now_ms` when the wall clock
    /// reads `unix_ms`. Throws on invalid options.
    #[wasm_bindgen(constructor)]
    pub fn new(options_json: &str, now_ms: f64, unix_ms: f64) -> Result<Self, JsError> {
        Ok(Self::try_new(options_json, now_ms, unix_ms)?)
    }

    /// The client opens a connection.
    pub fn connect(&mut self, now_ms: f64) {
        self.peer.connect(self.clock.at(now_ms));
    }

    /// The client closes the connection.
    pub fn close(&mut self, code: u16, now_ms: f64) {
        self.peer.close(self.clock.at(now_ms), code);
    }

    /// The client sent a text frame.
    pub fn receive(&mut self, frame: &str, now_ms: f64) {
        self.peer.receive(frame, self.clock.at(now_ms));
    }

    /// The next output due at `now_ms`, as JSON (`opened`, `frame`, `closed`); `undefined`
    /// when nothing is due.
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(&mut self, now_ms: f64) -> Option<String> {
        let output = match self.peer.poll_output(self.clock.at(now_ms))? {
            PeerOutput::Opened => JsOutput::Opened,
            PeerOutput::Frame(frame) => JsOutput::Frame { frame },
            PeerOutput::Closed { code, reason } => JsOutput::Closed { code, reason },
            // An output this version does not know: reported as a drop.
            _ => JsOutput::Closed {
                code: 1006,
                reason: String::new(),
            },
        };
        serde_json::to_string(&output).ok()
    }

    /// When the peer next has something to do (ms on the driver's clock).
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.peer.poll_timeout().map(|at| self.clock.ms(at))
    }
}

/// The first `ticks` batches of the data generator for `seed` and `user_id`, one batch every
/// `interval_ms` from `unix_ms`, as a JSON array of `{type, payload}`: the same seed gives the
/// same stream here and in the Rust crate. Throws on a bad interval.
#[wasm_bindgen(js_name = mockDataStream)]
pub fn mock_data_stream(
    seed: u64,
    user_id: &str,
    unix_ms: f64,
    ticks: u32,
    interval_ms: f64,
) -> Result<String, JsError> {
    Ok(data_stream(
        seed,
        user_id,
        whole_ms(unix_ms),
        ticks,
        interval_ms,
    )?)
}

/// [`mock_data_stream`] with a Rust error.
pub(crate) fn data_stream(
    seed: u64,
    user_id: &str,
    unix_ms: u64,
    ticks: u32,
    interval_ms: f64,
) -> Result<String, BindingError> {
    let interval =
        u64::try_from(duration_ms("intervalMs", interval_ms)?.as_millis()).unwrap_or(u64::MAX);
    let mut generator = DataGenerator::new(seed, user_id, unix_ms);
    let ids = MessageIdGenerator::with_node(0);
    let mut out = String::from("[");
    let mut first = true;
    for tick in 0..u64::from(ticks) {
        let now = unix_ms.saturating_add(interval.saturating_mul(tick + 1));
        for message in generator.tick(now) {
            let envelope = match message {
                MockMessage::StudyMetrics(p) => Envelope::from_payload(&p),
                MockMessage::CollaborativeSession(p) => Envelope::from_payload(&p),
                MockMessage::Notification(p) => Envelope::from_payload(&p),
                MockMessage::SystemStatus(p) => Envelope::from_payload(&p),
                // A kind this version does not know is left out of the stream.
                _ => continue,
            }?;
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&encode(&envelope.stamped(&ids, now)));
        }
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_opens_and_welcomes_on_the_driver_clock() {
        let mut peer = WasmMockPeer::try_new(r#"{"seed":42}"#, 0.0, 1_732_752_000_000.0).unwrap();
        peer.connect(0.0);
        assert_eq!(peer.poll_timeout(), Some(300.0));
        assert_eq!(
            peer.poll_output(300.0).as_deref(),
            Some(r#"{"kind":"opened"}"#)
        );
        assert!(peer.poll_output(300.0).unwrap().contains("welcome"));
        assert!(WasmMockPeer::try_new(r#"{"dataInterval":0}"#, 0.0, 0.0).is_err());
        assert!(WasmMockPeer::try_new(r#"{"nope":1}"#, 0.0, 0.0).is_err());
    }

    #[test]
    fn the_data_stream_is_the_generators() {
        let stream = data_stream(7, "user-1", 1_732_752_000_000, 3, 5_000.0).unwrap();
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&stream).unwrap();
        assert!(parsed.iter().any(|m| m["type"] == "study_metrics_update"));
        assert_eq!(
            stream,
            data_stream(7, "user-1", 1_732_752_000_000, 3, 5_000.0).unwrap()
        );
    }
}
