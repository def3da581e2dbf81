//! The objects frames and REST bodies carry (users, presence, conversations, messages and
//! what hangs on them), and how the store's records become them.

use serde::{Deserialize, Serialize};

use crate::model::{ConvId, ConvKind, Millis, Role, Seq, UserId};
use crate::store::records::{Keep, MessageRecord, SystemLine, UserRecord};

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
