//! Purging messages: `Change::PurgeMessages` takes messages out of every table that holds
//! anything of them (the message, the seqs of its edits and delete, its remembered
//! `client_id`), and the candidates for a purge are found from metadata alone
//! (`Store::purgeable_before`, `Store::seqs_upto`), in batches the chat core asks for on a
//! reader thread. Which messages go and when is the core's records policy; this file only
//! makes sure nothing of them is left in the tables. Their bytes may still sit in pages redb
//! has freed until the file is vacuumed (`vacuum.rs`).
//!
//! Keyword index entries of a purged message below the conversation's first message left
//! (`search::floor`: always so for a retention purge, which takes the oldest) are not taken
//! out in the purge's commit: that cost a posting block rewrite per word of each message,
//! almost all of the commit (benches/README.md). The purge queues the message's terms
//! (`convterm_purged`, a few small keys per batch) and the writer sweeps their entries in
//! background steps (`search::sweep_step`); search stops at the floor, so it never reaches
//! them meanwhile. A message purged above one that stays is taken out of the index at once
//! (`search::unindex_many`).
//!
//! A purge never lets a conversation's seqs go back: the highest seq the conversation had is
//! kept in `conv_purgedseq`, and `Store::load` counts it, so a restart after the newest
//! messages were purged does not hand their seqs out again (a tab may have seen them).

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, decode};
use super::tables::*;
use super::{SendTables, Store, StoreError, search};
use crate::model::{ConvId, Millis, Seq};

/// Removes the messages at `seqs` of `conv` and everything keyed by them; seqs without a
/// message are skipped, so purging twice is harmless.
pub(super) fn purge_messages(
    txn: &WriteTransaction,
    sends: &mut SendTables,
    conv: ConvId,
    seqs: &[Seq],
) -> Result<(), StoreError> {
    let wanted: BTreeSet<u64> = seqs.iter().map(|s| s.0).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let highest = highest_seq(txn, conv)?;
    let mut purged: Vec<(u64, MessageRecord)> = Vec::with_capacity(wanted.len());
    {
        let mut messages = txn.open_table(CONVSEQ_MESSAGE)?;
        for &seq in &wanted {
            let removed = messages.remove((conv.0, seq))?.map(|v| decode::<MessageRecord>(v.value()));
            if let Some(record) = removed.transpose()? {
                purged.push((seq, record));
            }
        }
    }
    let Some(first) = purged.first().map(|(seq, _)| *seq) else { return Ok(()) };
    super::acks::remove(txn, conv, &purged.iter().map(|(seq, _)| Seq(*seq)).collect::<Vec<_>>())?;
    let mut marks = txn.open_table(CONV_PURGEDSEQ)?;
    if marks.get(conv.0)?.is_none_or(|mark| mark.value() < highest) {
        marks.insert(conv.0, highest)?;
    }
    drop(marks);
    // Index entries below the conversation's first message left are dead: search stops
    // there (`search::floor`), and the writer sweeps them in the background. A retention
    // purge always takes the oldest messages, so it writes no index block at all; only a
    // message purged above one that stays is taken out of the index now.
    let floor = search::floor(&txn.open_table(CONVSEQ_MESSAGE)?, conv)?;
    let (below, above): (Vec<_>, Vec<_>) =
        purged.iter().map(|(seq, record)| (Seq(*seq), record)).partition(|(seq, _)| seq.0 < floor);
    search::queue_sweep(txn, conv, &below)?;
    search::unindex_many(txn, conv, &above)?;
    // Every edit and the delete of message s have a rev above s and at most its record's
    // (latest) rev: one walk over the conversation's changes in that span finds them all.
    let last_rev = purged.iter().map(|(seq, record)| record.rev.max(*seq)).max().unwrap_or(first);
    let gone: BTreeSet<u64> = purged.iter().map(|(seq, _)| *seq).collect();
    let mut revisions = txn.open_table(CONVREV_SEQ)?;
    let mut revs = Vec::new();
    for entry in revisions.range((conv.0, first + 1)..=(conv.0, last_rev))? {
        let (key, seq) = entry?;
        if gone.contains(&seq.value()) {
            revs.push(key.value().1);
        }
    }
    for rev in revs {
        revisions.remove((conv.0, rev))?;
    }
    // Earlier versions kept while the server archived go with their message.
    let mut versions = txn.open_table(CONVSEQREV_VERSION)?;
    for seq in &gone {
        versions.retain_in((conv.0, *seq, 0)..=(conv.0, *seq, u64::MAX), |_, _| false)?;
    }
    drop(versions);
    super::reactions::remove_all(txn, conv, gone.iter().copied())?;
    // A file goes with its message (records rules): its chunks leave with it.
    super::files::remove_files(txn, super::files::listed(purged.iter().map(|(_, record)| record)))?;
    sends.forget(conv, &purged)
}

/// The conversation's highest seq so far (message or change), as `Store::load` counts it.
fn highest_seq(txn: &WriteTransaction, conv: ConvId) -> Result<u64, StoreError> {
    let last_message = txn
        .open_table(CONVSEQ_MESSAGE)?
        .range((conv.0, 0)..=(conv.0, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, _)| k.value().1);
    let last_rev =
        txn.open_table(CONVREV_SEQ)?.range((conv.0, 0)..=(conv.0, u64::MAX))?.next_back().transpose()?.map(|(k, _)| k.value().1);
    Ok(last_message.max(last_rev).unwrap_or(0))
}

/// The highest seq a conversation had when messages of it were last purged (0: never).
pub(super) fn purged_seq(txn: &ReadTransaction, conv: ConvId) -> Result<u64, StoreError> {
    match txn.open_table(CONV_PURGEDSEQ) {
        Ok(marks) => Ok(marks.get(conv.0)?.map_or(0, |v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// The seqs of the conversation's messages written before `cutoff`, oldest first, at most
    /// `limit`: the candidates of a retention purge. Reads no text out (no `ContentKey`).
    /// The walk stops at the first message that is not older than the cutoff, so that a
    /// conversation with nothing to purge costs one read: messages are stored in the order
    /// they were sent, and one sent while the clock was set back is only kept a little longer.
    pub fn purgeable_before(&self, conv: ConvId, cutoff: Millis, limit: usize) -> Result<Vec<Seq>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let mut seqs = Vec::new();
        for entry in messages.range((conv.0, 0)..=(conv.0, u64::MAX))? {
            if seqs.len() == limit {
                break;
            }
            let (key, value) = entry?;
            let record: MessageRecord = decode(value.value())?;
            if record.ts >= cutoff {
                break;
            }
            seqs.push(Seq(key.value().1));
        }
        Ok(seqs)
    }

    /// The seqs of the conversation's messages up to `upto`, oldest first, at most `limit`
    /// (e.g. what every member has read, for "until read"). Reads keys only.
    pub fn seqs_upto(&self, conv: ConvId, upto: Seq, limit: usize) -> Result<Vec<Seq>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let mut seqs = Vec::new();
        for entry in messages.range((conv.0, 0)..=(conv.0, upto.0))?.take(limit) {
            seqs.push(Seq(entry?.0.value().1));
        }
        Ok(seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use crate::store::records::{ConversationRecord, Keep};
    use crate::store::search::{Page, Term};
    use crate::store::{Change, ContentKey};

    fn message(text: &str, ts: Millis, client_id: Option<&str>) -> MessageRecord {
        MessageRecord {
            author: UserId(1),
            text: text.into(),
            ts,
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: client_id.map(str::to_owned),
            rev: 0,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        }
    }

    /// A new message at `seq` (its rev is its own seq).
    fn put(seq: u64, text: &str, ts: Millis, client_id: Option<&str>) -> Change {
        Change::PutMessage(ConvId(1), Seq(seq), MessageRecord { rev: seq, ..message(text, ts, client_id) })
    }

    fn room() -> ConversationRecord {
        ConversationRecord {
            kind: crate::model::ConvKind::Room,
            name: "general".into(),
            topic: String::new(),
            created_by: UserId(1),
            created: 0,
            keep: Keep::Forever,
            keep_set_by: None,
            choices: Vec::new(),
            announcements: false,
        }
    }

    fn found(store: &Store, word: &str) -> Vec<u64> {
        let page = Page { before: None, since: None, offset: 0, limit: 100 };
        let terms = [Term::Word(word.into())];
        store.search(&ContentKey(()), &[ConvId(1)], &terms, &page).unwrap().results.iter().map(|(_, s, _)| s.0).collect()
    }

    /// Every seq of conversation 1 that the keyword index names, under any term.
    fn indexed(store: &Store) -> BTreeSet<u64> {
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        let terms: BTreeSet<u64> = index.iter().unwrap().map(|e| e.unwrap().0.value().0).collect();
        let mut seqs = BTreeSet::new();
        for term in terms {
            let mut cursor = crate::store::postings::Cursor::new(term, 1);
            let mut at = u64::MAX;
            while let Some(seq) = cursor.seek(&index, at).unwrap() {
                seqs.insert(seq);
                let Some(below) = seq.checked_sub(1) else { break };
                at = below;
            }
        }
        seqs
    }

    fn count(store: &Store, table: redb::TableDefinition<(u64, u64), u64>) -> usize {
        let txn = store.db().unwrap().begin_read().unwrap();
        txn.open_table(table).unwrap().iter().unwrap().count()
    }

    #[test]
    fn a_purge_takes_the_message_its_changes_its_index_entries_and_its_send_and_seqs_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        let store = Store::open(&path).unwrap();
        let conv = ConvId(1);
        store
            .apply_now(vec![
                Change::PutConversation(conv, room()),
                put(1, "printer jammed again", 10, Some("c-1")),
                put(2, "printer fixed", 20, Some("c-2")),
                put(3, "lunch at noon", 30, None),
            ])
            .unwrap();
        store.index_everything().unwrap();
        // Message 1 edited twice (revs 4 and 6), message 3 edited once (rev 5), then two
        // newer messages, one indexed and one not.
        let edit = |text: &str, rev: u64| MessageRecord { rev, edited_ts: Some(rev), ..message(text, 10, Some("c-1")) };
        store
            .apply_now(vec![
                Change::UpdateMessage(conv, Seq(1), edit("scanner jammed again", 4)),
                Change::UpdateMessage(conv, Seq(3), MessageRecord { rev: 5, ..message("lunch at one", 30, None) }),
                Change::UpdateMessage(conv, Seq(1), edit("scanner jammed for real", 6)),
                put(7, "printer toner", 70, None),
            ])
            .unwrap();
        store.index_everything().unwrap();
        store.apply_now(vec![put(8, "printer paper", 80, Some("c-8"))]).unwrap();
        assert_eq!(found(&store, "scanner"), [1]);
        assert_eq!(store.remembered_sends().unwrap().len(), 3);

        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(1), Seq(8), Seq(2), Seq(99)])]).unwrap();
        let key = ContentKey(());
        for seq in [1, 2, 8] {
            assert!(store.message(&key, conv, Seq(seq)).unwrap().is_none(), "message {seq} is gone");
        }
        assert!(found(&store, "scanner").is_empty() && found(&store, "jammed").is_empty());
        assert_eq!(found(&store, "printer"), [7]);
        // Message 8 was above one that stays: out of the index at once. 1 and 2 were below
        // the first message left: their entries wait for the sweep, and search stops above.
        assert_eq!(indexed(&store), BTreeSet::from([1, 2, 3, 7]));
        sweep(&store, usize::MAX, usize::MAX);
        assert_eq!(indexed(&store), BTreeSet::from([3, 7]), "the sweep took the purged ones out");
        assert_eq!(found(&store, "one"), [3], "the kept message is still found");
        assert_eq!(count(&store, CONVREV_SEQ), 1, "only message 3's edit is left of the changes");
        let (changes, _) = store.changes_after(&key, conv, Seq(0), 100).unwrap();
        let seqs: Vec<u64> = changes.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [3, 7], "catching up finds only what is left");
        assert!(store.remembered_sends().unwrap().is_empty(), "the purged messages' client_ids are forgotten");

        // Idempotent; and the newest seq (8) is kept for the next start.
        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(1), Seq(8)])]).unwrap();
        assert!(!store.sweep_pending().unwrap(), "nothing was left to sweep");
        assert_eq!(found(&store, "one"), [3]);
        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(7), Seq(3)])]).unwrap();
        assert!(found(&store, "printer").is_empty() && found(&store, "one").is_empty());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.load().unwrap().last_seq.get(&conv), Some(&Seq(8)), "seqs are never handed out again");
        assert_eq!(count(&store, CONVREV_SEQ), 0);
        assert!(store.sweep_pending().unwrap(), "the queue outlives a restart");
        sweep(&store, usize::MAX, usize::MAX);
        assert!(indexed(&store).is_empty(), "a conversation purged to nothing names nothing");
    }

    /// What `hallway check` finds wrong, and the sweep queue's length.
    fn check(store: &Store) -> (Vec<String>, u64) {
        let txn = store.db().unwrap().begin_read().unwrap();
        let report = crate::store::check::check_snapshot(&txn, std::path::Path::new("t.redb")).unwrap();
        (report.problems, report.counts.get("convterm_purged").copied().unwrap_or(0))
    }

    /// Runs sweep steps of the given budget until the queue is empty; the steps taken.
    fn sweep(store: &Store, terms: usize, blocks: usize) -> usize {
        let mut steps = 1;
        while store.sweep_within(true, terms, blocks).unwrap().more {
            steps += 1;
        }
        steps
    }

    /// The index table's entries as stored.
    fn index_entries(store: &Store) -> Vec<((u64, u64, u64), Vec<u8>)> {
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        index.iter().unwrap().map(|e| e.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec())).collect()
    }

    /// Two rooms by alice, 1 and 2, with the same 300 messages, indexed: "lunch" in all
    /// (three blocks), "tea" in every tenth, "nI" in one each.
    fn three_hundred_lunches(store: &Store) {
        let text = |i: u64| if i.is_multiple_of(10) { format!("lunch tea n{i}") } else { format!("lunch n{i}") };
        let alice = crate::store::records::UserRecord {
            name: "alice".into(),
            display_name: "Alice".into(),
            password_hash: String::new(),
            role: crate::model::Role::Member,
            created: 0,
            disabled: false,
            last_seen: None,
        };
        let mut changes = vec![
            Change::PutUser(UserId(1), alice),
            Change::PutConversation(ConvId(1), room()),
            Change::PutConversation(ConvId(2), room()),
        ];
        for i in 1..=300u64 {
            changes.push(put(i, &text(i), i, None));
            changes.push(Change::PutMessage(ConvId(2), Seq(i), MessageRecord { rev: i, ..message(&text(i), i, None) }));
        }
        store.apply_now(changes).unwrap();
        store.index_everything().unwrap();
    }

    #[test]
    fn purging_the_oldest_writes_no_index_block_and_the_sweep_takes_their_entries_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let conv = ConvId(1);
        three_hundred_lunches(&store);
        let before = index_entries(&store);
        assert_eq!(check(&store), (Vec::new(), 0), "a file as the server writes it");
        for batch in [1..=120u64, 121..=200] {
            store.apply_now(vec![Change::PurgeMessages(conv, batch.map(Seq).collect())]).unwrap();
        }
        assert_eq!(index_entries(&store), before, "the purge wrote no index block");
        let (problems, queued) = check(&store);
        assert!(problems.is_empty() && queued > 0, "every dead entry is queued: {problems:?}");
        // A step of at most 3 terms and 1 block: "lunch" takes two steps (two blocks wholly
        // below 201, then the one cut at 201 while another term's go on), and each step keeps
        // the search exact.
        let mut steps = 0;
        loop {
            steps += 1;
            let more = store.sweep_within(true, 3, 1).unwrap().more;
            assert_eq!(found(&store, "lunch").len(), 100, "step {steps}: every message left is still found");
            assert_eq!(found(&store, "tea"), (21..=30).rev().map(|i| i * 10).collect::<Vec<_>>());
            if !more {
                break;
            }
        }
        assert!(steps > 200, "one block a step: {steps} steps");
        assert_eq!(indexed(&store), (201..=300).collect::<BTreeSet<u64>>(), "no entry of a purged message is left");
        let other = index_entries(&store).into_iter().filter(|(k, _)| k.1 == 2).collect::<Vec<_>>();
        assert_eq!(other, before.into_iter().filter(|(k, _)| k.1 == 2).collect::<Vec<_>>(), "conversation 2 is untouched");
        assert_eq!(check(&store), (Vec::new(), 0), "the queue is empty, and the index true");

        // An entry below the floor that no queue entry names is a problem for the check.
        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(201)])]).unwrap();
        let txn = store.db().unwrap().begin_write().unwrap();
        txn.open_table(CONVTERM_PURGED).unwrap().retain(|_, _| false).unwrap();
        txn.commit().unwrap();
        let (problems, _) = check(&store);
        assert!(problems.iter().any(|p| p.contains("no sweep of them is queued")), "{problems:?}");
    }

    #[test]
    fn purging_the_oldest_writes_no_index_block_and_the_vacuum_drops_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let conv = ConvId(1);
        three_hundred_lunches(&store);
        let before = index_entries(&store);
        // The oldest 200, in two batches as a retention purge takes them.
        for batch in [1..=120u64, 121..=200] {
            store.apply_now(vec![Change::PurgeMessages(conv, batch.map(Seq).collect())]).unwrap();
        }
        assert_eq!(index_entries(&store), before, "the purge wrote no index block");
        assert!(found(&store, "n150").is_empty() && found(&store, "n7").is_empty(), "search never finds a purged one");
        assert_eq!(found(&store, "tea"), (21..=30).rev().map(|i| i * 10).collect::<Vec<_>>(), "only those left");
        assert_eq!(found(&store, "n201"), [201]);

        assert!(store.sweep_pending().unwrap());
        store.vacuum().unwrap();
        assert_eq!(indexed(&store), (201..=300).collect::<BTreeSet<u64>>(), "the vacuum dropped every purged entry");
        assert!(!store.sweep_pending().unwrap(), "and with them the sweep's queue");
        assert_eq!(found(&store, "lunch").len(), 100, "every message left is still found");
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        let other = index.iter().unwrap().filter(|e| e.as_ref().unwrap().0.value().1 == 2).count();
        let other_before = before.iter().filter(|(k, _)| k.1 == 2).count();
        assert_eq!(other, other_before, "another conversation's index is copied as it was");
    }

    #[test]
    fn candidates_are_the_oldest_messages_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let conv = ConvId(1);
        let changes = (1..=10).map(|seq| Change::PutMessage(conv, Seq(seq), message("hi", seq * 100, None))).collect();
        store.apply_now(changes).unwrap();
        store.apply_now(vec![Change::PutMessage(ConvId(2), Seq(1), message("other", 1, None))]).unwrap();
        let seqs = |v: Vec<Seq>| v.into_iter().map(|s| s.0).collect::<Vec<_>>();
        assert_eq!(seqs(store.purgeable_before(conv, 450, 100).unwrap()), [1, 2, 3, 4], "older than the cutoff");
        assert_eq!(seqs(store.purgeable_before(conv, 450, 3).unwrap()), [1, 2, 3], "at most the limit, oldest first");
        assert!(store.purgeable_before(conv, 100, 100).unwrap().is_empty(), "a message at the cutoff is kept");
        assert_eq!(seqs(store.seqs_upto(conv, Seq(6), 4).unwrap()), [1, 2, 3, 4]);
        assert_eq!(seqs(store.seqs_upto(conv, Seq(6), 100).unwrap()), [1, 2, 3, 4, 5, 6]);
        store.apply_now(vec![Change::PurgeMessages(conv, vec![Seq(1), Seq(2), Seq(3)])]).unwrap();
        assert_eq!(seqs(store.purgeable_before(conv, 450, 100).unwrap()), [4], "the next batch starts after the purged");
        assert_eq!(seqs(store.seqs_upto(ConvId(2), Seq(u64::MAX), 100).unwrap()), [1], "conversations stay apart");
    }
}
