//! The admin API's body checks on arbitrary bodies.

use cerebrum_protocol::{Envelope, MessageId, Notification, Payload, decode, encode, user_channel};
use cerebrum_server::{BodyRefusal, notification_body, publish_body};

/// Runs `data` as the body of `POST /api/notifications` and of `POST /api/publish`.
///
/// The first byte picks how the notification gets its default `id`; the rest is the body. Never
/// panics; a refusal is 400 or 413 with a message; what is accepted makes the frame the server
/// would send, and that frame decodes to the same envelope (so it is also within 64 KiB).
pub fn run(data: &[u8]) {
    let _ = accepted(data);
}

/// [`run`], telling which checks accepted the body: `[notification, publish]` (the stable tests
/// check that the corpus reaches both accepting paths).
pub fn accepted(data: &[u8]) -> [bool; 2] {
    let (choice, body) = data.split_first().map_or((0, data), |(c, rest)| (*c, rest));
    [notification(body, choice), publish(body)]
}

fn notification(body: &[u8], choice: u8) -> bool {
    let fresh = match choice % 3 {
        0 => "n-1".to_owned(),
        1 => String::new(),
        _ => "x".repeat(usize::from(choice)),
    };
    match notification_body(body, || fresh) {
        Ok((notification, user)) => {
            notification
                .validate()
                .expect("an accepted notification validates");
            if let Some(user) = &user {
                assert!(!user.is_empty());
                user_channel(user).expect("an accepted user has a channel");
            }
            // The frame `conn::notification_frame` sends.
            let id = MessageId::new(notification.id.clone()).expect("an accepted id is an id");
            let envelope = Envelope::from_payload(&notification)
                .expect("an accepted notification makes an envelope")
                .with_timestamp(u64::MAX)
                .with_message_id(id);
            let text = encode(&envelope);
            let back = decode(&text).unwrap_or_else(|err| {
                panic!("an accepted notification makes a frame decode refuses: {err}")
            });
            assert_eq!(back, envelope);
            let typed: Notification = back.typed().expect("the frame's notification validates");
            assert_eq!(typed, notification);
            true
        }
        Err(refusal) => refused(&refusal),
    }
}

fn publish(body: &[u8]) -> bool {
    match publish_body(body) {
        Ok((channel, envelope)) => {
            // What the hub delivers: stamped, with the channel and the largest offset.
            let delivered = envelope
                .stamped(&cerebrum_protocol::MessageIdGenerator::new(), u64::MAX)
                .with_channel(channel)
                .expect("an accepted channel is a channel")
                .with_offset(u64::MAX);
            let text = encode(&delivered);
            let back = decode(&text).unwrap_or_else(|err| {
                panic!("an accepted publication makes a frame decode refuses: {err}")
            });
            assert_eq!(back, delivered);
            true
        }
        Err(refusal) => refused(&refusal),
    }
}

/// A refusal is a client error with a reason: 400 or 413 and a message, never a 5xx.
fn refused(refusal: &BodyRefusal) -> bool {
    assert!(
        matches!(refusal.status.as_u16(), 400 | 413),
        "status {}",
        refusal.status
    );
    assert!(!refusal.message.is_empty());
    false
}
