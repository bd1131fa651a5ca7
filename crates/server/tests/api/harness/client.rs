//! The client's side of every flow, run against a [`Server`]: registration with real
//! wraps of a fresh identity key, login, password change and recovery, and the
//! client-side results the tests pass around.

use sealpost_crypto::opaque::{self, ClientLoginState, OpaqueError};
use sealpost_crypto::{IdentityKey, RecoveryCode};
use sealpost_proto as proto;
use sealpost_proto::Bytes;

use super::{
    Answer, Server, WRONG, cloud_ctx, device, ids, login_start, pw, recovery_ctx, settings_blob,
};

impl Server {
    /// Registers `user` with real wraps of a fresh identity key.
    pub(crate) fn register(&self, user: &str, password: &str) -> Registered {
        let started = self.register_start(user, password);
        let finish = started.finish(user, password);
        self.post("/v1/register/finish", &finish.request)
            .no_content();
        Registered {
            user: user.to_owned(),
            identity: finish.identity,
            code: finish.code,
            server_public_key: finish.server_public_key,
        }
    }

    pub(crate) fn register_start(&self, user: &str, password: &str) -> RegistrationStarted {
        let (state, request) = opaque::client_registration_start(&pw(password)).unwrap();
        let started: proto::RegisterStarted = self.register_start_raw(user, request).json();
        RegistrationStarted {
            state: Some(state),
            id: started.registration_id,
            response: started.registration_response.0,
        }
    }

    /// Login, first message, with a KE1 from `password`.
    pub(crate) fn login_start(&self, user: &str, password: &str, device: &str) -> LoginStarted {
        let (state, ke1) = opaque::client_login_start(&pw(password)).unwrap();
        let started: proto::LoginStarted = self
            .post("/v1/login/start", &login_start(user, ke1, device))
            .json();
        LoginStarted {
            state,
            id: started.login_id,
            ke2: started.credential_response.0,
        }
    }

    /// A login start whose finish never comes.
    pub(crate) fn abandon(&self, user: &str) {
        self.login_start(user, WRONG, &device(99));
    }

    pub(crate) fn login_finish(&self, login_id: &str, ke3: &[u8]) -> Answer {
        self.post(
            "/v1/login/finish",
            &proto::LoginFinish {
                login_id: login_id.into(),
                credential_finalization: Bytes(ke3.to_vec()),
            },
        )
    }

    /// A whole login; checks that the cloud wrap it releases opens to `account`'s
    /// identity key under the export key.
    pub(crate) fn login(&self, account: &Registered, password: &str, device: &str) -> Session {
        let started = self.login_start(&account.user, password, device);
        let id = started.id.clone();
        let fin = started.client_finish(&account.user, password).unwrap();
        assert_eq!(fin.server_public_key, account.server_public_key);
        let finished: proto::LoginFinished = self.login_finish(&id, &fin.finalization).json();
        let identity = IdentityKey::unwrap_with_key(
            &opaque::cloud_kek(&fin.export_key),
            &cloud_ctx(&account.user),
            finished.cloud_wrap.as_slice(),
        )
        .unwrap();
        assert_eq!(identity, account.identity);
        Session {
            token: opaque::session_token(&fin.session_key).expose().to_vec(),
            finished,
        }
    }

    /// A whole password change from a signed-in device.
    pub(crate) fn change_password(&self, account: &Registered, token: &[u8], new: &str) {
        let (state, request) = opaque::client_registration_start(&pw(new)).unwrap();
        let started: proto::RegisterStarted = self.password_start_raw(token, request).json();
        let fin = opaque::client_registration_finish(
            state,
            &pw(new),
            started.registration_response.as_slice(),
            ids(&account.user),
        )
        .unwrap();
        assert_eq!(fin.server_public_key, account.server_public_key);
        let cloud_wrap = account
            .identity
            .wrap_with_key(
                &opaque::cloud_kek(&fin.export_key),
                &cloud_ctx(&account.user),
            )
            .unwrap();
        self.post_auth(
            "/v1/password/finish",
            token,
            &proto::PasswordFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
            },
        )
        .no_content();
    }

    /// Recovery, first message, with the recovery code; checks the recovery wrap.
    pub(crate) fn recovery_start(&self, account: &Registered, new: &str) -> RecoveryStarted {
        let (state, request) = opaque::client_registration_start(&pw(new)).unwrap();
        let started: proto::RecoveryStarted = self
            .recovery_start_raw(
                &account.user,
                account.code.auth_key().expose().to_vec(),
                request,
            )
            .json();
        let identity = IdentityKey::unwrap_with_recovery_code(
            &account.code,
            &recovery_ctx(&account.user),
            started.recovery_wrap.as_slice(),
        )
        .unwrap();
        assert_eq!(identity, account.identity);
        let fin = opaque::client_registration_finish(
            state,
            &pw(new),
            started.registration_response.as_slice(),
            ids(&account.user),
        )
        .unwrap();
        let cloud_wrap = identity
            .wrap_with_key(
                &opaque::cloud_kek(&fin.export_key),
                &cloud_ctx(&account.user),
            )
            .unwrap();
        RecoveryStarted {
            finish: proto::RecoveryFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
            },
        }
    }
}

/// Client-side results the tests pass around.
pub(crate) struct Registered {
    pub(crate) user: String,
    pub(crate) identity: IdentityKey,
    pub(crate) code: RecoveryCode,
    pub(crate) server_public_key: [u8; 32],
}

pub(crate) struct RegistrationStarted {
    pub(crate) state: Option<opaque::ClientRegistrationState>,
    pub(crate) id: String,
    pub(crate) response: Vec<u8>,
}

pub(crate) struct RegistrationFinish {
    pub(crate) request: proto::RegisterFinish,
    pub(crate) identity: IdentityKey,
    pub(crate) code: RecoveryCode,
    pub(crate) server_public_key: [u8; 32],
}

impl RegistrationStarted {
    /// Runs the client's half (Argon2id) and builds the finish request with real wraps.
    pub(crate) fn finish(mut self, user: &str, password: &str) -> RegistrationFinish {
        let fin = opaque::client_registration_finish(
            self.state.take().unwrap(),
            &pw(password),
            &self.response,
            ids(user),
        )
        .unwrap();
        let identity = IdentityKey::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let cloud_wrap = identity
            .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud_ctx(user))
            .unwrap();
        let recovery_wrap = identity
            .wrap_with_recovery_code(&code, &recovery_ctx(user))
            .unwrap();
        RegistrationFinish {
            request: proto::RegisterFinish {
                registration_id: self.id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(cloud_wrap),
                recovery_wrap: Bytes(recovery_wrap),
                recovery_verifier: Bytes(code.auth_verifier().to_vec()),
                settings: Bytes(settings_blob(user, 1)),
                device: None,
            },
            identity,
            code,
            server_public_key: fin.server_public_key,
        }
    }
}

pub(crate) struct LoginStarted {
    state: ClientLoginState,
    pub(crate) id: String,
    ke2: Vec<u8>,
}

impl LoginStarted {
    /// The client's half (Argon2id): KE3, or why the KE2 did not verify.
    pub(crate) fn client_finish(
        self,
        user: &str,
        password: &str,
    ) -> Result<opaque::LoginFinish, OpaqueError> {
        opaque::client_login_finish(self.state, &pw(password), &self.ke2, ids(user))
    }
}

pub(crate) struct Session {
    pub(crate) token: Vec<u8>,
    pub(crate) finished: proto::LoginFinished,
}

pub(crate) struct RecoveryStarted {
    pub(crate) finish: proto::RecoveryFinish,
}
