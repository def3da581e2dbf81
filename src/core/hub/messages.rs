//! Messages: send (idempotent by `client_id`), edit, delete, and the read marker with its
//! unread counts.

use std::time::Duration;

use tokio::time::Instant;

use super::delivery::{Committed, Outcome, Reply, Target, Undo, ack_reply};
use super::{HubTask, Refusal, not_found, refuse};
use crate::core::ConnId;
use crate::model::{ConvId, Millis, Role, Seq, UserId, mentioned_names, now_millis};
use crate::protocol::message_frame;
use crate::protocol::{ErrorCode, Ref, ServerFrame};
use crate::store::records::{Keep, MemberRecord, MessageRecord};
use crate::store::{Change, Unread};

const MAX_TEXT_CHARS: usize = 16_000;
/// Distinct people one message can mention (and notify); docs/protocol.md says so.
pub(super) const MAX_MENTIONS: usize = 50;
/// At most one `typing` per person and conversation reaches members this often (clients
/// show it for 5 s and send it every 3 s).
const TYPING_EVERY: Duration = Duration::from_secs(2);
const MAX_CLIENT_ID: usize = 64;
/// Remembered `client_id`s for idempotent sends.
const RECENT_SENDS: usize = 4096;

impl HubTask {
    pub(super) async fn send_message(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        text: String,
        client_id: Option<String>,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let text = text.trim_end().to_string();
        check_text(&text)?;
        if client_id.as_ref().is_some_and(|id| id.chars().count() > MAX_CLIENT_ID) {
            return Err(refuse(ErrorCode::BadRequest, format!("client_id is at most {MAX_CLIENT_ID} characters")));
        }
        if let Some(id) = &client_id
            && let Some(&(sent_conv, seq, ts)) = self.recent_sends.get(&(user, id.clone()))
        {
            // A resend: acknowledge the first message again. Going through the writer
            // queue puts this ack after the first message's commit.
            let ack = ServerFrame::Ack {
                reference: reference.clone(),
                conv: Some(sent_conv),
                seq: Some(seq),
                client_id: client_id.clone(),
                ts: Some(ts),
            };
            let mut outcome = Outcome::new(Vec::new(), Reply::Ack(conn, reference, ack.encode()));
            outcome.resend = Some((user, id.clone(), sent_conv, seq));
            self.persist(Vec::new(), outcome).await;
            return Ok(());
        }
        let mentions = self.resolve_mentions(&text);
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
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
        let recorded = state.record.keep != Keep::Nothing;
        let ts = now_millis();
        if let Some(id) = &client_id {
            self.remember_send(user, id.clone(), conv, seq, ts);
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
        if let Some(client_id) = client_id {
            outcome = outcome.undo(Undo::ForgetSend { user, client_id, seq });
        }
        outcome.message = Some((conv, seq, seq));
        if recorded {
            self.pending.insert((conv, seq), record.clone());
            self.persist(vec![Change::PutMessage(conv, seq, record)], outcome).await;
        } else {
            self.on_committed(Committed { outcome, result: Ok(()) });
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
        let members = self.members_of(conv, user)?;
        // The latest version: one still waiting for its commit, else a point read from redb's
        // cache. Only the author (or an admin, for deletes) may change it.
        let latest = match self.pending.get(&(conv, seq)) {
            Some(record) => Ok(Some(record.clone())),
            None => self.door.message(conv, seq),
        };
        let mut record = match latest {
            Ok(Some(record)) if !record.deleted => record,
            Ok(_) => return Err(refuse(ErrorCode::NotFound, "no such message")),
            Err(e) => {
                tracing::error!(error = %e, conv = conv.0, seq = seq.0, "reading a message failed");
                return Err(refuse(ErrorCode::Storage, "the message could not be read"));
            }
        };
        let is_admin = self.users.get(&user).is_some_and(|u| u.info.role == Role::Admin);
        if record.author != user && !(text.is_none() && is_admin) {
            return Err(refuse(ErrorCode::Forbidden, "you can only change your own messages"));
        }
        match text {
            Some(text) => {
                let text = text.trim_end().to_string();
                check_text(&text)?;
                record.mentions = self.resolve_mentions(&text);
                record.text = text;
                record.edited_ts = Some(now_millis());
            }
            None => {
                // The text leaves the file with the delete; an archive policy (later) keeps
                // the original for the reviewer elsewhere.
                record.text.clear();
                record.mentions.clear();
                record.deleted = true;
            }
        }
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
        let rev = state.last_seq.next();
        state.last_seq = rev;
        record.rev = rev.0;
        let frame = ServerFrame::MessageUpdated { message: message_frame(conv, seq, &record) }.encode();
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference));
        outcome.message = Some((conv, seq, rev));
        self.pending.insert((conv, seq), record.clone());
        self.persist(vec![Change::UpdateMessage(conv, seq, record)], outcome).await;
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
        let Some(state) = self.convs.get_mut(&conv) else { return Err(not_found()) };
        let last_seq = state.committed_seq;
        let Some(member) = state.members.get_mut(&user) else { return Err(not_found()) };
        let before = member.clone();
        let seq = seq.min(last_seq);
        if seq <= member.read_seq {
            self.ack_now(conn, reference);
            return Ok(());
        }
        member.read_seq = seq;
        let joined = member.joined;
        let stored = if seq == last_seq {
            Unread::default()
        } else {
            self.store.unread_for(conv, &[(user, seq)]).map(|counts| counts[0]).unwrap_or_else(|e| {
                tracing::error!(error = %e, conv = conv.0, "counting unread failed");
                Unread::default()
            })
        };
        // Messages still being committed are unread too: they were counted when sent.
        let (pending, pending_mentions) = self
            .pending
            .iter()
            .filter(|((c, s), m)| *c == conv && *s > seq && m.rev == s.0 && m.author != user)
            .fold((0, 0), |(n, k), (_, m)| (n + 1, k + u32::from(m.mentions.contains(&user))));
        if let Some(member) = self.convs.get_mut(&conv).and_then(|c| c.members.get_mut(&user)) {
            member.unread = stored.unread + pending;
            member.mentions = stored.mentions + pending_mentions;
        }
        let record = MemberRecord { joined, read_seq: seq.0 };
        let frame = ServerFrame::Read { conv, seq }.encode();
        let outcome = Outcome::new(vec![(Target::Users(vec![user]), frame)], ack_reply(conn, reference))
            .undo(Undo::RestoreMember { conv, user, before, wrote: Some(seq) });
        self.persist(vec![Change::PutMember(conv, user, record)], outcome).await;
        Ok(())
    }

    /// The people a text mentions: the first `MAX_MENTIONS` distinct `@name`s of its prose that
    /// name an account (more are plain text). Linear in the text: one hash lookup per name.
    pub(super) fn resolve_mentions(&self, text: &str) -> Vec<UserId> {
        mentioned_names(text).iter().filter_map(|name| self.user_names.get(name).copied()).take(MAX_MENTIONS).collect()
    }

    pub(super) fn remember_send(&mut self, user: UserId, client_id: String, conv: ConvId, seq: Seq, ts: Millis) {
        if self.recent_order.len() == RECENT_SENDS
            && let Some((oldest, oldest_seq)) = self.recent_order.pop_front()
            && self.recent_sends.get(&oldest).is_some_and(|(_, s, _)| *s == oldest_seq)
        {
            // Only the entry this slot remembered: the same client_id may have been sent
            // again (after a failed save) and be remembered by a newer slot.
            self.recent_sends.remove(&oldest);
        }
        self.recent_order.push_back(((user, client_id.clone()), seq));
        self.recent_sends.insert((user, client_id), (conv, seq, ts));
    }

    /// Tells the other members that `user` is typing; nothing is stored.
    pub(super) fn typing(&mut self, conn: ConnId, user: UserId, reference: Option<Ref>, conv: ConvId) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let now = Instant::now();
        let told = self.typing_told.get(&(user, conv)).is_some_and(|at| now.duration_since(*at) < TYPING_EVERY);
        if !told {
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
        return Err(refuse(ErrorCode::BadRequest, "a message needs some text"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(refuse(ErrorCode::TooLarge, format!("a message is at most {MAX_TEXT_CHARS} characters")));
    }
    Ok(())
}
