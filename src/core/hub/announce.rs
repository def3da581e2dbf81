//! Announcements rooms: only admins post; every other member acknowledges each message
//! ("Got it"), and its author and the admins see who has and who has not. Acknowledgements
//! follow the message: written through the writer when the message is stored
//! (`store/acks.rs`), held here only when it lives in the core's memory (a room that keeps
//! nothing), and gone with the message at its delete, purge or expiry from memory. They are
//! neither messages nor read markers: no seq, no unread count, no notification.

use std::collections::{BTreeMap, BTreeSet};

use super::HubTask;
use super::delivery::{Outcome, Target, Undo, ack_reply};
use crate::core::ConnId;
use crate::model::{ConvId, Millis, Seq, UserId, now_millis};
use crate::protocol::{AckBy, AckList, ErrorCode, Ref, Refusal, ServerFrame};
use crate::store::records::MessageRecord;
use crate::store::{Change, Store, StoreError};

/// One announcement's acknowledgements, as far as the core knows them.
#[derive(Clone)]
pub(super) struct Entry {
    author: UserId,
    by: BTreeMap<UserId, Millis>,
}

/// Every announcement acknowledged (or asked about) since the start, and those the file
/// holds acknowledgements of, by (conversation, seq).
#[derive(Default)]
pub(super) struct Acks {
    entries: BTreeMap<(ConvId, Seq), Entry>,
}

impl Acks {
    pub(super) fn load(store: &Store) -> Result<Acks, StoreError> {
        let mut acks = Acks::default();
        for stored in store.acks()? {
            let entry = acks
                .entries
                .entry((stored.conv, stored.seq))
                .or_insert_with(|| Entry { author: stored.author, by: BTreeMap::new() });
            entry.by.insert(stored.user, stored.ts);
        }
        Ok(acks)
    }

    /// The messages are gone (deleted, purged, expired from memory): so are their
    /// acknowledgements.
    pub(super) fn forget(&mut self, conv: ConvId, seqs: &[Seq]) {
        for seq in seqs {
            self.entries.remove(&(conv, *seq));
        }
    }

    /// Takes one message's entry out, for a delete (given back by `AckUndo::Restore`).
    pub(super) fn take(&mut self, conv: ConvId, seq: Seq) -> Option<Entry> {
        self.entries.remove(&(conv, seq))
    }
}

/// The in-memory part of an acknowledgement change, taken back when its commit fails.
pub(super) enum AckUndo {
    Unack { conv: ConvId, seq: Seq, user: UserId },
    Restore { conv: ConvId, seq: Seq, entry: Entry },
}

/// What waits for an announcement's author to be read from the file.
pub(super) struct Wanted {
    conn: ConnId,
    user: UserId,
    reference: Option<Ref>,
    conv: ConvId,
    seq: Seq,
    /// `true`: acknowledge it; `false`: tell the asker who has.
    acknowledge: bool,
}

impl HubTask {
    /// The same rule as every admin-only command (`HubTask::admin`: an enabled admin).
    fn is_admin(&self, user: UserId) -> bool {
        self.admin(user).is_ok()
    }

    /// Refuses a post by anyone but an admin in an announcements room.
    pub(super) fn may_post(&self, conv: ConvId, user: UserId) -> Result<(), Refusal> {
        if self.convs.get(&conv).is_some_and(|c| c.record.announcements) && !self.is_admin(user) {
            return Err(Refusal::new(ErrorCode::AdminsOnly, "only admins post in this announcements room"));
        }
        Ok(())
    }

    /// Refuses an announcements room asked for by someone who is not an admin.
    pub(super) fn may_create_announcements(&self, user: UserId, announcements: bool) -> Result<(), Refusal> {
        if announcements && !self.is_admin(user) {
            return Err(Refusal::new(ErrorCode::Forbidden, "only an admin makes an announcements room"));
        }
        Ok(())
    }

    /// `set_announcements`: an admin makes a room an announcements room or
    /// an ordinary one; every member gets the conversation anew.
    pub(super) fn set_announcements(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        announcements: bool,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let admin = self.is_admin(user);
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        if !state.record.kind.is_room() {
            return Err(Refusal::new(ErrorCode::BadRequest, "only a room can be an announcements room"));
        }
        // As at creation: only admins choose that only admins post. A creator who is not one
        // would lock themselves out, or undo an admin's choice.
        if !admin {
            return Err(Refusal::new(ErrorCode::Forbidden, "only an admin chooses who may post in a room"));
        }
        if state.record.announcements == announcements {
            self.ack_now(conn, reference);
            return Ok(());
        }
        let before = state.record.clone();
        state.record.announcements = announcements;
        let wrote = state.record.clone();
        tracing::info!(conv = conv.0, by = user.0, announcements, "announcements room changed");
        let deliveries = members
            .iter()
            .map(|m| {
                (Target::Users(vec![*m]), ServerFrame::Conversation { conversation: self.conversation_for(conv, *m) }.encode())
            })
            .collect();
        let outcome =
            Outcome::new(deliveries, ack_reply(conn, reference)).undo(Undo::RestoreRecord { conv, before, wrote: wrote.clone() });
        self.persist(vec![Change::PutConversation(conv, wrote)], outcome);
        Ok(())
    }

    /// `acknowledge` (`true`) or `acknowledgements` for one seq (`false`): the message's
    /// author is needed first, from memory or else read from the file by a reader thread
    /// (the core never waits on disk).
    pub(super) fn announcement(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
        acknowledge: bool,
    ) -> Result<(), Refusal> {
        self.announcements_room(conv, user)?;
        if seq.0 == 0 || self.convs.get(&conv).is_none_or(|c| seq > c.committed_seq) {
            return Err(Refusal::new(ErrorCode::NotFound, "no such announcement"));
        }
        let wanted = Wanted { conn, user, reference, conv, seq, acknowledge };
        if let Some(author) = self.acks.entries.get(&(conv, seq)).map(|e| e.author) {
            return self.with_author(wanted, author, !self.is_live(conv, seq));
        }
        if let Some(record) = self.pending.get(&(conv, seq)).cloned() {
            return self.with_message(wanted, Ok(Some(record)), true);
        }
        if let Some(record) = self.live_message(conv, seq).cloned() {
            return self.with_message(wanted, Ok(Some(record)), false);
        }
        let door = self.door.clone();
        let back = self.reader_tx.clone();
        tokio::task::spawn_blocking(move || {
            let stored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| door.message(conv, seq)))
                .unwrap_or_else(|_| Err(StoreError::Internal("reading a message panicked".into())));
            let _ = back.send(super::messages::FromReader::Announcement(wanted, stored));
        });
        Ok(())
    }

    /// A reader thread read the announcement.
    pub(super) fn on_announcement(&mut self, wanted: Wanted, stored: Result<Option<MessageRecord>, StoreError>) {
        let (conn, reference) = (wanted.conn, wanted.reference.clone());
        // Checked again: the member may have left meanwhile.
        let checked = self.announcements_room(wanted.conv, wanted.user).and_then(|()| self.with_message(wanted, stored, true));
        if let Err(refusal) = checked {
            self.refused(conn, reference, refusal);
        }
    }

    fn with_message(
        &mut self,
        wanted: Wanted,
        record: Result<Option<MessageRecord>, StoreError>,
        stored: bool,
    ) -> Result<(), Refusal> {
        match record {
            Ok(Some(record)) if !record.deleted && record.system.is_none() => self.with_author(wanted, record.author, stored),
            Ok(_) => Err(Refusal::new(ErrorCode::NotFound, "no such announcement")),
            Err(e) => {
                tracing::error!(error = %e, conv = wanted.conv.0, seq = wanted.seq.0, "reading an announcement failed");
                Err(Refusal::new(ErrorCode::Storage, "the announcement could not be read"))
            }
        }
    }

    /// The announcement's author is known; `stored`: its message is in the file, so its
    /// acknowledgements go there too.
    fn with_author(&mut self, wanted: Wanted, author: UserId, stored: bool) -> Result<(), Refusal> {
        let Wanted { conn, user, reference, conv, seq, acknowledge } = wanted;
        if !acknowledge {
            let entry = self.acks.entries.get(&(conv, seq)).cloned().unwrap_or(Entry { author, by: BTreeMap::new() });
            let list = self.ack_list(conv, seq, &entry, user);
            self.deliver(Target::Conn(conn), ServerFrame::Acknowledgements { conv, announcements: vec![list] }.encode());
            self.ack_now(conn, reference);
            return Ok(());
        }
        if author == user {
            return Err(Refusal::new(ErrorCode::BadRequest, "this is your own announcement"));
        }
        let entry = self.acks.entries.entry((conv, seq)).or_insert_with(|| Entry { author, by: BTreeMap::new() });
        if entry.by.contains_key(&user) {
            // Acknowledged before: nothing changes, nobody is told again.
            self.ack_now(conn, reference);
            return Ok(());
        }
        let ts = now_millis();
        entry.by.insert(user, ts);
        let entry = entry.clone();
        let (count, of) = self.counts(conv, &entry);
        let mut told: BTreeSet<UserId> = BTreeSet::from([user, author]);
        if let Some(state) = self.convs.get(&conv) {
            told.extend(state.members.keys().copied().filter(|m| self.is_admin(*m)));
        }
        let frame = ServerFrame::Acknowledged { conv, seq, user, ts, count, of }.encode();
        tracing::debug!(conv = conv.0, seq = seq.0, user = user.0, stored, "announcement acknowledged");
        let outcome = Outcome::new(vec![(Target::Users(told.into_iter().collect()), frame)], ack_reply(conn, reference))
            .undo(Undo::Acks(AckUndo::Unack { conv, seq, user }));
        if stored {
            self.persist(vec![Change::PutAck { conv, seq, user, ts }], outcome);
        } else {
            self.done_without_disk(outcome);
        }
        Ok(())
    }

    /// `acknowledgements` without a seq: every announcement of the room acknowledged so far.
    pub(super) fn acknowledgements(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
    ) -> Result<(), Refusal> {
        self.announcements_room(conv, user)?;
        let lists: Vec<AckList> = self
            .acks
            .entries
            .range((conv, Seq(0))..=(conv, Seq(u64::MAX)))
            .map(|((_, seq), entry)| self.ack_list(conv, *seq, entry, user))
            .collect();
        self.deliver(Target::Conn(conn), ServerFrame::Acknowledgements { conv, announcements: lists }.encode());
        self.ack_now(conn, reference);
        Ok(())
    }

    pub(super) fn undo_acks(&mut self, undo: AckUndo) {
        match undo {
            AckUndo::Unack { conv, seq, user } => {
                if let Some(entry) = self.acks.entries.get_mut(&(conv, seq)) {
                    entry.by.remove(&user);
                }
            }
            AckUndo::Restore { conv, seq, entry } => {
                self.acks.entries.insert((conv, seq), entry);
            }
        }
    }

    /// A member of an announcements room, or the refusal.
    fn announcements_room(&self, conv: ConvId, user: UserId) -> Result<(), Refusal> {
        let state = self.convs.get(&conv).filter(|c| c.members.contains_key(&user)).ok_or_else(Refusal::not_found)?;
        if !state.record.announcements {
            return Err(Refusal::new(ErrorCode::BadRequest, "this is not an announcements room"));
        }
        Ok(())
    }

    fn is_live(&self, conv: ConvId, seq: Seq) -> bool {
        self.convs.get(&conv).is_some_and(|c| c.live.iter().any(|(s, _, _)| *s == seq))
    }

    /// (acknowledged, of): among the current members other than the author.
    fn counts(&self, conv: ConvId, entry: &Entry) -> (u32, u32) {
        let Some(state) = self.convs.get(&conv) else { return (0, 0) };
        let others = state.members.keys().filter(|m| **m != entry.author);
        let (mut count, mut of) = (0, 0);
        for member in others {
            of += 1;
            count += u32::from(entry.by.contains_key(member));
        }
        (count, of)
    }

    /// One announcement as `asker` may see it: the lists only for its author and admins.
    fn ack_list(&self, conv: ConvId, seq: Seq, entry: &Entry, asker: UserId) -> AckList {
        let (count, of) = self.counts(conv, entry);
        let mut list =
            AckList { seq, author: entry.author, count, of, mine: entry.by.contains_key(&asker), acked: None, pending: None };
        if asker == entry.author || self.is_admin(asker) {
            let members: Vec<UserId> = self
                .convs
                .get(&conv)
                .map(|c| c.members.keys().copied().filter(|m| *m != entry.author).collect())
                .unwrap_or_default();
            list.acked = Some(members.iter().filter_map(|m| entry.by.get(m).map(|ts| AckBy { user: *m, ts: *ts })).collect());
            list.pending = Some(members.into_iter().filter(|m| !entry.by.contains_key(m)).collect());
        }
        list
    }
}
