//! Round trips and refusals of [`super`]: signatures, encryption, locked keys, armor.

use std::time::Duration;

use super::*;

fn key(uid: &str, password: Option<&str>) -> Cert {
    let password = password.map(|p| Passphrase::new(p.to_owned()));
    generate_key(
        &[uid.to_owned()],
        password.as_ref(),
        false,
        SystemTime::now(),
    )
    .unwrap()
}

fn certs(keys: &[Cert]) -> Vec<Cert> {
    extract_certs(keys.to_vec())
}

fn decrypt_with<'a>(keys: &'a [Cert], verify_with: &'a [Cert]) -> DecryptRequest<'a> {
    DecryptRequest {
        keys,
        passwords: &[],
        session_keys: &[],
        verify_with,
        window: TimeWindow::default(),
        now: SystemTime::now(),
        max_plaintext: 1 << 20,
    }
}

#[test]
fn detached_signatures_verify_in_both_modes_and_fail_on_other_data() {
    let alice = [key("Alice <alice@example.org>", None)];
    let now = SystemTime::now();
    for (mode, armored) in [(SigMode::Binary, true), (SigMode::Text, false)] {
        let sig = sign(b"hello\r\nworld\n", &alice, mode, armored, now).unwrap();
        assert_eq!(is_armored(&sig), armored);
        let found = verify(
            b"hello\r\nworld\n",
            &sig,
            &certs(&alice),
            TimeWindow::default(),
            now,
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mode, mode);
        assert_eq!(found[0].primary, alice[0].fingerprint());
        assert!(matches!(
            verify(
                b"hello world",
                &sig,
                &certs(&alice),
                TimeWindow::default(),
                now
            ),
            Err(SopError::NoSignature)
        ));
    }
    // A text signature ignores line-ending differences.
    let sig = sign(b"a\nb\n", &alice, SigMode::Text, true, now).unwrap();
    assert!(
        verify(
            b"a\r\nb\r\n",
            &sig,
            &certs(&alice),
            TimeWindow::default(),
            now
        )
        .is_ok()
    );
    // Outside the window it does not count.
    let early = TimeWindow {
        not_before: None,
        not_after: Some(now - Duration::from_secs(3600)),
    };
    assert!(matches!(
        verify(b"a\nb\n", &sig, &certs(&alice), early, now),
        Err(SopError::NoSignature)
    ));
    assert!(matches!(
        sign(&[0xff, 0xfe], &alice, SigMode::Text, true, now),
        Err(SopError::ExpectedText)
    ));
}

#[test]
fn encrypt_decrypt_with_key_password_and_session_key() {
    let alice = [key("alice@example.org", None)];
    let bob = [key("bob@example.org", None)];
    let now = SystemTime::now();
    let passwords = [Passphrase::new("sesame".into())];
    let req = EncryptRequest {
        recipients: &certs(&bob),
        passwords: &passwords,
        signers: &alice,
        mode: SigMode::Binary,
        armored: true,
        now,
    };
    let ct = encrypt(b"secret plans", &req).unwrap();
    let alice_certs = certs(&alice);

    let opened = decrypt(&ct, &decrypt_with(&bob, &alice_certs)).unwrap();
    assert_eq!(&opened.plaintext[..], b"secret plans");
    assert_eq!(opened.verifications.len(), 1);
    let sk = opened.session_key.unwrap().to_text();
    assert!(sk.starts_with("9:"), "{}", &*sk);

    // A password, with trailing whitespace as read from a file.
    let typed = [Passphrase::new("sesame\n".into())];
    let mut req = decrypt_with(&[], &[]);
    req.passwords = &typed;
    assert_eq!(&decrypt(&ct, &req).unwrap().plaintext[..], b"secret plans");

    // The session key alone.
    let sks = [SessionKeyText::parse(&sk).unwrap()];
    let mut req = decrypt_with(&[], &[]);
    req.session_keys = &sks;
    assert_eq!(&decrypt(&ct, &req).unwrap().plaintext[..], b"secret plans");

    // Someone else's key.
    assert!(matches!(
        decrypt(&ct, &decrypt_with(&alice, &[])),
        Err(SopError::CannotDecrypt(_))
    ));
}

#[test]
fn tampered_ciphertext_returns_no_plaintext() {
    let bob = [key("bob@example.org", None)];
    let req = EncryptRequest {
        recipients: &certs(&bob),
        passwords: &[],
        signers: &[],
        mode: SigMode::Binary,
        armored: false,
        now: SystemTime::now(),
    };
    let mut ct = encrypt(&[b'x'; 3000], &req).unwrap();
    let n = ct.len();
    ct[n - 40] ^= 0x01;
    match decrypt(&ct, &decrypt_with(&bob, &[])) {
        Err(SopError::CannotDecrypt(_) | SopError::BadData(_)) => {}
        other => panic!("tampered message opened: {other:?}"),
    }
}

#[test]
fn protected_keys_need_their_password() {
    let locked = [key("carol@example.org", Some("hunter2 hunter2"))];
    let now = SystemTime::now();
    assert!(matches!(
        sign(b"x", &locked, SigMode::Binary, true, now),
        Err(SopError::KeyIsProtected(_))
    ));
    let req = EncryptRequest {
        recipients: &certs(&locked),
        passwords: &[],
        signers: &[],
        mode: SigMode::Binary,
        armored: true,
        now,
    };
    let ct = encrypt(b"for carol", &req).unwrap();
    assert!(matches!(
        decrypt(&ct, &decrypt_with(&locked, &[])),
        Err(SopError::KeyIsProtected(_))
    ));
    let wrong = [unlock(locked[0].clone(), &[Passphrase::new("nope".into())])];
    assert!(matches!(
        decrypt(&ct, &decrypt_with(&wrong, &[])),
        Err(SopError::KeyIsProtected(_))
    ));
    let open = [unlock(
        locked[0].clone(),
        &[Passphrase::new("hunter2 hunter2".into())],
    )];
    assert_eq!(
        &decrypt(&ct, &decrypt_with(&open, &[])).unwrap().plaintext[..],
        b"for carol"
    );
    assert!(sign(b"x", &open, SigMode::Binary, true, now).is_ok());
}

#[test]
fn inline_signatures_round_trip_and_detach() {
    let alice = [key("alice@example.org", None)];
    let now = SystemTime::now();
    let text = b"Hello,\nworld!\n";
    for mode in [InlineMode::Binary, InlineMode::Text, InlineMode::Cleartext] {
        let signed = inline_sign(text, &alice, mode, true, now).unwrap();
        if mode == InlineMode::Cleartext {
            assert!(signed.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----"));
        }
        let (content, found) =
            inline_verify(&signed, &certs(&alice), TimeWindow::default(), now).unwrap();
        assert_eq!(found.len(), 1, "{mode:?}");
        assert_eq!(content.trim_ascii_end(), text.trim_ascii_end(), "{mode:?}");
        let (body, sigs) = inline_detach(&signed, true).unwrap();
        assert!(
            verify(&body, &sigs, &certs(&alice), TimeWindow::default(), now).is_ok(),
            "{mode:?}"
        );
        let other = [key("mallory@example.org", None)];
        assert!(matches!(
            inline_verify(&signed, &certs(&other), TimeWindow::default(), now),
            Err(SopError::NoSignature)
        ));
    }
}

#[test]
fn armor_and_dearmor_are_idempotent_inverses() {
    let alice = [key("alice@example.org", None)];
    let binary = serialize_certs(&certs(&alice), false, false).unwrap();
    let armored = armor(&binary).unwrap();
    assert!(armored.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert_eq!(armor(&armored).unwrap(), armored);
    assert_eq!(dearmor(&armored).unwrap(), binary);
    assert_eq!(dearmor(&binary).unwrap(), binary);
    assert!(matches!(dearmor(b"not openpgp"), Err(SopError::BadData(_))));
    assert!(matches!(parse_keys(&binary), Err(SopError::BadData(_))));
}

#[test]
fn key_passwords_change_and_keys_revoke() {
    let now = SystemTime::now();
    let a = Passphrase::new("first password".into());
    let b = Passphrase::new("second password".into());
    let locked = vec![key("dave@example.org", Some("first password"))];
    assert!(matches!(
        change_key_password(locked.clone(), std::slice::from_ref(&b), None),
        Err(SopError::KeyIsProtected(_))
    ));
    let relocked = change_key_password(locked, std::slice::from_ref(&a), Some(&b)).unwrap();
    assert!(matches!(
        sign(b"x", &relocked, SigMode::Binary, true, now),
        Err(SopError::KeyIsProtected(_))
    ));
    let open = [unlock(relocked[0].clone(), std::slice::from_ref(&b))];
    assert!(sign(b"x", &open, SigMode::Binary, true, now).is_ok());
    let plain = change_key_password(relocked, &[a, b], None).unwrap();
    assert!(sign(b"x", &plain, SigMode::Binary, true, now).is_ok());

    let revoked = revoke_keys(&plain, now).unwrap();
    assert!(!revoked[0].is_tsk());
    let req = EncryptRequest {
        recipients: &revoked,
        passwords: &[],
        signers: &[],
        mode: SigMode::Binary,
        armored: true,
        now,
    };
    assert!(matches!(
        encrypt(b"x", &req),
        Err(SopError::CertCannotEncrypt(_))
    ));
}
