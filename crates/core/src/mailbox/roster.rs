//! The list of mail accounts follows the user to every device.
//!
//! An account's settings (address, login, servers, how it signs in: nothing secret, its
//! password or tokens are their own vault secrets) are kept, besides the row in the mail
//! store, as the vault secret `mail/<id>/account`, so they travel in the settings blob
//! like everything the user set up (crate::sync::settings). A device adopts the accounts
//! it finds there and lacks ([`Mailbox::adopt_synced_accounts`]); removing an account
//! leaves a tombstone in its place, so the removal reaches the other devices too and the
//! older entry there cannot bring the account back.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{Mailbox, NewAccount, damaged, oauth_secret, password_secret, security_name};
use crate::CoreError;

/// The vault secret that carries an account's settings to the other devices.
pub fn account_secret(account_id: &str) -> String {
    format!("mail/{account_id}/account")
}

/// An account's row, as it travels; or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Record {
    Account(Box<Row>),
    Removed,
}

/// The columns of an account's row (all but its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    address: String,
    login: String,
    imap_host: String,
    imap_port: u16,
    imap_security: String,
    smtp_host: String,
    smtp_port: u16,
    smtp_security: String,
    extra_roots_pem: String,
    created_at: i64,
    auth: String,
    oauth_provider: String,
}

/// What [`Mailbox::adopt_synced_accounts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Accounts made here from another device's settings.
    pub added: Vec<String>,
    /// Accounts removed here because another device removed them.
    pub removed: Vec<String>,
    /// Accounts another device removed that stay here, because they hold unsent mail or
    /// drafts (which exist nowhere else).
    pub kept: Vec<String>,
}

impl Row {
    /// The row of a new account: `auth` is `password` or `oauth2` (then with the
    /// provider's JSON).
    pub(crate) fn new(new: &NewAccount, auth: &str, oauth_provider: String, now: i64) -> Self {
        Self {
            address: new.address.clone(),
            login: new.login.clone(),
            imap_host: new.imap.host.clone(),
            imap_port: new.imap.port,
            imap_security: security_name(&new.imap).to_owned(),
            smtp_host: new.smtp.host.clone(),
            smtp_port: new.smtp.port,
            smtp_security: security_name(&new.smtp).to_owned(),
            extra_roots_pem: new.extra_roots_pem.clone(),
            created_at: now,
            auth: auth.to_owned(),
            oauth_provider,
        }
    }
}

impl Mailbox {
    /// Stores an account's row under `id`.
    pub(crate) fn insert_account(&self, id: &str, row: &Row) -> Result<(), CoreError> {
        self.conn.execute(
            "INSERT INTO account (id, address, login, imap_host, imap_port, imap_security,
                 smtp_host, smtp_port, smtp_security, extra_roots_pem, created_at, auth,
                 oauth_provider)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                id,
                row.address,
                row.login,
                row.imap_host,
                row.imap_port,
                row.imap_security,
                row.smtp_host,
                row.smtp_port,
                row.smtp_security,
                row.extra_roots_pem,
                row.created_at,
                row.auth,
                row.oauth_provider
            ],
        )?;
        Ok(())
    }

    /// Writes the account's settings to the vault, for the other devices.
    pub(crate) fn publish_account(&self, id: &str) -> Result<(), CoreError> {
        let record = self
            .conn
            .query_row(
                "SELECT address, login, imap_host, imap_port, imap_security, smtp_host,
                        smtp_port, smtp_security, extra_roots_pem, created_at, auth,
                        oauth_provider
                 FROM account WHERE id = ?1",
                [id],
                |r| {
                    Ok(Record::Account(Box::new(Row {
                        address: r.get(0)?,
                        login: r.get(1)?,
                        imap_host: r.get(2)?,
                        imap_port: r.get(3)?,
                        imap_security: r.get(4)?,
                        smtp_host: r.get(5)?,
                        smtp_port: r.get(6)?,
                        smtp_security: r.get(7)?,
                        extra_roots_pem: r.get(8)?,
                        created_at: r.get(9)?,
                        auth: r.get(10)?,
                        oauth_provider: r.get(11)?,
                    })))
                },
            )
            .optional()?
            .ok_or_else(|| CoreError::NoMailAccount(id.to_owned()))?;
        let json = serde_json::to_vec(&record).map_err(|e| damaged("an account record", e))?;
        self.u.put_secret(&account_secret(id), &json, &*self.clock)
    }

    /// Leaves the tombstone of a removed account in the vault, for the other devices.
    pub(crate) fn bury_account(&self, id: &str) -> Result<(), CoreError> {
        let json =
            serde_json::to_vec(&Record::Removed).map_err(|e| damaged("an account record", e))?;
        self.u.put_secret(&account_secret(id), &json, &*self.clock)
    }

    /// Brings the accounts of this device and the synced settings together: an account
    /// found in the settings and missing here is made here (its password or tokens came
    /// with the settings); one removed on another device is removed here, unless it holds
    /// unsent mail or drafts; an account here that was never published (made before
    /// accounts travelled) is published.
    pub fn adopt_synced_accounts(&self) -> Result<Adopted, CoreError> {
        let mut done = Adopted::default();
        let mut synced = std::collections::BTreeSet::new();
        for (name, _) in self.u.secret_times()? {
            let Some(id) = name
                .strip_prefix("mail/")
                .and_then(|rest| rest.strip_suffix("/account"))
            else {
                continue;
            };
            synced.insert(id.to_owned());
            let Some(value) = self.u.secret(&name)? else {
                continue;
            };
            let record: Record = serde_json::from_slice(value.expose())
                .map_err(|e| damaged("an account record", e))?;
            let here = self.account_exists(id)?;
            match record {
                Record::Removed if here => match self.remove_account(id) {
                    Ok(()) => done.removed.push(id.to_owned()),
                    Err(CoreError::AccountBusy(_)) => done.kept.push(id.to_owned()),
                    Err(e) => return Err(e),
                },
                Record::Removed => {}
                Record::Account(_) if here => {}
                Record::Account(row) => {
                    let secret = if row.auth == "oauth2" {
                        oauth_secret(id)
                    } else {
                        password_secret(id)
                    };
                    if self.u.secret(&secret)?.is_none() {
                        // Its credentials did not come along: nothing to log in with.
                        continue;
                    }
                    self.insert_account(id, &row)?;
                    done.added.push(id.to_owned());
                }
            }
        }
        for account in self.accounts()? {
            if !synced.contains(&account.id) {
                self.publish_account(&account.id)?;
            }
        }
        Ok(done)
    }

    fn account_exists(&self, id: &str) -> Result<bool, CoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM account WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }
}
