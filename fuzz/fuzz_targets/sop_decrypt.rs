//! `sealpost sop decrypt KEY --verify-with CERT --with-password pw`: any bytes on stdin.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sealpost_pgp::Passphrase;
use sealpost_pgp::sop_support::{self, DecryptRequest, TimeWindow};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

fuzz_target!(|data: &[u8]| {
    let (bob, alice) = common::keys();
    let Ok(secret) = bob.to_secret_bytes() else {
        return;
    };
    let Ok(key) = Cert::from_bytes(secret.expose()) else {
        return;
    };
    let keys = [key];
    let certs = [alice.cert()];
    let passwords = [Passphrase::new("pw".into())];
    let req = DecryptRequest {
        keys: &keys,
        passwords: &passwords,
        session_keys: &[],
        verify_with: &certs,
        window: TimeWindow::default(),
        now: common::now(),
        max_plaintext: 1 << 20,
    };
    let _ = sop_support::decrypt(data, &req);
});
