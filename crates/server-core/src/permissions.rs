//! Who may subscribe and publish to which channel (PROTOCOL.md section 5).

use cerebrum_protocol::Namespace;

use crate::auth::Claims;

/// What a connection is, for the permission checks.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// Whether the server runs with auth on.
    pub auth_on: bool,
    /// The token's claims (auth on, after authentication).
    pub claims: Option<&'a Claims>,
    /// The connection's user: `sub` with auth on; with auth off the user it named itself.
    pub user: Option<&'a str>,
}

impl Principal<'_> {
    /// Whether this connection may subscribe to `channel`.
    ///
    /// ```
    /// use cerebrum_server_core::permissions::Principal;
    /// let anonymous = Principal { auth_on: false, claims: None, user: None };
    /// assert!(anonymous.may_subscribe("chat:1"));
    /// let ada = Principal { auth_on: false, claims: None, user: Some("ada") };
    /// assert!(ada.may_subscribe("user:ada"));
    /// assert!(!ada.may_subscribe("user:bob"));
    /// ```
    #[must_use]
    pub fn may_subscribe(&self, channel: &str) -> bool {
        match Namespace::of(channel) {
            Namespace::System => true,
            Namespace::User(id) => {
                self.user.is_none_or(|user| user == id) && (!self.auth_on || self.user.is_some())
            }
            Namespace::Session(_) => !self.auth_on || self.claims.is_some(),
            _ => self.may_use_app_channel(channel),
        }
    }

    /// Whether this connection may publish to `channel` (membership is checked apart).
    #[must_use]
    pub fn may_publish(&self, channel: &str) -> bool {
        match Namespace::of(channel) {
            Namespace::System | Namespace::User(_) => false,
            Namespace::Session(_) => !self.auth_on || self.claims.is_some(),
            _ => self.may_use_app_channel(channel),
        }
    }

    fn may_use_app_channel(&self, channel: &str) -> bool {
        if !self.auth_on {
            return true;
        }
        self.claims.is_some_and(|c| c.allows_channel(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permissions_table() {
        let claims = Claims {
            nbf: None,
            sub: "ada".into(),
            name: None,
            exp: 0,
            channels: Some(crate::auth::ChannelGlobs::from(vec!["chat:*".to_owned()])),
        };
        let bare = Claims {
            channels: None,
            ..claims.clone()
        };
        let on = Principal {
            auth_on: true,
            claims: Some(&claims),
            user: Some("ada"),
        };
        let on_bare = Principal {
            auth_on: true,
            claims: Some(&bare),
            user: Some("ada"),
        };
        let off = Principal {
            auth_on: false,
            claims: None,
            user: None,
        };
        // (channel, auth on with claim, auth on without claim, auth off) for subscribe, publish.
        let table: [(&str, [bool; 3], [bool; 3]); 6] = [
            ("system", [true, true, true], [false, false, false]),
            ("user:ada", [true, true, true], [false, false, false]),
            ("user:bob", [false, false, true], [false, false, false]),
            ("session:genetics", [true, true, true], [true, true, true]),
            ("chat:room-1", [true, false, true], [true, false, true]),
            ("quiz:1", [false, false, true], [false, false, true]),
        ];
        for (channel, subscribe, publish) in table {
            let got = [on, on_bare, off].map(|p| p.may_subscribe(channel));
            assert_eq!(got, subscribe, "subscribe {channel}");
            let got = [on, on_bare, off].map(|p| p.may_publish(channel));
            assert_eq!(got, publish, "publish {channel}");
        }
    }
}
