//! Every frame and REST body of the wire protocol as serde types: the single source of the
//! wire format that `docs/protocol.md` documents. Version 1.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId};
use crate::store::records::{Keep, MessageRecord, SystemLine, UserRecord};

mod errors;
mod parse;

pub use errors::{ErrorCode, Refusal};
pub use parse::{FrameError, frame_ref, parse_client_frame};

pub const PROTOCOL_VERSION: u32 = 1;

/// A client's tag for a request, echoed in the one `ack` or `error` that answers it: a
/// string or any JSON number (`1.5` too), given back as it came.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref {
    Num(serde_json::Number),
    Str(String),
}

// ---- objects ----

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// Present (and `true`) only for an account an admin disabled: it cannot sign in, and
    /// pickers leave it out, while its old messages still show its name.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub disabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Online,
    Away,
    Dnd,
    Offline,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Presence {
    pub user: UserId,
    pub state: PresenceState,
    pub status: String,
    pub status_expires: Option<Millis>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConvId,
    pub kind: ConvKind,
    pub name: String,
    pub topic: String,
    pub members: Vec<UserId>,
    pub last_seq: Seq,
    pub read_seq: Seq,
    pub unread: u32,
    pub mentions: u32,
    pub recorded: bool,
    pub records: Records,
    /// Who created it: in a room, that person (or an admin) changes what it keeps.
    pub created_by: UserId,
    /// Present (and `true`) only for an announcements room: only admins post, and members
    /// acknowledge each message (`acknowledge`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub announcements: bool,
}

/// Who has acknowledged one announcement: the counts for everyone, the lists for its author
/// and admins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckList {
    pub seq: Seq,
    pub author: UserId,
    /// Members (other than the author) who acknowledged it...
    pub count: u32,
    /// ...of the members other than the author.
    pub of: u32,
    /// The asker acknowledged it.
    pub mine: bool,
    /// Who acknowledged, and when (author and admins only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acked: Option<Vec<AckBy>>,
    /// Members who have not yet (author and admins only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pending: Option<Vec<UserId>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckBy {
    pub user: UserId,
    pub ts: Millis,
}

/// What a conversation keeps, by name on the wire (docs/protocol.md, "Records").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepKind {
    Nothing,
    UntilRead,
    Days,
    Forever,
    Archive,
}

/// What a conversation keeps now, and who chose it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Records {
    pub keep: KeepKind,
    pub days: Option<u32>,
    pub set_by: Option<UserId>,
    /// What a new conversation gets on this server.
    pub default: bool,
    /// Each member's own choice, in a DM or group.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub choices: Option<Vec<Choice>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub user: UserId,
    pub keep: KeepKind,
    pub days: Option<u32>,
}

/// What a system line announces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum System {
    /// The author changed what the conversation keeps.
    Records { keep: KeepKind, days: Option<u32> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    pub conv: ConvId,
    pub seq: Seq,
    pub rev: Seq,
    pub author: UserId,
    pub text: String,
    pub ts: Millis,
    pub edited_ts: Option<Millis>,
    pub deleted: bool,
    pub mentions: Vec<UserId>,
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<System>,
    /// The files attached (none on a deleted message).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<Attachment>,
    /// The seq of the message this one answers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<Seq>,
    /// Its reactions, in history and search (absent: none). Live, `reactions` frames carry
    /// them; a `message_updated` of an edit leaves them as they were.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reactions: Vec<Reaction>,
}

/// One emoji given to a message and who gave it, both in the order first given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A file attached to a message; its bytes are at `GET /api/files/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: u64,
    pub name: String,
    pub size: u64,
    /// The media type the uploader's browser gave.
    #[serde(rename = "type")]
    pub mime: String,
    /// A small copy is at `GET /api/files/{id}/thumbnail`.
    pub thumbnail: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame: usize,
    /// The largest file one may attach, in bytes (`--max-file-size`).
    pub max_file: u64,
}

// ---- WebSocket: server -> client ----

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

// ---- WebSocket: client -> server ----

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send {
        conv: ConvId,
        text: String,
        #[serde(default)]
        client_id: Option<String>,
        /// Ids of files this person uploaded to the conversation and has not sent yet.
        #[serde(default)]
        attachments: Vec<u64>,
        #[serde(default)]
        reply_to: Option<Seq>,
    },
    Edit {
        conv: ConvId,
        seq: Seq,
        text: String,
    },
    Delete {
        conv: ConvId,
        seq: Seq,
    },
    /// Gives (`on: true`) or takes back one's reaction to a message.
    React {
        conv: ConvId,
        seq: Seq,
        emoji: String,
        on: bool,
    },
    Typing {
        conv: ConvId,
    },
    Read {
        conv: ConvId,
        seq: Seq,
    },
    Presence {
        idle: bool,
    },
    SetStatus {
        dnd: bool,
        #[serde(default)]
        status: String,
        #[serde(default)]
        status_expires: Option<Millis>,
    },
    CreateRoom {
        name: String,
        #[serde(default)]
        topic: String,
        #[serde(default)]
        private: bool,
        #[serde(default)]
        members: Vec<UserId>,
        /// An announcements room (admins only).
        #[serde(default)]
        announcements: bool,
    },
    OpenDm {
        users: Vec<UserId>,
    },
    Join {
        conv: ConvId,
    },
    Leave {
        conv: ConvId,
    },
    Invite {
        conv: ConvId,
        user: UserId,
    },
    RemoveMember {
        conv: ConvId,
        user: UserId,
    },
    SetTopic {
        conv: ConvId,
        topic: String,
    },
    SetRecords {
        conv: ConvId,
        keep: KeepKind,
        #[serde(default)]
        days: Option<u32>,
    },
    /// Makes a room an announcements room, or an ordinary one again.
    SetAnnouncements {
        conv: ConvId,
        announcements: bool,
    },
    /// "Got it" on the announcement at `seq`.
    Acknowledge {
        conv: ConvId,
        seq: Seq,
    },
    /// Who has acknowledged: the announcement at `seq`, or every one acknowledged so far.
    Acknowledgements {
        conv: ConvId,
        #[serde(default)]
        seq: Option<Seq>,
    },
    Ping,
}

impl ClientFrame {
    /// The frame's `type`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Send { .. } => "send",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Read { .. } => "read",
            ClientFrame::Presence { .. } => "presence",
            ClientFrame::SetStatus { .. } => "set_status",
            ClientFrame::CreateRoom { .. } => "create_room",
            ClientFrame::OpenDm { .. } => "open_dm",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Invite { .. } => "invite",
            ClientFrame::RemoveMember { .. } => "remove_member",
            ClientFrame::SetTopic { .. } => "set_topic",
            ClientFrame::SetRecords { .. } => "set_records",
            ClientFrame::SetAnnouncements { .. } => "set_announcements",
            ClientFrame::Acknowledge { .. } => "acknowledge",
            ClientFrame::Acknowledgements { .. } => "acknowledgements",
            ClientFrame::Ping => "ping",
        }
    }
}

// ---- from records to the wire ----
pub fn user_info(id: UserId, record: &UserRecord) -> User {
    User {
        id,
        name: record.name.clone(),
        display_name: record.display_name.clone(),
        role: record.role,
        disabled: record.disabled,
    }
}

pub fn message_frame(conv: ConvId, seq: Seq, record: &MessageRecord) -> Message {
    Message {
        conv,
        seq,
        rev: Seq(record.rev),
        author: record.author,
        text: record.text.clone(),
        ts: record.ts,
        edited_ts: record.edited_ts,
        deleted: record.deleted,
        mentions: record.mentions.clone(),
        client_id: record.client_id.clone(),
        system: record.system.as_ref().map(|line| match line {
            SystemLine::Records(keep) => {
                let (keep, days) = keep_kind(*keep);
                System::Records { keep, days }
            }
        }),
        // A message deleted under archive keeps its files for the record, shown to nobody.
        attachments: if record.deleted { Vec::new() } else { record.attachments.iter().map(attachment_info).collect() },
        reply_to: record.reply_to,
        reactions: Vec::new(),
    }
}

/// A message's reactions on the wire.
pub fn reactions_info(reactions: &crate::store::reactions::Reactions) -> Vec<Reaction> {
    reactions.iter().map(|(emoji, users)| Reaction { emoji: emoji.clone(), users: users.clone() }).collect()
}

pub fn attachment_info(a: &crate::store::records::Attachment) -> Attachment {
    Attachment { id: a.id, name: a.name.clone(), size: a.size, mime: a.mime.clone(), thumbnail: a.thumbnail }
}

/// A conversation's choice by its wire name.
pub fn keep_kind(keep: Keep) -> (KeepKind, Option<u32>) {
    match keep {
        Keep::Nothing => (KeepKind::Nothing, None),
        Keep::UntilRead => (KeepKind::UntilRead, None),
        Keep::Days(days) => (KeepKind::Days, Some(days)),
        Keep::Forever => (KeepKind::Forever, None),
    }
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
