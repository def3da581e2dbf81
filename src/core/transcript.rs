//! A conversation's transcript for training (a library's use: what patrons asked, without
//! who they are): every person becomes a stable pseudonym ("Staff 1", later "Visitor 2" for
//! guests), numbered in the order they first speak, and in the text their names, mentions,
//! e-mail and web addresses and long numbers (phones, cards) are replaced.

use std::collections::HashMap;

use crate::model::{Millis, Role, UserId};
use crate::store::records::MessageRecord;

/// One line of a transcript.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Line {
    pub speaker: String,
    pub ts: Millis,
    pub text: String,
}

/// The people a transcript may name: id, sign-in name, display name, role.
pub struct Person<'a> {
    pub id: UserId,
    pub name: &'a str,
    pub display_name: &'a str,
    pub role: Role,
}

/// The transcript of `messages` (deleted ones and system lines left out).
pub fn transcript(messages: &[MessageRecord], people: &[Person]) -> Vec<Line> {
    let mut labels: HashMap<UserId, String> = HashMap::new();
    let mut staff = 0;
    let mut label_of = |id: UserId, labels: &mut HashMap<UserId, String>| {
        labels
            .entry(id)
            .or_insert_with(|| {
                // Guests arrive with the visitor desk; until then everyone is staff.
                staff += 1;
                format!("Staff {staff}")
            })
            .clone()
    };
    for m in messages.iter().filter(|m| !m.deleted && m.system.is_none()) {
        label_of(m.author, &mut labels);
    }
    // Words that name someone: sign-in names and the words of display names, lowercased.
    let mut names: HashMap<String, UserId> = HashMap::new();
    for person in people {
        names.insert(person.name.to_lowercase(), person.id);
        for word in person.display_name.split_whitespace().filter(|w| w.chars().count() >= 3) {
            names.entry(word.to_lowercase()).or_insert(person.id);
        }
    }
    messages
        .iter()
        .filter(|m| !m.deleted && m.system.is_none())
        .map(|m| Line {
            speaker: labels[&m.author].clone(),
            ts: m.ts,
            text: scrub(&numbers_out(&m.text), &names, &mut |id| label_of(id, &mut labels)),
        })
        .collect()
}

/// The text with every run of 7 or more digits (spaces, dashes, dots and brackets between
/// them allowed: phone and card numbers as people type them) replaced by "[number]".
fn numbers_out(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit() || (chars[i] == '+' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts_number {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The longest run from here that ends on a digit.
        let (mut j, mut end, mut digits, mut counted) = (i, i, 0, 0);
        while j < chars.len() && (chars[j].is_ascii_digit() || " -.()+".contains(chars[j])) {
            if chars[j].is_ascii_digit() {
                counted += 1;
                end = j + 1;
                digits = counted;
            }
            j += 1;
        }
        if digits >= 7 {
            out.push_str("[number]");
        } else {
            out.extend(&chars[i..end.max(i + 1)]);
        }
        i = end.max(i + 1);
    }
    out
}

/// The text with names, addresses and long numbers replaced, word by word; spacing kept.
fn scrub(text: &str, names: &HashMap<String, UserId>, label: &mut impl FnMut(UserId) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, label: &mut dyn FnMut(UserId) -> String| {
        if !word.is_empty() {
            out.push_str(&replace(word, names, label));
            word.clear();
        }
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out, label);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out, label);
    out
}

/// One whitespace-free token, replaced if it names or addresses someone.
fn replace(token: &str, names: &HashMap<String, UserId>, label: &mut dyn FnMut(UserId) -> String) -> String {
    // Punctuation around a word stays ("Bob," -> "Staff 1,").
    let core = token.trim_matches(|c: char| !c.is_alphanumeric() && c != '@');
    let (start, end) = match token.find(core) {
        Some(at) if !core.is_empty() => (at, at + core.len()),
        _ => return token.to_string(),
    };
    let lower = core.to_lowercase();
    let lowered = lower.trim_start_matches('@');
    let replaced = if core.contains('@') && !core.starts_with('@') && core.contains('.') {
        Some("[e-mail]".to_string())
    } else if lower.starts_with("http") || lower.starts_with("www.") || token.contains("://") {
        Some("[link]".to_string())
    } else if core.chars().filter(char::is_ascii_digit).count() >= 7 {
        Some("[number]".to_string())
    } else {
        names.get(lowered).map(|id| label(*id))
    };
    match replaced {
        Some(with) if with == "[link]" => with,
        Some(with) => format!("{}{with}{}", &token[..start], &token[end..]),
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(author: u64, text: &str) -> MessageRecord {
        MessageRecord::new(UserId(author), text.into(), author, 0)
    }

    #[test]
    fn people_become_stable_pseudonyms_and_addresses_go() {
        let people = [
            Person { id: UserId(1), name: "alice", display_name: "Alice Liddell", role: Role::Member },
            Person { id: UserId(2), name: "bob", display_name: "Bob Builder", role: Role::Member },
        ];
        let lines = transcript(
            &[
                said(2, "Hi, I need my card renewed: bob.b@example.org, 555 0199 1234"),
                said(1, "Sure Bob, see https://library.example/renew and ask @alice again"),
                said(2, "Thanks, Alice!"),
            ],
            &people,
        );
        let speakers: Vec<&str> = lines.iter().map(|l| l.speaker.as_str()).collect();
        assert_eq!(speakers, ["Staff 1", "Staff 2", "Staff 1"], "numbered by who spoke first, the same each time");
        assert_eq!(lines[0].text, "Hi, I need my card renewed: [e-mail], [number]");
        assert_eq!(lines[1].text, "Sure Staff 1, see [link] and ask Staff 2 again");
        assert_eq!(lines[2].text, "Thanks, Staff 2!");
        let card = transcript(&[said(2, "card 4111-1111-1111-1111, room 12, 3 pm")], &people);
        assert_eq!(card[0].text, "card [number], room 12, 3 pm", "short numbers stay");
    }
}
