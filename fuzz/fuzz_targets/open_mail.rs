//! The mail reader: any bytes, as if fetched from an IMAP server.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sealpost_pgp::{OpenContext, open_mail};

fuzz_target!(|data: &[u8]| {
    let (bob, alice) = common::keys();
    let own = [bob.clone()];
    let known = [alice.cert()];
    let ctx = OpenContext::new(&own, &known, common::now());
    // Any result is fine; a panic or a sanitizer report is the finding.
    let _ = open_mail(data, &ctx);
});
