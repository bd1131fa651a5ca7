//! Round trips and tampering: every byte of a wrap matters.

use super::*;

fn key() -> SecretBytes<32> {
    SecretBytes::random().unwrap()
}

const OWNER: &[u8] = b"profile-0001";

#[test]
fn direct_round_trip() {
    let k = key();
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER).with_item(b"imap/password");
    let blob = seal_with_key(&k, &ctx, b"s3cret").unwrap();
    assert_eq!(open_with_key(&k, &ctx, &blob).unwrap().expose(), b"s3cret");
    // Empty plaintexts are fine too.
    let blob = seal_with_key(&k, &ctx, b"").unwrap();
    assert!(open_with_key(&k, &ctx, &blob).unwrap().is_empty());
}

#[test]
fn nonces_are_fresh() {
    let k = key();
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER);
    assert_ne!(
        seal_with_key(&k, &ctx, b"x").unwrap(),
        seal_with_key(&k, &ctx, b"x").unwrap()
    );
}

#[test]
fn every_bit_flip_is_detected() {
    let k = key();
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER).with_item(b"n");
    let blob = seal_with_key(&k, &ctx, b"a secret value").unwrap();
    for i in 0..blob.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = blob.clone();
            bad[i] ^= bit;
            assert!(
                open_with_key(&k, &ctx, &bad).is_err(),
                "byte {i} bit {bit:#x} went unnoticed"
            );
        }
    }
}

#[test]
fn every_field_of_a_password_wrap_is_protected() {
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let ctx = WrapContext::new(Purpose::IdentityByPassword, OWNER);
    let blob = seal_with_password(&pw, Argon2Params::SHIPPED, &ctx, &[7u8; 64]).unwrap();
    assert_eq!(
        open_with_password(&pw, &ctx, &blob).unwrap().expose(),
        &[7u8; 64]
    );

    // Offsets per the format: magic 0..4, version 4, aead 5, kdf 6, m 7..11, t 11..15,
    // p 15..19, salt 19..35, nonce 35..59, ciphertext 59..
    let expect_blob = |bad: Vec<u8>, i: usize, check: &dyn Fn(CryptoError) -> bool| {
        let err = open_with_password(&pw, &ctx, &bad).unwrap_err();
        assert!(check(err.clone()), "byte {i}: {err:?}");
    };
    let expect = |i: usize, xor: u8, check: &dyn Fn(CryptoError) -> bool| {
        let mut bad = blob.clone();
        bad[i] ^= xor;
        expect_blob(bad, i, check)
    };
    expect(0, 1, &|e| e == CryptoError::BadMagic);
    expect(4, 1, &|e| matches!(e, CryptoError::UnsupportedVersion(_)));
    expect(5, 2, &|e| {
        matches!(e, CryptoError::UnsupportedAlgorithm { what: "AEAD", .. })
    });
    expect(6, 4, &|e| {
        matches!(e, CryptoError::UnsupportedAlgorithm { what: "KDF", .. })
    });
    assert_eq!(&blob[7..11], &Argon2Params::SHIPPED.m_kib.to_be_bytes());
    // Memory cost lowered below the floor (to 32 MiB): refused before Argon2 runs.
    let mut weak = blob.clone();
    weak[7..11].copy_from_slice(&(32u32 * 1024).to_be_bytes());
    expect_blob(weak, 8, &|e| matches!(e, CryptoError::WeakKdfParams { .. }));
    // Memory cost lowered but still above the floor: Argon2 runs, the tag fails.
    let mut lower = blob.clone();
    lower[7..11].copy_from_slice(&(64u32 * 1024).to_be_bytes());
    expect_blob(lower, 8, &|e| e == CryptoError::Authentication);
    // Memory cost raised absurdly: refused, not run.
    expect(7, 0x80, &|e| {
        matches!(e, CryptoError::ExcessiveKdfParams { .. })
    });
    // t lowered from 3 to 2.
    expect(14, 1, &|e| matches!(e, CryptoError::WeakKdfParams { .. }));
    // p changed (4 → 5): still valid parameters, so Argon2 runs and the tag fails.
    expect(18, 1, &|e| e == CryptoError::Authentication);
    expect(20, 1, &|e| e == CryptoError::Authentication); // salt
    expect(40, 1, &|e| e == CryptoError::Authentication); // nonce
    expect(60, 1, &|e| e == CryptoError::Authentication); // ciphertext
    let last = blob.len() - 1;
    expect(last, 1, &|e| e == CryptoError::Authentication); // tag
}

#[test]
fn every_truncation_is_detected() {
    let k = key();
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER);
    let blob = seal_with_key(&k, &ctx, b"value").unwrap();
    for len in 0..blob.len() {
        let err = open_with_key(&k, &ctx, &blob[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::Truncated { .. } | CryptoError::Authentication
            ),
            "len {len}: {err:?}"
        );
    }
    // Appended bytes are not ignored either.
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        open_with_key(&k, &ctx, &longer).unwrap_err(),
        CryptoError::Authentication
    );
}

#[test]
fn wrong_associated_data_is_detected() {
    let k = key();
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER).with_item(b"imap/password");
    let blob = seal_with_key(&k, &ctx, b"v").unwrap();
    for other in [
        WrapContext::new(Purpose::Settings, OWNER).with_item(b"imap/password"),
        WrapContext::new(Purpose::VaultSecret, OWNER).with_item(b"smtp/password"),
        WrapContext::new(Purpose::VaultSecret, OWNER),
        // Moving bytes between owner and item must not produce the same context.
        WrapContext::new(Purpose::VaultSecret, b"profile-0001imap/").with_item(b"password"),
    ] {
        assert_eq!(
            open_with_key(&k, &other, &blob).unwrap_err(),
            CryptoError::Authentication
        );
    }
}

#[test]
fn a_blob_from_another_profile_is_refused() {
    // Same password, same purpose, another owner: the blob must not open.
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let mine = WrapContext::new(Purpose::IdentityByPassword, b"profile-A");
    let theirs = WrapContext::new(Purpose::IdentityByPassword, b"profile-B");
    let their_blob = seal_with_password(&pw, Argon2Params::SHIPPED, &theirs, &[1u8; 64]).unwrap();
    assert_eq!(
        open_with_password(&pw, &mine, &their_blob).unwrap_err(),
        CryptoError::Authentication
    );
}

#[test]
fn wrong_key_and_wrong_password_fail() {
    let ctx = WrapContext::new(Purpose::VaultSecret, OWNER);
    let blob = seal_with_key(&key(), &ctx, b"v").unwrap();
    assert_eq!(
        open_with_key(&key(), &ctx, &blob).unwrap_err(),
        CryptoError::Authentication
    );

    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let wrong = Password::new("tundra mosaic gravel whimsy plank!").unwrap();
    let ctx = WrapContext::new(Purpose::IdentityByPassword, OWNER);
    let blob = seal_with_password(&pw, Argon2Params::SHIPPED, &ctx, b"v").unwrap();
    assert_eq!(
        open_with_password(&wrong, &ctx, &blob).unwrap_err(),
        CryptoError::Authentication
    );
}

#[test]
fn a_password_wrap_is_not_opened_as_a_direct_one() {
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let ctx = WrapContext::new(Purpose::IdentityByPassword, OWNER);
    let blob = seal_with_password(&pw, Argon2Params::SHIPPED, &ctx, b"v").unwrap();
    assert!(matches!(
        open_with_key(&key(), &ctx, &blob),
        Err(CryptoError::WrongKdf { .. })
    ));
}
