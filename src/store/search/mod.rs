//! Keyword search: an inverted index of the stored messages, and the query that walks it.
//!
//! Each message is cut into terms: its words (lowercased runs of letters and digits, at least
//! `MIN_WORD` characters) and its author. A term is stored as a 64-bit hash; the index holds,
//! per term and conversation, the ascending seqs of the messages that have it (in compact
//! blocks, see `postings.rs`). A query of several terms intersects those lists by
//! leapfrogging (each term seeks to the newest seq at or below the current candidate) and
//! merges the conversations newest first. Every candidate is
//! checked against the message itself, so a hash collision never shows a wrong result.
//!
//! New messages are indexed in the background by the store writer (`index_step`), in batches
//! and without an fsync of their own, so that indexing never delays an acknowledgement: per
//! conversation, the index holds a band of seqs (`index.rs`), and a search reads the few newer
//! messages above it directly. While the index is rebuilt (after an upgrade or a tokenizer
//! change) the band grows downward from the newest message, and a search reads the messages
//! below it directly too, newest first across the conversations, but at most `DIRECT_READS`
//! of them: then it stops and says how far back it got (`Found::partial`), and asking again
//! from there goes on further back. An edit or delete of an indexed message
//! re-indexes it in the transaction that writes it, so the index never holds the terms of
//! text that is gone; the entries of purged messages below a conversation's first message
//! (`floor`) wait for the next vacuum, and the query stops at that floor. A conversation that is not recorded never reaches the store, so it is
//! never indexed either.
//!
//! `words.rs` cuts text into terms, `index.rs` keeps the index true (background steps,
//! re-indexing in the writing transaction, the rebuild for a new tokenizer); this file is
//! the query.

mod index;
mod versions;
mod words;

use versions::Versions;

pub use index::{INDEX_STEP, Step};
pub(crate) use index::{band, check_tokenizer, queue_dead_entries, queue_sweep, reindex, unindex_many};
pub(crate) use words::terms_of;
pub use words::{MAX_WORD, MIN_WORD, Term, query_words, words};

use std::cell::Cell;
use std::collections::BinaryHeap;

use redb::{ReadableDatabase, ReadableTable};

use super::postings::{self, Cursor};
use super::records::{MessageRecord, decode};
use super::tables::{CONV_INDEXEDLOW, CONV_INDEXEDSEQ, CONVSEQ_MESSAGE, CONVSEQREV_VERSION, TERMCONVFIRST_POSTINGS};
use super::{ContentKey, Store, StoreError};
use crate::model::{ConvId, Seq};

/// Which page of results: the `limit` newest after skipping `offset`, of those older than
/// `before` (the position of the last result shown: its ts, conversation and seq) and
/// written at or after `since` (a ts). Paging with `before` stays exact while messages are
/// added, edited or deleted meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub before: Option<(u64, ConvId, Seq)>,
    pub since: Option<u64>,
    pub offset: usize,
    pub limit: usize,
}

/// Messages one search reads directly below the bands of the conversations it searches (the
/// history the rebuild of the index has not reached yet), at most: about 10 ms worth (3-5 µs
/// each), so that a search stays well under 50 ms while the rebuild takes a core. Messages
/// above a band (the last second's, in steady use) are always read.
pub const DIRECT_READS: usize = 2_000;
/// Messages read below a band in one go before the merge picks the conversation with the
/// newest unread message again, so that the direct reads go newest first across them all.
const READ_CHUNK: usize = 32;

/// One page of results, newest first, and whether more follow.
pub struct Found {
    pub results: Vec<(ConvId, Seq, MessageRecord)>,
    pub more: bool,
    /// The reactions of the results that have any, read in the same snapshot.
    pub reactions: std::collections::HashMap<(ConvId, Seq), super::reactions::Reactions>,
    /// The search stopped here (a position, as `Page::before`) after `DIRECT_READS` messages
    /// the index does not hold yet: every match after it is in the results (or an earlier
    /// page), older messages were not searched. Searching again with `before` at it goes on
    /// from there. `None`: the page is exact.
    pub partial: Option<(u64, ConvId, Seq)>,
}

/// A conversation's next match, waiting in the merge. Ordered by time, then position.
struct Head {
    ts: u64,
    conv: ConvId,
    seq: Seq,
    /// Which `ConvWalk` it came from.
    slot: usize,
    /// `None`: not a match but the place below a band where reading goes on. Every message of
    /// the conversation at `seq` and above has been looked at, and none below it is newer
    /// than `ts`.
    record: Option<MessageRecord>,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}
impl Head {
    fn key(&self) -> (u64, ConvId, Seq) {
        (self.ts, self.conv, self.seq)
    }
}

/// The seq of the conversation's first stored message (`u64::MAX` when it has none): every
/// index entry below it names a purged message. A retention purge takes the oldest messages,
/// so it leaves their entries here for the next vacuum to drop (`vacuum.rs`) instead of
/// rewriting a posting block per word of each, and a search stops at it. Seqs only grow, so
/// what is below it stays below it.
pub(crate) fn floor(messages: &impl ReadableTable<(u64, u64), &'static [u8]>, conv: ConvId) -> Result<u64, StoreError> {
    let first = messages.range((conv.0, 0)..=(conv.0, u64::MAX))?.next().transpose()?;
    Ok(first.map_or(u64::MAX, |(key, _)| key.value().1))
}

/// Each conversation's `floor`, read once per walk over many entries (a sweep step, the
/// vacuum's copy of the index).
#[derive(Default)]
pub(crate) struct Floors(std::collections::HashMap<u64, u64>);

impl Floors {
    pub(crate) fn of(&mut self, messages: &impl ReadableTable<(u64, u64), &'static [u8]>, conv: u64) -> Result<u64, StoreError> {
        if let Some(floor) = self.0.get(&conv) {
            return Ok(*floor);
        }
        let floor = floor(messages, ConvId(conv))?;
        self.0.insert(conv, floor);
        Ok(floor)
    }
}

/// The conversation's highest seq written at or before `ts` (`None`: every message is
/// newer), found by halving: messages are stored in the order they were sent (one sent
/// while the clock was set back may be passed over, as by `since`). A few reads, one when
/// the conversation's newest message is old enough.
fn written_by(messages: &MessageTable, conv: ConvId, ts: u64) -> Result<Option<u64>, StoreError> {
    // The first message at or above `seq`, and when it was written.
    let at_or_above = |seq: u64| -> Result<Option<(u64, u64)>, StoreError> {
        let Some((key, value)) = messages.range((conv.0, seq)..=(conv.0, u64::MAX))?.next().transpose()? else {
            return Ok(None);
        };
        Ok(Some((key.value().1, decode::<MessageRecord>(value.value())?.ts)))
    };
    let Some((last, value)) = messages.range((conv.0, 0)..=(conv.0, u64::MAX))?.next_back().transpose()? else {
        return Ok(None);
    };
    let last = last.value().1;
    if decode::<MessageRecord>(value.value())?.ts <= ts {
        return Ok(Some(last));
    }
    let Some((first, first_ts)) = at_or_above(0)? else { return Ok(None) };
    if first_ts > ts {
        return Ok(None);
    }
    // lo is a message written by `ts`; none above hi is.
    let (mut lo, mut hi) = (first, last - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        match at_or_above(mid)? {
            Some((seq, written)) if written <= ts && seq <= hi => lo = seq,
            _ => hi = mid - 1,
        }
    }
    Ok(Some(lo))
}

impl Store {
    /// One page of the messages in `convs` that have every one of `terms`, newest first (by
    /// ts, then conversation and seq). All reads come from one snapshot.
    pub fn search(&self, key: &ContentKey, convs: &[ConvId], terms: &[Term], page: &Page) -> Result<Found, StoreError> {
        self.search_in(key, convs, terms, page, false)
    }

    /// The same, for a compliance reviewer: a message is also found when an earlier version
    /// of it (the original of an edit, the text of a delete: `archive.rs`) has every term,
    /// so editing words away never hides them from review. The earlier versions are not in
    /// the index: those in the part of each conversation the search walks through are read
    /// and checked (`versions.rs`), so a search that looks far back (a rare word without a
    /// date range) reads every earlier version in the conversations searched.
    pub fn search_with_versions(
        &self,
        key: &ContentKey,
        convs: &[ConvId],
        terms: &[Term],
        page: &Page,
    ) -> Result<Found, StoreError> {
        self.search_in(key, convs, terms, page, true)
    }

    fn search_in(
        &self,
        _key: &ContentKey,
        convs: &[ConvId],
        terms: &[Term],
        page: &Page,
        versions: bool,
    ) -> Result<Found, StoreError> {
        let Page { before, since, offset, limit } = *page;
        let mut hashes: Vec<u64> = terms.iter().map(Term::hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() || limit == 0 {
            return Ok(Found { results: Vec::new(), more: false, reactions: Default::default(), partial: None });
        }
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let highs = txn.open_table(CONV_INDEXEDSEQ)?;
        let lows = txn.open_table(CONV_INDEXEDLOW)?;
        let earlier = txn.open_table(CONVSEQREV_VERSION)?;
        let versions = versions.then(|| Versions::new(&earlier, terms, &hashes));
        let search = Walk { index: &index, messages: &messages, hashes: &hashes, budget: Cell::new(DIRECT_READS), versions };
        let mut walks = Vec::with_capacity(convs.len());
        for &conv in convs {
            let (low, high) = band(&highs, &lows, conv)?;
            // Nothing indexed yet (the rebuild has not reached this conversation): its band
            // is empty at the top, as the rebuild will start it, and every message is below.
            let (low, high) = if high == 0 { (u64::MAX - 1, u64::MAX) } else { (low, high) };
            let cursors = hashes.iter().map(|term| Cursor::new(*term, conv.0)).collect();
            let versions_from = match &search.versions {
                Some(versions) => versions.lowest(&messages, conv, since)?,
                None => 0,
            };
            // Index entries below the band or the floor are not to be read.
            let floor = floor(&messages, conv)?.max(low + 1);
            walks.push(ConvWalk { conv, low, high, floor, cursors, versions_from });
        }
        let mut heads = BinaryHeap::new();
        for (slot, walk) in walks.iter_mut().enumerate() {
            // The conversation of the last result shown resumes right below it; the others at
            // that time, rather than walking down through every newer match to get there.
            let start = match before {
                None => Some(u64::MAX),
                Some((ts, conv, seq)) => {
                    let by_time = written_by(&messages, walk.conv, ts)?;
                    if conv == walk.conv { seq.0.checked_sub(1).zip(by_time).map(|(a, b)| a.min(b)) } else { by_time }
                }
            };
            if let Some(start) = start
                && let Some(head) = search.next(walk, slot, start, false)?
            {
                heads.push(head);
            }
        }
        let mut results = Vec::with_capacity(limit);
        let mut skipped = 0;
        let mut partial = None;
        while let Some(head) = heads.pop() {
            if since.is_some_and(|since| head.ts < since) {
                // Newest first: every later one is older too.
                heads.clear();
                break;
            }
            if results.len() == limit {
                heads.push(head);
                break;
            }
            let key = head.key();
            let Some(record) = head.record else {
                // The newest message not looked at yet is below this band: read on there,
                // unless the budget is spent. Then everything after this place was searched.
                if search.budget.get() == 0 {
                    partial = Some(key);
                    heads.clear();
                    break;
                }
                if let Some(below) = head.seq.0.checked_sub(1)
                    && let Some(next) = search.next(&mut walks[head.slot], head.slot, below, true)?
                {
                    heads.push(next);
                }
                continue;
            };
            let shown_already = before.is_some_and(|before| key >= before);
            if let Some(below) = head.seq.0.checked_sub(1)
                && let Some(next) = search.next(&mut walks[head.slot], head.slot, below, false)?
            {
                heads.push(next);
            }
            if shown_already {
                continue;
            }
            if skipped < offset {
                skipped += 1;
            } else {
                results.push((head.conv, head.seq, record));
            }
        }
        let mut reactions = std::collections::HashMap::new();
        for (conv, seq, _) in &results {
            let found = super::reactions::of_message(&txn, *conv, *seq)?;
            if !found.is_empty() {
                reactions.insert((*conv, *seq), found);
            }
        }
        Ok(Found { results, more: !heads.is_empty() || partial.is_some(), reactions, partial })
    }
}

type IndexTable = redb::ReadOnlyTable<postings::Key, &'static [u8]>;
type MessageTable = redb::ReadOnlyTable<(u64, u64), &'static [u8]>;

/// The index and messages of one snapshot, the terms being looked for, and how many messages
/// below the bands are still to be read directly.
struct Walk<'a> {
    index: &'a IndexTable,
    messages: &'a MessageTable,
    hashes: &'a [u64],
    budget: Cell<usize>,
    /// A reviewer's search (`search_with_versions`) also matches earlier versions.
    versions: Option<Versions<'a>>,
}

/// One conversation being searched, from its newest message down.
struct ConvWalk {
    conv: ConvId,
    /// The band the index holds: messages above `low` and up to `high`.
    low: u64,
    high: u64,
    /// Index entries below this seq are not read: below the band, or of purged messages
    /// (`floor`).
    floor: u64,
    /// One per term, in the order of `Walk::hashes`.
    cursors: Vec<Cursor>,
    /// Earlier versions of messages below this seq are not read (`Versions::lowest`).
    versions_from: u64,
}

impl Walk<'_> {
    /// The newest message of the conversation at or below seq `at_most` that has every term.
    /// Messages above the band are read one by one; those in it are found through the index
    /// and checked against the stored message. Below the band, with `read` it reads up to
    /// `READ_CHUNK` messages (of the budget) and otherwise only says where reading would go
    /// on: a `Head` without a record, at most one read. `at_most` only ever goes down.
    fn next(&self, walk: &mut ConvWalk, slot: usize, at_most: u64, read: bool) -> Result<Option<Head>, StoreError> {
        let found = self.next_current(walk, slot, at_most, read)?;
        let Some(versions) = &self.versions else { return Ok(found) };
        // A reviewer's search: an earlier version's match above the current text's (or above
        // where reading stopped) wins.
        let low = found.as_ref().map_or(0, |head| head.seq.0 + u64::from(head.record.is_some())).max(walk.versions_from);
        let (conv, mut high) = (walk.conv, at_most);
        while let Some(seq) = versions.highest(conv, low, high)? {
            if let Some(value) = self.messages.get((conv.0, seq))? {
                let record: MessageRecord = decode(value.value())?;
                return Ok(Some(Head { ts: record.ts, conv, seq: Seq(seq), slot, record: Some(record) }));
            }
            // Versions of a message that is not there: look further down.
            let Some(below) = seq.checked_sub(1) else { break };
            high = below;
        }
        Ok(found)
    }

    /// `next` by the current text of the messages.
    fn next_current(&self, walk: &mut ConvWalk, slot: usize, at_most: u64, read: bool) -> Result<Option<Head>, StoreError> {
        let conv = walk.conv;
        if at_most > walk.high {
            for entry in self.messages.range((conv.0, walk.high + 1)..=(conv.0, at_most))?.rev() {
                let (key, value) = entry?;
                if let Some(head) = self.check(conv, slot, key.value().1, value.value())? {
                    return Ok(Some(head));
                }
            }
        }
        let mut bound = at_most.min(walk.high);
        while bound > walk.low {
            let Some(seq) = self.leapfrog(walk, bound)? else { break };
            if let Some(value) = self.messages.get((conv.0, seq))?
                && let Some(head) = self.check(conv, slot, seq, value.value())?
            {
                return Ok(Some(head));
            }
            // A hash collision (or an index entry without its message): look further down.
            let Some(below) = seq.checked_sub(1) else { return Ok(None) };
            bound = below;
        }
        if walk.low == 0 {
            return Ok(None);
        }
        // Below the band: not indexed yet.
        let below = self.messages.range((conv.0, 0)..=(conv.0, bound.min(walk.low)))?.rev();
        for (read_here, entry) in below.enumerate() {
            let (key, value) = entry?;
            let seq = key.value().1;
            if !read || read_here == READ_CHUNK || self.budget.get() == 0 {
                // Reading goes on here when this conversation's turn comes again.
                let ts = decode::<MessageRecord>(value.value())?.ts;
                return Ok(Some(Head { ts, conv, seq: Seq(seq + 1), slot, record: None }));
            }
            self.budget.set(self.budget.get() - 1);
            if let Some(head) = self.check(conv, slot, seq, value.value())? {
                return Ok(Some(head));
            }
        }
        Ok(None)
    }

    /// The stored message as a result, if it really has every term.
    fn check(&self, conv: ConvId, slot: usize, seq: u64, bytes: &[u8]) -> Result<Option<Head>, StoreError> {
        let record: MessageRecord = decode(bytes)?;
        let terms = terms_of(&record);
        let found = self.hashes.iter().all(|h| terms.contains(h));
        Ok(found.then_some(Head { ts: record.ts, conv, seq: Seq(seq), slot, record: Some(record) }))
    }

    /// The highest seq at or below `bound` that every term has. Each term in turn jumps to
    /// its newest seq at or below the current candidate; when all of them land on the same
    /// seq, that is a match. Costs a few seeks per candidate, never a full scan of a common
    /// term's list.
    fn leapfrog(&self, walk: &mut ConvWalk, bound: u64) -> Result<Option<u64>, StoreError> {
        let mut candidate = bound;
        let mut agreeing = 0;
        for i in (0..walk.cursors.len()).cycle() {
            let Some(seq) = walk.cursors[i].seek(self.index, candidate)?.filter(|seq| *seq >= walk.floor) else {
                return Ok(None);
            };
            if seq == candidate {
                agreeing += 1;
            } else {
                candidate = seq;
                agreeing = 1;
            }
            if agreeing == walk.cursors.len() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use redb::ReadableTable;

    use super::*;
    use crate::model::UserId;
    use crate::store::Change;

    pub(super) fn message(author: u64, text: &str, ts: u64) -> MessageRecord {
        MessageRecord {
            author: UserId(author),
            text: text.into(),
            ts,
            edited_ts: None,
            deleted: false,
            mentions: Vec::new(),
            client_id: None,
            rev: 0,
            system: None,
            attachments: Vec::new(),
            reply_to: None,
        }
    }

    pub(super) fn words_of(text: &str) -> Vec<Term> {
        words(text).map(Term::Word).collect()
    }

    pub(super) fn found(store: &Store, convs: &[u64], terms: &[Term]) -> Vec<(u64, u64)> {
        let convs: Vec<ConvId> = convs.iter().map(|c| ConvId(*c)).collect();
        store
            .search(&ContentKey(()), &convs, terms, &Page { before: None, since: None, offset: 0, limit: 100 })
            .unwrap()
            .results
            .iter()
            .map(|(c, s, _)| (c.0, s.0))
            .collect()
    }

    /// How many (term, seq) postings the index holds for conversation 1.
    pub(super) fn postings(store: &Store) -> usize {
        let txn = store.db().unwrap().begin_read().unwrap();
        let index = txn.open_table(TERMCONVFIRST_POSTINGS).unwrap();
        let terms: BTreeSet<u64> = index.iter().unwrap().map(|e| e.unwrap().0.value().0).collect();
        terms
            .into_iter()
            .map(|term| {
                let mut cursor = Cursor::new(term, 1);
                let (mut count, mut at) = (0, u64::MAX);
                while let Some(seq) = cursor.seek(&index, at).unwrap() {
                    count += 1;
                    let Some(below) = seq.checked_sub(1) else { break };
                    at = below;
                }
                count
            })
            .sum()
    }

    #[test]
    fn messages_are_found_before_and_after_indexing_and_edits_keep_the_index_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let general = ConvId(1);
        let other = ConvId(2);
        store
            .apply_now(vec![
                Change::PutMessage(general, Seq(1), message(1, "the printer is jammed", 10)),
                Change::PutMessage(general, Seq(2), message(2, "Printer fixed, toner replaced", 20)),
                Change::PutMessage(other, Seq(1), message(1, "buy toner for the printer", 15)),
            ])
            .unwrap();
        let printer = words_of("printer");
        // Not indexed yet: the search reads the messages themselves.
        assert_eq!(found(&store, &[1, 2], &printer), [(1, 2), (2, 1), (1, 1)], "newest first across conversations");
        assert_eq!(store.index_everything().unwrap(), 3);
        assert_eq!(store.unindexed().unwrap().len(), 0);
        assert_eq!(found(&store, &[1, 2], &printer), [(1, 2), (2, 1), (1, 1)], "the index finds the same");
        assert_eq!(found(&store, &[1], &words_of("toner printer")), [(1, 2)], "every word must occur");
        assert_eq!(found(&store, &[1, 2], &[Term::Word("toner".into()), Term::From(UserId(1))]), [(2, 1)]);
        assert!(found(&store, &[2], &words_of("jammed")).is_empty(), "only the conversations asked for");

        // An edit of an indexed message: found by its new text only, and no entry is left
        // for the old words.
        let before = postings(&store);
        let mut edited = message(1, "the scanner is jammed", 10);
        edited.rev = 3;
        store.apply_now(vec![Change::UpdateMessage(general, Seq(1), edited)]).unwrap();
        assert_eq!(found(&store, &[1, 2], &words_of("printer")), [(1, 2), (2, 1)]);
        assert_eq!(found(&store, &[1, 2], &words_of("scanner")), [(1, 1)]);
        assert_eq!(postings(&store), before, "printer out, scanner in");

        // A delete takes every term out.
        let mut deleted = message(2, "", 20);
        deleted.deleted = true;
        deleted.rev = 4;
        store.apply_now(vec![Change::UpdateMessage(general, Seq(2), deleted)]).unwrap();
        assert_eq!(found(&store, &[1, 2], &words_of("toner")), [(2, 1)]);
        assert_eq!(postings(&store), before - 5, "printer, fixed, toner, replaced and the author are gone");
    }

    #[test]
    fn a_time_window_finds_exactly_the_matches_written_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        // Three conversations written in turns, with gaps in seqs and times (as edits and
        // purges leave them); "lunch" in every message, author 1 in every other.
        let mut changes = Vec::new();
        for i in 1..=600u64 {
            let conv = ConvId(1 + i % 3);
            changes.push(Change::PutMessage(conv, Seq(i * 2), message(1 + i % 2, &format!("lunch {i}"), i * 10)));
        }
        store.apply_now(changes).unwrap();
        store.index_everything().unwrap();
        let convs = [ConvId(1), ConvId(2), ConvId(3)];
        let every = |terms: &[Term], since: u64, until: u64| -> Vec<u64> {
            let mut seen = Vec::new();
            let mut before = Some((until + 1, ConvId(0), Seq(0)));
            loop {
                let page = Page { before, since: Some(since), offset: 0, limit: 25 };
                let found = store.search(&ContentKey(()), &convs, terms, &page).unwrap();
                seen.extend(found.results.iter().map(|(_, _, r)| r.ts));
                before = found.results.last().map(|(c, s, r)| (r.ts, *c, *s));
                if !found.more {
                    return seen;
                }
            }
        };
        let lunch = words_of("lunch");
        for (since, until) in [(0, 10_000), (1_000, 1_990), (1_005, 1_005), (2_500, 2_540), (5_990, 9_000), (7_000, 8_000)] {
            let expected: Vec<u64> = (1..=600u64).rev().map(|i| i * 10).filter(|ts| (since..=until).contains(ts)).collect();
            assert_eq!(every(&lunch, since, until), expected, "since {since} until {until}");
            let theirs: Vec<u64> = expected.iter().copied().filter(|ts| (ts / 10) % 2 == 0).collect();
            assert_eq!(every(&[Term::From(UserId(1))], since, until), theirs, "by one person, {since}-{until}");
        }
    }

    #[test]
    fn pages_of_a_common_word_cover_every_match_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let changes = (1..=50u64)
            .map(|i| Change::PutMessage(ConvId(1 + i % 3), Seq(i), message(1, &format!("lunch number {i}"), i)))
            .collect();
        store.apply_now(changes).unwrap();
        store.index_everything().unwrap();
        let convs = [ConvId(1), ConvId(2), ConvId(3)];
        let lunch = words_of("lunch");
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page =
                store.search(&ContentKey(()), &convs, &lunch, &Page { before: None, since: None, offset, limit: 7 }).unwrap();
            seen.extend(page.results.iter().map(|(_, _, r)| r.ts));
            offset += page.results.len();
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, (1..=50u64).rev().collect::<Vec<_>>(), "all 50, newest first, none twice");

        // Paging by position instead: deleting a message already shown skips nothing.
        let first =
            store.search(&ContentKey(()), &convs, &lunch, &Page { before: None, since: None, offset: 0, limit: 7 }).unwrap();
        let (conv, seq, record) = first.results[1].clone();
        let mut deleted = record.clone();
        (deleted.deleted, deleted.rev) = (true, 99);
        store.apply_now(vec![Change::UpdateMessage(conv, seq, deleted)]).unwrap();
        let (conv, seq, last) = first.results.last().unwrap();
        let second = store
            .search(
                &ContentKey(()),
                &convs,
                &lunch,
                &Page { before: Some((last.ts, *conv, *seq)), since: None, offset: 0, limit: 7 },
            )
            .unwrap();
        let ts: Vec<u64> = second.results.iter().map(|(_, _, r)| r.ts).collect();
        assert_eq!(ts, (37..=43u64).rev().collect::<Vec<_>>(), "the page right after the last one shown");
    }
}
