//! How text becomes search terms: the words of a text (Latin-like runs, and pairs of
//! Chinese and Japanese characters), the terms a message is found by, and their 64-bit
//! hashes as the index stores them. The cut depends on the standard library's Unicode
//! tables; `fingerprint` tells when a new binary cuts differently.

use std::collections::BTreeSet;

use crate::model::UserId;
use crate::store::records::MessageRecord;

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
    pub(super) fn hash(&self) -> u64 {
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
pub(crate) fn terms_of(record: &MessageRecord) -> BTreeSet<u64> {
    if record.deleted {
        return BTreeSet::new();
    }
    words(&record.text).map(|w| Term::Word(w).hash()).chain([Term::From(record.author).hash()]).collect()
}

/// Text that exercises the Unicode rules `words` depends on (what is a letter or digit, how
/// it lowercases), which come from the standard library and may change with the toolchain.
/// It has a character of every range of `is_cjk`, so that a change to them rebuilds the index.
const PROBE: &str = "Ünïcödé ǅemal ΣΊΣΥΦΟΣ İstanbul STRASSE ﬁne ١٢٣ 漢字かな 人々〇〆〡〱〸ㇰ㐀豈ｶ𠀋𰀀 ᾼᾼ ⅷⅷ ①② ŉa 𝔸𝔹 Ǆǅǆ";

/// A hash of how this binary cuts `PROBE`: another value means its words differ.
pub(super) fn fingerprint() -> u64 {
    fnv1a(2, words(PROBE).collect::<Vec<_>>().join(" ").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
