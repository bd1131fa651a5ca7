//! The HSM layer against real parts: the software key file and a real SoftHSMv2 token.
//!
//! Every test that touches SoftHSM runs its body in a child process with its own
//! `SOFTHSM2_CONF` (`sealpost_testkit::softhsm::in_child_process`), so these tests pass
//! under plain `cargo test` as under `cargo nextest`. The test name passed to it must be
//! the function's name.
//!
//! Latencies: `cargo test -p sealpost-server --release --test hsm -- --ignored --nocapture latency`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use hmac::{Hmac, Mac};
use sealpost_server::hsm::{Hsm, HsmError, Pkcs11Config, Pkcs11Hsm, Provisioned, SoftwareHsm};
use sealpost_testkit::softhsm::{SoftHsmToken, in_child_process};
use sha2::Sha512;
use zeroize::Zeroizing;

// ---------------------------------------------------------------- shared checks

const AAD: &[u8] = b"user:alice\0wrap:v1";

/// Any damage to a blob or its aad is an error of the right kind, never garbage.
fn assert_tamper_evident(hsm: &dyn Hsm) {
    let sealed = hsm.seal(AAD, b"the cloud-wrapped identity key").unwrap();
    assert_eq!(
        hsm.open(AAD, &sealed).unwrap().as_slice(),
        b"the cloud-wrapped identity key"
    );

    for aad in [
        b"user:alice\0wrap:v2".as_slice(),
        b"",
        b"user:alice\0wrap:v1\0",
        b"user:bob\0wrap:v1",
    ] {
        let result = hsm.open(aad, &sealed);
        assert!(matches!(result, Err(HsmError::Integrity)), "{result:?}");
    }

    for i in 0..sealed.len() {
        for bit in 0..8 {
            let mut damaged = sealed.clone();
            damaged[i] ^= 1 << bit;
            match hsm.open(AAD, &damaged) {
                Err(HsmError::Integrity | HsmError::Malformed(_) | HsmError::UnknownKey(_)) => {}
                other => panic!("byte {i} bit {bit} flipped: {other:?}"),
            }
        }
    }
    for len in 0..sealed.len() {
        match hsm.open(AAD, &sealed[..len]) {
            Err(HsmError::Integrity | HsmError::Malformed(_)) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(matches!(hsm.open(AAD, &longer), Err(HsmError::Integrity)));

    // Still works after all those failures (no session was lost).
    assert_eq!(
        hsm.open(AAD, &sealed).unwrap().as_slice(),
        b"the cloud-wrapped identity key"
    );
}

fn assert_round_trips(hsm: &dyn Hsm) {
    for plaintext in [
        Vec::new(),
        b"x".to_vec(),
        vec![0xa5; 72],
        (0..=255u8).cycle().take(1 << 20).collect(),
    ] {
        let sealed = hsm.seal(AAD, &plaintext).unwrap();
        assert_eq!(
            hsm.open(AAD, &sealed).unwrap().as_slice(),
            plaintext.as_slice()
        );
    }
    let a = hsm.seal(AAD, b"same").unwrap();
    let b = hsm.seal(AAD, b"same").unwrap();
    assert_ne!(a, b, "a fresh nonce per seal");
}

fn hmac_sha512(key: &[u8], message: &[u8]) -> [u8; 64] {
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
    mac.update(message);
    let mut out = [0u8; 64];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

// ---------------------------------------------------------------- software key file

fn software() -> (tempfile::TempDir, SoftwareHsm) {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftwareHsm::open_or_create(&dir.path().join("hsm.key")).unwrap();
    (dir, hsm)
}

#[test]
fn software_round_trip() {
    let (_dir, hsm) = software();
    assert_round_trips(&hsm);
}

#[test]
fn software_is_tamper_evident() {
    let (_dir, hsm) = software();
    assert_tamper_evident(&hsm);
}

#[test]
fn software_blob_from_another_key_file_is_an_unknown_key() {
    let (_a, one) = software();
    let (_b, other) = software();
    let sealed = one.seal(AAD, b"secret").unwrap();
    match other.open(AAD, &sealed) {
        Err(HsmError::UnknownKey(id)) => assert_eq!(id, one.key_id()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn software_oprf_hmac_is_hmac_sha512_over_the_seed() {
    let (dir, hsm) = software();
    // The documented layout: 30-byte header, 32-byte sealing key, 64-byte seed.
    let file = std::fs::read(dir.path().join("hsm.key")).unwrap();
    assert_eq!(file.len(), 126);
    let seed = &file[62..];
    for message in [b"".as_slice(), b"alice\0OprfKey", &[7u8; 1000]] {
        assert_eq!(*hsm.oprf_hmac(message).unwrap(), hmac_sha512(seed, message));
    }
}

#[test]
fn software_refuses_bad_key_files() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, _hsm) = software();
    let good = dir.path().join("hsm.key");
    let bytes = std::fs::read(&good).unwrap();

    let write = |name: &str, contents: &[u8], mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let cases = [
        ("short", write("short.key", &bytes[..125], 0o600)),
        (
            "long",
            write("long.key", &[bytes.as_slice(), b"\n"].concat(), 0o600),
        ),
        ("empty", write("empty.key", b"", 0o600)),
        ("wrong header", {
            let mut other = bytes.clone();
            other[0] ^= 0x20;
            write("header.key", &other, 0o600)
        }),
        ("world-readable", write("world.key", &bytes, 0o644)),
        ("group-readable", write("group.key", &bytes, 0o640)),
    ];
    for (what, path) in cases {
        match SoftwareHsm::open_or_create(&path) {
            Err(HsmError::Config(message)) => {
                assert!(
                    message.contains(path.to_str().unwrap()),
                    "{what}: {message}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // The good one still opens; a directory is not a key file.
    SoftwareHsm::open_or_create(&good).unwrap();
    assert!(matches!(
        SoftwareHsm::open_or_create(dir.path()),
        Err(HsmError::Config(_))
    ));
}

#[test]
fn software_describe_says_it_is_not_an_hsm() {
    let (_dir, hsm) = software();
    let text = hsm.describe();
    assert!(text.contains("NOT an HSM"), "{text}");
    assert!(text.contains("hsm.key"), "{text}");
    assert!(text.contains("offline password guesses"), "{text}");
}

#[test]
fn software_and_pkcs11_blobs_do_not_mix() {
    in_child_process("software_and_pkcs11_blobs_do_not_mix", |token| {
        let p11 = provisioned(token);
        let (_dir, soft) = software();
        let from_soft = soft.seal(AAD, b"x").unwrap();
        let from_p11 = p11.seal(AAD, b"x").unwrap();
        assert!(matches!(
            p11.open(AAD, &from_soft),
            Err(HsmError::UnknownKey(_))
        ));
        assert!(matches!(
            soft.open(AAD, &from_p11),
            Err(HsmError::UnknownKey(_))
        ));
    });
}

// ---------------------------------------------------------------- PKCS#11 on SoftHSMv2

fn config(token: &SoftHsmToken) -> Pkcs11Config {
    Pkcs11Config::new(
        token.module_path(),
        token.label(),
        Zeroizing::new(token.user_pin().to_owned()),
    )
}

fn provisioned(token: &SoftHsmToken) -> Pkcs11Hsm {
    let config = config(token);
    Pkcs11Hsm::provision(&config).unwrap();
    Pkcs11Hsm::connect(&config).unwrap()
}

/// A logged-in read-write session of our own, to look at the token directly.
fn raw_session(token: &SoftHsmToken) -> Session {
    let p11 = Pkcs11::new(token.module_path()).unwrap();
    match p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = p11
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p11.get_token_info(*s).unwrap().label() == token.label())
        .unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(token.user_pin()))) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("{e}"),
    }
    session
}

/// A key we know cannot wrap `key` out of the token.
fn assert_cannot_wrap_out(session: &Session, key: ObjectHandle, label: &str) {
    let wrapping = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    assert!(
        session
            .wrap_key(&Mechanism::AesKeyWrapPad, wrapping, key)
            .is_err(),
        "{label}"
    );
}

fn key_by_label(session: &Session, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label}");
    found[0]
}

#[test]
fn pkcs11_round_trip() {
    in_child_process("pkcs11_round_trip", |token| {
        let hsm = provisioned(token);
        assert_round_trips(&hsm);
        let text = hsm.describe();
        assert!(
            text.contains(token.label()) && text.contains("seal-v1"),
            "{text}"
        );
        assert_eq!(hsm.token_label(), token.label());
    });
}

#[test]
fn pkcs11_is_tamper_evident() {
    in_child_process("pkcs11_is_tamper_evident", |token| {
        assert_tamper_evident(&provisioned(token));
    });
}

#[test]
fn pkcs11_provision_is_idempotent_and_connect_needs_it() {
    in_child_process(
        "pkcs11_provision_is_idempotent_and_connect_needs_it",
        |token| {
            let config = config(token);
            match Pkcs11Hsm::connect(&config) {
                Err(HsmError::Config(message)) => {
                    assert!(message.contains("provision"), "{message}")
                }
                other => panic!("{other:?}"),
            }
            let created = Provisioned {
                seal_key_created: true,
                oprf_key_created: true,
                log_key_created: true,
            };
            assert_eq!(Pkcs11Hsm::provision(&config).unwrap(), created);
            let hsm = Pkcs11Hsm::connect(&config).unwrap();
            let sealed = hsm.seal(AAD, b"kept").unwrap();
            let mac = hsm.oprf_hmac(b"m").unwrap();

            let log_key = hsm.log_public_key().unwrap();
            let signature = hsm.log_sign(b"tree head").unwrap();

            let nothing = Provisioned {
                seal_key_created: false,
                oprf_key_created: false,
                log_key_created: false,
            };
            assert_eq!(Pkcs11Hsm::provision(&config).unwrap(), nothing);
            // The keys are the same ones.
            let again = Pkcs11Hsm::connect(&config).unwrap();
            assert_eq!(again.open(AAD, &sealed).unwrap().as_slice(), b"kept");
            assert_eq!(*again.oprf_hmac(b"m").unwrap(), *mac);
            assert_eq!(again.log_public_key().unwrap(), log_key);
            // The token's Ed25519 signature verifies as plain Ed25519 (RFC 8032).
            let public = ed25519_dalek::VerifyingKey::from_bytes(&log_key).unwrap();
            public
                .verify_strict(
                    b"tree head",
                    &ed25519_dalek::Signature::from_bytes(&signature),
                )
                .unwrap();
            assert!(
                public
                    .verify_strict(
                        b"another head",
                        &ed25519_dalek::Signature::from_bytes(&signature)
                    )
                    .is_err()
            );
        },
    );
}

#[test]
fn pkcs11_provisioned_keys_cannot_leave_the_token() {
    in_child_process("pkcs11_provisioned_keys_cannot_leave_the_token", |token| {
        let _hsm = provisioned(token);
        let session = raw_session(token);
        for (label, key_type) in [
            ("seal-v1", KeyType::AES),
            ("oprf-v1", KeyType::GENERIC_SECRET),
        ] {
            let key = key_by_label(&session, label);
            let attributes = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::KeyType,
                        AttributeType::Token,
                        AttributeType::Sensitive,
                        AttributeType::AlwaysSensitive,
                        AttributeType::Extractable,
                        AttributeType::NeverExtractable,
                        AttributeType::Value,
                    ],
                )
                .unwrap();
            for expected in [
                Attribute::KeyType(key_type),
                Attribute::Token(true),
                Attribute::Sensitive(true),
                Attribute::AlwaysSensitive(true),
                Attribute::Extractable(false),
                Attribute::NeverExtractable(true),
            ] {
                assert!(
                    attributes.contains(&expected),
                    "{label}: {expected:?} in {attributes:?}"
                );
            }
            // SoftHSM silently leaves the sensitive value out instead of failing.
            assert!(
                !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
                "{label}: the value was readable"
            );
            assert!(
                session
                    .get_attributes(key, &[AttributeType::Value])
                    .unwrap()
                    .is_empty(),
                "{label}: the value was readable on its own"
            );
            // Nor can it be wrapped out under a key we know.
            assert_cannot_wrap_out(&session, key, label);
        }
        // The log's Ed25519 private key: the same, and no wrapping it out either.
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(b"log-v1".to_vec()),
            ])
            .unwrap();
        assert_eq!(found.len(), 1);
        let log_key = found[0];
        let attributes = session
            .get_attributes(
                log_key,
                &[
                    AttributeType::KeyType,
                    AttributeType::Sensitive,
                    AttributeType::AlwaysSensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Value,
                ],
            )
            .unwrap();
        for expected in [
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Sensitive(true),
            Attribute::AlwaysSensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true),
        ] {
            assert!(
                attributes.contains(&expected),
                "log-v1: {expected:?} in {attributes:?}"
            );
        }
        assert!(!attributes.iter().any(|a| matches!(a, Attribute::Value(_))));
        assert_cannot_wrap_out(&session, log_key, "log-v1");
        let seal_key = key_by_label(&session, "seal-v1");
        let oprf_key = key_by_label(&session, "oprf-v1");
        let lengths = session
            .get_attributes(oprf_key, &[AttributeType::ValueLen])
            .unwrap();
        assert_eq!(lengths, vec![Attribute::ValueLen(64.into())]);
        // Each key works with its one mechanism only (CKA_ALLOWED_MECHANISMS): no raw
        // AES-ECB/CTR oracle under the sealing key, no other MAC under the OPRF key.
        assert!(
            session
                .encrypt(&Mechanism::AesEcb, seal_key, &[0; 16])
                .is_err()
        );
        assert!(
            session
                .sign(&Mechanism::Sha256Hmac, oprf_key, b"m")
                .is_err()
        );
        assert_eq!(
            session
                .sign(&Mechanism::Sha512Hmac, oprf_key, b"m")
                .unwrap()
                .len(),
            64
        );
    });
}

#[test]
fn pkcs11_oprf_hmac_is_deterministic_per_message_and_token() {
    in_child_process(
        "pkcs11_oprf_hmac_is_deterministic_per_message_and_token",
        |token| {
            // SoftHSM lists tokens at C_Initialize: make the second one first.
            let other_token = token.sibling().unwrap();
            let hsm = provisioned(token);
            let other = provisioned(&other_token);

            let a = hsm.oprf_hmac(b"alice\0OprfKey").unwrap();
            assert_eq!(*hsm.oprf_hmac(b"alice\0OprfKey").unwrap(), *a);
            assert_ne!(*hsm.oprf_hmac(b"bob\0OprfKey").unwrap(), *a);
            assert_ne!(*hsm.oprf_hmac(b"").unwrap(), *a);
            assert_ne!(*other.oprf_hmac(b"alice\0OprfKey").unwrap(), *a);

            // Same labels on another token: the tag does not verify.
            let sealed = hsm.seal(AAD, b"secret").unwrap();
            let result = other.open(AAD, &sealed);
            assert!(matches!(result, Err(HsmError::Integrity)), "{result:?}");
        },
    );
}

#[test]
fn pkcs11_oprf_hmac_is_hmac_sha512_under_the_key() {
    in_child_process("pkcs11_oprf_hmac_is_hmac_sha512_under_the_key", |token| {
        // Import a known (sensitive, non-extractable) key under the OPRF label, so the
        // token's C_Sign can be compared with HMAC-SHA512 in software.
        let seed: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5c).collect();
        let session = raw_session(token);
        session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(b"oprf-v1".to_vec()),
                Attribute::Value(seed.clone()),
            ])
            .unwrap();
        let config = config(token);
        let created = Pkcs11Hsm::provision(&config).unwrap();
        assert!(created.seal_key_created && !created.oprf_key_created);
        let hsm = Pkcs11Hsm::connect(&config).unwrap();
        for message in [b"".as_slice(), b"alice\0OprfKey", &[7u8; 1000]] {
            assert_eq!(
                *hsm.oprf_hmac(message).unwrap(),
                hmac_sha512(&seed, message)
            );
        }
    });
}

#[test]
fn pkcs11_blob_under_another_key_label_is_an_unknown_key() {
    in_child_process(
        "pkcs11_blob_under_another_key_label_is_an_unknown_key",
        |token| {
            let v1 = provisioned(token);
            let mut config = config(token);
            config.seal_key_label = "seal-v2".into();
            Pkcs11Hsm::provision(&config).unwrap();
            let v2 = Pkcs11Hsm::connect(&config).unwrap();
            let sealed = v1.seal(AAD, b"old").unwrap();
            match v2.open(AAD, &sealed) {
                Err(HsmError::UnknownKey(id)) => assert_eq!(id, "seal-v1"),
                other => panic!("{other:?}"),
            }
            // Both keys live on: re-sealing under v2 is a read with v1 and a write with v2.
            let resealed = v2.seal(AAD, &v1.open(AAD, &sealed).unwrap()).unwrap();
            assert_eq!(v2.open(AAD, &resealed).unwrap().as_slice(), b"old");
        },
    );
}

#[test]
fn pkcs11_refuses_an_extractable_key() {
    in_child_process("pkcs11_refuses_an_extractable_key", |token| {
        let session = raw_session(token);
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Label(b"seal-v1".to_vec()),
                ],
            )
            .unwrap();
        let config = config(token);
        expect_config(Pkcs11Hsm::provision(&config), "non-extractable");
        // With a good OPRF key in place, connect refuses the bad sealing key too.
        let mut other = config.clone();
        other.seal_key_label = "seal-v2".into();
        Pkcs11Hsm::provision(&other).unwrap();
        expect_config(Pkcs11Hsm::connect(&config), "non-extractable");
        Pkcs11Hsm::connect(&other).unwrap();
    });
}

#[test]
fn pkcs11_configuration_errors_are_clear() {
    in_child_process("pkcs11_configuration_errors_are_clear", |token| {
        let good = config(token);
        Pkcs11Hsm::provision(&good).unwrap();

        let mut wrong_pin = good.clone();
        wrong_pin.user_pin = Zeroizing::new("not-the-pin".to_owned());
        expect_config(Pkcs11Hsm::connect(&wrong_pin), "wrong user PIN");

        let mut no_token = good.clone();
        no_token.token_label = "no-such-token".into();
        expect_config(
            Pkcs11Hsm::connect(&no_token),
            "no PKCS#11 token labelled 'no-such-token'",
        );
        // The message lists the tokens that do exist.
        expect_config(Pkcs11Hsm::connect(&no_token), token.label());

        let mut no_module = good.clone();
        no_module.module = "/usr/lib/nonexistent/libpkcs11.so".into();
        expect_config(
            Pkcs11Hsm::connect(&no_module),
            "/usr/lib/nonexistent/libpkcs11.so",
        );

        let mut no_key = good.clone();
        no_key.oprf_key_label = "oprf-v9".into();
        expect_config(
            Pkcs11Hsm::connect(&no_key),
            "no secret key labelled 'oprf-v9'",
        );

        // None of that disturbed the good configuration.
        let hsm = Pkcs11Hsm::connect(&good).unwrap();
        hsm.oprf_hmac(b"still fine").unwrap();
    });
}

fn expect_config<T: std::fmt::Debug>(result: Result<T, HsmError>, needle: &str) {
    match result {
        Err(HsmError::Config(message)) => assert!(message.contains(needle), "{message}"),
        other => panic!("expected a Config error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn pkcs11_missing_module_is_a_config_error() {
    // No SoftHSM needed: the module is never loaded.
    let config = Pkcs11Config::new(
        "/nonexistent/libsofthsm2.so",
        "any",
        Zeroizing::new("1234".to_owned()),
    );
    expect_config(Pkcs11Hsm::connect(&config), "/nonexistent/libsofthsm2.so");
    expect_config(Pkcs11Hsm::provision(&config), "/nonexistent/libsofthsm2.so");
}

#[test]
fn pkcs11_works_from_many_threads() {
    in_child_process("pkcs11_works_from_many_threads", |token| {
        let hsm = Arc::new(provisioned(token));
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let hsm = Arc::clone(&hsm);
                std::thread::spawn(move || {
                    let mac = hsm.oprf_hmac(&[t]).unwrap();
                    for i in 0..200u32 {
                        let aad = [t.to_be_bytes().as_slice(), &i.to_be_bytes()].concat();
                        let plaintext = format!("thread {t} blob {i}");
                        let sealed = hsm.seal(&aad, plaintext.as_bytes()).unwrap();
                        assert_eq!(
                            hsm.open(&aad, &sealed).unwrap().as_slice(),
                            plaintext.as_bytes()
                        );
                        if i % 20 == 0 {
                            assert_eq!(*hsm.oprf_hmac(&[t]).unwrap(), *mac);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

// ---------------------------------------------------------------- latency

fn time_per_op(rounds: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 {
        op();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        op();
    }
    start.elapsed() / rounds
}

fn print_latencies(name: &str, hsm: &dyn Hsm) {
    const ROUNDS: u32 = 5_000;
    // About the size of a cloud-wrapped identity key with its header.
    let plaintext = [0x42u8; 120];
    let sealed = hsm.seal(AAD, &plaintext).unwrap();
    let seal = time_per_op(ROUNDS, || {
        hsm.seal(AAD, &plaintext).unwrap();
    });
    let open = time_per_op(ROUNDS, || {
        hsm.open(AAD, &sealed).unwrap();
    });
    let oprf = time_per_op(ROUNDS, || {
        hsm.oprf_hmac(b"alice@example.org\0OprfKey").unwrap();
    });
    println!(
        "{name:>24}: seal {:>8.1} µs   open {:>8.1} µs   oprf_hmac {:>8.1} µs   (120-byte blob, {ROUNDS} rounds, one thread)",
        seal.as_secs_f64() * 1e6,
        open.as_secs_f64() * 1e6,
        oprf.as_secs_f64() * 1e6,
    );
}

#[test]
#[ignore = "a measurement, not a check: run with --ignored --nocapture (ideally --release)"]
fn latency() {
    in_child_process("latency", |token| {
        let (_dir, soft) = software();
        print_latencies("software key file", &soft);
        print_latencies("SoftHSMv2 via PKCS#11", &provisioned(token));
    });
}
