//! What each conversation keeps (`core::records` has the rules): the setting, what members
//! are shown, and the memory that stands in for the disk when a conversation is not recorded.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::delivery::{Outcome, Reply, Target, Undo, ack_reply};
use super::messages::FromReader;
use super::{HubTask, Timer};
use crate::core::records::{self, Kept};
use crate::core::{ConnId, HubError};
use crate::model::{ConvId, Millis, Role, Seq, UserId, now_millis};
use crate::protocol::{self, Choice, ErrorCode, KeepKind, Ref, Refusal, ServerFrame, keep_kind, message_frame};
use crate::store::records::{Keep, MessageRecord, SystemLine};
use crate::store::{Change, StoreError};

/// Where the admin page's choice of policy is kept (`meta`), as its text (`retain:30`).
const POLICY_KEY: &str = "records_policy";

/// The policy an admin chose on the admin page, if any.
pub(super) fn stored_policy(store: &crate::store::Store) -> Result<Option<records::Policy>, StoreError> {
    let Some(bytes) = store.meta(POLICY_KEY)? else { return Ok(None) };
    match std::str::from_utf8(&bytes).ok().and_then(|text| text.parse().ok()) {
        Some(policy) => Ok(Some(policy)),
        None => Err(StoreError::Internal(format!("the stored records policy `{}` is not one", String::from_utf8_lossy(&bytes)))),
    }
}

impl HubTask {
    pub(super) fn policy_info(&self) -> crate::core::PolicyInfo {
        crate::core::PolicyInfo { policy: self.policy, fixed: self.policy_fixed, buffer_seconds: self.live_for.as_secs() }
    }

    /// An admin's new records policy: every tab hears of it and of what each of its
    /// conversations keeps now, and once it is on disk what may no longer be kept is purged.
    /// Messages stored before stay while the new policy allows (`off` stops recording; it
    /// does not erase history).
    pub(super) fn set_policy(&mut self, by: UserId, policy: records::Policy, reply: oneshot::Sender<Result<(), HubError>>) {
        let refused = self.admin(by).err().or_else(|| {
            self.policy_fixed.then(|| {
                Refusal::new(
                    ErrorCode::Forbidden,
                    "the records policy is set in the server's configuration (--records, HALLWAY_RECORDS or the settings file); change it there and restart",
                )
            })
        });
        if let Some(refusal) = refused {
            let _ = reply.send(Err(HubError::Refused(refusal)));
            return;
        }
        if policy == self.policy {
            let _ = reply.send(Ok(()));
            return;
        }
        let before = std::mem::replace(&mut self.policy, policy);
        tracing::info!(by = by.0, from = %before, to = %policy, "records policy changed");
        let mut deliveries = vec![(Target::Everyone, ServerFrame::Policy { records: self.policy_info().to_json() }.encode())];
        for (conv, state) in &self.convs {
            if !state.members.is_empty() {
                let members = state.members.keys().copied().collect();
                deliveries.push((
                    Target::Users(members),
                    ServerFrame::Records { conv: *conv, records: self.records_of(*conv) }.encode(),
                ));
            }
        }
        let change = Change::PutMeta(POLICY_KEY, policy.to_string().into_bytes());
        let mut outcome = Outcome::new(deliveries, Reply::Done(reply)).undo(Undo::Policy(before));
        outcome.sweep = true;
        self.persist(vec![change], outcome);
    }

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
            attachments: Vec::new(),
            reply_to: None,
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
            if let Some((seq, ..)) = state.live.pop_front() {
                self.acks.forget(conv, &[seq]);
                // Its reactions were only ever beside it.
                self.reactions.forget_live(conv, seq);
            }
        }
        if state.live.is_empty() {
            // Give the memory back: a busy buffer may have grown large.
            state.live = Default::default();
        } else if let Some((_, _, next)) = state.live.front() {
            self.timers.push(Reverse((*next, Timer::LiveExpiry(conv))));
        }
    }
}

/// Messages of the first purge batch; each later one is sized by how long the one before
/// took (`next_batch`), so that one purge write stays within `PURGE_BUDGET` whatever the
/// disk and the messages cost.
const PURGE_FIRST: usize = 20;
const PURGE_LEAST: usize = 5;
const PURGE_MOST: usize = 500;
/// What one purge write should take, from its submission to its commit: a chat message
/// queued behind it waits about that much longer.
const PURGE_BUDGET: Duration = Duration::from_millis(5);
/// The pause after each purge batch, leaving the writer to chat meanwhile: a purge takes at
/// most about a fifth of the writer's time.
const PURGE_PACE: Duration = Duration::from_millis(20);
/// How often every conversation with a day limit is looked at.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);
/// The data file is rewritten (so purged bytes leave it) after a sweep that purged
/// something, at most this often: a rewrite copies the whole file.
const VACUUM_EVERY: Duration = Duration::from_secs(24 * 3600);
const DAY: Millis = 24 * 3600 * 1000;

/// A pass over every conversation that keeps less than forever.
#[derive(Default)]
pub(super) struct Sweep {
    /// Conversations whose purge is still under way.
    waiting: BTreeSet<ConvId>,
    purged: usize,
    waiters: Vec<oneshot::Sender<usize>>,
}

impl HubTask {
    /// What may go from `conv` as of `as_of`: messages older than a time (a day limit), and
    /// messages every member has read (until read); `None` when it keeps them.
    fn purge_bounds(&self, conv: ConvId, as_of: Millis) -> Option<(Option<Millis>, Option<Seq>)> {
        let cutoff = |days: u32| as_of.saturating_sub(days as Millis * DAY);
        match self.kept(conv) {
            Kept::Days(days) => Some((Some(cutoff(days)), None)),
            Kept::UntilRead(days) => {
                let state = self.convs.get(&conv)?;
                let everyone_read = state.members.values().map(|m| m.read_seq).min().unwrap_or(Seq(0));
                Some((days.map(cutoff), Some(everyone_read)))
            }
            Kept::Nothing | Kept::Forever | Kept::Archive => None,
        }
    }

    /// Purges what every conversation keeping less than forever may no longer keep, as of
    /// `as_of`; `waiter` hears how many messages went once all of it is on disk.
    pub(super) fn sweep(&mut self, as_of: Millis, waiter: Option<oneshot::Sender<usize>>) {
        self.sweep_uploads(as_of);
        let sweep = self.sweep.get_or_insert_with(Sweep::default);
        sweep.waiters.extend(waiter);
        let convs: Vec<ConvId> = self.convs.keys().copied().filter(|c| self.purge_bounds(*c, as_of).is_some()).collect();
        if let Some(sweep) = &mut self.sweep {
            sweep.waiting.extend(convs.iter().copied());
        }
        for conv in convs {
            self.purge_step(conv, as_of);
        }
        self.sweep_done_if_idle();
    }

    /// Queues `conv` for its next purge batch (a batch of it under way takes it up again when
    /// it is done). One batch of all conversations is looked up or written at a time, then
    /// the writer is left to chat for `PURGE_PACE`; conversations take turns.
    pub(super) fn purge_step(&mut self, conv: ConvId, as_of: Millis) {
        let purges = &mut self.purges;
        if purges.turn == Some(conv) {
            // As of the latest time asked: a purge as of a later date (the command line's, a
            // test's clock) must not shrink to now behind a sweep's batch under way.
            let later = purges.again.entry(conv).or_insert(as_of);
            *later = (*later).max(as_of);
            return;
        }
        match purges.queue.iter_mut().find(|(c, _)| *c == conv) {
            Some(waiting) => waiting.1 = waiting.1.max(as_of),
            None => purges.queue.push_back((conv, as_of)),
        }
        self.purge_next();
    }

    /// `Timer::PurgeNext`: the pause after a batch is over.
    pub(super) fn purge_resume(&mut self) {
        self.purges.pausing = false;
        self.purge_next();
    }

    /// Looks up the next batch of the first conversation waiting, on a reader thread, unless
    /// a batch or the pause after one is under way.
    fn purge_next(&mut self) {
        while self.purges.turn.is_none() && !self.purges.pausing {
            let Some((conv, as_of)) = self.purges.queue.pop_front() else { return };
            let Some((cutoff, upto)) = self.purge_bounds(conv, as_of) else {
                self.chain_done(conv);
                continue;
            };
            self.purges.turn = Some(conv);
            let asked = self.purges.batch();
            let store = self.store.clone();
            let back = self.reader_tx.clone();
            tokio::task::spawn_blocking(move || {
                let found = std::panic::catch_unwind(|| -> Result<Vec<Seq>, StoreError> {
                    let mut seqs = match upto {
                        Some(upto) => store.seqs_upto(conv, upto, asked)?,
                        None => Vec::new(),
                    };
                    if let Some(cutoff) = cutoff
                        && seqs.len() < asked
                    {
                        seqs.extend(store.purgeable_before(conv, cutoff, asked)?);
                        seqs.sort_unstable();
                        seqs.dedup();
                        seqs.truncate(asked);
                    }
                    Ok(seqs)
                })
                .unwrap_or_else(|_| Err(StoreError::Internal("looking up messages to purge panicked".into())));
                let _ = back.send(FromReader::Purgeable { conv, as_of, asked, found });
            });
        }
    }

    /// A batch to purge was looked up: purge it, or end this conversation's purge.
    pub(super) fn on_purgeable(&mut self, conv: ConvId, as_of: Millis, asked: usize, found: Result<Vec<Seq>, StoreError>) {
        match found {
            Ok(seqs) if !seqs.is_empty() => {
                // Once gone from the file, gone from every open tab of the conversation too.
                let members = self.convs.get(&conv).map(|c| c.members.keys().copied().collect()).unwrap_or_default();
                let told = (Target::Users(members), ServerFrame::Purged { conv, seqs: seqs.clone() }.encode());
                let mut outcome = Outcome::new(vec![told], Reply::None);
                // Their acknowledgements and reactions leave the file in the same commit.
                outcome.purged = Some(Purged { conv, as_of, seqs: seqs.clone(), asked, submitted: Instant::now() });
                self.persist(vec![Change::PurgeMessages(conv, seqs)], outcome);
            }
            Ok(_) => {
                self.purges.turn = None;
                self.chain_done(conv);
                self.purge_next();
            }
            Err(e) => {
                tracing::warn!(conv = conv.0, error = %e, "could not look up messages to purge; trying again at the next sweep");
                self.purges.turn = None;
                self.chain_done(conv);
                self.purge_next();
            }
        }
    }

    /// A purge batch reached the disk (or failed): size the next by how long this one took,
    /// pause, and go on with the next conversation waiting.
    pub(super) fn purge_committed(&mut self, purged: Purged, saved: bool) {
        let Purged { conv, as_of, seqs, asked, submitted } = purged;
        let count = seqs.len();
        self.purges.turn = None;
        let took = submitted.elapsed();
        if saved {
            let next = next_batch(count, asked, took);
            tracing::debug!(
                conv = conv.0,
                messages = count,
                micros = took.as_micros() as u64,
                next,
                "purged messages past what the conversation keeps"
            );
            self.purges.size = Some(next);
            if let Some(sweep) = &mut self.sweep {
                sweep.purged += count;
            }
            self.freed_since_vacuum = true;
            // Gone from the file: what the core held of them goes too (a failed batch keeps
            // them, as the file does).
            self.acks.forget(conv, &seqs);
            for seq in &seqs {
                self.forget_reactions(conv, *seq);
            }
        }
        // Paused first: a conversation taken up again below waits its turn after the pause.
        self.purges.pausing = true;
        self.timers.push(Reverse((Instant::now() + PURGE_PACE, Timer::PurgeNext)));
        if saved && count == asked {
            self.purges.queue.push_back((conv, as_of));
        } else {
            self.chain_done(conv);
        }
    }

    /// `conv`'s purge is over for now; a read that came meanwhile starts it again.
    fn chain_done(&mut self, conv: ConvId) {
        // As of the time it was asked for: a sweep "as of" a later time (`hallway purge`, a
        // test's clock) must not become a purge as of now.
        if let Some(as_of) = self.purges.again.remove(&conv) {
            self.purge_step(conv, as_of.max(now_millis()));
            return;
        }
        if let Some(sweep) = &mut self.sweep {
            sweep.waiting.remove(&conv);
        }
        self.sweep_done_if_idle();
    }

    fn sweep_done_if_idle(&mut self) {
        if self.sweep.as_ref().is_some_and(|s| s.waiting.is_empty())
            && let Some(sweep) = self.sweep.take()
        {
            if sweep.purged > 0 {
                tracing::info!(messages = sweep.purged, "purge sweep done");
            }
            let vacuum = self.vacuum_if_due();
            // Those who asked hear back once the purged bytes are gone from the file too.
            tokio::spawn(async move {
                if let Some(vacuum) = vacuum {
                    let _ = vacuum.await;
                }
                for waiter in sweep.waiters {
                    let _ = waiter.send(sweep.purged);
                }
            });
        }
    }

    /// Rewrites the file (so purged, edited-away and deleted text leaves its bytes) after
    /// such changes, at most daily.
    fn vacuum_if_due(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        let due = self.last_vacuum.is_none_or(|at| at.elapsed() >= VACUUM_EVERY);
        if !self.freed_since_vacuum || !due {
            return None;
        }
        self.freed_since_vacuum = false;
        self.last_vacuum = Some(Instant::now());
        let writer = self.writer.clone();
        Some(tokio::spawn(async move {
            match writer.vacuum().await {
                Ok(done) => {
                    tracing::info!(
                        bytes_before = done.bytes_before,
                        bytes_after = done.bytes_after,
                        millis = done.total.as_millis() as u64,
                        "data file rewritten after purges"
                    )
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not rewrite the data file after purges; purged text stays in its free pages until the next try"
                ),
            }
        }))
    }
}

/// A purge batch on its way to the disk.
pub(super) struct Purged {
    conv: ConvId,
    as_of: Millis,
    /// The messages purged (with their acknowledgements and reactions).
    seqs: Vec<Seq>,
    /// The batch size asked for: a batch that came back full means more are waiting.
    asked: usize,
    submitted: Instant,
}

/// The purges under way: one batch at a time over all conversations.
#[derive(Default)]
pub(super) struct Purges {
    /// The conversation whose batch is being looked up or written.
    turn: Option<ConvId>,
    /// The pause after a batch (`PURGE_PACE`) is under way.
    pausing: bool,
    /// Conversations waiting for their next batch, in turn, each as of a time.
    queue: std::collections::VecDeque<(ConvId, Millis)>,
    /// Conversations to look at again once their batch under way is done (a read or a
    /// sweep came), each as of the latest time asked.
    again: HashMap<ConvId, Millis>,
    /// The next batch's size, from the last one's time; `PURGE_FIRST` before any.
    size: Option<usize>,
}

impl Purges {
    fn batch(&self) -> usize {
        self.size.unwrap_or(PURGE_FIRST)
    }
}

/// The size of the next purge batch after `count` messages (of `asked`) took `took`: as many
/// as fit in `PURGE_BUDGET` at that pace, growing at most twofold a batch so that one
/// fast batch (a warm cache) does not make a long one.
fn next_batch(count: usize, asked: usize, took: Duration) -> usize {
    let per_message = took.as_secs_f64() / count.max(1) as f64;
    let fit = (PURGE_BUDGET.as_secs_f64() / per_message.max(1e-7)) as usize;
    fit.clamp(PURGE_LEAST, (asked * 2).clamp(PURGE_LEAST, PURGE_MOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_batch_is_sized_by_the_time_the_last_one_took() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch(20, 20, ms(1)), 40, "a quick batch: twice as many, not more at once");
        assert_eq!(next_batch(100, 100, ms(10)), 50, "a slow one: as many as fit in the budget");
        assert_eq!(next_batch(3, 100, ms(1)), 15, "a short batch is timed per message");
        assert_eq!(next_batch(20, 20, ms(500)), PURGE_LEAST, "never fewer than the least");
        assert_eq!(next_batch(500, 500, Duration::ZERO), PURGE_MOST, "never more than the most");
    }
}
