//! Opened messages, kept while the profile is unlocked so that one opening decrypts a
//! message once: the reader's view, the mail frame's HTML and attachment saving are all
//! served from here.
//!
//! Bounded by count ([`MAX_ENTRIES`]) and by the decrypted bytes held ([`MAX_BYTES`]);
//! the least recently used entry goes first. What an entry holds (text, HTML,
//! attachments) is overwritten with zeros when it is evicted, replaced, or dropped with
//! the unlocked profile on lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use sealpost_pgp::OpenedMail;
use zeroize::Zeroize;

use super::views::MessageView;

/// Entries kept at most.
pub(super) const MAX_ENTRIES: usize = 32;
/// Decrypted bytes kept at most (one larger message is still kept, alone).
pub(super) const MAX_BYTES: usize = 64 * 1024 * 1024;

/// One opened message: what decrypting it gave, and the view built from it.
pub(super) struct Opened {
    /// The decrypted, parsed message; `None` when it is not mail (kept raw).
    pub(super) mail: Option<OpenedMail>,
    /// The reader's view (with the remote-content choice of when it was built).
    pub(super) view: MessageView,
    /// The cleaned HTML for the frame, with the same choice.
    pub(super) html: Option<String>,
}

impl Opened {
    fn bytes(&self) -> usize {
        let mail = self.mail.as_ref().map_or(0, |m| {
            m.text.as_ref().map_or(0, String::len)
                + m.html.as_ref().map_or(0, String::len)
                + m.attachments.iter().map(|a| a.data.len()).sum::<usize>()
        });
        mail + self.view.text.len() + self.html.as_ref().map_or(0, String::len)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(m) = &mut self.mail {
            m.subject.zeroize();
            m.text.zeroize();
            m.html.zeroize();
            for a in &mut m.attachments {
                a.data.zeroize();
                a.name.zeroize();
            }
        }
        self.view.text.zeroize();
        self.view.subject.zeroize();
        self.view.summary.subject.zeroize();
        self.html.zeroize();
    }
}

/// The cache: most recently used last.
#[derive(Default)]
pub(super) struct OpenedCache {
    entries: Mutex<VecDeque<(i64, Arc<Opened>)>>,
}

impl OpenedCache {
    /// The opened message `id`, if kept (it becomes the most recently used).
    pub(super) fn get(&self, id: i64) -> Option<Arc<Opened>> {
        let mut entries = self.lock();
        let at = entries.iter().position(|(i, _)| *i == id)?;
        let entry = entries.remove(at)?;
        let found = Arc::clone(&entry.1);
        entries.push_back(entry);
        Some(found)
    }

    /// Keeps `opened` as message `id`, replacing what was kept for it, and evicts the
    /// least recently used entries beyond the bounds.
    pub(super) fn put(&self, id: i64, opened: Arc<Opened>) {
        let mut entries = self.lock();
        entries.retain(|(i, _)| *i != id);
        entries.push_back((id, opened));
        let mut bytes: usize = entries.iter().map(|(_, o)| o.bytes()).sum();
        while entries.len() > MAX_ENTRIES || (bytes > MAX_BYTES && entries.len() > 1) {
            match entries.pop_front() {
                Some((_, o)) => bytes = bytes.saturating_sub(o.bytes()),
                None => break,
            }
        }
    }

    /// Forgets message `id` (it changed, or left the store).
    pub(super) fn forget(&self, id: i64) {
        self.lock().retain(|(i, _)| *i != id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(i64, Arc<Opened>)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
