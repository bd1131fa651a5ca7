//! IMAP over async-imap: connect (implicit TLS or required STARTTLS), log in, folders,
//! UID-based incremental sync, flags, move, delete, append, IDLE.
//!
//! Every byte from the server passes through [`Bounded`] first, so a hostile server
//! cannot make the client allocate without bound or recurse without bound.
//!
//! Secrets and logs: this crate never logs credentials, but async-imap writes every
//! command it sends, `LOGIN` and `AUTHENTICATE` data included, to the `log` crate at
//! `trace` level (target `async_imap`). An application must not enable `trace` for
//! that target.
//!
//! # Sync
//!
//! [`ImapSession::sync`] takes the [`SyncState`] saved after the previous sync of a folder
//! (or `None`) and returns what changed:
//!
//! - if `UIDVALIDITY` differs from the saved one, every UID known for the folder is void:
//!   [`SyncChanges::reset`] is set and everything is fetched again;
//! - new messages are those with `UID >= UIDNEXT` of the saved state;
//! - flag changes of known messages come from `CHANGEDSINCE` (CONDSTORE, RFC 7162) when
//!   the server offers it, otherwise from fetching the flags of all known messages;
//! - expunged messages: the UIDs still present below the old `UIDNEXT` are listed
//!   ([`SyncChanges::present`]); whatever the caller knows that is not in it is gone.
//!
//! # QRESYNC (RFC 7162)
//!
//! After [`ImapSession::enable_qresync`] (`ENABLE QRESYNC`, when the server offers it), a
//! sync with a saved state that has a `HIGHESTMODSEQ` is one
//! `SELECT folder (QRESYNC (uidvalidity modseq 1:uidnext-1))`: the server answers with
//! `VANISHED (EARLIER)` for what was expunged and `FETCH (UID FLAGS MODSEQ)` for what
//! changed since that modseq, and [`SyncChanges::vanished`] carries the expunged UIDs
//! instead of [`SyncChanges::present`]. New messages cost one `UID FETCH` more, only
//! when `UIDNEXT` moved. Without QRESYNC (or without a saved modseq) the CONDSTORE or
//! plain path above runs.
//!
//! async-imap does not read `VANISHED` itself: it would hand such responses over a
//! channel of 100 that drops what overflows, and a dropped `VANISHED` would be a missed
//! deletion. So this `SELECT` is sent as a raw command and every response up to its
//! tagged end is read here, one at a time, each already bounded by [`Bounded`]. What
//! the server may make the client keep is bounded too: more than
//! [`MAX_VANISHED_RANGES`] UID ranges, or more changed messages than the folder holds
//! (plus [`CHANGED_SLACK`]), and the answer is set aside for the CONDSTORE path on the
//! same selected folder (`CHANGEDSINCE` and `UID SEARCH`), which cannot be flooded that
//! way. Responses that arrive unasked during other commands (`VANISHED` while moving,
//! `FETCH` after a `STORE`) are not needed: the saved modseq only advances through a
//! sync's own `SELECT`, so the next sync reports them again.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::time::Duration;

use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};
use async_imap::types::{Fetch, NameAttribute};
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::bounded::{Bounded, Limits};
use crate::error::{Error, Result};
use crate::net::{Security, Server, connect_tcp, timed};
use crate::secret::{Credentials, Secret, oauthbearer_response, xoauth2_response};
use crate::tls::TlsPolicy;

/// The stream types a session runs over, erased.
pub trait SessionStream: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> SessionStream for T {}

/// The stream an IMAP session reads: bounded, over TLS.
pub type ImapStream = Bounded<Box<dyn SessionStream>>;

/// Longest line accepted during the plain-text phase before STARTTLS.
const MAX_PRE_TLS_LINE: usize = 8 * 1024;
/// Most lines accepted during the plain-text phase before STARTTLS.
const MAX_PRE_TLS_LINES: usize = 32;
/// Most UID ranges kept from the `VANISHED` answer of one QRESYNC `SELECT` (12 bytes
/// each); past that, the CONDSTORE path finds the expunges instead.
pub const MAX_VANISHED_RANGES: usize = 1_000_000;
/// Changed messages one QRESYNC `SELECT` may report beyond the number the folder holds
/// (mail arriving during the command); past that, the CONDSTORE path runs instead.
pub const CHANGED_SLACK: usize = 10_000;

/// How to reach and talk to an IMAP server.
#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// The server.
    pub server: Server,
    /// Which certificates are accepted.
    pub tls: TlsPolicy,
    /// Bounds on what the server may send.
    pub limits: Limits,
    /// Bound on connecting and on each command.
    pub timeout: Duration,
}

impl ImapConfig {
    /// Implicit TLS to `host:993`, default limits, 30 s timeout.
    pub fn new(server: Server) -> Self {
        Self {
            server,
            tls: TlsPolicy::new(),
            limits: Limits::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A system flag or a keyword.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// A keyword (an IMAP atom such as `$Forwarded`).
    Keyword(String),
}

impl Flag {
    /// A keyword, checked to be an IMAP atom (so it cannot inject syntax).
    pub fn keyword(k: &str) -> Result<Self> {
        let ok = !k.is_empty()
            && k.bytes().all(|b| {
                b.is_ascii_graphic()
                    && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
            });
        if ok {
            Ok(Self::Keyword(k.to_owned()))
        } else {
            Err(Error::Invalid {
                what: "IMAP keyword",
                value: k.to_owned(),
            })
        }
    }

    fn as_imap(&self) -> &str {
        match self {
            Self::Seen => "\\Seen",
            Self::Answered => "\\Answered",
            Self::Flagged => "\\Flagged",
            Self::Deleted => "\\Deleted",
            Self::Draft => "\\Draft",
            Self::Keyword(k) => k,
        }
    }

    fn from_imap(f: &async_imap::types::Flag<'_>) -> Option<Self> {
        use async_imap::types::Flag as F;
        Some(match f {
            F::Seen => Self::Seen,
            F::Answered => Self::Answered,
            F::Flagged => Self::Flagged,
            F::Deleted => Self::Deleted,
            F::Draft => Self::Draft,
            F::Custom(k) => Self::Keyword(k.to_string()),
            _ => return None,
        })
    }
}

fn flag_list(flags: &[Flag]) -> String {
    let names: Vec<&str> = flags.iter().map(Flag::as_imap).collect();
    format!("({})", names.join(" "))
}

/// What a folder is for (RFC 6154 special use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

/// A folder from `LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The name as the server spells it (modified UTF-7; use it in commands).
    pub name: String,
    /// The name to show: [`decode_folder_name`] of `name` (or `name` if that fails).
    pub display_name: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<String>,
    /// What the folder is for, if the server says (or `INBOX`'s name says nothing).
    pub special_use: Option<SpecialUse>,
    /// `\Noselect`: a folder that only holds other folders.
    pub selectable: bool,
}

/// The state of a folder after `SELECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderStatus {
    /// `UIDVALIDITY`.
    pub uid_validity: u32,
    /// `UIDNEXT` (the next UID the server will assign, or a lower bound).
    pub uid_next: u32,
    /// Number of messages.
    pub exists: u32,
    /// `HIGHESTMODSEQ` when the server supports CONDSTORE.
    pub highest_modseq: Option<u64>,
}

/// What a client saves about a folder between syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncState {
    /// `UIDVALIDITY` at the last sync.
    pub uid_validity: u32,
    /// `UIDNEXT` at the last sync: every message below it has been seen.
    pub uid_next: u32,
    /// `HIGHESTMODSEQ` at the last sync (CONDSTORE).
    pub highest_modseq: Option<u64>,
}

/// A message's UID, flags and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// The UID.
    pub uid: u32,
    /// The flags.
    pub flags: BTreeSet<Flag>,
    /// `RFC822.SIZE`, when fetched.
    pub size: Option<u32>,
}

/// What changed in a folder since the saved [`SyncState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncChanges {
    /// The state to save for the next sync.
    pub state: SyncState,
    /// `UIDVALIDITY` changed (or there was no saved state): forget every UID known for
    /// this folder; `new` lists all messages.
    pub reset: bool,
    /// Messages not seen before, in UID order.
    pub new: Vec<MessageInfo>,
    /// Known messages whose flags may have changed, with their current flags.
    pub flags_changed: Vec<MessageInfo>,
    /// The UIDs below the old `UIDNEXT` still in the folder; known UIDs missing here
    /// were expunged. Empty when `reset`, and when `vanished` is `Some`.
    pub present: BTreeSet<u32>,
    /// With QRESYNC: the UIDs below the old `UIDNEXT` expunged since the saved state
    /// (the server may name UIDs the caller never knew), as sorted, disjoint ranges;
    /// known UIDs not named here are still there, and `present` means nothing. `None`:
    /// `present` says what is left.
    pub vanished: Option<Vec<RangeInclusive<u32>>>,
}

/// What a QRESYNC `SELECT` reported.
#[derive(Debug)]
struct QresyncSelect {
    status: FolderStatus,
    /// Whether the server sent `UIDNEXT` (then no message has a UID at or above it).
    uid_next_sent: bool,
    /// `VANISHED (EARLIER)` ranges, each with start ≤ end.
    vanished: Vec<RangeInclusive<u32>>,
    /// UID → flags of the changed messages.
    changed: BTreeMap<u32, BTreeSet<Flag>>,
    /// The server reported more than the bounds allow; the two above are empty.
    overflow: bool,
}

/// How an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEvent {
    /// The server reported a change (new mail, expunge, flags).
    NewData,
    /// The wait ended without news (re-IDLE, as servers drop idle clients after ~30 min).
    Timeout,
    /// The caller's interrupt fired.
    Interrupted,
}

/// A logged-in IMAP session.
#[derive(Debug)]
pub struct ImapSession {
    session: async_imap::Session<ImapStream>,
    capabilities: BTreeSet<String>,
    timeout: Duration,
    /// `ENABLE QRESYNC` succeeded on this session.
    qresync: bool,
    /// `ENABLE QRESYNC` was sent (it is not sent twice).
    enable_tried: bool,
    /// Commands sent since login.
    commands: u64,
}

impl ImapSession {
    /// Connects, secures the connection, logs in and reads the capabilities.
    pub async fn connect(config: &ImapConfig, credentials: &Credentials) -> Result<Self> {
        let client = timed(
            config.timeout,
            "connecting to the IMAP server",
            connect(config),
        )
        .await?;
        let session = timed(
            config.timeout,
            "logging in",
            login(client, credentials, &config.server),
        )
        .await?;
        let mut this = Self {
            session,
            capabilities: BTreeSet::new(),
            timeout: config.timeout,
            qresync: false,
            enable_tried: false,
            commands: 0,
        };
        this.refresh_capabilities().await?;
        Ok(this)
    }

    async fn refresh_capabilities(&mut self) -> Result<()> {
        self.commands += 1;
        let caps = timed(self.timeout, "CAPABILITY", async {
            self.session.capabilities().await.map_err(Error::from_imap)
        })
        .await?;
        self.capabilities = caps
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                async_imap::types::Capability::Auth(a) => format!("AUTH={}", a.to_uppercase()),
                async_imap::types::Capability::Atom(a) => a.to_uppercase(),
            })
            .collect();
        Ok(())
    }

    /// The server's capabilities, upper case.
    pub fn capabilities(&self) -> &BTreeSet<String> {
        &self.capabilities
    }

    /// Whether the server announced `capability` (case-insensitive).
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.contains(&capability.to_uppercase())
    }

    /// How many commands this session has sent since it logged in (each one a round
    /// trip to the server; the login and the first `CAPABILITY` included).
    pub fn commands_sent(&self) -> u64 {
        self.commands
    }

    /// Whether QRESYNC is on for this session ([`ImapSession::enable_qresync`]).
    pub fn qresync_enabled(&self) -> bool {
        self.qresync
    }

    /// Turns QRESYNC on (`ENABLE QRESYNC`, RFC 5161 and 7162) when the server offers it,
    /// so that [`ImapSession::sync`] learns expunges and flag changes from one `SELECT`
    /// (see the module docs). Returns whether it is on; a server without it is left
    /// alone (no command), and so is one that refuses it (`ENABLE` is only valid before
    /// the first `SELECT`: call this right after connecting). Asked once per session. Once on, the server
    /// reports expunges as `VANISHED`, never as `EXPUNGE`, for the rest of the session.
    pub async fn enable_qresync(&mut self) -> Result<bool> {
        if self.qresync || self.enable_tried || !self.has_capability("QRESYNC") {
            return Ok(self.qresync);
        }
        self.enable_tried = true;
        let mut enabled = false;
        let result = self
            .raw_command("ENABLE", "ENABLE QRESYNC", |response| {
                if let Response::Capabilities(caps) = response {
                    enabled |= caps.iter().any(|c| {
                        matches!(c, async_imap::imap_proto::Capability::Atom(a)
                            if a.eq_ignore_ascii_case("QRESYNC"))
                    });
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {}
            // Refused (`NO`/`BAD`, as after a `SELECT`): the session goes on without it.
            Err(Error::Imap(_)) => enabled = false,
            Err(e) => return Err(e),
        }
        self.qresync = enabled;
        Ok(enabled)
    }

    /// Sends `command` as it is and reads every response up to its tagged end, handing
    /// each untagged one to `untagged` as it arrives (and dropping it then, so nothing
    /// piles up). A tagged `NO` or `BAD`, or an untagged `BYE`, is an error.
    async fn raw_command(
        &mut self,
        what: &'static str,
        command: &str,
        mut untagged: impl FnMut(&Response<'_>) -> Result<()>,
    ) -> Result<()> {
        self.commands += 1;
        let session = &mut self.session;
        timed(self.timeout, what, async move {
            let tag = session
                .run_command(command)
                .await
                .map_err(Error::from_imap)?;
            loop {
                let response = session
                    .read_response()
                    .await
                    .map_err(Error::from_io)?
                    .ok_or_else(|| Error::from_imap(async_imap::error::Error::ConnectionLost))?;
                match response.parsed() {
                    Response::Done {
                        tag: done,
                        status,
                        outcome,
                    } if *done == tag => {
                        return match status {
                            Status::Ok => Ok(()),
                            other => Err(Error::Imap(format!(
                                "{what}: {other:?} {}",
                                outcome.information.as_deref().unwrap_or("")
                            ))),
                        };
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => {
                        return Err(Error::Imap(format!(
                            "{what}: the server ended the session: {}",
                            outcome.information.as_deref().unwrap_or("")
                        )));
                    }
                    other => untagged(other)?,
                }
            }
        })
        .await
    }

    /// Forgets the responses async-imap set aside as unasked (it keeps up to 100, each
    /// holding a buffer of the connection); nothing here reads them.
    fn drain_unsolicited(&mut self) {
        while self.session.unsolicited_responses.try_recv().is_ok() {}
    }

    /// All folders, with their special use.
    pub async fn folders(&mut self) -> Result<Vec<Folder>> {
        self.commands += 1;
        timed(self.timeout, "LIST", async {
            let names: Vec<_> = self
                .session
                .list(Some(""), Some("*"))
                .await
                .map_err(Error::from_imap)?
                .try_collect()
                .await
                .map_err(Error::from_imap)?;
            Ok(names
                .iter()
                .map(|n| {
                    let attrs = n.attributes();
                    let special_use = attrs.iter().find_map(|a| match a {
                        NameAttribute::All => Some(SpecialUse::All),
                        NameAttribute::Archive => Some(SpecialUse::Archive),
                        NameAttribute::Drafts => Some(SpecialUse::Drafts),
                        NameAttribute::Flagged => Some(SpecialUse::Flagged),
                        NameAttribute::Junk => Some(SpecialUse::Junk),
                        NameAttribute::Sent => Some(SpecialUse::Sent),
                        NameAttribute::Trash => Some(SpecialUse::Trash),
                        _ => None,
                    });
                    Folder {
                        name: n.name().to_owned(),
                        display_name: decode_folder_name(n.name())
                            .unwrap_or_else(|| n.name().to_owned()),
                        delimiter: n.delimiter().map(str::to_owned),
                        special_use,
                        selectable: !attrs.iter().any(|a| matches!(a, NameAttribute::NoSelect)),
                    }
                })
                .collect())
        })
        .await
    }

    /// Creates a folder.
    pub async fn create_folder(&mut self, name: &str) -> Result<()> {
        self.commands += 1;
        timed(self.timeout, "CREATE", async {
            self.session.create(name).await.map_err(Error::from_imap)
        })
        .await
    }

    /// Deletes a folder.
    pub async fn delete_folder(&mut self, name: &str) -> Result<()> {
        self.commands += 1;
        timed(self.timeout, "DELETE", async {
            self.session.delete(name).await.map_err(Error::from_imap)
        })
        .await
    }

    /// Selects a folder (with CONDSTORE when the server offers it).
    pub async fn select(&mut self, folder: &str) -> Result<FolderStatus> {
        let condstore = self.has_capability("CONDSTORE");
        self.drain_unsolicited();
        self.commands += 1;
        let mailbox = timed(self.timeout, "SELECT", async {
            if condstore {
                self.session.select_condstore(folder).await
            } else {
                self.session.select(folder).await
            }
            .map_err(Error::from_imap)
        })
        .await?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| Error::Imap(format!("{folder}: the server sent no UIDVALIDITY")))?;
        Ok(FolderStatus {
            uid_validity,
            uid_next: mailbox.uid_next.unwrap_or(1),
            exists: mailbox.exists,
            highest_modseq: mailbox.highest_modseq,
        })
    }

    /// Selects `folder` and returns what changed since `previous` (see the module docs):
    /// with QRESYNC on ([`ImapSession::enable_qresync`]) and a saved modseq, from one
    /// `SELECT` (and a `UID FETCH` when new mail arrived); otherwise with CONDSTORE's
    /// `CHANGEDSINCE` or all flags, and a `UID SEARCH` for what is left.
    pub async fn sync(
        &mut self,
        folder: &str,
        previous: Option<&SyncState>,
    ) -> Result<SyncChanges> {
        if self.qresync
            && let Some(prev) = previous
            && let Some(modseq) = prev.highest_modseq.filter(|m| *m > 0)
        {
            let selected = self.select_qresync(folder, prev, modseq).await?;
            if selected.status.uid_validity == prev.uid_validity && !selected.overflow {
                return self.sync_qresync(prev, selected).await;
            }
            // A new UIDVALIDITY (the server ignored the saved state), or an answer
            // too big to keep: the folder is selected, go the long way.
            return self.sync_selected(selected.status, previous).await;
        }
        let status = self.select(folder).await?;
        self.sync_selected(status, previous).await
    }

    /// The CONDSTORE or plain sync of the folder just selected, whose state is `status`.
    async fn sync_selected(
        &mut self,
        status: FolderStatus,
        previous: Option<&SyncState>,
    ) -> Result<SyncChanges> {
        let previous = previous.filter(|p| p.uid_validity == status.uid_validity);
        let reset = previous.is_none();
        let from = previous.map_or(1, |p| p.uid_next.max(1));

        let mut new = Vec::new();
        if status.exists > 0 {
            new = self.fetch_new(from).await?;
        }

        let mut flags_changed = Vec::new();
        let mut present = BTreeSet::new();
        if let Some(prev) = previous
            && prev.uid_next > 1
            && status.exists > 0
        {
            let known = format!("1:{}", prev.uid_next - 1);
            let query = match (prev.highest_modseq, status.highest_modseq) {
                (Some(_), Some(now)) if Some(now) == prev.highest_modseq => None,
                (Some(old), Some(_)) => Some(format!("(UID FLAGS) (CHANGEDSINCE {old})")),
                _ => Some("(UID FLAGS)".to_owned()),
            };
            if let Some(query) = query {
                flags_changed = self
                    .fetch_infos(&known, &query)
                    .await?
                    .into_iter()
                    .filter(|m| m.uid < prev.uid_next)
                    .collect();
            }
            self.commands += 1;
            present = timed(self.timeout, "UID SEARCH", async {
                self.session
                    .uid_search(format!("UID {known}"))
                    .await
                    .map_err(Error::from_imap)
            })
            .await?
            .into_iter()
            .filter(|uid| *uid < prev.uid_next)
            .collect();
        }
        Ok(changes(
            status,
            from,
            reset,
            new,
            flags_changed,
            present,
            None,
        ))
    }

    /// The QRESYNC sync, from what the `SELECT` reported: expunges and flag changes are
    /// in it; new messages (at or above the saved `UIDNEXT`) are fetched only when
    /// `UIDNEXT` moved, or the server did not say.
    async fn sync_qresync(
        &mut self,
        prev: &SyncState,
        selected: QresyncSelect,
    ) -> Result<SyncChanges> {
        let QresyncSelect {
            status,
            uid_next_sent,
            vanished,
            changed,
            overflow: _,
        } = selected;
        let from = prev.uid_next.max(1);
        let mut new = Vec::new();
        if status.exists > 0 && (!uid_next_sent || status.uid_next > from) {
            new = self.fetch_new(from).await?;
        }
        let flags_changed = changed
            .into_iter()
            .filter(|(uid, _)| *uid < from)
            .map(|(uid, flags)| MessageInfo {
                uid,
                flags,
                size: None,
            })
            .collect();
        let vanished = merge_ranges(vanished, from);
        Ok(changes(
            status,
            from,
            false,
            new,
            flags_changed,
            BTreeSet::new(),
            Some(vanished),
        ))
    }

    /// `UID FLAGS RFC822.SIZE` of the messages at or above `from`, in UID order.
    async fn fetch_new(&mut self, from: u32) -> Result<Vec<MessageInfo>> {
        let mut new: Vec<MessageInfo> = self
            .fetch_infos(&format!("{from}:*"), "(UID FLAGS RFC822.SIZE)")
            .await?
            .into_iter()
            .filter(|m| m.uid >= from)
            .collect();
        new.sort_by_key(|m| m.uid);
        Ok(new)
    }

    /// `SELECT folder (QRESYNC (uidvalidity modseq known-uids))`, its answer read here
    /// response by response within the bounds of the module docs.
    async fn select_qresync(
        &mut self,
        folder: &str,
        prev: &SyncState,
        modseq: u64,
    ) -> Result<QresyncSelect> {
        let known = if prev.uid_next > 1 {
            format!(" 1:{}", prev.uid_next - 1)
        } else {
            String::new()
        };
        let command = format!(
            "SELECT {} (QRESYNC ({} {modseq}{known}))",
            quoted(folder)?,
            prev.uid_validity
        );
        self.drain_unsolicited();
        let mut uid_validity = None;
        let mut out = QresyncSelect {
            status: FolderStatus {
                uid_validity: 0,
                uid_next: 1,
                exists: 0,
                highest_modseq: None,
            },
            uid_next_sent: false,
            vanished: Vec::new(),
            changed: BTreeMap::new(),
            overflow: false,
        };
        self.raw_command("SELECT", &command, |response| {
            qresync_response(response, &mut out, &mut uid_validity);
            Ok(())
        })
        .await?;
        out.status.uid_validity = uid_validity
            .ok_or_else(|| Error::Imap(format!("{folder}: the server sent no UIDVALIDITY")))?;
        Ok(out)
    }

    /// Each response is turned into a [`MessageInfo`] as it arrives and dropped: a
    /// response holds on to a buffer of the connection many times its size, so keeping
    /// 10,000 of them at once cost tens of megabytes.
    async fn fetch_infos(&mut self, uids: &str, query: &str) -> Result<Vec<MessageInfo>> {
        self.commands += 1;
        timed(self.timeout, "UID FETCH", async {
            self.session
                .uid_fetch(uids, query)
                .await
                .map_err(Error::from_imap)?
                .map_err(Error::from_imap)
                .try_filter_map(|f| std::future::ready(Ok(info(&f))))
                .try_collect()
                .await
        })
        .await
    }

    async fn uid_fetch(&mut self, uids: &str, query: &str) -> Result<Vec<Fetch>> {
        self.commands += 1;
        timed(self.timeout, "UID FETCH", async {
            self.session
                .uid_fetch(uids, query)
                .await
                .map_err(Error::from_imap)?
                .try_collect()
                .await
                .map_err(Error::from_imap)
        })
        .await
    }

    /// The whole message `uid` of the selected folder (`BODY.PEEK[]`, so `\Seen` is not
    /// set), or `None` if there is no such message.
    pub async fn fetch_message(&mut self, uid: u32) -> Result<Option<Vec<u8>>> {
        let fetches = self
            .uid_fetch(&uid.to_string(), "(UID BODY.PEEK[])")
            .await?;
        Ok(fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body().map(<[u8]>::to_vec)))
    }

    /// Whole messages of the selected folder in one `UID FETCH` (`BODY.PEEK[]`), as
    /// `(uid, bytes)` in UID order; UIDs that do not exist are left out. Keep batches
    /// small enough for [`Limits::max_response`]. No UIDs, no command, no messages.
    pub async fn fetch_messages(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids)?;
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        self.commands += 1;
        let mut out: Vec<(u32, Vec<u8>)> = timed(self.timeout, "UID FETCH", async {
            self.session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(Error::from_imap)?
                .map_err(Error::from_imap)
                .try_filter_map(|f| {
                    let found = f
                        .uid
                        .filter(|uid| wanted.contains(uid))
                        .zip(f.body().map(<[u8]>::to_vec));
                    std::future::ready(Ok(found))
                })
                .try_collect()
                .await
        })
        .await?;
        out.sort_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Flags of the given messages of the selected folder (none for no UIDs).
    pub async fn fetch_flags(&mut self, uids: &[u32]) -> Result<Vec<MessageInfo>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids)?;
        self.fetch_infos(&set, "(UID FLAGS)").await
    }

    /// Adds flags to messages of the selected folder.
    pub async fn add_flags(&mut self, uids: &[u32], flags: &[Flag]) -> Result<()> {
        self.store(uids, "+FLAGS.SILENT", flags).await
    }

    /// Removes flags from messages of the selected folder.
    pub async fn remove_flags(&mut self, uids: &[u32], flags: &[Flag]) -> Result<()> {
        self.store(uids, "-FLAGS.SILENT", flags).await
    }

    async fn store(&mut self, uids: &[u32], op: &str, flags: &[Flag]) -> Result<()> {
        let set = uid_set(uids)?;
        let query = format!("{op} {}", flag_list(flags));
        self.commands += 1;
        timed(self.timeout, "UID STORE", async {
            let _: Vec<Fetch> = self
                .session
                .uid_store(&set, &query)
                .await
                .map_err(Error::from_imap)?
                .try_collect()
                .await
                .map_err(Error::from_imap)?;
            Ok(())
        })
        .await
    }

    /// Moves messages of the selected folder to `destination` (`UID MOVE`, or COPY,
    /// `\Deleted` and expunge of just those UIDs when the server has no MOVE).
    pub async fn move_messages(&mut self, uids: &[u32], destination: &str) -> Result<()> {
        let set = uid_set(uids)?;
        if self.has_capability("MOVE") {
            self.commands += 1;
            return timed(self.timeout, "UID MOVE", async {
                self.session
                    .uid_mv(&set, destination)
                    .await
                    .map_err(Error::from_imap)
            })
            .await;
        }
        self.commands += 1;
        timed(self.timeout, "UID COPY", async {
            self.session
                .uid_copy(&set, destination)
                .await
                .map_err(Error::from_imap)
        })
        .await?;
        self.delete_messages(uids).await
    }

    /// Marks messages of the selected folder `\Deleted` and expunges them (only them
    /// with UIDPLUS; without it, every `\Deleted` message of the folder).
    pub async fn delete_messages(&mut self, uids: &[u32]) -> Result<()> {
        self.add_flags(uids, &[Flag::Deleted]).await?;
        let set = uid_set(uids)?;
        let uidplus = self.has_capability("UIDPLUS");
        self.commands += 1;
        timed(self.timeout, "EXPUNGE", async {
            if uidplus {
                let _: Vec<_> = self
                    .session
                    .uid_expunge(&set)
                    .await
                    .map_err(Error::from_imap)?
                    .try_collect()
                    .await
                    .map_err(Error::from_imap)?;
            } else {
                let _: Vec<_> = self
                    .session
                    .expunge()
                    .await
                    .map_err(Error::from_imap)?
                    .try_collect()
                    .await
                    .map_err(Error::from_imap)?;
            }
            Ok(())
        })
        .await
    }

    /// UIDs of the selected folder's messages whose `Message-ID` header contains
    /// `message_id` (without angle brackets). Only ids of letters, digits and `.-_@+`
    /// are asked for (what Sealpost makes); anything else is refused rather than quoted.
    pub async fn search_message_id(&mut self, message_id: &str) -> Result<Vec<u32>> {
        if message_id.is_empty()
            || !message_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_@+".contains(&b))
        {
            return Err(Error::Invalid {
                what: "Message-ID",
                value: message_id.chars().take(40).collect(),
            });
        }
        let query = format!("HEADER Message-ID \"{message_id}\"");
        self.commands += 1;
        let mut uids: Vec<u32> = timed(self.timeout, "UID SEARCH", async {
            self.session
                .uid_search(query)
                .await
                .map_err(Error::from_imap)
        })
        .await?
        .into_iter()
        .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Appends a message to `folder` with `flags` (a sent copy, a draft).
    pub async fn append(&mut self, folder: &str, flags: &[Flag], message: &[u8]) -> Result<()> {
        let flags = (!flags.is_empty()).then(|| flag_list(flags));
        self.commands += 1;
        timed(self.timeout, "APPEND", async {
            self.session
                .append(folder, flags.as_deref(), None, message)
                .await
                .map_err(Error::from_imap)
        })
        .await
    }

    /// Waits in IDLE on the selected folder until the server reports a change,
    /// `max_wait` passes, or `interrupt` completes; then ends IDLE and returns the
    /// session. Servers without IDLE are refused (poll with [`ImapSession::sync`]).
    pub async fn idle(
        self,
        max_wait: Duration,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Result<(Self, IdleEvent)> {
        if !self.has_capability("IDLE") {
            return Err(Error::Imap("the server does not support IDLE".into()));
        }
        let Self {
            session,
            capabilities,
            timeout,
            qresync,
            enable_tried,
            commands,
        } = self;
        while session.unsolicited_responses.try_recv().is_ok() {}
        let mut handle = session.idle();
        timed(timeout, "starting IDLE", async {
            handle.init().await.map_err(Error::from_imap)
        })
        .await?;
        let event = {
            let (wait, stop) = handle.wait_with_timeout(max_wait);
            let mut wait = std::pin::pin!(wait);
            let interrupt = std::pin::pin!(interrupt);
            let outcome = tokio::select! {
                r = &mut wait => Some(r),
                () = interrupt => None,
            };
            let outcome = match outcome {
                Some(r) => r,
                None => {
                    drop(stop);
                    wait.await
                }
            };
            use async_imap::extensions::idle::IdleResponse as R;
            match outcome.map_err(Error::from_imap)? {
                R::NewData(_) => IdleEvent::NewData,
                R::Timeout => IdleEvent::Timeout,
                R::ManualInterrupt => IdleEvent::Interrupted,
            }
        };
        let session = timed(timeout, "ending IDLE", async {
            handle.done().await.map_err(Error::from_imap)
        })
        .await?;
        Ok((
            Self {
                session,
                capabilities,
                timeout,
                qresync,
                enable_tried,
                commands: commands.saturating_add(1),
            },
            event,
        ))
    }

    /// Sends `NOOP` (keeps the connection alive, collects pending updates).
    pub async fn noop(&mut self) -> Result<()> {
        self.commands += 1;
        timed(self.timeout, "NOOP", async {
            self.session.noop().await.map_err(Error::from_imap)
        })
        .await
    }

    /// Logs out.
    pub async fn logout(mut self) -> Result<()> {
        self.commands += 1;
        timed(self.timeout, "LOGOUT", async {
            self.session.logout().await.map_err(Error::from_imap)
        })
        .await
    }
}

/// Decodes a mailbox name from IMAP's modified UTF-7 (RFC 3501 §5.1.3): `&` … `-`
/// wraps base64 (`,` for `/`) of UTF-16BE; `&-` is `&`. `None` if malformed.
pub fn decode_folder_name(name: &str) -> Option<String> {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        out.push_str(rest.get(..start)?);
        let after = rest.get(start + 1..)?;
        let end = after.find('-')?;
        let encoded = after.get(..end)?;
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(encoded.replace(',', "/"))
                .ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes.chunks_exact(2).map(|p| {
                u16::from_be_bytes([
                    p.first().copied().unwrap_or(0),
                    p.get(1).copied().unwrap_or(0),
                ])
            });
            for c in char::decode_utf16(units) {
                out.push(c.ok()?);
            }
        }
        rest = after.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a folder name into IMAP's modified UTF-7 (for [`ImapSession::create_folder`]).
pub fn encode_folder_name(name: &str) -> String {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(
                &base64::engine::general_purpose::STANDARD_NO_PAD
                    .encode(bytes)
                    .replace('/', ","),
            );
            out.push('-');
            pending.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// The [`SyncChanges`] of a sync, the state to save computed from what was seen.
fn changes(
    status: FolderStatus,
    from: u32,
    reset: bool,
    new: Vec<MessageInfo>,
    flags_changed: Vec<MessageInfo>,
    present: BTreeSet<u32>,
    vanished: Option<Vec<RangeInclusive<u32>>>,
) -> SyncChanges {
    let uid_next = new
        .iter()
        .map(|m| m.uid.saturating_add(1))
        .chain([status.uid_next, from])
        .max()
        .unwrap_or(status.uid_next);
    SyncChanges {
        state: SyncState {
            uid_validity: status.uid_validity,
            uid_next,
            highest_modseq: status.highest_modseq,
        },
        reset,
        new,
        flags_changed,
        present,
        vanished,
    }
}

/// Takes one untagged response of a QRESYNC `SELECT` into `out` (see the module docs
/// for the bounds). Anything else the server says is ignored.
fn qresync_response(
    response: &Response<'_>,
    out: &mut QresyncSelect,
    uid_validity: &mut Option<u32>,
) {
    match response {
        Response::Data {
            status: Status::Ok,
            outcome,
        } => match outcome.code {
            Some(ResponseCode::UidValidity(v)) => *uid_validity = Some(v),
            Some(ResponseCode::UidNext(n)) => {
                out.status.uid_next = n;
                out.uid_next_sent = true;
            }
            Some(ResponseCode::HighestModSeq(m)) => out.status.highest_modseq = Some(m),
            _ => {}
        },
        Response::MailboxData(MailboxDatum::Exists(n)) => out.status.exists = *n,
        Response::Vanished { uids, .. } if !out.overflow => {
            if out.vanished.len().saturating_add(uids.len()) > MAX_VANISHED_RANGES {
                overflow(out);
            } else {
                out.vanished.extend(
                    uids.iter()
                        .map(|r| (*r.start()).min(*r.end())..=(*r.start()).max(*r.end())),
                );
            }
        }
        Response::Fetch(_, attributes) if !out.overflow => {
            let mut uid = None;
            let mut flags = None;
            for a in attributes {
                match a {
                    AttributeValue::Uid(u) => uid = Some(*u),
                    AttributeValue::Flags(f) => {
                        flags = Some(
                            f.iter()
                                .filter_map(|name| {
                                    Flag::from_imap(&async_imap::types::Flag::from(name.as_ref()))
                                })
                                .collect::<BTreeSet<Flag>>(),
                        );
                    }
                    _ => {}
                }
            }
            if let (Some(uid), Some(flags)) = (uid, flags) {
                out.changed.insert(uid, flags);
                let bound = usize::try_from(out.status.exists)
                    .unwrap_or(usize::MAX)
                    .saturating_add(CHANGED_SLACK);
                if out.changed.len() > bound {
                    overflow(out);
                }
            }
        }
        _ => {}
    }
}

/// Gives up on keeping a QRESYNC answer: frees what was kept.
fn overflow(out: &mut QresyncSelect) {
    out.overflow = true;
    out.vanished = Vec::new();
    out.changed = BTreeMap::new();
}

/// `ranges` cut to below `below`, sorted, with overlapping and adjacent ones merged.
fn merge_ranges(mut ranges: Vec<RangeInclusive<u32>>, below: u32) -> Vec<RangeInclusive<u32>> {
    let Some(last) = below.checked_sub(1).filter(|l| *l >= 1) else {
        return Vec::new();
    };
    ranges.sort_unstable_by_key(|r| (*r.start(), *r.end()));
    let mut out: Vec<RangeInclusive<u32>> = Vec::new();
    for r in ranges {
        let (start, end) = ((*r.start()).max(1), (*r.end()).min(last));
        if start > end {
            continue;
        }
        match out.last_mut() {
            Some(prev) if start <= prev.end().saturating_add(1) => {
                if end > *prev.end() {
                    *prev = *prev.start()..=end;
                }
            }
            _ => out.push(start..=end),
        }
    }
    out
}

/// A mailbox name as an IMAP quoted string; CR, LF and NUL are refused.
fn quoted(name: &str) -> Result<String> {
    if name.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::Invalid {
            what: "folder name",
            value: name.chars().take(40).collect(),
        });
    }
    Ok(format!(
        "\"{}\"",
        name.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

fn info(f: &Fetch) -> Option<MessageInfo> {
    Some(MessageInfo {
        uid: f.uid?,
        flags: f.flags().filter_map(|fl| Flag::from_imap(&fl)).collect(),
        size: f.size,
    })
}

/// A UID set in IMAP syntax (`1,5,9`); empty input is refused.
fn uid_set(uids: &[u32]) -> Result<String> {
    if uids.is_empty() {
        return Err(Error::Invalid {
            what: "UID set",
            value: String::new(),
        });
    }
    Ok(uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(","))
}

/// Connects, runs STARTTLS if the server needs it, and reads the greeting.
async fn connect(config: &ImapConfig) -> Result<async_imap::Client<ImapStream>> {
    let host = &config.server.host;
    let tcp = connect_tcp(host, config.server.port, config.timeout).await?;
    match config.server.security {
        Security::Tls => {
            let alpn = (config.server.port != 993).then_some(&b"imap"[..]);
            let tls = config.tls.handshake(tcp, host, alpn).await?;
            let stream: Box<dyn SessionStream> = Box::new(tls);
            let mut client = async_imap::Client::new(Bounded::new(stream, config.limits));
            let greeting = client
                .read_response()
                .await
                .map_err(Error::from_io)?
                .ok_or_else(|| {
                    Error::Imap("the server closed the connection before greeting".into())
                })?;
            check_greeting(greeting.parsed())?;
            Ok(client)
        }
        Security::StartTls => {
            let tcp = starttls(tcp).await?;
            let tls = config.tls.handshake(tcp, host, None).await?;
            let stream: Box<dyn SessionStream> = Box::new(tls);
            // RFC 3501 §6.2.1: no greeting after STARTTLS; the capabilities are asked
            // again once logged in.
            Ok(async_imap::Client::new(Bounded::new(stream, config.limits)))
        }
    }
}

fn check_greeting(greeting: &async_imap::imap_proto::Response<'_>) -> Result<()> {
    use async_imap::imap_proto::{Response, Status};
    match greeting {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(Error::Imap(format!(
            "the server refused the connection: {}",
            outcome.information.as_deref().unwrap_or("")
        ))),
        other => Err(Error::Imap(format!("unexpected greeting: {other:?}"))),
    }
}

/// The plain-text phase of STARTTLS (RFC 3501 §6.2.1, RFC 8314 §4): greeting,
/// `CAPABILITY` (must list STARTTLS), `STARTTLS` (must be OK). Lines are bounded. The
/// returned stream is the bare TCP stream: whatever the server sent after the OK is
/// dropped with the reader's buffer, never parsed as coming from inside TLS.
async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<S> {
    let mut reader = BufReader::new(stream);
    let greeting = read_line(&mut reader).await?;
    if !greeting.starts_with("* OK") {
        return Err(Error::StartTlsRefused(format!(
            "unexpected greeting {:?}",
            greeting.trim_end()
        )));
    }
    reader
        .get_mut()
        .write_all(b"s1 CAPABILITY\r\n")
        .await
        .map_err(Error::from_io)?;
    let mut offered = false;
    let mut lines = 0;
    loop {
        let line = read_line(&mut reader).await?;
        lines += 1;
        if lines > MAX_PRE_TLS_LINES {
            return Err(Error::StartTlsRefused("too many lines before TLS".into()));
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("* CAPABILITY ") {
            offered |= upper.split_ascii_whitespace().any(|w| w == "STARTTLS");
        } else if upper.starts_with("S1 ") {
            if !upper.starts_with("S1 OK") {
                return Err(Error::StartTlsRefused(line.trim_end().to_owned()));
            }
            break;
        }
    }
    if !offered {
        return Err(Error::StartTlsRefused(
            "the server does not offer STARTTLS".into(),
        ));
    }
    reader
        .get_mut()
        .write_all(b"s2 STARTTLS\r\n")
        .await
        .map_err(Error::from_io)?;
    loop {
        let line = read_line(&mut reader).await?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("S2 OK") {
            break;
        }
        if upper.starts_with("S2 ") {
            return Err(Error::StartTlsRefused(line.trim_end().to_owned()));
        }
        lines += 1;
        if lines > MAX_PRE_TLS_LINES {
            return Err(Error::StartTlsRefused("too many lines before TLS".into()));
        }
    }
    Ok(reader.into_inner())
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let n = reader
        .take(MAX_PRE_TLS_LINE as u64)
        .read_until(b'\n', &mut line)
        .await
        .map_err(Error::from_io)?;
    if n == 0 {
        return Err(Error::StartTlsRefused(
            "the server closed the connection".into(),
        ));
    }
    if !line.ends_with(b"\n") {
        return Err(Error::StartTlsRefused(
            "a line before TLS is too long".into(),
        ));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// SASL for `AUTHENTICATE`: the initial response first, then empty responses (which
/// is how a client acknowledges an error challenge in XOAUTH2 and OAUTHBEARER).
struct Sasl {
    response: Option<Secret>,
    abort: &'static str,
}

impl async_imap::Authenticator for Sasl {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        match self.response.take() {
            Some(r) => r.expose().to_owned(),
            None => self.abort.to_owned(),
        }
    }
}

async fn login(
    client: async_imap::Client<ImapStream>,
    credentials: &Credentials,
    server: &Server,
) -> Result<async_imap::Session<ImapStream>> {
    let result = match credentials {
        Credentials::Password { user, password } => client.login(user, password.expose()).await,
        Credentials::XOAuth2 { user, token } => {
            let sasl = Sasl {
                response: Some(xoauth2_response(user, token)),
                abort: "",
            };
            client.authenticate("XOAUTH2", sasl).await
        }
        Credentials::OAuthBearer { user, token } => {
            let sasl = Sasl {
                response: Some(oauthbearer_response(user, &server.host, server.port, token)),
                abort: "\x01",
            };
            client.authenticate("OAUTHBEARER", sasl).await
        }
    };
    result.map_err(|(e, _client)| match e {
        async_imap::error::Error::No(msg) | async_imap::error::Error::Bad(msg) => {
            Error::AuthFailed(msg)
        }
        other => Error::from_imap(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, duplex};

    /// Runs the plain-text STARTTLS phase against a scripted server; returns the result
    /// and what the client sent.
    async fn script(server_says: &'static [u8]) -> (Result<()>, String) {
        let (client, mut server) = duplex(64 * 1024);
        server.write_all(server_says).await.unwrap();
        let result = starttls(client).await.map(|_| ());
        let mut sent = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_millis(50), server.read_to_end(&mut sent)).await;
        (result, String::from_utf8_lossy(&sent).into_owned())
    }

    #[tokio::test]
    async fn preauth_or_bye_before_tls_is_refused() {
        for greeting in [
            &b"* PREAUTH logged in already\r\n"[..],
            b"* BYE go away\r\n",
        ] {
            let (result, sent) = script(greeting).await;
            assert!(
                matches!(result, Err(Error::StartTlsRefused(_))),
                "{result:?}"
            );
            assert_eq!(sent, "");
        }
    }

    #[tokio::test]
    async fn a_server_without_starttls_gets_no_starttls_and_no_login() {
        let (result, sent) =
            script(b"* OK hi\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\ns1 OK\r\n").await;
        assert!(
            matches!(result, Err(Error::StartTlsRefused(_))),
            "{result:?}"
        );
        assert_eq!(sent, "s1 CAPABILITY\r\n");
    }

    #[tokio::test]
    async fn a_refused_starttls_is_an_error() {
        let (result, sent) =
            script(b"* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\ns1 OK\r\ns2 NO not today\r\n")
                .await;
        assert!(matches!(result, Err(Error::StartTlsRefused(m)) if m.contains("not today")));
        assert_eq!(sent, "s1 CAPABILITY\r\ns2 STARTTLS\r\n");
    }

    #[tokio::test]
    async fn an_accepted_starttls_hands_over_the_stream_without_the_buffered_bytes() {
        let (client, mut server) = duplex(64 * 1024);
        server
            .write_all(b"* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\ns1 OK\r\ns2 OK go\r\n* injected\r\n")
            .await
            .unwrap();
        let mut stream = starttls(client).await.unwrap();
        server.write_all(b"TLS").await.unwrap();
        let mut next = [0u8; 3];
        stream.read_exact(&mut next).await.unwrap();
        assert_eq!(
            &next, b"TLS",
            "bytes sent before the handshake must be dropped"
        );
    }

    #[test]
    fn folder_names_round_trip_through_modified_utf7() {
        // RFC 3501's example, and a name with '&' and a character outside the BMP.
        assert_eq!(
            decode_folder_name("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        for name in [
            "INBOX",
            "Entwürfe",
            "A & B",
            "Post 📬 box",
            "Gelöschte Elemente",
        ] {
            let encoded = encode_folder_name(name);
            assert!(encoded.is_ascii(), "{encoded}");
            assert_eq!(
                decode_folder_name(&encoded).as_deref(),
                Some(name),
                "{encoded}"
            );
        }
        assert_eq!(encode_folder_name("A & B"), "A &- B");
        for bad in ["&", "&Jjo", "&!!!-", "&AGE-x&"] {
            assert_eq!(decode_folder_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn vanished_ranges_are_cut_to_the_known_uids_and_merged_without_expanding() {
        assert_eq!(
            merge_ranges(vec![5..=5, 2..=3, 4..=4, 9..=u32::MAX, 0..=0], 10),
            [2..=5, 9..=9]
        );
        assert_eq!(
            merge_ranges(vec![1..=u32::MAX], u32::MAX),
            [1..=u32::MAX - 1]
        );
        assert!(merge_ranges(vec![1..=3], 1).is_empty());
        assert!(merge_ranges(vec![1..=3], 0).is_empty());
        assert_eq!(quoted("a\\b\"c").unwrap(), "\"a\\\\b\\\"c\"");
        assert!(quoted("a\r\nb").is_err());
    }

    #[test]
    fn keywords_cannot_inject_syntax() {
        assert!(Flag::keyword("$Forwarded").is_ok());
        for bad in ["", "a b", "a)", "(a", "a\"", "a\\", "a{1}", "a\r\n", "é"] {
            assert!(Flag::keyword(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            flag_list(&[Flag::Seen, Flag::keyword("$X").unwrap()]),
            "(\\Seen $X)"
        );
        assert!(uid_set(&[]).is_err());
        assert_eq!(uid_set(&[3, 1, 2]).unwrap(), "3,1,2");
    }
}
