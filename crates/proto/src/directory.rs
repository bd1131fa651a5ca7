//! The key directory: a user publishes an OpenPGP certificate for an e-mail address
//! after proving the address with a token the server mails to it; anyone looks a key up
//! by address.

use serde::{Deserialize, Serialize};

use crate::Bytes;

/// Largest certificate the directory takes, in bytes (a Sealpost key with a few user IDs
/// is about 1 KiB; this leaves room for imported keys with many signatures).
pub const MAX_CERT_BYTES: usize = 64 * 1024;

/// The header of the proof mail that carries the token, so the app finds and confirms
/// it by itself.
pub const TOKEN_HEADER: &str = "Sealpost-Directory-Token";

/// An e-mail address in the form the directory keys on: trimmed, lower case (mail
/// providers treat addresses case-insensitively in practice), checked for shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

/// Why a string is not an address the directory takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an e-mail address the directory takes: {0}")]
pub struct EmailAddressError(&'static str);

impl EmailAddress {
    /// Checks and normalises `raw`: one `@`, a local part of 1–64 and a domain of 1–253
    /// printable ASCII characters without spaces, quotes, brackets or angle brackets,
    /// the domain with a dot and no empty labels; 254 characters at most in all.
    pub fn parse(raw: &str) -> Result<Self, EmailAddressError> {
        let address = raw.trim().to_ascii_lowercase();
        if address.len() > 254 {
            return Err(EmailAddressError("longer than 254 characters"));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(EmailAddressError("no @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(EmailAddressError(
                "the part before @ must have 1 to 64 characters",
            ));
        }
        if domain.is_empty() || domain.len() > 253 {
            return Err(EmailAddressError(
                "the domain must have 1 to 253 characters",
            ));
        }
        let allowed = |c: char| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
                )
        };
        if !local.chars().all(allowed) {
            return Err(EmailAddressError(
                "the part before @ has a character not allowed",
            ));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(EmailAddressError(
                "the domain must be dot-separated labels of letters, digits and hyphens",
            ));
        }
        Ok(Self(address))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailAddressError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> Self {
        a.0
    }
}

/// `POST /v1/directory/claims`: publish `cert` for `address` once the address is proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectoryClaim {
    /// The address to prove.
    pub address: EmailAddress,
    /// The OpenPGP certificate (binary, public parts only).
    pub cert: Bytes,
}

/// The answer to a claim: a token is on its way to the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryClaimed {
    /// Unix seconds after which the token no longer works.
    pub expires_at: i64,
}

/// `POST /v1/directory/confirm`: the token from the proof mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectoryConfirm {
    /// As found in the mail's [`TOKEN_HEADER`].
    pub token: String,
}

/// `GET /v1/directory/keys/{address}`, and the answer to a confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntry {
    /// The proven address.
    pub address: EmailAddress,
    /// The certificate published for it.
    pub cert: Bytes,
    /// When the address was last proven, Unix seconds.
    pub published_at: i64,
    /// Its entry in the transparency log, proven against a signed head. A client checks
    /// it with `sealpost_transparency::wire::verify_lookup` and refuses the key if it
    /// does not verify.
    pub proof: crate::KeyProof,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_and_checked() {
        let a = EmailAddress::parse("  Alice.Smith+pgp@Example.ORG ").unwrap();
        assert_eq!(a.as_str(), "alice.smith+pgp@example.org");
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@",
            "alice@localhost",
            "alice@@example.org",
            "al ice@example.org",
            "alice@exa_mple.org",
            "alice@-example.org",
            "alice@example..org",
            "<alice@example.org>",
            "\"a\"@example.org",
            "alice@example.org\r\nBcc: x@y.z",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        // Through serde too: a bad address never becomes a value.
        assert!(serde_json::from_str::<EmailAddress>("\"nobody\"").is_err());
        assert_eq!(
            serde_json::from_str::<EmailAddress>("\"Bob@Example.org\"").unwrap(),
            EmailAddress::parse("bob@example.org").unwrap()
        );
    }
}
