//! Checking signatures that are not inside an encrypted message: detached ones (PGP/MIME
//! `multipart/signed`, `sop verify`) and inline ones (the Cleartext Signature Framework
//! and signed messages: inline-signed mail, `sop inline-verify`). Like
//! [`crate::message::decrypt_with`] it only says what each signature *is*
//! (`SigCheck`); the mail rules (`message::signature_status`) and SOP's
//! (`sop_support`) decide what counts.

use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use sequoia_openpgp as openpgp;

use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder,
};
use openpgp::serialize::Serialize;
use openpgp::{Cert, KeyHandle, Packet};

use crate::message::{
    OpenContext, SigCheck, SignatureStatus, known_certs, matching_certs, signature_status,
};
use crate::{POLICY, repair};

/// Why signature data could not be checked at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// Not OpenPGP signature data, or not the expected kind of message.
    BadData(String),
    /// The signed message's content is larger than the limit.
    TooLarge,
    /// The data has the right shape, but its signatures could not be checked.
    Unverifiable,
}

/// Checks a detached signature `signature` (armored or binary) over `data` and applies
/// the mail's sender rules for `from`. Line endings of `data` are the caller's business
/// (MIME content is signed in CRLF form).
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    from: &[String],
    ctx: &OpenContext<'_>,
) -> SignatureStatus {
    let certs = known_certs(ctx);
    let checks = match detached_checks(data, signature, &certs, ctx.now) {
        Ok(checks) if !checks.is_empty() => checks,
        // A signature part that is not a signature, or fails to parse, still claims to
        // sign: report it as bad, never as unsigned.
        _ => vec![SigCheck::Bad],
    };
    signature_status(&checks, from, ctx)
}

/// What every signature packet of a detached signature says about `data`, checked with
/// `certs` at `now`. Unknown signature versions are skipped and malformed unhashed
/// hints repaired ([`repair::signatures`]); an empty list means no known signature.
pub(crate) fn detached_checks(
    data: &[u8],
    signature: &[u8],
    certs: &[Cert],
    now: SystemTime,
) -> Result<Vec<SigCheck>, VerifyError> {
    let sigs = repair::signatures(signature).map_err(VerifyError::BadData)?;
    if sigs.is_empty() {
        return Ok(Vec::new());
    }
    let mut binary = Vec::new();
    for sig in sigs {
        Packet::from(sig)
            .serialize(&mut binary)
            .map_err(|e| VerifyError::BadData(e.to_string()))?;
    }
    let helper = Collect::new(certs);
    let run = || -> openpgp::Result<Vec<SigCheck>> {
        let mut verifier = DetachedVerifierBuilder::from_bytes(&binary)?.with_policy(
            &POLICY,
            Some(now),
            helper,
        )?;
        verifier.verify_bytes(data)?;
        Ok(verifier.into_helper().checks)
    };
    match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(checks)) => Ok(checks),
        Ok(Err(_)) => Ok(vec![SigCheck::Bad]),
        Err(_) => Err(VerifyError::BadData(
            "the OpenPGP parser failed on this signature".into(),
        )),
    }
}

/// An inline-signed message or a cleartext-signed text (armored or binary): its content
/// and what each signature says, checked with `certs` at `now`. The content is returned
/// only whole (up to `max` bytes); encrypted or compressed-and-encrypted data is not an
/// inline-signed message.
pub(crate) fn inline_checks(
    data: &[u8],
    certs: &[Cert],
    now: SystemTime,
    max: usize,
) -> Result<(Vec<u8>, Vec<SigCheck>), VerifyError> {
    let helper = Collect::new(certs);
    let run = || -> Result<(Vec<u8>, Vec<SigCheck>), VerifyError> {
        let bad = |e: openpgp::anyhow::Error| VerifyError::BadData(e.to_string());
        let mut verifier = VerifierBuilder::from_bytes(data)
            .map_err(bad)?
            .with_policy(&POLICY, Some(now), helper)
            .map_err(|e| match e.downcast_ref::<openpgp::Error>() {
                // Sequoia checks signatures early for small messages; a failure then is
                // about signatures, not about the data's shape.
                Some(openpgp::Error::MalformedMessage(_)) | None => bad(e),
                Some(_) => VerifyError::Unverifiable,
            })?;
        let mut content = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        (&mut verifier)
            .take(limit)
            .read_to_end(&mut content)
            .map_err(|_| VerifyError::Unverifiable)?;
        if content.len() > max {
            return Err(VerifyError::TooLarge);
        }
        Ok((content, verifier.into_helper().checks))
    };
    match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(result) => result,
        Err(_) => Err(VerifyError::BadData(
            "the OpenPGP parser failed on this message".into(),
        )),
    }
}

/// Records what every signature of every layer says.
struct Collect<'a> {
    certs: &'a [Cert],
    checks: Vec<SigCheck>,
}

impl<'a> Collect<'a> {
    fn new(certs: &'a [Cert]) -> Self {
        Self {
            certs,
            checks: Vec::new(),
        }
    }
}

impl VerificationHelper for Collect<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(matching_certs(self.certs.iter(), ids))
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    self.checks
                        .extend(results.iter().filter_map(SigCheck::from_result));
                }
                MessageLayer::Encryption { .. } | MessageLayer::Compression { .. } => {}
            }
        }
        Ok(())
    }
}
