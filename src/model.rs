//! The domain's vocabulary: ids, roles, kinds of conversation, and the rules for names.
//! Shared by the store (which persists them), the core (which reasons with them) and the
//! protocol (which puts them on the wire), so each fact is spelled once.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An account. Ids are never reused.
    UserId
);
id_type!(
    /// A room, private room, DM or group DM.
    ConvId
);
id_type!(
    /// A position in one conversation's history. Every new message, edit and delete takes
    /// the conversation's next one, so "everything after seq N" is a complete catch-up.
    Seq
);

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The wall clock as the sign-in rules read it (session idle expiry), plus an offset only
/// tests move (`Server::advance_clock`), so that a month of idleness is tested in a moment.
#[derive(Clone, Debug, Default)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Clock {
    pub fn now(&self) -> Millis {
        now_millis().saturating_add(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Reviewer,
    Member,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvKind {
    /// Public room: listed in the directory, anyone may join.
    Room,
    /// Private room: invite only, invisible to non-members.
    Private,
    /// Direct message between two people (or one person's notes to self).
    Dm,
    /// Group direct message ("instant meeting"), three or more people.
    Group,
}

impl ConvKind {
    pub fn is_room(self) -> bool {
        matches!(self, ConvKind::Room | ConvKind::Private)
    }
}

/// Sign-in names and room names: 1-32 of `a-z 0-9 . _ -`, starting with a letter or digit.
/// Kept this narrow so that `@name` in running text is unambiguous.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// A piece of a message text, as the web client's markup (`web/markup.js`, `splitCode`) cuts
/// it: code is kept verbatim and never holds mentions, links or emphasis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Prose(&'a str),
    /// A ```` ```block``` ```` (with its fences and language line) or an `` `inline` `` span.
    Code(&'a str),
}

/// Cuts a text into prose and code: first every ```` ``` ```` block, up to the next ```` ``` ````
/// (an unclosed fence is prose); then, in the prose between blocks, every `` `span` `` of one
/// or more characters without a backtick or newline, leftmost first. The same two steps as
/// `splitCode` in `web/markup.js`; `tests/fixtures/code_spans.json` holds cases both sides
/// are tested against.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let Some(close) = rest[open + 3..].find("```") else { break };
        let end = open + 3 + close + 3;
        inline_pieces(&rest[..open], &mut out);
        out.push(Piece::Code(&rest[open..end]));
        rest = &rest[end..];
    }
    inline_pieces(rest, &mut out);
    out
}

fn inline_pieces<'a>(text: &'a str, out: &mut Vec<Piece<'a>>) {
    let bytes = text.as_bytes();
    let (mut prose_from, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < bytes.len() && bytes[j] != b'`' && bytes[j] != b'\n' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'`' && j > i + 1 {
            if i > prose_from {
                out.push(Piece::Prose(&text[prose_from..i]));
            }
            out.push(Piece::Code(&text[i..=j]));
            prose_from = j + 1;
            i = j + 1;
        } else {
            i += 1;
        }
    }
    if prose_from < text.len() {
        out.push(Piece::Prose(&text[prose_from..]));
    }
}

/// The `@name` mentions in a message's prose (never in code), in order of first appearance,
/// each once, as the web client finds them: `@` not right after a letter, digit, `_` or `@`,
/// then a letter or digit and up to 31 more of `a-z 0-9 . _ -` in any case; a trailing dot or
/// dash ends the sentence, not the name. Linear in the text's length.
pub fn mentioned_names(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::new();
    for piece in pieces(text) {
        let Piece::Prose(prose) = piece else { continue };
        let bytes = prose.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let starts = bytes[i] == b'@'
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'_' | b'@')))
                && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric());
            if !starts {
                i += 1;
                continue;
            }
            let start = i + 1;
            let mut end = start;
            while end < bytes.len()
                && end - start < 32
                && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'.' | b'_' | b'-'))
            {
                end += 1;
            }
            let mut name_end = end;
            while name_end > start && matches!(bytes[name_end - 1], b'.' | b'-') {
                name_end -= 1;
            }
            let name = prose[start..name_end].to_ascii_lowercase();
            if seen.insert(name.clone()) {
                names.push(name);
            }
            i = end;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_mention_rules() {
        assert!(valid_name("alice"));
        assert!(valid_name("j.doe-2"));
        assert!(!valid_name(""));
        assert!(!valid_name("Alice"), "upper case would make @mentions ambiguous");
        assert!(!valid_name("-dash"));
        assert!(!valid_name(&"a".repeat(33)));
    }

    #[test]
    fn mentions_are_found_in_running_text() {
        assert_eq!(mentioned_names("@alice lunch? cc @bob."), vec!["alice", "bob"]);
        assert_eq!(mentioned_names("mail me at me@example.com"), Vec::<String>::new());
        assert_eq!(mentioned_names("@alice @Alice"), vec!["alice"], "names are found in any case, once");
        assert_eq!(mentioned_names("(@j.doe-2)"), vec!["j.doe-2"]);
        assert_eq!(mentioned_names("@@bob @-x"), Vec::<String>::new());
        assert_eq!(mentioned_names("ping @bob-"), vec!["bob"], "a trailing dash ends the sentence");
    }

    #[test]
    fn a_name_in_code_is_not_a_mention() {
        assert_eq!(mentioned_names("try `@bob` or ask @carol"), vec!["carol"]);
        assert_eq!(mentioned_names("```\nssh @bob\n``` @dave"), vec!["dave"]);
        assert_eq!(mentioned_names("``` unclosed @erin"), vec!["erin"], "an unclosed fence is prose");
    }

    #[test]
    fn text_is_cut_into_code_as_the_web_client_cuts_it() {
        // The same cases `tests/browser/markup.test.mjs` runs against web/markup.js.
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../tests/fixtures/code_spans.json")).expect("the fixture is JSON");
        assert!(cases.len() >= 10);
        for case in cases {
            let text = case["text"].as_str().expect("each case has a text");
            let expected: Vec<(bool, String)> = case["pieces"]
                .as_array()
                .expect("each case has pieces")
                .iter()
                .map(|p| (p["code"].as_bool().unwrap_or(false), p["text"].as_str().unwrap_or("").to_string()))
                .collect();
            let got: Vec<(bool, String)> = pieces(text)
                .into_iter()
                .map(|p| match p {
                    Piece::Prose(t) => (false, t.to_string()),
                    Piece::Code(t) => (true, t.to_string()),
                })
                .collect();
            assert_eq!(got, expected, "cut of {text:?}");
        }
    }
}
