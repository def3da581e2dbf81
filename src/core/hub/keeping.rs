//! What each conversation keeps (`core::records` has the rules): the setting, what members
//! are shown, and the memory that stands in for the disk when a conversation is not recorded.

use std::cmp::Reverse;

use tokio::time::Instant;

use super::delivery::{Outcome, Target, Undo, ack_reply};
use super::{HubTask, Timer};
use crate::core::ConnId;
use crate::core::records::{self, Kept};
use crate::model::{ConvId, Role, Seq, UserId, now_millis};
use crate::protocol::{self, Choice, ErrorCode, KeepKind, Ref, Refusal, ServerFrame, keep_kind, message_frame};
use crate::store::Change;
use crate::store::records::{Keep, MessageRecord, SystemLine};

impl HubTask {
    /// What `conv` keeps now, under the server's policy.
    pub(super) fn kept(&self, conv: ConvId) -> Kept {
        match self.convs.get(&conv) {
            Some(state) => self.policy.kept(records::chosen(&state.record, state.members.keys().copied())),
            None => Kept::Nothing,
        }
    }

    /// What members are shown of what `conv` keeps.
    pub(super) fn records_of(&self, conv: ConvId) -> protocol::Records {
        let kept = self.kept(conv);
        let (keep, days) = kept.wire();
        let state = &self.convs[&conv];
        let choices = (!state.record.kind.is_room()).then(|| {
            state
                .members
                .keys()
                .map(|member| {
                    let chosen = state.record.choices.iter().find(|(who, _)| who == member).map_or(Keep::Forever, |(_, k)| *k);
                    let (keep, days) = keep_kind(chosen);
                    Choice { user: *member, keep, days }
                })
                .collect()
        });
        protocol::Records { keep, days, set_by: state.record.keep_set_by, default: kept == self.policy.default_kept(), choices }
    }

    /// `set_records`: what the conversation keeps from now on (a room's setting, or the
    /// member's own choice in a DM or group), within the server's policy.
    pub(super) async fn set_records(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        keep: KeepKind,
        days: Option<u32>,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        let wanted = match (keep, days) {
            (KeepKind::Nothing, _) => Keep::Nothing,
            (KeepKind::UntilRead, _) => Keep::UntilRead,
            (KeepKind::Forever, _) => Keep::Forever,
            (KeepKind::Days, Some(days)) => Keep::Days(days),
            (KeepKind::Days, None) => return Err(Refusal::new(ErrorCode::BadRequest, "say how many `days`")),
            (KeepKind::Archive, _) => {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "only the server's policy archives; choose nothing, until_read, days or forever",
                ));
            }
        };
        self.policy.allows(wanted)?;
        let role = self.users.get(&user).map_or(Role::Member, |u| u.info.role);
        let before_kept = self.kept(conv);
        let Some(state) = self.convs.get_mut(&conv) else { return Err(Refusal::not_found()) };
        if !records::may_set(&state.record, user, role) {
            return Err(Refusal::new(ErrorCode::Forbidden, "only the room's creator or an admin can change what it keeps"));
        }
        let before = state.record.clone();
        if state.record.kind.is_room() {
            state.record.keep = wanted;
        } else {
            state.record.choices.retain(|(who, _)| *who != user);
            state.record.choices.push((user, wanted));
        }
        state.record.keep_set_by = Some(user);
        let wrote = state.record.clone();
        let seq = state.last_seq.next();
        state.last_seq = seq;
        // A line like any message from someone else: unread for the others until they read it.
        for (member, counts) in state.members.iter_mut() {
            if *member != user {
                counts.unread += 1;
            }
        }
        let line = MessageRecord {
            author: user,
            text: String::new(),
            ts: now_millis(),
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: None,
            rev: seq.0,
            system: Some(SystemLine::Records(wanted)),
        };
        let after_kept = self.kept(conv);
        tracing::info!(conv = conv.0, user = user.0, chose = ?wanted, kept = ?after_kept, "records setting changed");
        let deliveries = vec![
            (Target::Users(members.clone()), ServerFrame::Records { conv, records: self.records_of(conv) }.encode()),
            (Target::Users(members), ServerFrame::Message { message: message_frame(conv, seq, &line) }.encode()),
        ];
        let mut outcome = Outcome::new(deliveries, ack_reply(conn, reference))
            .undo(Undo::RestoreRecord { conv, before, wrote: wrote.clone() })
            .undo(Undo::Unread { conv, author: user, mentions: Vec::new() });
        outcome.message = Some((conv, seq, seq));
        let mut changes = vec![Change::PutConversation(conv, wrote)];
        // The line says who changed what is kept, never what anyone wrote: it is kept when
        // the conversation was or now is recorded, so its history shows where a gap begins.
        if before_kept.recorded() || after_kept.recorded() {
            self.pending.insert((conv, seq), line.clone());
            changes.push(Change::PutMessage(conv, seq, line));
        } else {
            self.keep_live(conv, seq, line);
        }
        self.persist(changes, outcome);
        Ok(())
    }

    /// Holds a message that is not recorded in memory for `live_for`, for tabs catching up.
    pub(super) fn keep_live(&mut self, conv: ConvId, seq: Seq, record: MessageRecord) {
        let until = Instant::now() + self.live_for;
        let Some(state) = self.convs.get_mut(&conv) else { return };
        if state.live.is_empty() {
            self.timers.push(Reverse((until, Timer::LiveExpiry(conv))));
        }
        state.live.push_back((seq, record, until));
    }

    /// The latest version of a message that is not recorded, if it is still held.
    pub(super) fn live_message(&mut self, conv: ConvId, seq: Seq) -> Option<&mut MessageRecord> {
        let state = self.convs.get_mut(&conv)?;
        state.live.iter_mut().find(|(s, _, _)| *s == seq).map(|(_, record, _)| record)
    }

    /// What `conv` still holds in memory, for a history read (`Command::May`).
    pub(super) fn live_copy(&self, conv: ConvId) -> Vec<(Seq, MessageRecord)> {
        self.convs.get(&conv).map_or_else(Vec::new, |state| state.live.iter().map(|(seq, r, _)| (*seq, r.clone())).collect())
    }

    /// `Timer::LiveExpiry`: forgets the messages whose time in memory is over.
    pub(super) fn forget_live(&mut self, conv: ConvId, now: Instant) {
        let Some(state) = self.convs.get_mut(&conv) else { return };
        while state.live.front().is_some_and(|(_, _, until)| *until <= now) {
            state.live.pop_front();
        }
        if state.live.is_empty() {
            // Give the memory back: a busy buffer may have grown large.
            state.live = Default::default();
        } else if let Some((_, _, next)) = state.live.front() {
            self.timers.push(Reverse((*next, Timer::LiveExpiry(conv))));
        }
    }
}
