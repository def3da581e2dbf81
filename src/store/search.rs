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
//! conversation, `conv_indexedseq` records the seq up to which every message is indexed, and
//! a search reads the few newer messages directly. An edit or delete of an indexed message
//! re-indexes it in the transaction that writes it, so the index never holds the terms of
//! text that is gone. A conversation that is not recorded never reaches the store, so it is
//! never indexed either.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use redb::{Durability, ReadableDatabase, ReadableTable, WriteTransaction};

use super::postings::{self, Cursor};
use super::records::{MessageRecord, decode};
use super::tables::{CONV_INDEXEDSEQ, CONVSEQ_MESSAGE, TERMCONVFIRST_POSTINGS};
use super::{ContentKey, Store, StoreError};
use crate::model::{ConvId, Seq, UserId};

/// Shorter words ("a", "I") are not indexed, and not searched for.
pub const MIN_WORD: usize = 2;
/// Longer runs (hashes, identifiers) count by their first this many characters.
pub const MAX_WORD: usize = 64;

/// What a search can ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// A word, already lowercased (see `words`).
    Word(String),
    /// Messages written by this user.
    From(UserId),
}

impl Term {
    /// The key under which the index stores this term. Stable across versions: it is on disk.
    fn hash(&self) -> u64 {
        match self {
            Term::Word(word) => fnv1a(0, word.as_bytes()),
            Term::From(user) => fnv1a(1, &user.0.to_le_bytes()),
        }
    }
}

/// FNV-1a, 64 bit, over a kind byte and the bytes; small, fast and fixed forever.
fn fnv1a(kind: u8, bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(&kind).chain(bytes) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The searchable words of a text: lowercased runs of letters and digits of at least
/// `MIN_WORD` characters, longer ones cut to their first `MAX_WORD` (so a long identifier is
/// still found by pasting it whole). "Re-deploy the printer's driver!" gives re, deploy, the,
/// printer, driver. Chinese and Japanese are written without spaces, so a run of their
/// characters (`is_cjk`) gives each pair of neighbours instead, or the one character of a
/// run of one: "東京タワー" gives 東京, 京タ, タワ, ワー, and a search for 東京 finds it.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    cut(text, false).into_iter()
}

/// The words a search asks for: those of `words`, except that a run of Chinese or Japanese
/// needs only enough of its pairs to cover every character (東京タワー: 東京, タワ, ワー), so
/// that a pasted phrase fits the limit on words. A message that has them all is checked
/// against the same terms.
pub fn query_words(query: &str) -> Vec<String> {
    cut(query, true)
}

fn cut(text: &str, covering: bool) -> Vec<String> {
    let mut words = Vec::new();
    for run in text.split(|c: char| !c.is_alphanumeric()) {
        let mut rest = run;
        while let Some(first) = rest.chars().next() {
            let cjk = is_cjk(first);
            let end = rest.char_indices().find(|&(_, c)| is_cjk(c) != cjk).map_or(rest.len(), |(at, _)| at);
            let (part, tail) = rest.split_at(end);
            rest = tail;
            if cjk {
                let starts: Vec<usize> = part.char_indices().map(|(at, _)| at).chain([part.len()]).collect();
                if starts.len() == 2 {
                    words.push(part.to_string());
                }
                let pairs = starts.windows(3).map(|w| part[w[0]..w[2]].to_string());
                if covering {
                    // Every other pair, and the last: together they cover each character.
                    let pairs: Vec<String> = pairs.collect();
                    let last = pairs.len().saturating_sub(1);
                    words.extend(pairs.into_iter().enumerate().filter(|(i, _)| i % 2 == 0 || *i == last).map(|(_, p)| p));
                } else {
                    words.extend(pairs);
                }
            } else if part.chars().nth(MIN_WORD - 1).is_some() {
                let cut = part.char_indices().nth(MAX_WORD).map_or(part.len(), |(at, _)| at);
                words.push(part[..cut].to_lowercase());
            }
        }
    }
    words
}

/// Han ideographs (with 々, 〇 and the other ideographic marks), hiragana and katakana; the
/// web client's `CJK` has the same ranges. Korean puts spaces between words, so hangul is cut
/// into words like Latin.
fn is_cjk(c: char) -> bool {
    matches!(
        u32::from(c),
        0x3005..=0x3007
            | 0x3021..=0x3029
            | 0x3031..=0x3035
            | 0x3038..=0x303C
            | 0x3040..=0x30FF
            | 0x31F0..=0x31FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xF900..=0xFAFF
            | 0xFF66..=0xFF9F
            | 0x20000..=0x2FA1F
            | 0x30000..=0x323AF
    )
}

/// The term hashes a message is found by; none once it is deleted.
fn terms_of(record: &MessageRecord) -> BTreeSet<u64> {
    if record.deleted {
        return BTreeSet::new();
    }
    words(&record.text).map(|w| Term::Word(w).hash()).chain([Term::From(record.author).hash()]).collect()
}

/// Text that exercises the Unicode rules `words` depends on (what is a letter or digit, how
/// it lowercases), which come from the standard library and may change with the toolchain.
/// It has a character of every range of `is_cjk`, so that a change to them rebuilds the index.
const PROBE: &str = "Ünïcödé ǅemal ΣΊΣΥΦΟΣ İstanbul STRASSE ﬁne ١٢٣ 漢字かな 人々〇〆〡〱〸ㇰ㐀豈ｶ𠀋𰀀 ᾼᾼ ⅷⅷ ①② ŉa 𝔸𝔹 Ǆǅǆ";
const TOKENIZER_KEY: &str = "search_tokenizer";

/// Drops the keyword index when it was built by a binary that cuts words differently (its
/// terms would no longer match the searches, and edits could not find their old terms to
/// remove); the writer then rebuilds it in the background. Runs when the file is opened;
/// says whether it changed anything.
pub(crate) fn check_tokenizer(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let mine = fnv1a(2, words(PROBE).collect::<Vec<_>>().join(" ").as_bytes());
    let mut meta = txn.open_table(super::tables::META)?;
    let stored = meta.get(TOKENIZER_KEY)?.and_then(|v| <[u8; 8]>::try_from(v.value()).ok()).map(u64::from_be_bytes);
    if stored == Some(mine) {
        return Ok(false);
    }
    if stored.is_some() {
        tracing::info!("this binary cuts words differently from the one that built the search index; rebuilding it");
        txn.delete_table(TERMCONVFIRST_POSTINGS)?;
        txn.delete_table(CONV_INDEXEDSEQ)?;
        txn.open_table(TERMCONVFIRST_POSTINGS)?;
        txn.open_table(CONV_INDEXEDSEQ)?;
    }
    meta.insert(TOKENIZER_KEY, mine.to_be_bytes().as_slice())?;
    Ok(true)
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
    // A new message is always above its conversation's mark (seqs only grow, and the mark
    // covers committed ones): the background indexer takes it, and the hot path of sending
    // pays nothing here.
    if old.is_none() {
        return Ok(());
    }
    let indexed_to = txn.open_table(CONV_INDEXEDSEQ)?.get(conv.0)?.map(|v| v.value()).unwrap_or(0);
    if seq.0 > indexed_to {
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

/// Messages indexed per background step at most, and postings (a message's distinct terms):
/// together they bound how long a step holds the writer (a few milliseconds), whether the
/// messages are one-liners or pasted logs.
pub const INDEX_STEP: usize = 2000;
const STEP_POSTINGS: usize = 40_000;

/// What one indexing step did.
pub struct Step {
    pub messages: usize,
    /// The conversation it worked on last: the next step starts after it.
    pub last: ConvId,
}

impl Store {
    /// The conversations holding messages that are not in the index yet.
    pub fn unindexed(&self) -> Result<BTreeSet<ConvId>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let indexed = txn.open_table(CONV_INDEXEDSEQ)?;
        let mut convs = BTreeSet::new();
        // Each conversation holding messages, by jumping from one to the next.
        let mut next = messages.first()?.map(|(key, _)| key.value().0);
        while let Some(conv) = next {
            let indexed_to = indexed.get(conv)?.map(|v| v.value()).unwrap_or(0);
            if messages.range((conv, indexed_to + 1)..=(conv, u64::MAX))?.next().is_some() {
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
        let mut txn = self.db()?.begin_write()?;
        if !durable {
            txn.set_durability(Durability::None).map_err(|e| StoreError::Redb(e.into()))?;
        }
        use std::ops::Bound::{Excluded, Unbounded};
        let order: Vec<ConvId> = convs.range((Excluded(after), Unbounded)).chain(convs.range(..=after)).copied().collect();
        let mut step = Step { messages: 0, last: after };
        let mut added = 0;
        {
            let messages = txn.open_table(CONVSEQ_MESSAGE)?;
            let mut indexed = txn.open_table(CONV_INDEXEDSEQ)?;
            let mut index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
            for conv in order {
                if step.messages >= INDEX_STEP || added >= STEP_POSTINGS {
                    break;
                }
                step.last = conv;
                let from = indexed.get(conv.0)?.map(|v| v.value()).unwrap_or(0) + 1;
                // Each term's new seqs together, so each block is rewritten once per step.
                let mut new: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
                let mut last = None;
                let mut to_end = true;
                for entry in messages.range((conv.0, from)..=(conv.0, u64::MAX))? {
                    if step.messages >= INDEX_STEP || added >= STEP_POSTINGS {
                        to_end = false;
                        break;
                    }
                    let (key, value) = entry?;
                    let seq = key.value().1;
                    for term in terms_of(&decode(value.value())?) {
                        new.entry(term).or_default().push(seq);
                        added += 1;
                    }
                    last = Some(seq);
                    step.messages += 1;
                }
                for (term, seqs) in new {
                    postings::add(&mut index, term, conv.0, &seqs)?;
                }
                if let Some(last) = last {
                    indexed.insert(conv.0, last)?;
                }
                if to_end {
                    convs.remove(&conv);
                }
            }
        }
        txn.commit()?;
        Ok(step)
    }

    /// Indexes every message not indexed yet, durably (for tools working on a stopped
    /// server's file; a running server does this in the background).
    pub fn index_everything(&self) -> Result<usize, StoreError> {
        let mut convs = self.unindexed()?;
        let mut total = 0;
        let mut after = ConvId(0);
        while !convs.is_empty() {
            let step = self.index_step(&mut convs, after, true)?;
            total += step.messages;
            after = step.last;
        }
        Ok(total)
    }
}

/// Which page of results: the `limit` newest after skipping `offset`, of those older than
/// `before` (the position of the last result shown: its ts, conversation and seq). Paging
/// with `before` stays exact while messages are added, edited or deleted meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub before: Option<(u64, ConvId, Seq)>,
    pub offset: usize,
    pub limit: usize,
}

/// One page of results, newest first, and whether more follow.
pub struct Found {
    pub results: Vec<(ConvId, Seq, MessageRecord)>,
    pub more: bool,
}

/// A conversation's next match, waiting in the merge. Ordered by time, then position.
struct Head {
    ts: u64,
    conv: ConvId,
    seq: Seq,
    /// Which `ConvWalk` it came from.
    slot: usize,
    record: MessageRecord,
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

impl Store {
    /// One page of the messages in `convs` that have every one of `terms`, newest first (by
    /// ts, then conversation and seq). All reads come from one snapshot.
    pub fn search(&self, _key: &ContentKey, convs: &[ConvId], terms: &[Term], page: &Page) -> Result<Found, StoreError> {
        let Page { before, offset, limit } = *page;
        let mut hashes: Vec<u64> = terms.iter().map(Term::hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() || limit == 0 {
            return Ok(Found { results: Vec::new(), more: false });
        }
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(TERMCONVFIRST_POSTINGS)?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let indexed = txn.open_table(CONV_INDEXEDSEQ)?;
        let search = Walk { index: &index, messages: &messages, hashes: &hashes };
        let mut walks = Vec::with_capacity(convs.len());
        for &conv in convs {
            let indexed_to = indexed.get(conv.0)?.map(|v| v.value()).unwrap_or(0);
            let cursors = hashes.iter().map(|term| Cursor::new(*term, conv.0)).collect();
            walks.push(ConvWalk { conv, indexed_to, cursors });
        }
        let mut heads = BinaryHeap::new();
        for (slot, walk) in walks.iter_mut().enumerate() {
            // The conversation of the last result shown resumes right below it.
            let start = match before {
                Some((_, conv, seq)) if conv == walk.conv => seq.0.checked_sub(1),
                _ => Some(u64::MAX),
            };
            if let Some(start) = start
                && let Some(head) = search.next(walk, slot, start)?
            {
                heads.push(head);
            }
        }
        let mut results = Vec::with_capacity(limit);
        let mut skipped = 0;
        while let Some(head) = heads.pop() {
            if results.len() == limit {
                heads.push(head);
                break;
            }
            let shown_already = before.is_some_and(|before| head.key() >= before);
            if let Some(below) = head.seq.0.checked_sub(1)
                && let Some(next) = search.next(&mut walks[head.slot], head.slot, below)?
            {
                heads.push(next);
            }
            if shown_already {
                continue;
            }
            if skipped < offset {
                skipped += 1;
            } else {
                results.push((head.conv, head.seq, head.record));
            }
        }
        Ok(Found { results, more: !heads.is_empty() })
    }
}

type IndexTable = redb::ReadOnlyTable<postings::Key, &'static [u8]>;
type MessageTable = redb::ReadOnlyTable<(u64, u64), &'static [u8]>;

/// The index and messages of one snapshot, and the terms being looked for.
struct Walk<'a> {
    index: &'a IndexTable,
    messages: &'a MessageTable,
    hashes: &'a [u64],
}

/// One conversation being searched, from its newest message down.
struct ConvWalk {
    conv: ConvId,
    /// Messages above this seq are not in the index yet.
    indexed_to: u64,
    /// One per term, in the order of `Walk::hashes`.
    cursors: Vec<Cursor>,
}

impl Walk<'_> {
    /// The newest message of the conversation at or below seq `at_most` that has every term.
    /// Messages not in the index yet are read one by one; older ones are found through the
    /// index and checked against the stored message. `at_most` only ever goes down.
    fn next(&self, walk: &mut ConvWalk, slot: usize, at_most: u64) -> Result<Option<Head>, StoreError> {
        let conv = walk.conv;
        if at_most > walk.indexed_to {
            for entry in self.messages.range((conv.0, walk.indexed_to + 1)..=(conv.0, at_most))?.rev() {
                let (key, value) = entry?;
                if let Some(head) = self.check(conv, slot, key.value().1, value.value())? {
                    return Ok(Some(head));
                }
            }
        }
        let mut bound = at_most.min(walk.indexed_to);
        loop {
            let Some(seq) = self.leapfrog(walk, bound)? else { return Ok(None) };
            if let Some(value) = self.messages.get((conv.0, seq))?
                && let Some(head) = self.check(conv, slot, seq, value.value())?
            {
                return Ok(Some(head));
            }
            // A hash collision (or an index entry without its message): look further down.
            let Some(below) = seq.checked_sub(1) else { return Ok(None) };
            bound = below;
        }
    }

    /// The stored message as a result, if it really has every term.
    fn check(&self, conv: ConvId, slot: usize, seq: u64, bytes: &[u8]) -> Result<Option<Head>, StoreError> {
        let record: MessageRecord = decode(bytes)?;
        let terms = terms_of(&record);
        Ok(self.hashes.iter().all(|h| terms.contains(h)).then_some(Head { ts: record.ts, conv, seq: Seq(seq), slot, record }))
    }

    /// The highest seq at or below `bound` that every term has. Each term in turn jumps to
    /// its newest seq at or below the current candidate; when all of them land on the same
    /// seq, that is a match. Costs a few seeks per candidate, never a full scan of a common
    /// term's list.
    fn leapfrog(&self, walk: &mut ConvWalk, bound: u64) -> Result<Option<u64>, StoreError> {
        let mut candidate = bound;
        let mut agreeing = 0;
        for i in (0..walk.cursors.len()).cycle() {
            let Some(seq) = walk.cursors[i].seek(self.index, candidate)? else { return Ok(None) };
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
    use super::*;
    use crate::store::Change;

    fn message(author: u64, text: &str, ts: u64) -> MessageRecord {
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
        }
    }

    fn words_of(text: &str) -> Vec<Term> {
        words(text).map(Term::Word).collect()
    }

    fn found(store: &Store, convs: &[u64], terms: &[Term]) -> Vec<(u64, u64)> {
        let convs: Vec<ConvId> = convs.iter().map(|c| ConvId(*c)).collect();
        store
            .search(&ContentKey(()), &convs, terms, &Page { before: None, offset: 0, limit: 100 })
            .unwrap()
            .results
            .iter()
            .map(|(c, s, _)| (c.0, s.0))
            .collect()
    }

    /// How many (term, seq) postings the index holds for conversation 1.
    fn postings(store: &Store) -> usize {
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
    fn words_are_lowercased_runs_of_letters_and_digits() {
        let got: Vec<String> = words("Re-deploy the Printer's driver v2, à Zürich! 42 x").collect();
        assert_eq!(got, ["re", "deploy", "the", "printer", "driver", "v2", "zürich", "42"]);
    }

    #[test]
    fn chinese_and_japanese_are_cut_into_pairs_of_characters() {
        let got: Vec<String> = words("東京タワーに行く, Hallway東京! 字 한국어 단어 人々・色々").collect();
        assert_eq!(
            got,
            ["東京", "京タ", "タワ", "ワー", "ーに", "に行", "行く", "hallway", "東京", "字", "한국어", "단어", "人々", "色々"],
            "pairs of neighbours; a lone character alone; Latin and hangul as words; 々 belongs to its run, ・ does not"
        );
        assert_eq!(
            query_words("東京タワー hello 東京 字"),
            ["東京", "タワ", "ワー", "hello", "東京", "字"],
            "a search covers each character"
        );
        assert_eq!(query_words("東京タ"), ["東京", "京タ"]);
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
    fn an_index_built_by_another_tokenizer_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.redb");
        {
            let store = Store::open(&path).unwrap();
            store.apply_now(vec![Change::PutMessage(ConvId(1), Seq(1), message(1, "fax machine", 1))]).unwrap();
            store.index_everything().unwrap();
            let txn = store.db().unwrap().begin_write().unwrap();
            txn.open_table(crate::store::tables::META).unwrap().insert(TOKENIZER_KEY, 7u64.to_be_bytes().as_slice()).unwrap();
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
            let page = store.search(&ContentKey(()), &convs, &lunch, &Page { before: None, offset, limit: 7 }).unwrap();
            seen.extend(page.results.iter().map(|(_, _, r)| r.ts));
            offset += page.results.len();
            if !page.more {
                break;
            }
        }
        assert_eq!(seen, (1..=50u64).rev().collect::<Vec<_>>(), "all 50, newest first, none twice");

        // Paging by position instead: deleting a message already shown skips nothing.
        let first = store.search(&ContentKey(()), &convs, &lunch, &Page { before: None, offset: 0, limit: 7 }).unwrap();
        let (conv, seq, record) = first.results[1].clone();
        let mut deleted = record.clone();
        (deleted.deleted, deleted.rev) = (true, 99);
        store.apply_now(vec![Change::UpdateMessage(conv, seq, deleted)]).unwrap();
        let (conv, seq, last) = first.results.last().unwrap();
        let second = store
            .search(&ContentKey(()), &convs, &lunch, &Page { before: Some((last.ts, *conv, *seq)), offset: 0, limit: 7 })
            .unwrap();
        let ts: Vec<u64> = second.results.iter().map(|(_, _, r)| r.ts).collect();
        assert_eq!(ts, (37..=43u64).rev().collect::<Vec<_>>(), "the page right after the last one shown");
    }
}
