//! [`MeteredStore`]: every call of the store it wraps, timed.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sealpost_transparency::SignedHead;
use sealpost_transparency::tree::{Hash, NodeId};

use super::{
    Account, Charge, ClaimOutcome, CompletedLogin, Credentials, Device, DirectoryClaimRow,
    DirectoryKey, EventRow, LoginState, NewAccount, NewEvent, Session, Store, StoreError,
};

/// A store whose calls are timed (see the module's parent).
pub struct MeteredStore(pub Arc<dyn Store>);

async fn timed<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let out = call.await;
    crate::metrics::timed(
        "sealpost_store_call_seconds",
        "sealpost_store_errors_total",
        op,
        started,
        out.is_ok(),
    );
    out
}

#[async_trait]
impl Store for MeteredStore {
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        timed("server_secret", self.0.server_secret(name)).await
    }
    async fn put_server_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        timed(
            "put_server_secret_if_absent",
            self.0.put_server_secret_if_absent(name, value),
        )
        .await
    }
    async fn create_account(&self, account: NewAccount) -> Result<(), StoreError> {
        timed("create_account", self.0.create_account(account)).await
    }
    async fn account(&self, user: &str) -> Result<Option<Account>, StoreError> {
        timed("account", self.0.account(user)).await
    }
    async fn reset_failed_logins(&self, user: &str) -> Result<(), StoreError> {
        timed("reset_failed_logins", self.0.reset_failed_logins(user)).await
    }
    async fn replace_credentials(
        &self,
        user: &str,
        credentials: Credentials,
    ) -> Result<(), StoreError> {
        timed(
            "replace_credentials",
            self.0.replace_credentials(user, credentials),
        )
        .await
    }
    async fn replace_recovery(
        &self,
        user: &str,
        recovery_wrap: &[u8],
        recovery_verifier: &[u8],
    ) -> Result<(), StoreError> {
        timed(
            "replace_recovery",
            self.0
                .replace_recovery(user, recovery_wrap, recovery_verifier),
        )
        .await
    }
    async fn charge_login_and_stage(
        &self,
        limit: i64,
        id: &[u8],
        state: LoginState,
    ) -> Result<Charge, StoreError> {
        timed(
            "charge_login_and_stage",
            self.0.charge_login_and_stage(limit, id, state),
        )
        .await
    }
    async fn login_state(&self, id: &[u8], now: i64) -> Result<Option<LoginState>, StoreError> {
        timed("login_state", self.0.login_state(id, now)).await
    }
    async fn discard_login_state(&self, id: &[u8]) -> Result<bool, StoreError> {
        timed("discard_login_state", self.0.discard_login_state(id)).await
    }
    async fn complete_login(
        &self,
        id: &[u8],
        device_name: &str,
        session: Session,
    ) -> Result<Option<CompletedLogin>, StoreError> {
        timed(
            "complete_login",
            self.0.complete_login(id, device_name, session),
        )
        .await
    }
    async fn put_login_state(&self, id: &[u8], state: LoginState) -> Result<(), StoreError> {
        timed("put_login_state", self.0.put_login_state(id, state)).await
    }
    async fn take_login_state(
        &self,
        id: &[u8],
        now: i64,
    ) -> Result<Option<LoginState>, StoreError> {
        timed("take_login_state", self.0.take_login_state(id, now)).await
    }
    async fn devices(&self, user: &str) -> Result<Vec<Device>, StoreError> {
        timed("devices", self.0.devices(user)).await
    }
    async fn revoke_device(&self, user: &str, device_id: &str) -> Result<bool, StoreError> {
        timed("revoke_device", self.0.revoke_device(user, device_id)).await
    }
    async fn session(&self, token_hash: &[u8], now: i64) -> Result<Option<Session>, StoreError> {
        timed("session", self.0.session(token_hash, now)).await
    }
    async fn delete_sessions_except(
        &self,
        user: &str,
        keep_device: &str,
    ) -> Result<(), StoreError> {
        timed(
            "delete_sessions_except",
            self.0.delete_sessions_except(user, keep_device),
        )
        .await
    }
    async fn settings(&self, user: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        timed("settings", self.0.settings(user)).await
    }
    async fn put_settings(
        &self,
        user: &str,
        expected: i64,
        blob: &[u8],
    ) -> Result<i64, StoreError> {
        timed("put_settings", self.0.put_settings(user, expected, blob)).await
    }
    async fn put_directory_claim(
        &self,
        claim: DirectoryClaimRow,
        now: i64,
        per_user: i64,
        per_address: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        timed(
            "put_directory_claim",
            self.0
                .put_directory_claim(claim, now, per_user, per_address),
        )
        .await
    }
    async fn delete_directory_claim(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        timed(
            "delete_directory_claim",
            self.0.delete_directory_claim(token_hash),
        )
        .await
    }
    async fn confirm_directory_claim(
        &self,
        token_hash: &[u8],
        user: &str,
        now: i64,
    ) -> Result<Option<DirectoryKey>, StoreError> {
        timed(
            "confirm_directory_claim",
            self.0.confirm_directory_claim(token_hash, user, now),
        )
        .await
    }
    async fn directory_key(&self, address: &str) -> Result<Option<DirectoryKey>, StoreError> {
        timed("directory_key", self.0.directory_key(address)).await
    }
    async fn delete_directory_key(
        &self,
        user: &str,
        address: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        timed(
            "delete_directory_key",
            self.0.delete_directory_key(user, address, now),
        )
        .await
    }
    async fn prune(&self, now: i64, events_before: i64) -> Result<(), StoreError> {
        timed("prune", self.0.prune(now, events_before)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.0.ping()).await
    }
    async fn count_sessions(&self, now: i64) -> Result<i64, StoreError> {
        timed("count_sessions", self.0.count_sessions(now)).await
    }
    async fn log_size(&self) -> Result<u64, StoreError> {
        timed("log_size", self.0.log_size()).await
    }
    async fn log_nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        timed("log_nodes", self.0.log_nodes(ids)).await
    }
    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        timed("log_entries", self.0.log_entries(start, end)).await
    }
    async fn put_log_head(&self, head: SignedHead) -> Result<SignedHead, StoreError> {
        timed("put_log_head", self.0.put_log_head(head)).await
    }
    async fn latest_log_head(&self) -> Result<Option<SignedHead>, StoreError> {
        timed("latest_log_head", self.0.latest_log_head()).await
    }
    async fn log_heads(&self, after: u64, limit: u64) -> Result<Vec<SignedHead>, StoreError> {
        timed("log_heads", self.0.log_heads(after, limit)).await
    }
    async fn add_event(&self, event: NewEvent, keep: i64) -> Result<(), StoreError> {
        timed("add_event", self.0.add_event(event, keep)).await
    }
    async fn events(
        &self,
        user: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        timed("events", self.0.events(user, after, limit)).await
    }
}
