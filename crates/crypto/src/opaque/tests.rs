//! Both halves against each other, and the HSM-held seed against opaque-ke's own path.

use hmac::{Hmac, Mac};

use super::*;

const SERVER: &[u8] = b"sealpost-test";

/// A software stand-in for the HSM's HMAC key, for these unit tests only.
fn hmac(seed: &[u8; 64], message: &[u8]) -> [u8; 64] {
    let mut mac = Hmac::<Sha512>::new_from_slice(seed).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn km(seed: &[u8; 64], user: &[u8]) -> SecretBytes<32> {
    key_material_from_hmac(&hmac(seed, &oprf_hmac_message(user)))
}

fn register(
    keys: &ServerKeys,
    seed: &[u8; 64],
    user: &[u8],
    pw: &Password,
) -> (Vec<u8>, RegistrationFinish) {
    let ids = Ids {
        user,
        server: SERVER,
    };
    let (state, req) = client_registration_start(pw).unwrap();
    let resp = server_registration_start(keys, &km(seed, user), &req).unwrap();
    let fin = client_registration_finish(state, pw, &resp, ids).unwrap();
    (server_registration_finish(&fin.upload).unwrap(), fin)
}

fn login(
    keys: &ServerKeys,
    seed: &[u8; 64],
    user: &[u8],
    record: Option<&[u8]>,
    pw: &Password,
) -> Result<(LoginFinish, SecretBytes<64>), OpaqueError> {
    let ids = Ids {
        user,
        server: SERVER,
    };
    let (state, ke1) = client_login_start(pw).unwrap();
    let (sstate, ke2) = server_login_start(keys, &km(seed, user), record, &ke1, ids).unwrap();
    let fin = client_login_finish(state, pw, &ke2, ids)?;
    let sk = server_login_finish(&sstate.0, &fin.finalization, ids)?;
    Ok((fin, sk))
}

#[test]
fn register_then_login() {
    let (keys, _) = ServerKeys::generate().unwrap();
    let seed = [7u8; 64];
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (record, reg) = register(&keys, &seed, b"alice", &pw);
    assert_eq!(reg.server_public_key, keys.public_key());
    let (fin, server_session) = login(&keys, &seed, b"alice", Some(&record), &pw).unwrap();
    assert_eq!(fin.session_key, server_session);
    assert_eq!(
        fin.export_key, reg.export_key,
        "the export key is stable across logins"
    );
    assert_eq!(
        session_token(&fin.session_key),
        session_token(&server_session)
    );
    assert_eq!(cloud_kek(&fin.export_key), cloud_kek(&reg.export_key));

    // A second login has a fresh session key but the same export key.
    let (fin2, _) = login(&keys, &seed, b"alice", Some(&record), &pw).unwrap();
    assert_ne!(fin2.session_key, fin.session_key);
    assert_eq!(fin2.export_key, fin.export_key);
}

#[test]
fn wrong_password_unknown_user_and_wrong_server_fail_alike() {
    let (keys, _) = ServerKeys::generate().unwrap();
    let seed = [9u8; 64];
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (record, _) = register(&keys, &seed, b"alice", &pw);
    let wrong = Password::new("tundra mosaic gravel whimsy plank?").unwrap();
    assert_eq!(
        login(&keys, &seed, b"alice", Some(&record), &wrong).err(),
        Some(OpaqueError::InvalidLogin)
    );
    // Unknown user: the server answers with a fake record; the client fails the same way.
    assert_eq!(
        login(&keys, &seed, b"mallory", None, &pw).err(),
        Some(OpaqueError::InvalidLogin)
    );
    // Another server key pair (an impostor without the record's server key).
    let (other, _) = ServerKeys::generate().unwrap();
    assert_eq!(
        login(&other, &seed, b"alice", Some(&record), &pw).err(),
        Some(OpaqueError::InvalidLogin)
    );
    // Another OPRF seed (a server without the HSM).
    assert_eq!(
        login(&keys, &[1u8; 64], b"alice", Some(&record), &pw).err(),
        Some(OpaqueError::InvalidLogin)
    );
}

#[test]
fn a_fake_answer_looks_like_a_real_one() {
    let (keys, _) = ServerKeys::generate().unwrap();
    let seed = [3u8; 64];
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (record, _) = register(&keys, &seed, b"alice", &pw);
    let ids = Ids {
        user: b"alice",
        server: SERVER,
    };
    let (_, ke1) = client_login_start(&pw).unwrap();
    let (_, real) =
        server_login_start(&keys, &km(&seed, b"alice"), Some(&record), &ke1, ids).unwrap();
    let ids = Ids {
        user: b"nobody",
        server: SERVER,
    };
    let (_, fake) = server_login_start(&keys, &km(&seed, b"nobody"), None, &ke1, ids).unwrap();
    assert_eq!(real.len(), fake.len());
}

#[test]
fn the_hsm_key_material_matches_opaque_ke_with_the_seed_in_memory() {
    // opaque-ke's own path: a ServerSetup that holds the seed. Its serialization starts
    // with the 64-byte seed; with the same seed our HMAC path must give the same OPRF
    // evaluation, so registrations made either way are interchangeable.
    let setup = ServerSetup::<Suite>::new(&mut OsRng);
    let bytes = setup.serialize();
    let seed: [u8; 64] = bytes[..64].try_into().unwrap();
    let sk = &bytes[64..96];
    let keys = ServerKeys::from_private_key(sk).unwrap();

    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (_, req) = client_registration_start(&pw).unwrap();
    let theirs = ServerRegistration::<Suite>::start(
        &setup,
        RegistrationRequest::deserialize(&req).unwrap(),
        b"alice",
    )
    .unwrap()
    .message
    .serialize()
    .to_vec();
    let ours = server_registration_start(&keys, &km(&seed, b"alice"), &req).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn server_keys_round_trip_and_reject_garbage() {
    let (keys, sk) = ServerKeys::generate().unwrap();
    let again = ServerKeys::from_private_key(sk.expose()).unwrap();
    assert_eq!(keys.public_key(), again.public_key());
    assert!(ServerKeys::from_private_key(&[0u8; 32]).is_err());
    assert!(ServerKeys::from_private_key(&sk.expose()[..31]).is_err());
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let (keys, _) = ServerKeys::generate().unwrap();
    let k = km(&[0u8; 64], b"alice");
    let ids = Ids {
        user: b"alice",
        server: SERVER,
    };
    for junk in [&b""[..], &[0u8; 5], &[0xffu8; 96], &[0u8; 1000]] {
        assert!(server_registration_start(&keys, &k, junk).is_err());
        assert!(server_registration_finish(junk).is_err());
        assert!(server_login_start(&keys, &k, None, junk, ids).is_err());
        assert!(server_login_start(&keys, &k, Some(junk), &[0u8; 96], ids).is_err());
        assert!(server_login_finish(junk, junk, ids).is_err());
    }
    // Trailing bytes after a valid message are refused too.
    let pw = Password::new("tundra mosaic gravel whimsy plank").unwrap();
    let (_, mut ke1) = client_login_start(&pw).unwrap();
    ke1.push(0);
    assert_eq!(
        server_login_start(&keys, &k, None, &ke1, ids).err(),
        Some(OpaqueError::Malformed("credential request"))
    );
}
