//! Web Key Directory (draft-koch-openpgp-webkey-service): a domain publishes its users'
//! keys over HTTPS at a URL derived from the address.
//!
//! The advanced method asks `https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>`;
//! if that host does not exist (it cannot be resolved or reached), the direct method asks
//! `https://<domain>/.well-known/openpgpkey/hu/<hash>?l=<local>`. `<hash>` is the z-base-32
//! form of the SHA-1 of the lower-cased local part. Only HTTPS with a verified
//! certificate, no redirects to other schemes, at most [`MAX_RESPONSE`] bytes; the key
//! found must carry the address ([`sealpost_pgp::contact_cert`]) and is then remembered
//! as a contact key whose source is WKD (a changed one is flagged, as always).

use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::clock::Clock;
use crate::error::CoreError;
use crate::keys::{self, KeySource, Observation};
use crate::task::blocking;
use crate::vault::Unlocked;

/// Largest answer read, in bytes.
pub const MAX_RESPONSE: u64 = sealpost_pgp::contact::MAX_CONTACT_CERT_BYTES as u64;

/// z-base-32 (RFC 6189 §5.1.6 alphabet) of `bytes`.
pub fn zbase32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = (buffer >> bits) & 31;
            out.push(char::from(
                ALPHABET.get(index as usize).copied().unwrap_or(b'y'),
            ));
        }
    }
    if bits > 0 {
        let index = (buffer << (5 - bits)) & 31;
        out.push(char::from(
            ALPHABET.get(index as usize).copied().unwrap_or(b'y'),
        ));
    }
    out
}

/// The advanced and the direct URL for `address`.
pub fn urls(address: &sealpost_proto::EmailAddress) -> (String, String) {
    let (local, domain) = address
        .as_str()
        .split_once('@')
        .unwrap_or((address.as_str(), ""));
    let hash = zbase32(&Sha1::digest(local.to_lowercase().as_bytes()));
    let l: String = local
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    (
        format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}?l={l}"),
        format!("https://{domain}/.well-known/openpgpkey/hu/{hash}?l={l}"),
    )
}

/// Fetches keys over WKD.
#[derive(Debug, Clone)]
pub struct WkdClient {
    http: reqwest::Client,
}

impl WkdClient {
    /// A client that trusts the system's web PKI roots.
    pub fn new() -> Result<Self, CoreError> {
        Self::build(reqwest::Client::builder())
    }

    /// For tests and private deployments: also trust `root_pem`, and reach `host` at
    /// `addr` whatever DNS says.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_overrides(
        root_pem: &[u8],
        hosts: &[(&str, std::net::SocketAddr)],
    ) -> Result<Self, CoreError> {
        let root = reqwest::Certificate::from_pem(root_pem).map_err(wkd_error)?;
        let mut builder = reqwest::Client::builder().add_root_certificate(root);
        for (host, addr) in hosts {
            builder = builder.resolve(host, *addr);
        }
        Self::build(builder)
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Self, CoreError> {
        let http = builder
            .https_only(true)
            .redirect(reqwest::redirect::Policy::limited(3))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(wkd_error)?;
        Ok(Self { http })
    }

    /// The key bytes published for `address`, if any: the advanced method, and the
    /// direct one when the advanced host does not exist.
    pub async fn fetch(
        &self,
        address: &sealpost_proto::EmailAddress,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        let (advanced, direct) = urls(address);
        match self.get(&advanced).await {
            Err(e) if e.is_connect() || e.is_timeout() => {}
            Err(e) => return Err(wkd_error(e)),
            Ok(found) => return Ok(found),
        }
        self.get(&direct).await.map_err(wkd_error)
    }

    async fn get(&self, url: &str) -> Result<Option<Vec<u8>>, reqwest::Error> {
        let mut response = self.http.get(url).send().await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        response = response.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            // A key is a few KiB: an answer larger than allowed is not read further.
            if body.len() as u64 > MAX_RESPONSE {
                return Ok(None);
            }
        }
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some(body))
    }
}

fn wkd_error(e: impl std::fmt::Display) -> CoreError {
    CoreError::Wkd(e.to_string())
}

/// Looks `raw_address` up over WKD and remembers what is found (source: WKD).
pub async fn lookup(
    u: &Arc<Unlocked>,
    client: &WkdClient,
    raw_address: &str,
    clock: &Arc<dyn Clock>,
) -> Result<Option<Observation>, CoreError> {
    let address = sealpost_proto::EmailAddress::parse(raw_address)
        .map_err(|e| CoreError::BadAddress(e.to_string()))?;
    let Some(bytes) = client.fetch(&address).await? else {
        return Ok(None);
    };
    let (u, clock) = (Arc::clone(u), Arc::clone(clock));
    blocking(move || keys::observe_key(&u, address.as_str(), &bytes, KeySource::Wkd, &*clock))
        .await
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_draft() {
        // The example of draft-koch-openpgp-webkey-service-15, §3.1.
        let a = sealpost_proto::EmailAddress::parse("Joe.Doe@Example.ORG")
            .unwrap_or_else(|e| panic!("{e}"));
        let (advanced, direct) = urls(&a);
        assert_eq!(
            advanced,
            "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=joe.doe"
        );
        assert_eq!(
            direct,
            "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=joe.doe"
        );
    }
}
