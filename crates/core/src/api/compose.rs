//! Writing mail: whose keys are known, attachments, drafts, sending through the outbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::views::{
    Compose, ComposeRequest, DraftSummary, DraftView, OutboxEntry, OutboxStepEvent, PickedFile,
    RecipientKey,
};
use super::{Core, CoreEvent, MailEvent, Open, Picked};
use crate::mailbox::{ComposeAttachment, random_id};
use crate::{CoreError, keys};

/// Largest attachment accepted (mail servers refuse far smaller messages anyway).
pub const MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;

/// See [`Core::compose`].
#[derive(Debug, Clone, Copy)]
pub struct ComposeApi<'a> {
    pub(super) core: &'a Core,
}

impl ComposeApi<'_> {
    /// Whether each address has a known key; unknown ones are asked of the key directory
    /// first (a key found is remembered as a confirmed contact). Offline, or with nothing
    /// published, the answer is simply "no key".
    pub async fn recipient_keys(
        &self,
        addresses: Vec<String>,
    ) -> Result<Vec<RecipientKey>, CoreError> {
        self.core
            .job(move |open| async move {
                let o = Arc::clone(&open);
                let own = crate::task::blocking(move || {
                    Ok(keys::own_key(&o.u, &*o.clock)?
                        .map(|k| k.addresses(keys::system_time(&*o.clock)))
                        .unwrap_or_default())
                })
                .await?;
                let has_server = crate::sync::account(&open.u)?.is_some();
                let mut out = Vec::new();
                for address in addresses {
                    let address = address.trim().to_owned();
                    if own.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
                        out.push(RecipientKey {
                            address,
                            has_key: true,
                            confirmed: true,
                        });
                        continue;
                    }
                    let mut contact = keys::contact(&open.u, &address)?;
                    if contact.is_none() && has_server {
                        let _ = crate::sync::lookup_directory(&open.u, &address, &open.clock).await;
                        contact = keys::contact(&open.u, &address)?;
                    }
                    out.push(RecipientKey {
                        address,
                        has_key: contact.is_some(),
                        confirmed: contact.is_some_and(|c| c.confirmed),
                    });
                }
                Ok(out)
            })
            .await
    }

    /// Remembers files the user picked (through the shell's own dialog), by token.
    pub async fn pick_files(&self, paths: Vec<PathBuf>) -> Result<Vec<PickedFile>, CoreError> {
        self.core
            .with_open(move |open| {
                let mut picked = Vec::new();
                for path in paths {
                    let meta = std::fs::metadata(&path).map_err(|e| CoreError::Io {
                        what: "reading a picked file",
                        path: path.clone(),
                        source: e,
                    })?;
                    if !meta.is_file() {
                        return Err(CoreError::BadInput(format!(
                            "{} is not a file",
                            path.display()
                        )));
                    }
                    if meta.len() > MAX_ATTACHMENT_BYTES {
                        return Err(CoreError::BadInput(format!(
                            "{} is larger than {} MB",
                            path.display(),
                            MAX_ATTACHMENT_BYTES / 1024 / 1024
                        )));
                    }
                    let token = random_id()?;
                    let name = file_name(&path);
                    open.picked_mut().insert(token.clone(), Picked::File(path));
                    picked.push(PickedFile {
                        token,
                        name,
                        size: meta.len(),
                    });
                }
                Ok(picked)
            })
            .await
    }

    /// Saves a draft (sealed); returns its id. Saving a compose that holds nothing (no
    /// recipient, subject, text or attachment) deletes its draft instead and returns
    /// `None`: an empty form is not a draft.
    pub async fn save_draft(&self, request: ComposeRequest) -> Result<Option<i64>, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let account = mb.account(&request.account_id)?;
                let draft_id = request.draft_id;
                let compose = with_attachments(open, &request)?;
                if is_empty(&compose) {
                    if let Some(id) = draft_id {
                        mb.delete_draft(id)?;
                    }
                    return Ok(None);
                }
                mb.save_draft(&account, draft_id, &compose, &*open.clock)
                    .map(Some)
            })
            .await
    }

    /// The account's drafts, most recently saved first.
    pub async fn drafts(&self, account: String) -> Result<Vec<DraftSummary>, CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = mb.account(&account)?;
                Ok(mb
                    .drafts(&account)?
                    .into_iter()
                    .map(|d| DraftSummary {
                        id: d.id,
                        to: d.compose.to.clone(),
                        subject: d.compose.subject.clone(),
                        snippet: d.compose.text.chars().take(120).collect(),
                        updated_at: d.updated_at,
                    })
                    .collect())
            })
            .await
    }

    /// Reopens a draft: its text, and its attachments as tokens that later saves and the
    /// send take like picked files.
    pub async fn open_draft(&self, account: String, id: i64) -> Result<DraftView, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let account = mb.account(&account)?;
                let mut draft = mb
                    .drafts(&account)?
                    .into_iter()
                    .find(|d| d.id == id)
                    .ok_or_else(|| CoreError::NotInMailStore(format!("draft {id}")))?;
                let kept = std::mem::take(&mut draft.compose.attachments);
                let mut attachments = Vec::new();
                for a in kept {
                    let token = random_id()?;
                    attachments.push(PickedFile {
                        token: token.clone(),
                        name: a.name.clone(),
                        size: a.data.len() as u64,
                    });
                    open.picked_mut().insert(token, Picked::Kept(a));
                }
                let c = draft.compose;
                Ok(DraftView {
                    id: draft.id,
                    account_id: account.id,
                    to: c.to,
                    cc: c.cc,
                    bcc: c.bcc,
                    subject: c.subject,
                    text: c.text,
                    encrypt: c.encrypt,
                    sign: c.sign,
                    in_reply_to: c.in_reply_to,
                    attachments,
                })
            })
            .await
    }

    /// Deletes a draft; `false` if there was none with that id.
    pub async fn delete_draft(&self, id: i64) -> Result<bool, CoreError> {
        self.core.with_store(move |_, mb| mb.delete_draft(id)).await
    }

    /// The account's outbox: what waits to be sent, is being sent, or may have been sent
    /// and waits for the user's word (`inDoubt`).
    pub async fn outbox(&self, account: Option<String>) -> Result<Vec<OutboxEntry>, CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = super::mail::pick(mb, account.as_deref())?;
                mb.outbox(&account)
            })
            .await
    }

    /// The user's answer to an entry in doubt: send it again (the account's worker is
    /// woken to do it now).
    pub async fn resend(&self, account: Option<String>, id: i64) -> Result<(), CoreError> {
        self.core
            .with_store(move |open, mb| {
                let account = super::mail::pick(mb, account.as_deref())?;
                mb.resend_outbox_entry(&account, id)?;
                open.wake_workers();
                Ok(())
            })
            .await
    }

    /// The user's answer to an entry in doubt (or one not yet sent): do not send it.
    pub async fn discard(&self, account: Option<String>, id: i64) -> Result<(), CoreError> {
        self.core
            .with_store(move |_, mb| {
                let account = super::mail::pick(mb, account.as_deref())?;
                mb.discard_outbox_entry(&account, id)
            })
            .await
    }

    /// Puts the message in the outbox (encrypted and signed as asked) and wakes the
    /// account's worker, which sends it; the draft goes once the message is queued.
    /// Returns its Message-ID.
    pub async fn send(&self, request: ComposeRequest) -> Result<String, CoreError> {
        self.core
            .with_store(move |open, mb| {
                let account = mb.account(&request.account_id)?;
                let compose = with_attachments(open, &request)?;
                let entry = mb.queue(&account, &compose, &*open.clock)?;
                if let Some(draft) = request.draft_id {
                    mb.delete_draft(draft)?;
                }
                open.emit(CoreEvent::Mail(MailEvent::Outbox {
                    account_id: account.id.clone(),
                    message_id: entry.message_id.clone(),
                    step: OutboxStepEvent::Queued,
                    message: None,
                }));
                if let Some(w) = open.workers_mut().get(&account.id) {
                    w.wake();
                }
                Ok(entry.message_id)
            })
            .await
    }
}

/// Nothing a user wrote: no recipient, subject, text or attachment.
fn is_empty(c: &Compose) -> bool {
    c.to.iter()
        .chain(&c.cc)
        .chain(&c.bcc)
        .all(|a| a.trim().is_empty())
        && c.subject.trim().is_empty()
        && c.text.trim().is_empty()
        && c.attachments.is_empty()
}

/// The compose of `request` with its picked files read in.
fn with_attachments(open: &Open, request: &ComposeRequest) -> Result<Compose, CoreError> {
    // Addresses as typed: blanks and empty entries dropped.
    let clean = |list: &[String]| -> Vec<String> {
        list.iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect()
    };
    let mut compose = Compose {
        to: clean(&request.to),
        cc: clean(&request.cc),
        bcc: clean(&request.bcc),
        subject: request.subject.clone(),
        text: request.body.clone(),
        encrypt: request.encrypt,
        sign: request.sign,
        attachments: Vec::new(),
        in_reply_to: request.in_reply_to.clone(),
    };
    // Files are read outside the lock of the picked map.
    let picked: Vec<Result<PathBuf, ComposeAttachment>> = {
        let map = open.picked_mut();
        request
            .attachments
            .iter()
            .map(|t| match map.get(t) {
                Some(Picked::File(path)) => Ok(Ok(path.clone())),
                Some(Picked::Kept(a)) => Ok(Err(a.clone())),
                None => Err(CoreError::BadInput(
                    "that attachment is gone; pick it again".into(),
                )),
            })
            .collect::<Result<_, _>>()?
    };
    for item in picked {
        let attachment = match item {
            Ok(path) => ComposeAttachment {
                data: std::fs::read(&path).map_err(|e| CoreError::Io {
                    what: "reading an attachment",
                    path: path.clone(),
                    source: e,
                })?,
                name: file_name(&path),
                content_type: content_type(&path).to_owned(),
            },
            Err(kept) => kept,
        };
        compose.attachments.push(attachment);
    }
    Ok(compose)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into())
}

/// The MIME type of a file, by its extension; `application/octet-stream` otherwise.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "asc" => "application/pgp-keys",
        "odt" => "application/vnd.oasis.opendocument.text",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type(Path::new("/x/Report.PDF")), "application/pdf");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn an_empty_form_is_not_a_draft() {
        let mut c = Compose::default();
        assert!(is_empty(&c));
        c.encrypt = true;
        assert!(is_empty(&c), "a ticked box is not content");
        c.subject = "Hi".into();
        assert!(!is_empty(&c));
    }
}
