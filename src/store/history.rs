//! Reading what people wrote: history pages, catch-up after a reconnect, one message, and the
//! unread counts behind a read marker. The content reads take the `ContentKey` that only the
//! chat core's one door holds (`core::access`).

use redb::ReadableDatabase;

use super::records::{MessageRecord, decode};
use super::tables::*;
use super::{ContentKey, Store, StoreError, next_error};
use crate::model::{ConvId, Seq, UserId};

/// Unread messages from others after a read marker, and how many of them mention the reader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    pub unread: u32,
    pub mentions: u32,
}

/// Counting stops here; the client shows "999+".
const UNREAD_SCAN_LIMIT: usize = 1000;

impl Store {
    /// Up to `limit` messages with seq below `before`, ascending, and whether older ones exist.
    pub fn messages_before(
        &self,
        _key: &ContentKey,
        conv: ConvId,
        before: Seq,
        limit: usize,
    ) -> Result<(Vec<(Seq, MessageRecord)>, bool), StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(CONVSEQ_MESSAGE)?;
        let mut page = Vec::with_capacity(limit);
        let mut more = false;
        for entry in table.range((conv.0, 0)..(conv.0, before.0))?.rev() {
            let (key, value) = entry?;
            if page.len() == limit {
                more = true;
                break;
            }
            page.push((Seq(key.value().1), decode(value.value())?));
        }
        page.reverse();
        Ok((page, more))
    }

    /// Everything that changed after `after`: new messages, and older ones edited or deleted
    /// since, each once in its current state, ordered by its latest change (`rev`). A page
    /// holds the first `limit` of them, so "ask again after the highest `rev` you got" neither
    /// skips nor repeats. Returned ascending by seq, with whether more follow.
    pub fn changes_after(
        &self,
        _key: &ContentKey,
        conv: ConvId,
        after: Seq,
        limit: usize,
    ) -> Result<(Vec<(Seq, MessageRecord)>, bool), StoreError> {
        let txn = self.db()?.begin_read()?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let revisions = txn.open_table(CONVREV_SEQ)?;
        let start = after.0.saturating_add(1);
        // Walk the conversation's positions in order: each is a new message (its own seq) or
        // a change of an older one (a rev). A message is taken at the position of its latest
        // change only, so an edited message is not taken at its original seq.
        let mut new = messages.range((conv.0, start)..=(conv.0, u64::MAX))?.peekable();
        let mut changed = revisions.range((conv.0, start)..=(conv.0, u64::MAX))?.peekable();
        let mut page = Vec::new();
        let mut more = false;
        loop {
            let next_new = match new.peek() {
                Some(Ok((key, _))) => Some(key.value().1),
                Some(Err(_)) => return Err(next_error(new.next())),
                None => None,
            };
            let next_changed = match changed.peek() {
                Some(Ok((key, _))) => Some(key.value().1),
                Some(Err(_)) => return Err(next_error(changed.next())),
                None => None,
            };
            let (position, seq, record) = match (next_new, next_changed) {
                (None, None) => break,
                (Some(n), c) if c.is_none_or(|c| n < c) => {
                    let Some(Ok((_, value))) = new.next() else { break };
                    (n, n, decode::<MessageRecord>(value.value())?)
                }
                (_, c) => {
                    let Some(c) = c else { break };
                    let Some(Ok((_, seq))) = changed.next() else { break };
                    let seq = seq.value();
                    match messages.get((conv.0, seq))? {
                        Some(value) => (c, seq, decode::<MessageRecord>(value.value())?),
                        None => continue,
                    }
                }
            };
            if record.rev != position {
                continue; // superseded by a later change, taken there
            }
            if page.len() == limit {
                more = true;
                break;
            }
            page.push((Seq(seq), record));
        }
        page.sort_unstable_by_key(|(seq, _)| *seq);
        Ok((page, more))
    }

    pub fn message(&self, _key: &ContentKey, conv: ConvId, seq: Seq) -> Result<Option<MessageRecord>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(CONVSEQ_MESSAGE)?;
        Ok(table.get((conv.0, seq.0))?.map(|v| decode(v.value())).transpose()?)
    }

    /// Unread counts for many readers of one conversation in one pass over its newest
    /// messages (at most `UNREAD_SCAN_LIMIT` of them: a reader further behind gets that many).
    /// Only messages up to `upto` count (the caller counts newer ones itself).
    pub fn unread_for(&self, conv: ConvId, readers: &[(UserId, Seq)], upto: Seq) -> Result<Vec<Unread>, StoreError> {
        let mut counts = vec![Unread::default(); readers.len()];
        let Some(oldest_marker) = readers.iter().map(|(_, seq)| *seq).min() else { return Ok(counts) };
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(CONVSEQ_MESSAGE)?;
        for (scanned, entry) in table.range((conv.0, oldest_marker.0 + 1)..=(conv.0, upto.0))?.rev().enumerate() {
            let (key, value) = entry?;
            let seq = key.value().1;
            if scanned == UNREAD_SCAN_LIMIT {
                // This message and older ones stay unread: whoever is behind it has at least
                // the limit's worth.
                for (count, (_, read_seq)) in counts.iter_mut().zip(readers) {
                    if read_seq.0 < seq {
                        count.unread = count.unread.max(UNREAD_SCAN_LIMIT as u32);
                    }
                }
                break;
            }
            let message: MessageRecord = decode(value.value())?;
            if message.deleted {
                continue;
            }
            for (count, (reader, read_seq)) in counts.iter_mut().zip(readers) {
                if seq > read_seq.0 && message.author != *reader {
                    count.unread += 1;
                    if message.mentions.contains(reader) {
                        count.mentions += 1;
                    }
                }
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use crate::store::tests::message;

    #[test]
    fn unread_counts_for_every_member_come_from_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let conv = ConvId(1);
        // seq 1..=4: alice, bob mentioning carol, carol, alice mentioning bob and carol
        let messages = [message(1, &[]), message(2, &[3]), message(3, &[]), message(1, &[2, 3])];
        store
            .apply_now(messages.into_iter().enumerate().map(|(i, m)| Change::PutMessage(conv, Seq(i as u64 + 1), m)).collect())
            .unwrap();
        let readers = [(UserId(1), Seq(0)), (UserId(2), Seq(2)), (UserId(3), Seq(4))];
        let counts = store.unread_for(conv, &readers, Seq(u64::MAX)).unwrap();
        assert_eq!(counts[0], Unread { unread: 2, mentions: 0 }, "alice: bob's and carol's");
        assert_eq!(counts[1], Unread { unread: 2, mentions: 1 }, "bob: carol's and alice's mention");
        assert_eq!(counts[2], Unread::default(), "carol read everything");
        for (i, (user, seq)) in readers.iter().enumerate() {
            assert_eq!(
                store.unread_for(conv, &[(*user, *seq)], Seq(u64::MAX)).unwrap()[0],
                counts[i],
                "counting one reader alone agrees"
            );
        }
    }

    #[test]
    fn a_reader_far_behind_gets_the_capped_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let total = UNREAD_SCAN_LIMIT as u64 + 50;
        store.apply_now((1..=total).map(|seq| Change::PutMessage(ConvId(1), Seq(seq), message(9, &[]))).collect()).unwrap();
        let counts = store.unread_for(ConvId(1), &[(UserId(1), Seq(0)), (UserId(2), Seq(total - 10))], Seq(u64::MAX)).unwrap();
        assert_eq!(counts[0].unread, UNREAD_SCAN_LIMIT as u32, "shown as the limit (999+)");
        assert_eq!(counts[1].unread, 10);
    }
}
