//! The keyword index kept true: the background steps that add new messages (driven by
//! the writer, see `writer/background.rs`), the re-indexing of an edited or deleted message
//! in its own transaction, and the rebuild when a new binary cuts words differently.
//!
//! Per conversation the index holds a band of seqs, (low, high]: exactly the stored messages
//! above `conv_indexedlow` and up to `conv_indexedseq`. New messages come above it and are
//! added oldest first, moving `high` up (steady use: `low` is 0). A conversation with nothing
//! indexed (after an upgrade, or a tokenizer change) starts its band at its newest message
//! and grows it downward, newest first, so that a search during the rebuild finds the recent
//! past through the index and reads only the older rest directly (within a budget, see
//! `mod.rs`).
//!
//! Entries of messages purged below their conversation's first message (`floor`) are swept
//! in background steps too: the purge queues their terms (`queue_sweep`), and `sweep_step`
//! takes the queued terms' blocks below the floor out, a bounded number per step.

use std::collections::{BTreeMap, BTreeSet};

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::words::{fingerprint, terms_of};
use crate::model::{ConvId, Seq};
use crate::store::postings;
use crate::store::records::{MessageRecord, decode};
use crate::store::tables::{
    CONV_INDEXEDLOW, CONV_INDEXEDSEQ, CONV_PURGEDSEQ, CONVSEQ_MESSAGE, CONVTERM_PURGED, META, TERMCONVFIRST_POSTINGS,
};
use crate::store::{Store, StoreError};

const TOKENIZER_KEY: &str = "search_tokenizer";

/// Drops the keyword index when it was built by a binary that cuts words differently (its
/// terms would no longer match the searches, and edits could not find their old terms to
/// remove); the writer then rebuilds it in the background. Runs when the file is opened;
/// says whether it changed anything.
pub(crate) fn check_tokenizer(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let mine = fingerprint();
    let mut meta = txn.open_table(META)?;
    let stored = meta.get(TOKENIZER_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.value()).ok()).map(u64::from_be_bytes);
    if stored == Some(mine) {
        return Ok(false);
    }
    if stored.is_some() {
        tracing::info!("this binary cuts words differently from the one that built the search index; rebuilding it");
        txn.delete_table(TERMCONVFIRST_POSTINGS)?;
        txn.delete_table(CONV_INDEXEDSEQ)?;
        txn.delete_table(CONV_INDEXEDLOW)?;
        txn.delete_table(CONVTERM_PURGED)?;
        txn.open_table(TERMCONVFIRST_POSTINGS)?;
        txn.open_table(CONV_INDEXEDSEQ)?;
        txn.open_table(CONV_INDEXEDLOW)?;
        txn.open_table(CONVTERM_PURGED)?;
    }
    meta.insert(TOKENIZER_KEY, mine.to_be_bytes().as_slice())?;
    Ok(true)
}

/// A conversation's band in the index, (low, high]: the stored messages with a seq above
/// `low` and at most `high` are in it, and no others. Missing marks are 0.
pub(crate) fn band(
    high: &impl ReadableTable<u64, u64>,
    low: &impl ReadableTable<u64, u64>,
    conv: ConvId,
) -> Result<(u64, u64), StoreError> {
    let high = high.get(conv.0)?.map_or(0, |v| v.value());
    let low = low.get(conv.0)?.map_or(0, |v| v.value());
    Ok((low, high))
}

/// The band of `conv` as the write transaction sees it.
fn band_in(txn: &WriteTransaction, conv: ConvId) -> Result<(u64, u64), StoreError> {
    band(&txn.open_table(CONV_INDEXEDSEQ)?, &txn.open_table(CONV_INDEXEDLOW)?, conv)
}

/// Keeps the index true when the message at (conv, seq), which was `old` (`None`: new),
/// becomes `new` (`None`: gone), inside the transaction that writes it. A message the
/// background indexer has not reached yet needs nothing: it is indexed as it is when its turn
/// comes.
pub(crate) fn reindex(
    txn: &WriteTransaction,
    conv: ConvId,
    seq: Seq,
    old: Option<&MessageRecord>,
    new: Option<&MessageRecord>,
) -> Result<(), StoreError> {
    // A new message is always above its conversation's band (seqs only grow, and the mark
    // covers committed ones): the background indexer takes it, and the hot path of sending
    // pays nothing here.
    if old.is_none() {
        return Ok(());
    }
    // Outside the band (not indexed yet, above it or, during a rebuild, below it): indexed
    // as it is when its turn comes.
    let (low, high) = band_in(txn, conv)?;
    if seq.0 > high || seq.0 <= low {
        return Ok(());
    }
    let before = old.map(terms_of).unwrap_or_default();
    let after = new.map(terms_of).unwrap_or_default();
    let mut index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
    for term in before.difference(&after) {
        postings::remove(&mut index, *term, conv.0, seq.0)?;
    }
    for term in after.difference(&before) {
        postings::add(&mut index, *term, conv.0, &[seq.0])?;
    }
    Ok(())
}

/// Takes the messages of `conv` that are going (a purge batch: each seq with its record as
/// stored) out of the index, as `reindex` to `None` does for each, but with each term's seqs
/// together so that a block is rewritten once per batch rather than once per message in it.
pub(crate) fn unindex_many(txn: &WriteTransaction, conv: ConvId, going: &[(Seq, &MessageRecord)]) -> Result<(), StoreError> {
    let (low, high) = band_in(txn, conv)?;
    // Messages outside the band are not in the index (see `reindex`).
    let mut terms: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (seq, record) in going.iter().filter(|(seq, _)| seq.0 > low && seq.0 <= high) {
        for term in terms_of(record) {
            terms.entry(term).or_default().push(seq.0);
        }
    }
    let mut index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
    for (term, mut seqs) in terms {
        seqs.sort_unstable();
        seqs.dedup();
        postings::remove_many(&mut index, term, conv.0, &seqs)?;
    }
    Ok(())
}

/// Queues the terms of `going`, messages of `conv` purged below its first message left, for
/// the sweep: their index entries are dead (search stops at the floor), and `sweep_step`
/// takes them out later. Only messages inside the band are in the index.
pub(crate) fn queue_sweep(txn: &WriteTransaction, conv: ConvId, going: &[(Seq, &MessageRecord)]) -> Result<(), StoreError> {
    let (low, high) = band_in(txn, conv)?;
    let terms: BTreeSet<u64> =
        going.iter().filter(|(seq, _)| seq.0 > low && seq.0 <= high).flat_map(|(_, record)| terms_of(record)).collect();
    let mut queue = txn.open_table(CONVTERM_PURGED)?;
    for term in terms {
        // Most of a batch's terms were queued by the batches before it: a read dirties no page.
        if queue.get((conv.0, term))?.is_none() {
            queue.insert((conv.0, term), ())?;
        }
    }
    Ok(())
}

/// 8 -> 9: queues the terms whose entries name messages purged before the sweep existed (they
/// waited for the next vacuum), so that every dead entry is queued. Only a conversation that
/// was ever purged can have any; a file never purged costs one read.
pub(crate) fn queue_dead_entries(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let marks = txn.open_table(CONV_PURGEDSEQ)?;
    if marks.is_empty()? {
        return Ok(0);
    }
    let messages = txn.open_table(CONVSEQ_MESSAGE)?;
    let mut floors: BTreeMap<u64, u64> = BTreeMap::new();
    for entry in marks.iter()? {
        let conv = entry?.0.value();
        floors.insert(conv, super::floor(&messages, ConvId(conv))?);
    }
    let mut dead: BTreeSet<(u64, u64)> = BTreeSet::new();
    for entry in txn.open_table(TERMCONVFIRST_POSTINGS)?.iter()? {
        let (term, conv, first) = entry?.0.value();
        if floors.get(&conv).is_some_and(|floor| first < *floor) {
            dead.insert((conv, term));
        }
    }
    let mut queue = txn.open_table(CONVTERM_PURGED)?;
    for key in &dead {
        queue.insert(*key, ())?;
    }
    Ok(dead.len())
}

/// Queued terms a sweep step takes at most, and posting blocks it removes or cuts. A term's
/// blocks lie side by side, but each term is somewhere else in the index: a step writes
/// about a page per term, so steps stay small and are never grown like indexing steps (they
/// would gain nothing from it, and their pages would have to be written out by the next
/// chat commit).
const SWEEP_TERMS: usize = 128;
const SWEEP_BLOCKS: usize = 1024;

/// What one sweep step did.
pub struct Swept {
    /// Posting blocks taken out or cut.
    pub blocks: usize,
    /// Terms left in the queue.
    pub more: bool,
}

/// Messages indexed per background step at most, and postings (a message's distinct terms):
/// together they bound how long a step holds the writer (a few milliseconds), whether the
/// messages are one-liners or pasted logs.
pub const INDEX_STEP: usize = 2000;
const STEP_POSTINGS: usize = 40_000;
/// How many messages a step takes between two looks at whether it should stop early.
const STOP_EVERY: usize = 256;

/// What one indexing step did.
pub struct Step {
    pub messages: usize,
    /// The conversation it worked on last: the next step starts after it.
    pub last: ConvId,
    /// Given up for a job that came (`stop`): nothing was written.
    pub given_up: bool,
}

impl Store {
    /// The conversations holding messages that are not in the index yet.
    pub fn unindexed(&self) -> Result<BTreeSet<ConvId>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let high = txn.open_table(CONV_INDEXEDSEQ)?;
        let low = txn.open_table(CONV_INDEXEDLOW)?;
        let mut convs = BTreeSet::new();
        // Each conversation holding messages, by jumping from one to the next.
        let mut next = messages.first()?.map(|(key, _)| key.value().0);
        while let Some(conv) = next {
            let (low, high) = band(&high, &low, ConvId(conv))?;
            // A low mark left with nothing below it (purged) is cleared by the next step.
            if low > 0 || messages.range((conv, high + 1)..=(conv, u64::MAX))?.next().is_some() {
                convs.insert(ConvId(conv));
            }
            next = match conv.checked_add(1) {
                Some(after) => messages.range((after, 0)..)?.next().transpose()?.map(|(key, _)| key.value().0),
                None => None,
            };
        }
        Ok(convs)
    }

    /// Indexes up to `INDEX_STEP` messages (or `STEP_POSTINGS` postings) of `convs` in one
    /// transaction, taking out of `convs` each conversation it completes. Conversations take
    /// turns: the step starts after `after`, so one with a long backlog does not hold up the
    /// others. With `durable` false the commit is not synced: the next acknowledged write
    /// syncs it, and if the server dies first the step is redone.
    pub fn index_step(&self, convs: &mut BTreeSet<ConvId>, after: ConvId, durable: bool) -> Result<Step, StoreError> {
        self.index_step_of(convs, after, durable, 1, &|| false)
    }

    /// `index_step` with `scale` times its budget of messages and postings. Once `stop` says
    /// so (it asks every `STOP_EVERY` messages and terms) it gives up the step: nothing is
    /// written, and a job waiting for the writer waits only that long, however big the step.
    pub(crate) fn index_step_of(
        &self,
        convs: &mut BTreeSet<ConvId>,
        after: ConvId,
        durable: bool,
        scale: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Step, StoreError> {
        let (most_messages, most_postings) = (INDEX_STEP * scale, STEP_POSTINGS * scale);
        let mut txn = crate::store::begin_write(&*self.db()?)?;
        if !durable {
            txn.set_durability(Durability::None).map_err(|e| StoreError::Redb(e.into()))?;
        }
        use std::ops::Bound::{Excluded, Unbounded};
        let order: Vec<ConvId> = convs.range((Excluded(after), Unbounded)).chain(convs.range(..=after)).copied().collect();
        let mut step = Step { messages: 0, last: after, given_up: false };
        let mut added = 0;
        let stopped = std::cell::Cell::new(false);
        let mut done = Vec::new();
        {
            let messages = txn.open_table(CONVSEQ_MESSAGE)?;
            let mut highs = txn.open_table(CONV_INDEXEDSEQ)?;
            let mut lows = txn.open_table(CONV_INDEXEDLOW)?;
            let mut index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
            let full = |messages: usize, added: usize| {
                if messages > 0 && messages.is_multiple_of(STOP_EVERY) && stop() {
                    stopped.set(true);
                }
                stopped.get() || messages >= most_messages || added >= most_postings
            };
            for conv in order {
                if full(step.messages, added) {
                    break;
                }
                step.last = conv;
                let (mut low, mut high) = band(&highs, &lows, conv)?;
                let marks = (low, high);
                if high == 0
                    && let Some((newest, _)) = messages.range((conv.0, 0)..=(conv.0, u64::MAX))?.next_back().transpose()?
                {
                    // Nothing indexed: an empty band at the newest message, to grow downward.
                    (low, high) = (newest.value().1, newest.value().1);
                }
                // Each term's new seqs together, so each block is rewritten once per step.
                let mut new: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
                let mut take = |seq: u64, bytes: &[u8], added: &mut usize| -> Result<(), StoreError> {
                    for term in terms_of(&decode(bytes)?) {
                        new.entry(term).or_default().push(seq);
                        *added += 1;
                    }
                    Ok(())
                };
                // New messages above the band first, oldest first: searches read them directly.
                let mut to_end = true;
                for entry in messages.range((conv.0, high + 1)..=(conv.0, u64::MAX))? {
                    if full(step.messages, added) {
                        to_end = false;
                        break;
                    }
                    let (key, value) = entry?;
                    take(key.value().1, value.value(), &mut added)?;
                    high = key.value().1;
                    step.messages += 1;
                }
                // Then the band grows downward, newest first. Its low mark becomes the seq of
                // the newest message left below it (0: none, the band reaches the start).
                if to_end && low > 0 {
                    let rest = messages.range((conv.0, 0)..=(conv.0, low))?.rev();
                    low = 0;
                    for entry in rest {
                        let (key, value) = entry?;
                        if full(step.messages, added) {
                            low = key.value().1;
                            to_end = false;
                            break;
                        }
                        take(key.value().1, value.value(), &mut added)?;
                        step.messages += 1;
                    }
                }
                if stopped.get() {
                    break;
                }
                for (n, (term, mut seqs)) in new.into_iter().enumerate() {
                    if n % STOP_EVERY == STOP_EVERY - 1 && stop() {
                        stopped.set(true);
                        break;
                    }
                    seqs.sort_unstable();
                    postings::add(&mut index, term, conv.0, &seqs)?;
                }
                if stopped.get() {
                    break;
                }
                if (low, high) != marks {
                    highs.insert(conv.0, high)?;
                    if low == 0 {
                        lows.remove(conv.0)?;
                    } else {
                        lows.insert(conv.0, low)?;
                    }
                }
                if to_end {
                    done.push(conv);
                }
            }
        }
        if stopped.get() {
            txn.abort()?;
            return Ok(Step { messages: 0, last: after, given_up: true });
        }
        txn.commit()?;
        for conv in done {
            convs.remove(&conv);
        }
        Ok(step)
    }

    /// Whether purged messages' terms wait for the sweep.
    pub fn sweep_pending(&self) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        Ok(!txn.open_table(CONVTERM_PURGED)?.is_empty()?)
    }

    /// Takes out of the index, in one transaction, the blocks below their conversation's
    /// first message (`floor`) of the queued terms, `SWEEP_TERMS` and `SWEEP_BLOCKS` at most;
    /// a term whose blocks are not all done stays queued, and the next step goes on from its
    /// lowest block left. Only entries of purged messages go: every seq below the floor is of
    /// one, and the block the floor cuts keeps the seqs at or above it. With `durable` false
    /// the commit is not synced (as for `index_step`).
    pub(crate) fn sweep_step(&self, durable: bool) -> Result<Swept, StoreError> {
        self.sweep_within(durable, SWEEP_TERMS, SWEEP_BLOCKS)
    }

    /// `sweep_step` with its budget given.
    pub(crate) fn sweep_within(&self, durable: bool, most_terms: usize, most_blocks: usize) -> Result<Swept, StoreError> {
        let mut txn = crate::store::begin_write(&*self.db()?)?;
        if !durable {
            txn.set_durability(Durability::None).map_err(|e| StoreError::Redb(e.into()))?;
        }
        let mut swept = Swept { blocks: 0, more: false };
        {
            let messages = txn.open_table(CONVSEQ_MESSAGE)?;
            let mut queue = txn.open_table(CONVTERM_PURGED)?;
            let mut index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
            let queued: Vec<(u64, u64)> =
                queue.iter()?.take(most_terms).map(|entry| entry.map(|(key, _)| key.value())).collect::<Result<_, _>>()?;
            let mut floors = super::Floors::default();
            for (conv, term) in queued {
                let floor = floors.of(&messages, conv)?;
                let budget = most_blocks - swept.blocks;
                let firsts: Vec<u64> = index
                    .range((term, conv, 0)..(term, conv, floor))?
                    .take(budget.saturating_add(1))
                    .map(|entry| entry.map(|(key, _)| key.value().2))
                    .collect::<Result<_, _>>()?;
                // Every block but the last below the floor is wholly below it.
                let all = firsts.len() <= budget;
                let mut last = None;
                for first in firsts.into_iter().take(budget) {
                    last = index.remove((term, conv, first))?.map(|value| (first, value.value().to_vec()));
                    swept.blocks += 1;
                }
                if !all {
                    break; // this term goes on in the next step
                }
                if let Some((first, bytes)) = last
                    && let Some((first, kept)) = postings::trim_below(first, &bytes, floor)?
                {
                    index.insert((term, conv, first), kept.as_slice())?;
                }
                queue.remove((conv, term))?;
                if swept.blocks >= most_blocks {
                    break;
                }
            }
            swept.more = !queue.is_empty()?;
        }
        txn.commit()?;
        Ok(swept)
    }

    /// Indexes every message not indexed yet, durably (for tools working on a stopped
    /// server's file; a running server does this in the background).
    pub fn index_everything(&self) -> Result<usize, StoreError> {
        self.index_everything_reporting(|_| {})
    }

    /// `index_everything`, telling `progress` the messages indexed so far after each step.
    /// The steps are not synced one by one: an fsync writes out every block a step touched,
    /// which on a big index is megabytes per step. One durable commit a second, and one at
    /// the end, make them durable; a crash meanwhile redoes the steps since the last.
    pub fn index_everything_reporting(&self, mut progress: impl FnMut(usize)) -> Result<usize, StoreError> {
        let mut convs = self.unindexed()?;
        let mut total = 0;
        let mut after = ConvId(0);
        let mut synced = std::time::Instant::now();
        while !convs.is_empty() {
            let durable = synced.elapsed() >= BULK_SYNC_EVERY;
            let step = self.index_step_of(&mut convs, after, durable, BULK_SCALE, &|| false)?;
            if durable {
                synced = std::time::Instant::now();
            }
            total += step.messages;
            after = step.last;
            progress(total);
        }
        crate::store::begin_write(&*self.db()?)?.commit()?;
        Ok(total)
    }
}

/// How many times a background step's budget `index_everything` takes in one step.
const BULK_SCALE: usize = 50;

/// How often `index_everything` makes its steps durable.
const BULK_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Change;
    use crate::store::search::tests::{found, message, postings, words_of};

    /// The index table's entries as stored, blocks and all.
    fn entries(store: &Store) -> Vec<((u64, u64, u64), Vec<u8>)> {
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        index.iter().unwrap().map(|e| e.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec())).collect()
    }

    #[test]
    fn a_batch_unindexed_at_once_leaves_the_index_per_message_reindexing_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Store> = ["a", "b"].iter().map(|n| Store::open(&dir.path().join(n)).unwrap()).collect();
        // "lunch" is in every message (several blocks), "room" in every seventh, "nI" in one;
        // conversation 2 has the same terms at the same seqs.
        let text = |i: u64| format!("lunch room{} n{i}", i % 7);
        for store in &stores {
            let changes = (1..=400u64)
                .flat_map(|i| [1, 2].map(|c| Change::PutMessage(ConvId(c), Seq(i), message(1 + i % 3, &text(i), i))))
                .collect();
            store.apply_now(changes).unwrap();
            store.index_everything().unwrap();
            // Above the conversation's mark: not in the index yet, nothing to take out.
            let later = (401..=405u64).map(|i| Change::PutMessage(ConvId(1), Seq(i), message(1, &text(i), i))).collect();
            store.apply_now(later).unwrap();
        }
        // A whole first block and more, every third seq after it across block edges, the
        // unindexed ones, and one that is not there.
        let mut going: Vec<u64> = (1..=140).chain((141..=405).step_by(3)).chain([401, 402, 404, 999]).collect();
        going.sort_unstable();
        going.dedup();
        let before = entries(&stores[0]);
        for (n, store) in stores.iter().enumerate() {
            let txn = store.db().unwrap().begin_write().unwrap();
            let messages = txn.open_table(CONVSEQ_MESSAGE).unwrap();
            let records: Vec<(Seq, MessageRecord)> = going
                .iter()
                .filter_map(|s| messages.get((1, *s)).unwrap().map(|v| (Seq(*s), decode(v.value()).unwrap())))
                .collect();
            drop(messages);
            if n == 0 {
                for (seq, record) in &records {
                    reindex(&txn, ConvId(1), *seq, Some(record), None).unwrap();
                }
            } else {
                let batch: Vec<(Seq, &MessageRecord)> = records.iter().rev().map(|(s, r)| (*s, r)).collect();
                unindex_many(&txn, ConvId(1), &batch).unwrap();
            }
            txn.commit().unwrap();
        }
        let (one_by_one, batched) = (entries(&stores[0]), entries(&stores[1]));
        assert!(one_by_one.len() < before.len(), "the purge took postings out");
        assert_eq!(batched, one_by_one, "the same blocks, holding the same seqs");
        assert_eq!(found(&stores[1], &[1], &words_of("n142")), [(1, 142)], "a kept message is still found");
        assert!(found(&stores[1], &[1], &words_of("n141")).is_empty());
    }

    #[test]
    fn an_index_built_by_another_tokenizer_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        {
            let store = Store::open(&path).unwrap();
            store.apply_now(vec![Change::PutMessage(ConvId(1), Seq(1), message(1, "fax machine", 1))]).unwrap();
            store.index_everything().unwrap();
            let txn = store.db().unwrap().begin_write().unwrap();
            txn.open_table(META).unwrap().insert(TOKENIZER_KEY, 7u64.to_be_bytes().as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(postings(&store), 0, "the old index is gone");
        assert_eq!(store.unindexed().unwrap().len(), 1, "and is to be rebuilt");
        assert_eq!(found(&store, &[1], &words_of("fax")), [(1, 1)], "searches read the messages meanwhile");
        store.index_everything().unwrap();
        assert_eq!(postings(&store), 3, "fax, machine and the author");
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(postings(&store), 3, "the same binary keeps its index");
    }
}
