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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Reviewer,
    Member,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// The `@name` mentions in a message text, in order of first appearance, without duplicates.
pub fn mentioned_names(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if bytes[i] == b'@' && at_word_start {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len()
                && (bytes[end].is_ascii_lowercase()
                    || bytes[end].is_ascii_uppercase()
                    || bytes[end].is_ascii_digit()
                    || matches!(bytes[end], b'.' | b'_' | b'-'))
            {
                end += 1;
            }
            // A trailing dot ends the sentence, not the name.
            while end > start && bytes[end - 1] == b'.' {
                end -= 1;
            }
            if end > start {
                let name = &text[start..end];
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            i = end.max(i + 1);
        } else {
            i += 1;
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
        assert_eq!(mentioned_names("mail me at me@example.com"), Vec::<&str>::new());
        assert_eq!(mentioned_names("@alice @alice"), vec!["alice"]);
        assert_eq!(mentioned_names("(@j.doe-2)"), vec!["j.doe-2"]);
    }
}
