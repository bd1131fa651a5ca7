//! Passwords and tokens: wiped from memory on drop, never printed.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A password or token. Its `Debug` output is redacted and its memory is zeroed on drop;
/// the only way to read it is [`Secret::expose`], at the point where it goes on the wire.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// How a client logs in to IMAP or SMTP.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// User name and password (IMAP `LOGIN`; SMTP `AUTH PLAIN` or `LOGIN`).
    Password {
        /// The login name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 access token, sent as SASL `XOAUTH2` (Google, Microsoft).
    XOAuth2 {
        /// The login name (the address).
        user: String,
        /// The access token.
        token: Secret,
    },
    /// An OAuth2 access token, sent as SASL `OAUTHBEARER` (RFC 7628).
    OAuthBearer {
        /// The login name (the address).
        user: String,
        /// The access token.
        token: Secret,
    },
}

impl Credentials {
    /// A user name and password.
    pub fn password(user: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self::Password {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The login name.
    pub fn user(&self) -> &str {
        match self {
            Self::Password { user, .. }
            | Self::XOAuth2 { user, .. }
            | Self::OAuthBearer { user, .. } => user,
        }
    }
}

/// The SASL `XOAUTH2` initial response (before base64).
pub(crate) fn xoauth2_response(user: &str, token: &Secret) -> Secret {
    Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// The SASL `OAUTHBEARER` initial response (RFC 7628 §3.1, before base64).
pub(crate) fn oauthbearer_response(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    Secret::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let creds = Credentials::password("alice", "hunter2");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn oauthbearer_escapes_the_authzid() {
        let r = oauthbearer_response("a=b,c", "h", 1, &Secret::new("t"));
        assert_eq!(
            r.expose(),
            "n,a=a=3Db=2Cc,\x01host=h\x01port=1\x01auth=Bearer t\x01\x01"
        );
    }
}
