//! A small OPAQUE client for tests that run the server as a separate process: register
//! an account with real wraps of a fresh identity key, and sign in.

use std::time::Duration;

use reqwest::blocking::Client;
use sealpost_crypto::opaque::{self, Ids};
use sealpost_crypto::{IdentityKey, Password, Purpose, RecoveryCode, WrapContext};
use sealpost_proto as proto;
use sealpost_proto::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A server at `base` (`http://ADDR`) whose OPAQUE identity is `server_id`.
pub struct Api {
    pub base: String,
    pub server_id: String,
    http: Client,
}

impl Api {
    pub fn new(base: &str, server_id: &str) -> Self {
        Self {
            base: base.to_owned(),
            server_id: server_id.to_owned(),
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// POSTs `body`; the status and the body.
    pub fn post(&self, path: &str, body: &impl Serialize) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(proto::API_VERSION_HEADER, proto::API_VERSION.to_string())
            .json(body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
    }

    fn post_ok<R: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> R {
        let (status, bytes) = self.post(path, body);
        assert!(
            (200..300).contains(&status),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    fn ids<'a>(&'a self, user: &'a str) -> Ids<'a> {
        Ids {
            user: user.as_bytes(),
            server: self.server_id.as_bytes(),
        }
    }

    /// Registers `user`; the identity key made for it.
    pub fn register(&self, user: &str, password: &str) -> IdentityKey {
        let pw = Password::new(password).unwrap();
        let (state, request) = opaque::client_registration_start(&pw).unwrap();
        let started: proto::RegisterStarted = self.post_ok(
            "/v1/register/start",
            &proto::RegisterStart {
                user: user.into(),
                registration_request: Bytes(request),
            },
        );
        let fin = opaque::client_registration_finish(
            state,
            &pw,
            started.registration_response.as_slice(),
            self.ids(user),
        )
        .unwrap();
        let identity = IdentityKey::generate().unwrap();
        let code = RecoveryCode::generate().unwrap();
        let cloud = WrapContext::new(Purpose::IdentityByCloud, user.as_bytes());
        let recovery = WrapContext::new(Purpose::IdentityByRecovery, user.as_bytes());
        let (status, body) = self.post(
            "/v1/register/finish",
            &proto::RegisterFinish {
                registration_id: started.registration_id,
                registration_upload: Bytes(fin.upload),
                cloud_wrap: Bytes(
                    identity
                        .wrap_with_key(&opaque::cloud_kek(&fin.export_key), &cloud)
                        .unwrap(),
                ),
                recovery_wrap: Bytes(identity.wrap_with_recovery_code(&code, &recovery).unwrap()),
                recovery_verifier: Bytes(code.auth_verifier().to_vec()),
                settings: Bytes(b"settings v1".to_vec()),
                device: None,
            },
        );
        assert!(
            (200..300).contains(&status),
            "register: {status} {}",
            String::from_utf8_lossy(&body)
        );
        identity
    }

    /// Signs in as `device`; the session token, after checking that the cloud wrap opens
    /// to `identity`.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        identity: &IdentityKey,
        device: &str,
    ) -> Vec<u8> {
        let pw = Password::new(password).unwrap();
        let (state, ke1) = opaque::client_login_start(&pw).unwrap();
        let started: proto::LoginStarted = self.post_ok(
            "/v1/login/start",
            &proto::LoginStart {
                user: user.into(),
                credential_request: Bytes(ke1),
                device_id: device.into(),
                device_name: "package test".into(),
            },
        );
        let fin = opaque::client_login_finish(
            state,
            &pw,
            started.credential_response.as_slice(),
            self.ids(user),
        )
        .unwrap();
        let finished: proto::LoginFinished = self.post_ok(
            "/v1/login/finish",
            &proto::LoginFinish {
                login_id: started.login_id,
                credential_finalization: Bytes(fin.finalization),
            },
        );
        let opened = IdentityKey::unwrap_with_key(
            &opaque::cloud_kek(&fin.export_key),
            &WrapContext::new(Purpose::IdentityByCloud, user.as_bytes()),
            finished.cloud_wrap.as_slice(),
        )
        .unwrap();
        assert_eq!(&opened, identity);
        opaque::session_token(&fin.session_key).expose().to_vec()
    }
}
