//! Reading mail: folders, the list, search, the reader (one decryption per opening),
//! flags, and syncing on demand. The mail accounts themselves are in `mail_accounts.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use sealpost_mail::Flag;

use super::reading;
use super::views::{
    AutocryptSeen, FolderInfo, Frame, MailSynced, MessagePage, MessageSummary, MessageView,
    OpenedFile,
};
use super::{Core, CoreEvent, Open};
use crate::mailbox::{MailAccount, Mailbox, MessageState};
use crate::{CoreError, keys};

/// Rows a page holds at most.
pub const MAX_PAGE: u32 = 500;

/// See [`Core::mail`].
#[derive(Debug, Clone, Copy)]
pub struct MailApi<'a> {
    pub(super) core: &'a Core,
}

impl MailApi<'_> {
    /// The folders of an account.
    pub async fn folders(&self, account: String) -> Result<Vec<FolderInfo>, CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = mb.account(&account)?;
                mb.folders(&account)
            })
            .await
    }

    /// A window of a folder, newest first, and the folder's size.
    pub async fn messages(
        &self,
        account: String,
        folder: String,
        offset: u32,
        limit: u32,
    ) -> Result<MessagePage, CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = mb.account(&account)?;
                let (total, items) =
                    mb.list_page(&account, &folder, offset, limit.min(MAX_PAGE))?;
                Ok(MessagePage {
                    total,
                    offset,
                    items,
                })
            })
            .await
    }

    /// Messages of an account containing every word of `query`, newest first.
    pub async fn search(
        &self,
        account: String,
        query: String,
        limit: u32,
    ) -> Result<MessagePage, CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = mb.account(&account)?;
                let (total, items) = mb.search_page(&account, &query, limit.min(MAX_PAGE))?;
                Ok(MessagePage {
                    total,
                    offset: 0,
                    items,
                })
            })
            .await
    }

    /// Opens a message: decrypted and verified once (then kept for the frame and the
    /// attachments), HTML cleaned, marked seen. Nothing on this path waits for the
    /// network: a signature by a key not yet known or confirmed is looked up in the key
    /// directory in the background, and [`CoreEvent::MessageChanged`] follows if that
    /// changed what the message says.
    pub async fn open_message(&self, id: i64) -> Result<MessageView, CoreError> {
        let (view, seen_now) = self
            .core
            .with_store(move |open, mb| {
                let opened = reading::cached_or_open(open, mb, id)?;
                let mut view = opened.view.clone();
                let unseen = !view.summary.flags.iter().any(|f| f == "\\Seen");
                if unseen {
                    mb.set_flag_local(id, Flag::Seen, true)?;
                    view.summary.flags.push("\\Seen".into());
                }
                Ok((view, unseen))
            })
            .await?;
        let open = self.core.open()?;
        if seen_now {
            open.wake_workers();
        }
        if reading::worth_a_lookup(&view) {
            look_up_sender(&open, id, view.from.clone());
        }
        Ok(view)
    }

    /// The mail frame of message `id`: its cleaned HTML, from the opening the reader
    /// made (opened now if it is no longer kept); `None` when it has no HTML.
    pub async fn frame(&self, id: i64) -> Result<Option<Frame>, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let opened = reading::cached_or_open(open, mb, id)?;
                Ok(opened.html.clone().map(|html| Frame {
                    html,
                    remote_allowed: opened.view.remote_content_allowed,
                }))
            })
            .await
    }

    /// The name of attachment `index` of message `id`, reduced to one harmless file name
    /// (for a save dialog).
    pub async fn attachment_name(&self, id: i64, index: usize) -> Result<String, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let opened = reading::cached_or_open(open, mb, id)?;
                opened
                    .view
                    .attachments
                    .get(index)
                    .map(|a| safe_file_name(&a.name))
                    .ok_or_else(|| CoreError::NotInMailStore(format!("attachment {index} of {id}")))
            })
            .await
    }

    /// Writes attachment `index` of message `id` to `path` (chosen by the user): a
    /// temporary file beside it, renamed into place, so a crash leaves no half file.
    pub async fn save_attachment(
        &self,
        id: i64,
        index: usize,
        path: PathBuf,
    ) -> Result<(), CoreError> {
        self.core
            .with_store(move |open, mb| {
                let opened = reading::cached_or_open(open, mb, id)?;
                let attachment = opened
                    .mail
                    .as_ref()
                    .and_then(|m| m.attachments.get(index))
                    .ok_or_else(|| {
                        CoreError::NotInMailStore(format!("attachment {index} of {id}"))
                    })?;
                write_atomically(&path, &attachment.data)
            })
            .await
    }

    /// Allows remote content from the sender of message `id` from now on; the message's
    /// view with it (nothing is decrypted again).
    pub async fn allow_remote_content(&self, id: i64) -> Result<MessageView, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let opened = reading::cached_or_open(open, mb, id)?;
                reading::allow_remote_content(&open.u, &opened.view.from, &*open.clock)?;
                let again = Arc::new(reading::rebuild(&open.u, &opened)?);
                open.opened.put(id, Arc::clone(&again));
                Ok(again.view.clone())
            })
            .await
    }

    /// Sets or clears a flag here at once, and on the server with the account's next
    /// cycle (started now).
    pub async fn set_flag(&self, id: i64, flag: Flag, on: bool) -> Result<(), CoreError> {
        self.set_flags(
            id,
            if on { vec![flag.clone()] } else { vec![] },
            if on { vec![] } else { vec![flag] },
        )
        .await
    }

    /// Sets the flags in `add` and clears those in `remove`, here at once and on the
    /// server with the account's next cycle (started now).
    pub async fn set_flags(
        &self,
        id: i64,
        add: Vec<Flag>,
        remove: Vec<Flag>,
    ) -> Result<(), CoreError> {
        self.core
            .with_store(move |open, mb| {
                for flag in add {
                    mb.set_flag_local(id, flag, true)?;
                }
                for flag in remove {
                    mb.set_flag_local(id, flag, false)?;
                }
                open.opened.forget(id);
                Ok(())
            })
            .await?;
        self.core.open()?.wake_workers();
        Ok(())
    }

    /// The list row of message `id`.
    pub async fn summary(&self, id: i64) -> Result<MessageSummary, CoreError> {
        self.core.with_store(move |_, mb| mb.summary(id)).await
    }

    /// Moves message `id` to `folder` on the server now, and here.
    pub async fn move_message(&self, id: i64, folder: String) -> Result<(), CoreError> {
        self.core
            .job(move |open| async move {
                let mut mb = open.mailbox()?;
                let account = mb.account_of(id)?;
                let moved = mb.move_message(&account, id, &folder).await;
                open.give_back(mb);
                open.opened.forget(id);
                moved
            })
            .await
    }

    /// Asks every mail worker for a cycle now (sync, outbox, back to IDLE).
    pub async fn sync_now(&self) -> Result<(), CoreError> {
        self.core.open()?.wake_workers();
        Ok(())
    }

    /// One whole cycle of `account` (the only one when `None`), now: the outbox is sent,
    /// flag changes are pushed, every folder is synced, and the key directory's proof
    /// mails that arrived are spent. What a mail worker does each cycle, for a shell
    /// that runs none (the command line).
    pub async fn sync_once(&self, account: Option<String>) -> Result<MailSynced, CoreError> {
        self.core
            .job(move |open| async move {
                let mut mb = open.mailbox()?;
                let result = sync_cycle(&open, &mut mb, account.as_deref()).await;
                open.give_back(mb);
                result
            })
            .await
    }

    /// Sends what waits in the outbox of `account` (the only one when `None`) now.
    pub async fn flush_outbox(
        &self,
        account: Option<String>,
    ) -> Result<crate::mailbox::FlushReport, CoreError> {
        self.core
            .job(move |open| async move {
                let mut mb = open.mailbox()?;
                let result = async {
                    let account = pick(&mb, account.as_deref())?;
                    mb.flush_outbox(&account, &*open.clock).await
                }
                .await;
                open.give_back(mb);
                result
            })
            .await
    }

    /// Opens a message file (RFC 5322 bytes) as the reader would, with the profile's
    /// keys; a valid Autocrypt key in its headers is remembered for the sender.
    pub async fn open_file(&self, raw: Vec<u8>) -> Result<OpenedFile, CoreError> {
        self.core
            .with_open(move |open| {
                let mail = reading::decrypt(open, &raw)?;
                let autocrypt = mail.autocrypt.as_ref().map(|ac| {
                    let observation = sealpost_pgp::contact::public_bytes(&ac.cert)
                        .map_err(CoreError::from)
                        .and_then(|bytes| {
                            keys::observe_key(
                                &open.u,
                                &ac.addr,
                                &bytes,
                                keys::KeySource::Autocrypt,
                                &*open.clock,
                            )
                        });
                    AutocryptSeen {
                        addr: ac.addr.clone(),
                        fingerprint: ac.fingerprint().to_hex(),
                        observation: super::keys::observation_view(observation),
                    }
                });
                let summary = MessageSummary {
                    id: 0,
                    folder: String::new(),
                    uid: 0,
                    flags: Vec::new(),
                    date: mail.date.unwrap_or(0),
                    from: String::new(),
                    subject: String::new(),
                    encrypted: !matches!(
                        mail.encryption,
                        sealpost_pgp::EncryptionStatus::NotEncrypted
                    ),
                    signed: false,
                    state: MessageState::Ready,
                    size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
                };
                let opened = reading::build(&open.u, summary, Some(mail))?;
                Ok(OpenedFile {
                    message: opened.view.clone(),
                    autocrypt,
                })
            })
            .await
    }
}

/// A cycle of one account, as [`MailApi::sync_once`] runs it.
async fn sync_cycle(
    open: &Arc<Open>,
    mb: &mut Mailbox,
    account: Option<&str>,
) -> Result<MailSynced, CoreError> {
    let account = pick(mb, account)?;
    let clock = Arc::clone(&open.clock);
    let outbox = mb.flush_outbox(&account, &*clock).await?;
    let report = mb.sync(&account, &*clock).await?;
    let mut published_keys = Vec::new();
    if !report.directory_tokens.is_empty() {
        let remote = open.remote()?;
        for token in &report.directory_tokens {
            match remote.confirm_published_key(token).await {
                Ok(entry) => published_keys.push(entry.address.to_string()),
                // Someone else's claim, or spent already: nothing to do.
                Err(CoreError::Sync(e)) if e.api_code() == Some("unknown_token") => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(MailSynced {
        account: account.address,
        folders: report.folders,
        new: report.new,
        removed: report.removed,
        flags_changed: report.flags_changed,
        unreadable: report.unreadable,
        outbox,
        published_keys,
    })
}

/// The account `which` names (id or address), or the only one.
pub(super) fn pick(mb: &Mailbox, which: Option<&str>) -> Result<MailAccount, CoreError> {
    if let Some(a) = which {
        return mb.account(a);
    }
    let mut all = mb.accounts()?;
    match all.len() {
        0 => Err(CoreError::NoMailAccount("(none yet: add one first)".into())),
        1 => Ok(all.remove(0)),
        _ => Err(CoreError::NoMailAccount(
            "(this profile has several: name one)".into(),
        )),
    }
}

/// Looks the sender of message `id` up in the key directory in the background; when it
/// knew the key, the opened message is forgotten and the shell told to open it again.
fn look_up_sender(open: &Arc<Open>, id: i64, from: String) {
    let o = Arc::clone(open);
    open.background(async move {
        if !matches!(crate::sync::account(&o.u), Ok(Some(_))) {
            return;
        }
        let found = crate::sync::lookup_directory(&o.u, &from, &o.clock).await;
        if matches!(
            found,
            Ok(Some(keys::Observation::New | keys::Observation::Known))
        ) {
            o.opened.forget(id);
            o.emit(CoreEvent::MessageChanged { id });
        }
    });
}

/// A sender's file name, reduced to one harmless path component.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim_start_matches('.')
        .trim()
        .to_owned();
    if clean.is_empty() {
        "attachment".to_owned()
    } else {
        clean
    }
}

fn write_atomically(path: &std::path::Path, data: &[u8]) -> Result<(), CoreError> {
    let io = |e: std::io::Error| CoreError::Io {
        what: "saving an attachment",
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into());
    let tmp = dir.join(format!(".{name}.sealpost-partial"));
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_cannot_leave_the_chosen_folder() {
        assert_eq!(safe_file_name("../../.bashrc"), "bashrc");
        assert_eq!(safe_file_name("C:\\Windows\\evil.exe"), "evil.exe");
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name("report.pdf"), "report.pdf");
    }

    #[test]
    fn attachments_are_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomically(&path, b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/a.bin");
        assert!(write_atomically(&missing, b"x").is_err());
    }
}
