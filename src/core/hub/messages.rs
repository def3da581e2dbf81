//! Messages: send (idempotent by `client_id`), edit, delete, and the read marker with its
//! unread counts.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::delivery::{Outcome, Reply, Target, Undo, ack_reply};
use std::sync::Arc;

use super::{HubTask, Sent};
use crate::core::ConnId;
use crate::core::records::Kept;
use crate::model::{ConvId, Millis, Role, Seq, UserId, mentioned_names, now_millis};
use crate::protocol::Refusal;
use crate::protocol::message_frame;
use crate::protocol::{ErrorCode, Ref, ServerFrame};
use crate::store::records::{MemberRecord, MessageRecord, text_digest};
use crate::store::{Change, StoreError, Unread};

const MAX_TEXT_CHARS: usize = 16_000;
/// Distinct people one message can mention (and notify); docs/protocol.md says so.
pub(super) const MAX_MENTIONS: usize = 50;
/// At most one `typing` per person and conversation reaches members this often (clients
/// show it for 5 s and send it every 3 s).
const TYPING_EVERY: Duration = Duration::from_secs(2);
const MAX_CLIENT_ID: usize = 64;
/// Sends per user whose `client_id` the core keeps in memory, so their resends are answered
/// at once; the writer finds every other one still in its window in the file.
const RECENT_SENDS_PER_USER: usize = 1_000;

/// What a `send` carries besides its text.
#[derive(Default)]
pub(super) struct Extras {
    /// Ids of the sender's uploads to attach (`files.rs`).
    pub(super) attachments: Vec<u64>,
    /// The message it answers.
    pub(super) reply_to: Option<Seq>,
}

impl HubTask {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_message(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        text: String,
        client_id: Option<String>,
        extras: Extras,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        self.may_post(conv, user)?;
        if self.users.get(&user).is_some_and(|u| u.info.role == Role::Reviewer) {
            return Err(Refusal::new(ErrorCode::Forbidden, "a reviewer reads the archive and does not post"));
        }
        let text = text.trim_end().to_string();
        // A file alone is a message too.
        if !text.is_empty() || extras.attachments.is_empty() {
            check_text(&text)?;
        }
        if extras.reply_to.is_some_and(|to| self.convs.get(&conv).is_none_or(|c| to.0 == 0 || to > c.last_seq)) {
            return Err(Refusal::new(ErrorCode::BadRequest, "reply_to names no message of this conversation"));
        }
        if client_id.as_ref().is_some_and(|id| id.chars().count() > MAX_CLIENT_ID) {
            return Err(Refusal::new(ErrorCode::BadRequest, format!("client_id is at most {MAX_CLIENT_ID} characters")));
        }
        // A client_id is scoped to its sender and conversation; the digest tells a resend from
        // another message that reuses it.
        let digest = client_id.as_ref().map(|_| text_digest(&text));
        if let Some(id) = &client_id
            && let Some(sent) = self.recent_sends.get(&(user, conv, Arc::from(id.as_str()))).copied()
        {
            if sent.text_digest.is_some_and(|first| Some(first) != digest) {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "client_id already used for another text in this conversation; give each new message a new client_id",
                ));
            }
            // A resend: acknowledge the first message again. Going through the writer
            // queue puts this ack after the first message's commit.
            let ack = ServerFrame::Ack {
                reference: reference.clone(),
                conv: Some(conv),
                seq: Some(sent.seq),
                client_id: client_id.clone(),
                ts: Some(sent.ts),
            };
            let mut outcome = Outcome::new(Vec::new(), Reply::Ack(conn, reference, ack.encode()));
            outcome.resend = Some((user, id.clone(), conv, sent.seq));
            self.persist(Vec::new(), outcome);
            return Ok(());
        }
        let mentions = self.resolve_mentions(&text);
        let recorded = self.kept(conv).recorded();
        // Checked last before anything changes: taking them is what a failed commit undoes.
        let taken = self.take_uploads(user, conv, &extras.attachments)?;
        let attachments = taken.iter().map(|(id, upload)| super::files::attachment(*id, upload)).collect();
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        let seq = state.last_seq.next();
        state.last_seq = seq;
        for (member, counts) in state.members.iter_mut() {
            if *member != user {
                counts.unread += 1;
                if mentions.contains(member) {
                    counts.mentions += 1;
                }
            }
        }
        let ts = now_millis();
        if let Some(id) = &client_id {
            self.remember_send(user, conv, id, Sent { seq, ts, text_digest: digest });
        }
        let record = MessageRecord {
            author: user,
            text,
            ts,
            edited_ts: None,
            deleted: false,
            mentions,
            client_id: client_id.clone(),
            rev: seq.0,
            system: None,
            attachments,
            reply_to: extras.reply_to,
        };
        let frame = ServerFrame::Message { message: message_frame(conv, seq, &record) }.encode();
        let ack = ServerFrame::Ack {
            reference: reference.clone(),
            conv: Some(conv),
            seq: Some(seq),
            client_id: client_id.clone(),
            ts: Some(ts),
        };
        tracing::debug!(conv = conv.0, seq = seq.0, user = user.0, bytes = record.text.len(), recorded, "message");
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], Reply::Ack(conn, reference, ack.encode()))
            .undo(Undo::Unread { conv, author: user, mentions: record.mentions.clone() });
        if let (Some(client_id), Some(digest)) = (client_id, digest) {
            outcome.sent = Some((user, client_id.clone(), digest));
            outcome = outcome.undo(Undo::ForgetSend { user, conv, client_id, seq });
        }
        outcome.message = Some((conv, seq, seq));
        if !taken.is_empty() {
            outcome = outcome.undo(Undo::RestoreUploads(taken));
        }
        if recorded {
            self.pending.insert((conv, seq), record.clone());
            self.persist(vec![Change::PutMessage(conv, seq, record)], outcome);
        } else {
            self.keep_live(conv, seq, record);
            self.done_without_disk(outcome);
        }
        Ok(())
    }

    /// Edit (`Some(text)`) or delete (`None`) a message.
    pub(super) async fn change_message(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
        text: Option<String>,
    ) -> Result<(), Refusal> {
        self.members_of(conv, user)?;
        // The latest version: one still waiting for its commit, else the file's, read by a
        // reader thread (the core does not wait on disk); the change goes on when it is in.
        let change = MessageChange { conn, user, reference, conv, seq, text };
        if let Some(waiting) = self.loading.get_mut(&(conv, seq)) {
            // Behind a change whose read is under way: taken in the order they came.
            waiting.push_back(change);
            return Ok(());
        }
        if let Some(record) = self.pending.get(&(conv, seq)).cloned() {
            return self.change_loaded(change, Ok(Some(record))).await;
        }
        if let Some(record) = self.live_message(conv, seq).cloned() {
            return self.change_loaded(change, Ok(Some(record))).await;
        }
        self.loading.insert((conv, seq), VecDeque::new());
        let door = self.door.clone();
        let back = self.reader_tx.clone();
        tokio::task::spawn_blocking(move || {
            // A panic here must still answer: changes of this message wait for it.
            let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| door.message(conv, seq)))
                .unwrap_or_else(|_| Err(StoreError::Internal("reading a message panicked".into())));
            let _ = back.send(FromReader::Fetched(change, stored));
        });
        Ok(())
    }

    /// An edit or delete with the message's latest version in hand.
    /// `Err` when the message could not be read (already logged).
    async fn change_loaded(&mut self, change: MessageChange, latest: Result<Option<MessageRecord>, ()>) -> Result<(), Refusal> {
        let MessageChange { conn, user, reference, conv, seq, text } = change;
        // Checked again: the member may have left, or another change of the message may have
        // come while the file was read (then it is the latest).
        let members = self.members_of(conv, user)?;
        let latest = match self.pending.get(&(conv, seq)) {
            Some(record) => Ok(Some(record.clone())),
            None => latest,
        };
        let mut record = match latest {
            Ok(Some(record)) if !record.deleted => record,
            Ok(_) => return Err(Refusal::new(ErrorCode::NotFound, "no such message")),
            Err(()) => return Err(Refusal::new(ErrorCode::Storage, "the message could not be read")),
        };
        if record.system.is_some() {
            return Err(Refusal::new(ErrorCode::Forbidden, "a line the server wrote cannot be changed"));
        }
        let is_admin = self.users.get(&user).is_some_and(|u| u.info.role == Role::Admin);
        if record.author != user && !(text.is_none() && is_admin) {
            return Err(Refusal::new(ErrorCode::Forbidden, "you can only change your own messages"));
        }
        // Under archive, the version this change replaces stays for the reviewer.
        let archived = (self.kept(conv) == Kept::Archive).then(|| record.clone());
        match text {
            Some(text) => {
                let text = text.trim_end().to_string();
                // A message with files may lose its words, as it may be sent without any.
                if !text.is_empty() || record.attachments.is_empty() {
                    check_text(&text)?;
                }
                record.mentions = self.resolve_mentions(&text);
                record.text = text;
                record.edited_ts = Some(now_millis());
            }
            None => {
                // The text leaves the message with the delete (under archive its earlier
                // version stays in the archive, for the reviewer only).
                record.text.clear();
                record.mentions.clear();
                record.deleted = true;
                // Its reactions go too (in the file, with the delete's commit).
                self.forget_reactions(conv, seq);
            }
        }
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        let rev = state.last_seq.next();
        state.last_seq = rev;
        record.rev = rev.0;
        let frame = ServerFrame::MessageUpdated { message: message_frame(conv, seq, &record) }.encode();
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference));
        outcome.message = Some((conv, seq, rev));
        // A deleted announcement's acknowledgements go with it (from the file in its commit).
        if let Some(entry) = record.deleted.then(|| self.acks.take(conv, seq)).flatten() {
            outcome = outcome.undo(Undo::Acks(super::announce::AckUndo::Restore { conv, seq, entry }));
        }
        if let Some(live) = self.live_message(conv, seq) {
            // Never recorded: the change stays in memory with the message.
            *live = record;
            self.done_without_disk(outcome);
            return Ok(());
        }
        self.pending.insert((conv, seq), record.clone());
        // Outside archive the old text must leave the file's bytes too: the next sweep's
        // vacuum takes it (`keeping.rs`).
        self.freed_since_vacuum |= archived.is_none();
        let mut changes = Vec::from_iter(archived.as_ref().map(|before| Change::KeepVersion(conv, seq, before.clone())));
        // A file goes with its message: deleted outside archive, its chunks go in the same
        // commit; under archive they stay with the record, shown to nobody.
        if record.deleted && archived.is_none() && !record.attachments.is_empty() {
            changes.push(Change::DeleteFiles(record.attachments.drain(..).map(|a| a.id).collect()));
        }
        changes.push(Change::UpdateMessage(conv, seq, record));
        self.persist(changes, outcome);
        Ok(())
    }

    pub(super) async fn mark_read(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
    ) -> Result<(), Refusal> {
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        let last_seq = state.committed_seq;
        let Some(member) = state.members.get_mut(&user) else { return Err(Refusal::not_found()) };
        let before = member.clone();
        let seq = seq.min(last_seq);
        if seq <= member.read_seq {
            self.ack_now(conn, reference);
            return Ok(());
        }
        member.read_seq = seq;
        let joined = member.joined;
        // Messages still being committed are unread too: they were counted when sent. The
        // committed ones after the marker (up to `last_seq`) are counted from the file by a
        // reader thread, never here: the core does not wait on disk. New messages meanwhile
        // add to the count as usual.
        let (pending, pending_mentions) = self
            .pending
            .iter()
            // Every pending entry above the committed seq is a new message (perhaps edited
            // or deleted since); those up to it are counted from the file.
            .filter(|((c, s), m)| *c == conv && *s > last_seq && !m.deleted && m.author != user)
            .fold((0, 0), |(n, k), (_, m)| (n + 1, k + u32::from(m.mentions.contains(&user))));
        // Messages that are not recorded are only in memory: the file cannot count them.
        let (live, live_mentions) = self.convs.get(&conv).map_or((0, 0), |c| {
            c.live
                .iter()
                .filter(|(s, m, _)| *s > seq && *s <= last_seq && !m.deleted && m.author != user)
                .fold((0, 0), |(n, k), (_, m, _)| (n + 1, k + u32::from(m.mentions.contains(&user))))
        });
        if let Some(member) = self.convs.get_mut(&conv).and_then(|c| c.members.get_mut(&user)) {
            member.unread = pending + live;
            member.mentions = pending_mentions + live_mentions;
        }
        let frame = ServerFrame::Read { conv, seq }.encode();
        let outcome = Outcome::new(vec![(Target::Users(vec![user]), frame)], ack_reply(conn, reference))
            .undo(Undo::RestoreMember { conv, user, before, wrote: Some(seq) });
        if seq == last_seq {
            let record = MemberRecord { joined, read_seq: seq.0 };
            self.persist(vec![Change::PutMember(conv, user, record)], outcome);
            self.purge_what_all_read(conv);
            return Ok(());
        }
        // The marker is saved (and acknowledged) once the count is in, so whoever hears the
        // ack sees the right count.
        let (store, counted) = (self.store.clone(), self.reader_tx.clone());
        tokio::task::spawn_blocking(move || {
            // A panic here must still answer the read: the core waits for this message.
            let counted_now = std::panic::catch_unwind(|| store.unread_for(conv, &[(user, seq)], last_seq));
            let unread = match counted_now {
                Ok(Ok(counts)) => counts[0],
                Ok(Err(e)) => {
                    tracing::error!(error = %e, conv = conv.0, "counting unread failed");
                    Unread::default()
                }
                Err(_) => {
                    tracing::error!(conv = conv.0, "counting unread panicked");
                    Unread::default()
                }
            };
            let _ = counted.send(FromReader::Counted(Counted { conv, user, read_seq: seq, joined, unread, outcome }));
        });
        Ok(())
    }

    /// A reader thread's answer.
    pub(super) async fn on_read(&mut self, read: FromReader) {
        match read {
            FromReader::Counted(counted) => self.on_counted(counted).await,
            FromReader::Purgeable { conv, as_of, asked, found } => self.on_purgeable(conv, as_of, asked, found),
            FromReader::Announcement(wanted, stored) => self.on_announcement(wanted, stored),
            FromReader::Reactions(conv, seq, loaded) => self.reactions_loaded(conv, seq, loaded),
            FromReader::Fetched(change, stored) => {
                let key = (change.conv, change.seq);
                let waiting = self.loading.remove(&key).unwrap_or_default();
                let stored = stored.map_err(|e| {
                    tracing::error!(error = %e, conv = key.0.0, seq = key.1.0, "reading a message failed");
                });
                // In the order they came; each finds the change before it pending, if any.
                for change in std::iter::once(change).chain(waiting) {
                    let (conn, reference) = (change.conn, change.reference.clone());
                    if let Err(refusal) = self.change_loaded(change, stored.clone()).await {
                        self.refused(conn, reference, refusal);
                    }
                }
            }
        }
    }

    /// Adds what a reader thread counted to a member's unread counts, unless the marker has
    /// moved since (a newer count is on its way).
    /// Then saves the marker: the member's current one, which a later `read` may have moved
    /// further (counts finish in any order; the file must not go back).
    pub(super) async fn on_counted(&mut self, counted: Counted) {
        let Counted { conv, user, read_seq, joined, unread, outcome } = counted;
        let Some(member) = self.convs.get_mut(&conv).and_then(|c| c.members.get_mut(&user)) else {
            // Left meanwhile: nothing to save, but the tab still hears its answer.
            self.done_without_disk(outcome);
            return;
        };
        if member.read_seq == read_seq {
            member.unread += unread.unread;
            member.mentions += unread.mentions;
        }
        let record = MemberRecord { joined, read_seq: member.read_seq.0.max(read_seq.0) };
        self.persist(vec![Change::PutMember(conv, user, record)], outcome);
        self.purge_what_all_read(conv);
    }

    /// After a read marker is saved: in a conversation kept until read, what everyone has now
    /// read goes (the purge is queued behind the marker's write).
    fn purge_what_all_read(&mut self, conv: ConvId) {
        if matches!(self.kept(conv), Kept::UntilRead(_)) {
            self.purge_step(conv, now_millis());
        }
    }

    /// The people a text mentions: the first `MAX_MENTIONS` distinct `@name`s of its prose that
    /// name an account (more are plain text). Linear in the text: one hash lookup per name.
    pub(super) fn resolve_mentions(&self, text: &str) -> Vec<UserId> {
        mentioned_names(text).iter().filter_map(|name| self.user_names.get(name).copied()).take(MAX_MENTIONS).collect()
    }

    /// Remembers a send for resends, and forgets the user's oldest one beyond
    /// `RECENT_SENDS_PER_USER` (the file still has it).
    pub(super) fn remember_send(&mut self, user: UserId, conv: ConvId, client_id: &str, sent: Sent) {
        let id: Arc<str> = Arc::from(client_id);
        let order = self.recent_order.entry(user).or_default();
        order.push_back((conv, id.clone(), sent.seq, sent.ts));
        if order.len() > RECENT_SENDS_PER_USER
            && let Some((old_conv, old_id, old_seq, _)) = order.pop_front()
        {
            // Only the entry this slot remembered: the same client_id may have been sent
            // again (after a failed save) and be remembered by a newer slot.
            let key = (user, old_conv, old_id);
            if self.recent_sends.get(&key).is_some_and(|s| s.seq == old_seq) {
                self.recent_sends.remove(&key);
            }
        }
        self.recent_sends.insert((user, conv, id), sent);
    }

    /// Tells the other members that `user` is typing; nothing is stored.
    pub(super) fn typing(&mut self, conn: ConnId, user: UserId, reference: Option<Ref>, conv: ConvId) -> Result<(), Refusal> {
        // Merged first: most typing frames stop here, before the members are listed.
        let now = Instant::now();
        let told = self.typing_told.get(&(user, conv)).is_some_and(|at| now.duration_since(*at) < TYPING_EVERY);
        if !told {
            let members = self.members_of(conv, user)?;
            if self.typing_told.len() >= 4096 {
                self.typing_told.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
            }
            self.typing_told.insert((user, conv), now);
            self.deliver(Target::UsersExcept(members, user), ServerFrame::Typing { conv, user }.encode());
        }
        self.ack_now(conn, reference);
        Ok(())
    }
}

pub(super) fn check_text(text: &str) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::new(ErrorCode::BadRequest, "a message needs some text"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Refusal::new(ErrorCode::TooLarge, format!("a message is at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(())
}

/// Unread messages a reader thread counted after a member's read marker moved.
pub(super) struct Counted {
    conv: ConvId,
    user: UserId,
    read_seq: Seq,
    joined: Millis,
    unread: Unread,
    /// The `read`'s effects, once the marker is saved.
    outcome: Outcome,
}

/// An edit (`text: Some`) or delete waiting for the message to be read from the file.
pub(super) struct MessageChange {
    conn: ConnId,
    user: UserId,
    reference: Option<Ref>,
    conv: ConvId,
    seq: Seq,
    text: Option<String>,
}

/// What a reader thread hands back to the core.
pub(super) enum FromReader {
    Counted(Counted),
    Fetched(MessageChange, Result<Option<MessageRecord>, StoreError>),
    /// The next batch of a conversation's purge (`keeping.rs`).
    Purgeable {
        conv: ConvId,
        as_of: Millis,
        /// How many were asked for: fewer means the purge of the conversation is done.
        asked: usize,
        found: Result<Vec<Seq>, StoreError>,
    },
    /// An announcement's author, for an acknowledgement or its lists (`announce.rs`).
    Announcement(super::announce::Wanted, Result<Option<MessageRecord>, StoreError>),
    /// A message and its reactions, for the reactions waiting for them (`reactions.rs`).
    Reactions(ConvId, Seq, super::reactions::Loaded),
}
