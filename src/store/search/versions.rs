//! What a reviewer's search reads of earlier versions (`Store::search_with_versions`): the
//! versions an edit or delete kept under archive are not in the index, so they are read and
//! checked. Only those in the part of a conversation the walk passes through are read (above
//! its next match by the current text, and not before `since`), and most are turned down on
//! their author and a scan of their text, without cutting it into terms.

use super::{Term, terms_of, written_by};
use crate::model::{ConvId, UserId};
use crate::store::StoreError;
use crate::store::records::{MessageRecord, decode};

pub(super) type VersionTable = redb::ReadOnlyTable<(u64, u64, u64), &'static [u8]>;

/// The earlier versions of one snapshot, and what a version must have to match.
pub(super) struct Versions<'a> {
    table: &'a VersionTable,
    /// The term hashes, as the walk looks for them.
    hashes: &'a [u64],
    /// The author every match has (`Term::From`), if asked for.
    authors: Vec<UserId>,
    /// The words every match has, as asked (lowercased).
    words: Vec<String>,
}

impl<'a> Versions<'a> {
    pub(super) fn new(table: &'a VersionTable, terms: &[Term], hashes: &'a [u64]) -> Versions<'a> {
        let (mut authors, mut words) = (Vec::new(), Vec::new());
        for term in terms {
            match term {
                Term::From(user) => authors.push(*user),
                Term::Word(word) => words.push(word.clone()),
            }
        }
        Versions { table, hashes, authors, words }
    }

    /// The lowest seq of `conv` whose versions can be results of a search back to `since`:
    /// those of older messages are older than `since` (messages are stored in the order they
    /// were written, as `written_by` takes them), and the merge stops at the first of those.
    pub(super) fn lowest(&self, messages: &super::MessageTable, conv: ConvId, since: Option<u64>) -> Result<u64, StoreError> {
        let Some(before) = since.and_then(|since| since.checked_sub(1)) else { return Ok(0) };
        Ok(written_by(messages, conv, before)?.map_or(0, |seq| seq + 1))
    }

    /// The highest seq from `low` to `high` with an earlier version that has every term.
    pub(super) fn highest(&self, conv: ConvId, low: u64, high: u64) -> Result<Option<u64>, StoreError> {
        if low > high {
            return Ok(None);
        }
        for entry in self.table.range((conv.0, low, 0)..=(conv.0, high, u64::MAX))?.rev() {
            let (key, value) = entry?;
            if self.may_match(value.value()) && self.matches(&decode(value.value())?) {
                return Ok(Some(key.value().1));
            }
        }
        Ok(None)
    }

    /// Whether the stored bytes of a version may have every word, before they are decoded:
    /// its text is in them as written, and an ASCII word of a text is in the text, but for
    /// case, unless the text has a character that lowercases into ASCII (`INTO_ASCII`).
    fn may_match(&self, bytes: &[u8]) -> bool {
        let mut utf8 = [0; 4];
        if INTO_ASCII.iter().any(|c| contains(bytes, c.encode_utf8(&mut utf8).as_bytes())) {
            return true;
        }
        self.words.iter().filter(|word| word.is_ascii()).all(|word| contains_ignoring_ascii_case(bytes, word.as_bytes()))
    }

    /// Whether `version` has every term (`terms_of`). Its author and, when its text is
    /// ASCII, a scan for each word turn most down first: the words of ASCII text are parts
    /// of it, lowercased.
    fn matches(&self, version: &MessageRecord) -> bool {
        if version.deleted || self.authors.iter().any(|author| *author != version.author) {
            return false;
        }
        let text = version.text.as_bytes();
        if version.text.is_ascii() && !self.words.iter().all(|word| contains_ignoring_ascii_case(text, word.as_bytes())) {
            return false;
        }
        let terms = terms_of(version);
        self.hashes.iter().all(|h| terms.contains(h))
    }
}

/// The characters other than ASCII whose lowercase has ASCII in it (the Kelvin sign's is
/// k), checked against the standard library's tables by a test.
const INTO_ASCII: [char; 2] = ['\u{130}', '\u{212A}'];

/// Whether `text` holds `word` (lowercase), ignoring ASCII case.
fn contains_ignoring_ascii_case(text: &[u8], word: &[u8]) -> bool {
    let Some(&first) = word.first() else { return true };
    let upper = first.to_ascii_uppercase();
    let mut at = 0;
    while let Some(found) = text.get(at..).and_then(|rest| rest.iter().position(|b| *b == first || *b == upper)) {
        let start = at + found;
        match text.get(start..start + word.len()) {
            Some(here) if here.eq_ignore_ascii_case(word) => return true,
            Some(_) => at = start + 1,
            None => return false,
        }
    }
    false
}

/// Whether `bytes` holds `part` (not empty).
fn contains(bytes: &[u8], part: &[u8]) -> bool {
    // Looking for the first byte alone is quick (`memchr`), and it is rare in chat text.
    let mut at = 0;
    while let Some(found) = bytes.get(at..).and_then(|rest| rest.iter().position(|b| *b == part[0])) {
        let start = at + found;
        match bytes.get(start..start + part.len()) {
            Some(here) if here == part => return true,
            Some(_) => at = start + 1,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use crate::model::{ConvId, Seq, UserId};
    use crate::store::records::MessageRecord;
    use crate::store::search::tests::message;
    use crate::store::search::{Page, Term, words};
    use crate::store::{Change, ContentKey, Store};

    /// xorshift64: the same archive on every run.
    struct Random(u64);
    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    const WORDS: [&str; 8] = ["alpha", "beta", "gamma", "delta", "ALPHA", "Gamma", "\u{212A}appa", "zürich"];

    fn text(random: &mut Random) -> String {
        let n = 1 + random.next() % 4;
        (0..n).map(|_| WORDS[(random.next() % WORDS.len() as u64) as usize]).collect::<Vec<_>>().join(" ")
    }

    /// An archive of three conversations: messages with edits (some several times, some of
    /// them deleted at last) taking seqs between the messages, as the server writes them
    /// under archive; most indexed, the newest not yet. Returns every message with its
    /// earlier versions, as the answer a search must give is worked out from.
    type Archive = BTreeMap<(ConvId, Seq), (MessageRecord, Vec<MessageRecord>)>;

    fn archive(store: &Store) -> Archive {
        let mut random = Random(0x1234_5678_9abc_def1);
        let mut all: Archive = BTreeMap::new();
        let mut next = [1u64; 4];
        let mut changes = Vec::new();
        for i in 1..=900u64 {
            if i == 800 {
                store.apply_now(std::mem::take(&mut changes)).unwrap();
                store.index_everything().unwrap();
            }
            let conv = ConvId(1 + random.next() % 3);
            let seq = Seq(next[conv.0 as usize]);
            next[conv.0 as usize] += 1;
            let record = MessageRecord { rev: seq.0, ..message(1 + random.next() % 3, &text(&mut random), i * 10) };
            changes.push(Change::PutMessage(conv, seq, record.clone()));
            all.insert((conv, seq), (record, Vec::new()));
            // Now and then an earlier message of the conversation is edited or deleted.
            if random.next().is_multiple_of(3) {
                let mine: Vec<Seq> = all.keys().filter(|(c, _)| *c == conv).map(|(_, s)| *s).collect();
                let target = mine[(random.next() % mine.len() as u64) as usize];
                let (current, versions) = all.get_mut(&(conv, target)).unwrap();
                if current.deleted {
                    continue;
                }
                let rev = next[conv.0 as usize];
                next[conv.0 as usize] += 1;
                let mut after = current.clone();
                if random.next().is_multiple_of(8) {
                    (after.text, after.deleted) = (String::new(), true);
                } else {
                    (after.text, after.edited_ts) = (text(&mut random), Some(i * 10));
                }
                after.rev = rev;
                changes.extend([
                    Change::KeepVersion(conv, target, current.clone()),
                    Change::UpdateMessage(conv, target, after.clone()),
                ]);
                versions.push(std::mem::replace(current, after));
            }
        }
        store.apply_now(changes).unwrap();
        all
    }

    /// Whether `record` has every one of `terms`, worked out from its words.
    fn has(record: &MessageRecord, terms: &[Term]) -> bool {
        let found: BTreeSet<String> = words(&record.text).collect();
        !record.deleted
            && terms.iter().all(|t| match t {
                Term::Word(w) => found.contains(w),
                Term::From(u) => record.author == *u,
            })
    }

    /// Every page of a reviewer's search from `until` back to `since`, `limit` at a time.
    fn searched(store: &Store, terms: &[Term], since: Option<u64>, until: Option<u64>, limit: usize) -> Vec<(ConvId, Seq)> {
        let convs = [ConvId(1), ConvId(2), ConvId(3)];
        let mut seen = Vec::new();
        let mut before = until.map(|until| (until + 1, ConvId(0), Seq(0)));
        loop {
            let page = Page { before, since, offset: 0, limit };
            let found = store.search_with_versions(&ContentKey(()), &convs, terms, &page).unwrap();
            seen.extend(found.results.iter().map(|(c, s, _)| (*c, *s)));
            before = found.results.last().map(|(c, s, r)| (r.ts, *c, *s));
            if !found.more {
                return seen;
            }
        }
    }

    #[test]
    fn only_the_characters_the_prefilter_knows_lowercase_into_ascii() {
        let found: Vec<char> = (0..=0x10_FFFF)
            .filter_map(char::from_u32)
            .filter(|c| !c.is_ascii() && c.to_lowercase().any(|l| l.is_ascii()))
            .collect();
        assert_eq!(found, super::INTO_ASCII);
    }

    #[test]
    fn a_reviewers_search_finds_exactly_the_messages_whose_text_or_an_earlier_version_matches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let all = archive(&store);
        let edited = all.values().filter(|(_, v)| !v.is_empty()).count();
        assert!(edited > 150 && all.values().any(|(m, _)| m.deleted), "{edited} edited");
        let word = |w: &str| Term::Word(w.into());
        let queries = [
            vec![word("alpha")],
            vec![word("kappa")],
            vec![word("zürich"), word("gamma")],
            vec![word("delta"), Term::From(UserId(2))],
            vec![Term::From(UserId(3))],
            vec![word("beta"), word("kappa"), Term::From(UserId(1))],
            vec![word("nowhere")],
        ];
        for terms in &queries {
            for (since, until) in
                [(None, None), (Some(0), Some(9_000)), (Some(2_000), Some(4_005)), (Some(7_990), None), (None, Some(55))]
            {
                let expected: Vec<(ConvId, Seq)> = {
                    let mut matching: Vec<(u64, ConvId, Seq)> = all
                        .iter()
                        .filter(|(_, (m, versions))| has(m, terms) || versions.iter().any(|v| has(v, terms)))
                        .map(|((c, s), (m, _))| (m.ts, *c, *s))
                        .filter(|(ts, ..)| since.is_none_or(|since| *ts >= since) && until.is_none_or(|until| *ts <= until))
                        .collect();
                    matching.sort_unstable_by(|a, b| b.cmp(a));
                    matching.into_iter().map(|(_, c, s)| (c, s)).collect()
                };
                for limit in [1, 7, 100] {
                    assert_eq!(
                        searched(&store, terms, since, until, limit),
                        expected,
                        "{terms:?} {since:?}-{until:?} by {limit}"
                    );
                }
                if terms.len() == 1 && since.is_none() && until.is_none() {
                    let through_versions = expected.iter().filter(|key| !has(&all[key].0, terms)).count();
                    assert!(through_versions > 0 || terms == &[word("nowhere")], "{terms:?}: none only by an earlier version");
                }
            }
        }
    }
}
