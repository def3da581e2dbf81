//! Keyword search: an inverted index kept in the same write transaction as the messages it
//! indexes, and the query that walks it.
//!
//! Each message is cut into terms: its words (lowercased runs of letters and digits, at least
//! `MIN_WORD` characters) and its author. A term is stored as a 64-bit hash, and the index
//! table `termconvseq` holds one key `(term, conversation, seq)` per term of each message, so
//! a conversation's matches for a term are one ordered range, newest last. A query of several
//! terms intersects those ranges by leapfrogging (each term seeks to the newest seq at or
//! below the current candidate) and merges the conversations newest first. Every candidate is
//! checked against the message itself, so a hash collision never shows a wrong result.
//!
//! An edit re-indexes the message; a delete removes its terms. A conversation that is not
//! recorded never reaches the store, so it is never indexed either.

use std::collections::{BTreeSet, BinaryHeap};

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::records::{MessageRecord, decode};
use super::tables::{CONVSEQ_MESSAGE, TERMCONVSEQ};
use super::{Store, StoreError};
use crate::model::{ConvId, Seq, UserId};

/// Shorter words ("a", "I") are not indexed, and not searched for.
pub const MIN_WORD: usize = 2;
/// Longer runs (hashes, base64) are not words anyone types into a search box.
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

/// The searchable words of a text: lowercased runs of letters and digits of `MIN_WORD` to
/// `MAX_WORD` characters. "Re-deploy the printer's driver!" gives re, deploy, the, printer,
/// driver.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            let n = w.chars().count();
            (MIN_WORD..=MAX_WORD).contains(&n)
        })
        .map(str::to_lowercase)
}

/// The term hashes a message is found by; none once it is deleted.
fn terms_of(record: &MessageRecord) -> BTreeSet<u64> {
    if record.deleted {
        return BTreeSet::new();
    }
    words(&record.text).map(|w| Term::Word(w).hash()).chain([Term::From(record.author).hash()]).collect()
}

/// Brings the index up to date for the message at (conv, seq), which was `old` (if it
/// existed) and is now `new` (`None` once it is gone). Runs inside the transaction that
/// writes the message.
pub(crate) fn reindex(
    txn: &WriteTransaction,
    conv: ConvId,
    seq: Seq,
    old: Option<&MessageRecord>,
    new: Option<&MessageRecord>,
) -> Result<(), StoreError> {
    let before = old.map(terms_of).unwrap_or_default();
    let after = new.map(terms_of).unwrap_or_default();
    if before == after {
        return Ok(());
    }
    let mut index = txn.open_table(TERMCONVSEQ)?;
    for term in before.difference(&after) {
        index.remove((*term, conv.0, seq.0))?;
    }
    for term in after.difference(&before) {
        index.insert((*term, conv.0, seq.0), ())?;
    }
    Ok(())
}

/// Indexes every stored message (the migration to schema 3); returns how many.
pub(crate) fn index_all(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let messages = txn.open_table(CONVSEQ_MESSAGE)?;
    let mut index = txn.open_table(TERMCONVSEQ)?;
    let mut count = 0;
    for entry in messages.iter()? {
        let (key, value) = entry?;
        let (conv, seq) = key.value();
        for term in terms_of(&decode(value.value())?) {
            index.insert((term, conv, seq), ())?;
        }
        count += 1;
    }
    Ok(count)
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
    /// Messages in `convs` that have every one of `terms`, newest first: the page of `limit`
    /// after skipping `offset`. All reads come from one snapshot.
    pub fn search(&self, convs: &[ConvId], terms: &[Term], offset: usize, limit: usize) -> Result<Found, StoreError> {
        let mut hashes: Vec<u64> = terms.iter().map(Term::hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        if hashes.is_empty() || limit == 0 {
            return Ok(Found { results: Vec::new(), more: false });
        }
        let txn = self.db()?.begin_read()?;
        let index = txn.open_table(TERMCONVSEQ)?;
        let messages = txn.open_table(CONVSEQ_MESSAGE)?;
        let search = Walk { index: &index, messages: &messages, hashes: &hashes };
        let mut heads = BinaryHeap::new();
        for conv in convs {
            if let Some(head) = search.next(*conv, u64::MAX)? {
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
            if let Some(next) = head.seq.0.checked_sub(1).map(|below| search.next(head.conv, below)).transpose()?.flatten() {
                heads.push(next);
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

type IndexTable = redb::ReadOnlyTable<(u64, u64, u64), ()>;
type MessageTable = redb::ReadOnlyTable<(u64, u64), &'static [u8]>;

/// The index and messages of one snapshot, and the terms being looked for.
struct Walk<'a> {
    index: &'a IndexTable,
    messages: &'a MessageTable,
    hashes: &'a [u64],
}

impl Walk<'_> {
    /// The newest message of `conv` at or below seq `at_most` that has every term, checked
    /// against the stored message itself.
    fn next(&self, conv: ConvId, at_most: u64) -> Result<Option<Head>, StoreError> {
        let mut bound = at_most;
        loop {
            let Some(seq) = self.leapfrog(conv.0, bound)? else { return Ok(None) };
            if let Some(value) = self.messages.get((conv.0, seq))? {
                let record: MessageRecord = decode(value.value())?;
                let terms = terms_of(&record);
                if self.hashes.iter().all(|h| terms.contains(h)) {
                    return Ok(Some(Head { ts: record.ts, conv, seq: Seq(seq), record }));
                }
            }
            // A hash collision (or an index entry without its message): look further down.
            let Some(below) = seq.checked_sub(1) else { return Ok(None) };
            bound = below;
        }
    }

    /// The highest seq at or below `bound` that every term's range holds. Each term in turn
    /// jumps to its newest entry at or below the current candidate; when all of them land on
    /// the same seq, that is a match. Costs a few seeks per candidate, never a full scan of
    /// a common term's range.
    fn leapfrog(&self, conv: u64, bound: u64) -> Result<Option<u64>, StoreError> {
        let mut candidate = bound;
        let mut agreeing = 0;
        for &term in self.hashes.iter().cycle() {
            let newest = self.index.range((term, conv, 0)..=(term, conv, candidate))?.next_back().transpose()?;
            let Some((key, _)) = newest else { return Ok(None) };
            let seq = key.value().2;
            if seq == candidate {
                agreeing += 1;
            } else {
                candidate = seq;
                agreeing = 1;
            }
            if agreeing == self.hashes.len() {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }
}
