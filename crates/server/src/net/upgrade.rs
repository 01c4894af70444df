//! The WebSocket upgrade of `/ws` (RFC 6455 section 4.2), done here rather than through axum's
//! `WebSocketUpgrade`, so that the connection task holds tokio-tungstenite's stream itself:
//! its frames can then be written from the core's shared bytes without a second UTF-8 check
//! per delivery (axum's text type is built from bytes only through one).

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use cerebrum_deflate::{Agreement, Offer};
use cerebrum_server_core::Compression;
use cerebrum_server_core::Encoding;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The upgraded connection: tokio-tungstenite's stream over hyper's upgraded I/O.
pub(crate) type WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Why a request to `/ws` cannot be upgraded, with the status axum's extractor answered (the
/// codes clients and tests already know).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("request method must be `GET`")]
    MethodNotGet,
    #[error("WebSocket upgrades need HTTP/1.1")]
    NotHttp11,
    #[error("`Connection` header did not include 'upgrade'")]
    Connection,
    #[error("`Upgrade` header did not include 'websocket'")]
    Upgrade,
    #[error("`Sec-WebSocket-Key` header missing")]
    KeyMissing,
    #[error("`Sec-WebSocket-Version` header did not include '13'")]
    Version,
    #[error("the connection cannot be upgraded")]
    NotUpgradable,
}

impl Refused {
    /// The HTTP status of the refusal.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A checked upgrade request: what the 101 answer and the connection task need.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    /// The subprotocol selected (`None`: the client offered none of ours).
    protocol: Option<Encoding>,
    /// The permessage-deflate answer, when the extension was agreed.
    extensions: Option<HeaderValue>,
}

impl Upgrade {
    /// Checks a request for an upgrade to WebSocket, and selects the first subprotocol of the
    /// client's offer that names one of the `supported` encodings.
    pub(crate) fn from_parts(parts: &mut Parts, supported: &[Encoding]) -> Result<Self, Refused> {
        if parts.method != Method::GET {
            return Err(Refused::MethodNotGet);
        }
        if parts.version != Version::HTTP_11 {
            return Err(Refused::NotHttp11);
        }
        if !header_has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(Refused::Connection);
        }
        if !header_is(&parts.headers, header::UPGRADE, "websocket") {
            return Err(Refused::Upgrade);
        }
        if !header_is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(Refused::Version);
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(Refused::KeyMissing)?
            .clone();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(Refused::NotUpgradable)?;
        // Subprotocol names compare exactly (RFC 6455 section 11.3.4 registers them
        // case-sensitively); the client's order is its preference.
        let protocol = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .find_map(|offer| {
                supported
                    .iter()
                    .copied()
                    .find(|e| offer.trim_ascii() == e.subprotocol().as_bytes())
            });
        Ok(Self {
            key,
            on_upgrade,
            protocol,
            extensions: None,
        })
    }

    /// Takes permessage-deflate (RFC 7692) when the server has it on and the client offers it
    /// in terms the server can keep: the first such offer, answered with both
    /// `no_context_takeover` parameters. Anything else (no offer, ill-formed offers, a server
    /// window limit below the configured one) leaves the connection uncompressed.
    pub(crate) fn with_compression(mut self, headers: &HeaderMap, settings: &Compression) -> Self {
        if !settings.enabled {
            return self;
        }
        let mut offers = Vec::new();
        for value in headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
            // A header that is not an extension list at all offers nothing.
            if let Some(list) = value.to_str().ok().and_then(|v| Offer::parse_all(v).ok()) {
                offers.extend(list.into_iter().filter_map(Result::ok));
            }
        }
        self.extensions = Agreement::accept(&offers, settings.window_bits)
            .and_then(|agreed| HeaderValue::from_str(&agreed.to_string()).ok());
        self
    }

    /// How the connection's frames travel: as the selected subprotocol says, JSON text when
    /// none was (level-0 peers).
    pub(crate) fn encoding(&self) -> Encoding {
        self.protocol.unwrap_or_default()
    }

    /// Answers `101 Switching Protocols` and, once hyper hands over the connection, runs
    /// `run` on the WebSocket in a task of its own. If the upgrade then fails, `run` is dropped
    /// without being called.
    ///
    /// The connection's future is spawned as a second task once the socket exists, rather than
    /// awaited in the task that waits for the upgrade: that task's captures (the config, the
    /// closure, hyper's upgrade handle) would otherwise stay in every connection's task for its
    /// whole life.
    pub(crate) fn on_upgrade<F, Fut>(self, config: WebSocketConfig, run: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        let config = config.compressed_messages(self.extensions.is_some());
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let socket =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    tokio::spawn(run(socket));
                }
                Err(err) => tracing::debug!(%err, "a WebSocket upgrade failed"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = self.protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol.subprotocol()),
            );
        }
        if let Some(extensions) = self.extensions {
            headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
        }
        response
    }
}

/// Whether the header's value is `value`, ignoring ASCII case.
fn header_is(headers: &HeaderMap, name: header::HeaderName, value: &str) -> bool {
    headers.get(name).is_some_and(|v| {
        v.as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(value.as_bytes())
    })
}

/// Whether one of the header's comma-separated tokens (over all its lines) is `token`,
/// ignoring ASCII case.
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    /// A well-formed upgrade request's parts (without hyper's upgrade state).
    fn parts() -> Parts {
        let request = Request::builder()
            .method(Method::GET)
            .uri("/ws")
            .version(Version::HTTP_11)
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap_or_default();
        request.into_parts().0
    }

    /// An `OnUpgrade` that never upgrades (a request without hyper's upgrade state).
    fn on_upgrade() -> OnUpgrade {
        hyper::upgrade::on(Request::new(()))
    }

    fn refused(change: impl FnOnce(&mut Parts)) -> Option<Refused> {
        let mut parts = parts();
        parts.extensions.insert(on_upgrade());
        change(&mut parts);
        Upgrade::from_parts(&mut parts, &Encoding::ALL).err()
    }

    fn set(parts: &mut Parts, name: header::HeaderName, value: &'static str) {
        parts.headers.insert(name, HeaderValue::from_static(value));
    }

    #[test]
    fn a_well_formed_request_is_accepted() {
        assert_eq!(refused(|_| {}), None);
        assert_eq!(refused(|p| set(p, header::CONNECTION, "UPGRADE")), None);
        assert_eq!(refused(|p| set(p, header::UPGRADE, "WebSocket")), None);
    }

    #[test]
    fn each_missing_piece_is_refused_with_axums_status() {
        assert_eq!(
            refused(|p| p.method = Method::POST),
            Some(Refused::MethodNotGet)
        );
        assert_eq!(
            refused(|p| p.version = Version::HTTP_10),
            Some(Refused::NotHttp11)
        );
        assert_eq!(
            refused(|p| set(p, header::CONNECTION, "keep-alive")),
            Some(Refused::Connection)
        );
        assert_eq!(
            refused(|p| set(p, header::UPGRADE, "h2c")),
            Some(Refused::Upgrade)
        );
        assert_eq!(
            refused(|p| set(p, header::SEC_WEBSOCKET_VERSION, "8")),
            Some(Refused::Version)
        );
        assert_eq!(
            refused(|p| {
                p.headers.remove(header::SEC_WEBSOCKET_KEY);
            }),
            Some(Refused::KeyMissing)
        );
        assert_eq!(
            refused(|p| {
                p.extensions.remove::<OnUpgrade>();
            }),
            Some(Refused::NotUpgradable)
        );
        assert_eq!(
            Refused::MethodNotGet.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            Refused::NotUpgradable.status(),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(Refused::Version.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn connection_tokens_are_matched_whole_and_without_case() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, UPGRADE"),
        );
        assert!(header_has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!header_has_token(&headers, header::CONNECTION, "upgrad"));
    }

    /// A well-formed request's parts with hyper's upgrade state and `lines` of header `name`.
    fn parts_with(name: header::HeaderName, lines: &[&'static str]) -> Parts {
        let mut parts = parts();
        parts.extensions.insert(on_upgrade());
        for line in lines {
            parts
                .headers
                .append(name.clone(), HeaderValue::from_static(line));
        }
        parts
    }

    /// The `Sec-WebSocket-Extensions` answer to `offers` (each a header line).
    fn answer(offers: &[&'static str], enabled: bool) -> Option<String> {
        let mut parts = parts_with(header::SEC_WEBSOCKET_EXTENSIONS, offers);
        let settings = Compression {
            enabled,
            ..Compression::default()
        };
        Upgrade::from_parts(&mut parts, &Encoding::ALL)
            .ok()?
            .with_compression(&parts.headers, &settings)
            .extensions
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    #[test]
    fn permessage_deflate_is_taken_only_when_on_and_offered() {
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        assert_eq!(
            answer(&["permessage-deflate; client_max_window_bits"], true).as_deref(),
            Some(both)
        );
        assert_eq!(
            answer(&["permessage-deflate; client_max_window_bits"], false),
            None
        );
        assert_eq!(answer(&[], true), None);
        // Offers over several header lines; the ill-formed one is skipped.
        assert_eq!(
            answer(
                &["x-foo, permessage-deflate; bogus", "permessage-deflate"],
                true
            )
            .as_deref(),
            Some(both)
        );
        // A server window limit below the server's 15 bits: declined.
        assert_eq!(
            answer(&["permessage-deflate; server_max_window_bits=10"], true),
            None
        );
        // Not an extension list at all: nothing offered.
        assert_eq!(answer(&["permessage-deflate; a b"], true), None);
    }

    /// The subprotocol selected for an offer (over one or several header lines), when the
    /// server supports `supported`.
    fn selected(lines: &[&'static str], supported: &[Encoding]) -> Option<Encoding> {
        let mut parts = parts_with(header::SEC_WEBSOCKET_PROTOCOL, lines);
        Upgrade::from_parts(&mut parts, supported)
            .ok()
            .and_then(|u| u.protocol)
    }

    #[test]
    fn the_subprotocol_is_selected_only_when_offered_exactly() {
        let offered = |value: &'static str| selected(&[value], &[Encoding::Json]).is_some();
        assert!(offered("other, cerebrum.v1.json"));
        assert!(!offered("Cerebrum.V1.JSON"));
        assert!(!offered("cerebrum.v1"));
        assert!(!offered("cerebrum.v1.msgpack"));
    }

    #[test]
    fn the_first_supported_subprotocol_of_the_offer_wins() {
        use Encoding::{Json, MessagePack};
        let all = &Encoding::ALL;
        assert_eq!(
            selected(&["cerebrum.v1.msgpack, cerebrum.v1.json"], all),
            Some(MessagePack)
        );
        assert_eq!(
            selected(&["cerebrum.v1.json, cerebrum.v1.msgpack"], all),
            Some(Json)
        );
        assert_eq!(
            selected(&["other", " cerebrum.v1.msgpack ", "cerebrum.v1.json"], all),
            Some(MessagePack)
        );
        assert_eq!(
            selected(&["Cerebrum.V1.MsgPack, cerebrum.v1.json"], all),
            Some(Json)
        );
        assert_eq!(selected(&["cerebrum.v1.msgpack"], all), Some(MessagePack));
        assert_eq!(selected(&["other"], all), None);
        assert_eq!(selected(&[], all), None);
    }

    #[test]
    fn no_offer_means_json_text() {
        let encoding = |offer: Option<&'static str>| {
            let mut request = parts();
            request.extensions.insert(on_upgrade());
            if let Some(offer) = offer {
                set(&mut request, header::SEC_WEBSOCKET_PROTOCOL, offer);
            }
            Upgrade::from_parts(&mut request, &Encoding::ALL)
                .map(|u| u.encoding())
                .ok()
        };
        assert_eq!(encoding(None), Some(Encoding::Json));
        assert_eq!(encoding(Some("other")), Some(Encoding::Json));
        assert_eq!(
            encoding(Some("cerebrum.v1.msgpack")),
            Some(Encoding::MessagePack)
        );
    }
}
