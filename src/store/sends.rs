//! The `client_id`s of sends, remembered in each message's own commit so that a client re-sending
//! after a crash or a reconnect never posts twice: for at least `SENDS_KEPT_FOR` and the last
//! `SENDS_KEPT_PER_USER` of each user, then pruned in small steps by the writer.

#[cfg(test)]
use redb::ReadableDatabase;
use redb::{ReadableTable, WriteTransaction};

use super::records::{MessageRecord, SENDS_KEPT_FOR, SENDS_KEPT_PER_USER, SendRecord, decode, encode, text_digest};
use super::tables::*;
use super::{Change, Store, StoreError};
use crate::model::{ConvId, Millis, Seq, UserId};

/// What one pruning step of the remembered sends did.
#[derive(Debug, PartialEq, Eq)]
pub struct Pruned {
    pub removed: usize,
    /// The user to go on with, when the step ran out of its budget before the last user.
    pub resume: Option<UserId>,
}

impl Store {
    /// Every remembered send, each user's oldest first (for tests).
    #[cfg(test)]
    pub(crate) fn remembered_sends(&self) -> Result<Vec<(UserId, SendRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(USERCONVCLIENTID_SENDNO)?;
        let mut sends = Vec::new();
        for entry in txn.open_table(USERSENDNO_SEND)?.iter()? {
            let (key, value) = entry?;
            let send: SendRecord = decode(value.value())?;
            let n = index.get((key.value().0, send.conv.0, send.client_id.as_str()))?.map(|v| v.value());
            assert_eq!(n, Some(key.value().1), "every remembered send is found by its client_id");
            sends.push((UserId(key.value().0), send));
        }
        assert_eq!(index.iter()?.count(), sends.len(), "the index holds nothing else");
        Ok(sends)
    }

    /// Forgets remembered sends that left the window: older than `SENDS_KEPT_FOR` at `now`
    /// and not among their user's `SENDS_KEPT_PER_USER` newest. Removes at most `budget` of
    /// them in one durable transaction, users in id order from `from`; a step that ran out
    /// of budget says where to resume.
    pub fn prune_sends(&self, now: Millis, from: UserId, budget: usize) -> Result<Pruned, StoreError> {
        let txn = super::begin_write(&*self.db()?)?;
        let cutoff = now.saturating_sub(SENDS_KEPT_FOR);
        let mut pruned = Pruned { removed: 0, resume: None };
        {
            let mut table = txn.open_table(USERSENDNO_SEND)?;
            let mut index = txn.open_table(USERCONVCLIENTID_SENDNO)?;
            let mut user = from.0;
            loop {
                // The next user with remembered sends, and the number of their newest one.
                let Some(first) = table.range((user, 0)..)?.next().transpose()? else { break };
                user = first.0.value().0;
                drop(first);
                let last = table.range((user, 0)..=(user, u64::MAX))?.next_back().transpose()?.map_or(0, |(k, _)| k.value().1);
                let keep_from = last.saturating_sub(SENDS_KEPT_PER_USER - 1);
                let mut expired = Vec::new();
                for entry in table.range((user, 0)..(user, keep_from))? {
                    let (key, value) = entry?;
                    let send: SendRecord = decode(value.value())?;
                    // Sends are numbered in the order they were posted, so the first one still
                    // in the window ends the user's expired ones (a clock set back only keeps
                    // some longer).
                    if send.ts >= cutoff {
                        break;
                    }
                    if pruned.removed + expired.len() == budget {
                        pruned.resume = Some(UserId(user));
                        break;
                    }
                    expired.push((key.value().1, send));
                }
                for (n, send) in &expired {
                    table.remove((user, *n))?;
                    let key = (user, send.conv.0, send.client_id.as_str());
                    // Unless a later send of the same client_id (after this one left the
                    // window) took the entry over.
                    if index.get(key)?.is_some_and(|v| v.value() == *n) {
                        index.remove(key)?;
                    }
                }
                pruned.removed += expired.len();
                if pruned.resume.is_some() || user == u64::MAX {
                    break;
                }
                user += 1;
            }
        }
        if pruned.removed > 0 {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(pruned)
    }
}

type SendTable<'t> = redb::Table<'t, (u64, u64), &'static [u8]>;
type ClientIdTable<'t> = redb::Table<'t, (u64, u64, &'static str), u64>;

/// The two tables of remembered sends in one write transaction, opened on the first message
/// with a `client_id` and kept open for the rest of it: checking and remembering the
/// messages of a whole batch opens them once. While this lives, nothing else in the
/// transaction may open them (redb allows one opening at a time): `apply` hands it along.
/// The per-day message counter (`stats.rs`) is kept open here too, for the same reason:
/// opened for each message, it took half the time of a commit.
pub(crate) struct SendTables<'t> {
    txn: &'t WriteTransaction,
    open: Option<(SendTable<'t>, ClientIdTable<'t>)>,
    days: Option<redb::Table<'t, u32, u64>>,
}

impl<'t> SendTables<'t> {
    pub(crate) fn new(txn: &'t WriteTransaction) -> SendTables<'t> {
        SendTables { txn, open: None, days: None }
    }

    /// `day_messages`, opened once per transaction.
    pub(super) fn day_messages(&mut self) -> Result<&mut redb::Table<'t, u32, u64>, StoreError> {
        let table = match self.days.take() {
            Some(table) => table,
            None => self.txn.open_table(DAY_MESSAGES)?,
        };
        Ok(self.days.insert(table))
    }

    fn tables(&mut self) -> Result<&mut (SendTable<'t>, ClientIdTable<'t>), StoreError> {
        let open = match self.open.take() {
            Some(open) => open,
            None => (self.txn.open_table(USERSENDNO_SEND)?, self.txn.open_table(USERCONVCLIENTID_SENDNO)?),
        };
        Ok(self.open.insert(open))
    }

    /// Remembers a new message's `client_id` as the user's next send, in the message's commit.
    pub(super) fn remember(&mut self, conv: ConvId, seq: Seq, record: &MessageRecord) -> Result<(), StoreError> {
        let Some(client_id) = &record.client_id else { return Ok(()) };
        let user = record.author.0;
        let (sends, index) = self.tables()?;
        let last = sends.range((user, 0)..=(user, u64::MAX))?.next_back().transpose()?.map_or(0, |(k, _)| k.value().1);
        let send =
            SendRecord { conv, client_id: client_id.clone(), seq, ts: record.ts, text_digest: Some(text_digest(&record.text)) };
        sends.insert((user, last + 1), encode(&send).as_slice())?;
        index.insert((user, conv.0, client_id.as_str()), last + 1)?;
        Ok(())
    }

    /// Forgets the remembered sends of purged messages: their `client_id`, time and the
    /// digest of their text would otherwise outlive them. A send is found through its
    /// `client_id`'s entry, which names the newest send of that id in the conversation.
    pub(super) fn forget(&mut self, conv: ConvId, purged: &[(u64, MessageRecord)]) -> Result<(), StoreError> {
        if purged.iter().all(|(_, record)| record.client_id.is_none()) {
            return Ok(());
        }
        let (sends, index) = self.tables()?;
        for (seq, record) in purged {
            let Some(client_id) = &record.client_id else { continue };
            let key = (record.author.0, conv.0, client_id.as_str());
            let Some(n) = index.get(key)?.map(|v| v.value()) else { continue };
            let send = sends.get((record.author.0, n))?.map(|v| decode::<SendRecord>(v.value())).transpose()?;
            if send.is_some_and(|send| send.seq.0 == *seq) {
                sends.remove((record.author.0, n))?;
                index.remove(key)?;
            }
        }
        Ok(())
    }

    /// The first send of a job's new message, if its `client_id` was sent before (by the
    /// file, this transaction included): the job must then not post it again.
    pub(crate) fn already_sent(&mut self, job: &[Change]) -> Result<Option<SendRecord>, StoreError> {
        for change in job {
            let Change::PutMessage(conv, _, record) = change else { continue };
            let Some(client_id) = &record.client_id else { continue };
            let user = record.author.0;
            let (sends, index) = self.tables()?;
            let Some(n) = index.get((user, conv.0, client_id.as_str()))?.map(|v| v.value()) else { continue };
            if let Some(value) = sends.get((user, n))? {
                return Ok(Some(decode(value.value())?));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::message;

    #[test]
    fn sent_client_ids_are_remembered_in_the_commit_and_forgotten_only_past_their_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let day = SENDS_KEPT_FOR;
        let now = 10 * day;
        let old = now - day - 1_000;
        let send = |author: u64, i: u64, ts: Millis| {
            let mut record = message(author, &[]);
            (record.client_id, record.ts, record.text) = (Some(format!("c{i}")), ts, format!("text {i}"));
            record
        };
        // Bob: the two oldest of 10,003 sends are past both the day and his newest 10,000;
        // the third is older than his newest 10,000 but from the last day.
        let bob: Vec<MessageRecord> =
            (1..=SENDS_KEPT_PER_USER + 3).map(|i| send(2, i, if i <= 2 { old + i } else { now - 5_000 + i })).collect();
        // Carol: three old sends, all among her newest 10,000.
        let carol: Vec<MessageRecord> = (1..=3).map(|i| send(3, i, old - 10 + i)).collect();
        let mut changes: Vec<Change> = Vec::new();
        for (i, record) in carol.into_iter().chain(bob).enumerate() {
            changes.push(Change::PutMessage(ConvId(1), Seq(i as u64 + 1), record));
        }
        changes.push(Change::PutMessage(ConvId(1), Seq(20_000), message(2, &[]))); // no client_id: nothing to remember
        store.apply_now(changes).unwrap();

        let remembered = store.remembered_sends().unwrap();
        assert_eq!(remembered.len() as u64, 3 + SENDS_KEPT_PER_USER + 3, "every send with a client_id is remembered");
        let (user, first) = &remembered[0];
        assert_eq!((*user, first.client_id.as_str(), first.seq), (UserId(2), "c1", Seq(4)), "users in order, oldest first");
        assert_eq!(first.text_digest, Some(text_digest("text 1")));

        // A budget of one: one send forgotten, and where to go on.
        let step = store.prune_sends(now, UserId(0), 1).unwrap();
        assert_eq!(step, Pruned { removed: 1, resume: Some(UserId(2)) });
        let step = store.prune_sends(now, UserId(2), 100).unwrap();
        assert_eq!(step, Pruned { removed: 1, resume: None });
        assert_eq!(store.prune_sends(now, UserId(0), 100).unwrap(), Pruned { removed: 0, resume: None }, "nothing more is due");
        let left: Vec<(UserId, String)> = store.remembered_sends().unwrap().into_iter().map(|(u, s)| (u, s.client_id)).collect();
        assert_eq!(left.len() as u64, 3 + SENDS_KEPT_PER_USER + 1);
        assert_eq!(left[0], (UserId(2), "c3".to_string()), "bob's third send is kept: it is from the last day");
        let carol_first = SENDS_KEPT_PER_USER as usize + 1;
        assert_eq!(
            left[carol_first],
            (UserId(3), "c1".to_string()),
            "carol's old sends are kept: they are among her newest 10,000"
        );
    }
}
