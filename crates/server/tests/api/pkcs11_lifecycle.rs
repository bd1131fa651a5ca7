//! The whole account lifecycle through a PKCS#11 token (SoftHSMv2): registration,
//! login, settings compare-and-swap, a second device, a password change that signs the
//! other devices out, and recovery that ends every session.

use sealpost_crypto::opaque::OpaqueError;
use sealpost_proto as proto;
use sealpost_server::hsm::Hsm;
use sealpost_testkit::softhsm::in_child_process;

use crate::harness::{PW, PW2, Server, device, pkcs11, settings_blob};

#[test]
fn the_account_lifecycle_works_through_a_pkcs11_hsm() {
    in_child_process(
        "pkcs11_lifecycle::the_account_lifecycle_works_through_a_pkcs11_hsm",
        |token| {
            let dir = tempfile::tempdir().unwrap();
            let s = Server::try_start(&dir.path().join("server.sqlite3"), pkcs11(token)).unwrap();
            assert!(
                s.hsm().describe().contains(token.label()),
                "{}",
                s.hsm().describe()
            );

            let alice = s.register("alice", PW);
            let a = s.login(&alice, PW, &device(1));
            assert_eq!(a.finished.settings.version, 1);
            assert_eq!(a.finished.settings.blob.0, settings_blob("alice", 1));

            // Settings: compare-and-swap.
            let v: proto::SettingsVersion = s
                .put_settings(&a.token, 1, settings_blob("alice", 2))
                .json();
            assert_eq!(v.version, 2);
            let stale = s.put_settings(&a.token, 1, settings_blob("alice", 99));
            stale.expect(409, "version_conflict");
            assert!(stale.api_error().message.contains("version 2"));
            let settings: proto::Settings = s.get("/v1/settings", &a.token).json();
            assert_eq!(settings.version, 2);
            assert_eq!(settings.blob.0, settings_blob("alice", 2));

            // A second device; then a password change on the first signs it out.
            let b = s.login(&alice, PW, &device(2));
            s.change_password(&alice, &a.token, PW2);
            s.get("/v1/settings", &b.token).expect(401, "bad_session");
            s.get("/v1/settings", &a.token).json::<proto::Settings>();
            let started = s.login_start("alice", PW, &device(2));
            assert_eq!(
                started.client_finish("alice", PW).err(),
                Some(OpaqueError::InvalidLogin)
            );
            let b = s.login(&alice, PW2, &device(2));
            assert_eq!(b.finished.failed_attempts, 1);
            assert_eq!(b.finished.settings.version, 2);

            // Recovery: the recovery wrap opens with the code, a new password is set, every
            // session ends.
            let recovery = s.recovery_start(&alice, PW);
            s.post("/v1/recovery/finish", &recovery.finish).no_content();
            for t in [&a.token, &b.token] {
                s.get("/v1/devices", t).expect(401, "bad_session");
            }
            let c = s.login(&alice, PW, &device(3));
            assert_eq!(c.finished.failed_attempts, 0);
            let devices: proto::Devices = s.get("/v1/devices", &c.token).json();
            assert_eq!(devices.devices.len(), 3);
        },
    );
}
