//! The account's security activity: what happened to it, readable only by its sessions.

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityEventKind {
    /// A device signed in (`device_*`, `source`).
    SignIn,
    /// A login finish failed: wrong password (`source`).
    SignInFailed,
    /// The account reached the failed-login limit and locked.
    Locked,
    /// A device signed in for the first time (`device_*`).
    NewDevice,
    /// A device was revoked (`device_id`; `by_device` revoked it).
    DeviceRevoked,
    /// A signed-in device unlocked the account.
    Unlocked,
    /// The password was changed (`by_device`).
    PasswordChanged,
    /// The recovery code was used to set a new password (`source`).
    RecoveryUsed,
    /// The recovery code was replaced (`by_device`).
    RecoveryCodeReplaced,
    /// A key was published in the directory (`detail`: the address).
    KeyPublished,
    /// A key was removed from the directory (`detail`: the address).
    KeyUnpublished,
    /// A kind this client does not know yet.
    #[serde(other)]
    Unknown,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvent {
    /// Increasing; pass the last one seen as `?after=` to get only newer events.
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// What.
    pub kind: SecurityEventKind,
    /// The device it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// That device's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The device whose session did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_device: Option<String>,
    /// Where from, coarsely: the network (/24 of IPv4, /48 of IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// More, per kind (an address for key events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/account/activity?after=ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEvents {
    /// Newest last.
    pub events: Vec<SecurityEvent>,
    /// How many days events are kept.
    pub retention_days: i64,
}
