//! Acknowledgements of announcements ("Got it"): one row per (conversation, seq, person)
//! with when they acknowledged, in `convsequser_ack`. Written only for messages that are
//! stored (a room that keeps nothing holds its acknowledgements in the core's memory, beside
//! the messages); they go with their message, at its delete or purge.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, decode};
use super::tables::{CONVSEQ_MESSAGE, CONVSEQUSER_ACK};
use super::{Store, StoreError};
use crate::model::{ConvId, Millis, Seq, UserId};

/// One stored acknowledgement, with the author of the message it acknowledges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAck {
    pub conv: ConvId,
    pub seq: Seq,
    pub author: UserId,
    pub user: UserId,
    pub ts: Millis,
}

/// Writes an acknowledgement, unless its message is gone or deleted meanwhile (a delete
/// committed while the core was reading the message): then nothing would ever remove it.
pub(super) fn put(txn: &WriteTransaction, conv: ConvId, seq: Seq, user: UserId, ts: Millis) -> Result<(), StoreError> {
    let message = txn.open_table(CONVSEQ_MESSAGE)?.get((conv.0, seq.0))?.map(|v| decode::<MessageRecord>(v.value()));
    if message.transpose()?.is_none_or(|m| m.deleted) {
        return Ok(());
    }
    txn.open_table(CONVSEQUSER_ACK)?.insert((conv.0, seq.0, user.0), ts)?;
    Ok(())
}

/// Removes every acknowledgement of these messages (a delete, a purge batch).
pub(super) fn remove(txn: &WriteTransaction, conv: ConvId, seqs: &[Seq]) -> Result<(), StoreError> {
    let mut table = txn.open_table(CONVSEQUSER_ACK)?;
    for seq in seqs {
        let users: Vec<u64> = table
            .range((conv.0, seq.0, 0)..=(conv.0, seq.0, u64::MAX))?
            .map(|entry| entry.map(|(key, _)| key.value().2))
            .collect::<Result<_, _>>()?;
        for user in users {
            table.remove((conv.0, seq.0, user))?;
        }
    }
    Ok(())
}

impl Store {
    /// Every stored acknowledgement, for the core at start-up. Announcements are few and
    /// acknowledged once per person, so they all fit in memory.
    pub fn acks(&self) -> Result<Vec<StoredAck>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = match txn.open_table(CONVSEQUSER_ACK) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let mut found = Vec::new();
        let mut author: Option<((u64, u64), Option<UserId>)> = None;
        for entry in table.iter()? {
            let (key, ts) = entry?;
            let (conv, seq, user) = key.value();
            if author.as_ref().is_none_or(|(at, _)| *at != (conv, seq)) {
                let message = messages.get((conv, seq))?.map(|v| decode::<MessageRecord>(v.value())).transpose()?;
                author = Some(((conv, seq), message.filter(|m| !m.deleted).map(|m| m.author)));
            }
            // An acknowledgement whose message is gone is not shown (`hallway check` names it).
            let Some((_, Some(by))) = author else { continue };
            found.push(StoredAck { conv: ConvId(conv), seq: Seq(seq), author: by, user: UserId(user), ts: ts.value() });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;

    #[test]
    fn acknowledgements_go_with_their_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let (conv, other) = (ConvId(1), ConvId(2));
        let message = |author| MessageRecord { rev: 1, ..crate::store::tests::message(author, &[]) };
        store
            .apply_now(vec![
                Change::PutMessage(conv, Seq(1), message(1)),
                Change::PutMessage(conv, Seq(2), message(1)),
                Change::PutMessage(other, Seq(1), message(1)),
                Change::PutAck { conv, seq: Seq(1), user: UserId(2), ts: 10 },
                Change::PutAck { conv, seq: Seq(1), user: UserId(3), ts: 11 },
                Change::PutAck { conv, seq: Seq(2), user: UserId(2), ts: 12 },
                Change::PutAck { conv: other, seq: Seq(1), user: UserId(2), ts: 13 },
                // No message at seq 9: nothing is written.
                Change::PutAck { conv, seq: Seq(9), user: UserId(2), ts: 14 },
            ])
            .unwrap();
        assert_eq!(store.acks().unwrap().len(), 4);
        let deleted = MessageRecord { deleted: true, text: String::new(), rev: 3, ..message(1) };
        store.apply_now(vec![Change::UpdateMessage(conv, Seq(1), deleted)]).unwrap();
        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(2)])]).unwrap();
        let left = store.acks().unwrap();
        assert_eq!(
            left,
            vec![StoredAck { conv: other, seq: Seq(1), author: UserId(1), user: UserId(2), ts: 13 }],
            "a delete and a purge take their message's acknowledgements along, and only those"
        );
    }
}
