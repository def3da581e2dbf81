//! How the keyword index stores its postings (the seqs of a term's messages in one
//! conversation): in blocks of up to `BLOCK` seqs, each a redb entry keyed by
//! `(term, conversation, first seq)` whose value is the other seqs as LEB128 varint gaps.
//! A common word costs one to two bytes per message instead of a 24-byte key, which keeps
//! the index (and with it the data file, its backups and its repair after a crash) small.
//!
//! The block holding a seq is the one with the greatest first seq at or below it.

use redb::{ReadableTable, Table};

use super::StoreError;

/// Seqs per block at most; a fuller block is split into full ones and the rest.
const BLOCK: usize = 128;

pub type Key = (u64, u64, u64);
pub type Postings<'txn> = Table<'txn, Key, &'static [u8]>;

/// The seqs of a block, ascending, from its key's first seq and its value. A value that is
/// not a list of varint gaps (a damaged file) is an error, never a panic or wrong seqs.
pub(crate) fn decode(first: u64, bytes: &[u8]) -> Result<Vec<u64>, StoreError> {
    let corrupt = || StoreError::Redb(redb::Error::Corrupted(format!("a search index block at seq {first} is damaged")));
    let mut seqs = Vec::with_capacity(1 + bytes.len());
    let mut seq = first;
    seqs.push(seq);
    let mut gap = 0u64;
    let mut shift = 0;
    for byte in bytes {
        if shift > 63 {
            return Err(corrupt());
        }
        gap |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            seq = seq.checked_add(gap).ok_or_else(corrupt)?;
            seqs.push(seq);
            gap = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    if shift != 0 {
        return Err(corrupt());
    }
    Ok(seqs)
}

/// The value of a block holding `seqs` (ascending, at least one): the gaps after the first.
fn encode(seqs: &[u64]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(seqs.len() * 2);
    for pair in seqs.windows(2) {
        let mut gap = pair[1] - pair[0];
        while gap >= 0x80 {
            bytes.push((gap as u8) | 0x80);
            gap >>= 7;
        }
        bytes.push(gap as u8);
    }
    bytes
}

/// The block of (term, conv) holding `seq`'s place: greatest first seq at or below it.
fn block_at(table: &impl ReadableTable<Key, &'static [u8]>, term: u64, conv: u64, seq: u64) -> Result<Option<Block>, StoreError> {
    let Some((key, value)) = table.range((term, conv, 0)..=(term, conv, seq))?.next_back().transpose()? else {
        return Ok(None);
    };
    let first = key.value().2;
    Ok(Some((first, decode(first, value.value())?)))
}

/// Writes `seqs` (ascending) as the block that was keyed `old_first` (if any), splitting it
/// when it is over `BLOCK`; an empty list deletes the block.
fn store(table: &mut Postings, term: u64, conv: u64, old_first: Option<u64>, seqs: &[u64]) -> Result<(), StoreError> {
    if let Some(old) = old_first
        && seqs.first() != Some(&old)
    {
        table.remove((term, conv, old))?;
    }
    // An overfull block becomes full ones and a last one that takes the next appends.
    for part in seqs.chunks(BLOCK) {
        table.insert((term, conv, part[0]), encode(part).as_slice())?;
    }
    Ok(())
}

/// A term's block as stored: its first seq and its seqs.
type Block = (u64, Vec<u64>);

/// `next_run`'s answer: the block, the seqs that fall in it, the seqs after them, and the
/// first seq of the next block.
type Run<'s> = (Option<Block>, &'s [u64], &'s [u64], Option<u64>);

/// The block `rest[0]` falls in (none: it is below the first block), the seqs of `rest` that
/// fall in it too (those before the next block's first), and the rest after them.
fn next_run<'s>(table: &Postings, term: u64, conv: u64, rest: &'s [u64]) -> Result<Run<'s>, StoreError> {
    let seq = rest[0];
    let found = block_at(table, term, conv, seq)?;
    let start = found.as_ref().map_or(seq, |(first, _)| *first);
    let next_first =
        table.range((term, conv, start + 1)..=(term, conv, u64::MAX))?.next().transpose()?.map(|(key, _)| key.value().2);
    let upto = rest.partition_point(|s| next_first.is_none_or(|next| *s < next));
    let (here, later) = rest.split_at(upto.max(1));
    Ok((found, here, later, next_first))
}

/// Writes `seqs` (ascending) below the block that was keyed `old_first` (if any, which they
/// replace), split into blocks with the partial one lowest: a rebuild adds older seqs below
/// the first block step after step (`search/index.rs`), and the next step fills it.
fn store_below(table: &mut Postings, term: u64, conv: u64, old_first: Option<u64>, seqs: &[u64]) -> Result<(), StoreError> {
    if let Some(old) = old_first {
        table.remove((term, conv, old))?;
    }
    let (partial, full) = seqs.split_at(seqs.len() % BLOCK);
    if !partial.is_empty() {
        table.insert((term, conv, partial[0]), encode(partial).as_slice())?;
    }
    for part in full.chunks(BLOCK) {
        table.insert((term, conv, part[0]), encode(part).as_slice())?;
    }
    Ok(())
}

/// Adds seqs (ascending) to the postings of (term, conv). Seqs below the first block join it
/// while it has room, and the blocks below it fill from the top down.
pub fn add(table: &mut Postings, term: u64, conv: u64, seqs: &[u64]) -> Result<(), StoreError> {
    let mut rest = seqs;
    while !rest.is_empty() {
        let (found, here, later, next_first) = next_run(table, term, conv, rest)?;
        match found {
            Some((first, mut merged)) => {
                merged.extend_from_slice(here);
                merged.sort_unstable();
                merged.dedup();
                store(table, term, conv, Some(first), &merged)?;
            }
            None => {
                // Below the first block (a rebuild going newest first): fill it while it
                // has room.
                let mut merged = here.to_vec();
                let first = match next_first {
                    Some(first) => {
                        table.get((term, conv, first))?.map(|v| decode(first, v.value())).transpose()?.map(|s| (first, s))
                    }
                    None => None,
                };
                let old_first = match first {
                    Some((first, seqs)) if seqs.len() < BLOCK => {
                        merged.extend_from_slice(&seqs);
                        Some(first)
                    }
                    _ => None,
                };
                store_below(table, term, conv, old_first, &merged)?;
            }
        }
        rest = later;
    }
    Ok(())
}

/// Removes one seq from the postings of (term, conv).
pub fn remove(table: &mut Postings, term: u64, conv: u64, seq: u64) -> Result<(), StoreError> {
    remove_many(table, term, conv, &[seq])
}

/// Removes seqs (ascending) from the postings of (term, conv), rewriting each block they
/// are in once, however many of them it holds: a purge batch's messages share their common
/// words, and one rewrite per seq made a batch cost a rewrite per posting.
pub fn remove_many(table: &mut Postings, term: u64, conv: u64, seqs: &[u64]) -> Result<(), StoreError> {
    let mut rest = seqs;
    while !rest.is_empty() {
        let (found, here, later, _) = next_run(table, term, conv, rest)?;
        rest = later;
        let Some((first, mut kept)) = found else { continue };
        let before = kept.len();
        kept.retain(|s| here.binary_search(s).is_err());
        if kept.len() == before {
            continue;
        }
        if kept.is_empty() {
            table.remove((term, conv, first))?;
        } else {
            store(table, term, conv, Some(first), &kept)?;
        }
    }
    Ok(())
}

/// A block as stored (its key's first seq and its value) without its seqs below `floor`:
/// the new first seq and value, or `None` when nothing is left. For the vacuum, which drops
/// the entries of purged messages a purge left behind (`search::floor`).
pub(crate) fn trim_below(first: u64, bytes: &[u8], floor: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let seqs = decode(first, bytes)?;
    let kept = &seqs[seqs.partition_point(|s| *s < floor)..];
    Ok(kept.first().map(|first| (*first, encode(kept))))
}

/// Walks one term's postings in one conversation downwards, keeping the block it is in, so
/// a search going from newer to older seqs decodes each block once.
pub struct Cursor {
    term: u64,
    conv: u64,
    block: Option<(u64, Vec<u64>)>,
}

impl Cursor {
    pub fn new(term: u64, conv: u64) -> Cursor {
        Cursor { term, conv, block: None }
    }

    /// The greatest seq at or below `at_most` that has this term. Calls must come with
    /// `at_most` never growing.
    pub fn seek(&mut self, table: &impl ReadableTable<Key, &'static [u8]>, at_most: u64) -> Result<Option<u64>, StoreError> {
        let cached = self.block.as_ref().is_some_and(|(first, _)| *first <= at_most);
        if !cached {
            self.block = block_at(table, self.term, self.conv, at_most)?;
        }
        // The block's first seq is at or below at_most, so the search finds at least it.
        Ok(self.block.as_ref().map(|(_, seqs)| seqs[seqs.partition_point(|s| *s <= at_most) - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase, TableDefinition};

    const TABLE: TableDefinition<Key, &[u8]> = TableDefinition::new("postings");

    fn all(db: &Database) -> Vec<u64> {
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        let mut cursor = Cursor::new(7, 1);
        let mut seqs = Vec::new();
        let mut at = u64::MAX;
        while let Some(seq) = cursor.seek(&table, at).unwrap() {
            seqs.push(seq);
            let Some(below) = seq.checked_sub(1) else { break };
            at = below;
        }
        seqs.reverse();
        seqs
    }

    fn write(db: &Database, f: impl FnOnce(&mut Postings)) {
        let txn = db.begin_write().unwrap();
        f(&mut txn.open_table(TABLE).unwrap());
        txn.commit().unwrap();
    }

    #[test]
    fn gaps_round_trip_through_varints() {
        let seqs = [3, 4, 130, 131, 20_000, 5_000_000_000];
        assert_eq!(decode(3, &encode(&seqs)).unwrap(), seqs);
        assert!(decode(3, &[0x80; 11]).is_err(), "endless continuation bytes are damage, not a panic");
        assert!(decode(3, &[0x85]).is_err(), "a cut-off varint is damage");
        assert!(decode(u64::MAX - 1, &[5]).is_err(), "a gap past u64::MAX is damage");
        assert_eq!(encode(&[9]), Vec::<u8>::new(), "a lone seq is all in the key");
    }

    #[test]
    fn postings_added_in_any_order_and_removed_are_found_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("p.redb")).unwrap();
        let mut expected: Vec<u64> = (1..=1000).map(|i| i * 3).collect();
        // Appends in steps, as the background indexer does, splitting blocks as they fill.
        for chunk in expected.chunks(70) {
            write(&db, |t| add(t, 7, 1, chunk).unwrap());
        }
        // Another term and conversation around it must not leak in.
        write(&db, |t| {
            add(t, 7, 2, &[1, 2, 3]).unwrap();
            add(t, 6, 1, &[5]).unwrap();
            add(t, 8, 1, &[5]).unwrap();
        });
        assert_eq!(all(&db), expected);
        // Into the middle, before the first, and again (no duplicates).
        write(&db, |t| add(t, 7, 1, &[1, 301, 302, 3000, 3001]).unwrap());
        expected.extend([1, 301, 302, 3001]);
        expected.sort_unstable();
        assert_eq!(all(&db), expected);
        // Removing firsts, middles, a missing seq, and everything.
        write(&db, |t| {
            for seq in [1, 3, 300, 302, 3001, 77] {
                remove(t, 7, 1, seq).unwrap();
            }
        });
        expected.retain(|s| ![1, 3, 300, 302, 3001].contains(s));
        assert_eq!(all(&db), expected);
        write(&db, |t| {
            for seq in &expected {
                remove(t, 7, 1, *seq).unwrap();
            }
        });
        assert_eq!(all(&db), Vec::<u64>::new());
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        assert_eq!(table.range((7, 1, 0)..=(7, 1, u64::MAX)).unwrap().count(), 0, "no empty blocks are left");
    }
}
