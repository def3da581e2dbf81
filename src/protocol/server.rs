//! Frames the server sends over the WebSocket: `ServerFrame`, encoded once for every tab it
//! goes to (`Encoded`), and the `hello` split into bounded parts.

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::{ConvId, Millis, Seq, UserId};

use super::*;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ack {
        #[serde(rename = "ref")]
        reference: Option<Ref>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conv: Option<ConvId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<Seq>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<Millis>,
    },
    Error {
        #[serde(rename = "ref")]
        reference: Option<Ref>,
        code: ErrorCode,
        message: String,
        /// With `rate_limited`: seconds until the same frame would be taken.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<f64>,
    },
    Message {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    /// A message's reactions changed: all of them now (empty when the last was taken back).
    Reactions {
        conv: ConvId,
        seq: Seq,
        reactions: Vec<Reaction>,
    },
    Typing {
        conv: ConvId,
        user: UserId,
    },
    Read {
        conv: ConvId,
        seq: Seq,
    },
    Presence {
        presence: Presence,
    },
    Conversation {
        conversation: Conversation,
    },
    ConversationLeft {
        conv: ConvId,
        /// Who removed you, when someone did (`remove_member`); absent when you left.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        by: Option<UserId>,
    },
    MemberJoined {
        conv: ConvId,
        user: UserId,
    },
    MemberLeft {
        conv: ConvId,
        user: UserId,
        /// Who removed them, when someone did; absent when they left.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        by: Option<UserId>,
    },
    Topic {
        conv: ConvId,
        topic: String,
        user: UserId,
    },
    Records {
        conv: ConvId,
        records: Records,
    },
    /// The server's records policy changed (an admin, on the admin page): what `hello`'s
    /// `records` said, now.
    Policy {
        records: serde_json::Value,
    },
    /// Messages the conversation may no longer keep are gone (a retention or until-read
    /// purge): tabs drop them from view.
    Purged {
        conv: ConvId,
        seqs: Vec<Seq>,
    },
    User {
        user: User,
    },
    /// A member acknowledged an announcement: to their own tabs, and to those of its author
    /// and the admins among the members.
    Acknowledged {
        conv: ConvId,
        seq: Seq,
        user: UserId,
        ts: Millis,
        count: u32,
        of: u32,
    },
    /// The answer to `acknowledgements`.
    Acknowledgements {
        conv: ConvId,
        announcements: Vec<AckList>,
    },
    Pong,
    /// The last frame before a graceful shutdown closes the tab (close code 1012): every
    /// `ack` of what the server took came before it. The tab reconnects and catches up.
    Restarting {
        message: &'static str,
    },
}

impl ServerFrame {
    pub fn ack(reference: Option<Ref>) -> ServerFrame {
        ServerFrame::Ack { reference, conv: None, seq: None, client_id: None, ts: None }
    }

    pub fn error(reference: Option<Ref>, code: ErrorCode, message: impl Into<String>) -> ServerFrame {
        ServerFrame::Error { reference, code, message: message.into(), retry_after: None }
    }

    /// The `error` frame answering the request under `reference`; `retry_after` is rounded up
    /// to a millisecond.
    pub fn refused(reference: Option<Ref>, refusal: Refusal) -> ServerFrame {
        let Refusal { code, message, retry_after } = refusal;
        let retry_after = retry_after.map(|wait| (wait.as_secs_f64() * 1000.0).ceil() / 1000.0);
        ServerFrame::Error { reference, code, message, retry_after }
    }

    /// What a graceful shutdown tells every tab before closing it.
    pub fn restarting() -> ServerFrame {
        ServerFrame::Restarting { message: "The server is restarting; this tab reconnects by itself." }
    }

    /// Serialized once; the same bytes then go to every recipient.
    pub fn encode(&self) -> Encoded {
        // Our own frame types always serialize.
        Encoded::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// A server frame serialized once: JSON text whose bytes every recipient shares (a clone is
/// a reference count). Our own type, so that neither the core nor the protocol depends on
/// the WebSocket library. Made only from a `String`, so it is always UTF-8.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded(Bytes);

impl Encoded {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The bytes, valid UTF-8.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Encoded {
    fn from(text: String) -> Encoded {
        Encoded(Bytes::from(text))
    }
}

/// Everything a tab needs to draw itself, sent as one or more `hello` frames of bounded size
/// (see `hello_parts`).
pub struct Hello {
    pub me: User,
    pub limits: Limits,
    /// The server's records policy (`core::records::Policy::to_json`).
    pub records: serde_json::Value,
    pub users: Vec<User>,
    pub presence: Vec<Presence>,
    pub conversations: Vec<Conversation>,
}

#[derive(Serialize)]
struct HelloPart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    part: usize,
    last: bool,
    protocol: u32,
    me: &'a User,
    limits: &'a Limits,
    records: &'a serde_json::Value,
    users: Vec<&'a RawValue>,
    presence: Vec<&'a RawValue>,
    conversations: Vec<&'a RawValue>,
}

/// About this many bytes of lists per `hello` frame. The WebSocket writer keeps a buffer as
/// large as the largest frame a tab was ever sent, so one big `hello` would cost every idle
/// tab that much memory for as long as it stays open.
pub const HELLO_PART_BYTES: usize = 2048;

/// About this many parts at most. They are queued at once in the tab's bounded outbox
/// (`session::OUTBOX`), which a too-long hello would overflow, so that the tab could never
/// connect; a very large office gets larger parts instead.
pub const HELLO_MAX_PARTS: usize = 256;

/// Splits a hello into frames whose lists add up to about `HELLO_PART_BYTES` each, or more if
/// that would make over `HELLO_MAX_PARTS` (an item larger than that goes alone). Every part
/// repeats `protocol`, `me` and `limits`; the last has `"last": true`. A client appends the
/// lists of all parts.
pub fn hello_parts(hello: &Hello) -> Vec<Encoded> {
    fn raw<T: Serialize>(items: &[T]) -> Vec<Box<RawValue>> {
        items.iter().filter_map(|i| serde_json::value::to_raw_value(i).ok()).collect()
    }
    let users = raw(&hello.users);
    let presence = raw(&hello.presence);
    let conversations = raw(&hello.conversations);
    let new_part = |part: usize| HelloPart {
        kind: "hello",
        part,
        last: false,
        protocol: PROTOCOL_VERSION,
        me: &hello.me,
        limits: &hello.limits,
        records: &hello.records,
        users: Vec::new(),
        presence: Vec::new(),
        conversations: Vec::new(),
    };
    let total: usize = [&users, &presence, &conversations].iter().flat_map(|items| items.iter()).map(|i| i.get().len() + 1).sum();
    // A part closes when the next item would overflow it, so each is at least half full
    // unless its next item is large: twice total / parts bounds the count.
    let budget = HELLO_PART_BYTES.max(2 * total / HELLO_MAX_PARTS);
    let mut parts = vec![new_part(0)];
    let mut size = 0;
    for (which, items) in [(0, &users), (1, &presence), (2, &conversations)] {
        for item in items.iter() {
            let len = item.get().len() + 1;
            if size > 0 && size + len > budget {
                parts.push(new_part(parts.len()));
                size = 0;
            }
            let Some(part) = parts.last_mut() else { break };
            match which {
                0 => part.users.push(item),
                1 => part.presence.push(item),
                _ => part.conversations.push(item),
            }
            size += len;
        }
    }
    if let Some(last) = parts.last_mut() {
        last.last = true;
    }
    parts.iter().map(|p| Encoded::from(serde_json::to_string(p).unwrap_or_default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_hello_comes_in_bounded_parts_that_add_up_to_the_whole() {
        use crate::model::{ConvKind, Role};
        let user = |i: u64| User {
            id: UserId(i),
            name: format!("user{i}"),
            display_name: format!("User Number {i}"),
            role: Role::Member,
            disabled: false,
        };
        let hello = Hello {
            me: user(1),
            limits: Limits { max_frame: 65536, max_file: 1 },
            records: serde_json::json!({"policy": "keep"}),
            users: (1..=300).map(user).collect(),
            presence: (1..=300)
                .map(|i| Presence { user: UserId(i), state: PresenceState::Offline, status: String::new(), status_expires: None })
                .collect(),
            conversations: vec![Conversation {
                id: ConvId(1),
                kind: ConvKind::Room,
                name: "general".into(),
                topic: String::new(),
                members: (1..=300).map(UserId).collect(),
                last_seq: Seq(0),
                read_seq: Seq(0),
                unread: 0,
                mentions: 0,
                recorded: true,
                records: Records { keep: KeepKind::Forever, days: None, set_by: None, default: true, choices: None },
                created_by: UserId(1),
                announcements: false,
            }],
        };
        let parts: Vec<serde_json::Value> =
            hello_parts(&hello).iter().map(|p| serde_json::from_str(p.as_str()).unwrap()).collect();
        assert!(parts.len() > 10, "300 people do not fit in one small frame");
        let (mut users, mut presence, mut conversations) = (0, 0, 0);
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(part["type"], "hello");
            assert_eq!(part["part"], i);
            assert_eq!(part["last"], i == parts.len() - 1, "only the last part says so");
            assert_eq!(part["me"]["id"], 1, "every part carries me");
            let lists =
                part["users"].to_string().len() + part["presence"].to_string().len() + part["conversations"].to_string().len();
            assert!(lists <= HELLO_PART_BYTES + 2100, "part {i} has {lists} bytes of lists");
            users += part["users"].as_array().unwrap().len();
            presence += part["presence"].as_array().unwrap().len();
            conversations += part["conversations"].as_array().unwrap().len();
        }
        assert_eq!((users, presence, conversations), (300, 300, 1), "the parts add up to the whole");
    }

    #[test]
    fn a_huge_office_gets_fewer_larger_hello_parts_so_the_tab_can_connect() {
        let user = |i: u64| User {
            id: UserId(i),
            name: format!("user{i}"),
            display_name: format!("User Number {i}"),
            role: crate::model::Role::Member,
            disabled: false,
        };
        let hello = Hello {
            me: user(1),
            limits: Limits { max_frame: 65536, max_file: 1 },
            records: serde_json::json!({"policy": "keep"}),
            users: (1..=30_000).map(user).collect(),
            presence: Vec::new(),
            conversations: Vec::new(),
        };
        let parts = hello_parts(&hello);
        assert!(parts.len() <= HELLO_MAX_PARTS + 1, "{} parts would overflow the tab's queue", parts.len());
        let users: usize = parts
            .iter()
            .map(|p| serde_json::from_str::<serde_json::Value>(p.as_str()).unwrap()["users"].as_array().unwrap().len())
            .sum();
        assert_eq!(users, 30_000, "the parts add up to the whole");
    }
}
