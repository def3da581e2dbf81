//! Reactions to messages of recorded conversations: one entry per (conversation, seq, emoji,
//! person), valued with when they reacted, so a message's reactions are one short range read
//! and come back in the order they were first given. Written in the writer like everything
//! else; a reaction to a message that is gone (deleted or purged since the core looked) writes
//! nothing. They leave with their message: a delete (`Change::UpdateMessage` of a deleted
//! message) and a purge remove them in the same commit, and a vacuum copies only live ones.
//! Reactions in conversations that keep nothing never come here (the core holds them).

use std::collections::HashMap;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, decode};
use super::tables::{CONVSEQ_MESSAGE, CONVSEQEMOJIUSER_TS};
use super::{ContentKey, Store, StoreError};
use crate::model::{ConvId, Millis, Seq, UserId};

/// A message's reactions: each emoji with who gave it, both in the order first given.
pub type Reactions = Vec<(String, Vec<UserId>)>;

/// While reading: an emoji, when it was first given, and (when, who) of each reaction.
type Given = (String, Millis, Vec<(Millis, UserId)>);

/// Adds (`on`) or takes back one person's reaction. Nothing is written for a message that is
/// no longer there or was deleted: its reactions went with it.
pub(super) fn react(
    txn: &WriteTransaction,
    conv: ConvId,
    seq: Seq,
    emoji: &str,
    user: UserId,
    on: bool,
    at: Millis,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(CONVSEQEMOJIUSER_TS)?;
    if !on {
        table.remove((conv.0, seq.0, emoji, user.0))?;
        return Ok(());
    }
    let message = txn.open_table(CONVSEQ_MESSAGE)?.get((conv.0, seq.0))?.map(|v| decode::<MessageRecord>(v.value()));
    if message.transpose()?.is_none_or(|m| m.deleted) {
        return Ok(());
    }
    // Reacting twice is one reaction, given when it first was.
    if table.get((conv.0, seq.0, emoji, user.0))?.is_none() {
        table.insert((conv.0, seq.0, emoji, user.0), at)?;
    }
    Ok(())
}

/// Removes every reaction to these messages (a delete, a purge).
pub(super) fn remove_all(txn: &WriteTransaction, conv: ConvId, seqs: impl IntoIterator<Item = u64>) -> Result<(), StoreError> {
    let mut table = txn.open_table(CONVSEQEMOJIUSER_TS)?;
    for seq in seqs {
        table.retain_in((conv.0, seq, "", 0)..(conv.0, seq.saturating_add(1), "", 0), |_, _| false)?;
    }
    Ok(())
}

/// The reactions of one message, read in `txn`; a file without the table has none.
pub(super) fn of_message(txn: &ReadTransaction, conv: ConvId, seq: Seq) -> Result<Reactions, StoreError> {
    Ok(of_messages(txn, conv, &[seq])?.remove(&seq).unwrap_or_default())
}

/// The reactions of each of these messages that has any, read in `txn`.
pub(super) fn of_messages(txn: &ReadTransaction, conv: ConvId, seqs: &[Seq]) -> Result<HashMap<Seq, Reactions>, StoreError> {
    let table = match txn.open_table(CONVSEQEMOJIUSER_TS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut found = HashMap::new();
    for &seq in seqs {
        let mut emojis: Vec<Given> = Vec::new();
        for entry in table.range((conv.0, seq.0, "", 0)..(conv.0, seq.0.saturating_add(1), "", 0))? {
            let (key, at) = entry?;
            let (_, _, emoji, user) = key.value();
            let at = at.value();
            match emojis.iter_mut().find(|(e, ..)| e == emoji) {
                Some((_, first, who)) => {
                    *first = (*first).min(at);
                    who.push((at, UserId(user)));
                }
                None => emojis.push((emoji.to_string(), at, vec![(at, UserId(user))])),
            }
        }
        if emojis.is_empty() {
            continue;
        }
        emojis.sort_by_key(|(_, first, _)| *first);
        let reactions = emojis
            .into_iter()
            .map(|(emoji, _, mut who)| {
                who.sort_by_key(|(at, _)| *at);
                (emoji, who.into_iter().map(|(_, user)| user).collect())
            })
            .collect();
        found.insert(seq, reactions);
    }
    Ok(found)
}

/// `hallway check`'s part: every reaction belongs to a message that is there and not deleted,
/// by a person who exists. Problems name ids and seqs, never the emoji.
pub(super) fn check(
    txn: &ReadTransaction,
    user_exists: &dyn Fn(u64) -> bool,
    problem: &mut dyn FnMut(String),
) -> Result<(), StoreError> {
    let table = match txn.open_table(CONVSEQEMOJIUSER_TS) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let messages = match txn.open_table(CONVSEQ_MESSAGE) {
        Ok(messages) => Some(messages),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut last: Option<((u64, u64), bool)> = None;
    for entry in table.iter()? {
        let (key, _) = entry?;
        let (conv, seq, _, user) = key.value();
        let there = match last {
            Some((at, there)) if at == (conv, seq) => there,
            _ => {
                let message = match &messages {
                    Some(messages) => messages.get((conv, seq))?.and_then(|v| decode::<MessageRecord>(v.value()).ok()),
                    None => None,
                };
                let there = message.is_some_and(|m| !m.deleted);
                last = Some(((conv, seq), there));
                there
            }
        };
        if !there {
            problem(format!("convseqemojiuser_ts ({conv}, {seq}): a reaction to a message that is not there"));
        }
        if !user_exists(user) {
            problem(format!("convseqemojiuser_ts ({conv}, {seq}): a reaction by user {user}, who does not exist"));
        }
    }
    Ok(())
}

impl Store {
    /// The reactions of each of these messages that has any (content: behind the key).
    pub fn reactions(&self, _key: &ContentKey, conv: ConvId, seqs: &[Seq]) -> Result<HashMap<Seq, Reactions>, StoreError> {
        let txn = self.db()?.begin_read()?;
        of_messages(&txn, conv, seqs)
    }

    /// One message and its reactions, read in one snapshot, for the core's reaction checks.
    pub fn message_with_reactions(
        &self,
        _key: &ContentKey,
        conv: ConvId,
        seq: Seq,
    ) -> Result<Option<(MessageRecord, Reactions)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let message = txn.open_table(CONVSEQ_MESSAGE)?.get((conv.0, seq.0))?.map(|v| decode::<MessageRecord>(v.value()));
        let Some(message) = message.transpose()? else { return Ok(None) };
        Ok(Some((message, of_message(&txn, conv, seq)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use crate::store::tests::message;

    #[test]
    fn reactions_come_back_in_the_order_given_and_leave_with_their_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let key = ContentKey(());
        let conv = ConvId(1);
        let react = |emoji: &str, user: u64, on: bool, at: Millis| Change::React {
            conv,
            seq: Seq(1),
            emoji: emoji.into(),
            user: UserId(user),
            on,
            at,
        };
        let react_to =
            |seq: u64, emoji: &str| Change::React { conv, seq: Seq(seq), emoji: emoji.into(), user: UserId(2), on: true, at: 80 };
        store.apply_now(vec![Change::PutMessage(conv, Seq(1), message(1, &[]))]).unwrap();
        store.apply_now(vec![react("🎉", 2, true, 10), react("👍", 3, true, 20), react("🎉", 1, true, 30)]).unwrap();
        store.apply_now(vec![react("🎉", 2, true, 40), react("👍", 9, false, 50)]).unwrap();
        let found = store.reactions(&key, conv, &[Seq(1), Seq(2)]).unwrap();
        assert_eq!(
            found.get(&Seq(1)).cloned().unwrap(),
            vec![("🎉".to_string(), vec![UserId(2), UserId(1)]), ("👍".to_string(), vec![UserId(3)])],
            "twice is once, and taking back what was not given changes nothing"
        );
        assert!(!found.contains_key(&Seq(2)));
        store.apply_now(vec![react("👀", 2, true, 60), Change::PurgeMessages(conv, vec![Seq(1)])]).unwrap();
        assert!(store.reactions(&key, conv, &[Seq(1)]).unwrap().is_empty(), "a purge takes them along");
        store.apply_now(vec![react("👀", 2, true, 70)]).unwrap();
        assert!(store.reactions(&key, conv, &[Seq(1)]).unwrap().is_empty(), "a message that is gone takes none");
        let deleted = MessageRecord { deleted: true, rev: 3, ..message(1, &[]) };
        store.apply_now(vec![Change::PutMessage(conv, Seq(2), message(1, &[])), react_to(2, "👀")]).unwrap();
        store.apply_now(vec![Change::UpdateMessage(conv, Seq(2), deleted.clone())]).unwrap();
        assert!(store.reactions(&key, conv, &[Seq(2)]).unwrap().is_empty(), "a delete takes them along");
        store.apply_now(vec![react_to(2, "👀")]).unwrap();
        assert!(store.reactions(&key, conv, &[Seq(2)]).unwrap().is_empty(), "a deleted message takes none");
    }
}
