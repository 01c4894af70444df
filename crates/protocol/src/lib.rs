//! The wire protocol of cerebrum-realtime: the [`Envelope`], the typed message catalog, the
//! codec ([`decode`], [`encode`]), the MessagePack form of frames ([`json_to_msgpack`],
//! [`msgpack_to_json`]) and the validation rules of PROTOCOL.md.
//!
//! No I/O and no runtime: every other crate of the workspace (the sans-IO client core, the
//! transports, the server) speaks through this one.
//!
//! ```
//! use cerebrum_protocol::{decode, ServerMessage};
//!
//! // A frame of the origin document's example server (level 0: no welcome, fresh ids).
//! let frame = r#"{"type":"study_metrics_update","payload":{"userId":"user-123","studyHours":12.5,"progress":62.5,"currentTopic":"Genetics","sessionDuration":1800,"streak":4},"timestamp":1732752000000,"messageId":"k2j4h5"}"#;
//! let envelope = decode(frame)?;
//! match ServerMessage::from_envelope(&envelope)? {
//!     ServerMessage::StudyMetrics(metrics) => assert_eq!(metrics.streak, 4),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), cerebrum_protocol::ProtocolError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod catalog;
mod channel;
mod envelope;
mod error;
mod id;
mod lean;
mod limits;
mod message;
mod msgpack;
mod sealed;

pub use catalog::Payload;
pub use catalog::level0::{
    CollaborativeSession, Notification, NotificationKind, OverallStatus, Participant, Ping, Pong,
    Priority, Services, StudyMetrics, StudySessionStart, SystemStatus,
};
pub use catalog::v1::{
    Ack, Auth, ErrorPayload, PROTOCOL_VERSION, StreamPosition, StudySessionEnd, Subscribe,
    Subscribed, Unsubscribe, Unsubscribed, Welcome, features,
};
pub use channel::{
    Namespace, SESSION_PREFIX, SYSTEM_CHANNEL, USER_PREFIX, session_channel, topic_slug,
    user_channel,
};
pub use envelope::{
    Envelope, Meta, decode, decode_bytes, decode_payload, encode, encode_into, encode_payload,
};
pub use error::{ErrorCode, ProtocolError};
pub use id::{MessageId, MessageIdGenerator};
pub use lean::{LeanPayload, decode_lean, lean_u64_member};
pub use limits::{
    MAX_CHANNEL_LEN, MAX_DEPTH, MAX_FRAME_BYTES, MAX_LISTED_PARTICIPANTS, MAX_MESSAGE_ID_LEN,
    MAX_TOPIC_LEN, MAX_TYPE_LEN, MAX_USER_NAME_LEN, check_depth, is_safe_action_url,
    validate_channel, validate_message_id, validate_topic, validate_type,
};
pub use message::{ClientMessage, ServerMessage, is_server_message, is_server_type};
pub use msgpack::{
    Encoding, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, MsgpackError, json_to_msgpack,
    msgpack_to_json, msgpack_to_json_within,
};
pub use sealed::{
    Cipher, KeyId, MAX_KEY_ID_LEN, SEALED_NONCE_LEN, SEALED_TAG_LEN, SealedPayload,
    XCHACHA20POLY1305,
};
