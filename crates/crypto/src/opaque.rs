//! OPAQUE (RFC 9807) with one cipher suite: both halves of the protocol, pure.
//!
//! Suite: Ristretto255 for the OPRF and 3DH, SHA-512, and Argon2id at
//! [`KSF_PARAMS`] as the key-stretching function, so a thief of the server's
//! database pays the same per guess as against the local vault — and cannot even start
//! without the OPRF key, which the server derives inside its HSM.
//!
//! Messages cross this module as bytes (they travel over HTTP); states too, so a server
//! can keep a pending login in its store.
//!
//! The server's OPRF seed never has to be in memory: `ServerRegistration::start` and
//! `ServerLogin` take the per-user *key material*, which is
//! `HKDF-Expand(seed, user ‖ "OprfKey")` — exactly one block of HMAC-SHA512 over
//! [`oprf_hmac_message`], which an HSM can compute with a non-extractable key; pass its
//! output to [`key_material_from_hmac`].
//!
//! After a login both sides hold a 64-byte session key; [`session_token`] turns it into
//! the bearer token, so no token is ever sent by the server. The client also gets the
//! `export_key`, which never leaves it; [`cloud_kek`] derives the key that wraps the
//! identity key for the server.

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use opaque_ke::generic_array::GenericArray;
use opaque_ke::key_exchange::group::Group;
use opaque_ke::key_exchange::tripledh::DiffieHellman;
use opaque_ke::keypair::{KeyPair, PublicKey};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, RegistrationRequest, RegistrationResponse, RegistrationUpload,
    Ristretto255, ServerLogin, ServerLoginParameters, ServerRegistration, ServerSetup, TripleDh,
};
use rand::rngs::OsRng;
use sha2::{Sha256, Sha512};
use zeroize::Zeroize;

use crate::kdf::Argon2Params;
use crate::{Password, SecretBytes, SubKey};

/// The KSF's Argon2id parameters. Part of every registration: changing them means every
/// user registers again, so a new value comes with a new [`KSF_ID`].
pub const KSF_PARAMS: Argon2Params = Argon2Params::SHIPPED;
/// Names [`KSF_PARAMS`] on the wire, so client and server can tell a mismatch.
pub const KSF_ID: &str = "argon2id-m262144-t3-p4";
/// Length of the per-user OPRF key material.
pub const KEY_MATERIAL_LEN: usize = 32;
/// Length of the server's public key.
pub const PUBLIC_KEY_LEN: usize = 32;

const OPRF_KEY_INFO: &[u8] = b"OprfKey";
const CLOUD_KEK_INFO: &[u8] = b"sealpost/v1/cloud-kek";
const SESSION_TOKEN_INFO: &[u8] = b"sealpost/v1/session-token";

/// The one cipher suite.
pub struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, Sha512>;
    type Ksf = Argon2<'static>;
}

type Sk = <Ristretto255 as Group>::Sk;

/// What can go wrong in OPAQUE.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpaqueError {
    /// The password is wrong, or the server is not the one we registered with (its MAC
    /// or key did not verify). Indistinguishable on purpose.
    #[error("login failed: wrong password, or the server is not the one registered with")]
    InvalidLogin,
    /// A message or state could not be parsed.
    #[error("malformed OPAQUE {0}")]
    Malformed(&'static str),
    /// The protocol refused to continue (reflected element, bad point).
    #[error("OPAQUE protocol error: {0}")]
    Protocol(String),
}

fn protocol<E: std::fmt::Display>(e: E) -> OpaqueError {
    OpaqueError::Protocol(e.to_string())
}

fn ksf() -> Result<Argon2<'static>, OpaqueError> {
    let p = KSF_PARAMS;
    let params = Params::new(p.m_kib, p.t, p.p, None).map_err(protocol)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The identities bound into the key exchange: the normalised user name and the
/// server's identity (its configured name).
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a> {
    /// The credential identifier (normalised user name).
    pub user: &'a [u8],
    /// The server's identity.
    pub server: &'a [u8],
}

impl<'a> Ids<'a> {
    fn opaque(&self) -> Identifiers<'a> {
        Identifiers {
            client: Some(self.user),
            server: Some(self.server),
        }
    }
}

// ---------------------------------------------------------------- client

/// A registration in progress on the client.
pub struct ClientRegistrationState(ClientRegistration<Suite>);

/// What registration gives the client.
pub struct RegistrationFinish {
    /// The message to upload (the server stores it as the account's record).
    pub upload: Vec<u8>,
    /// Never leaves the client: the root of the cloud KEK.
    pub export_key: SecretBytes<64>,
    /// The server's public key, to pin.
    pub server_public_key: [u8; PUBLIC_KEY_LEN],
}

/// Starts a registration: returns the state and the request to send.
pub fn client_registration_start(
    password: &Password,
) -> Result<(ClientRegistrationState, Vec<u8>), OpaqueError> {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password.expose().as_bytes())
        .map_err(protocol)?;
    Ok((
        ClientRegistrationState(start.state),
        start.message.serialize().to_vec(),
    ))
}

/// Finishes a registration with the server's response. Runs the KSF (Argon2id).
pub fn client_registration_finish(
    state: ClientRegistrationState,
    password: &Password,
    response: &[u8],
    ids: Ids<'_>,
) -> Result<RegistrationFinish, OpaqueError> {
    let response = exact(
        response,
        "registration response",
        |b| RegistrationResponse::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let ksf = ksf()?;
    let finish = state
        .0
        .finish(
            &mut OsRng,
            password.expose().as_bytes(),
            response,
            ClientRegistrationFinishParameters::new(ids.opaque(), Some(&ksf)),
        )
        .map_err(protocol)?;
    Ok(RegistrationFinish {
        upload: finish.message.serialize().to_vec(),
        export_key: secret64(&finish.export_key)?,
        server_public_key: public_key_bytes(&finish.server_s_pk)?,
    })
}

/// A login in progress on the client.
pub struct ClientLoginState(ClientLogin<Suite>);

/// What a successful login gives the client.
pub struct LoginFinish {
    /// The last message, to send to the server.
    pub finalization: Vec<u8>,
    /// Shared with the server: the source of the session token.
    pub session_key: SecretBytes<64>,
    /// Never leaves the client: the same at every login with the same password.
    pub export_key: SecretBytes<64>,
    /// The server's public key; compare with the pinned one.
    pub server_public_key: [u8; PUBLIC_KEY_LEN],
}

/// Starts a login: returns the state and the first message (KE1).
pub fn client_login_start(password: &Password) -> Result<(ClientLoginState, Vec<u8>), OpaqueError> {
    let start =
        ClientLogin::<Suite>::start(&mut OsRng, password.expose().as_bytes()).map_err(protocol)?;
    Ok((
        ClientLoginState(start.state),
        start.message.serialize().to_vec(),
    ))
}

/// Finishes a login with the server's KE2. Runs the KSF. A wrong password gives
/// [`OpaqueError::InvalidLogin`].
pub fn client_login_finish(
    state: ClientLoginState,
    password: &Password,
    response: &[u8],
    ids: Ids<'_>,
) -> Result<LoginFinish, OpaqueError> {
    let response = exact(
        response,
        "credential response",
        |b| CredentialResponse::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let ksf = ksf()?;
    let finish = state
        .0
        .finish(
            &mut OsRng,
            password.expose().as_bytes(),
            response,
            ClientLoginFinishParameters::new(None, ids.opaque(), Some(&ksf)),
        )
        .map_err(|e| match e {
            opaque_ke::errors::ProtocolError::InvalidLoginError => OpaqueError::InvalidLogin,
            other => protocol(other),
        })?;
    Ok(LoginFinish {
        finalization: finish.message.serialize().to_vec(),
        session_key: secret64(&finish.session_key)?,
        export_key: secret64(&finish.export_key)?,
        server_public_key: public_key_bytes(&finish.server_s_pk)?,
    })
}

/// The key that wraps the identity key for the server: HKDF-SHA256 of the export key.
pub fn cloud_kek(export_key: &SecretBytes<64>) -> SubKey {
    let hk = Hkdf::<Sha256>::new(None, export_key.expose());
    let mut kek = SecretBytes::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(CLOUD_KEK_INFO, kek.expose_mut());
    kek
}

/// The bearer token both sides derive from the session key.
pub fn session_token(session_key: &SecretBytes<64>) -> SecretBytes<32> {
    let hk = Hkdf::<Sha256>::new(None, session_key.expose());
    let mut token = SecretBytes::new([0u8; 32]);
    let _ = hk.expand(SESSION_TOKEN_INFO, token.expose_mut());
    token
}

// ---------------------------------------------------------------- server

/// The server's AKE private key, in memory only after the HSM has unsealed it.
#[derive(Clone)]
struct AkeKey(Sk);

/// Stands for the OPRF seed, which lives in the HSM: the server never holds it.
#[derive(Clone)]
struct HsmSeed;

/// The server's OPAQUE key pair (its half of 3DH). The OPRF seed is not in here.
pub struct ServerKeys {
    setup: ServerSetup<Suite, AkeKey, HsmSeed>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl ServerKeys {
    /// A new key pair. Returns it and the private key bytes to seal and store.
    pub fn generate() -> Result<(Self, SecretBytes<32>), OpaqueError> {
        let sk = Ristretto255::random_sk(&mut OsRng);
        let mut bytes = SecretBytes::new([0u8; 32]);
        bytes
            .expose_mut()
            .copy_from_slice(&Ristretto255::serialize_sk(&sk));
        Ok((Self::from_sk(sk)?, bytes))
    }

    /// The key pair from stored private key bytes.
    pub fn from_private_key(bytes: &[u8]) -> Result<Self, OpaqueError> {
        let mut input = bytes;
        let sk = Ristretto255::deserialize_take_sk(&mut input)
            .map_err(|_| OpaqueError::Malformed("server private key"))?;
        if !input.is_empty() {
            return Err(OpaqueError::Malformed("server private key"));
        }
        Self::from_sk(sk)
    }

    fn from_sk(sk: Sk) -> Result<Self, OpaqueError> {
        let pk_bytes = Ristretto255::serialize_pk(&Ristretto255::public_key(&sk));
        let pk = PublicKey::<Ristretto255>::deserialize(&pk_bytes).map_err(protocol)?;
        let public = public_key_bytes(&pk)?;
        let setup = ServerSetup::new_with_key_pair_and_seed(
            &mut OsRng,
            KeyPair::new(AkeKey(sk), pk),
            HsmSeed,
        );
        Ok(Self { setup, public })
    }

    /// The public key clients pin.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }
}

/// What the HSM must HMAC-SHA512 (under the OPRF seed) for user `credential_id`: the
/// first HKDF-Expand block, `info ‖ 0x01` with `info = credential_id ‖ "OprfKey"`.
pub fn oprf_hmac_message(credential_id: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(credential_id.len() + OPRF_KEY_INFO.len() + 1);
    m.extend_from_slice(credential_id);
    m.extend_from_slice(OPRF_KEY_INFO);
    m.push(1);
    m
}

/// The per-user key material from the HSM's HMAC output (its first 32 bytes).
pub fn key_material_from_hmac(hmac: &[u8; 64]) -> SecretBytes<KEY_MATERIAL_LEN> {
    let mut km = SecretBytes::new([0u8; KEY_MATERIAL_LEN]);
    km.expose_mut().copy_from_slice(
        hmac.get(..KEY_MATERIAL_LEN)
            .unwrap_or(&[0u8; KEY_MATERIAL_LEN]),
    );
    km
}

fn key_material(
    km: &SecretBytes<KEY_MATERIAL_LEN>,
) -> GenericArray<u8, opaque_ke::generic_array::typenum::U32> {
    GenericArray::clone_from_slice(km.expose())
}

/// The server's answer to a registration request.
pub fn server_registration_start(
    keys: &ServerKeys,
    key_material_: &SecretBytes<KEY_MATERIAL_LEN>,
    request: &[u8],
) -> Result<Vec<u8>, OpaqueError> {
    let request = exact(
        request,
        "registration request",
        |b| RegistrationRequest::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let start = ServerRegistration::<Suite>::start_with_key_material(
        &keys.setup,
        key_material(key_material_),
        request,
    )
    .map_err(protocol)?;
    Ok(start.message.serialize().to_vec())
}

/// Checks an uploaded registration and returns the record to store.
pub fn server_registration_finish(upload: &[u8]) -> Result<Vec<u8>, OpaqueError> {
    let upload = exact(
        upload,
        "registration upload",
        |b| RegistrationUpload::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    Ok(ServerRegistration::<Suite>::finish(upload)
        .serialize()
        .to_vec())
}

/// The server's answer to KE1. `record` is `None` for an unknown (or locked) user: the
/// answer is then a fake one, indistinguishable from a real one. Returns the state to
/// keep (secret) and KE2 to send.
pub fn server_login_start(
    keys: &ServerKeys,
    key_material_: &SecretBytes<KEY_MATERIAL_LEN>,
    record: Option<&[u8]>,
    ke1: &[u8],
    ids: Ids<'_>,
) -> Result<(SecretVecState, Vec<u8>), OpaqueError> {
    let record = record
        .map(|r| {
            exact(
                r,
                "record",
                |b| ServerRegistration::<Suite>::deserialize(b).ok(),
                |v| v.serialize().len(),
            )
        })
        .transpose()?;
    let ke1 = exact(
        ke1,
        "credential request",
        |b| CredentialRequest::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let builder = ServerLogin::builder_with_key_material(
        &mut OsRng,
        &keys.setup,
        key_material(key_material_),
        record,
        ke1,
        ServerLoginParameters {
            context: None,
            identifiers: ids.opaque(),
        },
    )
    .map_err(protocol)?;
    let client_e_pk = builder.data();
    let shared = builder
        .private_key()
        .0
        .diffie_hellman(client_e_pk.to_group_type());
    let start = builder.build(shared).map_err(protocol)?;
    Ok((
        SecretVecState(start.state.serialize().to_vec()),
        start.message.serialize().to_vec(),
    ))
}

/// A serialized server login state: secret until the login finishes.
pub struct SecretVecState(pub Vec<u8>);

impl Drop for SecretVecState {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Checks KE3 against a stored state; on success returns the session key.
pub fn server_login_finish(
    state: &[u8],
    finalization: &[u8],
    ids: Ids<'_>,
) -> Result<SecretBytes<64>, OpaqueError> {
    let state = exact(
        state,
        "login state",
        |b| ServerLogin::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let fin = exact(
        finalization,
        "credential finalization",
        |b| CredentialFinalization::<Suite>::deserialize(b).ok(),
        |v| v.serialize().len(),
    )?;
    let finish = state
        .finish(
            fin,
            ServerLoginParameters {
                context: None,
                identifiers: ids.opaque(),
            },
        )
        .map_err(|e| match e {
            opaque_ke::errors::ProtocolError::InvalidLoginError => OpaqueError::InvalidLogin,
            other => protocol(other),
        })?;
    secret64(&finish.session_key)
}

/// Deserialises `bytes` as a `T` and insists that all of them were used: opaque-ke's
/// parsers ignore trailing bytes, and a message with a tail is not the message we expect.
fn exact<T>(
    bytes: &[u8],
    what: &'static str,
    parse: impl Fn(&[u8]) -> Option<T>,
    len: impl Fn(&T) -> usize,
) -> Result<T, OpaqueError> {
    let value = parse(bytes).ok_or(OpaqueError::Malformed(what))?;
    if len(&value) != bytes.len() {
        return Err(OpaqueError::Malformed(what));
    }
    Ok(value)
}

fn secret64(bytes: &[u8]) -> Result<SecretBytes<64>, OpaqueError> {
    SecretBytes::from_slice(bytes).ok_or(OpaqueError::Malformed("64-byte output"))
}

fn public_key_bytes(pk: &PublicKey<Ristretto255>) -> Result<[u8; PUBLIC_KEY_LEN], OpaqueError> {
    pk.serialize()
        .as_slice()
        .try_into()
        .map_err(|_| OpaqueError::Malformed("server public key"))
}

#[cfg(test)]
mod tests;
