//! Reactions: one person's emoji on a message, given or taken back (`react`), told to every
//! tab of every member as the message's whole set (`reactions` frame). A reaction is kept as
//! its message is: a message held in memory only (not recorded) has its reactions beside it in
//! memory, gone with it; a recorded message's go to the writer (`store/reactions.rs`). A
//! reaction never counts as unread and notifies nobody: nothing here touches a member's
//! counts, and the frame is not a message.
//!
//! The core does not wait on disk: the first reaction to a recorded message reads it and its
//! reactions on a reader thread, and reactions that come meanwhile wait behind that read.
//! While changes are on their way to the file the latest set stays here (`pending`), so the
//! next reaction starts from it, not from the file's older one.

use std::collections::{BTreeMap, HashMap};

use super::HubTask;
use super::delivery::{Outcome, Target, ack_reply};
use super::messages::FromReader;
use crate::core::ConnId;
use crate::model::{ConvId, Role, Seq, UserId, now_millis};
use crate::protocol::{ErrorCode, Ref, Refusal, ServerFrame, reactions_info};
use crate::store::reactions::Reactions;
use crate::store::records::MessageRecord;
use crate::store::{Change, StoreError};

/// Different emoji one message may carry; docs/protocol.md says so.
pub(super) const MAX_EMOJI_PER_MESSAGE: usize = 20;
/// Characters (code points) of one emoji: enough for a family with skin tones.
const MAX_EMOJI_CHARS: usize = 16;

/// What the core holds of reactions.
#[derive(Default)]
pub(super) struct ReactionState {
    /// Reactions of messages that are not recorded, beside `ConvState::live`, forgotten with
    /// their message.
    live: BTreeMap<(ConvId, Seq), Reactions>,
    /// The latest reactions of recorded messages with changes on their way to the file, and
    /// how many.
    pending: HashMap<(ConvId, Seq), (Reactions, usize)>,
    /// Reactions waiting for their message to be read from the file.
    loading: HashMap<(ConvId, Seq), Vec<React>>,
}

impl ReactionState {
    /// A message that is not recorded left memory: so do its reactions.
    pub(super) fn forget_live(&mut self, conv: ConvId, seq: Seq) {
        self.live.remove(&(conv, seq));
    }
}

/// One `react` frame.
pub(super) struct React {
    conn: ConnId,
    user: UserId,
    reference: Option<Ref>,
    conv: ConvId,
    seq: Seq,
    emoji: String,
    on: bool,
}

/// A recorded message and its reactions as a reader thread found them (`Err`: already logged).
pub(super) type Loaded = Result<Option<(MessageRecord, Reactions)>, ()>;

impl HubTask {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn react(
        &mut self,
        conn: ConnId,
        user: UserId,
        reference: Option<Ref>,
        conv: ConvId,
        seq: Seq,
        emoji: String,
        on: bool,
    ) -> Result<(), Refusal> {
        let members = self.members_of(conv, user)?;
        if self.users.get(&user).is_some_and(|u| u.info.role == Role::Reviewer) {
            return Err(Refusal::new(ErrorCode::Forbidden, "a reviewer reads the archive and does not react"));
        }
        check_emoji(&emoji)?;
        let request = React { conn, user, reference, conv, seq, emoji, on };
        let key = (conv, seq);
        if let Some(waiting) = self.reactions.loading.get_mut(&key) {
            waiting.push(request);
            return Ok(());
        }
        if let Some(live) = self.live_message(conv, seq).map(|message| reactable(message)) {
            // Never recorded: the reaction stays in memory with the message.
            live?;
            let set = self.reactions.live.entry(key).or_default();
            if !toggle(set, &request.emoji, user, on)? {
                self.ack_now(conn, request.reference);
                return Ok(());
            }
            let frame = ServerFrame::Reactions { conv, seq, reactions: reactions_info(set) }.encode();
            let set_empty = set.is_empty();
            if set_empty {
                self.reactions.live.remove(&key);
            }
            self.deliver(Target::Users(members), frame);
            self.ack_now(conn, request.reference);
            return Ok(());
        }
        if !self.kept(conv).recorded() {
            // Its message is in the file from before, but what this conversation is given now
            // must not reach the disk.
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this conversation keeps nothing now: only its messages since then take reactions",
            ));
        }
        if seq.0 == 0 || self.convs.get(&conv).is_none_or(|c| seq > c.last_seq) {
            return Err(no_message());
        }
        if self.reactions.pending.contains_key(&key) {
            return self.react_recorded(request, None);
        }
        self.reactions.loading.insert(key, vec![request]);
        let door = self.door.clone();
        let back = self.reader_tx.clone();
        tokio::task::spawn_blocking(move || {
            // A panic here must still answer: reactions of this message wait for it.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| door.message_with_reactions(conv, seq)))
                .unwrap_or_else(|_| Err(StoreError::Internal("reading a message panicked".into())));
            let loaded = read.map_err(|e| {
                tracing::error!(error = %e, conv = conv.0, seq = seq.0, "reading a message's reactions failed");
            });
            let _ = back.send(FromReader::Reactions(conv, seq, loaded));
        });
        Ok(())
    }

    /// A reader thread's answer: the reactions that waited for it, in the order they came.
    pub(super) fn reactions_loaded(&mut self, conv: ConvId, seq: Seq, loaded: Loaded) {
        for request in self.reactions.loading.remove(&(conv, seq)).unwrap_or_default() {
            let (conn, reference) = (request.conn, request.reference.clone());
            if let Err(refusal) = self.react_recorded(request, Some(&loaded)) {
                self.refused(conn, reference, refusal);
            }
        }
    }

    /// A reaction to a recorded message, with the file's version of it (`None`: the changes
    /// on their way, in `pending`, are newer than the file).
    fn react_recorded(&mut self, request: React, file: Option<&Loaded>) -> Result<(), Refusal> {
        let React { conn, user, reference, conv, seq, emoji, on } = request;
        let key = (conv, seq);
        // Checked again: the member may have left while the file was read.
        let members = self.members_of(conv, user)?;
        let latest = self.pending.get(&key);
        let mut set = match (self.reactions.pending.get(&key), file) {
            (Some((set, _)), _) => {
                if let Some(message) = latest {
                    reactable(message)?;
                }
                set.clone()
            }
            (None, Some(Ok(found))) => {
                // A message still being committed is not in the file yet, and has no reactions.
                let message = latest.or(found.as_ref().map(|(m, _)| m)).ok_or_else(no_message)?;
                reactable(message)?;
                found.as_ref().map(|(_, set)| set.clone()).unwrap_or_default()
            }
            (None, Some(Err(()))) => return Err(Refusal::new(ErrorCode::Storage, "the message could not be read")),
            (None, None) => return Err(no_message()),
        };
        if !toggle(&mut set, &emoji, user, on)? {
            self.ack_now(conn, reference);
            return Ok(());
        }
        let frame = ServerFrame::Reactions { conv, seq, reactions: reactions_info(&set) }.encode();
        let entry = self.reactions.pending.entry(key).or_default();
        entry.0 = set;
        entry.1 += 1;
        let mut outcome = Outcome::new(vec![(Target::Users(members), frame)], ack_reply(conn, reference));
        outcome.reacted = Some(key);
        tracing::debug!(conv = conv.0, seq = seq.0, user = user.0, on, "reaction");
        self.persist(vec![Change::React { conv, seq, emoji, user, on, at: now_millis() }], outcome);
        Ok(())
    }

    /// A reaction's commit was reported: once none is on its way, the file has the latest.
    pub(super) fn reaction_committed(&mut self, key: (ConvId, Seq)) {
        if let Some((_, count)) = self.reactions.pending.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.reactions.pending.remove(&key);
            }
        }
    }

    /// The message is deleted or gone from memory: its reactions go with it.
    pub(super) fn forget_reactions(&mut self, conv: ConvId, seq: Seq) {
        self.reactions.live.remove(&(conv, seq));
        self.reactions.pending.remove(&(conv, seq));
    }

    /// The reactions held in memory of `conv`'s messages that are not recorded, for a history
    /// read.
    pub(super) fn live_reactions(&self, conv: ConvId) -> HashMap<Seq, Reactions> {
        self.reactions.live.range((conv, Seq(0))..=(conv, Seq(u64::MAX))).map(|((_, seq), set)| (*seq, set.clone())).collect()
    }
}

fn no_message() -> Refusal {
    Refusal::new(ErrorCode::NotFound, "no such message")
}

/// Whether a message takes reactions: one that is there, written by a person.
fn reactable(message: &MessageRecord) -> Result<(), Refusal> {
    if message.deleted {
        return Err(no_message());
    }
    if message.system.is_some() {
        return Err(Refusal::new(ErrorCode::Forbidden, "a line the server wrote takes no reactions"));
    }
    Ok(())
}

/// Gives or takes back `user`'s `emoji` in `set`; whether anything changed (giving twice is
/// one reaction, taking back what was not given is nothing).
fn toggle(set: &mut Reactions, emoji: &str, user: UserId, on: bool) -> Result<bool, Refusal> {
    let found = set.iter().position(|(e, _)| e == emoji);
    match (found, on) {
        (Some(i), true) => {
            if set[i].1.contains(&user) {
                return Ok(false);
            }
            set[i].1.push(user);
        }
        (None, true) => {
            if set.len() >= MAX_EMOJI_PER_MESSAGE {
                return Err(Refusal::new(
                    ErrorCode::TooLarge,
                    format!("a message takes at most {MAX_EMOJI_PER_MESSAGE} different reactions; add yours to one of them"),
                ));
            }
            set.push((emoji.to_string(), vec![user]));
        }
        (Some(i), false) => {
            let Some(at) = set[i].1.iter().position(|u| *u == user) else { return Ok(false) };
            set[i].1.remove(at);
            if set[i].1.is_empty() {
                set.remove(i);
            }
        }
        (None, false) => return Ok(false),
    }
    Ok(true)
}

/// A reaction is one emoji: pictographs and symbols with their joiners, variation selectors,
/// skin tones, keycaps and flag tags, never letters, spaces or markup.
pub(super) fn check_emoji(emoji: &str) -> Result<(), Refusal> {
    let chars = emoji.chars().count();
    if chars > MAX_EMOJI_CHARS {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!("a reaction is one emoji of at most {MAX_EMOJI_CHARS} characters"),
        ));
    }
    let symbol = |c: char| {
        matches!(c, '\u{a9}' | '\u{ae}' | '\u{203c}'..='\u{2bff}' | '\u{3030}' | '\u{303d}' | '\u{3297}' | '\u{3299}')
            || ('\u{1f000}'..='\u{1faff}').contains(&c)
    };
    let joining = |c: char| {
        matches!(c, '0'..='9' | '#' | '*' | '\u{200d}' | '\u{20e3}' | '\u{fe0e}' | '\u{fe0f}')
            || ('\u{e0020}'..='\u{e007f}').contains(&c)
    };
    if chars == 0 || !emoji.chars().any(symbol) || !emoji.chars().all(|c| symbol(c) || joining(c)) {
        return Err(Refusal::new(ErrorCode::BadRequest, "a reaction is one emoji (no letters, spaces or other text)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_taken_and_text_is_not() {
        for good in ["👍", "❤️", "🎉", "1️⃣", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷", "©️", "✅"]
        {
            assert!(check_emoji(good).is_ok(), "{good} is an emoji");
        }
        for bad in ["", "a", "+1", "👍 ", "<b>", "1", "é", "中", "\u{3000}", "👍\n"] {
            assert_eq!(check_emoji(bad).map_err(|r| r.code), Err(ErrorCode::BadRequest), "{bad:?} is not");
        }
        assert_eq!(check_emoji(&"👍".repeat(17)).map_err(|r| r.code), Err(ErrorCode::TooLarge));
    }

    #[test]
    fn giving_twice_is_once_and_the_last_taken_back_leaves_no_emoji() {
        let mut set = Reactions::new();
        assert_eq!(toggle(&mut set, "👍", UserId(1), true), Ok(true));
        assert_eq!(toggle(&mut set, "👍", UserId(1), true), Ok(false));
        assert_eq!(toggle(&mut set, "👍", UserId(2), true), Ok(true));
        assert_eq!(set, vec![("👍".to_string(), vec![UserId(1), UserId(2)])]);
        assert_eq!(toggle(&mut set, "🎉", UserId(1), false), Ok(false));
        assert_eq!(toggle(&mut set, "👍", UserId(1), false), Ok(true));
        assert_eq!(toggle(&mut set, "👍", UserId(2), false), Ok(true));
        assert!(set.is_empty());
        for i in 0..MAX_EMOJI_PER_MESSAGE as u32 {
            let emoji = char::from_u32(0x1f600 + i).unwrap().to_string();
            assert_eq!(toggle(&mut set, &emoji, UserId(1), true), Ok(true));
        }
        assert_eq!(toggle(&mut set, "🚀", UserId(1), true).map_err(|r| r.code), Err(ErrorCode::TooLarge));
        assert_eq!(toggle(&mut set, "😀", UserId(2), true), Ok(true), "adding to one there is fine");
    }
}
