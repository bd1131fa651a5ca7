//! The account's security activity: sign-ins, failures and locks, new and revoked
//! devices, password and recovery changes, key publications.
//!
//! What is kept in the clear is what the store shows anyway (the account, the time, the
//! kind, the device id); the rest (device name, the coarse source network, the address
//! of a key event, the device that acted) is sealed by the HSM bound to the account, like
//! every other blob. Sources are minimised before they are sealed: an IPv4 address to its
//! /24, an IPv6 address to its /48. Only the account's sessions read the events
//! ([`Service::activity`]); they are kept for [`ServiceConfig::activity_retention`] and at
//! most [`ServiceConfig::activity_per_account`] per account.
//!
//! An event is recorded after its action has committed. If the HSM or the store fails
//! just then, the event is lost (and the failure logged): an action is never refused
//! because its record could not be written, and no event is recorded for an action that
//! did not happen.
//!
//! [`ServiceConfig::activity_retention`]: super::ServiceConfig::activity_retention
//! [`ServiceConfig::activity_per_account`]: super::ServiceConfig::activity_per_account

use std::net::IpAddr;

use sealpost_proto as proto;
use serde::{Deserialize, Serialize};

use super::{Caller, Service};
use crate::error::ServerError;
use crate::store::NewEvent;

/// Most events one read returns.
const PAGE: i64 = 500;

/// An event about to be recorded.
#[derive(Debug, Default, Clone)]
pub(crate) struct Activity {
    kind: &'static str,
    device_id: String,
    details: Details,
}

/// What is sealed.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by_device: Option<String>,
}

impl Activity {
    /// An event of `kind` (a [`proto::SecurityEventKind`] wire name).
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    pub(crate) fn device(mut self, id: &str, name: &str) -> Self {
        self.device_id = id.to_owned();
        if !name.is_empty() {
            self.details.device_name = Some(name.to_owned());
        }
        self
    }

    pub(crate) fn source(mut self, ip: IpAddr) -> Self {
        self.details.source = Some(coarse(ip));
        self
    }

    pub(crate) fn detail(mut self, detail: &str) -> Self {
        self.details.detail = Some(detail.to_owned());
        self
    }

    pub(crate) fn by(mut self, device: &str) -> Self {
        self.details.by_device = Some(device.to_owned());
        self
    }
}

/// The network of an address: /24 of IPv4, /48 of IPv6.
pub fn coarse(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => coarse(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(
                    s.first().copied().unwrap_or(0),
                    s.get(1).copied().unwrap_or(0),
                    s.get(2).copied().unwrap_or(0),
                    0,
                    0,
                    0,
                    0,
                    0,
                );
                format!("{net}/48")
            }
        },
    }
}

impl Service {
    /// Records an event for `user` (see the module docs: failures are logged, not
    /// returned).
    pub(crate) async fn record(&self, user: &str, activity: Activity) {
        if let Err(e) = self.try_record(user, activity).await {
            tracing::error!(user = %user, code = e.code, "a security event could not be recorded");
        }
    }

    async fn try_record(&self, user: &str, activity: Activity) -> Result<(), ServerError> {
        let details =
            serde_json::to_vec(&activity.details).map_err(|e| ServerError::internal("event", e))?;
        let sealed = self.seal("event", user.as_bytes(), &details).await?;
        self.store
            .add_event(
                NewEvent {
                    user: user.to_owned(),
                    at: self.clock.now(),
                    kind: activity.kind.to_owned(),
                    device_id: activity.device_id,
                    details: sealed,
                },
                self.config.activity_per_account,
            )
            .await?;
        Ok(())
    }

    /// `GET /v1/account/activity?after=ID`: the caller's account's events newer than
    /// `after`, oldest first.
    pub async fn activity(
        &self,
        caller: &Caller,
        after: i64,
    ) -> Result<proto::SecurityEvents, ServerError> {
        let rows = self.store.events(&caller.user, after, PAGE).await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let opened = self
                .open("event", caller.user.as_bytes(), row.details)
                .await?;
            let details: Details =
                serde_json::from_slice(&opened).map_err(|e| ServerError::internal("event", e))?;
            let kind = serde_json::from_value(serde_json::Value::String(row.kind))
                .unwrap_or(proto::SecurityEventKind::Unknown);
            events.push(proto::SecurityEvent {
                id: row.id,
                at: row.at,
                kind,
                device_id: Some(row.device_id).filter(|d| !d.is_empty()),
                device_name: details.device_name,
                by_device: details.by_device,
                source: details.source,
                detail: details.detail,
            });
        }
        Ok(proto::SecurityEvents {
            events,
            retention_days: self.config.activity_retention / 86_400,
        })
    }

    /// Deletes what has expired: sessions, pending logins, claims, old security events.
    pub async fn prune(&self) -> Result<(), ServerError> {
        let now = self.clock.now();
        self.store
            .prune(now, now.saturating_sub(self.config.activity_retention))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_cut_to_their_network() {
        assert_eq!(coarse("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            coarse("2001:db8:abcd:12:1::5".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
        assert_eq!(
            coarse("::ffff:198.51.100.9".parse().unwrap()),
            "198.51.100.0/24"
        );
    }
}
