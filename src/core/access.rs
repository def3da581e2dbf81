//! The one door to what people wrote: every read of a conversation's content (history pages,
//! catch-up, search; later attachments, exports and the reviewer) goes through here. The core
//! task decides `may(actor, conversation, action)` (`hub/access.rs`) from its live state; only
//! then is the store read, on a blocking thread, with the `ContentKey` that nothing else
//! holds. The records policy adds its rules to `may`.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Command, Hub, HubError};
use crate::model::{ConvId, Seq, UserId, now_millis};
use crate::protocol::{self, ErrorCode, Refusal};
use crate::store::records::{AuditRecord, MessageRecord};
use crate::store::search::{Found, Page, Term};
use crate::store::{ContentKey, Store, StoreError};

/// What someone wants to do with a conversation's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read its history: pages back, or catch up after a reconnect.
    History,
    /// Find its messages by keyword.
    Search,
    /// Read and search it in the archive, with every earlier version, as a reviewer (an
    /// audited read of any archived conversation, member or not).
    Review,
    /// Export its pseudonymous transcript for training, as an admin (audited).
    Transcript,
}

/// The store with the key to its content; shared by the handle and the core task.
pub(crate) struct Door {
    store: Store,
    key: ContentKey,
}

impl Door {
    pub(crate) fn new(store: Store, key: ContentKey) -> Door {
        Door { store, key }
    }

    /// One message as stored, for the core's own checks (who wrote it, before an edit).
    pub(crate) fn message(&self, conv: ConvId, seq: Seq) -> Result<Option<MessageRecord>, StoreError> {
        self.store.message(&self.key, conv, seq)
    }

    /// One message as stored with its reactions, for the core's checks of a reaction.
    pub(crate) fn message_with_reactions(
        &self,
        conv: ConvId,
        seq: Seq,
    ) -> Result<Option<(MessageRecord, crate::store::reactions::Reactions)>, StoreError> {
        self.store.message_with_reactions(&self.key, conv, seq)
    }
}

/// Which part of a conversation's history.
#[derive(Clone, Copy, Debug)]
pub enum HistoryRange {
    /// Up to `limit` messages with a seq below this, newest last.
    Before(Seq),
    /// Every change after this seq (new, edited, deleted), for catching up.
    After(Seq),
}

pub struct HistoryPage {
    pub messages: Vec<protocol::Message>,
    pub more: bool,
    /// The newest committed seq, as the conversation's readers were last told.
    pub last_seq: Seq,
}

fn not_found() -> HubError {
    HubError::Refused(Refusal::not_found())
}

impl Hub {
    /// The newest committed seq of `conv` if `actor` may do `action` with it; `None` for a
    /// conversation that does not exist or that they may not see (indistinguishable).
    pub async fn may(&self, actor: UserId, conv: ConvId, action: Action) -> Option<Seq> {
        self.ask(actor, conv, action).await.map(|allowed| allowed.last_seq)
    }

    async fn ask(&self, actor: UserId, conv: ConvId, action: Action) -> Option<Allowed> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::May { actor, conv, action, reply }).await;
        rx.await.ok().flatten()
    }

    /// Every conversation `actor` may do `action` with.
    pub async fn all_they_may(&self, actor: UserId, action: Action) -> Vec<ConvId> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::AllTheyMay { actor, action, reply }).await;
        rx.await.unwrap_or_default()
    }

    /// A page of `conv`'s history, if `actor` may read it.
    pub async fn history(&self, actor: UserId, conv: ConvId, range: HistoryRange, limit: usize) -> Result<HistoryPage, HubError> {
        let Allowed { last_seq, live, live_reactions } = self.ask(actor, conv, Action::History).await.ok_or_else(not_found)?;
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        let (stored, more, mut reactions) = blocking(move || -> Result<_, StoreError> {
            let (stored, more) = match range {
                HistoryRange::After(after) => door.store.changes_after(&door.key, conv, after, limit)?,
                HistoryRange::Before(before) => door.store.messages_before(&door.key, conv, before, limit)?,
            };
            let seqs: Vec<Seq> = stored.iter().filter(|(_, r)| !r.deleted).map(|(seq, _)| *seq).collect();
            let reactions = door.store.reactions(&door.key, conv, &seqs)?;
            Ok((stored, more, reactions))
        })
        .await?;
        reactions.extend(live_reactions);
        let (records, more) = with_live(stored, more, live, range, limit);
        let messages = records
            .iter()
            .map(|(seq, r)| {
                let mut message = protocol::message_frame(conv, *seq, r);
                if let Some(given) = reactions.get(seq).filter(|_| !r.deleted) {
                    message.reactions = protocol::reactions_info(given);
                }
                message
            })
            .collect();
        Ok(HistoryPage { messages, more, last_seq })
    }

    /// A page of the messages with every one of `terms` (and by `from`, a user name, when
    /// given) in `scope` or, without it, every conversation `actor` may search.
    /// With `Action::Review`, the same over the archived conversations a reviewer may read.
    pub async fn search(
        &self,
        actor: UserId,
        action: Action,
        scope: Option<ConvId>,
        from: Option<String>,
        mut terms: Vec<Term>,
        page: Page,
    ) -> Result<Found, HubError> {
        let convs = match scope {
            Some(conv) => {
                self.may(actor, conv, action).await.ok_or_else(not_found)?;
                vec![conv]
            }
            None => self.all_they_may(actor, action).await,
        };
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        blocking(move || {
            if let Some(name) = from {
                let Some((author, _)) = door.store.user_by_name(&name)? else {
                    return Err(HubError::Refused(Refusal::new(ErrorCode::BadRequest, format!("there is no user named {name}"))));
                };
                terms.push(Term::From(author));
            }
            // A reviewer finds what was edited or deleted away too.
            let found = match action {
                Action::Review => door.store.search_with_versions(&door.key, &convs, &terms, &page)?,
                _ => door.store.search(&door.key, &convs, &terms, &page)?,
            };
            Ok(found)
        })
        .await
    }
}

/// A message as a reviewer reads it: as users see it now, with every earlier version.
pub struct Reviewed {
    pub message: protocol::Message,
    pub versions: Vec<protocol::Message>,
}

impl Hub {
    /// The archived conversations `actor` may review (none unless they are a reviewer).
    pub async fn reviewable(&self, actor: UserId) -> Vec<protocol::Conversation> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Reviewable { actor, reply }).await;
        rx.await.unwrap_or_default()
    }

    /// Writes what a reviewer did to the audit log and waits until it is on disk: a reviewer
    /// is answered only once the log holds the read.
    pub async fn audit(
        &self,
        reviewer: UserId,
        action: &str,
        conv: Option<ConvId>,
        query: String,
        results: usize,
    ) -> Result<(), HubError> {
        let record = AuditRecord { ts: now_millis(), reviewer, action: action.into(), conv, query, results: results as u64 };
        tracing::info!(reviewer = reviewer.0, action, conv = conv.map(|c| c.0), results, "reviewer action audited");
        let (reply, rx) = oneshot::channel();
        self.send(Command::Audit { record, reply }).await;
        rx.await.map_err(|_| HubError::Gone)?.map_err(HubError::Storage)
    }

    /// Up to `limit` audit entries after entry `after` (admins only; checked by the caller).
    pub async fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>, HubError> {
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        blocking(move || door.store.audit_log(after, limit)).await
    }

    /// Every message of `conv` as kept now (at most `limit`), for an admin's transcript.
    pub async fn transcript(&self, actor: UserId, conv: ConvId, limit: usize) -> Result<Vec<MessageRecord>, HubError> {
        self.may(actor, conv, Action::Transcript).await.ok_or_else(not_found)?;
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        // Every change after seq 0 is the whole conversation, each message once, by seq.
        let (all, _) = blocking(move || door.store.changes_after(&door.key, conv, Seq(0), limit)).await?;
        Ok(all.into_iter().map(|(_, r)| r).collect())
    }

    /// A page of an archived conversation with the earlier versions of each message, if
    /// `actor` is a reviewer; the read is written to the audit log before it is answered.
    pub async fn review_history(
        &self,
        actor: UserId,
        conv: ConvId,
        range: HistoryRange,
        limit: usize,
    ) -> Result<(Vec<Reviewed>, bool), HubError> {
        self.may(actor, conv, Action::Review).await.ok_or_else(not_found)?;
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        let (page, more) = blocking(move || -> Result<_, StoreError> {
            let (records, more) = match range {
                HistoryRange::After(after) => door.store.changes_after(&door.key, conv, after, limit)?,
                HistoryRange::Before(before) => door.store.messages_before(&door.key, conv, before, limit)?,
            };
            let mut page = Vec::with_capacity(records.len());
            for (seq, record) in records {
                // Only a changed message has earlier versions.
                let versions = if record.rev != seq.0 { door.store.versions(&door.key, conv, seq)? } else { Vec::new() };
                page.push(Reviewed {
                    message: protocol::message_frame(conv, seq, &record),
                    versions: versions.iter().map(|v| protocol::message_frame(conv, seq, v)).collect(),
                });
            }
            Ok((page, more))
        })
        .await?;
        Ok((page, more))
    }

    /// `found` (a reviewer's search results) as a reviewer reads them, with each message's
    /// earlier versions; conversations `actor` may not review are left out.
    pub async fn reviewed(&self, actor: UserId, found: Vec<(ConvId, Seq, MessageRecord)>) -> Result<Vec<Reviewed>, HubError> {
        let mut allowed = std::collections::BTreeSet::new();
        for conv in found.iter().map(|(conv, ..)| *conv).collect::<std::collections::BTreeSet<_>>() {
            if self.may(actor, conv, Action::Review).await.is_some() {
                allowed.insert(conv);
            }
        }
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        blocking(move || -> Result<_, StoreError> {
            let mut page = Vec::with_capacity(found.len());
            for (conv, seq, record) in found.into_iter().filter(|(conv, ..)| allowed.contains(conv)) {
                let versions = if record.rev != seq.0 { door.store.versions(&door.key, conv, seq)? } else { Vec::new() };
                page.push(Reviewed {
                    message: protocol::message_frame(conv, seq, &record),
                    versions: versions.iter().map(|v| protocol::message_frame(conv, seq, v)).collect(),
                });
            }
            Ok(page)
        })
        .await
    }
}

/// What the core answers a reader it lets in: the newest committed seq, and for a history
/// read the messages it holds in memory only (not recorded), which the file lacks.
pub(crate) struct Allowed {
    pub last_seq: Seq,
    pub live: Vec<(Seq, MessageRecord)>,
    /// The reactions of those messages.
    pub live_reactions: std::collections::HashMap<Seq, crate::store::reactions::Reactions>,
}

type Records = (Vec<(Seq, MessageRecord)>, bool);

/// A history page from the file (`stored`, `more`) with the messages held in memory merged
/// in, as if they were in the file: the same order, limit and paging promise as the store's.
fn with_live(
    stored: Vec<(Seq, MessageRecord)>,
    more: bool,
    live: Vec<(Seq, MessageRecord)>,
    range: HistoryRange,
    limit: usize,
) -> Records {
    if live.is_empty() {
        return (stored, more);
    }
    let mut page = stored;
    match range {
        HistoryRange::Before(before) => {
            page.extend(live.into_iter().filter(|(seq, r)| *seq < before && !r.deleted));
            page.sort_unstable_by_key(|(seq, _)| *seq);
            let extra = page.len().saturating_sub(limit);
            page.drain(..extra);
            (page, more || extra > 0)
        }
        HistoryRange::After(after) => {
            // Taken in the order of their latest change, like the file's: when the file had
            // more, nothing changed after its last one may come first, or asking again after
            // the highest rev would skip the rest.
            let horizon = if more { page.iter().map(|(_, r)| r.rev).max().unwrap_or(after.0) } else { u64::MAX };
            page.extend(live.into_iter().filter(|(_, r)| r.rev > after.0 && r.rev <= horizon));
            page.sort_unstable_by_key(|(_, r)| r.rev);
            let cut = page.len() > limit;
            page.truncate(limit);
            page.sort_unstable_by_key(|(seq, _)| *seq);
            (page, more || cut)
        }
    }
}

/// Runs a read on a blocking thread (redb reads block), its failure as the core's error.
async fn blocking<T: Send + 'static, E: Into<HubError> + Send + 'static>(
    read: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, HubError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(HubError::Refused(Refusal::new(ErrorCode::Internal, "reading failed"))),
    }
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> HubError {
        HubError::Storage(Arc::new(e))
    }
}

/// A file someone may download, and how to read its chunks.
pub struct FileDownload {
    pub record: crate::store::records::FileRecord,
    /// The thumbnail rather than the file.
    pub thumbnail: bool,
    door: std::sync::Weak<Door>,
    id: u64,
}

impl FileDownload {
    /// The bytes served: the file's size, or its thumbnail's.
    pub fn len(&self) -> u64 {
        if self.thumbnail { self.record.thumb_size } else { self.record.size }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The media type of what is served, as the uploader's browser gave it.
    pub fn mime(&self) -> &str {
        if self.thumbnail { &self.record.thumb_mime } else { &self.record.mime }
    }

    /// The chunks one after the other, each read on a blocking thread when asked for: a
    /// slow download holds one chunk, never the file, and no read snapshot between chunks.
    /// A file purged meanwhile ends the stream with an error.
    pub fn chunks(self) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
        use crate::store::files::{THUMB_FIRST, chunks_of};
        let first = if self.thumbnail { THUMB_FIRST } else { 0 };
        let end = first + chunks_of(self.len());
        let (door, id) = (self.door, self.id);
        futures_util::stream::unfold(first, move |n| {
            let door = door.clone();
            async move {
                if n >= end {
                    return None;
                }
                let gone = || std::io::Error::other("the file is no longer there");
                let Some(door) = door.upgrade() else { return Some((Err(gone()), end)) };
                let read = tokio::task::spawn_blocking(move || door.store.file_chunk(&door.key, id, n)).await;
                match read {
                    Ok(Ok(Some(bytes))) => Some((Ok(bytes::Bytes::from(bytes)), n + 1)),
                    Ok(Ok(None)) => Some((Err(gone()), end)),
                    Ok(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), end)),
                    Err(_) => Some((Err(std::io::Error::other("reading the file failed")), end)),
                }
            }
        })
    }
}

impl Hub {
    /// A file (or its thumbnail) if `actor` may read the message that holds it: a member of
    /// its conversation while the message shows it, or its uploader before it is sent.
    /// Anyone else gets `not_found`, as for a file that does not exist.
    pub async fn file(&self, actor: UserId, id: u64, thumbnail: bool) -> Result<FileDownload, HubError> {
        self.file_through(actor, id, thumbnail, Action::History).await
    }

    /// A file of an archived conversation, for a reviewer: any file its message holds or
    /// held in an earlier version, the deleted ones too (under archive a delete keeps its
    /// files, shown to nobody else). Never a file not yet sent. The caller audits the read.
    pub async fn review_file(&self, actor: UserId, id: u64) -> Result<FileDownload, HubError> {
        self.file_through(actor, id, false, Action::Review).await
    }

    /// The one check behind both: `action` on the file's conversation, then a message that
    /// holds the file as that action sees messages.
    async fn file_through(&self, actor: UserId, id: u64, thumbnail: bool, action: Action) -> Result<FileDownload, HubError> {
        let door = self.door.upgrade().ok_or(HubError::Gone)?;
        let reader = door.clone();
        let record = blocking(move || reader.store.file(&reader.key, id)).await?;
        let record = record.filter(|r| r.complete && (!thumbnail || r.thumb_size > 0)).ok_or_else(no_file)?;
        self.may(actor, record.conv, action).await.ok_or_else(no_file)?;
        let review = action == Action::Review;
        match record.seq {
            None if !review && record.uploader == actor => {}
            None => return Err(no_file()),
            Some(seq) => {
                let reader = door.clone();
                let conv = record.conv;
                let held = blocking(move || -> Result<bool, StoreError> {
                    let holds = |m: &MessageRecord| m.attachments.iter().any(|a| a.id == id);
                    let Some(message) = reader.store.message(&reader.key, conv, seq)? else { return Ok(false) };
                    if !review {
                        return Ok(!message.deleted && holds(&message));
                    }
                    Ok(holds(&message) || reader.store.versions(&reader.key, conv, seq)?.iter().any(holds))
                })
                .await?;
                if !held {
                    return Err(no_file());
                }
            }
        }
        Ok(FileDownload { record, thumbnail, door: std::sync::Arc::downgrade(&door), id })
    }
}

fn no_file() -> HubError {
    HubError::Refused(Refusal::new(ErrorCode::NotFound, "no such file"))
}
